//! WASIX signals: `callback_signal`, `thread_signal`, `proc_raise_interval`.
//!
//! A program registers one exported function, `(param i32)`, as its signal callback
//! (wasix-libc registers its dispatcher at start-up and runs `sigaction` handlers
//! from it). A signal raised for a thread is queued for it and delivered by that
//! thread itself — a Wasm thread cannot be entered from outside — when it next
//! returns from a WASIX call (or while it sleeps in `thread_sleep`); a thread that
//! signals itself gets the signal before `thread_signal` returns. Delivery calls the
//! callback with the signal number in the calling instance; without a callback, the
//! default action applies: `CHLD`, `CONT`, `URG`, `WINCH` and the job-control
//! signals are ignored, every other signal ends the program with exit status
//! 128 + signal (as a shell reports a process killed by it).
//!
//! A name that is not an exported `(param i32)` function registers nothing (signals
//! keep their default actions): wasmer accepts such registrations too, and a real
//! binary must not fail at start-up over a handler it may never need.
//!
//! `proc_raise_interval(sig, interval, repeat)` raises `sig` for the main thread
//! after `interval` nanoseconds (again every `interval` with `repeat`); a new call
//! replaces the timer, interval 0 cancels it. One timer thread per program, started
//! by the first call, serves every later one; it holds only a weak reference to the
//! program and ends with it (or when the program is cancelled).

use super::thread::{MAIN_TID, current_tid};
use crate::errno::{self, Failure};
use crate::{I32Exit, WasiCtx};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use wazerox::{Caller, Error, Extern, Linker, Val, ValType};

/// Largest WASI signal number (`sys`).
const MAX_SIGNAL: i32 = 30;

/// Signals whose default action is to do nothing: CHLD, CONT, STOP, TSTP, TTIN,
/// TTOU, URG, WINCH (no job control here: stopping is ignoring).
const IGNORED_BY_DEFAULT: [i32; 8] = [16, 17, 18, 19, 20, 21, 22, 27];

/// The signal state of one program.
#[derive(Default)]
pub struct Signals {
    state: Mutex<SignalState>,
    /// Notified when a signal is queued, for sleeping threads.
    raised: Condvar,
    /// Whether any thread has a signal queued (so that calls skip the lock).
    any_pending: AtomicBool,
    /// The `proc_raise_interval` timer, and whether its thread runs.
    timer: Mutex<Timer>,
    /// Notified when the timer changes.
    timer_changed: Condvar,
}

#[derive(Default)]
struct Timer {
    /// Signal, interval, repeat, next expiry; `None` when no timer is set.
    armed: Option<(i32, Duration, bool, Instant)>,
    thread_started: bool,
}

#[derive(Default)]
struct SignalState {
    /// Name of the exported callback (`callback_signal`).
    callback: Option<String>,
    /// Queued signals by thread id, as bit sets (bit n = signal n).
    pending: HashMap<i32, u64>,
}

impl Signals {
    fn lock(&self) -> MutexGuard<'_, SignalState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `signal` for thread `tid`.
    pub(crate) fn raise(&self, tid: i32, signal: i32) {
        let mut state = self.lock();
        *state.pending.entry(tid).or_default() |= 1 << signal;
        self.any_pending.store(true, Ordering::Release);
        self.raised.notify_all();
    }

    /// Takes the signals queued for `tid`.
    fn take(&self, tid: i32) -> u64 {
        if !self.any_pending.load(Ordering::Acquire) {
            return 0;
        }
        let mut state = self.lock();
        let bits = state.pending.remove(&tid).unwrap_or(0);
        if state.pending.is_empty() {
            self.any_pending.store(false, Ordering::Release);
        }
        bits
    }

    /// Blocks until a signal is queued for `tid` (true) or `timeout` passes
    /// (false). Waits at most 20 ms at a time, so that the caller can look at the
    /// program's cancellation.
    pub(crate) fn wait_for_signal(&self, tid: i32, timeout: Option<Duration>) -> bool {
        let slice = Duration::from_millis(20);
        let timeout = timeout.map_or(slice, |t| t.min(slice));
        let state = self.lock();
        if state.pending.contains_key(&tid) {
            return true;
        }
        let (state, _) = self
            .raised
            .wait_timeout(state, timeout)
            .unwrap_or_else(|e| e.into_inner());
        state.pending.contains_key(&tid)
    }
}

/// Delivers the signals queued for the calling thread (lowest number first):
/// calls the program's callback, or applies the default action.
pub(crate) fn deliver<T>(
    caller: &mut Caller<'_, T>,
    get: impl Fn(&T) -> &Arc<WasiCtx>,
) -> Result<(), Error> {
    let ctx = get(caller.data()).clone();
    let tid = current_tid();
    loop {
        let bits = ctx.wasix.signals.take(tid);
        if bits == 0 {
            return Ok(());
        }
        let callback = ctx.wasix.signals.lock().callback.clone();
        for signal in (1..=MAX_SIGNAL).filter(|s| bits & (1 << s) != 0) {
            match &callback {
                Some(name) => {
                    let Some(Extern::Func(func)) = caller.get_export(name) else {
                        return Err(Error::msg(format!(
                            "wasix: signal callback `{name}` is not an exported function"
                        )));
                    };
                    func.call(&mut *caller, &[Val::I32(signal)], &mut [])?;
                }
                None if IGNORED_BY_DEFAULT.contains(&signal) => {}
                None => return Err(Error::new(I32Exit(128 + signal))),
            }
        }
    }
}

/// Ends a WASIX call: delivers the calling thread's pending signals, then returns
/// the call's result.
pub(crate) fn finish<T>(
    caller: &mut Caller<'_, T>,
    get: impl Fn(&T) -> &Arc<WasiCtx>,
    result: Result<i32, Error>,
) -> Result<i32, Error> {
    let value = result?;
    deliver(caller, get)?;
    Ok(value)
}

fn check_signal(signal: i32) -> Result<(), Failure> {
    if !(0..=MAX_SIGNAL).contains(&signal) {
        return Err(errno::INVAL.into());
    }
    Ok(())
}

/// `thread_signal(tid, sig)`: queues `sig` for thread `tid` (0 only checks that the
/// thread exists).
fn thread_signal(ctx: &WasiCtx, tid: i32, signal: i32) -> Result<(), Failure> {
    check_signal(signal)?;
    let exists = match ctx.thread_group.get() {
        Some(group) => group.is_running(tid),
        None => tid == MAIN_TID,
    };
    if !exists {
        return Err(errno::SRCH.into());
    }
    if signal != 0 {
        ctx.wasix.signals.raise(tid, signal);
    }
    Ok(())
}

/// `proc_raise_interval`: sets (or, with interval 0, clears) the program's timer.
fn raise_interval(
    ctx: &Arc<WasiCtx>,
    signal: i32,
    interval: u64,
    repeat: bool,
) -> Result<(), Failure> {
    check_signal(signal)?;
    let signals = &ctx.wasix.signals;
    let mut timer = signals.timer.lock().unwrap_or_else(|e| e.into_inner());
    let interval = Duration::from_nanos(interval);
    // An expiry past what `Instant` can hold never comes: no timer.
    let first = Instant::now().checked_add(interval);
    timer.armed = first
        .filter(|_| !interval.is_zero() && signal != 0)
        .map(|next| (signal, interval, repeat, next));
    signals.timer_changed.notify_all();
    if timer.armed.is_some() && !timer.thread_started {
        let program: Weak<WasiCtx> = Arc::downgrade(ctx);
        std::thread::Builder::new()
            .name("wasix-signal-timer".into())
            .spawn(move || run_timer(program))
            .map_err(|_| errno::AGAIN)?;
        timer.thread_started = true;
    }
    Ok(())
}

/// The timer thread of a program: raises the armed signal when it expires. Looks
/// at least every 20 ms whether the program is gone or cancelled.
fn run_timer(program: Weak<WasiCtx>) {
    let slice = Duration::from_millis(20);
    loop {
        let Some(ctx) = program.upgrade() else { return };
        if ctx.is_cancelled() {
            return;
        }
        let signals = &ctx.wasix.signals;
        let mut timer = signals.timer.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let wait = match timer.armed {
            Some((signal, interval, repeat, next)) if now >= next => {
                timer.armed = next
                    .checked_add(interval)
                    .filter(|_| repeat)
                    .map(|next| (signal, interval, repeat, next));
                signals.raise(MAIN_TID, signal);
                continue;
            }
            Some((.., next)) => (next - now).min(slice),
            None => slice,
        };
        drop(
            signals
                .timer_changed
                .wait_timeout(timer, wait)
                .unwrap_or_else(|e| e.into_inner()),
        );
    }
}

pub(super) fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: impl Fn(&T) -> &Arc<WasiCtx> + Send + Sync + Copy + 'static,
) -> Result<(), Error> {
    const MODULE: &str = "wasix_32v1";
    linker.func_wrap(
        MODULE,
        "callback_signal",
        move |mut caller: Caller<'_, T>, name: i32, len: i32| -> Result<(), Error> {
            let mut name_str = Err(errno::FAULT);
            crate::preview1::with(&mut caller, get, |_, mem| {
                name_str = mem.path(name, len);
                Ok(())
            })?;
            let name = name_str.map_err(|e| {
                Error::msg(format!("wasix callback_signal: bad name (errno {})", e.0))
            })?;
            let takes_signal = match caller.get_export(&name) {
                Some(Extern::Func(func)) => {
                    let ty = func.ty(&caller);
                    ty.params() == [ValType::I32] && ty.results().is_empty()
                }
                _ => false,
            };
            let ctx = get(caller.data()).clone();
            ctx.wasix.signals.lock().callback = takes_signal.then_some(name);
            Ok(())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "thread_signal",
        move |mut caller: Caller<'_, T>, tid: i32, signal: i32| -> Result<i32, Error> {
            let result =
                crate::preview1::with(&mut caller, get, |ctx, _| thread_signal(ctx, tid, signal));
            finish(&mut caller, get, result)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "proc_raise_interval",
        move |mut caller: Caller<'_, T>,
              signal: i32,
              interval: i64,
              repeat: i32|
              -> Result<i32, Error> {
            let ctx = get(caller.data()).clone();
            let result = crate::preview1::with(&mut caller, get, |_, _| {
                raise_interval(&ctx, signal, interval as u64, repeat != 0)
            });
            finish(&mut caller, get, result)
        },
    )?;
    Ok(())
}
