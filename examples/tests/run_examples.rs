//! Runs every example (cargo builds them before running tests) and checks what it
//! prints, so the examples in the docs cannot rot.

use std::path::PathBuf;
use std::process::Command;

fn run(name: &str) -> String {
    // This test binary is target/<profile>/deps/run_examples-<hash>; examples are
    // built into target/<profile>/examples/.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let example: PathBuf = profile_dir.join("examples").join(name);
    let output = Command::new(&example)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", example.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn hello() {
    let out = run("hello");
    assert!(out.contains("hello from the host (3 to go)"), "{out}");
    assert!(out.contains("the guest greeted 3 times"), "{out}");
}

#[test]
fn wasi() {
    let out = run("wasi");
    assert!(out.contains("stdout: done"), "{out}");
    assert!(out.contains("note.txt: written by a guest"), "{out}");
    assert!(out.contains("exit code 0"), "{out}");
}

#[test]
fn plugin_server() {
    let out = run("plugin_server");
    assert!(out.contains("request 2: response 4"), "{out}");
    assert!(out.contains("request 7: response -1"), "{out}");
    assert!(out.contains("request 13: failed"), "{out}");
    // 1000 requests, one in twenty is the runaway.
    assert!(out.contains("950 requests served, 50 failed"), "{out}");
}

#[test]
fn threads() {
    let out = run("threads");
    assert!(
        out.contains("4 threads added 400000 times in total"),
        "{out}"
    );
}

#[test]
fn checkpoint() {
    let out = run("checkpoint");
    assert!(out.contains("longjmp(10)"), "{out}");
    assert!(out.contains("setjmp returned 10 the second time"), "{out}");
}

#[test]
fn precompiled() {
    let out = run("precompiled");
    assert!(out.contains("fib(25) = 75025"), "{out}");
}

#[test]
fn async_calls() {
    let out = run("async");
    // sum over 0..100 of (10 * key + 1).
    assert!(
        out.contains("100 concurrent calls answered (sum 49600) in about one lookup: yes"),
        "{out}"
    );
    assert!(
        out.contains("the spinning guest was stopped by its timeout: true"),
        "{out}"
    );
}
