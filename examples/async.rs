//! Async host functions and async calls under tokio: 100 guest calls run
//! concurrently on a two-thread runtime, each awaiting a host "lookup" that
//! sleeps; a guest that spins forever yields at epoch deadlines, so it neither
//! starves the others nor escapes its timeout.
//!
//! `cargo run --release --example async`

use std::time::{Duration, Instant};
use wazerox::{Caller, Config, Engine, Linker, Module, Store};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), wazerox::Error> {
    let mut config = Config::new();
    config.async_support(true).epoch_interruption(true);
    let engine = Engine::new(&config)?;
    let module = Module::new(
        &engine,
        r#"(module
             (import "host" "lookup" (func $lookup (param i32) (result i32)))
             (func (export "handle") (param i32) (result i32)
               (i32.add (call $lookup (local.get 0)) (i32.const 1)))
             (func (export "spin") (loop $forever (br $forever))))"#,
    )?;
    let mut linker: Linker<()> = Linker::new(&engine);
    // An async host function: the future may await anything (a database, a
    // timer); while it is pending, the Wasm call is suspended and the worker
    // thread runs other tasks.
    linker.func_wrap_async("host", "lookup", |_caller: Caller<'_, ()>, key: i32| {
        Box::new(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            key * 10
        })
    })?;
    let pre = linker.instantiate_pre(&module)?;

    // Epochs advance every millisecond; a store that asks to yield at its
    // deadline gives the executor back its thread at each tick.
    let ticker = engine.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(1));
            ticker.increment_epoch();
        }
    });

    let start = Instant::now();
    let mut tasks = Vec::new();
    for request in 0..100 {
        let (engine, pre) = (engine.clone(), pre.clone());
        tasks.push(tokio::spawn(async move {
            let mut store = Store::new(&engine, ());
            let instance = pre.instantiate_async(&mut store).await?;
            let handle = instance.get_typed_func::<i32, i32>(&mut store, "handle")?;
            handle.call_async(&mut store, request).await
        }));
    }
    let runaway = tokio::spawn({
        let (engine, pre) = (engine.clone(), pre.clone());
        async move {
            let mut store = Store::new(&engine, ());
            store.epoch_deadline_async_yield_and_update(1);
            let instance = pre.instantiate_async(&mut store).await?;
            let spin = instance.get_typed_func::<(), ()>(&mut store, "spin")?;
            // Dropping the call at the timeout cancels it cleanly.
            let outcome =
                tokio::time::timeout(Duration::from_millis(300), spin.call_async(&mut store, ()))
                    .await;
            Ok::<bool, wazerox::Error>(outcome.is_err())
        }
    });
    let mut sum = 0;
    for task in tasks {
        sum += task.await.expect("the task ran")?;
    }
    let elapsed = start.elapsed();
    println!(
        "100 concurrent calls answered (sum {sum}) in about one lookup: {}",
        if elapsed < Duration::from_secs(2) {
            "yes"
        } else {
            "no"
        }
    );
    let timed_out = runaway.await.expect("the task ran")?;
    println!("the spinning guest was stopped by its timeout: {timed_out}");
    Ok(())
}
