//! The C programs of `tests/wasi` (rebuilt by `tests/wasi/build.sh`) through the API:
//! each checks itself and prints `NAME: N checks, 0 failed`; and cancellation of
//! blocking calls from another thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wazerox::{Engine, Linker, Module, Store};
use wazerox_wasi::{Cancelled, I32Exit, MemoryPipe, WasiCtx, WasiCtxBuilder};

fn program(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("wasi")
        .join(format!("{name}.wasm"))
}

/// A fresh, empty host directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("wazerox-wasi-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Run {
    /// The exit code (0 when `_start` returned), or the error that ended the run.
    exit: Result<i32, wazerox::Error>,
    stdout: String,
    stderr: String,
}

/// Runs `name`'s `_start` with argv[0] = `name`, captured stdout and stderr, and
/// whatever `configure` adds.
fn run(name: &str, configure: impl FnOnce(&mut WasiCtxBuilder)) -> Run {
    let stdout = MemoryPipe::new();
    let stderr = MemoryPipe::new();
    let mut builder = WasiCtxBuilder::new();
    builder.arg(name);
    configure(&mut builder);
    let ctx = builder.stdout_pipe(&stdout).stderr_pipe(&stderr).build();
    let exit = run_with(name, ctx);
    Run {
        exit,
        stdout: String::from_utf8(stdout.contents()).unwrap(),
        stderr: String::from_utf8(stderr.contents()).unwrap(),
    }
}

fn run_with(name: &str, ctx: Arc<WasiCtx>) -> Result<i32, wazerox::Error> {
    let engine = Engine::default();
    let module = Module::from_file(&engine, program(name))?;
    let mut store = Store::new(&engine, ctx);
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
    wazerox_wasi::add_to_linker(&mut linker, |c| c)?;
    let instance = linker.instantiate(&mut store, &module)?;
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
    match start.call(&mut store, ()) {
        Ok(()) => Ok(0),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => Err(e),
        },
    }
}

/// The program ran to the end with exit code 0 and all its checks passed.
fn assert_passed(name: &str, run: &Run) {
    let code = run.exit.as_ref().map_err(|e| e.to_string());
    assert_eq!(
        code,
        Ok(&0),
        "{name} failed; stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    let last = run.stdout.lines().last().unwrap_or("");
    assert!(
        last.starts_with(&format!("{name}: ")) && last.ends_with(" checks, 0 failed"),
        "{}",
        run.stdout
    );
}

#[test]
fn files_and_directories_in_a_preopen() {
    let dir = TempDir::new("fs");
    let result = run("fs", |b| {
        b.preopened_dir(&dir.0, "/sandbox", false).unwrap();
    });
    assert_passed("fs", &result);
    assert_eq!(
        std::fs::read_dir(&dir.0).unwrap().count(),
        0,
        "the program cleaned up"
    );
}

#[test]
fn preopens_under_other_guest_names() {
    let dir = TempDir::new("fs-named");
    // The program's argv[1] is the root it works in.
    let result = run("fs", |b| {
        b.preopened_dir(&dir.0, "/data/inner", false)
            .unwrap()
            .arg("/data/inner");
    });
    assert_passed("fs", &result);
}

/// A C program built with `-mtail-call` (10^7-deep mutual recursion and a threaded
/// interpreter dispatching through `return_call_indirect`) under the default
/// engine and its 512 KiB stack.
#[test]
fn llvm_tail_calls_run_in_constant_stack() {
    let result = run("tail_call", |_| {});
    assert_passed("tail_call", &result);
}

#[test]
fn clocks_sleep_poll_and_random() {
    let result = run("clocks", |b| {
        b.stdin_bytes("some input\n");
    });
    assert_passed("clocks", &result);
}

#[test]
fn args_env_stdin_and_exit_code() {
    let result = run("args_env", |b| {
        b.args(["one", "two words"])
            .env("GREETING", "hi")
            .env("EXIT_CODE", "7")
            .stdin_bytes("line 1\nline 2\n");
    });
    assert_eq!(result.exit.unwrap(), 7);
    assert_eq!(
        result.stdout,
        "argc=3\nargv[0]=args_env\nargv[1]=one\nargv[2]=two words\n\
         env GREETING=hi\nenv EXIT_CODE=7\nisatty(1)=0\nline 1\nline 2\nstdin bytes=14\n"
    );
    assert_eq!(result.stderr, "to stderr\n");

    // Returning 0 from main is a normal return from `_start`.
    let result = run("args_env", |_| {});
    assert_eq!(result.exit.unwrap(), 0);
    assert_eq!(
        result.stdout,
        "argc=1\nargv[0]=args_env\nisatty(1)=0\nstdin bytes=0\n"
    );
}

#[test]
fn read_only_preopens_refuse_every_change() {
    let dir = TempDir::new("ro");
    std::fs::write(dir.0.join("data.txt"), "read only\n").unwrap();
    std::fs::create_dir(dir.0.join("sub")).unwrap();
    let mtime = std::fs::metadata(dir.0.join("data.txt"))
        .unwrap()
        .modified()
        .unwrap();
    let result = run("readonly", |b| {
        b.preopened_dir(&dir.0, "/ro", true).unwrap();
    });
    assert_passed("readonly", &result);
    let mut names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["data.txt", "sub"]);
    assert_eq!(
        std::fs::read_to_string(dir.0.join("data.txt")).unwrap(),
        "read only\n"
    );
    let after = std::fs::metadata(dir.0.join("data.txt"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(after, mtime, "times unchanged");
}

/// Waits until `pipe` has received `text`.
fn wait_for(pipe: &MemoryPipe, text: &str) {
    let start = Instant::now();
    while !String::from_utf8_lossy(&pipe.contents()).contains(text) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the program never printed {text:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn echo_server_on_a_preopened_socket() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let stdout = MemoryPipe::new();
    let ctx = WasiCtxBuilder::new()
        .arg("echo_server")
        .stdout_pipe(&stdout)
        .preopened_socket(listener)
        .unwrap()
        .build();
    let server = std::thread::spawn(move || run_with("echo_server", ctx));
    wait_for(&stdout, "ready\n");
    let mut client = std::net::TcpStream::connect(address).unwrap();
    client.write_all(b"hello\nsockets\n").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "HELLO\nSOCKETS\n");
    assert_eq!(server.join().unwrap().unwrap(), 0);
    let out = String::from_utf8(stdout.contents()).unwrap();
    assert!(
        out.ends_with("echoed 14 bytes\necho_server: 10 checks, 0 failed\n"),
        "{out}"
    );
}

/// Runs `blocker MODE` in a thread until it prints that it blocks, cancels its
/// context, and checks the run ends promptly with `Cancelled`.
fn cancel_blocked(mode: &str, builder: &mut WasiCtxBuilder) {
    let stdout = MemoryPipe::new();
    let ctx = builder
        .arg("blocker")
        .arg(mode)
        .stdout_pipe(&stdout)
        .build();
    let shared = ctx.clone();
    let thread = std::thread::spawn(move || run_with("blocker", shared));
    wait_for(&stdout, "blocking in");
    std::thread::sleep(Duration::from_millis(100));
    assert!(!thread.is_finished(), "{mode}: the call blocks");
    let cancelled_at = Instant::now();
    ctx.cancel();
    let error = thread.join().unwrap().unwrap_err();
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(2),
        "{mode}: prompt"
    );
    assert!(
        error.downcast_ref::<Cancelled>().is_some(),
        "{mode}: {error}"
    );
    assert!(error.downcast_ref::<I32Exit>().is_none());
}

#[test]
fn blocking_calls_are_cancelled_from_another_thread() {
    cancel_blocked("sleep", &mut WasiCtxBuilder::new());
    // Pipes whose writers stay open: reading them would wait forever.
    let pipe = || {
        let (reader, writer) = std::io::pipe().unwrap();
        (
            std::fs::File::from(std::os::fd::OwnedFd::from(reader)),
            writer,
        )
    };
    let (stdin, _writer) = pipe();
    cancel_blocked("read", WasiCtxBuilder::new().stdin_file(stdin));
    let (stdin, _writer) = pipe();
    cancel_blocked("poll", WasiCtxBuilder::new().stdin_file(stdin));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    cancel_blocked(
        "accept",
        WasiCtxBuilder::new().preopened_socket(listener).unwrap(),
    );
}

#[test]
fn traps_are_errors_with_a_backtrace_not_exits() {
    let result = run("trap", |_| {});
    assert_eq!(result.stdout, "about to trap\n");
    let error = result.exit.unwrap_err();
    assert!(error.downcast_ref::<I32Exit>().is_none());
    let trap = error.as_trap().expect("a trap");
    assert_eq!(trap.code(), wazerox::TrapCode::UnreachableCodeReached);
    let names: Vec<String> = trap.backtrace().iter().map(|f| f.to_string()).collect();
    assert!(
        names.iter().filter(|n| n.contains("crash_here")).count() >= 3,
        "{names:#?}"
    );
}
