//! `wazerox-runtime-only ARTIFACT.cwasm MODULE.wasm`: loads a precompiled artifact
//! with a build of wazerox that has no compiler, links a host function, calls the
//! module's `run` export (which calls the host), and prints what happened; then
//! shows that compiling `MODULE.wasm` is refused with a clear error.

use std::process::ExitCode;
use wazerox::{Caller, Config, Engine, Linker, Module, Store};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, artifact, wasm] = &args[..] else {
        eprintln!("usage: wazerox-runtime-only ARTIFACT.cwasm MODULE.wasm");
        return ExitCode::from(2);
    };
    match run(artifact, wasm) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(artifact: &str, wasm: &str) -> Result<(), wazerox::Error> {
    // The configuration `wazerox compile` uses (it accepts the legacy exception
    // encoding real binaries carry): an artifact records it and must match.
    let mut config = Config::new();
    config.wasm_legacy_exceptions(true);
    let engine = Engine::new(&config)?;
    // SAFETY: the test that runs this binary wrote the artifact with `wazerox compile`.
    let module = unsafe { Module::deserialize_file(&engine, artifact)? };
    let mut linker = Linker::new(&engine);
    linker.func_wrap("host", "add_ten", |_: Caller<'_, ()>, x: i32| x + 10)?;
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module)?;
    let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
    println!("run(5) = {}", run.call(&mut store, 5)?);
    let trap = run.call(&mut store, -1).expect_err("run(-1) traps");
    println!("run(-1) trapped: {trap}");
    let bytes = std::fs::read(wasm).map_err(|e| wazerox::Error::msg(format!("{wasm}: {e}")))?;
    match Module::new(&engine, bytes) {
        Ok(_) => println!("Module::new compiled, which a runtime-only build cannot do"),
        Err(e) => println!("Module::new: {e}"),
    }
    Ok(())
}
