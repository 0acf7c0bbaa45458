//! WASI: the shared corpus of real programs, the sandbox, rights and guest pointers;
//! our own C programs in `programs`.

mod hostile;
mod programs;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use wazerox::{Engine, Linker, Module, Store};
use wazerox_wasi::{I32Exit, MemoryPipe, WasiCtx, WasiCtxBuilder};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")
}

struct Row {
    name: String,
    wasm: String,
    args: Vec<String>,
    stdin: Option<String>,
    needs: String,
    exit_code: i32,
}

fn manifest() -> Option<Vec<Row>> {
    let text = std::fs::read_to_string(corpus_dir().join("MANIFEST.tsv")).ok()?;
    Some(
        text.lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let f: Vec<&str> = line.split('\t').collect();
                let dash = |s: &str| (s != "-").then(|| s.to_string());
                Row {
                    name: f[0].into(),
                    wasm: f[1].into(),
                    args: dash(f[2])
                        .map(|a| a.split(' ').map(String::from).collect())
                        .unwrap_or_default(),
                    stdin: dash(f[3]),
                    needs: f[4].into(),
                    exit_code: f[5].trim().parse().unwrap(),
                }
            })
            .collect(),
    )
}

/// Runs `wasm` with WASI (+ WASIX); returns (exit code, stdout).
fn run_program(engine: &Engine, row: &Row) -> (i32, Vec<u8>) {
    let dir = corpus_dir();
    let module = Module::from_file(engine, dir.join(&row.wasm)).unwrap();
    let stdout = MemoryPipe::new();
    let mut builder = WasiCtxBuilder::new();
    builder
        .arg(&row.wasm)
        .args(row.args.iter().cloned())
        .stdout_pipe(&stdout);
    if let Some(input) = &row.stdin {
        builder.stdin_bytes(std::fs::read(dir.join(input)).unwrap());
    }
    let sandbox = std::env::temp_dir().join(format!(
        "wazerox-corpus-{}-{}",
        row.name,
        std::process::id()
    ));
    for need in row.needs.split(',') {
        if let Some(guest) = need.strip_prefix("dir:") {
            std::fs::create_dir_all(&sandbox).unwrap();
            builder.preopened_dir(&sandbox, guest, false).unwrap();
        }
        if let Some((k, v)) = need.strip_prefix("env:").and_then(|kv| kv.split_once('=')) {
            builder.env(k, v);
        }
    }
    let ctx = builder.build();
    let mut store = Store::new(engine, ctx.clone());
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(engine);
    wazerox_wasi::add_to_linker(&mut linker, |c| c).unwrap();
    wazerox_wasi::wasix::add_to_linker(&mut linker, |c| c).unwrap();
    let group = wazerox_wasi::threads::enable_if_needed(&module, &mut linker, &ctx).unwrap();
    let main = |store: &mut Store<Arc<WasiCtx>>| {
        let instance = linker.instantiate(&mut *store, &module)?;
        let start = instance.get_typed_func::<(), ()>(&mut *store, "_start")?;
        start.call(&mut *store, ())
    };
    let result = match group {
        Some(group) => group.run_main(&mut store, main),
        None => main(&mut store),
    };
    let code = match result {
        Ok(()) => 0,
        Err(e) => e
            .downcast_ref::<I32Exit>()
            .map(|e| e.0)
            .unwrap_or_else(|| panic!("{}: {e}", row.name)),
    };
    let _ = std::fs::remove_dir_all(&sandbox);
    if row.needs.contains("wasix") {
        assert!(
            ctx.snapshots.len() <= wazerox_wasi::wasix::MAX_SNAPSHOTS,
            "bounded snapshot table"
        );
    }
    (code, stdout.contents())
}

#[test]
fn corpus_programs_give_their_expected_output() {
    let Some(rows) = manifest() else {
        eprintln!(
            "\n*** WARNING: {} not found: the corpus test ran nothing ***\n",
            corpus_dir().display()
        );
        return;
    };
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| !r.needs.contains("threads"))
        .collect();
    assert!(rows.len() >= 17, "the corpus has its programs");
    let engine = Engine::default();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while let Some(row) =
                    rows.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    let expected = std::fs::read(
                        corpus_dir()
                            .join("expected")
                            .join(format!("{}.stdout", row.name)),
                    )
                    .unwrap();
                    let (code, stdout) = run_program(&engine, row);
                    if code != row.exit_code || stdout != expected {
                        failures.lock().unwrap().push(format!(
                            "{}: exit {code} (want {}), stdout {} bytes (want {})",
                            row.name,
                            row.exit_code,
                            stdout.len(),
                            expected.len()
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A guest that calls `path_open` on fd 3 (the preopen) with a path the host
/// writes at address 1024, and `path_unlink_file`/`path_symlink` likewise.
const PROBE: &str = r#"(module
    (import "wasi_snapshot_preview1" "path_open"
      (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "path_symlink"
      (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "path_rename"
      (func $path_rename (param i32 i32 i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "path_link"
      (func $path_link (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "open") (param $len i32) (param $follow i32) (param $oflags i32) (result i32)
      (call $path_open (i32.const 3) (local.get $follow) (i32.const 1024) (local.get $len)
        (local.get $oflags) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 512)))
    (func (export "symlink") (param $target_len i32) (param $len i32) (result i32)
      (call $path_symlink (i32.const 2048) (local.get $target_len) (i32.const 3) (i32.const 1024) (local.get $len)))
    (func (export "rename") (param $from_len i32) (param $len i32) (result i32)
      (call $path_rename (i32.const 3) (i32.const 2048) (local.get $from_len) (i32.const 3) (i32.const 1024) (local.get $len)))
    (func (export "link") (param $from_len i32) (param $len i32) (result i32)
      (call $path_link (i32.const 3) (i32.const 0) (i32.const 2048) (local.get $from_len) (i32.const 3) (i32.const 1024) (local.get $len))))"#;

struct Probe {
    store: Store<Arc<WasiCtx>>,
    instance: wazerox::Instance,
    root: PathBuf,
}

impl Probe {
    fn new(name: &str) -> Probe {
        let root =
            std::env::temp_dir().join(format!("wazerox-sandbox-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("inside/sub")).unwrap();
        std::fs::write(root.join("secret.txt"), "outside the sandbox").unwrap();
        std::fs::write(root.join("inside/ok.txt"), "fine").unwrap();
        let engine = Engine::default();
        let mut builder = WasiCtxBuilder::new();
        builder
            .preopened_dir(root.join("inside"), "/sandbox", false)
            .unwrap();
        let mut store = Store::new(&engine, builder.build());
        let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
        wazerox_wasi::add_to_linker(&mut linker, |c| c).unwrap();
        let module = Module::new(&engine, PROBE).unwrap();
        let instance = linker.instantiate(&mut store, &module).unwrap();
        Probe {
            store,
            instance,
            root,
        }
    }

    fn write(&mut self, at: usize, text: &str) {
        let memory = self.instance.get_memory(&mut self.store, "memory").unwrap();
        memory.write(&mut self.store, at, text.as_bytes()).unwrap();
    }

    /// errno of opening `path` (following symlinks), optionally creating it.
    fn open(&mut self, path: &str, create: bool) -> i32 {
        self.write(1024, path);
        let open = self
            .instance
            .get_typed_func::<(i32, i32, i32), i32>(&mut self.store, "open")
            .unwrap();
        open.call(
            &mut self.store,
            (path.len() as i32, 1, if create { 1 } else { 0 }),
        )
        .unwrap()
    }

    fn host_symlink(&self, target: &str, at: &str) {
        std::os::unix::fs::symlink(target, self.root.join("inside").join(at)).unwrap();
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[test]
fn sandbox_allows_paths_inside_the_preopen() {
    let mut p = Probe::new("inside");
    assert_eq!(p.open("ok.txt", false), 0);
    assert_eq!(p.open("sub/../ok.txt", false), 0);
    assert_eq!(p.open("./sub/./../ok.txt", false), 0);
    assert_eq!(p.open("sub/new.txt", true), 0);
    assert!(p.root.join("inside/sub/new.txt").exists());
    p.host_symlink("sub/../ok.txt", "good-link");
    assert_eq!(
        p.open("good-link", false),
        0,
        "relative symlink inside the sandbox"
    );
}

#[test]
fn sandbox_refuses_every_escape() {
    let mut p = Probe::new("escape");
    p.host_symlink("../secret.txt", "up-link");
    p.host_symlink("/etc/passwd", "abs-link");
    p.host_symlink("sub/../../secret.txt", "deep-link");
    p.host_symlink("loop-b", "loop-a");
    p.host_symlink("loop-a", "loop-b");
    p.host_symlink("does-not-exist/../../secret.txt", "dangling-up");
    p.host_symlink("..", "sub/parent");
    p.host_symlink("../..", "sub/grandparent");
    let escapes = [
        "../secret.txt",
        "/etc/passwd",
        "sub/../../secret.txt",
        "sub/../../inside/../secret.txt",
        "up-link",
        "abs-link",
        "deep-link",
        "loop-a",
        "dangling-up",
        "sub/grandparent/secret.txt",
        "sub/parent/../secret.txt",
        "sub/grandparent/inside/ok.txt",
    ];
    for path in escapes {
        let errno = p.open(path, false);
        assert_ne!(errno, 0, "{path} must not open");
        let errno = p.open(path, true);
        assert_ne!(errno, 0, "{path} must not be created");
    }
    // Nothing outside changed.
    assert_eq!(
        std::fs::read_to_string(p.root.join("secret.txt")).unwrap(),
        "outside the sandbox"
    );
    // `sub/parent` resolves to the root of the sandbox itself: allowed.
    assert_eq!(p.open("sub/parent/ok.txt", false), 0);
}

#[test]
fn guests_cannot_plant_escaping_symlinks_or_rename_out() {
    let mut p = Probe::new("plant");
    p.write(2048, "/etc");
    let symlink = p
        .instance
        .get_typed_func::<(i32, i32), i32>(&mut p.store, "symlink")
        .unwrap();
    p.write(1024, "etc-link");
    assert_ne!(
        symlink.call(&mut p.store, (4, 8)).unwrap(),
        0,
        "absolute symlink targets are refused"
    );
    p.write(2048, "ok.txt");
    p.write(1024, "../stolen.txt");
    let rename = p
        .instance
        .get_typed_func::<(i32, i32), i32>(&mut p.store, "rename")
        .unwrap();
    assert_ne!(rename.call(&mut p.store, (6, 13)).unwrap(), 0);
    assert!(!p.root.join("stolen.txt").exists());
}

#[test]
fn sandbox_holds_while_the_host_swaps_directories_for_escaping_symlinks() {
    // A host thread keeps replacing `inside/sub` (a real directory) with a symlink
    // that climbs out to a directory holding `secret.txt`, and back, while the guest
    // opens `sub/secret.txt` over and over: it must never get it.
    let mut p = Probe::new("race");
    std::fs::create_dir_all(p.root.join("outside")).unwrap();
    std::fs::write(p.root.join("outside/secret.txt"), "secret").unwrap();
    let inside = p.root.join("inside");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let inside = inside.clone();
        std::thread::spawn(move || {
            let sub = inside.join("sub");
            let (dir, link) = (inside.join("sub-dir"), inside.join("sub-link"));
            std::os::unix::fs::symlink("../outside", &link).unwrap();
            let mut swaps = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::fs::rename(&sub, &dir).unwrap();
                std::fs::rename(&link, &sub).unwrap();
                std::fs::rename(&sub, &link).unwrap();
                std::fs::rename(&dir, &sub).unwrap();
                swaps += 1;
            }
            swaps
        })
    };
    let mut opened_inside = 0;
    for i in 0..3000 {
        let path = if i % 2 == 0 {
            "sub/secret.txt"
        } else {
            "sub/../sub/secret.txt"
        };
        assert_ne!(p.open(path, false), 0, "{path} escaped");
        if p.open("sub/../ok.txt", false) == 0 {
            opened_inside += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 0 && opened_inside > 0, "the race really ran");
    assert_eq!(
        std::fs::read_to_string(p.root.join("outside/secret.txt")).unwrap(),
        "secret"
    );
}

#[test]
fn guests_cannot_link_or_rename_files_out() {
    let mut p = Probe::new("link-out");
    let link = p
        .instance
        .get_typed_func::<(i32, i32), i32>(&mut p.store, "link")
        .unwrap();
    for (from, to) in [("ok.txt", "../linked.txt"), ("../secret.txt", "stolen.txt")] {
        p.write(2048, from);
        p.write(1024, to);
        let errno = link
            .call(&mut p.store, (from.len() as i32, to.len() as i32))
            .unwrap();
        assert_eq!(errno, 76, "link {from} -> {to}: NOTCAPABLE");
    }
    assert!(!p.root.join("linked.txt").exists());
    assert!(!p.root.join("inside/stolen.txt").exists());
}

/// Calls that check rights and guest pointers.
const RIGHTS: &str = r#"(module
    (import "wasi_snapshot_preview1" "fd_write"
      (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_fdstat_set_rights"
      (func $set_rights (param i32 i64 i64) (result i32)))
    (import "wasi_snapshot_preview1" "args_sizes_get"
      (func $args_sizes_get (param i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 100) "hi")
    ;; iovec at 0: "hi" at 100
    (data (i32.const 0) "\64\00\00\00\02\00\00\00")
    (func (export "write") (param $fd i32) (param $iovs i32) (param $out i32) (result i32)
      (call $fd_write (local.get $fd) (local.get $iovs) (i32.const 1) (local.get $out)))
    (func (export "set_rights") (param $fd i32) (param $base i64) (result i32)
      (call $set_rights (local.get $fd) (local.get $base) (i64.const 0)))
    (func (export "args_sizes") (param $at i32) (result i32)
      (call $args_sizes_get (local.get $at) (i32.const 8))))"#;

#[test]
fn rights_only_shrink_and_gate_calls_and_pointers_are_checked() {
    let engine = Engine::default();
    let stdout = MemoryPipe::new();
    let ctx = WasiCtxBuilder::new().stdout_pipe(&stdout).build();
    let mut store = Store::new(&engine, ctx);
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
    wazerox_wasi::add_to_linker(&mut linker, |c| c).unwrap();
    let module = Module::new(&engine, RIGHTS).unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let write = instance
        .get_typed_func::<(i32, i32, i32), i32>(&mut store, "write")
        .unwrap();
    let set_rights = instance
        .get_typed_func::<(i32, i64), i32>(&mut store, "set_rights")
        .unwrap();
    let args_sizes = instance
        .get_typed_func::<i32, i32>(&mut store, "args_sizes")
        .unwrap();
    const BADF: i32 = 8;
    const FAULT: i32 = 21;
    const NOTCAPABLE: i32 = 76;
    assert_eq!(write.call(&mut store, (1, 0, 16)).unwrap(), 0);
    assert_eq!(stdout.contents(), b"hi");
    assert_eq!(write.call(&mut store, (9, 0, 16)).unwrap(), BADF);
    // Out of bounds: the iovec array, the buffer it points to, the result pointer.
    assert_eq!(write.call(&mut store, (1, 65535, 16)).unwrap(), FAULT);
    assert_eq!(write.call(&mut store, (1, 0, 65533)).unwrap(), FAULT);
    assert_eq!(write.call(&mut store, (1, -8, 16)).unwrap(), FAULT);
    assert_eq!(args_sizes.call(&mut store, 65534).unwrap(), FAULT);
    assert_eq!(stdout.contents(), b"hi", "nothing written on a fault");
    // Dropping FD_WRITE makes writes NOTCAPABLE; it cannot come back.
    use wazerox_wasi::rights::{FD_WRITE, STDOUT};
    let without_write = (STDOUT & !FD_WRITE) as i64;
    assert_eq!(set_rights.call(&mut store, (1, without_write)).unwrap(), 0);
    assert_eq!(write.call(&mut store, (1, 0, 16)).unwrap(), NOTCAPABLE);
    assert_eq!(
        set_rights.call(&mut store, (1, STDOUT as i64)).unwrap(),
        NOTCAPABLE
    );
    assert_eq!(stdout.contents(), b"hi");
}

#[test]
fn wasi_calls_from_a_module_without_memory_trap_cleanly() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, WasiCtxBuilder::new().build());
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
    wazerox_wasi::add_to_linker(&mut linker, |c| c).unwrap();
    let module = Module::new(
        &engine,
        r#"(module
          (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
          (func (export "run") (result i32) (call $close (i32.const 1))))"#,
    )
    .unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    let error = run.call(&mut store, ()).unwrap_err();
    assert!(error.to_string().contains("memory"), "{error}");
}

const WASIX: &str = r#"(module
    (import "wasix_32v1" "stack_checkpoint" (func $checkpoint (param i32 i32) (result i32)))
    (import "wasix_32v1" "stack_restore" (func $restore (param i32 i64)))
    (memory (export "memory") 1)
    (global $sp (export "__stack_pointer") (mut i32) (i32.const 1000))
    (func (export "jump") (result i64)
      (if (call $checkpoint (i32.const 64) (i32.const 128)) (then unreachable))
      (if (i64.eqz (i64.load (i32.const 128)))
        (then
          (global.set $sp (i32.const 500))
          (call $restore (i32.const 64) (i64.const 42))))
      ;; After the jump the shadow-stack pointer is back at its checkpoint value.
      (if (i32.ne (global.get $sp) (i32.const 1000)) (then unreachable))
      (i64.load (i32.const 128)))
    (func (export "forged")
      (i64.store (i32.const 200) (i64.const 128))
      (i64.store (i32.const 208) (i64.const 0x1234))
      (i64.store (i32.const 216) (i64.const 0x5678))
      (call $restore (i32.const 200) (i64.const 1))))"#;

fn wasix_instance(config: &wazerox::Config) -> (Store<Arc<WasiCtx>>, wazerox::Instance) {
    let engine = Engine::new(config).unwrap();
    let module = Module::new(&engine, WASIX).unwrap();
    let mut store = Store::new(&engine, WasiCtxBuilder::new().build());
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
    wazerox_wasi::wasix::add_to_linker(&mut linker, |c| c).unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    (store, instance)
}

#[test]
fn wasix_restore_returns_the_value_and_puts_the_stack_pointer_back() {
    let (mut store, instance) = wasix_instance(&wazerox::Config::new());
    let jump = instance
        .get_typed_func::<(), i64>(&mut store, "jump")
        .unwrap();
    for _ in 0..3 {
        assert_eq!(jump.call(&mut store, ()).unwrap(), 42);
    }
    assert_eq!(
        store.data().snapshots.len(),
        1,
        "checkpoints into one record replace each other"
    );
}

#[test]
fn wasix_forged_records_fail_cleanly() {
    let (mut store, instance) = wasix_instance(&wazerox::Config::new());
    let forged = instance
        .get_typed_func::<(), ()>(&mut store, "forged")
        .unwrap();
    let error = forged.call(&mut store, ()).unwrap_err();
    assert!(
        error.to_string().contains("unknown, forged or evicted"),
        "{error}"
    );
    // The store stays usable.
    let jump = instance
        .get_typed_func::<(), i64>(&mut store, "jump")
        .unwrap();
    assert_eq!(jump.call(&mut store, ()).unwrap(), 42);
}

#[test]
fn snapshots_are_refused_when_checkpoints_are_disabled() {
    let mut config = wazerox::Config::new();
    config.checkpoints(false);
    let (mut store, instance) = wasix_instance(&config);
    let jump = instance
        .get_typed_func::<(), i64>(&mut store, "jump")
        .unwrap();
    let error = jump.call(&mut store, ()).unwrap_err();
    assert!(error.to_string().contains("disabled"), "{error}");
}

/// Preview1 edge cases the public WASI testsuite checks (issue 13, item 11).
const EDGES: &str = r#"(module
    (import "wasi_snapshot_preview1" "fd_fdstat_get"
      (func $fdstat (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "path_open"
      (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "path_link"
      (func $path_link (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 100) ".")
    (data (i32.const 200) "ok.txt")
    (data (i32.const 300) "new-link/")
    ;; path_open(".") with exactly the rights fd_fdstat_get reports, no O_DIRECTORY.
    (func (export "open_dot_with_preopen_rights") (result i32)
      (local $errno i32)
      (local.set $errno (call $fdstat (i32.const 3) (i32.const 0)))
      (if (local.get $errno) (then (return (local.get $errno))))
      (call $path_open (i32.const 3) (i32.const 1) (i32.const 100) (i32.const 1)
        (i32.const 0) (i64.load (i32.const 8)) (i64.load (i32.const 16))
        (i32.const 0) (i32.const 512)))
    ;; path_link("ok.txt" -> "new-link/"): a file cannot get a name with a trailing slash.
    (func (export "link_to_trailing_slash") (result i32)
      (call $path_link (i32.const 3) (i32.const 0) (i32.const 200) (i32.const 6)
        (i32.const 3) (i32.const 300) (i32.const 9))))"#;

#[test]
fn preview1_edge_cases_match_the_wasi_testsuite() {
    // Before the fix: "." opened with the preopen's rights gave ISDIR (31) because
    // `fd_datasync` counted as a write right, and the trailing-slash link gave NOTDIR (54).
    let root = std::env::temp_dir().join(format!("wazerox-edges-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("ok.txt"), "fine").unwrap();
    let engine = Engine::default();
    let mut builder = WasiCtxBuilder::new();
    builder.preopened_dir(&root, "/sandbox", false).unwrap();
    let mut store = Store::new(&engine, builder.build());
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
    wazerox_wasi::add_to_linker(&mut linker, |c| c).unwrap();
    let module = Module::new(&engine, EDGES).unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let call = |store: &mut Store<Arc<WasiCtx>>, name: &str| {
        instance
            .get_typed_func::<(), i32>(&mut *store, name)
            .unwrap()
            .call(store, ())
            .unwrap()
    };
    const NOENT: i32 = 44;
    assert_eq!(call(&mut store, "open_dot_with_preopen_rights"), 0);
    assert_eq!(call(&mut store, "link_to_trailing_slash"), NOENT);
    assert!(!root.join("new-link").exists());
    let _ = std::fs::remove_dir_all(&root);
}
