//! WASI preview1 for wazerox, written only against the public `wazerox` API.
//!
//! - [`WasiCtx`] is one program's view of the world: args, env, and a descriptor
//!   table of stdio streams, files, directories and sockets. It is `Send + Sync`,
//!   shared by every thread of a program; blocking calls can be cancelled from any
//!   thread ([`WasiCtx::cancel`]).
//! - [`WasiCtxBuilder`] chooses exactly what the guest may see: preopened
//!   directories (read-only if asked) and sockets, inherited, file-backed or
//!   captured stdio, args and env.
//! - [`add_to_linker`] defines every `wasi_snapshot_preview1` function.
//! - Paths resolve inside the preopens only (`path.rs`).
//! - `proc_exit` ends the run with an [`I32Exit`] error, so embedders can tell an exit
//!   from a trap.
//!
//! ```
//! use std::sync::Arc;
//! use wazerox::{Engine, Linker, Module, Store};
//! use wazerox_wasi::{I32Exit, MemoryPipe, WasiCtx, WasiCtxBuilder};
//!
//! let engine = Engine::default();
//! let module = Module::new(&engine, r#"(module
//!     (import "wasi_snapshot_preview1" "fd_write"
//!       (func $fd_write (param i32 i32 i32 i32) (result i32)))
//!     (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
//!     (memory (export "memory") 1)
//!     (data (i32.const 8) "\10\00\00\00\03\00\00\00hi\n")   ;; iovec -> "hi\n"
//!     (func (export "_start")
//!       (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 0)))
//!       (call $exit (i32.const 3))))"#)?;
//! let stdout = MemoryPipe::new();
//! let ctx = WasiCtxBuilder::new().arg("hello").stdout_pipe(&stdout).build();
//! let mut store = Store::new(&engine, ctx);
//! let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
//! wazerox_wasi::add_to_linker(&mut linker, |ctx| ctx)?;
//! let instance = linker.instantiate(&mut store, &module)?;
//! let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
//! let error = start.call(&mut store, ()).unwrap_err();
//! assert_eq!(error.downcast_ref::<I32Exit>(), Some(&I32Exit(3)));
//! assert_eq!(stdout.contents(), b"hi\n");
//! # Ok::<(), wazerox::Error>(())
//! ```
//!
//! Modules: `ctx` (context, builder, descriptor table), `preview1` (the linker
//! table; args, env, clocks, random, proc), `fd` (`fd_*`), `fs` (`path_*`), `path`
//! (sandboxed resolution), `io` (stream reads and writes), `poll` (`poll_oneoff`),
//! `sock` (`sock_*`), `rights`, `errno`, `memory` (bounds-checked guest memory),
//! `clock`, `sys` (every `unsafe` system call); `wasix` (`wasix_32v1`: checkpoints,
//! and in `wasix/` futexes, threads, signals, dup/pipe, cwd and process ids) and
//! `threads` (wasi-threads: `thread-spawn`, and the `ThreadGroup` that ends a program
//! from any of its threads, WASIX threads included).

#![warn(missing_docs)]

mod clock;
mod ctx;
pub mod errno;
mod fd;
mod fs;
mod io;
mod memory;
mod path;
mod poll;
mod preview1;
pub mod rights;
mod sock;
mod sys;
pub mod threads;
pub mod wasix;

pub use ctx::{MemoryPipe, WasiCtx, WasiCtxBuilder};
pub use errno::Errno;
pub use preview1::add_to_linker;

/// `proc_exit(code)` was called: the program ended with `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct I32Exit(pub i32);

impl std::fmt::Display for I32Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "program exited with code {}", self.0)
    }
}

impl std::error::Error for I32Exit {}

/// A blocking WASI call returned because the program's context was cancelled
/// ([`WasiCtx::cancel`]); the Wasm call that made it ends with this error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a blocking WASI call was cancelled by the host")
    }
}

impl std::error::Error for Cancelled {}
