//! SIMD kernels (byte search, dot product, 4x4 matrix multiply), each run on wazerox
//! and on wasmtime (same Cranelift generation) in the same process.
//!
//! `cd benches && cargo bench --bench simd`

use criterion::{Criterion, criterion_group, criterion_main};
use std::time::Duration;

const KERNELS: [(&str, &str, i32); 4] = [
    (
        "simd byte_search(1 MiB)",
        include_str!("../wat/simd_byte_search.wat"),
        0x5a,
    ),
    (
        "simd byte_search shifted(1 MiB)",
        include_str!("../wat/simd_byte_search_shifted.wat"),
        0x5a,
    ),
    (
        "simd dot_product(4096 x 100)",
        include_str!("../wat/simd_dot_product.wat"),
        100,
    ),
    (
        "simd matmul4(100k)",
        include_str!("../wat/simd_matmul4.wat"),
        100_000,
    ),
];

fn wazerox_kernel(wat: &str, arg: i32) -> impl FnMut() -> i32 {
    let engine = wazerox::Engine::default();
    let module = wazerox::Module::new(&engine, wat).unwrap();
    let mut store = wazerox::Store::new(&engine, ());
    let instance = wazerox::Instance::new(&mut store, &module, &[]).unwrap();
    let init = instance
        .get_typed_func::<(), ()>(&mut store, "init")
        .unwrap();
    init.call(&mut store, ()).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    move || run.call(&mut store, arg).unwrap()
}

fn wasmtime_kernel(wat: &str, arg: i32) -> impl FnMut() -> i32 {
    let engine = wasmtime::Engine::default();
    let module = wasmtime::Module::new(&engine, wat).unwrap();
    let mut store = wasmtime::Store::new(&engine, ());
    let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
    let init = instance
        .get_typed_func::<(), ()>(&mut store, "init")
        .unwrap();
    init.call(&mut store, ()).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    move || run.call(&mut store, arg).unwrap()
}

fn kernels(c: &mut Criterion) {
    for (name, wat, arg) in KERNELS {
        let mut group = c.benchmark_group(name);
        group
            .sample_size(30)
            .measurement_time(Duration::from_secs(5));
        let (mut a, mut b) = (wazerox_kernel(wat, arg), wasmtime_kernel(wat, arg));
        assert_eq!(a(), b(), "both runtimes compute the same result");
        group.bench_function("wazerox", |bench| bench.iter(&mut a));
        group.bench_function("wasmtime", |bench| bench.iter(&mut b));
        group.finish();
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
