//! Integration tests of the public API, one module per feature.

mod api;
mod checkpoint;
mod threads;
mod traps;
mod wasi;
