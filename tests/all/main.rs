//! Integration tests of the public API, one module per feature.

mod api;
mod artifact;
mod checkpoint;
mod interrupt;
mod limits;
mod memories;
mod simd;
mod thread_group;
mod threads;
mod traps;
mod wasi;
