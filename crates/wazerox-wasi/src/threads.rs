//! wasi-threads: `wasi.thread-spawn(start_arg) -> tid`, and the [`ThreadGroup`] that
//! runs a threaded program and ends it as one.
//!
//! Each spawn instantiates the program's module again — with the same imports, so
//! the same shared memory — in a new store on a new OS thread, and calls its export
//! `wasi_thread_start(tid, start_arg)`. All threads share the program's
//! [`WasiCtx`]. Thread ids are unique, positive and below 2^29; a negative result
//! reports failure.
//!
//! Ending the program, as a library must (the host process goes on):
//! - `proc_exit` or a trap (or any error) in any thread, main or spawned, ends the
//!   program with that exit code or error; the first such ending wins;
//! - the main thread returning ends the program too;
//! - ending stops every other thread promptly: each thread's store is interrupted
//!   ([`InterruptHandle`]: running code traps at its next function entry or loop
//!   header, `memory.atomic.wait` traps, parked or not), and the program's context is
//!   cancelled ([`WasiCtx::cancel`]: blocking `fd_read`, `poll_oneoff`, `sock_accept`
//!   return). What those stopped threads then report is ignored;
//! - [`ThreadGroup::run_main`] joins every thread before it returns the one result.
//!
//! ```
//! use std::sync::Arc;
//! use wazerox::{Config, Engine, Linker, Module, Store};
//! use wazerox_wasi::{I32Exit, WasiCtx, WasiCtxBuilder};
//!
//! let mut config = Config::new();
//! config.epoch_interruption(true);
//! let engine = Engine::new(&config)?;
//! // The main thread parks forever; the thread it spawns spins a little, then exits.
//! let module = Module::new(&engine, r#"(module
//!     (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
//!     (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
//!     (import "env" "memory" (memory 1 1 shared))
//!     (func (export "wasi_thread_start") (param i32 i32)
//!       (local $n i32)
//!       (loop $l (br_if $l (i32.lt_u (local.tee $n (i32.add (local.get $n) (i32.const 1)))
//!                                    (i32.const 1000))))
//!       (call $exit (i32.const 7)))
//!     (func (export "_start")
//!       (drop (call $spawn (i32.const 0)))
//!       (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1)))))"#)?;
//! let ctx = WasiCtxBuilder::new().build();
//! let mut store = Store::new(&engine, ctx.clone());
//! let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
//! wazerox_wasi::add_to_linker(&mut linker, |ctx| ctx)?;
//! let group = wazerox_wasi::threads::enable_if_needed(&module, &mut linker, &ctx)?
//!     .expect("the module imports thread-spawn");
//! let error = group
//!     .run_main(&mut store, |store| {
//!         let instance = linker.instantiate(&mut *store, &module)?;
//!         let start = instance.get_typed_func::<(), ()>(&mut *store, "_start")?;
//!         start.call(&mut *store, ())
//!     })
//!     .unwrap_err();
//! assert_eq!(error.downcast_ref::<I32Exit>(), Some(&I32Exit(7)));
//! # Ok::<(), wazerox::Error>(())
//! ```
//!
//! Stopping code that never calls out or waits needs the epoch checks that
//! [`Config::epoch_interruption`](wazerox::Config::epoch_interruption) compiles in,
//! so a group requires them; `wazerox run` turns them on for threaded modules.

use crate::WasiCtx;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use wazerox::{
    Caller, Error, ExternType, InterruptHandle, Linker, Module, ResourceLimiter, SharedMemory,
    Store, StoreLimits,
};

/// Largest thread id (ids stay below 2^29, as the wasi-threads ABI requires).
const MAX_TID: i32 = (1 << 29) - 1;

/// Default of [`ThreadOptions::max_threads`]. Each thread costs an OS thread
/// (its stack and signal stack are a few kernel mappings) and a store; Linux's
/// default of 65530 mappings per process ran out near 10,900 threads, which
/// aborted the host inside the standard library's thread start.
pub const DEFAULT_MAX_THREADS: usize = 4096;

/// What every thread of a [`ThreadGroup`] may use.
#[derive(Clone)]
pub struct ThreadOptions {
    /// Spawned threads running at once, at most; `thread-spawn` fails (-1) beyond.
    pub max_threads: usize,
    /// Fuel given to each spawned thread's store (needs
    /// [`Config::consume_fuel`](wazerox::Config::consume_fuel)). A budget per
    /// thread, not shared: a program may burn up to this much in every thread.
    pub fuel: Option<u64>,
    /// Resource limits installed in each spawned thread's store, and checked
    /// against the initial size of the shared memories [`enable_if_needed_with`]
    /// creates. A shared memory's growth is asked of the limits of the store whose
    /// thread grows it, under the memory's growth lock, so a size limit holds for
    /// the memory as a whole.
    pub limits: Option<StoreLimits>,
}

impl Default for ThreadOptions {
    fn default() -> Self {
        ThreadOptions {
            max_threads: DEFAULT_MAX_THREADS,
            fuel: None,
            limits: None,
        }
    }
}

/// Key of the main thread among the running threads. Spawned ids start at 2:
/// WASIX numbers the main thread 1 ([`crate::wasix::MAIN_TID`]).
const MAIN: i32 = 0;

/// How a program ended.
enum Ending {
    /// The main thread returned.
    MainReturned,
    /// A thread exited (`I32Exit`), trapped or failed otherwise.
    Failed(Error),
}

#[derive(Default)]
struct GroupState {
    /// Set once, by the first thread to end the program.
    ended: bool,
    /// How it ended, until `run_main` takes it.
    ending: Option<Ending>,
    /// Interrupt handles of the threads running now, by thread id.
    running: HashMap<i32, InterruptHandle>,
    /// Spawned OS threads that have not finished yet.
    live: usize,
}

/// The threads of one program: spawns them (`wasi.thread-spawn`), and ends them all
/// when one ends the program (see the module documentation).
pub struct ThreadGroup {
    module: Module,
    linker: Linker<Arc<WasiCtx>>,
    options: ThreadOptions,
    next_tid: AtomicI32,
    state: Mutex<GroupState>,
    /// Signalled when a spawned OS thread finishes.
    finished: Condvar,
}

impl ThreadGroup {
    /// A group for `module`, whose threads are instantiated with `linker` (which
    /// must define everything the module imports, including `wasi.thread-spawn` via
    /// [`add_to_linker`] and the shared memory). Register it with
    /// [`WasiCtx::set_thread_group`] so that `thread-spawn` finds it
    /// ([`enable_if_needed`] does all of this).
    ///
    /// Fails for an engine with async support (its threads would need an
    /// executor of their own; docs/async.md), and unless the module's engine
    /// compiles epoch checks
    /// ([`Config::epoch_interruption`](wazerox::Config::epoch_interruption)):
    /// without them a spinning thread could not be stopped, and the run could not
    /// end.
    pub fn new(module: Module, linker: Linker<Arc<WasiCtx>>) -> Result<Arc<ThreadGroup>, Error> {
        Self::with_options(module, linker, ThreadOptions::default())
    }

    /// [`new`](Self::new), with limits for the threads (see [`ThreadOptions`]).
    /// Fails also when `options` give fuel and the engine does not consume any.
    pub fn with_options(
        module: Module,
        linker: Linker<Arc<WasiCtx>>,
        options: ThreadOptions,
    ) -> Result<Arc<ThreadGroup>, Error> {
        if module.engine().is_async() {
            return Err(Error::msg(
                "unsupported feature: threads of a program (wasi-threads, WASIX) in an engine \
                 with Config::async_support: each thread runs synchronously on an OS thread \
                 of its own; use an engine without async support for threaded programs",
            ));
        }
        let mut probe = Store::new(module.engine(), ());
        if !probe.interrupt_handle().stops_running_code() {
            return Err(Error::msg(
                "a threaded program needs an engine with Config::epoch_interruption(true), \
                 so that ending it can stop every thread",
            ));
        }
        if let Some(fuel) = options.fuel {
            probe.set_fuel(fuel)?;
        }
        Ok(Arc::new(ThreadGroup {
            module,
            linker,
            options,
            next_tid: AtomicI32::new(crate::wasix::MAIN_TID + 1),
            state: Mutex::default(),
            finished: Condvar::new(),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `main` as the program's main thread in `store` (typically: instantiate
    /// and call `_start`), then ends the program, joins every thread, and returns
    /// the program's one result: `main`'s value if it returned first, otherwise the
    /// error that ended the program — an [`I32Exit`](crate::I32Exit) for `proc_exit` in any thread,
    /// a trap, … After this, `store` stays interrupted.
    pub fn run_main<R>(
        &self,
        store: &mut Store<Arc<WasiCtx>>,
        main: impl FnOnce(&mut Store<Arc<WasiCtx>>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let ctx = store.data().clone();
        let already_ended = {
            let mut state = self.lock();
            state.running.insert(MAIN, store.interrupt_handle());
            state.ended
        };
        let result = if already_ended {
            Err(Error::msg("the program has already ended"))
        } else {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| main(&mut *store))) {
                Ok(result) => result,
                Err(panic) => {
                    // Stop and join the other threads before the panic goes on.
                    self.end(&ctx, Ending::Failed(Error::msg("the main thread panicked")));
                    self.join();
                    self.lock().running.remove(&MAIN);
                    std::panic::resume_unwind(panic);
                }
            }
        };
        let (returned, ending) = match result {
            Ok(value) => (Some(value), Ending::MainReturned),
            Err(error) if error.downcast_ref::<crate::wasix::ThreadExit>().is_some() => {
                // `thread_exit` in main: the others run on (and may still end the
                // program); when the last one is done, the program exits with 0.
                self.lock().running.remove(&MAIN);
                self.finished.notify_all();
                self.join();
                (None, Ending::Failed(Error::new(crate::I32Exit(0))))
            }
            Err(error) => (None, Ending::Failed(error)),
        };
        self.end(&ctx, ending);
        self.join();
        let mut state = self.lock();
        state.running.remove(&MAIN);
        match state.ending.take() {
            Some(Ending::MainReturned) => Ok(returned.expect("only main records its return")),
            Some(Ending::Failed(error)) => Err(error),
            None => Err(Error::msg("the program's result was already taken")),
        }
    }

    /// Ends the program with `ending` unless it has ended already: stops every
    /// running thread. Returns whether this call ended it.
    fn end(&self, ctx: &WasiCtx, ending: Ending) -> bool {
        let mut state = self.lock();
        if state.ended {
            return false;
        }
        state.ended = true;
        state.ending = Some(ending);
        // Record first, then interrupt: a thread stopped by this sees the program
        // ended when it reports, so its `Interrupt` trap or `Cancelled` error is
        // never mistaken for the cause.
        for handle in state.running.values() {
            handle.interrupt();
        }
        drop(state);
        // Threads waiting in `thread_join` give up.
        self.finished.notify_all();
        ctx.cancel();
        true
    }

    /// Whether the program has ended.
    pub fn has_ended(&self) -> bool {
        self.lock().ended
    }

    /// The program's module.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Whether the thread with WASIX id `tid` is running (the main thread is
    /// [`MAIN_TID`](crate::wasix::MAIN_TID)).
    pub(crate) fn is_running(&self, tid: i32) -> bool {
        let key = if tid == crate::wasix::MAIN_TID {
            MAIN
        } else {
            tid
        };
        tid > 0 && self.lock().running.contains_key(&key)
    }

    /// WASIX `thread_join`: waits until thread `tid` has finished; `SRCH` for an id
    /// never given out, `Cancelled` once the program ends.
    pub(crate) fn wait_finished(&self, tid: i32) -> Result<(), crate::errno::Failure> {
        if tid <= 0 || tid >= self.next_tid.load(Ordering::Relaxed) {
            return Err(crate::errno::SRCH.into());
        }
        let key = if tid == crate::wasix::MAIN_TID {
            MAIN
        } else {
            tid
        };
        let mut state = self.lock();
        while state.running.contains_key(&key) {
            if state.ended {
                return Err(crate::errno::Failure::Cancelled);
            }
            state = self.finished.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        Ok(())
    }

    /// Waits until every spawned OS thread has finished.
    fn join(&self) {
        let mut state = self.lock();
        while state.live > 0 {
            state = self.finished.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Starts a thread running `wasi_thread_start(tid, start_arg)`; returns its id,
    /// or a negative value if it could not be started: the program has ended,
    /// [`ThreadOptions::max_threads`] threads are running, or the OS refused.
    pub fn spawn(self: &Arc<Self>, ctx: &Arc<WasiCtx>, start_arg: i32) -> i32 {
        // The store is made here so that its handle is registered before the thread
        // runs: an ending from now on interrupts it.
        let mut store = Store::new(self.module.engine(), ctx.clone());
        if let Some(fuel) = self.options.fuel
            && store.set_fuel(fuel).is_err()
        {
            return -1;
        }
        if let Some(limits) = &self.options.limits {
            store.set_limiter(limits.clone());
        }
        let tid = {
            let mut state = self.lock();
            if state.ended || state.live >= self.options.max_threads {
                return -1;
            }
            let tid = self.next_tid.fetch_add(1, Ordering::Relaxed);
            if tid > MAX_TID {
                return -1;
            }
            state.running.insert(tid, store.interrupt_handle());
            state.live += 1;
            tid
        };
        let group = self.clone();
        let started = std::thread::Builder::new()
            .name(format!("wasi-thread-{tid}"))
            .stack_size(8 << 20)
            .spawn(move || {
                let finished = Finished { group: &group, tid };
                let ctx = store.data().clone();
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    group.run_thread(store, tid, start_arg)
                }));
                let error = match outcome {
                    Ok(Ok(())) => None,
                    // WASIX `thread_exit`: this thread ends, the program goes on.
                    Ok(Err(error))
                        if error.downcast_ref::<crate::wasix::ThreadExit>().is_some() =>
                    {
                        None
                    }
                    Ok(Err(error)) => Some(error),
                    Err(_) => Some(Error::msg(format!("thread {tid} panicked"))),
                };
                if let Some(error) = error {
                    group.end(&ctx, Ending::Failed(error));
                }
                drop(finished);
            });
        match started {
            Ok(_) => tid,
            Err(_) => {
                drop(Finished { group: self, tid });
                -1
            }
        }
    }

    fn run_thread(
        &self,
        mut store: Store<Arc<WasiCtx>>,
        tid: i32,
        start_arg: i32,
    ) -> Result<(), Error> {
        crate::wasix::thread::enter_spawned(tid);
        let instance = self.linker.instantiate(&mut store, &self.module)?;
        let start = instance.get_typed_func::<(i32, i32), ()>(&mut store, "wasi_thread_start")?;
        if store.interrupt_handle().is_interrupted() {
            // Ended while this thread was starting; without epoch checks the call
            // below would not notice.
            return Ok(());
        }
        start.call(&mut store, (tid, start_arg))
    }
}

impl std::fmt::Debug for ThreadGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("ThreadGroup")
            .field("ended", &state.ended)
            .field("running", &state.running.len())
            .field("spawned_threads_alive", &state.live)
            .finish()
    }
}

/// Deregisters a spawned thread when dropped (also if it panicked).
struct Finished<'a> {
    group: &'a ThreadGroup,
    tid: i32,
}

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        let mut state = self.group.lock();
        state.running.remove(&self.tid);
        state.live -= 1;
        self.group.finished.notify_all();
    }
}

/// Defines `wasi.thread-spawn`, spawning through the group registered in the
/// program's context (see [`WasiCtx::set_thread_group`]); without one it fails
/// with -1.
pub fn add_to_linker(linker: &mut Linker<Arc<WasiCtx>>) -> Result<(), Error> {
    linker.func_wrap(
        "wasi",
        "thread-spawn",
        |caller: Caller<'_, Arc<WasiCtx>>, start_arg: i32| -> i32 {
            let ctx = caller.data().clone();
            match ctx.thread_group.get() {
                Some(group) => group.spawn(&ctx, start_arg),
                None => -1,
            }
        },
    )?;
    Ok(())
}

/// Whether `module` is a threaded program: it imports `wasi.thread-spawn`, WASIX's
/// `wasix_32v1.thread_spawn_v2`, or a shared memory.
pub fn is_threaded(module: &Module) -> bool {
    module.imports().any(|import| {
        matches!(import.ty(), ExternType::Memory(ty) if ty.is_shared())
            || (import.module() == "wasi" && import.name() == "thread-spawn")
            || (import.module() == "wasix_32v1" && import.name() == "thread_spawn_v2")
    })
}

/// Sets a program up for wasi-threads when `module` [is threaded](is_threaded):
/// creates each imported shared memory from the import's limits and defines it in
/// `linker`, defines `thread-spawn`, and registers a new [`ThreadGroup`] in `ctx`,
/// which it returns. Run the main thread through [`ThreadGroup::run_main`].
pub fn enable_if_needed(
    module: &Module,
    linker: &mut Linker<Arc<WasiCtx>>,
    ctx: &Arc<WasiCtx>,
) -> Result<Option<Arc<ThreadGroup>>, Error> {
    enable_if_needed_with(module, linker, ctx, ThreadOptions::default())
}

/// [`enable_if_needed`] with limits for the program's threads; a shared memory
/// whose initial size `options.limits` refuse is an error.
pub fn enable_if_needed_with(
    module: &Module,
    linker: &mut Linker<Arc<WasiCtx>>,
    ctx: &Arc<WasiCtx>,
    options: ThreadOptions,
) -> Result<Option<Arc<ThreadGroup>>, Error> {
    if !is_threaded(module) {
        return Ok(None);
    }
    let engine = module.engine();
    for import in module.imports() {
        if let ExternType::Memory(ty) = import.ty()
            && ty.is_shared()
        {
            if let Some(limits) = &options.limits {
                const PAGE: u64 = 65536;
                let bytes = |pages: u64| pages.saturating_mul(PAGE).min(usize::MAX as u64) as usize;
                let initial = bytes(ty.minimum());
                if !limits
                    .clone()
                    .memory_growing(0, initial, ty.maximum().map(bytes))?
                {
                    return Err(Error::msg(format!(
                        "shared memory `{}::{}` of {} pages ({initial} bytes) refused by the \
                         memory limit",
                        import.module(),
                        import.name(),
                        ty.minimum()
                    )));
                }
            }
            let memory = SharedMemory::new(engine, ty)?;
            // Shared memories belong to no store; the store here only types the call.
            let mut scratch = Store::new(engine, ctx.clone());
            linker.define(&mut scratch, import.module(), import.name(), memory)?;
        }
    }
    add_to_linker(linker)?;
    let group = ThreadGroup::with_options(module.clone(), linker.clone(), options)?;
    ctx.set_thread_group(group.clone());
    Ok(Some(group))
}
