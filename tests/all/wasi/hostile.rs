//! Hostile guests against WASI through the API (issue 21): path lengths, symlinks
//! climbing out, blocking calls past the store's deadline, the WASIX snapshot
//! table. The attacks through `wazerox run` are in the CLI's `tests/hostile.rs`.

use super::Probe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wazerox::{Config, Engine, Linker, Module, Store, TrapCode};
use wazerox_wasi::{WasiCtx, WasiCtxBuilder};

const NAMETOOLONG: i32 = 37;
const NOMEM: i32 = 48;
const NOTCAPABLE: i32 = 76;

/// `open(len)`: `path_open` on the preopen (fd 3) of the path at address 0.
const LONG_PATHS: &str = r#"(module
    (import "wasi_snapshot_preview1" "path_open"
      (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
    (memory (export "memory") 320)
    (func (export "open") (param $len i32) (result i32)
      (call $path_open (i32.const 3) (i32.const 1) (i32.const 0) (local.get $len)
        (i32.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 20000000))))"#;

#[test]
fn paths_beyond_path_max_or_too_many_components_are_nametoolong() {
    let root = std::env::temp_dir().join(format!("wazerox-long-paths-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("s")).unwrap();
    std::fs::write(root.join("ok.txt"), "ok").unwrap();
    // A link that goes nowhere in 1,600 components: `s/../s/../…`.
    let detour = vec!["s/.."; 800].join("/");
    std::os::unix::fs::symlink(&detour, root.join("l")).unwrap();

    let engine = Engine::default();
    let mut builder = WasiCtxBuilder::new();
    builder.preopened_dir(&root, "/", false).unwrap();
    let mut store = Store::new(&engine, builder.build());
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
    wazerox_wasi::add_to_linker(&mut linker, |c| c).unwrap();
    let module = Module::new(&engine, LONG_PATHS).unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    let open = instance
        .get_typed_func::<i32, i32>(&mut store, "open")
        .unwrap();
    let mut open_path = |path: &str| {
        memory.write(&mut store, 0, path.as_bytes()).unwrap();
        let start = Instant::now();
        let errno = open.call(&mut store, path.len() as i32).unwrap();
        (errno, start.elapsed())
    };

    // Up to PATH_MAX: resolved, however roundabout.
    let longest = format!("{}ok.txt", "s/../".repeat((4096 - 6) / 5));
    assert!(longest.len() <= 4096);
    assert_eq!(open_path(&longest).0, 0);
    assert_eq!(open_path("l/ok.txt").0, 0, "one detour link is fine");
    // Beyond: refused at once (the issue's 16 MB path cost 477 MB; 2 M `s/../`
    // segments took 8.5 s).
    for path in [
        format!("{longest}x"),
        "a/".repeat(8 << 20),
        "s/../".repeat(2_000_000),
        // Three detours: 4,800 components.
        "l/l/l/ok.txt".to_string(),
    ] {
        let (errno, took) = open_path(&path);
        assert_eq!(errno, NAMETOOLONG, "a path of {} bytes", path.len());
        assert!(took < Duration::from_secs(1), "took {took:?}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn guests_cannot_plant_relative_symlinks_that_climb_out() {
    let mut p = Probe::new("climb");
    let symlink = p
        .instance
        .get_typed_func::<(i32, i32), i32>(&mut p.store, "symlink")
        .unwrap();
    let cases = [
        ("../secret.txt", "up", NOTCAPABLE),
        ("../../secret.txt", "sub/up2", NOTCAPABLE),
        ("sub/../../secret.txt", "deep", NOTCAPABLE),
        ("./../secret.txt", "dot-up", NOTCAPABLE),
        ("../ok.txt", "sub/fine", 0),
        ("sub/../ok.txt", "fine", 0),
        ("missing/../../ok.txt", "sub/dangling-inside", 0),
    ];
    for (target, at, expected) in cases {
        p.write(2048, target);
        p.write(1024, at);
        let errno = symlink
            .call(&mut p.store, (target.len() as i32, at.len() as i32))
            .unwrap();
        assert_eq!(errno, expected, "symlink {at} -> {target}");
        let planted = p.root.join("inside").join(at).symlink_metadata().is_ok();
        assert_eq!(planted, expected == 0, "{at}");
    }
    assert_eq!(p.open("sub/fine", false), 0);
}

/// `sleep` waits an hour in `poll_oneoff`; `read` reads stdin.
const BLOCKER: &str = r#"(module
    (import "wasi_snapshot_preview1" "poll_oneoff"
      (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_read"
      (func $fd_read (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "sleep") (result i32)
      (i32.store8 (i32.const 520) (i32.const 0))
      (i32.store (i32.const 528) (i32.const 1))
      (i64.store (i32.const 536) (i64.const 3600000000000))
      (i64.store (i32.const 544) (i64.const 0))
      (i32.store16 (i32.const 552) (i32.const 0))
      (call $poll_oneoff (i32.const 512) (i32.const 600) (i32.const 1) (i32.const 640)))
    (func (export "read") (result i32)
      (i32.store (i32.const 64) (i32.const 128))
      (i32.store (i32.const 68) (i32.const 16))
      (call $fd_read (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 80))))"#;

#[test]
fn blocking_calls_end_when_the_store_reaches_its_epoch_deadline() {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, BLOCKER).unwrap();
    for name in ["sleep", "read"] {
        // Stdin is a pipe whose writer stays open: a read waits forever.
        let (reader, writer) = std::io::pipe().unwrap();
        let ctx = WasiCtxBuilder::new()
            .stdin_file(std::fs::File::from(std::os::fd::OwnedFd::from(reader)))
            .build();
        let mut store = Store::new(&engine, ctx.clone());
        let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
        wazerox_wasi::add_to_linker(&mut linker, |c| c).unwrap();
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let call = instance
            .get_typed_func::<(), i32>(&mut store, name)
            .unwrap();
        store.set_epoch_deadline(1);
        let ticker = {
            let engine = engine.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                engine.increment_epoch();
                // A watchdog, so that a regression fails instead of hanging.
                std::thread::sleep(Duration::from_secs(20));
                ctx.cancel();
            })
        };
        let start = Instant::now();
        let error = call.call(&mut store, ()).unwrap_err();
        let took = start.elapsed();
        assert_eq!(
            error.as_trap().map(|t| t.code()),
            Some(TrapCode::Interrupt),
            "{name}: {error}"
        );
        assert!(took < Duration::from_secs(5), "{name}: took {took:?}");
        drop(writer);
        drop(ticker);
    }
}

/// `flat(base, n)` checkpoints into `n` records from `base` in one activation,
/// `deep(depth, base, n)` does it `depth` calls down; both return the first
/// failing errno, or 0.
const CHECKPOINTS: &str = r#"(module
    (import "wasix_32v1" "stack_checkpoint" (func $checkpoint (param i32 i32) (result i32)))
    (memory (export "memory") 8)
    (func $flat (export "flat") (param $base i32) (param $n i32) (result i32)
      (local $i i32) (local $errno i32)
      (loop $next
        (local.set $errno (call $checkpoint
          (i32.add (local.get $base) (i32.mul (local.get $i) (i32.const 32))) (i32.const 0)))
        (if (local.get $errno) (then (return (local.get $errno))))
        (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                               (local.get $n))))
      (i32.const 0))
    (func $deep (export "deep") (param $depth i32) (param $base i32) (param $n i32) (result i32)
      (if (result i32) (local.get $depth)
        (then (call $deep (i32.sub (local.get $depth) (i32.const 1)) (local.get $base) (local.get $n)))
        (else (call $flat (local.get $base) (local.get $n))))))"#;

#[test]
fn wasix_snapshot_table_is_bounded_by_count_and_bytes() {
    use wazerox_wasi::wasix::{MAX_SNAPSHOT_BYTES, MAX_SNAPSHOTS};
    let engine = Engine::default();
    let module = Module::new(&engine, CHECKPOINTS).unwrap();
    let fresh = || {
        let mut store = Store::new(&engine, WasiCtxBuilder::new().build());
        let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
        wazerox_wasi::wasix::add_to_linker(&mut linker, |c| c).unwrap();
        let instance = linker.instantiate(&mut store, &module).unwrap();
        (store, instance)
    };
    let records = MAX_SNAPSHOTS as i32 + 100;

    // Small snapshots: the count limit.
    let (mut store, instance) = fresh();
    let flat = instance
        .get_typed_func::<(i32, i32), i32>(&mut store, "flat")
        .unwrap();
    assert_eq!(flat.call(&mut store, (1024, records)).unwrap(), NOMEM);
    assert_eq!(store.data().snapshots.len(), MAX_SNAPSHOTS);
    // Their call returned: they are stale, and make room for new ones.
    let base = 1024 + 32 * records;
    assert_eq!(flat.call(&mut store, (base, 100)).unwrap(), 0);

    // Deep stacks: the byte limit, long before the count.
    let (mut store, instance) = fresh();
    let deep = instance
        .get_typed_func::<(i32, i32, i32), i32>(&mut store, "deep")
        .unwrap();
    assert_eq!(deep.call(&mut store, (2000, 1024, records)).unwrap(), NOMEM);
    let table = &store.data().snapshots;
    assert!(
        table.bytes() <= MAX_SNAPSHOT_BYTES,
        "{} bytes",
        table.bytes()
    );
    assert!(
        table.len() < MAX_SNAPSHOTS,
        "stopped by bytes, after {}",
        table.len()
    );
}
