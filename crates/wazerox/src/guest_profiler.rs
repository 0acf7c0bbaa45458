//! The guest profiler: where a thread's Wasm time goes, by function stack.
//!
//! Sampling is the runtime's (`wazerox_runtime::sampling`: a timer signal and a
//! frame-pointer walk); this module names the sampled PCs with the code registry
//! as they arrive (the code may be gone by the end of the run) and writes the
//! result in speedscope's file format, which speedscope (speedscope.app) opens
//! directly and the Firefox profiler imports.

use crate::Error;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wazerox_runtime::code_registry;
use wazerox_runtime::sampling::{RawSample, Sampler};

/// Samples the Wasm stack of the thread that starts it, periodically, until
/// [`GuestProfiler::finish`].
///
/// ```
/// use wazerox::{Engine, GuestProfiler, Instance, Module, Store};
/// use std::time::Duration;
///
/// let engine = Engine::default();
/// let module = Module::new(&engine, r#"(module
///     (func $spin (export "spin") (param i32)
///       (loop $l (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))))"#)?;
/// let mut store = Store::new(&engine, ());
/// let instance = Instance::new(&mut store, &module, &[])?;
/// let spin = instance.get_typed_func::<i32, ()>(&mut store, "spin")?;
/// let profiler = GuestProfiler::start(Duration::from_millis(1))?;
/// spin.call(&mut store, 200_000_000)?;
/// let profile = profiler.finish();
/// let mut json = Vec::new();
/// profile.write_speedscope("spin", &mut json)?;
/// assert!(profile.samples() > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// One profiler runs per process at a time (`start` fails otherwise), and it
/// samples only the thread that started it: in a threaded program, the main
/// thread. A sample taken while that thread runs host code called from Wasm (a
/// host function, a runtime builtin such as `memory.atomic.wait`) ends in
/// `(host)`, under the Wasm frames that called it when the host code keeps frame
/// pointers (otherwise `(host)` alone); one taken outside any call into Wasm is
/// `(outside wasm)`. The profiler interrupts the
/// thread with `SIGPROF` (docs/runtime.md, "Guest profiler"), so it replaces any
/// `SIGPROF` handler of the process.
pub struct GuestProfiler {
    sampler: Sampler,
    collected: Arc<Mutex<GuestProfile>>,
    /// Samples this thread: not `Send`.
    _thread_bound: std::marker::PhantomData<*const ()>,
}

/// The samples a [`GuestProfiler`] took.
#[derive(Debug, Default, Clone)]
pub struct GuestProfile {
    /// Frame names, with the module as "file" (empty when unnamed).
    frames: Vec<(String, String)>,
    frame_index: HashMap<(String, String), usize>,
    /// Time since the start, and frame indices, outermost first.
    samples: Vec<(Duration, Vec<usize>)>,
}

impl GuestProfiler {
    /// Starts sampling the calling thread every `interval` (at least 100µs).
    pub fn start(interval: Duration) -> Result<GuestProfiler, Error> {
        let interval = interval.max(Duration::from_micros(100));
        let collected = Arc::new(Mutex::new(GuestProfile::default()));
        let sink = collected.clone();
        let sampler = Sampler::start(interval, move |sample| {
            let mut profile = sink.lock().unwrap_or_else(|e| e.into_inner());
            profile.add(sample);
        })
        .map_err(|e| Error::msg(format!("starting the guest profiler: {e}")))?;
        Ok(GuestProfiler {
            sampler,
            collected,
            _thread_bound: std::marker::PhantomData,
        })
    }

    /// Stops sampling and returns the profile.
    pub fn finish(self) -> GuestProfile {
        self.sampler.stop();
        let profile = self.collected.lock().unwrap_or_else(|e| e.into_inner());
        profile.clone()
    }
}

impl GuestProfile {
    fn frame(&mut self, name: String, file: String) -> usize {
        let key = (name, file);
        if let Some(&index) = self.frame_index.get(&key) {
            return index;
        }
        let index = self.frames.len();
        self.frames.push(key.clone());
        self.frame_index.insert(key, index);
        index
    }

    fn add(&mut self, sample: RawSample<'_>) {
        if sample.pcs.is_empty() {
            let outside = self.frame("(outside wasm)".into(), String::new());
            self.samples.push((sample.time, vec![outside]));
            return;
        }
        let mut stack = Vec::new();
        for (i, &pc) in sample.pcs.iter().enumerate() {
            let function = code_registry::lookup(pc).and_then(|(module, offset)| {
                let function = *module.function_at(offset)?;
                Some((module, function))
            });
            let Some((module, function)) = function else {
                // The interrupted PC outside Wasm functions: host code called
                // from Wasm (a host function, a runtime builtin) or a trampoline.
                if i == 0 {
                    stack.push(self.frame("(host)".into(), String::new()));
                }
                continue;
            };
            let name = match module.func_name(function.func_index) {
                Some(name) => name.to_string(),
                None => format!("wasm-function[{}]", function.func_index),
            };
            let file = module.module_name.clone().unwrap_or_default();
            stack.push(self.frame(name, file));
        }
        stack.reverse();
        self.samples.push((sample.time, stack));
    }

    /// How many samples were taken.
    pub fn samples(&self) -> usize {
        self.samples.len()
    }

    /// The names of the frames of sample `i`, outermost first.
    pub fn sample_stack(&self, i: usize) -> Option<Vec<&str>> {
        let (_, stack) = self.samples.get(i)?;
        Some(stack.iter().map(|&f| self.frames[f].0.as_str()).collect())
    }

    /// Writes the profile in speedscope's JSON format
    /// (<https://www.speedscope.app/file-format-schema.json>): one sampled
    /// profile named `name`, each sample weighted by the time since the one
    /// before it (about the sampling interval), in milliseconds.
    pub fn write_speedscope(&self, name: &str, mut out: impl Write) -> std::io::Result<()> {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let end_ms = self.samples.last().map_or(0.0, |(time, _)| ms(*time));
        write!(
            out,
            "{{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\
             \"exporter\":\"wazerox {}\",\"name\":{},\"activeProfileIndex\":0,\
             \"shared\":{{\"frames\":[",
            env!("CARGO_PKG_VERSION"),
            json_string(name)
        )?;
        for (i, (frame, file)) in self.frames.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            write!(out, "{comma}{{\"name\":{}", json_string(frame))?;
            if !file.is_empty() {
                write!(out, ",\"file\":{}", json_string(file))?;
            }
            write!(out, "}}")?;
        }
        write!(
            out,
            "]}},\"profiles\":[{{\"type\":\"sampled\",\"name\":{},\"unit\":\"milliseconds\",\
             \"startValue\":0,\"endValue\":{end_ms},\"samples\":[",
            json_string(name)
        )?;
        for (i, (_, stack)) in self.samples.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            let frames: Vec<String> = stack.iter().map(usize::to_string).collect();
            write!(out, "{comma}[{}]", frames.join(","))?;
        }
        write!(out, "],\"weights\":[")?;
        let mut previous = Duration::ZERO;
        for (i, (time, _)) in self.samples.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            write!(out, "{comma}{}", ms(time.saturating_sub(previous)))?;
            previous = *time;
        }
        writeln!(out, "]}}]}}")
    }
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if u32::from(c) < 0x20 => quoted.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(super::json_string("a\"b\\c\nd"), "\"a\\\"b\\\\c\\u000ad\"");
    }
}
