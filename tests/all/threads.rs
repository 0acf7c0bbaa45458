//! Threads: shared memories, atomics and wait/notify across OS threads; our own
//! threaded C programs in `programs`.

mod programs;

use std::sync::Arc;
use wazerox::{Engine, Func, Instance, Linker, MemoryType, Module, SharedMemory, Store, TrapCode};

const WORKER: &str = r#"(module
    (import "env" "memory" (memory 1 4 shared))
    ;; Atomic counter at 0.
    (func (export "increment") (param $n i32)
      (loop $again
        (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
        (local.tee $n (i32.sub (local.get $n) (i32.const 1)))
        (br_if $again)))
    ;; A futex-style lock at 8 guarding a plain counter at 16.
    (func $lock
      (block $acquired
        (loop $retry
          (br_if $acquired (i32.eqz (i32.atomic.rmw.cmpxchg (i32.const 8) (i32.const 0) (i32.const 1))))
          (drop (memory.atomic.wait32 (i32.const 8) (i32.const 1) (i64.const -1)))
          (br $retry))))
    (func $unlock
      (i32.atomic.store (i32.const 8) (i32.const 0))
      (drop (memory.atomic.notify (i32.const 8) (i32.const 1))))
    (func (export "locked_increment") (param $n i32)
      (loop $again
        (call $lock)
        (i32.store (i32.const 16) (i32.add (i32.load (i32.const 16)) (i32.const 1)))
        (call $unlock)
        (local.tee $n (i32.sub (local.get $n) (i32.const 1)))
        (br_if $again)))
    (func (export "wait") (param $expected i32) (param $timeout i64) (result i32)
      (memory.atomic.wait32 (i32.const 32) (local.get $expected) (local.get $timeout)))
    (func (export "notify") (param $count i32) (result i32)
      (memory.atomic.notify (i32.const 32) (local.get $count)))
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
    (func (export "size") (result i32) (memory.size))
    (func (export "misaligned") (result i32) (i32.atomic.load (i32.const 2))))"#;

fn instantiate(engine: &Engine, module: &Module, memory: &SharedMemory) -> (Store<()>, Instance) {
    let mut store = Store::new(engine, ());
    let mut linker = Linker::new(engine);
    linker
        .define(&mut store, "env", "memory", memory.clone())
        .unwrap();
    let instance = linker.instantiate(&mut store, module).unwrap();
    (store, instance)
}

fn setup() -> (Engine, Module, SharedMemory) {
    let engine = Engine::default();
    let module = Module::new(&engine, WORKER).unwrap();
    let memory = SharedMemory::new(&engine, MemoryType::shared(1, 4)).unwrap();
    (engine, module, memory)
}

fn read_u32(memory: &SharedMemory, at: usize) -> u32 {
    let mut word = [0u8; 4];
    memory.read(at, &mut word).unwrap();
    u32::from_le_bytes(word)
}

#[test]
fn eight_threads_times_a_million_atomic_increments_are_exact() {
    let (engine, module, memory) = setup();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let (mut store, instance) = instantiate(&engine, &module, &memory);
                let increment = instance
                    .get_typed_func::<i32, ()>(&mut store, "increment")
                    .unwrap();
                increment.call(&mut store, 1_000_000).unwrap();
            });
        }
    });
    assert_eq!(read_u32(&memory, 0), 8_000_000);
}

#[test]
fn eight_threads_times_100k_lock_protected_increments_are_exact() {
    let (engine, module, memory) = setup();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let (mut store, instance) = instantiate(&engine, &module, &memory);
                let locked = instance
                    .get_typed_func::<i32, ()>(&mut store, "locked_increment")
                    .unwrap();
                locked.call(&mut store, 100_000).unwrap();
            });
        }
    });
    assert_eq!(read_u32(&memory, 16), 800_000);
    assert_eq!(read_u32(&memory, 8), 0, "the lock is free at the end");
}

#[test]
fn wait_times_out_compares_and_is_woken_by_notify() {
    let (engine, module, memory) = setup();
    let (mut store, instance) = instantiate(&engine, &module, &memory);
    let wait = instance
        .get_typed_func::<(i32, i64), i32>(&mut store, "wait")
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        wait.call(&mut store, (0, 20_000_000)).unwrap(),
        2,
        "timed out"
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(20));
    assert_eq!(wait.call(&mut store, (7, -1)).unwrap(), 1, "not equal");
    let notify = instance
        .get_typed_func::<i32, i32>(&mut store, "notify")
        .unwrap();
    assert_eq!(notify.call(&mut store, 5).unwrap(), 0, "nobody waiting");
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let (mut store, instance) = instantiate(&engine, &module, &memory);
            let wait = instance
                .get_typed_func::<(i32, i64), i32>(&mut store, "wait")
                .unwrap();
            wait.call(&mut store, (0, -1)).unwrap()
        });
        // Notify until the waiter has been woken (it may not be parked yet).
        let mut woken = 0;
        while woken == 0 {
            woken = notify.call(&mut store, 1).unwrap();
            std::thread::yield_now();
        }
        assert_eq!(woken, 1);
        assert_eq!(waiter.join().unwrap(), 0, "woken");
    });
}

#[test]
fn growth_on_one_thread_is_seen_by_all() {
    let (engine, module, memory) = setup();
    let (mut store, instance) = instantiate(&engine, &module, &memory);
    let grow = instance
        .get_typed_func::<i32, i32>(&mut store, "grow")
        .unwrap();
    assert_eq!(grow.call(&mut store, 2).unwrap(), 1);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let (mut store, instance) = instantiate(&engine, &module, &memory);
            let size = instance
                .get_typed_func::<(), i32>(&mut store, "size")
                .unwrap();
            assert_eq!(size.call(&mut store, ()).unwrap(), 3);
        });
    });
    assert_eq!(memory.size(), 3);
    assert_eq!(
        grow.call(&mut store, 2).unwrap(),
        -1,
        "beyond the maximum of 4"
    );
}

#[test]
fn misaligned_atomics_and_waits_on_unshared_memory_trap() {
    let (engine, module, memory) = setup();
    let (mut store, instance) = instantiate(&engine, &module, &memory);
    let misaligned = instance
        .get_typed_func::<(), i32>(&mut store, "misaligned")
        .unwrap();
    let error = misaligned.call(&mut store, ()).unwrap_err();
    assert_eq!(error.as_trap().unwrap().code(), TrapCode::HeapMisaligned);
    let unshared = Module::new(
        &engine,
        r#"(module (memory 1)
            (func (export "wait") (result i32) (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &unshared, &[]).unwrap();
    let wait = instance
        .get_typed_func::<(), i32>(&mut store, "wait")
        .unwrap();
    let error = wait.call(&mut store, ()).unwrap_err();
    assert_eq!(
        error.as_trap().unwrap().code(),
        TrapCode::AtomicWaitNonSharedMemory
    );
}

/// Regression: two threads needing the trampolines of a new function type at once
/// used to get different copies, and one copy was unmapped while still in use.
#[test]
fn concurrent_first_use_of_a_signature_is_safe() {
    let engine = Arc::new(Engine::default());
    std::thread::scope(|scope| {
        for t in 0..8i64 {
            let engine = engine.clone();
            scope.spawn(move || {
                let mut store = Store::new(&engine, ());
                let f = Func::wrap(&mut store, move |a: i64, b: f64, c: i32| {
                    a + b as i64 + i64::from(c) + t
                });
                let typed = f.typed::<(i64, f64, i32), i64>(&store).unwrap();
                for _ in 0..1000 {
                    assert_eq!(typed.call(&mut store, (1, 2.0, 3)).unwrap(), 6 + t);
                }
            });
        }
    });
}

/// `InstancePre` resolves imports once and instantiates in many stores, on many
/// threads.
#[test]
fn instance_pre_instantiates_on_many_threads() {
    fn assert_send_sync<X: Send + Sync>(_: &X) {}
    let (engine, module, memory) = setup();
    let mut linker: Linker<()> = Linker::new(&engine);
    linker
        .define(
            &mut Store::new(&engine, ()),
            "env",
            "memory",
            memory.clone(),
        )
        .unwrap();
    let pre = linker.instantiate_pre(&module).unwrap();
    assert_send_sync(&pre);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let pre = pre.clone();
            let engine = &engine;
            scope.spawn(move || {
                let mut store = Store::new(engine, ());
                let instance = pre.instantiate(&mut store).unwrap();
                let increment = instance
                    .get_typed_func::<i32, ()>(&mut store, "increment")
                    .unwrap();
                increment.call(&mut store, 1000).unwrap();
            });
        }
    });
    assert_eq!(read_u32(&memory, 0), 4000);
    // Store-bound imports are refused with a clear error.
    let mut store = Store::new(&engine, ());
    let local = wazerox::Memory::new(&mut store, MemoryType::new(1, None)).unwrap();
    let mut bound: Linker<()> = Linker::new(&engine);
    bound.define(&mut store, "env", "memory", local).unwrap();
    assert!(
        bound
            .instantiate_pre(&module)
            .unwrap_err()
            .to_string()
            .contains("bound to a store")
    );
}
