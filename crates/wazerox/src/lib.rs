//! wazerox: a WebAssembly runtime that compiles Wasm to native code with Cranelift.
//!
//! The embedding API mirrors the shape embedders know from wasmtime:
//!
//! ```
//! use wazerox::{Engine, Module, Store, Linker, Caller};
//!
//! let engine = Engine::default();
//! let module = Module::new(&engine, r#"
//!     (module
//!       (import "host" "double" (func $double (param i32) (result i32)))
//!       (func (export "run") (param i32) (result i32)
//!         local.get 0 call $double i32.const 1 i32.add))
//! "#)?;
//! let mut store = Store::new(&engine, 0u32);
//! let mut linker = Linker::new(&engine);
//! linker.func_wrap("host", "double", |mut caller: Caller<'_, u32>, x: i32| {
//!     *caller.data_mut() += 1;
//!     x * 2
//! })?;
//! let instance = linker.instantiate(&mut store, &module)?;
//! let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
//! assert_eq!(run.call(&mut store, 20)?, 41);
//! assert_eq!(*store.data(), 1);
//! # Ok::<(), wazerox::Error>(())
//! ```
//!
//! Cargo features: `cranelift` (default) compiles Wasm; without it (`runtime` only)
//! the crate loads and runs precompiled artifacts ([`Module::deserialize`]) and links
//! no code generator. `wat` (default) accepts the text format.
//!
//! Layout of this crate: `engine` (configuration, compiler, type registry, shared
//! trampolines), `codegen` (what a build with or without a compiler knows of
//! generated code), `module` (compiled code), `store` (everything instantiated, owned
//! per store), `instance`, `func` (calls in both directions), `externals` (memories,
//! tables, globals), `limits` (resource limiter), `linker`, `values`, `error`,
//! `interrupt` (stopping a store's code from another thread), `async_call`
//! (async calls on fibers and async host functions, docs/async.md).

#![warn(missing_docs)]

mod artifact;
mod async_call;
mod atomics;
#[cfg(feature = "cranelift")]
mod cache;
mod checkpoint;
mod codegen;
mod debug;
mod engine;
mod error;
mod externals;
mod func;
mod gc;
mod guest_profiler;
mod instance;
mod interrupt;
#[cfg(feature = "cranelift")]
mod lazy;
mod limits;
mod linker;
mod module;
mod profiling;
#[cfg(feature = "cranelift")]
mod speculate;
mod store;
mod tag;
mod values;

pub use async_call::Cancelled;
pub use atomics::WaitResult;
pub use checkpoint::{Restore, Snapshot};
pub use debug::WasmBacktraceDetails;
pub use engine::{CompilationStrategy, Config, Engine, InstanceAllocationStrategy, PoolingConfig};
pub use error::{Error, ErrorKind, FrameInfo, FrameSymbol, Trap};
pub use externals::{Extern, Global, Memory, SharedMemory, Table};
pub use func::{Caller, Func, IntoFunc, TypedFunc, WasmParams, WasmResults, WasmRet, WasmTy};
pub use gc::{AnyRef, ArrayRef, StructRef};
pub use guest_profiler::{GuestProfile, GuestProfiler};
pub use instance::Instance;
pub use interrupt::InterruptHandle;
pub use limits::{ResourceLimiter, StoreLimits, StoreLimitsBuilder, TABLE_ELEMENT_BYTES};
pub use linker::{InstancePre, Linker};
pub use module::{ExportType, ImportType, Module};
pub use profiling::ProfilingStrategy;
pub use store::{AsContext, AsContextMut, GcHeapStats, Store, StoreContext, StoreContextMut};
pub use tag::{ExnRef, Tag};
pub use values::{ExternRef, ExternType, GlobalType, MemoryType, Mutability, Ref, TableType, Val};
pub use wazerox_environ::{ConcreteType, FuncType, HeapType, RefKind, RefType, TrapCode, ValType};

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
