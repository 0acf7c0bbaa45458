//! The cost of async: a Wasm→host call of an async host function (whose future
//! is ready at once) against a sync one, and a host→Wasm `call_async` (a fiber
//! switch in and out, stack from the engine's pool) against `call`.
//!
//! `cd benches && cargo bench --bench async_calls`

use criterion::{Criterion, criterion_group, criterion_main};
use wazerox::{Caller, Config, Engine, Linker, Module, Store};

const HOST_LOOP: &str = include_str!("../wat/host_call_loop.wat");

const CALLS: i32 = 100_000;

fn async_engine() -> Engine {
    let mut config = Config::new();
    config.async_support(true);
    Engine::new(&config).unwrap()
}

fn calls(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    // Sync engine, sync host function: the baseline.
    let engine = Engine::default();
    let module = Module::new(&engine, HOST_LOOP).unwrap();
    let mut sync_store = Store::new(&engine, ());
    let mut linker: Linker<()> = Linker::new(&engine);
    linker
        .func_wrap("host", "inc", |x: i32| x.wrapping_add(1))
        .unwrap();
    let instance = linker.instantiate(&mut sync_store, &module).unwrap();
    let sync_loop = instance
        .get_typed_func::<i32, i32>(&mut sync_store, "loop")
        .unwrap();
    let sync_identity = instance
        .get_typed_func::<i32, i32>(&mut sync_store, "identity")
        .unwrap();

    // Async engine: the same loop calling a sync host function, and one calling
    // an async host function whose future is ready when first polled.
    let engine = async_engine();
    let module = Module::new(&engine, HOST_LOOP).unwrap();
    let mut linker: Linker<()> = Linker::new(&engine);
    linker
        .func_wrap("host", "inc", |x: i32| x.wrapping_add(1))
        .unwrap();
    let mut async_store_sync_fn = Store::new(&engine, ());
    let instance = rt
        .block_on(linker.instantiate_async(&mut async_store_sync_fn, &module))
        .unwrap();
    let loop_sync_fn = instance
        .get_typed_func::<i32, i32>(&mut async_store_sync_fn, "loop")
        .unwrap();
    let async_identity = instance
        .get_typed_func::<i32, i32>(&mut async_store_sync_fn, "identity")
        .unwrap();
    let mut linker: Linker<()> = Linker::new(&engine);
    linker
        .func_wrap_async("host", "inc", |_caller: Caller<'_, ()>, x: i32| {
            Box::new(async move { x.wrapping_add(1) })
        })
        .unwrap();
    let mut async_store = Store::new(&engine, ());
    let instance = rt
        .block_on(linker.instantiate_async(&mut async_store, &module))
        .unwrap();
    let loop_async_fn = instance
        .get_typed_func::<i32, i32>(&mut async_store, "loop")
        .unwrap();

    let mut group = c.benchmark_group("wasm->host call x100k");
    group.sample_size(20);
    group.bench_function("sync host fn, call", |b| {
        b.iter(|| sync_loop.call(&mut sync_store, CALLS).unwrap())
    });
    group.bench_function("sync host fn, call_async", |b| {
        b.iter(|| {
            rt.block_on(loop_sync_fn.call_async(&mut async_store_sync_fn, CALLS))
                .unwrap()
        })
    });
    group.bench_function("async host fn (ready future), call_async", |b| {
        b.iter(|| {
            rt.block_on(loop_async_fn.call_async(&mut async_store, CALLS))
                .unwrap()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("host->wasm call (i32)->i32");
    group.bench_function("call", |b| {
        b.iter(|| sync_identity.call(&mut sync_store, 7).unwrap())
    });
    group.bench_function("call_async", |b| {
        b.iter(|| {
            rt.block_on(async_identity.call_async(&mut async_store_sync_fn, 7))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, calls);
criterion_main!(benches);
