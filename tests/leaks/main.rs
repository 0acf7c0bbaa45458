//! Resource-growth tests. They measure process-wide memory, so they live in their
//! own test binary and run one at a time (`--test-threads=1` is not needed: there is
//! a single test here, and other test binaries are separate processes).

use wazerox::{Caller, Engine, Instance, Linker, Module, Snapshot, Store, Val};

fn resident_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

/// CHECKPOINT.md §4: restoring 10^5 times grows neither the native stack (a
/// deeper stack would hit the 512 KiB Wasm stack limit within a few thousand
/// iterations) nor memory, and the snapshot held stays one.
#[test]
fn restoring_100k_times_leaks_nothing() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "checkpoint" (func $checkpoint (result i32)))
            (import "host" "restore" (func $restore (param i32)))
            (func (export "spin") (param $n i32) (result i32)
              (local $r i32)
              (local.set $r (call $checkpoint))
              (if (i32.lt_u (local.get $r) (local.get $n))
                (then (call $restore (i32.add (local.get $r) (i32.const 1)))))
              (local.get $r)))"#,
    )
    .unwrap();
    let mut linker: Linker<Option<Snapshot>> = Linker::new(&engine);
    linker
        .func_wrap(
            "host",
            "checkpoint",
            |mut caller: Caller<'_, Option<Snapshot>>| -> Result<i32, wazerox::Error> {
                let snapshot = caller.snapshot()?;
                *caller.data_mut() = Some(snapshot);
                Ok(0)
            },
        )
        .unwrap();
    linker
        .func_wrap(
            "host",
            "restore",
            |caller: Caller<'_, Option<Snapshot>>, v: i32| -> Result<(), wazerox::Error> {
                Err(caller
                    .data()
                    .clone()
                    .unwrap()
                    .restore(&[Val::I32(v)])
                    .into())
            },
        )
        .unwrap();
    let mut store = Store::new(&engine, None);
    let instance: Instance = linker.instantiate(&mut store, &module).unwrap();
    let spin = instance
        .get_typed_func::<i32, i32>(&mut store, "spin")
        .unwrap();
    assert_eq!(spin.call(&mut store, 1000).unwrap(), 1000);
    let stack_bytes = store.data().as_ref().unwrap().stack_bytes();
    let before = resident_kib();
    assert_eq!(spin.call(&mut store, 100_000).unwrap(), 100_000);
    let after = resident_kib();
    assert!(
        after < before + 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );
    assert_eq!(
        store.data().as_ref().unwrap().stack_bytes(),
        stack_bytes,
        "same stack depth"
    );
}
