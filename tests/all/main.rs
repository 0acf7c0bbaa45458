//! Integration tests of the public API, one module per feature.

mod api;
mod artifact;
mod async_calls;
mod backtraces;
mod checkpoint;
mod dynamic_host;
mod exceptions;
mod function_references;
mod gc;
mod hostile;
mod interrupt;
mod lazy;
mod limits;
mod memories;
mod pooling;
mod profiling;
mod relaxed_simd;
mod shared_memory;
mod simd;
mod tail_calls;
mod thread_group;
mod threads;
mod traps;
mod wasi;
mod wasix;
