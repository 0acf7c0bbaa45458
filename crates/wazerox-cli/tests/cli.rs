//! The `wazerox` binary as a user runs it.

use std::process::Command;

fn wazerox(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wazerox"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("run wazerox")
}

#[test]
fn readme_example_runs() {
    for args in [
        &["run", "examples/fib.wat", "--invoke", "fib", "30"][..],
        &["run", "--invoke", "fib", "examples/fib.wat", "30"][..],
    ] {
        let out = wazerox(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "832040\n");
    }
}

#[test]
fn traps_print_a_backtrace_and_exit_134() {
    let dir = std::env::temp_dir().join(format!("wazerox-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wat = dir.join("trap.wat");
    std::fs::write(
        &wat,
        r#"(module (func $boom (unreachable)) (func (export "_start") (call $boom)))"#,
    )
    .unwrap();
    let out = wazerox(&["run", wat.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(134));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unreachable") && stderr.contains("boom"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn missing_imports_are_named() {
    let dir = std::env::temp_dir().join(format!("wazerox-cli-imp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wat = dir.join("import.wat");
    std::fs::write(
        &wat,
        r#"(module (import "env" "nope" (func)) (func (export "_start")))"#,
    )
    .unwrap();
    let out = wazerox(&["run", wat.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("env::nope"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn wast_prints_the_closing_line() {
    let dir = std::env::temp_dir().join(format!("wazerox-cli-wast-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wast = dir.join("t.wast");
    std::fs::write(
        &wast,
        r#"(module (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))
           (assert_return (invoke "add" (i32.const 2) (i32.const 3)) (i32.const 5))
           (assert_return (invoke "add" (i32.const 2) (i32.const 3)) (i32.const 6))
           (assert_trap (module (func $f (unreachable)) (start $f)) "unreachable")"#,
    )
    .unwrap();
    let out = wazerox(&["wast", wast.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().last(),
        Some("3 passed, 1 failed"),
        "{stdout}"
    );
    assert!(!out.status.success());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn exit_codes_and_wasi_flags_reach_the_program() {
    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");
    if !std::path::Path::new(corpus).exists() {
        eprintln!("*** WARNING: {corpus} not found: skipping the wasi_features run ***");
        return;
    }
    let dir = std::env::temp_dir().join(format!("wazerox-cli-sandbox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dir_flag = format!("{}::/sandbox", dir.display());
    let wasm = format!("{corpus}/wasi_features.wasm");
    let out = wazerox(&[
        "run",
        "--dir",
        &dir_flag,
        "--env",
        "GREETING=hi",
        &wasm,
        "a",
        "b",
        "c",
    ]);
    assert_eq!(out.status.code(), Some(7));
    let expected = std::fs::read(format!("{corpus}/expected/wasi_features.stdout")).unwrap();
    assert_eq!(out.stdout, expected);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn invoke_passes_and_prints_v128_as_hex() {
    let dir = std::env::temp_dir().join(format!("wazerox-cli-v128-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wat = dir.join("v128.wat");
    std::fs::write(
        &wat,
        r#"(module (func (export "add") (param v128 v128) (result v128)
             (i32x4.add (local.get 0) (local.get 1))))"#,
    )
    .unwrap();
    let out = wazerox(&[
        "run",
        "--invoke",
        "add",
        wat.to_str().unwrap(),
        "0x00000004_00000003_00000002_ffffffff",
        "1",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0x00000004000000030000000200000000"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `wazerox run` accepts WebAssembly 3.0 memories by default: two memories (one
/// 64-bit, one of one-byte pages) and a 64-bit table, as `wasmtime run` does.
#[test]
fn run_accepts_wasm3_memories() {
    let dir = std::env::temp_dir().join(format!("wazerox-cli-mem3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wat = dir.join("memories.wat");
    std::fs::write(
        &wat,
        r#"(module
             (memory $wide i64 1)
             (memory $bytes 8 (pagesize 1))
             (table i64 1 funcref)
             (func (export "sum") (param i64) (result i64)
               (i64.store $wide (local.get 0) (i64.const 40))
               (i32.store8 $bytes (i32.const 7) (i32.const 2))
               (i64.add (i64.load $wide (local.get 0))
                        (i64.add (i64.load8_u $bytes (i32.const 7))
                                 (i64.add (i64.extend_i32_u (memory.size $bytes)) (table.size))))))"#,
    )
    .unwrap();
    let out = wazerox(&["run", "--invoke", "sum", wat.to_str().unwrap(), "65528"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "51");
    let _ = std::fs::remove_dir_all(dir);
}

/// `--dir-ro` gives a directory the guest can read but not change (the
/// `readonly` test program checks every kind of change fails with EROFS).
#[test]
fn dir_ro_preopens_read_only() {
    let program = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/wasi/readonly.wasm"
    );
    let dir = std::env::temp_dir().join(format!("wazerox-cli-ro-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("data.txt"), "read only\n").unwrap();
    let out = wazerox(&[
        "run",
        "--dir-ro",
        &format!("{}::/ro", dir.display()),
        program,
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join("data.txt")).unwrap(),
        "read only\n"
    );
    assert!(!dir.join("new.txt").exists());
    // The same directory with --dir is writable: the program's checks fail.
    let out = wazerox(&["run", "--dir", &format!("{}::/ro", dir.display()), program]);
    assert_ne!(out.status.code(), Some(0));
    let _ = std::fs::remove_dir_all(dir);
}

/// The threaded C programs of `tests/threads` under `wazerox run` with no extra
/// flags: exact output and exit status, whichever thread ends the program.
#[test]
fn every_missing_import_is_named() {
    let dir = std::env::temp_dir().join(format!("wazerox-cli-imps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wat = dir.join("imports.wat");
    std::fs::write(
        &wat,
        r#"(module
            (import "wasix_32v1" "fd_dup" (func (param i32 i32) (result i32)))
            (import "wasix_32v1" "not_a_wasix_call" (func))
            (import "env" "nope" (func))
            (func (export "_start")))"#,
    )
    .unwrap();
    let out = wazerox(&["run", wat.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`wasix_32v1::not_a_wasix_call`") && stderr.contains("`env::nope`"),
        "{stderr}"
    );
    assert!(!stderr.contains("fd_dup"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn wasix_threads_futexes_and_signals_run() {
    let out = wazerox(&["run", "tests/wasix/threads.wat"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "woken 1, signal 10, joined\n"
    );
}

#[test]
fn the_wasix_c_program_runs() {
    let dir = std::env::temp_dir().join(format!("wazerox-cli-wasix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sandbox = format!("{}::/sandbox", dir.display());
    let out = wazerox(&["run", "--dir", &sandbox, "tests/wasix/wasix.wasm"]);
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "wasix: 64 checks, 0 failed\n");
}

#[test]
fn threaded_programs_run_and_end_from_any_thread() {
    let cases: [(&[&str], i32, &str); 7] = [
        (
            &["tests/threads/mutex_condvar.wasm"],
            0,
            "mutex: 8 threads x 20000 = 160000\n\
             queue: produced 12000 consumed 12000 sum 24006000\n\
             broadcast: 4 of 4 passed\n\
             waits: timed out 2, not equal 1, woken by notify with nobody waiting 0\n\
             mutex_condvar: ok\n",
        ),
        (
            &["tests/threads/barrier.wasm"],
            0,
            "barrier: 6 threads, 300 phases (600 barrier generations), 0 errors, \
             0 threads saw errors, last phase 300\n",
        ),
        (
            &["tests/threads/many_threads.wasm"],
            0,
            "many_threads: 400 threads, at most 8 at once, exit codes sum 47163 \
             (expected 47163), thread ids unique, positive, below 2^29\n",
        ),
        (
            &["tests/threads/exit_code.wasm"],
            42,
            "exit_code: mode exit\n",
        ),
        (
            &["tests/threads/exit_code.wasm", "trap"],
            134,
            "exit_code: mode trap\n",
        ),
        (
            &["tests/threads/exit_code.wasm", "main"],
            5,
            "exit_code: mode main\nexit_code: 5 threads parked or spinning\n",
        ),
        (
            &["tests/threads/exit_code.wasm", "return"],
            0,
            "exit_code: mode return\nexit_code: 5 threads parked or spinning\n",
        ),
    ];
    for (args, code, stdout) in cases {
        let out = wazerox(&[&["run"], args].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), stdout, "{args:?}");
        if code == 134 {
            assert!(
                stderr.contains("unreachable") && stderr.contains("end_program"),
                "{stderr}"
            );
        }
    }
}

/// A spawned thread's `proc_exit` ends a program whose main thread is parked and
/// whose other threads spin or block reading a stdin that never gets data: the
/// process exits with that code at once, not by exiting from the thread.
#[test]
fn proc_exit_from_a_thread_stops_blocked_readers() {
    use std::process::Stdio;
    let dir = std::env::temp_dir().join(format!("wazerox-cli-threads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wat = dir.join("threads.wat");
    std::fs::write(
        &wat,
        r#"(module
            (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (import "wasi_snapshot_preview1" "fd_read"
              (func $fd_read (param i32 i32 i32 i32) (result i32)))
            (import "env" "memory" (memory 1 1 shared))
            (export "memory" (memory 0))
            (func (export "wasi_thread_start") (param $tid i32) (param $what i32)
              (drop (i32.atomic.rmw.add (i32.const 16) (i32.const 1)))
              (block $exit (block $read (block $spin
                (br_table $spin $read $exit (local.get $what)))
                (loop $l (br $l)))
                (i32.store (i32.const 64) (i32.const 128))
                (i32.store (i32.const 68) (i32.const 16))
                (drop (call $fd_read (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 80)))
                (return))
              (loop $settle
                (br_if $settle (i32.lt_s (i32.atomic.load (i32.const 16)) (i32.const 3))))
              (call $exit (i32.const 7)))
            (func (export "_start")
              (drop (call $spawn (i32.const 0)))
              (drop (call $spawn (i32.const 1)))
              (drop (call $spawn (i32.const 2)))
              (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1)))))"#,
    )
    .unwrap();
    let started = std::time::Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wazerox"))
        .args(["run", wat.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep stdin open (and empty) until the program has ended.
    let stdin = child.stdin.take().unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("the program did not end");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    drop(stdin);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(7), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `wazerox compile` gives threaded modules the epoch checks that `run` needs to
/// end them, and `run` finds the configuration an artifact was compiled for.
#[test]
fn threaded_artifacts_run() {
    let dir = std::env::temp_dir().join(format!("wazerox-cli-cwasm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let artifact = dir.join("exit_code.cwasm");
    let out = wazerox(&[
        "compile",
        "tests/threads/exit_code.wasm",
        "-o",
        artifact.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = wazerox(&[
        "run",
        "--allow-precompiled",
        artifact.to_str().unwrap(),
        "main",
    ]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "exit_code: mode main\nexit_code: 5 threads parked or spinning\n"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn max_memory_caps_growth_and_initial_size() {
    let dir = std::env::temp_dir().join(format!("wazerox-cli-max-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let grower = dir.join("grower.wat");
    std::fs::write(
        &grower,
        r#"(module (memory 1)
            (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#,
    )
    .unwrap();
    let grower = grower.to_str().unwrap();
    let run = |limit: &str, pages: &str| {
        let out = wazerox(&[
            "run",
            "--max-memory",
            limit,
            "--invoke",
            "grow",
            grower,
            pages,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run("131072", "2"), "-1\n");
    assert_eq!(run("131072", "1"), "1\n");
    let big = dir.join("big.wat");
    std::fs::write(&big, "(module (memory 3) (func (export \"_start\")))").unwrap();
    let out = wazerox(&["run", "--max-memory", "65536", big.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("resource limiter"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = wazerox(&["run", "--max-memory", "lots", grower]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-memory lots"));
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 21 item 2: an out-of-bounds `memory.atomic.wait32` used to read the guard
/// region from Rust and kill the host with SIGSEGV (exit 139).
#[test]
fn atomic_wait_out_of_bounds_is_a_trap_not_a_crash() {
    let dir = std::env::temp_dir().join(format!("wazerox-cli-wait-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wat = dir.join("wait.wat");
    std::fs::write(
        &wat,
        r#"(module (memory (export "memory") 1 2 shared)
            (func (export "wait") (param $a i32) (result i32)
              (memory.atomic.wait32 (local.get $a) (i32.const 0) (i64.const 1000)))
            (func (export "notify") (param $a i32) (result i32)
              (memory.atomic.notify (local.get $a) (i32.const 1))))"#,
    )
    .unwrap();
    let wat = wat.to_str().unwrap();
    for name in ["wait", "notify"] {
        let out = wazerox(&["run", "--invoke", name, wat, "65536"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(134), "{name}: {stderr}");
        assert!(stderr.contains("out of bounds memory access"), "{stderr}");
    }
    // In bounds: the wait times out (2) after 1 µs, the notify wakes nobody (0).
    let out = wazerox(&["run", "--invoke", "wait", wat, "65532"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2\n", "{out:?}");
    let out = wazerox(&["run", "--invoke", "notify", wat, "65532"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n", "{out:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 21 item 1: any file starting with the artifact magic used to run as
/// machine code; now only with `--allow-precompiled`, whatever the file's name.
#[test]
fn precompiled_artifacts_need_allow_precompiled() {
    let dir = std::env::temp_dir().join(format!("wazerox-cli-aot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let artifact = dir.join("fib.cwasm");
    let artifact = artifact.to_str().unwrap();
    let out = wazerox(&["compile", "examples/fib.wat", "-o", artifact]);
    assert!(out.status.success(), "{out:?}");
    // Renamed to look like a Wasm module: still recognised, still refused.
    let disguised = dir.join("fib.wasm");
    std::fs::copy(artifact, &disguised).unwrap();
    for file in [artifact, disguised.to_str().unwrap()] {
        let out = wazerox(&["run", "--invoke", "fib", file, "20"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("precompiled") && stderr.contains("--allow-precompiled"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty(), "nothing ran: {out:?}");
        let out = wazerox(&["run", "--allow-precompiled", "--invoke", "fib", file, "20"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "6765\n", "{out:?}");
    }
    // The flag changes nothing for a Wasm module.
    let out = wazerox(&[
        "run",
        "--allow-precompiled",
        "--invoke",
        "fib",
        "examples/fib.wat",
        "20",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "6765\n", "{out:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 21 item 10: `proc_exit(256)` used to exit 0 and `proc_exit(134)` looked
/// like a trap. Codes outside 0..=125 are an error (exit 1), as in wasmtime 49.
#[test]
fn proc_exit_codes_outside_0_to_125_are_errors() {
    let dir = std::env::temp_dir().join(format!("wazerox-cli-exit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run_exit = |code: i32| {
        let wat = dir.join(format!("exit{code}.wat"));
        std::fs::write(
            &wat,
            format!(
                r#"(module
                  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                  (memory (export "memory") 1)
                  (func (export "_start") (call $exit (i32.const {code}))))"#
            ),
        )
        .unwrap();
        wazerox(&["run", wat.to_str().unwrap()])
    };
    for code in [0, 1, 7, 125] {
        let out = run_exit(code);
        assert_eq!(out.status.code(), Some(code), "{out:?}");
        assert!(out.stderr.is_empty(), "{out:?}");
    }
    for code in [126, 127, 134, 255, 256, 257, 1000, -1, i32::MIN] {
        let out = run_exit(code);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "proc_exit({code}): {stderr}");
        assert!(
            stderr.contains(&format!("invalid exit status {code}")),
            "{stderr}"
        );
    }
    // A trap keeps its own status, distinct from every valid exit code.
    let trap = dir.join("trap.wat");
    std::fs::write(&trap, r#"(module (func (export "_start") unreachable))"#).unwrap();
    let out = wazerox(&["run", trap.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(134), "{out:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 21 item 12b: `--max-memory` capped memories only; a table of a million
/// elements (8 MB of host memory) instantiated under a 64 KiB limit.
#[test]
fn max_memory_caps_tables_too() {
    let dir = std::env::temp_dir().join(format!("wazerox-cli-max-table-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big_table.wat");
    std::fs::write(
        &big,
        r#"(module (table 1000000 funcref) (func (export "_start")))"#,
    )
    .unwrap();
    let out = wazerox(&["run", "--max-memory", "65536", big.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("table of 1000000 elements refused"),
        "{stderr}"
    );
    let out = wazerox(&["run", "--max-memory", "8000000", big.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");

    let grower = dir.join("table_grower.wat");
    std::fs::write(
        &grower,
        r#"(module (table 0 funcref)
            (func (export "grow") (param i32) (result i32)
              (table.grow (ref.null func) (local.get 0))))"#,
    )
    .unwrap();
    let grow = |elements: &str| {
        let out = wazerox(&[
            "run",
            "--max-memory",
            "65536",
            "--invoke",
            "grow",
            grower.to_str().unwrap(),
            elements,
        ]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // 65536 bytes hold 8192 eight-byte elements.
    assert_eq!(grow("8192"), "0\n");
    assert_eq!(grow("8193"), "-1\n");
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 21 item 12c: a function name with terminal escapes and a newline reached
/// stderr raw in the trap's backtrace.
#[test]
fn guest_names_on_stderr_are_escaped() {
    let dir = std::env::temp_dir().join(format!("wazerox-cli-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wat = dir.join("names.wat");
    std::fs::write(
        &wat,
        r#"(module (func $"x\1b[2J\nerror: forged" (export "_start") unreachable))"#,
    )
    .unwrap();
    let out = wazerox(&["run", wat.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(134), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
    assert!(stderr.contains(r"x\u{1b}[2J\u{a}error: forged"), "{stderr}");
    let error_lines = stderr.lines().filter(|l| l.starts_with("error:")).count();
    assert_eq!(error_lines, 1, "no forged line: {stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

/// C setjmp/longjmp lowered to Wasm exceptions, in both encodings, prints what the
/// same program compiled natively prints (tests/exceptions/build.sh).
#[test]
fn setjmp_longjmp_programs_match_their_native_output() {
    let expected = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/exceptions/sjlj.expected"
    ))
    .expect("expected output");
    for program in ["sjlj-legacy", "sjlj-exnref"] {
        let out = wazerox(&["run", &format!("tests/exceptions/{program}.wasm")]);
        assert!(
            out.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected, "{program}");
    }
}

#[test]
fn an_uncaught_exception_ends_run_with_an_error() {
    let dir = std::env::temp_dir().join(format!("wazerox-cli-exn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wat = dir.join("throw.wat");
    std::fs::write(
        &wat,
        r#"(module (tag $e (param i32)) (func (export "_start") (throw $e (i32.const 3))))"#,
    )
    .unwrap();
    let out = wazerox(&["run", wat.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("uncaught wasm exception"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
