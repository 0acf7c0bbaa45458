//! Compile once, load many times: `Module::serialize` writes an artifact of machine
//! code, and `Module::deserialize` loads it without compiling (an embedder built
//! without the `cranelift` feature can do only this; see `tests/runtime-only/`).
//!
//! `cargo run --release --example precompiled`

use std::time::Instant;
use wazerox::{Engine, Instance, Module, Store};

const PROGRAM: &str = r#"(module
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2))))))))"#;

fn main() -> Result<(), wazerox::Error> {
    let engine = Engine::default();
    let started = Instant::now();
    let artifact = Module::new(&engine, PROGRAM)?.serialize();
    println!(
        "compiled to a {} byte artifact in {:?}",
        artifact.len(),
        started.elapsed()
    );

    let started = Instant::now();
    // SAFETY: an artifact is machine code that runs as is; this one was written
    // just above by this process, so it is trusted.
    let module = unsafe { Module::deserialize(&engine, &artifact)? };
    println!("loaded without compiling in {:?}", started.elapsed());

    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[])?;
    let fib = instance.get_typed_func::<i32, i32>(&mut store, "fib")?;
    println!("fib(25) = {}", fib.call(&mut store, 25)?);
    Ok(())
}
