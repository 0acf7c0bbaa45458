//! Stack checkpoint/restore: a host function snapshots the Wasm stack at its call
//! site; later, deeper in the same call, another host function restores it, and
//! the snapshotted call returns again with a new value — setjmp/longjmp across
//! Wasm frames, without asyncify.
//!
//! `cargo run --release --example checkpoint`

use wazerox::{Caller, Engine, Linker, Module, Snapshot, Store, Val};

/// `run` calls `setjmp`; the first return (0) recurses into `work`, which calls
/// `longjmp(depth)` ten frames down; `setjmp` then returns that value and `run`
/// returns it.
const PROGRAM: &str = r#"(module
  (import "host" "setjmp" (func $setjmp (result i32)))
  (import "host" "longjmp" (func $longjmp (param i32)))
  (func $work (param $depth i32)
    (if (i32.eq (local.get $depth) (i32.const 10))
      (then (call $longjmp (local.get $depth)) (unreachable)))
    (call $work (i32.add (local.get $depth) (i32.const 1))))
  (func (export "run") (result i32)
    (local $jumped i32)
    (local.set $jumped (call $setjmp))
    (if (i32.eqz (local.get $jumped)) (then (call $work (i32.const 0)) (unreachable)))
    (local.get $jumped)))"#;

fn main() -> Result<(), wazerox::Error> {
    let engine = Engine::default();
    let module = Module::new(&engine, PROGRAM)?;
    let mut store: Store<Option<Snapshot>> = Store::new(&engine, None);
    let mut linker = Linker::new(&engine);
    linker.func_wrap(
        "host",
        "setjmp",
        |mut caller: Caller<'_, Option<Snapshot>>| -> Result<i32, wazerox::Error> {
            let snapshot = caller.snapshot()?;
            println!("setjmp: snapshot of {} stack bytes", snapshot.stack_bytes());
            *caller.data_mut() = Some(snapshot);
            Ok(0)
        },
    )?;
    linker.func_wrap(
        "host",
        "longjmp",
        |caller: Caller<'_, Option<Snapshot>>, value: i32| -> Result<(), wazerox::Error> {
            let snapshot = caller.data().clone().expect("setjmp ran first");
            println!("longjmp({value})");
            // The restore travels as this host function's error; the activation
            // that owns the snapshot performs it.
            Err(snapshot.restore(&[Val::I32(value)]).into())
        },
    )?;
    let instance = linker.instantiate(&mut store, &module)?;
    let run = instance.get_typed_func::<(), i32>(&mut store, "run")?;
    println!(
        "setjmp returned {} the second time",
        run.call(&mut store, ())?
    );
    Ok(())
}
