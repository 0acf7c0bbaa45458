//! The grouped `KEY[=VAL][,KEY[=VAL]...]` options of `run` and `compile`, spelled
//! as wasmtime spells them: `-W` (Wasm features and limits), `-S` (WASI), `-C`
//! (code generation) and `-O` (optimization and memory layout). `-X help` lists a
//! group. A key wazerox does not know, or knows but cannot honour (a wasmtime
//! option for the component model, WASI preview2, Winch...), is an error that
//! says so: a flag is never accepted and then ignored.

use std::time::Duration;

/// How a key takes its value, for parsing and for `-X help`.
#[derive(Clone, Copy)]
enum Kind {
    /// `KEY`, `KEY=y|n` (also yes/no, true/false, 1/0).
    Bool,
    /// `KEY=N`: a count or a size in bytes (`64K`, `512M`, `4G` allowed).
    Number,
    /// `KEY=500ms|2s|1m`.
    Duration,
    /// `KEY=TEXT`.
    Text,
}

/// One key of a group: its name, how it takes a value, what it does.
struct Key {
    name: &'static str,
    kind: Kind,
    help: &'static str,
}

const fn key(name: &'static str, kind: Kind, help: &'static str) -> Key {
    Key { name, kind, help }
}

/// `-W`: the Wasm proposals wazerox implements, and limits on a run.
const WASM: &[Key] = &[
    key("simd", Kind::Bool, "fixed-width SIMD (v128); on by default"),
    key("relaxed-simd", Kind::Bool, "relaxed SIMD; on by default"),
    key(
        "relaxed-simd-deterministic",
        Kind::Bool,
        "relaxed SIMD computes the same results on every host",
    ),
    key(
        "bulk-memory",
        Kind::Bool,
        "bulk memory operations; on by default",
    ),
    key(
        "reference-types",
        Kind::Bool,
        "reference types; on by default",
    ),
    key("multi-value", Kind::Bool, "multiple results; on by default"),
    key(
        "multi-memory",
        Kind::Bool,
        "several memories; on by default",
    ),
    key(
        "memory64",
        Kind::Bool,
        "64-bit memories and tables; on by default",
    ),
    key(
        "custom-page-sizes",
        Kind::Bool,
        "one-byte pages; on by default",
    ),
    key(
        "threads",
        Kind::Bool,
        "shared memories and atomics; on by default",
    ),
    key("tail-call", Kind::Bool, "return_call*; on by default"),
    key(
        "extended-const",
        Kind::Bool,
        "extended constant expressions; on by default",
    ),
    key(
        "wide-arithmetic",
        Kind::Bool,
        "128-bit arithmetic; on by default",
    ),
    key(
        "exceptions",
        Kind::Bool,
        "exception handling (exnref); on by default",
    ),
    key(
        "legacy-exceptions",
        Kind::Bool,
        "the legacy exception encoding (try/catch/rethrow) that LLVM emits; on by default (wazerox)",
    ),
    key(
        "function-references",
        Kind::Bool,
        "typed function references",
    ),
    key(
        "gc",
        Kind::Bool,
        "garbage-collected types (docs/gc.md; array operators are not implemented yet)",
    ),
    key(
        "fuel",
        Kind::Number,
        "give the program N fuel (each thread); out of fuel traps",
    ),
    key(
        "epoch-interruption",
        Kind::Bool,
        "compile epoch checks into the code",
    ),
    key(
        "max-wasm-stack",
        Kind::Number,
        "native stack Wasm code may use, in bytes",
    ),
    key(
        "max-memory-size",
        Kind::Number,
        "largest size of each memory and table, in bytes",
    ),
    key(
        "timeout",
        Kind::Duration,
        "end the program after this long (exit 134)",
    ),
];

/// `-S`: WASI options wazerox honours (preview1, WASIX and wasi-threads are all
/// provided; only what a program imports is used).
const WASI: &[Key] = &[
    key(
        "cli",
        Kind::Bool,
        "WASI preview1 (always provided: n is an error)",
    ),
    key(
        "threads",
        Kind::Bool,
        "wasi-threads (thread-spawn); y by default when imported",
    ),
    key("inherit-env", Kind::Bool, "pass the whole host environment"),
    key(
        "inherit-stdin",
        Kind::Bool,
        "the program reads this process's stdin; y by default",
    ),
    key(
        "inherit-stdout",
        Kind::Bool,
        "the program writes this process's stdout; y by default",
    ),
    key(
        "inherit-stderr",
        Kind::Bool,
        "the program writes this process's stderr; y by default",
    ),
    key(
        "tcplisten",
        Kind::Text,
        "a listening socket on ADDR:PORT for sock_accept",
    ),
    key(
        "max-threads",
        Kind::Number,
        "threads running at once, at most (wazerox; default 4096)",
    ),
];

/// `-C`: code generation.
const CODEGEN: &[Key] = &[
    key(
        "compiler",
        Kind::Text,
        "the code generator: cranelift (the only one)",
    ),
    key(
        "cache",
        Kind::Bool,
        "cache compiled code in $XDG_CACHE_HOME/wazerox (or ~/.cache/wazerox); off by default",
    ),
    key(
        "compilation",
        Kind::Text,
        "when `run` compiles functions: auto (the default: eager for a code section under \
         1 MiB, else lazy), eager, lazy (on first call) or lazy-fast (on first call, \
         cheapest code) (wazerox)",
    ),
    key(
        "background-compilation",
        Kind::Bool,
        "with lazy compilation, compile likely callees on a background thread; off by default \
         (wazerox)",
    ),
    key(
        "parallel-compilation",
        Kind::Bool,
        "compile functions on every core; on by default",
    ),
    key(
        "cranelift-debug-verifier",
        Kind::Bool,
        "run Cranelift's IR verifier (slow)",
    ),
    key(
        "spectre",
        Kind::Bool,
        "Spectre guards on explicit bounds checks; on by default (wazerox)",
    ),
    key(
        "baseline-cpu",
        Kind::Bool,
        "code for the architecture's baseline CPU, not this one's features (wazerox)",
    ),
];

/// `-O`: optimization and memory layout.
const OPTIMIZE: &[Key] = &[
    key(
        "opt-level",
        Kind::Text,
        "0 (none), 1 or 2 (speed, the default), s (speed and size)",
    ),
    key(
        "memory-reservation",
        Kind::Number,
        "address space reserved per memory, in bytes",
    ),
    key(
        "memory-guard-size",
        Kind::Number,
        "guard region after each memory, in bytes",
    ),
    key(
        "pooling-allocator",
        Kind::Bool,
        "instantiate from a pool of preallocated memories",
    ),
];

/// What `-W`, `-S`, `-C` and `-O` asked for. `None`: the default.
#[derive(Default, Debug)]
pub struct Options {
    pub features: Vec<(&'static str, bool)>,
    pub relaxed_simd_deterministic: Option<bool>,
    pub fuel: Option<u64>,
    pub epoch_interruption: Option<bool>,
    pub max_wasm_stack: Option<usize>,
    pub max_memory_size: Option<usize>,
    pub timeout: Option<Duration>,
    pub wasi_threads: Option<bool>,
    pub inherit_env: bool,
    pub inherit_stdin: Option<bool>,
    pub inherit_stdout: Option<bool>,
    pub inherit_stderr: Option<bool>,
    pub tcplisten: Vec<String>,
    pub max_threads: Option<usize>,
    pub cache: Option<bool>,
    pub compilation: Option<Compilation>,
    pub background_compilation: Option<bool>,
    pub parallel_compilation: Option<bool>,
    pub verifier: Option<bool>,
    pub spectre: Option<bool>,
    pub baseline_cpu: Option<bool>,
    pub opt_level: Option<&'static str>,
    pub memory_reservation: Option<u64>,
    pub memory_guard_size: Option<u64>,
    pub pooling_allocator: Option<bool>,
}

/// `-C compilation=`: a strategy, or `auto` (`run` chooses by the module's size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compilation {
    Auto,
    Fixed(wazerox::CompilationStrategy),
}

/// A parsed value.
enum Value {
    Bool(bool),
    Number(u64),
    Duration(Duration),
    Text(String),
}

/// The groups in the order `help` lists them: flag, long name, keys.
const GROUPS: [(char, &str, &[Key]); 4] = [
    ('W', "wasm", WASM),
    ('S', "wasi", WASI),
    ('C', "codegen", CODEGEN),
    ('O', "optimize", OPTIMIZE),
];

/// Whether any of the groups' values is `help`: then the caller prints [`help`].
pub fn wants_help(values: &[String]) -> bool {
    values
        .iter()
        .any(|v| v.split(',').any(|item| item == "help"))
}

/// The keys of group `flag` (`'W'`...), one per line, as `-W help` prints them.
pub fn help(flag: char) -> String {
    let (_, long, keys) = GROUPS.iter().find(|(f, ..)| *f == flag).expect("a group");
    let mut text = format!("Available -{flag} / --{long} options:\n\n");
    for key in *keys {
        let value = match key.kind {
            Kind::Bool => "[=y|n]",
            Kind::Number => "=N",
            Kind::Duration => "=N|Nms|Ns|Nm",
            Kind::Text => "=VAL",
        };
        let spelled = format!("{}{value}", key.name);
        text.push_str(&format!("  -{flag} {spelled:>36} -- {}\n", key.help));
    }
    text
}

impl Options {
    /// Adds the values given to group `flag` (each `KEY[=VAL][,...]`).
    pub fn parse(&mut self, flag: char, values: &[String]) -> Result<(), String> {
        let (_, long, keys) = GROUPS.iter().find(|(f, ..)| *f == flag).expect("a group");
        for item in values.iter().flat_map(|v| v.split(',')) {
            let (name, text) = match item.split_once('=') {
                Some((name, text)) => (name, Some(text)),
                None => (item, None),
            };
            let bad = |why: String| format!("-{flag} / --{long} {item}: {why}");
            let Some(key) = keys.iter().find(|k| k.name == name) else {
                return Err(bad(format!("unknown option `{name}` (see `-{flag} help`)")));
            };
            let value = parse_value(key.kind, text).map_err(bad)?;
            if flag == 'S' && key.name == "threads" {
                // Also a `-W` feature: here, whether to link wasi-threads.
                let Value::Bool(b) = value else {
                    unreachable!("a Bool key")
                };
                self.wasi_threads = Some(b);
                continue;
            }
            self.set(key.name, value).map_err(bad)?;
        }
        Ok(())
    }

    fn set(&mut self, name: &'static str, value: Value) -> Result<(), String> {
        use Value::*;
        match (name, value) {
            ("relaxed-simd-deterministic", Bool(b)) => self.relaxed_simd_deterministic = Some(b),
            ("fuel", Number(n)) => self.fuel = Some(n),
            ("epoch-interruption", Bool(b)) => self.epoch_interruption = Some(b),
            ("max-wasm-stack", Number(n)) => self.max_wasm_stack = Some(to_usize(n)?),
            ("max-memory-size", Number(n)) => self.max_memory_size = Some(to_usize(n)?),
            ("timeout", Duration(d)) => self.timeout = Some(d),
            ("cli", Bool(false)) => {
                return Err("unsupported: wazerox always provides WASI preview1".into());
            }
            ("cli", Bool(true)) => {}
            ("inherit-env", Bool(b)) => self.inherit_env = b,
            ("inherit-stdin", Bool(b)) => self.inherit_stdin = Some(b),
            ("inherit-stdout", Bool(b)) => self.inherit_stdout = Some(b),
            ("inherit-stderr", Bool(b)) => self.inherit_stderr = Some(b),
            ("tcplisten", Text(address)) => self.tcplisten.push(address),
            ("max-threads", Number(n)) => self.max_threads = Some(to_usize(n)?),
            ("compiler", Text(name)) if name == "cranelift" => {}
            ("compiler", Text(name)) => {
                return Err(format!(
                    "unsupported: wazerox compiles with cranelift only, not `{name}`"
                ));
            }
            ("cache", Bool(b)) => self.cache = Some(b),
            ("compilation", Text(name)) => {
                self.compilation = Some(match name.as_str() {
                    "auto" => Compilation::Auto,
                    "eager" => Compilation::Fixed(wazerox::CompilationStrategy::Eager),
                    "lazy" => Compilation::Fixed(wazerox::CompilationStrategy::Lazy),
                    "lazy-fast" => Compilation::Fixed(wazerox::CompilationStrategy::LazyFast),
                    _ => return Err("expected auto, eager, lazy or lazy-fast".into()),
                })
            }
            ("background-compilation", Bool(b)) => self.background_compilation = Some(b),
            ("parallel-compilation", Bool(b)) => self.parallel_compilation = Some(b),
            ("cranelift-debug-verifier", Bool(b)) => self.verifier = Some(b),
            ("spectre", Bool(b)) => self.spectre = Some(b),
            ("baseline-cpu", Bool(b)) => self.baseline_cpu = Some(b),
            ("opt-level", Text(level)) => {
                self.opt_level = Some(match level.as_str() {
                    "0" => "none",
                    "1" | "2" => "speed",
                    "s" => "speed_and_size",
                    _ => return Err("expected 0, 1, 2 or s".into()),
                })
            }
            ("memory-reservation", Number(n)) => self.memory_reservation = Some(n),
            ("memory-guard-size", Number(n)) => self.memory_guard_size = Some(n),
            ("pooling-allocator", Bool(b)) => self.pooling_allocator = Some(b),
            (feature, Bool(b)) => self.features.push((feature, b)),
            (name, _) => unreachable!("`{name}`: its kind and its setter disagree"),
        }
        Ok(())
    }

    /// Applies the engine-level options to `config`.
    pub fn configure(&self, config: &mut wazerox::Config) -> Result<(), String> {
        for &(feature, enable) in &self.features {
            match feature {
                "simd" => config.wasm_simd(enable),
                "relaxed-simd" => config.wasm_relaxed_simd(enable),
                "bulk-memory" => config.wasm_bulk_memory(enable),
                "reference-types" => config.wasm_reference_types(enable),
                "multi-value" => config.wasm_multi_value(enable),
                "multi-memory" => config.wasm_multi_memory(enable),
                "memory64" => config.wasm_memory64(enable),
                "custom-page-sizes" => config.wasm_custom_page_sizes(enable),
                "threads" => config.wasm_threads(enable),
                "tail-call" => config.wasm_tail_call(enable),
                "extended-const" => config.wasm_extended_const(enable),
                "wide-arithmetic" => config.wasm_wide_arithmetic(enable),
                "exceptions" => config.wasm_exceptions(enable),
                "legacy-exceptions" => config.wasm_legacy_exceptions(enable),
                "function-references" => config.wasm_function_references(enable),
                "gc" => config.wasm_gc(enable),
                other => return Err(format!("-W {other}: not a feature")),
            };
        }
        if let Some(b) = self.relaxed_simd_deterministic {
            config.relaxed_simd_deterministic(b);
        }
        if let Some(bytes) = self.max_wasm_stack {
            config.max_wasm_stack(bytes);
        }
        if let Some(b) = self.parallel_compilation {
            config.compile_threads(if b { 0 } else { 1 });
        }
        if let Some(b) = self.verifier {
            config.cranelift_verifier(b);
        }
        if let Some(b) = self.spectre {
            config.spectre_guards(b);
        }
        if let Some(b) = self.baseline_cpu {
            config.cranelift_baseline_cpu(b);
        }
        if let Some(level) = self.opt_level {
            config.cranelift_opt_level(level);
        }
        if let Some(bytes) = self.memory_reservation {
            config.memory_reservation(bytes);
        }
        if let Some(bytes) = self.memory_guard_size {
            config.memory_guard_size(bytes);
        }
        if self.pooling_allocator == Some(true) {
            config.allocation_strategy(wazerox::InstanceAllocationStrategy::pooling());
        }
        Ok(())
    }
}

fn to_usize(n: u64) -> Result<usize, String> {
    usize::try_from(n).map_err(|_| format!("{n} is too large"))
}

fn parse_value(kind: Kind, text: Option<&str>) -> Result<Value, String> {
    match (kind, text) {
        (Kind::Bool, None) => Ok(Value::Bool(true)),
        (Kind::Bool, Some("y" | "yes" | "true" | "1")) => Ok(Value::Bool(true)),
        (Kind::Bool, Some("n" | "no" | "false" | "0")) => Ok(Value::Bool(false)),
        (Kind::Bool, Some(_)) => Err("expected y or n".into()),
        (Kind::Number, Some(text)) => parse_size(text).map(Value::Number),
        (Kind::Duration, Some(text)) => parse_duration(text).map(Value::Duration),
        (Kind::Text, Some(text)) if !text.is_empty() => Ok(Value::Text(text.to_string())),
        (_, _) => Err("needs a value".into()),
    }
}

/// `N`, or `N` followed by K, M or G (binary multiples); `_` separators allowed.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not a number (e.g. 65536, 64K, 4G)");
    let digits = text.replace('_', "");
    let (number, shift) = match digits.char_indices().last() {
        Some((i, 'k' | 'K')) => (&digits[..i], 10),
        Some((i, 'm' | 'M')) => (&digits[..i], 20),
        Some((i, 'g' | 'G')) => (&digits[..i], 30),
        _ => (&digits[..], 0),
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).ok_or_else(bad)
}

/// `500ms`, `2s`, `1m`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}`: expected a duration such as 500ms, 2s or 1m");
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}
