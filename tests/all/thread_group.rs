//! Ending a threaded program from any of its threads, inside the library: the run
//! returns one result promptly, every other thread is stopped wherever it is
//! (parked in `memory.atomic.wait`, spinning, blocked in `fd_read`), and the host
//! process goes on. Also the store-level `InterruptHandle` underneath.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wazerox::{Config, Engine, Extern, Linker, Module, SharedMemory, Store, TrapCode};
use wazerox_wasi::threads::{ThreadGroup, ThreadOptions};
use wazerox_wasi::{I32Exit, WasiCtx, WasiCtxBuilder};

/// A program whose threads do what the host wrote into memory before the run:
/// - `[20]`: how many threads must be in place (`ready`, at 16) before an ending
///   thread ends the program;
/// - `[24]`: what `_start` does after spawning: 0 parks forever, 1 spins, 2 waits
///   for the others and returns, 3 waits for the others and calls `proc_exit(3)`;
/// - `[256..]`: the start argument of each thread to spawn (up to a negative one):
///   0 parks forever, 1 spins (counting at 48), 2 blocks reading stdin, 3 traps
///   once the others are in place, 4 calls `proc_exit(7)` once they are, 5 sleeps
///   an hour in `poll_oneoff`.
const PROGRAM: &str = r#"(module
    (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (import "wasi_snapshot_preview1" "fd_read"
      (func $fd_read (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "poll_oneoff"
      (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
    (import "env" "memory" (memory 1 1 shared))
    (export "memory" (memory 0))
    (func $sleep_an_hour
      ;; One relative monotonic-clock subscription at 512; the event goes to 600.
      (i32.store8 (i32.const 520) (i32.const 0))
      (i32.store (i32.const 528) (i32.const 1))
      (i64.store (i32.const 536) (i64.const 3600000000000))
      (i64.store (i32.const 544) (i64.const 0))
      (i32.store16 (i32.const 552) (i32.const 0))
      (drop (call $poll_oneoff (i32.const 512) (i32.const 600) (i32.const 1) (i32.const 640))))
    (func $arrive (drop (i32.atomic.rmw.add (i32.const 16) (i32.const 1))))
    (func $await_others
      (local $seen i32)
      (loop $again
        (local.set $seen (i32.atomic.load (i32.const 16)))
        (if (i32.lt_s (local.get $seen) (i32.load (i32.const 20)))
          (then
            (drop (memory.atomic.wait32 (i32.const 16) (local.get $seen) (i64.const 1000000)))
            (br $again)))))
    (func $park (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1))))
    (func $spin (loop $l (drop (i32.atomic.rmw.add (i32.const 48) (i32.const 1))) (br $l)))
    (func $read
      ;; iovec at 64: 16 bytes at 128; the count goes to 80.
      (i32.store (i32.const 64) (i32.const 128))
      (i32.store (i32.const 68) (i32.const 16))
      (drop (call $fd_read (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 80))))
    (func (export "wasi_thread_start") (param $tid i32) (param $what i32)
      (block $poll (block $exit (block $trap (block $read (block $spin (block $park
        (br_table $park $spin $read $trap $exit $poll (local.get $what)))
        (call $arrive) (call $park) (return))
        (call $arrive) (call $spin) (return))
        (call $arrive) (call $read) (return))
        (call $await_others) (unreachable))
        (call $await_others) (call $exit (i32.const 7)) (return))
      (call $arrive) (call $sleep_an_hour))
    (func (export "_start")
      (local $at i32)
      (local.set $at (i32.const 256))
      (block $spawned
        (loop $next
          (br_if $spawned (i32.lt_s (i32.load (local.get $at)) (i32.const 0)))
          (if (i32.le_s (call $spawn (i32.load (local.get $at))) (i32.const 0))
            (then (unreachable)))
          (local.set $at (i32.add (local.get $at) (i32.const 4)))
          (br $next)))
      (block $end (block $return (block $spin (block $park
        (br_table $park $spin $return $end (i32.load (i32.const 24))))
        (call $park) (return))
        (call $spin) (return))
        (call $await_others) (return))
      (call $await_others) (call $exit (i32.const 3))))"#;

const PARK: i32 = 0;
const SPIN: i32 = 1;
const READ: i32 = 2;
const TRAP: i32 = 3;
const EXIT_7: i32 = 4;
const POLL: i32 = 5;

enum Main {
    Park = 0,
    Spin = 1,
    Return = 2,
    Exit3 = 3,
}

/// Aborts the test process if a run hangs: a broken termination must fail CI, not
/// stall it.
struct Watchdog(Arc<AtomicBool>);

impl Watchdog {
    fn start() -> Watchdog {
        let done = Arc::new(AtomicBool::new(false));
        let watched = done.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !watched.load(Ordering::SeqCst) {
                if Instant::now() > deadline {
                    eprintln!("a threaded program did not end within 30 s");
                    std::process::abort();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Watchdog(done)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Outcome {
    result: Result<(), wazerox::Error>,
    /// From the start of the run until it returned.
    elapsed: Duration,
    memory: SharedMemory,
    group: Arc<ThreadGroup>,
}

/// Runs `PROGRAM` with `threads` spawned and `main` as the main thread's part;
/// stdin is a pipe that never gets data (its writer stays open during the run).
fn run(threads: &[i32], ready: i32, main: Main) -> Outcome {
    let _watchdog = Watchdog::start();
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, PROGRAM).unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    let ctx = WasiCtxBuilder::new()
        .stdin_file(File::from(OwnedFd::from(reader)))
        .build();
    let mut store = Store::new(&engine, ctx.clone());
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
    wazerox_wasi::add_to_linker(&mut linker, |c| c).unwrap();
    let group = wazerox_wasi::threads::enable_if_needed(&module, &mut linker, &ctx)
        .unwrap()
        .expect("the program is threaded");
    let Some(Extern::SharedMemory(memory)) = linker.get(&mut store, "env", "memory") else {
        panic!("the shared memory is defined");
    };
    memory.write(20, &ready.to_le_bytes()).unwrap();
    memory.write(24, &(main as i32).to_le_bytes()).unwrap();
    let plan: Vec<u8> = threads
        .iter()
        .chain(&[-1])
        .flat_map(|t| t.to_le_bytes())
        .collect();
    memory.write(256, &plan).unwrap();
    let started = Instant::now();
    let result = group.run_main(&mut store, |store| {
        let instance = linker.instantiate(&mut *store, &module)?;
        let start = instance.get_typed_func::<(), ()>(&mut *store, "_start")?;
        start.call(&mut *store, ())
    });
    let elapsed = started.elapsed();
    drop(writer);
    Outcome {
        result,
        elapsed,
        memory,
        group,
    }
}

fn read_u32(memory: &SharedMemory, at: usize) -> u32 {
    let mut word = [0; 4];
    memory.read(at, &mut word).unwrap();
    u32::from_le_bytes(word)
}

/// Nothing runs any more: the spinners' counter stays put.
fn assert_all_stopped(outcome: &Outcome) {
    let before = read_u32(&outcome.memory, 48);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        read_u32(&outcome.memory, 48),
        before,
        "a spinner still runs"
    );
    assert!(outcome.group.has_ended());
}

fn exit_code(outcome: &Outcome) -> Option<i32> {
    let error = outcome.result.as_ref().err()?;
    error.downcast_ref::<I32Exit>().map(|e| e.0)
}

#[test]
fn proc_exit_in_a_spawned_thread_ends_parked_spinning_reading_and_polling_threads() {
    let outcome = run(&[PARK, SPIN, READ, POLL, EXIT_7], 4, Main::Park);
    assert_eq!(exit_code(&outcome), Some(7), "{:?}", outcome.result);
    assert!(
        outcome.elapsed < Duration::from_secs(1),
        "took {:?}",
        outcome.elapsed
    );
    assert_eq!(read_u32(&outcome.memory, 16), 4, "all four were in place");
    assert_all_stopped(&outcome);
}

#[test]
fn proc_exit_in_a_spawned_thread_stops_a_spinning_main_thread() {
    let outcome = run(&[SPIN, PARK, EXIT_7], 2, Main::Spin);
    assert_eq!(exit_code(&outcome), Some(7), "{:?}", outcome.result);
    assert!(outcome.elapsed < Duration::from_secs(1));
    assert_all_stopped(&outcome);
}

#[test]
fn a_trap_in_a_spawned_thread_ends_the_run_with_that_trap() {
    let outcome = run(&[PARK, SPIN, READ, TRAP], 3, Main::Park);
    let error = outcome.result.as_ref().unwrap_err();
    assert_eq!(
        error.as_trap().map(|t| t.code()),
        Some(TrapCode::UnreachableCodeReached),
        "{error}"
    );
    assert!(outcome.elapsed < Duration::from_secs(1));
    assert_all_stopped(&outcome);
}

#[test]
fn proc_exit_in_the_main_thread_ends_the_others() {
    let outcome = run(&[PARK, SPIN, READ], 3, Main::Exit3);
    assert_eq!(exit_code(&outcome), Some(3), "{:?}", outcome.result);
    assert!(outcome.elapsed < Duration::from_secs(1));
    assert_all_stopped(&outcome);
}

#[test]
fn the_main_thread_returning_ends_the_program() {
    let outcome = run(&[PARK, SPIN, READ, SPIN], 4, Main::Return);
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert!(outcome.elapsed < Duration::from_secs(1));
    assert_all_stopped(&outcome);
}

#[test]
fn many_runs_in_one_process_leave_it_working() {
    for _ in 0..10 {
        let outcome = run(&[SPIN, PARK, READ, EXIT_7], 3, Main::Park);
        assert_eq!(exit_code(&outcome), Some(7));
    }
}

const SPINNER: &str = r#"(module
    (memory 1 1 shared)
    (func (export "spin") (loop $l (br $l)))
    (func (export "park") (result i32)
      (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1))))"#;

/// Calls `name` in a fresh store and interrupts it from another thread after 20 ms.
fn interrupted_call(engine: &Engine, name: &str) -> (wazerox::Error, Store<()>) {
    let _watchdog = Watchdog::start();
    let module = Module::new(engine, SPINNER).unwrap();
    let mut store = Store::new(engine, ());
    let instance = wazerox::Instance::new(&mut store, &module, &[]).unwrap();
    let func = instance.get_func(&mut store, name).unwrap();
    let handle = store.interrupt_handle();
    let interrupter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        handle.interrupt();
    });
    let mut results = vec![wazerox::Val::I32(0); func.ty(&store).results().len()];
    let error = func.call(&mut store, &[], &mut results).unwrap_err();
    interrupter.join().unwrap();
    (error, store)
}

#[test]
fn interrupt_handle_stops_spinning_code_for_good() {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let (error, mut store) = interrupted_call(&engine, "spin");
    assert_eq!(error.as_trap().unwrap().code(), TrapCode::Interrupt);
    let handle = store.interrupt_handle();
    assert!(handle.is_interrupted() && handle.stops_running_code());
    // Sticky: a new deadline does not revive the store.
    store.set_epoch_deadline(1_000_000);
    let module = Module::new(&engine, SPINNER).unwrap();
    let instance = wazerox::Instance::new(&mut store, &module, &[]).unwrap();
    let spin = instance
        .get_typed_func::<(), ()>(&mut store, "spin")
        .unwrap();
    let error = spin.call(&mut store, ()).unwrap_err();
    assert_eq!(error.as_trap().unwrap().code(), TrapCode::Interrupt);
}

#[test]
fn interrupt_handle_ends_a_parked_wait_with_a_trap_even_without_epoch_checks() {
    let engine = Engine::default();
    let (error, mut store) = interrupted_call(&engine, "park");
    assert_eq!(error.as_trap().unwrap().code(), TrapCode::Interrupt);
    // Later waits trap at once.
    let module = Module::new(&engine, SPINNER).unwrap();
    let instance = wazerox::Instance::new(&mut store, &module, &[]).unwrap();
    let park = instance
        .get_typed_func::<(), i32>(&mut store, "park")
        .unwrap();
    let error = park.call(&mut store, ()).unwrap_err();
    assert_eq!(error.as_trap().unwrap().code(), TrapCode::Interrupt);
}

#[test]
fn a_thread_group_needs_an_engine_that_can_stop_running_code() {
    let engine = Engine::default();
    let module = Module::new(&engine, PROGRAM).unwrap();
    let ctx = WasiCtxBuilder::new().build();
    let store = Store::new(&engine, ctx.clone());
    assert!(!store.interrupt_handle().stops_running_code());
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
    wazerox_wasi::add_to_linker(&mut linker, |c| c).unwrap();
    let error = wazerox_wasi::threads::enable_if_needed(&module, &mut linker, &ctx).unwrap_err();
    assert!(error.to_string().contains("epoch_interruption"), "{error}");
}

#[test]
fn thread_options_cap_the_running_threads() {
    let _watchdog = Watchdog::start();
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, PROGRAM).unwrap();
    let ctx = WasiCtxBuilder::new().build();
    let mut store = Store::new(&engine, ctx.clone());
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
    wazerox_wasi::add_to_linker(&mut linker, |c| c).unwrap();
    let options = ThreadOptions {
        max_threads: 3,
        ..ThreadOptions::default()
    };
    let group = wazerox_wasi::threads::enable_if_needed_with(&module, &mut linker, &ctx, options)
        .unwrap()
        .expect("the program is threaded");
    let tids: Vec<i32> = (0..5).map(|_| group.spawn(&ctx, PARK)).collect();
    assert!(tids[..3].iter().all(|&tid| tid > 0), "{tids:?}");
    assert_eq!(&tids[3..], &[-1, -1], "past the cap, spawns fail");
    let started = Instant::now();
    group.run_main(&mut store, |_| Ok(())).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    // Fuel for the threads needs an engine that counts it.
    let error = ThreadGroup::with_options(
        module.clone(),
        linker.clone(),
        ThreadOptions {
            fuel: Some(1000),
            ..ThreadOptions::default()
        },
    )
    .unwrap_err();
    assert!(error.to_string().contains("fuel"), "{error}");
}

/// Threads and async calls do not mix (yet): a threaded program in an engine
/// with async support is refused with a clear error, before anything runs.
#[test]
fn a_threaded_program_in_an_async_engine_is_refused() {
    let mut config = Config::new();
    config.epoch_interruption(true).async_support(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, PROGRAM).unwrap();
    let ctx = WasiCtxBuilder::new().build();
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
    wazerox_wasi::add_to_linker(&mut linker, |c| c).unwrap();
    let error = wazerox_wasi::threads::enable_if_needed(&module, &mut linker, &ctx).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("unsupported feature"), "{message}");
    assert!(message.contains("async_support"), "{message}");
    let error = ThreadGroup::new(module, linker).unwrap_err();
    assert!(error.to_string().contains("async_support"), "{error}");
}
