//! Which native profiler an engine tells about its code (`Config::profiler`).

use crate::engine::Engine;
use wazerox_runtime::profiling::{self, CodeRecord};

/// How compiled functions are made known to a native profiler such as `perf`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ProfilingStrategy {
    /// None (the default).
    #[default]
    None,
    /// Append each function to `/tmp/perf-PID.map`, which `perf report` reads.
    PerfMap,
    /// Append each function, with its code, to `/tmp/jit-PID.dump`, for
    /// `perf record -k mono` followed by `perf inject --jit`.
    JitDump,
}

impl ProfilingStrategy {
    /// Opens the profiler's file, so that a configuration that cannot write it
    /// fails when the engine is made rather than silently later.
    pub(crate) fn open(self) -> std::io::Result<()> {
        match self {
            ProfilingStrategy::None => Ok(()),
            ProfilingStrategy::PerfMap => profiling::write_perf_map(&[]),
            // SAFETY: no records, so no code is read.
            ProfilingStrategy::JitDump => unsafe { profiling::write_jitdump(&[]) },
        }
    }
}

/// Tells the engine's profiler about newly mapped code: `(name, address, size)` of
/// each function. Write failures after the engine opened the file are ignored:
/// profiling must never make running code fail.
pub(crate) fn register(engine: &Engine, functions: impl Iterator<Item = (String, usize, usize)>) {
    let strategy = engine.config().profiler;
    if strategy == ProfilingStrategy::None {
        return;
    }
    let functions: Vec<(String, usize, usize)> = functions.collect();
    let records: Vec<CodeRecord<'_>> = functions
        .iter()
        .map(|(name, address, size)| CodeRecord {
            name,
            address: *address,
            size: *size,
        })
        .collect();
    let _ = match strategy {
        ProfilingStrategy::None => Ok(()),
        ProfilingStrategy::PerfMap => profiling::write_perf_map(&records),
        // SAFETY: callers pass ranges of code they have just mapped executable and
        // keep mapped.
        ProfilingStrategy::JitDump => unsafe { profiling::write_jitdump(&records) },
    };
}
