//! Pooled instantiation, side by side with wasmtime's pooling allocator:
//! a module whose only state is a 10,000-element funcref table (no memory), and
//! the request/response cycle of a small plugin (1 MiB of data, one export):
//! new store, instantiate, call, drop.
//!
//! `cd benches && cargo bench --bench pooling`

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "../src/plugin_modules.rs"]
mod plugin_modules;
use plugin_modules::{plugin_module, table_module};

fn wazerox_engine() -> wazerox::Engine {
    let mut config = wazerox::Config::new();
    config.allocation_strategy(wazerox::InstanceAllocationStrategy::pooling());
    wazerox::Engine::new(&config).unwrap()
}

fn wasmtime_engine() -> wasmtime::Engine {
    let mut config = wasmtime::Config::new();
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::pooling());
    wasmtime::Engine::new(&config).unwrap()
}

fn table_instantiation(c: &mut Criterion) {
    let wat = table_module();
    let mut group = c.benchmark_group("pooled instantiate, 10,000-element funcref table");
    let engine = wazerox_engine();
    let module = wazerox::Module::new(&engine, &wat).unwrap();
    let pre = wazerox::Linker::new(&engine)
        .instantiate_pre(&module)
        .unwrap();
    let wt_engine = wasmtime_engine();
    let wt_module = wasmtime::Module::new(&wt_engine, &wat).unwrap();
    let wt_pre = wasmtime::Linker::new(&wt_engine)
        .instantiate_pre(&wt_module)
        .unwrap();
    group.bench_function("wazerox", |b| {
        b.iter(|| {
            let mut store = wazerox::Store::new(&engine, ());
            pre.instantiate(&mut store).unwrap();
        })
    });
    group.bench_function("wasmtime", |b| {
        b.iter(|| {
            let mut store = wasmtime::Store::new(&wt_engine, ());
            wt_pre.instantiate(&mut store).unwrap();
        })
    });
    group.finish();
}

fn plugin_requests(c: &mut Criterion) {
    let wat = plugin_module();
    let mut group = c.benchmark_group("plugin request: new store, instantiate, call, drop");
    let engine = wazerox_engine();
    let module = wazerox::Module::new(&engine, &wat).unwrap();
    let pre = wazerox::Linker::new(&engine)
        .instantiate_pre(&module)
        .unwrap();
    let wt_engine = wasmtime_engine();
    let wt_module = wasmtime::Module::new(&wt_engine, &wat).unwrap();
    let wt_pre = wasmtime::Linker::new(&wt_engine)
        .instantiate_pre(&wt_module)
        .unwrap();
    group.bench_function("wazerox", |b| {
        b.iter(|| {
            let mut store = wazerox::Store::new(&engine, ());
            let instance = pre.instantiate(&mut store).unwrap();
            let run = instance
                .get_typed_func::<i32, i32>(&mut store, "run")
                .unwrap();
            assert_eq!(run.call(&mut store, 5).unwrap(), 47);
        })
    });
    group.bench_function("wasmtime", |b| {
        b.iter(|| {
            let mut store = wasmtime::Store::new(&wt_engine, ());
            let instance = wt_pre.instantiate(&mut store).unwrap();
            let run = instance
                .get_typed_func::<i32, i32>(&mut store, "run")
                .unwrap();
            assert_eq!(run.call(&mut store, 5).unwrap(), 47);
        })
    });
    group.finish();
}

criterion_group!(benches, table_instantiation, plugin_requests);
criterion_main!(benches);
