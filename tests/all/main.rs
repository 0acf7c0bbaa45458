//! Integration tests of the public API, one module per feature.

mod api;
mod artifact;
mod checkpoint;
mod interrupt;
mod limits;
mod relaxed_simd;
mod simd;
mod tail_calls;
mod thread_group;
mod threads;
mod traps;
mod wasi;
