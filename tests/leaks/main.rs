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
/// The tests here measure the whole process's memory: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn restoring_100k_times_leaks_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
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

/// Issue 22: 10^4 plugin requests (new store, pooled instance with 1 MiB of
/// data, a call that writes memory, drop) leave resident memory flat.
#[test]
fn pooled_plugin_requests_leave_rss_flat() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut config = wazerox::Config::new();
    config.allocation_strategy(wazerox::InstanceAllocationStrategy::pooling());
    let engine = Engine::new(&config).unwrap();
    let data: String = (0..16)
        .map(|i| {
            format!(
                "(data (i32.const {}) \"{}\")",
                i * 65536,
                "\\2a".repeat(65536)
            )
        })
        .collect();
    let module = Module::new(
        &engine,
        format!(
            r#"(module (memory 17) {data} (table 100 funcref)
                (func (export "run") (param i32) (result i32)
                  (i32.store (local.get 0) (i32.const 7))
                  (i32.load8_u (i32.const 1048575))))"#
        ),
    )
    .unwrap();
    let pre = Linker::new(&engine).instantiate_pre(&module).unwrap();
    let request = |i: i32| {
        let mut store = Store::new(&engine, ());
        let instance = pre.instantiate(&mut store).unwrap();
        let run = instance
            .get_typed_func::<i32, i32>(&mut store, "run")
            .unwrap();
        assert_eq!(run.call(&mut store, (i * 4096) % 1_000_000).unwrap(), 42);
    };
    for i in 0..1000 {
        request(i);
    }
    let before = resident_kib();
    for i in 0..10_000 {
        request(i);
    }
    let after = resident_kib();
    assert!(
        after < before + 2048,
        "resident memory grew from {before} KiB to {after} KiB"
    );
}
