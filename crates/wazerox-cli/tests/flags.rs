//! The command line's manners: `--version`, `--help` on every subcommand,
//! wasmtime's flag spellings, the compilation cache and `--profile`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn wazerox_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wazerox"));
    command.args(args).current_dir(dir);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run wazerox")
}

fn repo() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).to_path_buf()
}

fn wazerox(args: &[&str]) -> Output {
    wazerox_in(&repo(), args, &[])
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wazerox-flags-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn version_prints_the_version() {
    for flag in ["--version", "-V"] {
        let out = wazerox(&[flag]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            stdout(&out).trim(),
            format!("wazerox {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn every_subcommand_has_help() {
    let out = wazerox(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    for subcommand in ["run", "compile", "wast"] {
        assert!(stdout(&out).contains(subcommand), "{}", stdout(&out));
        for args in [
            &[subcommand, "--help"][..],
            &[subcommand, "-h"],
            &["help", subcommand],
        ] {
            let out = wazerox(args);
            assert!(out.status.success(), "{args:?}: {out:?}");
            assert!(
                stdout(&out).contains(&format!("Usage: wazerox {subcommand}")),
                "{args:?}: {}",
                stdout(&out)
            );
        }
    }
    // `compile --help` is help, not a file named `--help`.
    assert!(!stderr(&wazerox(&["compile", "--help"])).contains("reading"));
    // Each option group lists its keys.
    for (flag, key) in [
        ("-W", "tail-call"),
        ("-S", "inherit-env"),
        ("-C", "cache"),
        ("-O", "opt-level"),
    ] {
        let out = wazerox(&["run", flag, "help"]);
        assert!(out.status.success(), "{flag}: {out:?}");
        assert!(stdout(&out).contains(key), "{flag}: {}", stdout(&out));
    }
}

#[test]
fn a_first_argument_that_is_no_subcommand_means_run() {
    let out = wazerox(&["examples/fib.wat", "--invoke", "fib", "20"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "6765\n");
    let out = wazerox(&["--invoke", "fib", "examples/fib.wat", "20"]);
    assert_eq!(stdout(&out), "6765\n", "{out:?}");
}

/// `-C compilation` picks when `run` compiles (docs/lazy-compilation.md); every
/// choice runs the program alike, and `compile` refuses it (artifacts are always
/// fully compiled).
#[test]
fn compilation_strategies_run_alike() {
    for strategy in ["auto", "eager", "lazy", "lazy-fast"] {
        for background in ["n", "y"] {
            let out = wazerox(&[
                "run",
                "-C",
                &format!("compilation={strategy}"),
                "-C",
                &format!("background-compilation={background}"),
                "--invoke",
                "fib",
                "examples/fib.wat",
                "20",
            ]);
            assert!(out.status.success(), "{strategy}: {out:?}");
            assert_eq!(stdout(&out), "6765\n", "{strategy}: {out:?}");
        }
    }
    let out = wazerox(&["run", "-C", "compilation=sometimes", "examples/fib.wat"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        stderr(&out).contains("expected auto, eager, lazy or lazy-fast"),
        "{out:?}"
    );
    let dir = scratch("compile-strategy");
    let out_file = dir.join("fib.cwasm");
    let out = wazerox(&[
        "compile",
        "-C",
        "compilation=lazy",
        "examples/fib.wat",
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("settings of `run`"), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// wasmtime's spelling for a wasi-threads program works as is.
#[test]
fn wasmtime_thread_flags_run_a_threaded_program() {
    let out = wazerox(&[
        "run",
        "--dir",
        ".",
        "-W",
        "threads=y",
        "-S",
        "threads=y",
        "tests/threads/exit_code.wasm",
    ]);
    assert_eq!(out.status.code(), Some(42), "{}", stderr(&out));
    assert_eq!(stdout(&out), "exit_code: mode exit\n");
    // `-S threads=n` does not link thread-spawn: the import is missing.
    let out = wazerox(&["run", "-S", "threads=n", "tests/threads/exit_code.wasm"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("thread-spawn"), "{}", stderr(&out));
}

#[test]
fn wasm_features_are_switched_by_w() {
    let dir = scratch("features");
    let wat = dir.join("tail.wat");
    std::fs::write(
        &wat,
        r#"(module
             (func $count (param i32) (result i32)
               (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 7))
                 (else (return_call $count (i32.sub (local.get 0) (i32.const 1))))))
             (func (export "run") (param i32) (result i32) (return_call $count (local.get 0))))"#,
    )
    .unwrap();
    let wat = wat.to_str().unwrap();
    let out = wazerox(&[
        "run",
        "-W",
        "tail-call=y",
        "--invoke",
        "run",
        wat,
        "1000000",
    ]);
    assert_eq!(stdout(&out), "7\n", "{out:?}");
    let out = wazerox(&["run", "-W", "tail-call=n", "--invoke", "run", wat, "1"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("tail"), "{}", stderr(&out));
    // Several keys in one value, as wasmtime allows.
    let out = wazerox(&["run", "-W", "simd,tail-call=y", "--invoke", "run", wat, "3"]);
    assert_eq!(stdout(&out), "7\n", "{out:?}");
    // GC is off by default and switched on by `-W gc=y`.
    let trees = "tests/gc/binary-trees.wat";
    let invoke = ["--invoke", "trees", trees, "4", "3", "2"];
    let out = wazerox(&[&["run"][..], &invoke].concat());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = wazerox(&[&["run", "-W", "gc=y"][..], &invoke].concat());
    assert_eq!(stdout(&out), format!("{}\n", 3 * 7 + 31), "{out:?}");
    for unknown in [
        &["-W", "bogus"][..],
        &["-S", "nn=y"],
        &["-C", "compiler=winch"],
    ] {
        let out = wazerox(&[&["run"], unknown, &[wat]].concat());
        assert_eq!(out.status.code(), Some(2), "{unknown:?}: {out:?}");
        assert!(stderr(&out).contains(unknown[1]), "{}", stderr(&out));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn limits_are_spelled_as_wasmtime_spells_them() {
    let dir = scratch("limits");
    let wat = dir.join("spin.wat");
    std::fs::write(
        &wat,
        r#"(module (memory 1)
             (func (export "spin") (loop $l (br $l)))
             (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#,
    )
    .unwrap();
    let wat = wat.to_str().unwrap();
    let out = wazerox(&["run", "-W", "fuel=10000", "--invoke", "spin", wat]);
    assert_eq!(out.status.code(), Some(134), "{out:?}");
    assert!(stderr(&out).contains("fuel"), "{}", stderr(&out));
    let out = wazerox(&["run", "-W", "timeout=200ms", "--invoke", "spin", wat]);
    assert_eq!(out.status.code(), Some(134), "{out:?}");
    let grow = |flags: &[&str]| {
        stdout(&wazerox(
            &[&["run"], flags, &["--invoke", "grow", wat, "1"]].concat(),
        ))
    };
    assert_eq!(grow(&["-W", "max-memory-size=64K"]), "-1\n");
    assert_eq!(grow(&["-W", "max-memory-size=128K"]), "1\n");
    assert_eq!(grow(&["-O", "opt-level=0"]), "1\n");
    let _ = std::fs::remove_dir_all(dir);
}

/// `-S inherit-env` passes this process's environment; `--env` one variable.
#[test]
fn wasi_environment_flags() {
    let corpus = repo().join("../shared/corpus");
    if !corpus.exists() {
        eprintln!("*** WARNING: {} not found: skipping ***", corpus.display());
        return;
    }
    let wasm = corpus.join("wasi_features.wasm");
    let expected = std::fs::read(corpus.join("expected/wasi_features.stdout")).unwrap();
    for (flags, env) in [
        (&["--env", "GREETING=hi"][..], &[][..]),
        (&["--env", "GREETING"], &[("GREETING", "hi")]),
        (&["-S", "inherit-env"], &[("GREETING", "hi")]),
    ] {
        let dir = scratch("env");
        let sandbox = format!("{}::/sandbox", dir.display());
        let args = [
            &["run", "--dir", &sandbox][..],
            flags,
            &[wasm.to_str().unwrap(), "a", "b", "c"],
        ]
        .concat();
        let out = wazerox_in(&repo(), &args, env);
        assert_eq!(out.status.code(), Some(7), "{flags:?}: {}", stderr(&out));
        assert_eq!(out.stdout, expected, "{flags:?}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn preload_links_another_module_by_name() {
    let dir = scratch("preload");
    std::fs::write(
        dir.join("lib.wat"),
        r#"(module (func (export "double") (param i32) (result i32)
             (i32.mul (local.get 0) (i32.const 2))))"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("main.wat"),
        r#"(module (import "math" "double" (func $double (param i32) (result i32)))
             (func (export "run") (param i32) (result i32)
               (i32.add (call $double (local.get 0)) (i32.const 1))))"#,
    )
    .unwrap();
    let out = wazerox_in(
        &dir,
        &[
            "run",
            "--preload",
            "math=lib.wat",
            "--invoke",
            "run",
            "main.wat",
            "20",
        ],
        &[],
    );
    assert_eq!(stdout(&out), "41\n", "{out:?}");
    let out = wazerox_in(&dir, &["run", "--invoke", "run", "main.wat", "20"], &[]);
    assert!(stderr(&out).contains("math::double"), "{out:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The `.cwasm` files of a cache directory, with their inode and modification
/// time.
fn cache_entries(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_else(|_| Vec::new())
        .into_iter()
        .filter(|p: &PathBuf| p.extension().is_some_and(|e| e == "cwasm"))
        .map(|p| {
            let meta = std::fs::metadata(&p).unwrap();
            (p, meta.ino(), meta.modified().unwrap())
        })
        .collect();
    entries.sort();
    entries
}

#[test]
fn cache_entries_are_reused_and_corrupt_ones_recompiled() {
    let home = scratch("cache");
    let xdg = home.to_str().unwrap();
    let cache = home.join("wazerox");
    let fib = repo().join("examples/fib.wat");
    let run = |flags: &[&str]| {
        let args = [
            &["run"][..],
            flags,
            &["--invoke", "fib", fib.to_str().unwrap(), "20"],
        ]
        .concat();
        let out = wazerox_in(&repo(), &args, &[("XDG_CACHE_HOME", xdg)]);
        assert_eq!(stdout(&out), "6765\n", "{flags:?}: {out:?}");
        out
    };
    // Off by default.
    run(&[]);
    assert!(cache_entries(&cache).is_empty());
    run(&["-C", "cache=y"]);
    let first = cache_entries(&cache);
    assert_eq!(first.len(), 1, "{first:?}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    // The second run loads the entry: not rewritten (same inode and mtime).
    std::thread::sleep(std::time::Duration::from_millis(20));
    run(&["-C", "cache=y"]);
    assert_eq!(cache_entries(&cache), first);
    // A corrupt entry is recompiled and replaced, never run.
    let entry = &first[0].0;
    let good = std::fs::read(entry).unwrap();
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0xff;
    std::fs::write(entry, &bad).unwrap();
    run(&["-C", "cache=y"]);
    assert_eq!(std::fs::read(entry).unwrap(), good);
    std::fs::write(entry, b"not an artifact").unwrap();
    run(&["-C", "cache=y"]);
    assert_eq!(std::fs::read(entry).unwrap(), good);
    // A directory others may write to is not used.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::remove_file(entry).unwrap();
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let out = run(&["-C", "cache=y"]);
    assert!(stderr(&out).contains("writable by other users"), "{out:?}");
    assert!(cache_entries(&cache).is_empty());
    let _ = std::fs::remove_dir_all(home);
}

/// A program whose functions are named: `_start` → `$main` → `$fib` (recursive).
const NAMED_FIB: &str = r#"(module $named_fib
  (func $fib (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
      (then (local.get 0))
      (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                     (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
  (func $main (drop (call $fib (i32.const 36))))
  (func $four (export "four") (result i32) (i32.const 4))
  (func (export "_start") (call $main)))"#;

#[test]
fn perfmap_names_every_compiled_function() {
    let dir = scratch("perfmap");
    std::fs::write(dir.join("fib.wat"), NAMED_FIB).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_wazerox"))
        .args(["run", "--profile=perfmap", "fib.wat"])
        .current_dir(&dir)
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let map_path = format!("/tmp/perf-{pid}.map");
    let map = std::fs::read_to_string(&map_path).unwrap();
    let _ = std::fs::remove_file(&map_path);
    // Every function of the module (all four are defined, none imported).
    for name in ["fib", "main", "four", "function[3]"] {
        assert!(
            map.lines()
                .any(|l| l.ends_with(&format!(" wasm[named_fib]::{name}"))),
            "{name} missing:\n{map}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Reads a speedscope file; the frame names of each sample, outermost first.
fn speedscope_stacks(path: &Path) -> Vec<Vec<String>> {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).expect("valid JSON");
    let frames: Vec<String> = json["shared"]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    let profile = &json["profiles"][0];
    assert_eq!(profile["type"], "sampled");
    let samples = profile["samples"].as_array().unwrap();
    assert_eq!(samples.len(), profile["weights"].as_array().unwrap().len());
    samples
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .map(|i| frames[i.as_u64().unwrap() as usize].clone())
                .collect()
        })
        .collect()
}

#[test]
fn guest_profile_samples_named_wasm_stacks() {
    let dir = scratch("guest");
    std::fs::write(dir.join("fib.wat"), NAMED_FIB).unwrap();
    let out = wazerox_in(
        &dir,
        &["run", "--profile=guest,profile.json,1ms", "fib.wat"],
        &[],
    );
    assert!(out.status.success(), "{out:?}");
    let stacks = speedscope_stacks(&dir.join("profile.json"));
    assert!(stacks.len() >= 5, "{} samples", stacks.len());
    // fib(36) (~50 ms: fib(32) took as little as 3 ms, too few samples under a
    // 1 ms timer, so the test was flaky) is most of the run: most samples are in $fib, called from $main,
    // called from the exported `_start` (unnamed: function[3]).
    let in_fib: Vec<_> = stacks
        .iter()
        .filter(|s| s.last().map(String::as_str) == Some("fib"))
        .collect();
    assert!(in_fib.len() * 2 > stacks.len(), "{stacks:?}");
    for stack in &in_fib {
        assert_eq!(&stack[..2], ["wasm-function[3]", "main"], "{stack:?}");
        assert!(stack[2..].iter().all(|f| f == "fib"), "{stack:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The corpus's fib (C, built by zig cc, no name section) under the guest
/// profiler: the file parses, and the deep recursion shows as a stack of one
/// function repeated.
#[test]
fn guest_profile_of_the_corpus_fib() {
    let corpus = repo().join("../shared/corpus");
    if !corpus.exists() {
        eprintln!("*** WARNING: {} not found: skipping ***", corpus.display());
        return;
    }
    let dir = scratch("guest-corpus");
    let out = wazerox_in(
        &dir,
        &[
            "run",
            "--profile=guest,1ms",
            corpus.join("fib.wasm").to_str().unwrap(),
            "32",
        ],
        &[],
    );
    assert_eq!(stdout(&out), "fib(32) = 2178309\n", "{out:?}");
    let stacks = speedscope_stacks(&dir.join("wazerox-guest-profile.json"));
    assert!(!stacks.is_empty());
    assert!(
        stacks.iter().any(|s| s.len() > 10
            && s.last().unwrap().starts_with("wasm-function[")
            && s.iter().filter(|f| *f == s.last().unwrap()).count() > 5),
        "{stacks:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
