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
    let out = wazerox(&["run", artifact.to_str().unwrap(), "main"]);
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
