//! The WASI context of one program ([`WasiCtx`]) and its builder.
//!
//! The descriptor table is one reader-writer lock held only to look an entry up
//! (shared), insert or remove it (exclusive); entries are `Arc`s whose mutable state (flags, rights) is atomic, so a thread
//! blocked reading stdin never holds a lock another thread needs.

use crate::errno::{self, Errno, Failure};
use crate::{rights, sys, threads, wasix};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Cursor, PipeReader, PipeWriter, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};
use wazerox::InterruptHandle;

/// An in-memory byte pipe, for capturing a guest's output.
#[derive(Clone, Default)]
pub struct MemoryPipe(Arc<Mutex<Vec<u8>>>);

impl MemoryPipe {
    /// An empty pipe.
    pub fn new() -> Self {
        Self::default()
    }
    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
    pub(crate) fn append(&self, bytes: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(bytes);
    }
}

/// Where standard input comes from.
pub(crate) enum Input {
    /// The host process's descriptor 0.
    Inherit,
    /// Fixed bytes, then end of file.
    Bytes(Mutex<Cursor<Vec<u8>>>),
    File(File),
}

/// Where standard output or error goes.
pub(crate) enum Output {
    /// The host process's descriptor 1 or 2.
    Inherit(RawFd),
    Pipe(MemoryPipe),
    File(File),
}

/// What a guest descriptor refers to.
pub(crate) enum FdKind {
    Stdin(Input),
    Stdout(Output),
    File(File),
    Dir {
        dir: File,
        /// The guest-visible name, for preopens.
        preopen: Option<String>,
    },
    /// A preopened listening socket (kept non-blocking on the host; blocking is
    /// emulated so that it can be cancelled).
    Listener(TcpListener),
    /// A connection accepted from a listener (non-blocking on the host, likewise).
    Stream(TcpStream),
}

impl FdKind {
    /// The host descriptor to `poll(2)` for readiness, for kinds that can block.
    pub(crate) fn pollable_fd(&self) -> Option<RawFd> {
        match self {
            FdKind::Stdin(Input::Inherit) => Some(0),
            FdKind::Stdin(Input::File(f)) | FdKind::Stdout(Output::File(f)) => Some(f.as_raw_fd()),
            FdKind::Stdout(Output::Inherit(fd)) => Some(*fd),
            FdKind::Listener(l) => Some(l.as_raw_fd()),
            FdKind::Stream(s) => Some(s.as_raw_fd()),
            _ => None,
        }
    }
}

/// WASI `fdflags`.
pub(crate) mod fdflags {
    pub const APPEND: u16 = 1;
    pub const DSYNC: u16 = 2;
    pub const NONBLOCK: u16 = 4;
    pub const RSYNC: u16 = 8;
    pub const SYNC: u16 = 16;
}

/// One entry of the descriptor table.
pub(crate) struct FdEntry {
    pub kind: FdKind,
    flags: AtomicU16,
    rights_base: AtomicU64,
    rights_inheriting: AtomicU64,
    /// Opened under a read-only preopen: every change answers `ROFS`.
    pub read_only: bool,
}

impl FdEntry {
    pub(crate) fn new(kind: FdKind, base: u64, inheriting: u64, read_only: bool) -> Arc<FdEntry> {
        Arc::new(FdEntry {
            kind,
            flags: AtomicU16::new(0),
            rights_base: AtomicU64::new(base),
            rights_inheriting: AtomicU64::new(inheriting),
            read_only,
        })
    }
    pub(crate) fn flags(&self) -> u16 {
        self.flags.load(Ordering::Relaxed)
    }
    pub(crate) fn set_flags(&self, flags: u16) {
        self.flags.store(flags, Ordering::Relaxed);
    }
    pub(crate) fn nonblocking(&self) -> bool {
        self.flags() & fdflags::NONBLOCK != 0
    }
    pub(crate) fn rights(&self) -> (u64, u64) {
        (
            self.rights_base.load(Ordering::Relaxed),
            self.rights_inheriting.load(Ordering::Relaxed),
        )
    }
    /// Drops rights; asking for a right not held is `NOTCAPABLE`.
    pub(crate) fn narrow_rights(&self, base: u64, inheriting: u64) -> Result<(), Errno> {
        let (have_base, have_inheriting) = self.rights();
        if base & !have_base != 0 || inheriting & !have_inheriting != 0 {
            return Err(errno::NOTCAPABLE);
        }
        self.rights_base.fetch_and(base, Ordering::Relaxed);
        self.rights_inheriting
            .fetch_and(inheriting, Ordering::Relaxed);
        Ok(())
    }
    /// `NOTCAPABLE` unless the descriptor holds every right in `needed`.
    pub(crate) fn require(&self, needed: u64) -> Result<(), Errno> {
        if self.rights().0 & needed == needed {
            Ok(())
        } else {
            Err(errno::NOTCAPABLE)
        }
    }
    /// As [`require`](Self::require), for a call that changes something: `ROFS` under
    /// a read-only preopen.
    pub(crate) fn require_change(&self, needed: u64) -> Result<(), Errno> {
        self.require(needed)?;
        if self.read_only {
            return Err(errno::ROFS);
        }
        Ok(())
    }
}

/// Cancellation of blocking calls: a flag and a pipe that becomes readable (and
/// stays so) when the flag is set, polled next to whatever a call waits for.
pub(crate) struct Cancel {
    flag: AtomicBool,
    wake: Option<(PipeReader, PipeWriter)>,
}

impl Cancel {
    fn new() -> Cancel {
        Cancel {
            flag: AtomicBool::new(false),
            // Without a pipe (descriptors exhausted), waits fall back to slices.
            wake: std::io::pipe().ok(),
        }
    }
    pub(crate) fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
    fn set(&self) {
        if !self.flag.swap(true, Ordering::AcqRel)
            && let Some((_, writer)) = &self.wake
        {
            let _ = (&*writer).write(&[1]);
        }
    }
    pub(crate) fn wake_fd(&self) -> Option<RawFd> {
        self.wake.as_ref().map(|(reader, _)| reader.as_raw_fd())
    }
}

thread_local! {
    /// The deadline of the store whose WASI call this thread is running, if any.
    static DEADLINE: std::cell::RefCell<Option<InterruptHandle>> =
        const { std::cell::RefCell::new(None) };
}

/// How often a wait looks at its store's deadline, when the store has one: epoch
/// deadlines are reached without any descriptor becoming ready.
const DEADLINE_CHECK: Duration = Duration::from_millis(10);

/// Runs `call` (one WASI call of the store `deadline` belongs to) so that its
/// waits end with `Failure::Interrupted` once the store's deadline is reached.
pub(crate) fn watching_deadline<R>(deadline: InterruptHandle, call: impl FnOnce() -> R) -> R {
    struct Restore(Option<InterruptHandle>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            DEADLINE.with(|d| *d.borrow_mut() = outer);
        }
    }
    let _restore = Restore(DEADLINE.with(|d| d.borrow_mut().replace(deadline)));
    call()
}

/// One program's WASI state, shared by all its threads (`Send + Sync`).
pub struct WasiCtx {
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) fds: RwLock<HashMap<u32, Arc<FdEntry>>>,
    pub(crate) cancel: Cancel,
    /// WASIX checkpoints of this program.
    pub snapshots: wasix::SnapshotTable,
    /// WASIX process state: working directory, process id, signals.
    pub(crate) wasix: wasix::WasixState,
    pub(crate) thread_group: OnceLock<Arc<threads::ThreadGroup>>,
}

impl WasiCtx {
    /// Enables `wasi.thread-spawn` for this program: threads join `group`. A
    /// program has one group; later calls are ignored.
    pub fn set_thread_group(&self, group: Arc<threads::ThreadGroup>) {
        let _ = self.thread_group.set(group);
    }

    /// Cancels every blocking call of this program, in every thread, now and from now
    /// on: `fd_read`/`sock_recv` waiting for input, `sock_accept`, `poll_oneoff`
    /// (and `sched_yield`) return a [`Cancelled`](crate::Cancelled) error, which ends
    /// the Wasm call that made them. Used to stop a program promptly.
    pub fn cancel(&self) {
        self.cancel.set();
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_set()
    }

    pub(crate) fn fd(&self, fd: i32) -> Result<Arc<FdEntry>, Errno> {
        self.fds
            .read()
            .unwrap()
            .get(&(fd as u32))
            .cloned()
            .ok_or(errno::BADF)
    }

    /// Adds a descriptor under the lowest free number (POSIX-like).
    pub(crate) fn insert(&self, entry: Arc<FdEntry>) -> Result<u32, Errno> {
        let mut fds = self.fds.write().unwrap();
        let fd = (3..i32::MAX as u32)
            .find(|n| !fds.contains_key(n))
            .ok_or(errno::MFILE)?;
        fds.insert(fd, entry);
        Ok(fd)
    }

    /// Waits until `fd` is readable (or writable); with `nonblocking`, answers `AGAIN`
    /// instead of waiting. Cancellable.
    pub(crate) fn wait_ready(
        &self,
        fd: RawFd,
        write: bool,
        nonblocking: bool,
    ) -> Result<(), Failure> {
        let timeout = if nonblocking {
            Some(Instant::now())
        } else {
            None
        };
        let ready = self.wait(&[(fd, write)], timeout)?;
        if ready[0] == 0 {
            return Err(errno::AGAIN.into());
        }
        Ok(())
    }

    /// Polls `fds` until one is ready or `deadline` passes; returns their `revents`.
    /// Fails with `Cancelled` once the context is cancelled.
    pub(crate) fn wait(
        &self,
        fds: &[(RawFd, bool)],
        deadline: Option<Instant>,
    ) -> Result<Vec<i16>, Failure> {
        let mut set: Vec<(RawFd, bool)> = fds.to_vec();
        let wake = self.cancel.wake_fd();
        if let Some(wake) = wake {
            set.push((wake, false));
        }
        let store = DEADLINE.with(|d| d.borrow().clone());
        loop {
            if self.cancel.is_set() {
                return Err(Failure::Cancelled);
            }
            let mut slice = None;
            if let Some(store) = &store {
                if store.deadline_reached() {
                    return Err(Failure::Interrupted);
                }
                if store.has_deadline() {
                    slice = Some(DEADLINE_CHECK);
                }
            }
            if wake.is_none() {
                // No wake-up pipe: look at the flag every 50 ms.
                slice = Some(slice.map_or(Duration::from_millis(50), |s| {
                    s.min(Duration::from_millis(50))
                }));
            }
            let now = Instant::now();
            let mut timeout = deadline.map(|d| d.saturating_duration_since(now));
            if let Some(slice) = slice {
                timeout = Some(timeout.map_or(slice, |t| t.min(slice)));
            }
            let timeout_ms = timeout.map_or(-1, |t| {
                t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
            });
            let mut revents = match sys::poll(&set, timeout_ms) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if self.cancel.is_set() {
                return Err(Failure::Cancelled);
            }
            if wake.is_some() {
                revents.pop();
            }
            let expired = deadline.is_some_and(|d| Instant::now() >= d);
            if revents.iter().any(|&r| r != 0) || expired {
                return Ok(revents);
            }
        }
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
    sockets: Vec<TcpListener>,
}

impl Default for WasiCtxBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl WasiCtxBuilder {
    /// No args, no env, no preopens; stdin empty, stdout/stderr discarded.
    pub fn new() -> Self {
        WasiCtxBuilder {
            args: Vec::new(),
            env: Vec::new(),
            stdin: Input::Bytes(Mutex::new(Cursor::new(Vec::new()))),
            stdout: Output::Pipe(MemoryPipe::new()),
            stderr: Output::Pipe(MemoryPipe::new()),
            preopens: Vec::new(),
            sockets: Vec::new(),
        }
    }
    /// Appends one argument (the first is the program name, `argv[0]`).
    pub fn arg(&mut self, arg: impl Into<String>) -> &mut Self {
        self.args.push(arg.into());
        self
    }
    /// Appends program arguments (after `argv[0]`, given with [`arg`](Self::arg)).
    pub fn args(&mut self, args: impl IntoIterator<Item = impl Into<String>>) -> &mut Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
    /// Passes the host process's arguments.
    pub fn inherit_args(&mut self) -> &mut Self {
        self.args.extend(std::env::args());
        self
    }
    /// Sets the environment variable `name` to `value` for the guest.
    pub fn env(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.env.push((name.into(), value.into()));
        self
    }
    /// Passes the host process's whole environment.
    pub fn inherit_env(&mut self) -> &mut Self {
        self.env.extend(std::env::vars());
        self
    }
    /// The guest reads this process's stdin (default: an empty stdin).
    pub fn inherit_stdin(&mut self) -> &mut Self {
        self.stdin = Input::Inherit;
        self
    }
    /// The guest writes to this process's stdout (default: discarded).
    pub fn inherit_stdout(&mut self) -> &mut Self {
        self.stdout = Output::Inherit(1);
        self
    }
    /// The guest writes to this process's stderr (default: discarded).
    pub fn inherit_stderr(&mut self) -> &mut Self {
        self.stderr = Output::Inherit(2);
        self
    }
    /// Inherits stdin, stdout and stderr.
    pub fn inherit_stdio(&mut self) -> &mut Self {
        self.inherit_stdin().inherit_stdout().inherit_stderr()
    }
    /// Standard input reads these bytes, then end of file.
    pub fn stdin_bytes(&mut self, bytes: impl Into<Vec<u8>>) -> &mut Self {
        self.stdin = Input::Bytes(Mutex::new(Cursor::new(bytes.into())));
        self
    }
    /// Standard input reads from `file` (or any pipe or device opened as a `File`).
    pub fn stdin_file(&mut self, file: File) -> &mut Self {
        self.stdin = Input::File(file);
        self
    }
    /// Standard output is captured in `pipe`.
    pub fn stdout_pipe(&mut self, pipe: &MemoryPipe) -> &mut Self {
        self.stdout = Output::Pipe(pipe.clone());
        self
    }
    /// The guest's stderr goes to `pipe` (read it with [`MemoryPipe::contents`]).
    pub fn stderr_pipe(&mut self, pipe: &MemoryPipe) -> &mut Self {
        self.stderr = Output::Pipe(pipe.clone());
        self
    }
    /// The guest's stdout is written to `file`.
    pub fn stdout_file(&mut self, file: File) -> &mut Self {
        self.stdout = Output::File(file);
        self
    }
    /// The guest's stderr is written to `file`.
    pub fn stderr_file(&mut self, file: File) -> &mut Self {
        self.stderr = Output::File(file);
        self
    }
    /// Makes host directory `host` visible to the guest as `guest`; with
    /// `read_only`, nothing under it can be created, changed or removed (`ROFS`).
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
    /// Gives the guest a listening socket for `sock_accept`. Sockets are numbered
    /// after all preopened directories (wasi-libc stops looking for preopens at the
    /// first descriptor that is not one).
    pub fn preopened_socket(&mut self, listener: TcpListener) -> std::io::Result<&mut Self> {
        listener.set_nonblocking(true)?;
        self.sockets.push(listener);
        Ok(self)
    }

    /// The context; the builder is left empty (as from [`new`](Self::new)).
    pub fn build(&mut self) -> Arc<WasiCtx> {
        let this = std::mem::take(self);
        let mut fds = HashMap::new();
        let stdio = |kind: FdKind, base: u64| FdEntry::new(kind, base, 0, false);
        fds.insert(0, stdio(FdKind::Stdin(this.stdin), rights::STDIN));
        fds.insert(1, stdio(FdKind::Stdout(this.stdout), rights::STDOUT));
        fds.insert(2, stdio(FdKind::Stdout(this.stderr), rights::STDOUT));
        let mut next = 3u32;
        for (dir, guest, read_only) in this.preopens {
            let kind = FdKind::Dir {
                dir,
                preopen: Some(guest),
            };
            fds.insert(
                next,
                FdEntry::new(kind, rights::DIRECTORY, rights::ALL, read_only),
            );
            next += 1;
        }
        for listener in this.sockets {
            let kind = FdKind::Listener(listener);
            fds.insert(next, FdEntry::new(kind, rights::LISTENER, 0, false));
            next += 1;
        }
        Arc::new(WasiCtx {
            args: this.args,
            env: this.env,
            fds: RwLock::new(fds),
            cancel: Cancel::new(),
            snapshots: wasix::SnapshotTable::default(),
            wasix: wasix::WasixState::default(),
            thread_group: OnceLock::new(),
        })
    }
}
