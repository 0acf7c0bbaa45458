//! WASIX beyond checkpoints (`wasix_32v1`): futexes (also together with
//! `memory.atomic.wait32/notify`), threads (spawn, ids, join, exit, sleep),
//! signals (callback, `thread_signal`, `proc_raise_interval`, default actions),
//! descriptors (dup, dup2, pipe), the working directory and process ids, and the
//! link error that names every missing import. Each program writes what it saw
//! into memory (results from 1024, thread results from 1060); the tests read it.

use std::sync::Arc;
use std::time::{Duration, Instant};
use wazerox::{Config, Engine, Error, ErrorKind, Extern, Linker, Module, Store};
use wazerox_wasi::wasix::ThreadExit;
use wazerox_wasi::{I32Exit, MemoryPipe, WasiCtx, WasiCtxBuilder};

/// Every WASIX import the programs use, and the preview1 ones they need; a program
/// gets those it calls.
const IMPORTS: &str = r#"
    (import "wasix_32v1" "futex_wait" (func $futex_wait (param i32 i32 i32 i32) (result i32)))
    (import "wasix_32v1" "futex_wake" (func $futex_wake (param i32 i32) (result i32)))
    (import "wasix_32v1" "futex_wake_all" (func $futex_wake_all (param i32 i32) (result i32)))
    (import "wasix_32v1" "thread_spawn_v2" (func $thread_spawn_v2 (param i32 i32) (result i32)))
    (import "wasix_32v1" "thread_id" (func $thread_id (param i32) (result i32)))
    (import "wasix_32v1" "thread_join" (func $thread_join (param i32) (result i32)))
    (import "wasix_32v1" "thread_exit" (func $thread_exit (param i32)))
    (import "wasix_32v1" "thread_sleep" (func $thread_sleep (param i64) (result i32)))
    (import "wasix_32v1" "thread_parallelism" (func $thread_parallelism (param i32) (result i32)))
    (import "wasix_32v1" "thread_signal" (func $thread_signal (param i32 i32) (result i32)))
    (import "wasix_32v1" "callback_signal" (func $callback_signal (param i32 i32)))
    (import "wasix_32v1" "proc_raise_interval" (func $proc_raise_interval (param i32 i64 i32) (result i32)))
    (import "wasix_32v1" "fd_dup" (func $fd_dup (param i32 i32) (result i32)))
    (import "wasix_32v1" "fd_dup2" (func $fd_dup2 (param i32 i32 i32 i32) (result i32)))
    (import "wasix_32v1" "fd_pipe" (func $fd_pipe (param i32 i32) (result i32)))
    (import "wasix_32v1" "getcwd" (func $getcwd (param i32 i32) (result i32)))
    (import "wasix_32v1" "chdir" (func $chdir (param i32 i32) (result i32)))
    (import "wasix_32v1" "proc_id" (func $proc_id (param i32) (result i32)))
    (import "wasix_32v1" "proc_parent" (func $proc_parent (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
    (import "wasi_snapshot_preview1" "path_open"
      (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
"#;

/// Memory of a single-threaded program.
const OWN_MEMORY: &str = r#"(memory (export "memory") 1)"#;
/// Memory of a threaded program.
const SHARED_MEMORY: &str =
    r#"(import "env" "memory" (memory 1 1 shared)) (export "memory" (memory 0))"#;

struct Run {
    result: Result<(), Error>,
    memory: Vec<u8>,
    stdout: Vec<u8>,
    ctx: Arc<WasiCtx>,
}

impl Run {
    fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.memory[at..at + 4].try_into().unwrap())
    }
    fn u8(&self, at: usize) -> u8 {
        self.memory[at]
    }
    fn exit_code(&self) -> Option<i32> {
        self.result
            .as_ref()
            .err()
            .and_then(|e| e.downcast_ref::<I32Exit>())
            .map(|e| e.0)
    }
}

/// Runs `_start` of a module made of `memory`, the imports and `body`, as
/// `wazerox run` does (threaded programs in a thread group).
fn run(memory: &str, body: &str, setup: impl FnOnce(&mut WasiCtxBuilder)) -> Run {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let imports: String = IMPORTS
        .split("(import ")
        .skip(1)
        .filter(|import| {
            let name = import.split('$').nth(1).and_then(|n| n.split(' ').next());
            name.is_some_and(|name| body.contains(&format!("call ${name} ")))
        })
        .map(|import| format!("(import {import}"))
        .collect();
    let module = Module::new(&engine, format!("(module {imports} {memory} {body})")).unwrap();
    let stdout = MemoryPipe::new();
    let mut builder = WasiCtxBuilder::new();
    builder.stdout_pipe(&stdout);
    setup(&mut builder);
    let ctx = builder.build();
    let mut store = Store::new(&engine, ctx.clone());
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
    wazerox_wasi::add_to_linker(&mut linker, |c| c).unwrap();
    wazerox_wasi::wasix::add_to_linker(&mut linker, |c| c).unwrap();
    let group = wazerox_wasi::threads::enable_if_needed(&module, &mut linker, &ctx).unwrap();
    let mut instance = None;
    let mut main = |store: &mut Store<Arc<WasiCtx>>| {
        let started = linker.instantiate(&mut *store, &module)?;
        instance = Some(started);
        let start = started.get_typed_func::<(), ()>(&mut *store, "_start")?;
        start.call(&mut *store, ())
    };
    let result = match &group {
        Some(group) => group.run_main(&mut store, &mut main),
        None => main(&mut store),
    };
    let memory = match linker.get(&mut store, "env", "memory") {
        Some(Extern::SharedMemory(shared)) => {
            let mut bytes = vec![0; shared.data_size()];
            shared.read(0, &mut bytes).unwrap();
            bytes
        }
        _ => {
            let instance = instance.expect("instantiated");
            let Some(Extern::Memory(memory)) = instance.get_export(&mut store, "memory") else {
                panic!("no memory");
            };
            memory.data(&store).to_vec()
        }
    };
    Run {
        result,
        memory,
        stdout: stdout.contents(),
        ctx,
    }
}

const ESRCH: u32 = 71;
const EDEADLK: u32 = 16;
const ENOENT: u32 = 44;
const ERANGE: u32 = 68;

#[test]
fn a_module_importing_the_eight_functions_of_the_issue_runs() {
    // The eight `wasix_32v1` imports of the protobuf generators (issue 17), each
    // checked for its effect.
    let started = Instant::now();
    let run = run(
        OWN_MEMORY,
        r#"
        (data (i32.const 4096) "on_signal")
        (data (i32.const 4112) "dup\n")
        (func (export "on_signal") (param $signal i32)
          (i32.store (i32.const 1040) (local.get $signal)))
        (func (export "_start")
          (call $callback_signal (i32.const 4096) (i32.const 9))
          (i32.store (i32.const 1100) (call $thread_parallelism (i32.const 1024)))
          ;; A duplicate of stdout writes to stdout.
          (i32.store (i32.const 1104) (call $fd_dup (i32.const 1) (i32.const 1028)))
          (i32.store (i32.const 4128) (i32.const 4112))
          (i32.store (i32.const 4132) (i32.const 4))
          (drop (call $fd_write (i32.load (i32.const 1028)) (i32.const 4128) (i32.const 1)
            (i32.const 4136)))
          ;; Nobody waits on [0]: the wakes wake no one.
          (i32.store8 (i32.const 1032) (i32.const 7))
          (i32.store (i32.const 1108) (call $futex_wake (i32.const 0) (i32.const 1032)))
          (i32.store8 (i32.const 1033) (i32.const 7))
          (i32.store (i32.const 1112) (call $futex_wake_all (i32.const 0) (i32.const 1033)))
          ;; [0] is 0: a wait with a 20 ms timeout times out ...
          (i32.store8 (i32.const 2048) (i32.const 1))
          (i64.store (i32.const 2056) (i64.const 20000000))
          (i32.store8 (i32.const 1034) (i32.const 7))
          (i32.store (i32.const 1116)
            (call $futex_wait (i32.const 0) (i32.const 0) (i32.const 2048) (i32.const 1034)))
          ;; ... and one expecting another value returns at once.
          (i32.store (i32.const 1120)
            (call $futex_wait (i32.const 0) (i32.const 5) (i32.const 2048) (i32.const 1035)))
          ;; SIGUSR1 (10) to this thread reaches the callback before the call returns.
          (i32.store (i32.const 1124) (call $thread_signal (i32.const 1) (i32.const 10)))
          (i32.store (i32.const 1044) (i32.load (i32.const 1040)))
          (call $thread_exit (i32.const 0))
          (i32.store (i32.const 1048) (i32.const 1)))"#,
        |_| {},
    );
    let error = run.result.as_ref().unwrap_err();
    assert_eq!(error.downcast_ref::<ThreadExit>(), Some(&ThreadExit(0)));
    for (call, at) in [
        ("thread_parallelism", 1100),
        ("fd_dup", 1104),
        ("futex_wake", 1108),
        ("futex_wake_all", 1112),
        ("futex_wait", 1116),
        ("futex_wait", 1120),
        ("thread_signal", 1124),
    ] {
        assert_eq!(run.u32(at), 0, "{call} failed");
    }
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(run.u32(1024) as usize, cores);
    assert!(run.u32(1028) >= 3, "a new descriptor");
    assert_eq!(run.stdout, b"dup\n");
    assert_eq!((run.u8(1032), run.u8(1033)), (0, 0), "nobody was woken");
    assert_eq!(run.u8(1034), 0, "timed out");
    assert!(started.elapsed() >= Duration::from_millis(20));
    assert_eq!(run.u8(1035), 1, "a differing value is no timeout");
    assert_eq!(run.u32(1044), 10, "the callback got SIGUSR1");
    assert_eq!(run.u32(1048), 0, "thread_exit does not return");
}

#[test]
fn futex_wake_wakes_a_thread_parked_in_futex_wait() {
    let run = run(
        SHARED_MEMORY,
        r#"
        (func (export "wasi_thread_start") (param $tid i32) (param $start i32)
          ;; No timeout (the option at 2000 is `none`): only a wake ends it.
          (i32.store (i32.const 1060)
            (call $futex_wait (i32.const 0) (i32.const 0) (i32.const 2000) (i32.const 1064)))
          (i32.atomic.store (i32.const 1068) (i32.const 1)))
        (func (export "_start")
          (i32.store (i32.const 1024) (call $thread_spawn_v2 (i32.const 512) (i32.const 1028)))
          (loop $until_woken
            (i32.store (i32.const 1032) (call $futex_wake (i32.const 0) (i32.const 1036)))
            (if (i32.eqz (i32.load8_u (i32.const 1036)))
              (then (drop (call $thread_sleep (i64.const 1000000))) (br $until_woken))))
          (i32.store (i32.const 1040) (call $thread_join (i32.load (i32.const 1028)))))"#,
        |_| {},
    );
    run.result.as_ref().unwrap();
    assert_eq!(run.u32(1024), 0, "thread_spawn_v2");
    assert_eq!(run.u32(1028), 2, "the first spawned thread is 2");
    assert_eq!(run.u32(1032), 0, "futex_wake");
    assert_eq!(run.u8(1036), 1, "woke one");
    assert_eq!(run.u32(1040), 0, "thread_join");
    assert_eq!(
        (run.u32(1060), run.u8(1064)),
        (0, 1),
        "the thread was woken"
    );
    assert_eq!(run.u32(1068), 1, "joined after the thread finished");
}

#[test]
fn futex_calls_and_atomic_wait_notify_wake_each_other() {
    let run = run(
        SHARED_MEMORY,
        r#"
        (func (export "wasi_thread_start") (param $tid i32) (param $start i32)
          (if (i32.eq (local.get $start) (i32.const 512))
            (then (i32.store (i32.const 1060)
              (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1))))
            (else (i32.store (i32.const 1068)
              (call $futex_wait (i32.const 4) (i32.const 0) (i32.const 2000) (i32.const 1064))))))
        (func (export "_start")
          (drop (call $thread_spawn_v2 (i32.const 512) (i32.const 1024)))
          (drop (call $thread_spawn_v2 (i32.const 576) (i32.const 1028)))
          ;; futex_wake ends a memory.atomic.wait32 ...
          (loop $until_woken
            (drop (call $futex_wake (i32.const 0) (i32.const 1036)))
            (if (i32.eqz (i32.load8_u (i32.const 1036)))
              (then (drop (call $thread_sleep (i64.const 1000000))) (br $until_woken))))
          ;; ... and memory.atomic.notify ends a futex_wait.
          (loop $until_notified
            (i32.store (i32.const 1040) (memory.atomic.notify (i32.const 4) (i32.const 1)))
            (if (i32.eqz (i32.load (i32.const 1040)))
              (then (drop (call $thread_sleep (i64.const 1000000))) (br $until_notified))))
          (i32.store (i32.const 1044) (call $thread_join (i32.load (i32.const 1024))))
          (i32.store (i32.const 1048) (call $thread_join (i32.load (i32.const 1028)))))"#,
        |_| {},
    );
    run.result.as_ref().unwrap();
    assert_eq!(
        run.u32(1060),
        0,
        "memory.atomic.wait32 returned `ok` (woken)"
    );
    assert_eq!(
        (run.u32(1068), run.u8(1064)),
        (0, 1),
        "futex_wait was woken"
    );
    assert_eq!(run.u32(1040), 1, "notify counted the futex waiter");
    assert_eq!((run.u32(1044), run.u32(1048)), (0, 0), "joins");
}

#[test]
fn thread_exit_ends_only_its_thread_and_join_waits_for_it() {
    let run = run(
        SHARED_MEMORY,
        r#"
        (func (export "wasi_thread_start") (param $tid i32) (param $start i32)
          (drop (call $thread_sleep (i64.const 20000000)))
          (i32.store (i32.const 1060) (i32.const 1))
          (call $thread_exit (i32.const 5))
          (i32.store (i32.const 1064) (i32.const 1)))
        (func (export "_start")
          (drop (call $thread_spawn_v2 (i32.const 512) (i32.const 1028)))
          (i32.store (i32.const 1040) (call $thread_join (i32.load (i32.const 1028))))
          ;; The thread had finished when join returned.
          (i32.store (i32.const 1044) (i32.load (i32.const 1060)))
          (i32.store (i32.const 1048) (i32.const 1)))"#,
        |_| {},
    );
    run.result.as_ref().unwrap();
    assert_eq!(run.u32(1040), 0);
    assert_eq!(run.u32(1044), 1, "join waited for the thread");
    assert_eq!(run.u32(1064), 0, "thread_exit does not return");
    assert_eq!(run.u32(1048), 1, "main went on");
}

#[test]
fn thread_exit_in_main_lets_the_others_finish_then_exits_0() {
    let run = run(
        SHARED_MEMORY,
        r#"
        (func (export "wasi_thread_start") (param $tid i32) (param $start i32)
          (drop (call $thread_sleep (i64.const 30000000)))
          (i32.store (i32.const 1060) (i32.const 1)))
        (func (export "_start")
          (drop (call $thread_spawn_v2 (i32.const 512) (i32.const 1028)))
          (call $thread_exit (i32.const 3)))"#,
        |_| {},
    );
    assert_eq!(run.exit_code(), Some(0));
    assert_eq!(run.u32(1060), 1, "the spawned thread ran to its end");
}

#[test]
fn thread_ids_and_join_errors() {
    let run = run(
        SHARED_MEMORY,
        r#"
        (func (export "wasi_thread_start") (param $tid i32) (param $start i32)
          (drop (call $thread_id (i32.const 1060)))
          (i32.store (i32.const 1064) (local.get $tid)))
        (func (export "_start")
          (drop (call $thread_id (i32.const 1024)))
          (i32.store (i32.const 1040) (call $thread_join (i32.const 1)))
          (i32.store (i32.const 1044) (call $thread_join (i32.const 999)))
          (drop (call $thread_spawn_v2 (i32.const 512) (i32.const 1028)))
          (i32.store (i32.const 1048) (call $thread_join (i32.load (i32.const 1028))))
          ;; A finished thread joins at once.
          (i32.store (i32.const 1052) (call $thread_join (i32.load (i32.const 1028))))
          ;; A bad thread_start record.
          (i32.store (i32.const 568) (i32.const 1))
          (i32.store (i32.const 1056) (call $thread_spawn_v2 (i32.const 512) (i32.const 1032))))"#,
        |_| {},
    );
    run.result.as_ref().unwrap();
    assert_eq!(run.u32(1024), 1, "the main thread is 1");
    assert_eq!(run.u32(1040), EDEADLK, "joining oneself");
    assert_eq!(run.u32(1044), ESRCH, "joining a thread that never was");
    assert_eq!(run.u32(1048), 0);
    assert_eq!(run.u32(1052), 0);
    assert_eq!(run.u32(1060), run.u32(1028), "thread_id in the thread");
    assert_eq!(run.u32(1064), run.u32(1028), "wasi_thread_start got the id");
    assert_eq!(run.u32(1056), 28, "stack_size above stack_upper is INVAL");
}

#[test]
fn thread_spawn_v2_needs_a_shared_memory() {
    let run = run(
        OWN_MEMORY,
        r#"
        (func (export "wasi_thread_start") (param i32 i32))
        (func (export "_start")
          (i32.store (i32.const 1024) (call $thread_spawn_v2 (i32.const 512) (i32.const 1028))))"#,
        |_| {},
    );
    run.result.as_ref().unwrap();
    assert_eq!(run.u32(1024), 58, "NOTSUP");
}

#[test]
fn a_signal_to_another_thread_reaches_the_callback_in_that_thread() {
    let run = run(
        SHARED_MEMORY,
        r#"
        (data (i32.const 4096) "on_signal")
        (func (export "on_signal") (param $signal i32)
          (drop (call $thread_id (i32.const 1084)))
          (i32.atomic.store (i32.const 1080) (local.get $signal)))
        (func (export "wasi_thread_start") (param $tid i32) (param $start i32)
          (i32.atomic.store (i32.const 1076) (i32.const 1))
          (loop $until_signalled
            (drop (call $thread_sleep (i64.const 1000000)))
            (br_if $until_signalled (i32.eqz (i32.atomic.load (i32.const 1080))))))
        (func (export "_start")
          (call $callback_signal (i32.const 4096) (i32.const 9))
          (drop (call $thread_spawn_v2 (i32.const 512) (i32.const 1028)))
          (i32.store (i32.const 1040)
            (call $thread_signal (i32.load (i32.const 1028)) (i32.const 12)))
          (i32.store (i32.const 1044) (call $thread_join (i32.load (i32.const 1028))))
          (i32.store (i32.const 1048) (call $thread_signal (i32.const 77) (i32.const 12)))
          (i32.store (i32.const 1052) (call $thread_signal (i32.const 1) (i32.const 31))))"#,
        |_| {},
    );
    run.result.as_ref().unwrap();
    assert_eq!(run.u32(1040), 0, "thread_signal");
    assert_eq!(run.u32(1044), 0, "thread_join");
    assert_eq!(run.u32(1080), 12, "SIGUSR2 delivered");
    assert_eq!(run.u32(1084), run.u32(1028), "in the signalled thread");
    assert_eq!(run.u32(1048), ESRCH, "no such thread");
    assert_eq!(run.u32(1052), 28, "no such signal: INVAL");
}

#[test]
fn signals_without_a_callback_take_their_default_action() {
    let run = run(
        OWN_MEMORY,
        r#"
        (data (i32.const 4096) "_start")
        (func (export "_start")
          ;; `_start` takes no signal number: registering it registers nothing.
          (call $callback_signal (i32.const 4096) (i32.const 6))
          ;; SIGCHLD is ignored ...
          (i32.store (i32.const 1024) (call $thread_signal (i32.const 1) (i32.const 16)))
          (i32.store (i32.const 1028) (i32.const 1))
          ;; ... SIGTERM ends the program.
          (drop (call $thread_signal (i32.const 1) (i32.const 15)))
          (i32.store (i32.const 1032) (i32.const 1)))"#,
        |_| {},
    );
    assert_eq!(run.exit_code(), Some(128 + 15));
    assert_eq!((run.u32(1024), run.u32(1028)), (0, 1));
    assert_eq!(run.u32(1032), 0);
}

#[test]
fn proc_raise_interval_repeats_until_cancelled() {
    let run = run(
        OWN_MEMORY,
        r#"
        (data (i32.const 4096) "on_signal")
        (func (export "on_signal") (param $signal i32)
          (i32.store (i32.const 1080) (i32.add (i32.load (i32.const 1080)) (i32.const 1)))
          (i32.store (i32.const 1084) (local.get $signal)))
        (func (export "_start")
          (call $callback_signal (i32.const 4096) (i32.const 9))
          ;; A timer too far away to expire, replaced by one every 2 ms.
          (i32.store (i32.const 1040)
            (call $proc_raise_interval (i32.const 14) (i64.const -1) (i32.const 1)))
          (i32.store (i32.const 1024)
            (call $proc_raise_interval (i32.const 14) (i64.const 2000000) (i32.const 1)))
          (loop $until_three
            (drop (call $thread_sleep (i64.const 1000000)))
            (br_if $until_three (i32.lt_u (i32.load (i32.const 1080)) (i32.const 3))))
          (i32.store (i32.const 1028)
            (call $proc_raise_interval (i32.const 14) (i64.const 0) (i32.const 0)))
          (i32.store (i32.const 1032) (i32.load (i32.const 1080)))
          (drop (call $thread_sleep (i64.const 30000000)))
          (i32.store (i32.const 1036) (i32.load (i32.const 1080))))"#,
        |_| {},
    );
    run.result.as_ref().unwrap();
    assert_eq!((run.u32(1040), run.u32(1024), run.u32(1028)), (0, 0, 0));
    assert_eq!(run.u32(1084), 14, "SIGALRM");
    assert!(run.u32(1032) >= 3);
    // One signal may have been queued just before the timer was cancelled.
    assert!(run.u32(1036) - run.u32(1032) <= 1, "the timer stopped");
}

#[test]
fn duplicated_descriptors_share_their_offset() {
    let dir = std::env::temp_dir().join(format!("wazerox-wasix-dup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f.txt"), "abcdefgh").unwrap();
    let run = run(
        OWN_MEMORY,
        r#"
        (data (i32.const 4096) "f.txt")
        (func $read (param $fd i32) (param $buf i32) (param $out i32) (result i32)
          (i32.store (i32.const 3000) (local.get $buf))
          (i32.store (i32.const 3004) (i32.const 3))
          (call $fd_read (local.get $fd) (i32.const 3000) (i32.const 1) (local.get $out)))
        (func (export "_start")
          (i32.store (i32.const 1100) (call $path_open (i32.const 3) (i32.const 0)
            (i32.const 4096) (i32.const 5) (i32.const 0) (i64.const 38) (i64.const 0)
            (i32.const 0) (i32.const 1024)))
          (i32.store (i32.const 1104) (call $fd_dup (i32.load (i32.const 1024)) (i32.const 1028)))
          (drop (call $read (i32.load (i32.const 1024)) (i32.const 2100) (i32.const 1040)))
          (drop (call $read (i32.load (i32.const 1028)) (i32.const 2103) (i32.const 1044)))
          ;; Closing the original leaves the duplicate open.
          (i32.store (i32.const 1108) (call $fd_close (i32.load (i32.const 1024))))
          (drop (call $read (i32.load (i32.const 1028)) (i32.const 2106) (i32.const 1048)))
          (i32.store (i32.const 1112)
            (call $fd_dup2 (i32.load (i32.const 1028)) (i32.const 10) (i32.const 0) (i32.const 1032)))
          (i32.store (i32.const 1116)
            (call $fd_dup2 (i32.load (i32.const 1028)) (i32.const 10) (i32.const 1) (i32.const 1036)))
          (i32.store (i32.const 1120) (call $fd_dup (i32.const 99) (i32.const 1052))))"#,
        |b| {
            b.preopened_dir(&dir, "/data", false).unwrap();
        },
    );
    let _ = std::fs::remove_dir_all(&dir);
    run.result.as_ref().unwrap();
    for at in [1100, 1104, 1108, 1112, 1116] {
        assert_eq!(run.u32(at), 0, "call result at {at}");
    }
    assert_ne!(run.u32(1024), run.u32(1028));
    assert_eq!(&run.memory[2100..2108], b"abcdefgh");
    assert_eq!(
        (run.u32(1040), run.u32(1044), run.u32(1048)),
        (3, 3, 2),
        "bytes read through each descriptor"
    );
    assert_eq!(
        (run.u32(1032), run.u32(1036)),
        (10, 11),
        "lowest free at least 10"
    );
    assert_eq!(run.u32(1120), 8, "BADF");
}

#[test]
fn fd_pipe_carries_bytes_and_ends_when_the_writer_closes() {
    let run = run(
        OWN_MEMORY,
        r#"
        (data (i32.const 4096) "ping")
        (func (export "_start")
          (i32.store (i32.const 1100) (call $fd_pipe (i32.const 1024) (i32.const 1028)))
          (i32.store (i32.const 3000) (i32.const 4096))
          (i32.store (i32.const 3004) (i32.const 4))
          (i32.store (i32.const 1104)
            (call $fd_write (i32.load (i32.const 1028)) (i32.const 3000) (i32.const 1) (i32.const 1032)))
          (i32.store (i32.const 3008) (i32.const 2100))
          (i32.store (i32.const 3012) (i32.const 16))
          (i32.store (i32.const 1108)
            (call $fd_read (i32.load (i32.const 1024)) (i32.const 3008) (i32.const 1) (i32.const 1036)))
          (i32.store (i32.const 1112) (call $fd_close (i32.load (i32.const 1028))))
          (i32.store (i32.const 1040) (i32.const 99))
          (i32.store (i32.const 1116)
            (call $fd_read (i32.load (i32.const 1024)) (i32.const 3008) (i32.const 1) (i32.const 1040))))"#,
        |_| {},
    );
    run.result.as_ref().unwrap();
    for at in [1100, 1104, 1108, 1112, 1116] {
        assert_eq!(run.u32(at), 0, "call result at {at}");
    }
    assert_eq!((run.u32(1032), run.u32(1036)), (4, 4));
    assert_eq!(&run.memory[2100..2104], b"ping");
    assert_eq!(run.u32(1040), 0, "end of file");
}

fn c_string(memory: &[u8], at: usize) -> &str {
    let end = memory[at..].iter().position(|&b| b == 0).unwrap();
    std::str::from_utf8(&memory[at..at + end]).unwrap()
}

#[test]
fn chdir_and_getcwd_follow_the_preopens() {
    let dir = std::env::temp_dir().join(format!("wazerox-wasix-cwd-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("file"), "").unwrap();
    let run = run(
        OWN_MEMORY,
        r#"
        (data (i32.const 4096) "/sandbox/sub")
        (data (i32.const 4112) "..")
        (data (i32.const 4128) "nope")
        (data (i32.const 4144) "file")
        (func (export "_start")
          (i32.store (i32.const 1024) (i32.const 64))
          (i32.store (i32.const 1100) (call $getcwd (i32.const 2100) (i32.const 1024)))
          (i32.store (i32.const 1104) (call $chdir (i32.const 4096) (i32.const 12)))
          (i32.store (i32.const 1028) (i32.const 64))
          (i32.store (i32.const 1108) (call $getcwd (i32.const 2200) (i32.const 1028)))
          (i32.store (i32.const 1112) (call $chdir (i32.const 4112) (i32.const 2)))
          (i32.store (i32.const 1032) (i32.const 64))
          (i32.store (i32.const 1116) (call $getcwd (i32.const 2300) (i32.const 1032)))
          (i32.store (i32.const 1120) (call $chdir (i32.const 4128) (i32.const 4)))
          (i32.store (i32.const 1124) (call $chdir (i32.const 4144) (i32.const 4)))
          (i32.store (i32.const 1036) (i32.const 3))
          (i32.store (i32.const 1128) (call $getcwd (i32.const 2400) (i32.const 1036))))"#,
        |b| {
            b.preopened_dir(&dir, "/sandbox", false).unwrap();
        },
    );
    let _ = std::fs::remove_dir_all(&dir);
    run.result.as_ref().unwrap();
    for at in [1100, 1104, 1108, 1112, 1116] {
        assert_eq!(run.u32(at), 0, "call result at {at}");
    }
    assert_eq!(c_string(&run.memory, 2100), "/");
    assert_eq!(c_string(&run.memory, 2200), "/sandbox/sub");
    assert_eq!(run.u32(1028), 12, "length written back");
    assert_eq!(c_string(&run.memory, 2300), "/sandbox");
    assert_eq!(run.u32(1120), ENOENT, "no such directory");
    assert_eq!(run.u32(1124), ENOENT, "not a directory");
    assert_eq!(run.u32(1128), ERANGE, "buffer too small");
    assert_eq!(run.u32(1036), 8, "the length needed");
}

#[test]
fn proc_id_and_proc_parent() {
    let body = r#"
        (func (export "_start")
          (i32.store (i32.const 1100) (call $proc_id (i32.const 1024)))
          (i32.store (i32.const 1028) (i32.const 99))
          (i32.store (i32.const 1104) (call $proc_parent (i32.load (i32.const 1024)) (i32.const 1028)))
          (i32.store (i32.const 1108)
            (call $proc_parent (i32.add (i32.load (i32.const 1024)) (i32.const 1)) (i32.const 1032))))"#;
    let first = run(OWN_MEMORY, body, |_| {});
    let second = run(OWN_MEMORY, body, |_| {});
    first.result.as_ref().unwrap();
    assert_eq!((first.u32(1100), first.u32(1104)), (0, 0));
    assert!(first.u32(1024) > 0);
    assert_eq!(first.u32(1028), 0, "no parent");
    assert_eq!(first.u32(1108), ESRCH, "unknown process");
    assert_ne!(first.u32(1024), second.u32(1024), "each program its own id");
}

#[test]
fn waits_in_wasix_calls_end_with_the_program() {
    // Threads parked in futex_wait (no timeout), sleeping an hour and joining a
    // parked thread; main exits: the run ends promptly with main's code.
    let started = Instant::now();
    let run = run(
        SHARED_MEMORY,
        r#"
        (func (export "wasi_thread_start") (param $tid i32) (param $start i32)
          (drop (i32.atomic.rmw.add (i32.const 16) (i32.const 1)))
          (block $sleep (block $join (block $park
            (br_table $park $join $sleep (i32.load (local.get $start))))
            (drop (call $futex_wait (i32.const 0) (i32.const 0) (i32.const 2000) (i32.const 1064)))
            (return))
            (drop (call $thread_join (i32.load (i32.const 1024))))
            (return))
          (drop (call $thread_sleep (i64.const 3600000000000))))
        (func (export "_start")
          (i32.store (i32.const 520) (i32.const 1))
          (i32.store (i32.const 584) (i32.const 2))
          (drop (call $thread_spawn_v2 (i32.const 448) (i32.const 1024)))
          (drop (call $thread_spawn_v2 (i32.const 512) (i32.const 1028)))
          (drop (call $thread_spawn_v2 (i32.const 576) (i32.const 1032)))
          (loop $until_all_started
            (drop (call $thread_sleep (i64.const 1000000)))
            (br_if $until_all_started (i32.lt_u (i32.atomic.load (i32.const 16)) (i32.const 3))))
          (drop (call $thread_sleep (i64.const 20000000)))
          (call $proc_exit (i32.const 9)))"#,
        |_| {},
    );
    assert_eq!(run.exit_code(), Some(9));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(run.ctx.is_cancelled());
}

#[test]
fn a_missing_import_error_lists_every_missing_import() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "wasix_32v1" "fd_dup" (func (param i32 i32) (result i32)))
            (import "wasix_32v1" "no_such_call" (func))
            (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
            (import "env" "missing" (func))
            (import "env" "missing_memory" (memory 1)))"#,
    )
    .unwrap();
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
    wazerox_wasi::add_to_linker(&mut linker, |c| c).unwrap();
    wazerox_wasi::wasix::add_to_linker(&mut linker, |c| c).unwrap();
    let mut store = Store::new(&engine, WasiCtxBuilder::new().build());
    let errors = [
        linker.instantiate(&mut store, &module).unwrap_err(),
        linker.instantiate_pre(&module).unwrap_err(),
    ];
    for error in errors {
        assert_eq!(error.kind(), ErrorKind::Link);
        let message = error.to_string();
        for missing in [
            "`wasix_32v1::no_such_call`",
            "`env::missing`",
            "`env::missing_memory`",
        ] {
            assert!(message.contains(missing), "{missing} in: {message}");
        }
        assert!(
            !message.contains("fd_dup") && !message.contains("fd_write"),
            "{message}"
        );
    }
}

#[test]
fn the_c_program_checks_every_call() {
    // tests/wasix/wasix.c (built by tests/wasix/build.sh): futexes with and against
    // memory.atomic.wait32, four threads with join and thread_exit, signals to the
    // callback in two threads, dup/dup2/pipe through wasi-libc's read/write/lseek,
    // getcwd/chdir, process ids.
    let wasm = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/wasix/wasix.wasm")).unwrap();
    let dir = std::env::temp_dir().join(format!("wazerox-wasix-c-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, &wasm).unwrap();
    let stdout = MemoryPipe::new();
    let ctx = WasiCtxBuilder::new()
        .arg("wasix")
        .stdout_pipe(&stdout)
        .preopened_dir(&dir, "/sandbox", false)
        .unwrap()
        .build();
    let mut store = Store::new(&engine, ctx.clone());
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
    wazerox_wasi::add_to_linker(&mut linker, |c| c).unwrap();
    wazerox_wasi::wasix::add_to_linker(&mut linker, |c| c).unwrap();
    let group = wazerox_wasi::threads::enable_if_needed(&module, &mut linker, &ctx)
        .unwrap()
        .expect("threaded");
    let result = group.run_main(&mut store, |store| {
        let instance = linker.instantiate(&mut *store, &module)?;
        let start = instance.get_typed_func::<(), ()>(&mut *store, "_start")?;
        start.call(&mut *store, ())
    });
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8(stdout.contents()).unwrap();
    let code = match result {
        Ok(()) => 0,
        Err(e) => e
            .downcast_ref::<I32Exit>()
            .map(|e| e.0)
            .unwrap_or_else(|| panic!("{e}")),
    };
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.ends_with(" checks, 0 failed\n"), "{stdout}");
    assert!(stdout.starts_with("wasix: 64 checks"), "{stdout}");
}
