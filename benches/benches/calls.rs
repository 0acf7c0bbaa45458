//! Call costs in both directions and checkpoint/restore costs.
//!
//! `cd benches && cargo bench --bench calls`

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::time::Duration;
use wazerox::{Caller, Val};

const HOST_LOOP: &str = include_str!("../wat/host_call_loop.wat");

const CALLS: i32 = 1_000_000;

fn calls(c: &mut Criterion) {
    let mut group = c.benchmark_group("host->wasm call (i32)->i32");
    let engine = wazerox::Engine::default();
    let module = wazerox::Module::new(&engine, HOST_LOOP).unwrap();
    let mut store = wazerox::Store::new(&engine, ());
    let inc = wazerox::Func::wrap(&mut store, |x: i32| x.wrapping_add(1));
    let instance = wazerox::Instance::new(&mut store, &module, &[inc.into()]).unwrap();
    let identity = instance
        .get_typed_func::<i32, i32>(&mut store, "identity")
        .unwrap();
    group.bench_function("wazerox", |b| {
        b.iter(|| identity.call(&mut store, 7).unwrap())
    });
    let wt_engine = wasmtime::Engine::default();
    let wt_module = wasmtime::Module::new(&wt_engine, HOST_LOOP).unwrap();
    let mut wt_store = wasmtime::Store::new(&wt_engine, ());
    let wt_inc = wasmtime::Func::wrap(&mut wt_store, |x: i32| x.wrapping_add(1));
    let wt_instance = wasmtime::Instance::new(&mut wt_store, &wt_module, &[wt_inc.into()]).unwrap();
    let wt_identity = wt_instance
        .get_typed_func::<i32, i32>(&mut wt_store, "identity")
        .unwrap();
    group.bench_function("wasmtime", |b| {
        b.iter(|| wt_identity.call(&mut wt_store, 7).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("wasm->host call x1M (Func::wrap)");
    group.sample_size(20);
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "loop")
        .unwrap();
    group.bench_function("wazerox", |b| {
        b.iter(|| run.call(&mut store, CALLS).unwrap())
    });
    let wt_run = wt_instance
        .get_typed_func::<i32, i32>(&mut wt_store, "loop")
        .unwrap();
    group.bench_function("wasmtime", |b| {
        b.iter(|| wt_run.call(&mut wt_store, CALLS).unwrap())
    });
    // The same without the checkpoint machinery (plain host-call shim).
    let mut config = wazerox::Config::new();
    config.checkpoints(false);
    let plain_engine = wazerox::Engine::new(&config).unwrap();
    let plain_module = wazerox::Module::new(&plain_engine, HOST_LOOP).unwrap();
    let mut plain_store = wazerox::Store::new(&plain_engine, ());
    let plain_inc = wazerox::Func::wrap(&mut plain_store, |x: i32| x.wrapping_add(1));
    let plain_instance =
        wazerox::Instance::new(&mut plain_store, &plain_module, &[plain_inc.into()]).unwrap();
    let plain_run = plain_instance
        .get_typed_func::<i32, i32>(&mut plain_store, "loop")
        .unwrap();
    group.bench_function("wazerox without checkpoints", |b| {
        b.iter(|| plain_run.call(&mut plain_store, CALLS).unwrap())
    });
    group.finish();

    // Dynamic host functions (`Func::new`: values as `Val` slices) against the
    // typed ones, both runtimes in one group so that they alternate under the
    // same load.
    let mut group = c.benchmark_group("wasm->host call x1M (Func::new vs Func::wrap)");
    group.sample_size(20);
    let ty = wazerox::FuncType::new([wazerox::ValType::I32], [wazerox::ValType::I32]);
    let mut new_store = wazerox::Store::new(&engine, ());
    let new_inc = wazerox::Func::new(&mut new_store, ty, |_, params, results| {
        results[0] = Val::I32(params[0].i32().unwrap().wrapping_add(1));
        Ok(())
    });
    let new_run = wazerox::Instance::new(&mut new_store, &module, &[new_inc.into()])
        .unwrap()
        .get_typed_func::<i32, i32>(&mut new_store, "loop")
        .unwrap();
    let wt_ty = wasmtime::FuncType::new(
        &wt_engine,
        [wasmtime::ValType::I32],
        [wasmtime::ValType::I32],
    );
    let mut wt_new_store = wasmtime::Store::new(&wt_engine, ());
    let wt_new_inc = wasmtime::Func::new(&mut wt_new_store, wt_ty, |_, params, results| {
        results[0] = wasmtime::Val::I32(params[0].unwrap_i32().wrapping_add(1));
        Ok(())
    });
    let wt_new_run = wasmtime::Instance::new(&mut wt_new_store, &wt_module, &[wt_new_inc.into()])
        .unwrap()
        .get_typed_func::<i32, i32>(&mut wt_new_store, "loop")
        .unwrap();
    group.bench_function("wazerox Func::new", |b| {
        b.iter(|| new_run.call(&mut new_store, CALLS).unwrap())
    });
    group.bench_function("wasmtime Func::new", |b| {
        b.iter(|| wt_new_run.call(&mut wt_new_store, CALLS).unwrap())
    });
    group.bench_function("wazerox Func::wrap", |b| {
        b.iter(|| run.call(&mut store, CALLS).unwrap())
    });
    group.bench_function("wasmtime Func::wrap", |b| {
        b.iter(|| wt_run.call(&mut wt_store, CALLS).unwrap())
    });
    group.finish();
}

/// A module that recurses to `depth`, then snapshots (`snap`) or restores.
const CHECKPOINT: &str = r#"(module
    (import "host" "checkpoint" (func $checkpoint (result i32)))
    (import "host" "snap_many" (func $snap_many (param i32)))
    (import "host" "restore" (func $restore (param i32)))
    (func $down_snap (param $d i32) (param $n i32)
      (if (i32.eqz (local.get $d))
        (then (call $snap_many (local.get $n)))
        (else (call $down_snap (i32.sub (local.get $d) (i32.const 1)) (local.get $n)))))
    (func (export "snapshots") (param $d i32) (param $n i32) (call $down_snap (local.get $d) (local.get $n)))
    (func $down_restore (param $d i32) (param $v i32)
      (if (i32.eqz (local.get $d))
        (then (call $restore (local.get $v)))
        (else (call $down_restore (i32.sub (local.get $d) (i32.const 1)) (local.get $v)))))
    (func $at_depth (param $d i32) (param $n i32) (result i32)
      (local $r i32)
      (if (local.get $d) (then (return (call $at_depth (i32.sub (local.get $d) (i32.const 1)) (local.get $n)))))
      (local.set $r (call $checkpoint))
      (if (i32.lt_u (local.get $r) (local.get $n))
        (then (call $down_restore (i32.const 0) (i32.add (local.get $r) (i32.const 1)))))
      (local.get $r))
    (func (export "restores") (param $d i32) (param $n i32) (result i32)
      (call $at_depth (local.get $d) (local.get $n))))"#;

fn checkpoint(c: &mut Criterion) {
    let engine = wazerox::Engine::default();
    let module = wazerox::Module::new(&engine, CHECKPOINT).unwrap();
    let mut linker: wazerox::Linker<Option<wazerox::Snapshot>> = wazerox::Linker::new(&engine);
    linker
        .func_wrap(
            "host",
            "checkpoint",
            |mut caller: Caller<'_, Option<wazerox::Snapshot>>| -> Result<i32, wazerox::Error> {
                let snapshot = caller.snapshot()?;
                *caller.data_mut() = Some(snapshot);
                Ok(0)
            },
        )
        .unwrap();
    linker
        .func_wrap(
            "host",
            "snap_many",
            |mut caller: Caller<'_, Option<wazerox::Snapshot>>,
             n: i32|
             -> Result<(), wazerox::Error> {
                for _ in 0..n {
                    let snapshot = caller.snapshot()?;
                    *caller.data_mut() = Some(std::hint::black_box(snapshot));
                }
                Ok(())
            },
        )
        .unwrap();
    linker
        .func_wrap(
            "host",
            "restore",
            |caller: Caller<'_, Option<wazerox::Snapshot>>, v: i32| -> Result<(), wazerox::Error> {
                Err(caller
                    .data()
                    .clone()
                    .unwrap()
                    .restore(&[Val::I32(v)])
                    .into())
            },
        )
        .unwrap();
    let mut store = wazerox::Store::new(&engine, None);
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let snapshots = instance
        .get_typed_func::<(i32, i32), ()>(&mut store, "snapshots")
        .unwrap();
    let restores = instance
        .get_typed_func::<(i32, i32), i32>(&mut store, "restores")
        .unwrap();
    const N: i32 = 10_000;
    for depth in [10, 100, 1000] {
        let mut group = c.benchmark_group(format!("checkpoint depth {depth} (x{N})"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(5));
        group.bench_function("snapshot", |b| {
            b.iter_batched(
                || (),
                |()| snapshots.call(&mut store, (depth, N)).unwrap(),
                BatchSize::PerIteration,
            )
        });
        group.bench_function("restore", |b| {
            b.iter(|| restores.call(&mut store, (depth, N)).unwrap())
        });
        group.finish();
        let bytes = store.data().as_ref().map(|s| s.stack_bytes()).unwrap_or(0);
        eprintln!("depth {depth}: snapshot holds {bytes} bytes of stack");
    }
}

criterion_group!(benches, calls, checkpoint);
criterion_main!(benches);
