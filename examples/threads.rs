//! A wasi-threads program: the main thread spawns workers that add into a shared
//! counter with atomics, then waits for them with `memory.atomic.wait32`. A
//! `ThreadGroup` owns the threads: when the program ends (main returns, any thread
//! calls `proc_exit` or traps) it stops and joins every one of them.
//!
//! `cargo run --release --example threads`

use std::sync::Arc;
use wazerox::{Config, Engine, Extern, Linker, Module, Store};
use wazerox_wasi::{WasiCtx, WasiCtxBuilder};

const WORKERS: i32 = 4;

/// Memory: [0] the counter, [4] workers finished.
const PROGRAM: &str = r#"(module
  (import "env" "memory" (memory 1 1 shared))
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (func (export "wasi_thread_start") (param $tid i32) (param $adds i32)
    (loop $add
      (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
      (local.set $adds (i32.sub (local.get $adds) (i32.const 1)))
      (br_if $add (local.get $adds)))
    (drop (i32.atomic.rmw.add (i32.const 4) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 4) (i32.const 1))))
  (func (export "_start") (param $workers i32)
    (local $i i32) (local $done i32)
    (loop $spawn_all
      (if (i32.lt_s (call $spawn (i32.const 100000)) (i32.const 0)) (then unreachable))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $spawn_all (i32.lt_u (local.get $i) (local.get $workers))))
    (loop $wait
      (local.set $done (i32.atomic.load (i32.const 4)))
      (if (i32.lt_u (local.get $done) (local.get $workers))
        (then
          (drop (memory.atomic.wait32 (i32.const 4) (local.get $done) (i64.const -1)))
          (br $wait))))))"#;

fn main() -> Result<(), wazerox::Error> {
    // Epoch checks let the group stop a thread that is still running when the
    // program ends.
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config)?;
    let module = Module::new(&engine, PROGRAM)?;
    let ctx = WasiCtxBuilder::new().build();
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
    wazerox_wasi::add_to_linker(&mut linker, |ctx| ctx)?;
    // Defines `wasi.thread-spawn` and the shared `env.memory`, and registers the
    // program's thread group with the context.
    let group = wazerox_wasi::threads::enable_if_needed(&module, &mut linker, &ctx)?
        .expect("the program imports wasi.thread-spawn");
    let mut store = Store::new(&engine, ctx);
    let Some(Extern::SharedMemory(memory)) = linker.get(&mut store, "env", "memory") else {
        panic!("enable_if_needed defines the shared memory");
    };
    group.run_main(&mut store, |store| {
        let instance = linker.instantiate(&mut *store, &module)?;
        let start = instance.get_typed_func::<i32, ()>(&mut *store, "_start")?;
        start.call(&mut *store, WORKERS)
    })?;
    let mut counter = [0u8; 4];
    memory.read(0, &mut counter)?;
    println!(
        "{WORKERS} threads added {} times in total",
        i32::from_le_bytes(counter)
    );
    Ok(())
}
