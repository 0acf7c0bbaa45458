//! A host function called from Wasm, and a Wasm function called from the host.
//!
//! `cargo run --release --example hello`

use wazerox::{Caller, Engine, Linker, Module, Store};

fn main() -> Result<(), wazerox::Error> {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
             (import "host" "greet" (func $greet (param i32)))
             (func (export "run") (param $times i32)
               (loop $again
                 (call $greet (local.get $times))
                 (local.set $times (i32.sub (local.get $times) (i32.const 1)))
                 (br_if $again (local.get $times)))))"#,
    )?;
    // The store's data is whatever the host wants its functions to see: here, a
    // count of greetings.
    let mut store = Store::new(&engine, 0u32);
    let mut linker = Linker::new(&engine);
    linker.func_wrap("host", "greet", |mut caller: Caller<'_, u32>, n: i32| {
        *caller.data_mut() += 1;
        println!("hello from the host ({n} to go)");
    })?;
    let instance = linker.instantiate(&mut store, &module)?;
    let run = instance.get_typed_func::<i32, ()>(&mut store, "run")?;
    run.call(&mut store, 3)?;
    println!("the guest greeted {} times", store.data());
    Ok(())
}
