//! WASIX threads: `thread_spawn_v2`, `thread_id`, `thread_join`, `thread_exit`,
//! `thread_sleep`, `thread_parallelism`, on the wasi-threads machinery
//! ([`ThreadGroup`](crate::threads::ThreadGroup)).
//!
//! `thread_spawn_v2(start, ret_tid)` starts a thread exactly as `wasi.thread-spawn`
//! does, with the address of the guest's 64-byte `thread_start` record as the start
//! argument: the new instance's `wasi_thread_start(tid, start)` reads its stack and
//! TLS from it (wasix-libc's start routine does). So exit, trap and interruption end
//! WASIX threads as they end wasi-threads ones.
//!
//! Thread ids: the main thread is 1 ([`MAIN_TID`]); spawned threads get 2, 3, …
//! Each Wasm thread runs on its own OS thread, so the id of the calling thread is
//! kept in a thread-local, set when a spawned thread starts.

use super::signal::{self, finish};
use crate::errno::{self, Failure};
use crate::fd::Ret;
use crate::{Cancelled, WasiCtx};
use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wazerox::{Caller, Error, ExternType, Linker};

/// The WASIX id of a program's main thread.
pub const MAIN_TID: i32 = 1;

/// Size of WASIX's `thread_start` record (wasm32).
const THREAD_START_SIZE: u32 = 64;

thread_local! {
    /// WASIX id of the Wasm thread running on this OS thread; `None` on a thread
    /// that no group started (the main thread).
    static CURRENT: Cell<Option<i32>> = const { Cell::new(None) };
}

/// Records that this OS thread runs the spawned Wasm thread `tid`.
pub(crate) fn enter_spawned(tid: i32) {
    CURRENT.with(|c| c.set(Some(tid)));
}

/// The WASIX id of the calling Wasm thread.
pub fn current_tid() -> i32 {
    CURRENT.with(|c| c.get()).unwrap_or(MAIN_TID)
}

/// `thread_exit(code)` was called: the calling thread ends, the program goes on.
/// A spawned thread's run ends with it quietly; for the main thread,
/// [`ThreadGroup::run_main`](crate::threads::ThreadGroup::run_main) waits for the
/// other threads and ends the program with exit status 0 (as `pthread_exit` in
/// `main` does). Without a thread group the embedder sees this error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadExit(pub i32);

impl std::fmt::Display for ThreadExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a thread ended with thread_exit({})", self.0)
    }
}

impl std::error::Error for ThreadExit {}

fn spawn(
    ctx: &Arc<WasiCtx>,
    mem: &mut crate::memory::GuestMemory<'_>,
    start: i32,
) -> Result<i32, Failure> {
    let record = mem.slice(start, THREAD_START_SIZE)?;
    let word = |at: usize| u32::from_le_bytes(record[at..at + 4].try_into().unwrap());
    let (stack_upper, stack_size) = (word(0), word(56));
    if stack_upper < stack_size {
        return Err(errno::INVAL.into());
    }
    let Some(group) = ctx.thread_group.get() else {
        // Not a threaded program (no shared memory): a second instance would not
        // share this one's memory.
        return Err(errno::NOTSUP.into());
    };
    let shares_memory = group
        .module()
        .imports()
        .any(|import| matches!(import.ty(), ExternType::Memory(ty) if ty.is_shared()));
    if !shares_memory {
        return Err(errno::NOTSUP.into());
    }
    let tid = group.spawn(ctx, start);
    if tid < 0 {
        return Err(errno::AGAIN.into());
    }
    Ok(tid)
}

/// Waits until thread `tid` has finished.
fn join(ctx: &WasiCtx, tid: i32) -> Ret {
    if tid == current_tid() {
        return Err(errno::DEADLK.into());
    }
    match ctx.thread_group.get() {
        Some(group) => group.wait_finished(tid),
        // Only the main thread exists, and it is the caller.
        None => Err(errno::SRCH.into()),
    }
}

/// Sleeps `nanos`; pending signals for this thread are delivered as they arrive
/// and the sleep goes on (as with `SA_RESTART`); a cancelled program ends it.
fn sleep<T>(
    caller: &mut Caller<'_, T>,
    get: impl Fn(&T) -> &Arc<WasiCtx> + Copy,
    nanos: u64,
) -> Result<(), Error> {
    let ctx = get(caller.data()).clone();
    let deadline = Instant::now().checked_add(Duration::from_nanos(nanos));
    loop {
        if ctx.is_cancelled() {
            return Err(Error::new(Cancelled));
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            return Ok(());
        }
        if ctx.wasix.signals.wait_for_signal(current_tid(), left) {
            signal::deliver(caller, get)?;
        }
    }
}

pub(super) fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: impl Fn(&T) -> &Arc<WasiCtx> + Send + Sync + Copy + 'static,
) -> Result<(), Error> {
    const MODULE: &str = "wasix_32v1";
    linker.func_wrap(
        MODULE,
        "thread_spawn_v2",
        move |mut caller: Caller<'_, T>, start: i32, ret_tid: i32| -> Result<i32, Error> {
            let ctx = get(caller.data()).clone();
            let result = crate::preview1::with(&mut caller, get, |_, mem| {
                mem.slice(ret_tid, 4)?;
                let tid = spawn(&ctx, mem, start)?;
                Ok(mem.put_u32(ret_tid, tid as u32)?)
            });
            finish(&mut caller, get, result)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "thread_id",
        move |mut caller: Caller<'_, T>, ret_tid: i32| -> Result<i32, Error> {
            let result = crate::preview1::with(&mut caller, get, |_, mem| {
                Ok(mem.put_u32(ret_tid, current_tid() as u32)?)
            });
            finish(&mut caller, get, result)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "thread_join",
        move |mut caller: Caller<'_, T>, tid: i32| -> Result<i32, Error> {
            let result = crate::preview1::with(&mut caller, get, |ctx, _| join(ctx, tid));
            finish(&mut caller, get, result)
        },
    )?;
    linker.func_wrap(MODULE, "thread_exit", |code: i32| -> Result<(), Error> {
        Err(Error::new(ThreadExit(code)))
    })?;
    linker.func_wrap(
        MODULE,
        "thread_sleep",
        move |mut caller: Caller<'_, T>, nanos: i64| -> Result<i32, Error> {
            sleep(&mut caller, get, nanos as u64)?;
            finish(&mut caller, get, Ok(0))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "thread_parallelism",
        move |mut caller: Caller<'_, T>, ret: i32| -> Result<i32, Error> {
            let result = crate::preview1::with(&mut caller, get, |_, mem| {
                let n = std::thread::available_parallelism().map_or(1, |n| n.get());
                Ok(mem.put_u32(ret, n as u32)?)
            });
            finish(&mut caller, get, result)
        },
    )?;
    Ok(())
}
