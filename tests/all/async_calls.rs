//! Async calls (`Config::async_support`, docs/async.md): Wasm on fibers, async
//! host functions suspending the call, epoch and fuel yields, traps and stack
//! overflows inside fibers, cancellation, and the sync/async mismatch errors.

use crate::checkpoint::{HoldsSnapshots, Snapshots, define_checkpoint_functions};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wazerox::{Caller, Config, Engine, Error, ErrorKind, Func, Linker, Module, Store, TrapCode};

fn async_engine(configure: impl FnOnce(&mut Config)) -> Engine {
    let mut config = Config::new();
    config.async_support(true);
    configure(&mut config);
    Engine::new(&config).unwrap()
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_time()
        .build()
        .unwrap()
}

/// Counts the host calls suspended at once.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

#[test]
fn thousand_concurrent_calls_await_a_host_timer() {
    const CALLS: i32 = 1000;
    const TIMER: Duration = Duration::from_millis(200);
    let engine = async_engine(|_| {});
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "sleep_double" (func $sleep_double (param i32) (result i32)))
            (func (export "run") (param i32) (result i32)
              local.get 0 call $sleep_double i32.const 1 i32.add))"#,
    )
    .unwrap();
    let in_flight = Arc::new(InFlight::default());
    let mut linker: Linker<()> = Linker::new(&engine);
    let counter = in_flight.clone();
    linker
        .func_wrap_async(
            "host",
            "sleep_double",
            move |_caller: Caller<'_, ()>, x: i32| {
                let counter = counter.clone();
                Box::new(async move {
                    let now = counter.now.fetch_add(1, Ordering::SeqCst) + 1;
                    counter.max.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(TIMER).await;
                    counter.now.fetch_sub(1, Ordering::SeqCst);
                    x * 2
                })
            },
        )
        .unwrap();
    let pre = Arc::new(linker.instantiate_pre(&module).unwrap());
    let rt = runtime(2);
    let start = Instant::now();
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..CALLS)
            .map(|i| {
                let (engine, pre) = (engine.clone(), pre.clone());
                tokio::spawn(async move {
                    let mut store = Store::new(&engine, ());
                    let instance = pre.instantiate_async(&mut store).await?;
                    let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
                    run.call_async(&mut store, i).await
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap().unwrap());
        }
        results
    });
    let elapsed = start.elapsed();
    for (i, result) in results.iter().enumerate() {
        assert_eq!(*result, 2 * i as i32 + 1);
    }
    // Every call was suspended in its host function at the same time as many
    // others: the two worker threads were never blocked by a sleeping call.
    assert!(
        in_flight.max.load(Ordering::SeqCst) > 100,
        "at most {} calls were suspended at once",
        in_flight.max.load(Ordering::SeqCst)
    );
    // About one timer's duration (1000 sequential sleeps would take 200 s).
    assert!(
        elapsed < TIMER * 15,
        "1000 concurrent calls took {elapsed:?} for a {TIMER:?} timer"
    );
}

/// Increments the engine's epoch every millisecond until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: &Engine) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let (engine, flag) = (engine.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                engine.increment_epoch();
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        EpochTicker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
    }
}

const SPIN: &str = r#"(module
    (func (export "spin") (loop $l (br $l)))
    (func (export "answer") (result i32) i32.const 42))"#;

/// On a single-threaded executor, a guest spinning forever lets another task
/// run only by yielding; the timeout then cancels it, and the store works on.
#[test]
fn spinning_guest_yields_on_epoch_deadlines() {
    let engine = async_engine(|c| {
        c.epoch_interruption(true);
    });
    let module = Module::new(&engine, SPIN).unwrap();
    let _ticker = EpochTicker::start(&engine);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut store = Store::new(&engine, ());
        store.epoch_deadline_async_yield_and_update(1);
        let instance = Linker::new(&engine)
            .instantiate_async(&mut store, &module)
            .await
            .unwrap();
        let spin = instance
            .get_typed_func::<(), ()>(&mut store, "spin")
            .unwrap();
        let ticks = Arc::new(AtomicUsize::new(0));
        let counter = ticks.clone();
        let other = tokio::spawn(async move {
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        let outcome =
            tokio::time::timeout(Duration::from_millis(300), spin.call_async(&mut store, ())).await;
        assert!(outcome.is_err(), "the spinning call cannot finish");
        other.await.unwrap();
        assert_eq!(ticks.load(Ordering::SeqCst), 20);
        // The cancelled call ended cleanly: the store runs the next call.
        let answer = instance
            .get_typed_func::<(), i32>(&mut store, "answer")
            .unwrap();
        assert_eq!(answer.call_async(&mut store, ()).await.unwrap(), 42);
    });
}

/// Without the async yield, the deadline still traps inside an async call.
#[test]
fn epoch_deadline_traps_in_async_call_by_default() {
    let engine = async_engine(|c| {
        c.epoch_interruption(true);
    });
    let module = Module::new(&engine, SPIN).unwrap();
    let _ticker = EpochTicker::start(&engine);
    runtime(1).block_on(async {
        let mut store = Store::new(&engine, ());
        store.set_epoch_deadline(5);
        let instance = Linker::new(&engine)
            .instantiate_async(&mut store, &module)
            .await
            .unwrap();
        let spin = instance
            .get_typed_func::<(), ()>(&mut store, "spin")
            .unwrap();
        let error = spin.call_async(&mut store, ()).await.unwrap_err();
        assert_eq!(error.as_trap().unwrap().code(), TrapCode::Interrupt);
    });
}

#[test]
fn fuel_yields_and_still_runs_out() {
    let engine = async_engine(|c| {
        c.consume_fuel(true);
    });
    let module = Module::new(&engine, SPIN).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut store = Store::new(&engine, ());
        store.set_fuel(2_000_000).unwrap();
        store.fuel_async_yield_interval(Some(10_000)).unwrap();
        assert_eq!(store.get_fuel().unwrap(), 2_000_000);
        let instance = Linker::new(&engine)
            .instantiate_async(&mut store, &module)
            .await
            .unwrap();
        let spin = instance
            .get_typed_func::<(), ()>(&mut store, "spin")
            .unwrap();
        let ticks = Arc::new(AtomicUsize::new(0));
        let counter = ticks.clone();
        // Another task on the same thread runs while the guest burns its fuel.
        let other = tokio::spawn(async move {
            loop {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        });
        let error = spin.call_async(&mut store, ()).await.unwrap_err();
        other.abort();
        assert_eq!(error.as_trap().unwrap().code(), TrapCode::OutOfFuel);
        assert_eq!(store.get_fuel().unwrap(), 0);
        // 2,000,000 units at 10,000 per interval: some 200 yields.
        let ran = ticks.load(Ordering::SeqCst);
        assert!(ran >= 100, "the other task ran {ran} times");
    });
}

#[test]
fn trap_inside_async_call_has_backtrace() {
    let engine = async_engine(|_| {});
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "wait" (func $wait))
            (func $fail (export "fail") call $wait unreachable))"#,
    )
    .unwrap();
    let mut linker: Linker<()> = Linker::new(&engine);
    linker
        .func_wrap_async("host", "wait", |_caller: Caller<'_, ()>, ()| {
            Box::new(tokio::time::sleep(Duration::from_millis(5)))
        })
        .unwrap();
    runtime(2).block_on(async {
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
        let fail = instance.get_func(&mut store, "fail").unwrap();
        let error = fail.call_async(&mut store, &[], &mut []).await.unwrap_err();
        let trap = error.as_trap().expect("a trap");
        assert_eq!(trap.code(), TrapCode::UnreachableCodeReached);
        let frame = &trap.backtrace()[0];
        assert_eq!(frame.func_name.as_deref(), Some("fail"));
    });
}

#[test]
fn stack_overflow_inside_async_call_is_a_trap() {
    let engine = async_engine(|_| {});
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "wait" (func $wait))
            (func $recurse (export "recurse") (param i32) (result i32)
              local.get 0 i32.const 1 i32.add call $recurse)
            (func (export "wait_then_recurse") (result i32)
              call $wait i32.const 0 call $recurse))"#,
    )
    .unwrap();
    let mut linker: Linker<()> = Linker::new(&engine);
    linker
        .func_wrap_async("host", "wait", |_caller: Caller<'_, ()>, ()| {
            Box::new(tokio::time::sleep(Duration::from_millis(5)))
        })
        .unwrap();
    runtime(2).block_on(async {
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
        let recurse = instance
            .get_typed_func::<i32, i32>(&mut store, "recurse")
            .unwrap();
        // Resumed after the host's sleep (possibly on the other worker thread).
        let after_wait = instance
            .get_typed_func::<(), i32>(&mut store, "wait_then_recurse")
            .unwrap();
        for _ in 0..3 {
            let error = recurse.call_async(&mut store, 0).await.unwrap_err();
            assert_eq!(error.as_trap().unwrap().code(), TrapCode::StackOverflow);
            let error = after_wait.call_async(&mut store, ()).await.unwrap_err();
            assert_eq!(error.as_trap().unwrap().code(), TrapCode::StackOverflow);
        }
    });
}

#[test]
fn async_host_function_error_ends_the_call() {
    let engine = async_engine(|_| {});
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "check" (func $check (param i32) (result i32)))
            (func (export "run") (param i32) (result i32) local.get 0 call $check))"#,
    )
    .unwrap();
    let mut linker: Linker<()> = Linker::new(&engine);
    linker
        .func_wrap_async("host", "check", |_caller: Caller<'_, ()>, x: i32| {
            Box::new(async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                if x < 0 {
                    Err(Error::msg(format!("negative input {x}")))
                } else {
                    Ok(x + 100)
                }
            })
        })
        .unwrap();
    runtime(2).block_on(async {
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
        let run = instance
            .get_typed_func::<i32, i32>(&mut store, "run")
            .unwrap();
        let error = run.call_async(&mut store, -5).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Host);
        assert!(error.to_string().contains("negative input -5"), "{error}");
        assert_eq!(run.call_async(&mut store, 5).await.unwrap(), 105);
    });
}

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn dropping_a_suspended_call_cancels_it_cleanly() {
    let engine = async_engine(|_| {});
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "forever" (func $forever))
            (global $after (mut i32) (i32.const 0))
            (func (export "hang") call $forever i32.const 1 global.set $after)
            (func (export "after") (result i32) global.get $after))"#,
    )
    .unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    let mut linker: Linker<()> = Linker::new(&engine);
    linker
        .func_wrap_async("host", "forever", move |_caller: Caller<'_, ()>, ()| {
            let guard = DropFlag(flag.clone());
            Box::new(async move {
                let _guard = guard;
                std::future::pending::<()>().await
            })
        })
        .unwrap();
    runtime(2).block_on(async {
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
        let hang = instance
            .get_typed_func::<(), ()>(&mut store, "hang")
            .unwrap();
        let after = instance
            .get_typed_func::<(), i32>(&mut store, "after")
            .unwrap();
        for round in 0..200 {
            dropped.store(false, Ordering::SeqCst);
            let outcome =
                tokio::time::timeout(Duration::from_millis(1), hang.call_async(&mut store, ()))
                    .await;
            assert!(outcome.is_err(), "round {round}: the call cannot finish");
            // The host future was dropped, the Wasm frames ended without
            // running the rest of `hang`, and the store works.
            assert!(dropped.load(Ordering::SeqCst));
            assert_eq!(after.call_async(&mut store, ()).await.unwrap(), 0);
        }
    });
}

/// A call whose future is dropped before its first poll never runs.
#[test]
fn dropping_an_unpolled_call_runs_nothing() {
    let engine = async_engine(|_| {});
    let module = Module::new(
        &engine,
        r#"(module (global $g (export "g") (mut i32) (i32.const 0))
            (func (export "set") i32.const 7 global.set $g))"#,
    )
    .unwrap();
    runtime(1).block_on(async {
        let mut store = Store::new(&engine, ());
        let instance = Linker::new(&engine)
            .instantiate_async(&mut store, &module)
            .await
            .unwrap();
        let set = instance
            .get_typed_func::<(), ()>(&mut store, "set")
            .unwrap();
        drop(set.call_async(&mut store, ()));
        let g = instance.get_global(&mut store, "g").unwrap();
        assert_eq!(g.get(&mut store).i32(), Some(0));
        set.call_async(&mut store, ()).await.unwrap();
        assert_eq!(g.get(&mut store).i32(), Some(7));
    });
}

#[test]
fn sync_and_async_mismatches_are_usage_errors() {
    let wat = r#"(module (func (export "f") (result i32) i32.const 1))"#;
    // Async engine, sync calls.
    let engine = async_engine(|_| {});
    let module = Module::new(&engine, wat).unwrap();
    let mut store = Store::new(&engine, ());
    let error = Linker::new(&engine)
        .instantiate(&mut store, &module)
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Usage);
    assert!(error.to_string().contains("instantiate_async"), "{error}");
    let instance = runtime(1)
        .block_on(Linker::new(&engine).instantiate_async(&mut store, &module))
        .unwrap();
    let f = instance.get_typed_func::<(), i32>(&mut store, "f").unwrap();
    let error = f.call(&mut store, ()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Usage);
    assert!(error.to_string().contains("call_async"), "{error}");

    // Sync engine, async calls.
    let engine = Engine::default();
    let module = Module::new(&engine, wat).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Linker::new(&engine)
        .instantiate(&mut store, &module)
        .unwrap();
    let f = instance.get_typed_func::<(), i32>(&mut store, "f").unwrap();
    let error = runtime(1)
        .block_on(f.call_async(&mut store, ()))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Usage);
    assert!(error.to_string().contains("async support"), "{error}");
    let mut linker: Linker<()> = Linker::new(&engine);
    let error = linker
        .func_wrap_async(
            "host",
            "f",
            |_caller: Caller<'_, ()>, ()| Box::new(async {}),
        )
        .map(|_| ())
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Usage);
}

/// A sync host function inside an async call may call back into Wasm
/// synchronously: that runs on the call's fiber, and may itself await.
#[test]
fn nested_calls_inside_an_async_call_run_on_its_fiber() {
    let engine = async_engine(|_| {});
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "reenter" (func $reenter (param i32) (result i32)))
            (import "host" "wait" (func $wait (param i32) (result i32)))
            (func (export "inner") (param i32) (result i32)
              local.get 0 call $wait i32.const 10 i32.mul)
            (func (export "outer") (param i32) (result i32)
              local.get 0 call $reenter i32.const 1 i32.add))"#,
    )
    .unwrap();
    let mut linker: Linker<()> = Linker::new(&engine);
    linker
        .func_wrap_async("host", "wait", |_caller: Caller<'_, ()>, x: i32| {
            Box::new(async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                x + 1
            })
        })
        .unwrap();
    linker
        .func_wrap(
            "host",
            "reenter",
            |mut caller: Caller<'_, ()>, x: i32| -> Result<i32, Error> {
                let inner = caller.get_export("inner").unwrap().into_func().unwrap();
                let inner = inner.typed::<i32, i32>(&caller)?;
                inner.call(&mut caller, x)
            },
        )
        .unwrap();
    runtime(2).block_on(async {
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
        let outer = instance
            .get_typed_func::<i32, i32>(&mut store, "outer")
            .unwrap();
        assert_eq!(outer.call_async(&mut store, 4).await.unwrap(), 51);
    });
}

/// Snapshots belong to the fiber's activation: one taken in an async call is
/// restored within it, even after the call moved threads at an await; the
/// same snapshot cannot be restored by another async call.
#[test]
fn checkpoint_restore_inside_an_async_call() {
    type State = Snapshots;
    let engine = async_engine(|_| {});
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "checkpoint" (func $checkpoint (result i32)))
            (import "host" "wait" (func $wait))
            (import "host" "restore" (func $restore (param i32)))
            (func (export "run") (result i32) (local $v i32)
              call $checkpoint
              local.tee $v
              i32.const 3
              i32.lt_s
              if
                call $wait
                local.get $v i32.const 1 i32.add
                call $restore
              end
              local.get $v)
            (func (export "restore_only") i32.const 9 call $restore))"#,
    )
    .unwrap();
    let mut linker: Linker<State> = Linker::new(&engine);
    define_checkpoint_functions(&mut linker);
    linker
        .func_wrap_async("host", "wait", |_caller: Caller<'_, State>, ()| {
            Box::new(tokio::time::sleep(Duration::from_millis(2)))
        })
        .unwrap();
    runtime(2).block_on(async {
        let mut store = Store::new(&engine, State::default());
        let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
        let run = instance
            .get_typed_func::<(), i32>(&mut store, "run")
            .unwrap();
        assert_eq!(run.call_async(&mut store, ()).await.unwrap(), 3);
        assert_eq!(store.data().restores, 3);
        // The snapshot's activation (and fiber) has ended: another call cannot
        // restore it.
        let restore_only = instance
            .get_typed_func::<(), ()>(&mut store, "restore_only")
            .unwrap();
        let error = restore_only.call_async(&mut store, ()).await.unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("another thread or fiber") || message.contains("stale"),
            "{message}"
        );
    });
}

/// An async host function reached outside an async call (from a sync call of a
/// store in another, sync-only engine is impossible: it needs an async engine)
/// fails clearly when `Func::wrap_async` is used without async support.
#[test]
#[should_panic(expected = "without enabling async support")]
fn wrap_async_needs_async_support() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    Func::wrap_async(
        &mut store,
        |_caller: Caller<'_, ()>, ()| -> Box<dyn Future<Output = ()> + Send> { Box::new(async {}) },
    );
}

/// Futures of async calls are `Send`, so they run on multi-threaded executors.
#[test]
fn async_call_futures_are_send() {
    fn assert_send<F: Future + Send>(_: &F) {}
    let engine = async_engine(|_| {});
    let module = Module::new(&engine, SPIN).unwrap();
    let mut store = Store::new(&engine, Mutex::new(0u32));
    let linker: Linker<Mutex<u32>> = Linker::new(&engine);
    let future = linker.instantiate_async(&mut store, &module);
    assert_send(&future);
    drop(future);
}

/// A panicking async host function resumes its panic in the poll of the call;
/// the fiber ended, and the store works on.
#[test]
fn panic_in_async_host_function_reaches_the_poller() {
    let engine = async_engine(|_| {});
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "boom" (func $boom (param i32) (result i32)))
            (func (export "run") (param i32) (result i32) local.get 0 call $boom))"#,
    )
    .unwrap();
    let mut linker: Linker<()> = Linker::new(&engine);
    linker
        .func_wrap_async("host", "boom", |_caller: Caller<'_, ()>, x: i32| {
            Box::new(async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                if x == 13 {
                    panic!("unlucky {x}");
                }
                x
            })
        })
        .unwrap();
    let rt = runtime(2);
    let mut store = Store::new(&engine, ());
    let instance = rt
        .block_on(linker.instantiate_async(&mut store, &module))
        .unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(run.call_async(&mut store, 13))
    }))
    .unwrap_err();
    assert_eq!(panic.downcast_ref::<String>().unwrap(), "unlucky 13");
    assert_eq!(rt.block_on(run.call_async(&mut store, 12)).unwrap(), 12);
}

/// An async host function keeps its `Caller` across awaits (the future is
/// `Send`), reaches the store after them, and may make a nested async call
/// into the same store, which runs on a fiber of its own. A snapshot of the
/// outer call cannot be restored from that nested call: it lives on another
/// fiber's stack.
#[test]
fn async_host_function_uses_its_caller_across_awaits_and_nests_calls() {
    #[derive(Default)]
    struct State {
        snapshots: Snapshots,
        seen: Vec<i32>,
    }
    impl HoldsSnapshots for State {
        fn snapshots(&mut self) -> &mut Snapshots {
            &mut self.snapshots
        }
    }
    let engine = async_engine(|_| {});
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "checkpoint" (func $checkpoint (result i32)))
            (import "host" "visit" (func $visit (param i32) (result i32)))
            (import "host" "restore" (func $restore (param i32)))
            (func (export "inner") (param i32) (result i32)
              local.get 0 i32.const 3 i32.mul)
            (func (export "restore_outer") i32.const 5 call $restore)
            (func (export "outer") (param i32) (result i32)
              call $checkpoint drop
              local.get 0 call $visit))"#,
    )
    .unwrap();
    let mut linker: Linker<State> = Linker::new(&engine);
    define_checkpoint_functions(&mut linker);
    linker
        .func_wrap_async("host", "visit", |mut caller: Caller<'_, State>, x: i32| {
            Box::new(async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                caller.data_mut().seen.push(x);
                let inner = caller.get_export("inner").unwrap().into_func().unwrap();
                let inner = inner.typed::<i32, i32>(&caller)?;
                let tripled = inner.call_async(&mut caller, x).await?;
                caller.data_mut().seen.push(tripled);
                let restore = caller.get_export("restore_outer").unwrap();
                let restore = restore.into_func().unwrap().typed::<(), ()>(&caller)?;
                let error = restore.call_async(&mut caller, ()).await.unwrap_err();
                assert!(
                    error.to_string().contains("another thread or fiber"),
                    "{error}"
                );
                Ok::<i32, Error>(tripled + 1)
            })
        })
        .unwrap();
    runtime(2).block_on(async {
        let mut store = Store::new(&engine, State::default());
        let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
        let outer = instance
            .get_typed_func::<i32, i32>(&mut store, "outer")
            .unwrap();
        assert_eq!(outer.call_async(&mut store, 7).await.unwrap(), 22);
        assert_eq!(store.data().seen, vec![7, 21]);
    });
}

/// Without async support an epoch "yield" would only move the deadline on, so
/// a spinning guest could never be stopped: asking for it is refused.
#[test]
#[should_panic(expected = "without enabling async support")]
fn epoch_yield_needs_async_support() {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let mut store = Store::new(&engine, ());
    store.epoch_deadline_async_yield_and_update(1);
}

#[test]
fn fuel_yield_interval_needs_async_support() {
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config).unwrap();
    let mut store = Store::new(&engine, ());
    let error = store.fuel_async_yield_interval(Some(100)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Usage);
}
