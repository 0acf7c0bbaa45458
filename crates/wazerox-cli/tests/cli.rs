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
