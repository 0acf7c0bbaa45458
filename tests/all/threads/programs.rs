//! The threaded C programs of `tests/threads` (rebuilt by `tests/threads/build.sh`)
//! through the API, each with its exact output and exit status.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wazerox::{Config, Engine, Linker, Module, Store, TrapCode};
use wazerox_wasi::{I32Exit, MemoryPipe, WasiCtx, WasiCtxBuilder};

fn program(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("threads")
        .join(format!("{name}.wasm"))
}

struct Run {
    /// The exit code (0 when `_start` returned), or the error that ended the run.
    exit: Result<i32, wazerox::Error>,
    stdout: String,
    elapsed: Duration,
}

fn run(name: &str, args: &[&str]) -> Run {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::from_file(&engine, program(name)).unwrap();
    let stdout = MemoryPipe::new();
    let ctx = WasiCtxBuilder::new()
        .arg(name)
        .args(args.iter().copied())
        .stdout_pipe(&stdout)
        .build();
    let mut store = Store::new(&engine, ctx.clone());
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
    wazerox_wasi::add_to_linker(&mut linker, |c| c).unwrap();
    let group = wazerox_wasi::threads::enable_if_needed(&module, &mut linker, &ctx)
        .unwrap()
        .expect("the program is threaded");
    let started = Instant::now();
    let result = group.run_main(&mut store, |store| {
        let instance = linker.instantiate(&mut *store, &module)?;
        let start = instance.get_typed_func::<(), ()>(&mut *store, "_start")?;
        start.call(&mut *store, ())
    });
    let elapsed = started.elapsed();
    let exit = match result {
        Ok(()) => Ok(0),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => Err(e),
        },
    };
    Run {
        exit,
        stdout: String::from_utf8(stdout.contents()).unwrap(),
        elapsed,
    }
}

fn assert_output(run: &Run, code: i32, stdout: &str) {
    let exit = run.exit.as_ref().map_err(|e| e.to_string());
    assert_eq!(exit, Ok(&code), "stdout:\n{}", run.stdout);
    assert_eq!(run.stdout, stdout);
}

#[test]
fn mutex_and_condition_variables_on_wait_notify() {
    let run = run("mutex_condvar", &[]);
    assert_output(
        &run,
        0,
        "mutex: 8 threads x 20000 = 160000\n\
         queue: produced 12000 consumed 12000 sum 24006000\n\
         broadcast: 4 of 4 passed\n\
         waits: timed out 2, not equal 1, woken by notify with nobody waiting 0\n\
         mutex_condvar: ok\n",
    );
}

#[test]
fn a_reusable_barrier() {
    let run = run("barrier", &[]);
    assert_output(
        &run,
        0,
        "barrier: 6 threads, 300 phases (600 barrier generations), 0 errors, \
         0 threads saw errors, last phase 300\n",
    );
}

#[test]
fn many_short_lived_threads_and_their_exit_codes() {
    let run = run("many_threads", &[]);
    assert_output(
        &run,
        0,
        "many_threads: 400 threads, at most 8 at once, exit codes sum 47163 \
         (expected 47163), thread ids unique, positive, below 2^29\n",
    );
}

#[test]
fn proc_exit_in_a_spawned_thread_ends_the_program_with_its_code() {
    let run = run("exit_code", &["exit"]);
    assert_output(&run, 42, "exit_code: mode exit\n");
    assert!(
        run.elapsed < Duration::from_secs(1),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn a_trap_in_a_spawned_thread_ends_the_program_with_the_trap() {
    let run = run("exit_code", &["trap"]);
    let error = run.exit.as_ref().unwrap_err();
    let trap = error.as_trap().expect("a trap");
    assert_eq!(trap.code(), TrapCode::UnreachableCodeReached);
    assert!(
        trap.backtrace()
            .iter()
            .any(|f| f.func_name.as_deref() == Some("end_program")),
        "{error}"
    );
    assert_eq!(run.stdout, "exit_code: mode trap\n");
    assert!(
        run.elapsed < Duration::from_secs(1),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn exit_or_return_in_the_main_thread_stops_parked_and_spinning_threads() {
    let run_exit = run("exit_code", &["main"]);
    assert_output(
        &run_exit,
        5,
        "exit_code: mode main\nexit_code: 5 threads parked or spinning\n",
    );
    let run_return = run("exit_code", &["return"]);
    assert_output(
        &run_return,
        0,
        "exit_code: mode return\nexit_code: 5 threads parked or spinning\n",
    );
    assert!(run_return.elapsed < Duration::from_secs(1));
}
