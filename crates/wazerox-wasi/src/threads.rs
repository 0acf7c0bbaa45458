//! wasi-threads: `wasi.thread-spawn(start_arg) -> tid`.
//!
//! Each spawn instantiates the program's module again — with the same imports, so
//! the same shared memory — in a new store on a new OS thread, and calls its export
//! `wasi_thread_start(tid, start_arg)`. All threads share the program's
//! [`WasiCtx`]. Thread ids are unique, positive and below 2^29; a negative result
//! reports failure.
//!
//! Ending the program: when a spawned thread calls `proc_exit` or traps, the
//! spawner's `on_exit` hook decides what happens (the CLI ends the process; a
//! library embedder can record it). Stopping the *other* threads of a program from
//! inside the library (interrupting parked waits, running code and blocking WASI
//! calls) is not implemented yet.

use crate::{I32Exit, WasiCtx};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use wazerox::{Caller, Error, ExternType, Linker, Module, SharedMemory, Store};

/// How a spawned thread ended when it did not simply return.
#[derive(Debug)]
pub enum ThreadExit {
    /// `proc_exit(code)` in the thread.
    Exit(i32),
    /// A trap or other error, with its message.
    Failed(String),
}

type ExitHook = dyn Fn(ThreadExit) + Send + Sync;

/// Spawns the threads of one program.
pub struct ThreadSpawner {
    module: Module,
    linker: Linker<Arc<WasiCtx>>,
    next_tid: AtomicI32,
    on_exit: Arc<ExitHook>,
}

/// Largest thread id (ids stay below 2^29, as the wasi-threads ABI requires).
const MAX_TID: i32 = (1 << 29) - 1;

impl ThreadSpawner {
    /// A spawner for `module`, whose threads are instantiated with `linker` (which
    /// must define everything the module imports, including `wasi.thread-spawn`
    /// via [`add_to_linker`] and the shared memory).
    pub fn new(
        module: Module,
        linker: Linker<Arc<WasiCtx>>,
        on_exit: impl Fn(ThreadExit) + Send + Sync + 'static,
    ) -> Arc<ThreadSpawner> {
        Arc::new(ThreadSpawner {
            module,
            linker,
            next_tid: AtomicI32::new(1),
            on_exit: Arc::new(on_exit),
        })
    }

    /// Starts a thread running `wasi_thread_start(tid, start_arg)`; returns its id,
    /// or a negative value if it could not be started.
    pub fn spawn(self: &Arc<Self>, ctx: &Arc<WasiCtx>, start_arg: i32) -> i32 {
        let tid = self.next_tid.fetch_add(1, Ordering::Relaxed);
        if tid > MAX_TID {
            return -1;
        }
        let spawner = self.clone();
        let ctx = ctx.clone();
        let started = std::thread::Builder::new()
            .name(format!("wasi-thread-{tid}"))
            .stack_size(8 << 20)
            .spawn(move || {
                let result = spawner.run(ctx, tid, start_arg);
                if let Err(e) = result {
                    let exit = match e.downcast_ref::<I32Exit>() {
                        Some(I32Exit(code)) => ThreadExit::Exit(*code),
                        None => ThreadExit::Failed(e.to_string()),
                    };
                    (spawner.on_exit)(exit);
                }
            });
        if started.is_err() { -1 } else { tid }
    }

    fn run(&self, ctx: Arc<WasiCtx>, tid: i32, start_arg: i32) -> Result<(), Error> {
        let mut store = Store::new(self.module.engine(), ctx);
        let instance = self.linker.instantiate(&mut store, &self.module)?;
        let start = instance.get_typed_func::<(i32, i32), ()>(&mut store, "wasi_thread_start")?;
        start.call(&mut store, (tid, start_arg))
    }
}

/// Defines `wasi.thread-spawn`, spawning through the spawner registered in the
/// program's context (see [`WasiCtx::set_thread_spawner`]); without one it fails
/// with -1.
pub fn add_to_linker(linker: &mut Linker<Arc<WasiCtx>>) -> Result<(), Error> {
    linker.func_wrap(
        "wasi",
        "thread-spawn",
        |caller: Caller<'_, Arc<WasiCtx>>, start_arg: i32| -> i32 {
            let ctx = caller.data().clone();
            match ctx.thread_spawner.get() {
                Some(spawner) => spawner.spawn(&ctx, start_arg),
                None => -1,
            }
        },
    )?;
    Ok(())
}

/// Sets a program up for wasi-threads when `module` imports `wasi.thread-spawn` or a
/// shared memory: creates each imported shared memory from the import's limits and
/// defines it in `linker`, defines `thread-spawn`, and registers a spawner in `ctx`.
/// Returns whether the module is threaded.
pub fn enable_if_needed(
    module: &Module,
    linker: &mut Linker<Arc<WasiCtx>>,
    ctx: &Arc<WasiCtx>,
    on_exit: impl Fn(ThreadExit) + Send + Sync + 'static,
) -> Result<bool, Error> {
    let engine = module.engine();
    let mut threaded = false;
    for import in module.imports() {
        if let ExternType::Memory(ty) = import.ty()
            && ty.is_shared()
        {
            let memory = SharedMemory::new(engine, ty)?;
            // Shared memories belong to no store; the store here only types the call.
            let mut scratch = Store::new(engine, ctx.clone());
            linker.define(&mut scratch, import.module(), import.name(), memory)?;
            threaded = true;
        }
        threaded |= import.module() == "wasi" && import.name() == "thread-spawn";
    }
    if threaded {
        add_to_linker(linker)?;
        ctx.set_thread_spawner(ThreadSpawner::new(module.clone(), linker.clone(), on_exit));
    }
    Ok(threaded)
}
