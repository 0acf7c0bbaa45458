//! Integration tests of the public API, one module per feature.

mod api;
mod artifact;
mod checkpoint;
mod exceptions;
mod interrupt;
mod limits;
mod simd;
mod thread_group;
mod threads;
mod traps;
mod wasi;
