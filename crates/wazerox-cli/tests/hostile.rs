//! Hostile modules against `wazerox run` (issue 21): each test is an attack that
//! used to crash, exhaust or outlive the host, run through the binary as a user
//! would, with the child's exit status, wall time and peak memory checked.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A scratch directory for one test's modules.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("wazerox-hostile-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn module(&self, name: &str, wat: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, wat).unwrap();
        path.to_str().unwrap().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn wazerox(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wazerox"));
    command.arg("run").args(args);
    command
}

/// How a child ended.
struct Ended {
    /// Exit code, or `None` if a signal killed it.
    code: Option<i32>,
    signal: Option<i32>,
    /// Peak resident memory, in bytes.
    max_rss: u64,
    wall: Duration,
    stdout: String,
    stderr: String,
}

/// Waits for `child` (killing it after `limit`: a hang fails the test, it never
/// blocks the suite), with its peak memory from `wait4`.
fn finish(mut child: Child, limit: Duration) -> Ended {
    let start = Instant::now();
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let readers = [
        std::thread::spawn(move || read_all(stdout.as_mut())),
        std::thread::spawn(move || read_all(stderr.as_mut())),
    ];
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: `rusage` is plain data the kernel fills in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child without blocking.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(r >= 0, "wait4: {}", std::io::Error::last_os_error());
        if r == pid {
            break (std::process::ExitStatus::from_raw(status), usage);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run outlived {limit:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let [out, err] = readers.map(|r| r.join().unwrap());
    Ended {
        code: status.code(),
        signal: status.signal(),
        max_rss: usage.ru_maxrss as u64 * 1024,
        wall: start.elapsed(),
        stdout: out,
        stderr: err,
    }
}

fn read_all(stream: Option<&mut impl std::io::Read>) -> String {
    let mut text = Vec::new();
    if let Some(stream) = stream {
        let _ = stream.read_to_end(&mut text);
    }
    String::from_utf8_lossy(&text).into_owned()
}

fn run(args: &[&str], limit: Duration) -> Ended {
    let child = wazerox(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wazerox");
    finish(child, limit)
}

/// Host memory a run may use beyond what the guest has: the binary, the compiler
/// and the runtime, well below what the attacks below used to cost (hundreds of
/// MB to an abort).
const HOST_RSS_BOUND: u64 = 160 << 20;

// --- item 3: fd_write gathered every iovec into one host buffer ----------------

/// `n` iovecs at address 0, each covering the first `len` bytes of memory, written
/// to stdout in one `fd_write`; exits 0 if it wrote something, 1 on an errno, 2
/// if it wrote nothing.
fn iovec_bomb(pages: u32, n: u32, len: u32) -> String {
    let count_at = n * 8;
    format!(
        r#"(module
        (import "wasi_snapshot_preview1" "fd_write"
          (func $fd_write (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") {pages})
        (func (export "_start")
          (local $i i32)
          (loop $fill
            (i32.store (i32.mul (local.get $i) (i32.const 8)) (i32.const 0))
            (i32.store (i32.add (i32.mul (local.get $i) (i32.const 8)) (i32.const 4))
              (i32.const {len}))
            (br_if $fill (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                                   (i32.const {n}))))
          (if (call $fd_write (i32.const 1) (i32.const 0) (i32.const {n}) (i32.const {count_at}))
            (then (call $exit (i32.const 1))))
          (if (i32.eqz (i32.load (i32.const {count_at}))) (then (call $exit (i32.const 2))))
          (call $exit (i32.const 0))))"#
    )
}

#[test]
fn fd_write_of_many_huge_iovecs_keeps_host_memory_small() {
    let scratch = Scratch::new("iovecs");
    // The issue's attacks: 131,000 iovecs over a 1 MiB memory (137 GB asked for
    // at once: an abort), and a 64 KiB guest under --max-memory whose 8,191
    // iovecs of 64 KiB took the host to 532 MB.
    let cases = [
        (iovec_bomb(16, 131_000, 1 << 20), None),
        (iovec_bomb(1, 8_191, 1 << 16), Some("65536")),
    ];
    for (i, (wat, max_memory)) in cases.iter().enumerate() {
        let file = scratch.module(&format!("bomb{i}.wat"), wat);
        let mut args = Vec::new();
        if let Some(bytes) = max_memory {
            args.extend(["--max-memory", bytes]);
        }
        args.push(&file);
        let child = wazerox(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let ended = finish(child, Duration::from_secs(60));
        assert_eq!(
            (ended.code, ended.signal),
            (Some(0), None),
            "case {i}: {}",
            ended.stderr
        );
        assert!(
            ended.max_rss < HOST_RSS_BOUND,
            "case {i}: the host reached {} MB",
            ended.max_rss >> 20
        );
    }
}

// --- item 4: a thread-spawn bomb aborted the host ------------------------------

/// Spawns threads that park forever until `thread-spawn` fails; returns how many
/// it started.
const SPAWN_BOMB: &str = r#"(module
    (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
    (import "env" "memory" (memory 1 1 shared))
    (export "memory" (memory 0))
    (func (export "wasi_thread_start") (param i32 i32)
      (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1))))
    (func (export "bomb") (result i32)
      (local $n i32)
      (block $refused
        (loop $more
          (br_if $refused (i32.le_s (call $spawn (i32.const 0)) (i32.const 0)))
          (local.set $n (i32.add (local.get $n) (i32.const 1)))
          (br $more)))
      (local.get $n)))"#;

#[test]
fn thread_spawn_bombs_hit_the_thread_cap_and_the_host_lives() {
    let scratch = Scratch::new("spawn");
    let file = scratch.module("bomb.wat", SPAWN_BOMB);
    let default = wazerox_wasi::threads::DEFAULT_MAX_THREADS.to_string();
    for cap in [Some("50"), None] {
        let mut args = vec!["--invoke", "bomb"];
        if let Some(cap) = cap {
            args.extend(["--max-threads", cap]);
        }
        args.push(&file);
        let ended = run(&args, Duration::from_secs(120));
        assert_eq!(ended.code, Some(0), "cap {cap:?}: {}", ended.stderr);
        // Every thread up to the cap started, the next spawn failed cleanly.
        assert_eq!(ended.stdout.trim(), cap.unwrap_or(&default), "cap {cap:?}");
    }
}

// --- item 5: --timeout did not stop blocking WASI calls ------------------------

/// A program whose main thread and (optionally) one spawned thread each block:
/// `sleep` in a one-hour `poll_oneoff`, `read` in `fd_read` of stdin.
fn blocker(main: &str, thread: Option<&str>) -> String {
    let threaded = thread.is_some();
    let memory = if threaded {
        r#"(import "env" "memory" (memory 1 1 shared)) (export "memory" (memory 0))
           (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))"#
    } else {
        r#"(memory (export "memory") 1)"#
    };
    let spawn = match thread {
        Some(_) => "(drop (call $spawn (i32.const 0)))",
        None => "",
    };
    let thread_start = match thread {
        Some(what) => {
            format!(r#"(func (export "wasi_thread_start") (param i32 i32) (call ${what}))"#)
        }
        None => String::new(),
    };
    format!(
        r#"(module
        (import "wasi_snapshot_preview1" "poll_oneoff"
          (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "fd_read"
          (func $fd_read (param i32 i32 i32 i32) (result i32)))
        {memory}
        (func $sleep
          ;; One relative monotonic-clock subscription of an hour at 512.
          (i32.store8 (i32.const 520) (i32.const 0))
          (i32.store (i32.const 528) (i32.const 1))
          (i64.store (i32.const 536) (i64.const 3600000000000))
          (i64.store (i32.const 544) (i64.const 0))
          (i32.store16 (i32.const 552) (i32.const 0))
          (drop (call $poll_oneoff (i32.const 512) (i32.const 600) (i32.const 1) (i32.const 640))))
        (func $read
          (i32.store (i32.const 64) (i32.const 128))
          (i32.store (i32.const 68) (i32.const 16))
          (drop (call $fd_read (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 80))))
        {thread_start}
        (func (export "_start") {spawn} (call ${main})))"#
    )
}

#[test]
fn timeout_ends_blocking_sleeps_and_reads_in_any_thread() {
    let scratch = Scratch::new("timeout");
    let cases = [
        ("sleep", None),
        ("read", None),
        ("read", Some("sleep")),
        ("sleep", Some("read")),
    ];
    for (i, (main, thread)) in cases.into_iter().enumerate() {
        let file = scratch.module(&format!("blocker{i}.wat"), &blocker(main, thread));
        // Stdin is a pipe the test holds open: a read of it waits forever.
        let mut child = wazerox(&["--timeout", "1s", &file])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let ended = finish(child, Duration::from_secs(30));
        drop(stdin);
        let case = format!("main {main}, thread {thread:?}");
        assert_eq!(ended.code, Some(134), "{case}: {}", ended.stderr);
        assert!(
            ended.stderr.contains("interrupt"),
            "{case}: {}",
            ended.stderr
        );
        assert!(
            ended.wall < Duration::from_secs(10),
            "{case}: took {:?}",
            ended.wall
        );
    }
}

// --- item 8: --max-memory did not cover shared memories ------------------------

#[test]
fn max_memory_refuses_a_large_initial_shared_memory() {
    let scratch = Scratch::new("shared-initial");
    let file = scratch.module(
        "big.wat",
        r#"(module (import "env" "memory" (memory 32768 32768 shared))
             (func (export "_start")))"#,
    );
    let ended = run(&["--max-memory", "1048576", &file], Duration::from_secs(30));
    assert_eq!(ended.code, Some(1), "{}", ended.stderr);
    assert!(ended.stderr.contains("refused"), "{}", ended.stderr);
    // Within the limit it runs.
    let ended = run(
        &["--max-memory", "2147483648", &file],
        Duration::from_secs(30),
    );
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
}

/// `grow` starts `threads` threads that each grow the shared memory by `delta`
/// pages until refused, waits for them, and returns the first growth's result
/// of thread 1 (at 8) and the final size in pages.
fn growers(threads: u32, delta: u32) -> String {
    format!(
        r#"(module
        (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
        (import "env" "memory" (memory 1 65536 shared))
        (export "memory" (memory 0))
        (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
          (local $r i32)
          (local.set $r (memory.grow (i32.const {delta})))
          (if (i32.eq (local.get $arg) (i32.const 1))
            (then (i32.atomic.store (i32.const 8) (local.get $r))))
          (loop $again
            (br_if $again (i32.ne (memory.grow (i32.const {delta})) (i32.const -1))))
          (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
          (drop (memory.atomic.notify (i32.const 0) (i32.const -1))))
        (func (export "grow") (result i32 i32)
          (local $i i32) (local $done i32)
          (loop $spawning
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (if (i32.le_s (call $spawn (local.get $i)) (i32.const 0)) (then unreachable))
            (br_if $spawning (i32.lt_u (local.get $i) (i32.const {threads}))))
          (loop $waiting
            (local.set $done (i32.atomic.load (i32.const 0)))
            (if (i32.lt_u (local.get $done) (i32.const {threads}))
              (then
                (drop (memory.atomic.wait32 (i32.const 0) (local.get $done) (i64.const -1)))
                (br $waiting))))
          (i32.atomic.load (i32.const 8))
          (memory.size)))"#
    )
}

#[test]
fn max_memory_holds_for_shared_memories_grown_by_spawned_threads() {
    let scratch = Scratch::new("shared-grow");
    let limit: u64 = 1 << 20;
    let limit_flag = limit.to_string();
    // One thread asking for 256 MiB at once; then eight racing page by page.
    for (threads, delta) in [(1, 4096), (8, 1)] {
        let file = scratch.module(&format!("grow{threads}.wat"), &growers(threads, delta));
        let ended = run(
            &["--max-memory", &limit_flag, "--invoke", "grow", &file],
            Duration::from_secs(30),
        );
        assert_eq!(ended.code, Some(0), "{}", ended.stderr);
        let values: Vec<i64> = ended.stdout.lines().map(|l| l.parse().unwrap()).collect();
        let (first, pages) = (values[0], values[1] as u64);
        if delta * 65536 > limit as u32 {
            assert_eq!(first, -1, "a growth past the limit is refused");
        }
        assert!(
            pages * 65536 <= limit,
            "{threads} threads grew the shared memory to {pages} pages"
        );
    }
}

// --- item 11: --fuel killed every spawned thread at once -----------------------

/// `_start` spawns a thread that counts to `n` (at 16) and wakes main, which
/// returns; with `n` = -1 the thread spins forever.
fn counter(n: i32) -> String {
    format!(
        r#"(module
        (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
        (import "env" "memory" (memory 1 1 shared))
        (export "memory" (memory 0))
        (func (export "wasi_thread_start") (param i32 i32)
          (local $i i32)
          (loop $count
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $count (i32.ne (local.get $i) (i32.const {n}))))
          (i32.atomic.store (i32.const 16) (local.get $i))
          (drop (memory.atomic.notify (i32.const 16) (i32.const 1))))
        (func (export "_start")
          (if (i32.le_s (call $spawn (i32.const 0)) (i32.const 0)) (then unreachable))
          (loop $wait
            (if (i32.eqz (i32.atomic.load (i32.const 16)))
              (then
                (drop (memory.atomic.wait32 (i32.const 16) (i32.const 0) (i64.const -1)))
                (br $wait))))))"#
    )
}

#[test]
fn fuel_is_given_to_every_thread() {
    let scratch = Scratch::new("fuel");
    let counts = scratch.module("counts.wat", &counter(10_000));
    let ended = run(&["--fuel", "10000000", &counts], Duration::from_secs(30));
    assert_eq!(ended.code, Some(0), "{}", ended.stderr);
    // A thread that never ends runs out of its own fuel: the run ends with that trap.
    let spins = scratch.module("spins.wat", &counter(-1));
    let ended = run(&["--fuel", "10000000", &spins], Duration::from_secs(30));
    assert_eq!(ended.code, Some(134), "{}", ended.stderr);
    assert!(ended.stderr.contains("fuel"), "{}", ended.stderr);
}
