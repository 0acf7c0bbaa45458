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
//! Modules: `ctx` (context, builder, descriptor table), `preview1` (the linker
//! table; args, env, clocks, random, proc), `fd` (`fd_*`), `fs` (`path_*`), `path`
//! (sandboxed resolution), `io` (stream reads and writes), `poll` (`poll_oneoff`),
//! `sock` (`sock_*`), `rights`, `errno`, `memory` (bounds-checked guest memory),
//! `clock`, `sys` (every `unsafe` system call); `wasix` (checkpoints) and `threads`
//! (wasi-threads).

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
