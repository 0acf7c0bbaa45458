//! The runtime-only configuration: an artifact made by `wazerox compile` runs in an
//! embedder built without Cranelift (`tests/runtime-only`, a workspace of its own so
//! that cargo cannot unify the `cranelift` feature back in), and that embedder's
//! dependency tree holds no code generator.

use std::path::{Path, PathBuf};
use std::process::Command;

fn embedder_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/runtime-only")
}

fn cargo(args: &[&str]) -> std::process::Output {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("runtime-only");
    let manifest = embedder_dir().join("Cargo.toml");
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .arg("--manifest-path")
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn artifacts_run_in_a_build_without_a_compiler() {
    let tree = cargo(&["tree", "-e", "normal"]);
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert!(tree.contains("wazerox-runtime"), "{tree}");
    assert!(
        !tree.contains("cranelift"),
        "a code generator is linked:\n{tree}"
    );

    let wat = embedder_dir().join("plugin.wat");
    let artifact = Path::new(env!("CARGO_TARGET_TMPDIR")).join("runtime-only-plugin.cwasm");
    let compiled = Command::new(env!("CARGO_BIN_EXE_wazerox"))
        .arg("compile")
        .arg(&wat)
        .arg("-o")
        .arg(&artifact)
        .output()
        .unwrap();
    assert!(compiled.status.success(), "{compiled:?}");

    cargo(&["build", "--release", "--quiet"]);
    let binary =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("runtime-only/release/wazerox-runtime-only");
    let output = Command::new(binary)
        .arg(&artifact)
        .arg(&wat)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("run(5) = 30"), "{stdout}");
    assert!(
        stdout.contains("run(-1) trapped: wasm trap: unreachable"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Module::new: this build of wazerox has no compiler"),
        "{stdout}"
    );
}
