//! Core execution and compilation benchmarks, each run on wazerox and on wasmtime
//! (same Cranelift generation) in the same process for a side-by-side ratio.
//!
//! `cd benches && cargo bench --bench core`

use criterion::{Criterion, criterion_group, criterion_main};
use std::time::Duration;

const FIB: &str = include_str!("../../examples/fib.wat");
const MEMORY_LOOP: &str = include_str!("../wat/memory_loop.wat");
const CALL_INDIRECT_LOOP: &str = include_str!("../wat/call_indirect_loop.wat");
/// The largest module of the shared corpus (SQLite); compile time only.
const LARGE_MODULE: &str = "../../shared/corpus/sqlite_bench.wasm";

fn wazerox_run(wat: &str, arg: i32) -> impl FnMut() -> i32 {
    let engine = wazerox::Engine::default();
    let module = wazerox::Module::new(&engine, wat).unwrap();
    let mut store = wazerox::Store::new(&engine, ());
    let instance = wazerox::Instance::new(&mut store, &module, &[]).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, module_entry(wat))
        .unwrap();
    move || run.call(&mut store, arg).unwrap()
}

fn wasmtime_run(wat: &str, arg: i32) -> impl FnMut() -> i32 {
    let engine = wasmtime::Engine::default();
    let module = wasmtime::Module::new(&engine, wat).unwrap();
    let mut store = wasmtime::Store::new(&engine, ());
    let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, module_entry(wat))
        .unwrap();
    move || run.call(&mut store, arg).unwrap()
}

fn module_entry(wat: &str) -> &'static str {
    if wat.contains("\"fib\"") {
        "fib"
    } else {
        "run"
    }
}

fn execution(c: &mut Criterion) {
    for (name, wat, arg) in [
        ("fib(30)", FIB, 30),
        ("memory_loop(16)", MEMORY_LOOP, 16),
        ("call_indirect_loop(10M)", CALL_INDIRECT_LOOP, 10_000_000),
    ] {
        let mut group = c.benchmark_group(name);
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(8));
        let (mut a, mut b) = (wazerox_run(wat, arg), wasmtime_run(wat, arg));
        assert_eq!(a(), b(), "both runtimes compute the same result");
        group.bench_function("wazerox", |bench| bench.iter(&mut a));
        group.bench_function("wasmtime", |bench| bench.iter(&mut b));
        group.finish();
    }
}

fn compilation(c: &mut Criterion) {
    let Ok(bytes) = std::fs::read(LARGE_MODULE) else {
        eprintln!("{LARGE_MODULE} not found: skipping the compile benchmark");
        return;
    };
    let mut group = c.benchmark_group("compile sqlite_bench.wasm");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    let wazerox_engine = wazerox::Engine::default();
    group.bench_function("wazerox", |b| {
        b.iter(|| wazerox::Module::new(&wazerox_engine, &bytes).unwrap())
    });
    let wasmtime_engine = wasmtime::Engine::default();
    group.bench_function("wasmtime", |b| {
        b.iter(|| wasmtime::Module::new(&wasmtime_engine, &bytes).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("load cached sqlite_bench artifact");
    let artifact = wazerox::Module::new(&wazerox_engine, &bytes)
        .unwrap()
        .serialize();
    group.bench_function("wazerox", |b| {
        b.iter(|| {
            // SAFETY: serialized just above by this process.
            unsafe { wazerox::Module::deserialize(&wazerox_engine, &artifact) }.unwrap()
        })
    });
    let wasmtime_artifact = wasmtime::Module::new(&wasmtime_engine, &bytes)
        .unwrap()
        .serialize()
        .unwrap();
    group.bench_function("wasmtime", |b| {
        b.iter(|| {
            // SAFETY: serialized just above by this process.
            unsafe { wasmtime::Module::deserialize(&wasmtime_engine, &wasmtime_artifact) }.unwrap()
        })
    });
    group.finish();
}

/// Instantiation of a module with 1 MiB of data segments (plus an exported function
/// called once, so the instance is used).
fn instantiation(c: &mut Criterion) {
    let data: String = (0..16)
        .map(|i| {
            format!(
                "(data (i32.const {}) \"{}\")",
                i * 65536,
                "\\2a".repeat(65536)
            )
        })
        .collect();
    let wat = format!(
        r#"(module (memory 17) {data} (func (export "peek") (result i32) (i32.load8_u (i32.const 0))))"#
    );
    let mut group = c.benchmark_group("instantiate 1 MiB of data segments");
    for pooling in [false, true] {
        let mut config = wazerox::Config::new();
        if pooling {
            config.allocation_strategy(wazerox::InstanceAllocationStrategy::pooling());
        }
        let engine = wazerox::Engine::new(&config).unwrap();
        let module = wazerox::Module::new(&engine, &wat).unwrap();
        let pre = wazerox::Linker::new(&engine)
            .instantiate_pre(&module)
            .unwrap();
        let name = if pooling {
            "wazerox (pooling, InstancePre)"
        } else {
            "wazerox (on-demand, InstancePre)"
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut store = wazerox::Store::new(&engine, ());
                pre.instantiate(&mut store).unwrap();
            })
        });
    }
    for pooling in [false, true] {
        let mut config = wasmtime::Config::new();
        if pooling {
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::pooling());
        }
        let wt_engine = wasmtime::Engine::new(&config).unwrap();
        let wt_module = wasmtime::Module::new(&wt_engine, &wat).unwrap();
        let wt_pre = wasmtime::Linker::new(&wt_engine)
            .instantiate_pre(&wt_module)
            .unwrap();
        let name = if pooling {
            "wasmtime (pooling, InstancePre)"
        } else {
            "wasmtime (on-demand, InstancePre)"
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut store = wasmtime::Store::new(&wt_engine, ());
                wt_pre.instantiate(&mut store).unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, execution, compilation, instantiation);
criterion_main!(benches);
