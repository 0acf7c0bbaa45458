//! A WASI program with a preopened directory, its output captured in memory.
//!
//! `cargo run --release --example wasi`

use std::sync::Arc;
use wazerox::{Engine, Linker, Module, Store};
use wazerox_wasi::{I32Exit, MemoryPipe, WasiCtx, WasiCtxBuilder};

/// Opens `note.txt` in the preopened directory (fd 3), writes to it, then prints
/// "done" to stdout.
const PROGRAM: &str = r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "note.txt")
  (data (i32.const 16) "written by a guest\n")
  (data (i32.const 48) "done\n")
  (func (export "_start")
    ;; path_open(dirfd 3, lookup flags 0, "note.txt", O_CREAT|O_TRUNC, rights
    ;; fd_write, inheriting 0, fdflags 0, &fd at 100)
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 8)
          (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 100))
      (then unreachable))
    ;; one iovec at 200: the note
    (i32.store (i32.const 200) (i32.const 16))
    (i32.store (i32.const 204) (i32.const 19))
    (drop (call $fd_write (i32.load (i32.const 100)) (i32.const 200) (i32.const 1) (i32.const 300)))
    ;; stdout: "done"
    (i32.store (i32.const 200) (i32.const 48))
    (i32.store (i32.const 204) (i32.const 5))
    (drop (call $fd_write (i32.const 1) (i32.const 200) (i32.const 1) (i32.const 300)))))"#;

fn main() -> Result<(), wazerox::Error> {
    let dir = std::env::temp_dir().join(format!("wazerox-example-wasi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| wazerox::Error::msg(e.to_string()))?;

    let engine = Engine::default();
    let module = Module::new(&engine, PROGRAM)?;
    let stdout = MemoryPipe::new();
    let ctx = WasiCtxBuilder::new()
        .arg("program")
        .stdout_pipe(&stdout)
        .preopened_dir(&dir, "/sandbox", false)
        .map_err(|e| wazerox::Error::msg(e.to_string()))?
        .build();
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
    wazerox_wasi::add_to_linker(&mut linker, |ctx| ctx)?;
    let mut store = Store::new(&engine, ctx);
    let instance = linker.instantiate(&mut store, &module)?;
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
    let code = match start.call(&mut store, ()) {
        Ok(()) => 0,
        // `proc_exit` arrives as an error carrying the exit code; anything else is a trap.
        Err(e) => e.downcast_ref::<I32Exit>().map(|e| e.0).ok_or(e)?,
    };
    let note = std::fs::read_to_string(dir.join("note.txt"))
        .map_err(|e| wazerox::Error::msg(e.to_string()))?;
    print!("stdout: {}", String::from_utf8_lossy(&stdout.contents()));
    print!("note.txt: {note}");
    println!("exit code {code}");
    std::fs::remove_dir_all(&dir).map_err(|e| wazerox::Error::msg(e.to_string()))?;
    Ok(())
}
