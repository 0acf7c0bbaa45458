//! Fuel and epoch interruption: runaway guests are stopped with a typed trap and the
//! store stays usable.

use std::time::{Duration, Instant};
use wazerox::{Config, Engine, Instance, Module, Store, TrapCode};

const SPIN: &str = r#"(module
    (func (export "forever") (loop $l (br $l)))
    (func $recurse (export "recurse_forever") (param i32) (result i32)
      (i32.add (local.get 0) (call $recurse (local.get 0))))
    (func (export "count") (param $n i32) (result i32)
      (local $i i32)
      (loop $l
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
      (local.get $i)))"#;

fn setup(config: &Config) -> (Store<()>, Instance) {
    let engine = Engine::new(config).unwrap();
    let module = Module::new(&engine, SPIN).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    (store, instance)
}

#[test]
fn fuel_stops_an_infinite_loop_and_is_accounted() {
    let mut config = Config::new();
    config.consume_fuel(true);
    let (mut store, instance) = setup(&config);
    let forever = instance
        .get_typed_func::<(), ()>(&mut store, "forever")
        .unwrap();
    store.set_fuel(100_000).unwrap();
    let error = forever.call(&mut store, ()).unwrap_err();
    assert_eq!(error.as_trap().unwrap().code(), TrapCode::OutOfFuel);
    assert_eq!(store.get_fuel().unwrap(), 0);
    // Usable again once refuelled; a bounded loop consumes fuel proportional to work.
    let count = instance
        .get_typed_func::<i32, i32>(&mut store, "count")
        .unwrap();
    store.set_fuel(1_000_000).unwrap();
    assert_eq!(count.call(&mut store, 1000).unwrap(), 1000);
    let used = 1_000_000 - store.get_fuel().unwrap();
    assert!(
        (1000..20_000).contains(&used),
        "used {used} fuel for 1000 iterations"
    );
    store.set_fuel(500).unwrap();
    let error = count.call(&mut store, 1_000_000).unwrap_err();
    assert_eq!(error.as_trap().unwrap().code(), TrapCode::OutOfFuel);
}

#[test]
fn epoch_from_another_thread_interrupts_within_milliseconds() {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let (mut store, instance) = setup(&config);
    let forever = instance
        .get_typed_func::<(), ()>(&mut store, "forever")
        .unwrap();
    store.set_epoch_deadline(1);
    let engine = store.engine().clone();
    let started = Instant::now();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ticker_done = done.clone();
    let ticker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        engine.increment_epoch();
        // Watchdog: a broken interruption must fail the run, not hang CI.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ticker_done.load(std::sync::atomic::Ordering::SeqCst) {
            if Instant::now() > deadline {
                eprintln!("epoch interruption did not stop the loop within 20 s");
                std::process::abort();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let error = forever.call(&mut store, ()).unwrap_err();
    let elapsed = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    ticker.join().unwrap();
    assert_eq!(error.as_trap().unwrap().code(), TrapCode::Interrupt);
    assert!(
        elapsed < Duration::from_millis(500),
        "interrupted after {elapsed:?}"
    );
    // The deadline is in the past now: set a new one and work runs again.
    store.set_epoch_deadline(1);
    let count = instance
        .get_typed_func::<i32, i32>(&mut store, "count")
        .unwrap();
    assert_eq!(count.call(&mut store, 10).unwrap(), 10);
}

#[test]
fn interruption_is_off_by_default() {
    let (mut store, instance) = setup(&Config::new());
    assert!(
        store.set_fuel(10).is_err(),
        "fuel needs Config::consume_fuel"
    );
    store.engine().increment_epoch();
    let count = instance
        .get_typed_func::<i32, i32>(&mut store, "count")
        .unwrap();
    assert_eq!(count.call(&mut store, 100_000).unwrap(), 100_000);
}

#[test]
fn recursion_without_loops_is_stopped_too() {
    let mut config = Config::new();
    config.consume_fuel(true);
    let (mut store, instance) = setup(&config);
    let recurse = instance
        .get_typed_func::<i32, i32>(&mut store, "recurse_forever")
        .unwrap();
    store.set_fuel(50).unwrap();
    let error = recurse.call(&mut store, 1).unwrap_err();
    assert_eq!(error.as_trap().unwrap().code(), TrapCode::OutOfFuel);
}
