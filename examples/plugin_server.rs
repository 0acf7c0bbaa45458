//! The shape of a plugin host: compile once, instantiate per request from a pool,
//! and bound every request by fuel, a wall-clock deadline and a memory limit, so a
//! runaway plugin fails its own request and nothing else.
//!
//! `cargo run --release --example plugin_server`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wazerox::{
    Caller, Config, Engine, InstanceAllocationStrategy, Linker, Module, PoolingConfig, Store,
    StoreLimits, StoreLimitsBuilder,
};

/// `handle(request) -> response`: squares the request; request 13 loops forever
/// (the runaway), request 7 answers with what `memory.grow` to 64 MiB returned
/// (-1: the store's limit is 1 MiB).
const PLUGIN: &str = r#"(module
  (import "host" "log" (func $log (param i32)))
  (memory 1)
  (data (i32.const 0) "plugin state")
  (func (export "handle") (param $req i32) (result i32)
    (call $log (local.get $req))
    (if (i32.eq (local.get $req) (i32.const 13)) (then (loop $spin (br $spin))))
    (if (i32.eq (local.get $req) (i32.const 7))
      (then (return (memory.grow (i32.const 1023)))))
    (i32.mul (local.get $req) (local.get $req))))"#;

struct RequestState {
    limits: StoreLimits,
    logged: u32,
}

fn main() -> Result<(), wazerox::Error> {
    let mut pool = PoolingConfig::new();
    pool.total_memories(64).max_memory_size(16 << 20);
    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .consume_fuel(true)
        .epoch_interruption(true);
    let engine = Engine::new(&config)?;
    let module = Module::new(&engine, PLUGIN)?;

    // Linking is resolved once; each request only instantiates.
    let mut linker: Linker<RequestState> = Linker::new(&engine);
    linker.func_wrap(
        "host",
        "log",
        |mut caller: Caller<'_, RequestState>, _req: i32| {
            caller.data_mut().logged += 1;
        },
    )?;
    let pre = linker.instantiate_pre(&module)?;

    // One epoch tick every 10 ms; a request may take at most 5 ticks.
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (engine, stop) = (engine.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                engine.increment_epoch();
            }
        })
    };

    let (mut ok, mut failed) = (0, 0);
    for request in 0..1000 {
        let state = RequestState {
            limits: StoreLimitsBuilder::new().memory_size(1 << 20).build(),
            logged: 0,
        };
        let mut store = Store::new(&engine, state);
        store.limiter(|state| &mut state.limits);
        store.set_fuel(1_000_000)?;
        store.set_epoch_deadline(5);
        let instance = pre.instantiate(&mut store)?;
        let handle = instance.get_typed_func::<i32, i32>(&mut store, "handle")?;
        match handle.call(&mut store, request % 20) {
            Ok(response) => {
                ok += 1;
                if request < 3 || request == 7 {
                    println!("request {request}: response {response}");
                }
            }
            Err(e) => {
                failed += 1;
                if request < 20 {
                    println!(
                        "request {request}: failed: {}",
                        e.to_string().lines().next().unwrap_or("")
                    );
                }
            }
        }
        // Dropping the store returns the instance's memory slot to the pool.
    }
    stop.store(true, Ordering::Relaxed);
    ticker.join().expect("the ticker thread does not panic");
    println!("{ok} requests served, {failed} failed");
    Ok(())
}
