//! The VM underneath wazerox.
//!
//! This crate owns everything that touches raw memory, signals and native stacks:
//! linear memories reserved with guard regions, executable code memory, the registry
//! of code ranges consulted by the signal handler, trap catching, VMContext layout and
//! instance state, tables, and the builtins compiled code calls into. It reads
//! `wazerox-environ`'s plain data types (`ModuleInfo`, `VMOffsets`, `TrapCode`) and
//! never depends on the frontend, the compiler or Cranelift. Most of the project's `unsafe` lives here, in small
//! modules whose blocks carry `// SAFETY:` comments.

mod builtins;
pub mod checkpoint;
pub mod code_memory;
pub mod code_registry;
pub mod exceptions;
pub mod fiber;
pub mod gc;
pub mod gc_array;
pub mod instance;
pub mod instance_pool;
pub mod lazy;
pub mod libcalls;
pub mod memory;
pub mod memory_image;
pub mod mmap;
pub mod pagemap;
pub mod parking;
pub mod pooling;
pub mod profiling;
pub mod sampling;
pub mod table;
pub mod table_image;
pub mod traphandlers;
pub mod vmcontext;

pub use wazerox_environ::TrapCode;
