//! A loop of calls for instruction counting, which load on the machine does not
//! disturb: `valgrind --tool=callgrind` on N calls minus the same run with 0 calls.
//!
//! ```sh
//! cd benches && cargo build --release --example call_loop
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/call_loop wazerox host-to-wasm 100000
//! ```
//! Runtimes: `wazerox`, `wazerox-no-checkpoints`, `wasmtime`; directions:
//! `host-to-wasm` (N `TypedFunc::call`s of an identity function), `wasm-to-host`
//! (one call of a Wasm loop making N calls of a `Func::wrap` closure) and
//! `wasm-to-host-dynamic` (the same loop calling a `Func::new` closure).

const WAT: &str = include_str!("../wat/host_call_loop.wat");

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: call_loop wazerox|wazerox-no-checkpoints|wasmtime host-to-wasm|wasm-to-host|wasm-to-host-dynamic N";
    let [_, runtime, direction, n] = &args[..] else {
        panic!("{usage}")
    };
    let n: i32 = n.parse().expect(usage);
    let host_to_wasm = match direction.as_str() {
        "host-to-wasm" => true,
        "wasm-to-host" | "wasm-to-host-dynamic" => false,
        _ => panic!("{usage}"),
    };
    let dynamic = direction == "wasm-to-host-dynamic";
    let total = match runtime.as_str() {
        "wazerox" | "wazerox-no-checkpoints" => {
            let mut config = wazerox::Config::new();
            config.checkpoints(runtime == "wazerox");
            let engine = wazerox::Engine::new(&config).unwrap();
            let module = wazerox::Module::new(&engine, WAT).unwrap();
            let mut store = wazerox::Store::new(&engine, ());
            let inc = if dynamic {
                let ty = wazerox::FuncType::new([wazerox::ValType::I32], [wazerox::ValType::I32]);
                wazerox::Func::new(&mut store, ty, |_, params, results| {
                    results[0] = wazerox::Val::I32(params[0].i32().unwrap().wrapping_add(1));
                    Ok(())
                })
            } else {
                wazerox::Func::wrap(&mut store, |x: i32| x.wrapping_add(1))
            };
            let instance = wazerox::Instance::new(&mut store, &module, &[inc.into()]).unwrap();
            let identity = instance
                .get_typed_func::<i32, i32>(&mut store, "identity")
                .unwrap();
            let run = instance
                .get_typed_func::<i32, i32>(&mut store, "loop")
                .unwrap();
            if host_to_wasm {
                (0..n)
                    .map(|i| identity.call(&mut store, i).unwrap())
                    .fold(0, i32::wrapping_add)
            } else {
                run.call(&mut store, n).unwrap()
            }
        }
        "wasmtime" => {
            let engine = wasmtime::Engine::default();
            let module = wasmtime::Module::new(&engine, WAT).unwrap();
            let mut store = wasmtime::Store::new(&engine, ());
            let inc = if dynamic {
                let ty = wasmtime::FuncType::new(
                    &engine,
                    [wasmtime::ValType::I32],
                    [wasmtime::ValType::I32],
                );
                wasmtime::Func::new(&mut store, ty, |_, params, results| {
                    results[0] = wasmtime::Val::I32(params[0].unwrap_i32().wrapping_add(1));
                    Ok(())
                })
            } else {
                wasmtime::Func::wrap(&mut store, |x: i32| x.wrapping_add(1))
            };
            let instance = wasmtime::Instance::new(&mut store, &module, &[inc.into()]).unwrap();
            let identity = instance
                .get_typed_func::<i32, i32>(&mut store, "identity")
                .unwrap();
            let run = instance
                .get_typed_func::<i32, i32>(&mut store, "loop")
                .unwrap();
            if host_to_wasm {
                (0..n)
                    .map(|i| identity.call(&mut store, i).unwrap())
                    .fold(0, i32::wrapping_add)
            } else {
                run.call(&mut store, n).unwrap()
            }
        }
        _ => panic!("{usage}"),
    };
    println!("{total}");
}
