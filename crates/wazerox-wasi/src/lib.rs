//! WASI preview1 for wazerox, written only against the public `wazerox` API.
//!
//! - [`WasiCtx`] is one program's view of the world: args, env, and a descriptor
//!   table of stdio streams, files and directories. It is `Send + Sync` with a lock
//!   per table (held only to look a descriptor up, never across a blocking call), so
//!   every thread of a program shares one context.
//! - [`WasiCtxBuilder`] chooses exactly what the guest may see: preopened
//!   directories (read-only if asked), inherited or captured stdio, args and env.
//! - [`add_to_linker`] defines every `wasi_snapshot_preview1` function.
//! - Paths are resolved inside the preopens only (see `path.rs`).
//! - `proc_exit` ends the run with an [`I32Exit`] error, so embedders can tell an exit
//!   from a trap.

pub mod errno;
mod path;
mod preview1;
mod sys;
pub mod threads;
pub mod wasix;

pub use errno::Errno;
pub use preview1::add_to_linker;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Cursor, Read, Write};
use std::sync::{Arc, Mutex};

/// `proc_exit(code)` was called: the program ended with `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct I32Exit(pub i32);

impl std::fmt::Display for I32Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "program exited with code {}", self.0)
    }
}

impl std::error::Error for I32Exit {}

/// An in-memory byte pipe, for capturing a guest's output or feeding its input.
#[derive(Clone, Default)]
pub struct MemoryPipe(Arc<Mutex<Vec<u8>>>);

impl MemoryPipe {
    pub fn new() -> Self {
        Self::default()
    }
    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}

pub(crate) enum Input {
    Inherit,
    Bytes(Mutex<Cursor<Vec<u8>>>),
    File(File),
}

pub(crate) enum Output {
    Inherit(i32),
    Pipe(MemoryPipe),
    File(File),
}

impl Input {
    pub(crate) fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Input::Inherit => (&*sys::borrow_stdio(0)).read(buf),
            Input::Bytes(cursor) => cursor.lock().unwrap().read(buf),
            Input::File(file) => (&*file).read(buf),
        }
    }
}

impl Output {
    pub(crate) fn write(&self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Output::Inherit(fd) => (&*sys::borrow_stdio(*fd)).write(buf),
            Output::Pipe(pipe) => {
                pipe.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            Output::File(file) => (&*file).write(buf),
        }
    }
}

pub(crate) enum FdKind {
    Stdin(Input),
    Stdout(Output),
    File(File),
    Dir {
        dir: File,
        /// The guest-visible name, for preopens.
        preopen: Option<String>,
    },
}

pub(crate) struct FdEntry {
    pub kind: FdKind,
    /// WASI fdflags (append, nonblock, …) as last set.
    pub flags: Mutex<u16>,
    pub rights_base: Mutex<u64>,
    pub rights_inheriting: Mutex<u64>,
    pub read_only: bool,
}

/// All rights (preview1 defines 29 bits).
pub(crate) const ALL_RIGHTS: u64 = (1 << 29) - 1;

impl FdEntry {
    pub(crate) fn new(kind: FdKind, read_only: bool) -> Arc<FdEntry> {
        Arc::new(FdEntry {
            kind,
            flags: Mutex::new(0),
            rights_base: Mutex::new(ALL_RIGHTS),
            rights_inheriting: Mutex::new(ALL_RIGHTS),
            read_only,
        })
    }
}

/// One program's WASI state, shared by all its threads.
pub struct WasiCtx {
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) fds: Mutex<HashMap<u32, Arc<FdEntry>>>,
    /// WASIX checkpoints of this program.
    pub snapshots: wasix::SnapshotTable,
    pub(crate) thread_spawner: std::sync::OnceLock<Arc<threads::ThreadSpawner>>,
}

impl WasiCtx {
    /// Enables `wasi.thread-spawn` for this program.
    pub fn set_thread_spawner(&self, spawner: Arc<threads::ThreadSpawner>) {
        let _ = self.thread_spawner.set(spawner);
    }
}

impl WasiCtx {
    pub(crate) fn fd(&self, fd: i32) -> Result<Arc<FdEntry>, Errno> {
        self.fds
            .lock()
            .unwrap()
            .get(&(fd as u32))
            .cloned()
            .ok_or(errno::BADF)
    }

    pub(crate) fn insert(&self, entry: Arc<FdEntry>) -> Result<u32, Errno> {
        let mut fds = self.fds.lock().unwrap();
        let fd = (3..u32::MAX)
            .find(|n| !fds.contains_key(n))
            .ok_or(errno::MFILE)?;
        fds.insert(fd, entry);
        Ok(fd)
    }
}

/// Builds a [`WasiCtx`]: nothing is visible to the guest unless added here.
pub struct WasiCtxBuilder {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Input,
    stdout: Output,
    stderr: Output,
    preopens: Vec<(File, String, bool)>,
}

impl Default for WasiCtxBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl WasiCtxBuilder {
    /// No args, no env, no preopens; stdin empty, stdout/stderr discarded into pipes.
    pub fn new() -> Self {
        WasiCtxBuilder {
            args: Vec::new(),
            env: Vec::new(),
            stdin: Input::Bytes(Mutex::new(Cursor::new(Vec::new()))),
            stdout: Output::Pipe(MemoryPipe::new()),
            stderr: Output::Pipe(MemoryPipe::new()),
            preopens: Vec::new(),
        }
    }
    pub fn arg(&mut self, arg: impl Into<String>) -> &mut Self {
        self.args.push(arg.into());
        self
    }
    pub fn args(&mut self, args: impl IntoIterator<Item = impl Into<String>>) -> &mut Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
    pub fn env(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.env.push((name.into(), value.into()));
        self
    }
    /// Passes the host process's whole environment.
    pub fn inherit_env(&mut self) -> &mut Self {
        self.env.extend(std::env::vars());
        self
    }
    pub fn inherit_stdin(&mut self) -> &mut Self {
        self.stdin = Input::Inherit;
        self
    }
    pub fn inherit_stdout(&mut self) -> &mut Self {
        self.stdout = Output::Inherit(1);
        self
    }
    pub fn inherit_stderr(&mut self) -> &mut Self {
        self.stderr = Output::Inherit(2);
        self
    }
    pub fn inherit_stdio(&mut self) -> &mut Self {
        self.inherit_stdin().inherit_stdout().inherit_stderr()
    }
    pub fn stdin_bytes(&mut self, bytes: impl Into<Vec<u8>>) -> &mut Self {
        self.stdin = Input::Bytes(Mutex::new(Cursor::new(bytes.into())));
        self
    }
    pub fn stdin_file(&mut self, file: File) -> &mut Self {
        self.stdin = Input::File(file);
        self
    }
    pub fn stdout_pipe(&mut self, pipe: &MemoryPipe) -> &mut Self {
        self.stdout = Output::Pipe(pipe.clone());
        self
    }
    pub fn stderr_pipe(&mut self, pipe: &MemoryPipe) -> &mut Self {
        self.stderr = Output::Pipe(pipe.clone());
        self
    }
    pub fn stdout_file(&mut self, file: File) -> &mut Self {
        self.stdout = Output::File(file);
        self
    }
    /// Makes host directory `host` visible to the guest as `guest`.
    pub fn preopened_dir(
        &mut self,
        host: impl AsRef<std::path::Path>,
        guest: impl Into<String>,
        read_only: bool,
    ) -> std::io::Result<&mut Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(host)?;
        self.preopens.push((dir, guest.into(), read_only));
        Ok(self)
    }

    pub fn build(self) -> Arc<WasiCtx> {
        let mut fds = HashMap::new();
        fds.insert(0, FdEntry::new(FdKind::Stdin(self.stdin), false));
        fds.insert(1, FdEntry::new(FdKind::Stdout(self.stdout), false));
        fds.insert(2, FdEntry::new(FdKind::Stdout(self.stderr), false));
        for (i, (dir, guest, read_only)) in self.preopens.into_iter().enumerate() {
            fds.insert(
                3 + i as u32,
                FdEntry::new(
                    FdKind::Dir {
                        dir,
                        preopen: Some(guest),
                    },
                    read_only,
                ),
            );
        }
        Arc::new(WasiCtx {
            args: self.args,
            env: self.env,
            fds: Mutex::new(fds),
            snapshots: wasix::SnapshotTable::default(),
            thread_spawner: std::sync::OnceLock::new(),
        })
    }
}
