//! Lazy compilation (`Config::lazy_compilation`, docs/lazy-compilation.md):
//! functions compiled on first call behave like eagerly compiled ones, compile
//! once however many threads call them first, and keep traps, backtraces and
//! serialization right.

use std::sync::{Arc, Barrier};
use wazerox::{Config, Engine, Instance, Linker, Module, Store, WasmBacktraceDetails};

fn lazy_engine() -> Engine {
    let mut config = Config::new();
    config.lazy_compilation(true);
    Engine::new(&config).unwrap()
}

const FUNCTIONS: u32 = 10_000;

/// What function `i` of [`many_functions`] returns.
fn value_of(i: u32) -> i32 {
    (i as i32).wrapping_mul(7).wrapping_add(3)
}

/// A module of `FUNCTIONS` distinct functions, each computing `value_of(i)`;
/// `call(i)` reaches function `i` through `call_indirect`, `sum()` calls each
/// directly (through 100 helpers).
fn many_functions() -> String {
    let mut wat = String::from("(module\n");
    wat.push_str(&format!("  (table {FUNCTIONS} funcref)\n"));
    wat.push_str("  (type $f (func (result i32)))\n");
    for i in 0..FUNCTIONS {
        wat.push_str(&format!(
            "  (func $f{i} (type $f) i32.const {i} i32.const 7 i32.mul i32.const 3 i32.add)\n"
        ));
    }
    wat.push_str("  (elem (i32.const 0) func");
    for i in 0..FUNCTIONS {
        wat.push_str(&format!(" $f{i}"));
    }
    wat.push_str(")\n");
    wat.push_str(
        "  (func (export \"call\") (param i32) (result i32) local.get 0 call_indirect (type $f))\n",
    );
    // `sum` calls 100 functions that each call 100 of the functions directly (one
    // function with 10^4 call sites is slow to compile lazily: see
    // docs/lazy-compilation.md, "Costs").
    let groups = FUNCTIONS / 100;
    for g in 0..groups {
        wat.push_str(&format!("  (func $sum{g} (result i32) i32.const 0\n"));
        for i in g * 100..(g + 1) * 100 {
            wat.push_str(&format!("    call $f{i} i32.add\n"));
        }
        wat.push_str("  )\n");
    }
    wat.push_str("  (func (export \"sum\") (result i32) i32.const 0\n");
    for g in 0..groups {
        wat.push_str(&format!("    call $sum{g} i32.add\n"));
    }
    wat.push_str("  )\n)\n");
    wat
}

#[test]
fn a_lazy_module_compiles_nothing_before_its_first_call() {
    let engine = lazy_engine();
    let module = Module::new(&engine, many_functions()).unwrap();
    assert_eq!(module.lazily_compiled_functions(), Some(0));
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let call = instance
        .get_typed_func::<i32, i32>(&mut store, "call")
        .unwrap();
    assert_eq!(call.call(&mut store, 42).unwrap(), value_of(42));
    // `call` and function 42.
    assert_eq!(module.lazily_compiled_functions(), Some(2));
    let eager = Module::new(&Engine::default(), many_functions()).unwrap();
    assert_eq!(eager.lazily_compiled_functions(), None);
}

#[test]
fn first_calls_from_eight_threads_compile_each_function_once() {
    let engine = lazy_engine();
    let module = Module::new(&engine, many_functions()).unwrap();
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (engine, module, barrier) = (engine.clone(), module.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut store = Store::new(&engine, ());
                let instance = Instance::new(&mut store, &module, &[]).unwrap();
                let call = instance
                    .get_typed_func::<i32, i32>(&mut store, "call")
                    .unwrap();
                let sum = instance
                    .get_typed_func::<(), i32>(&mut store, "sum")
                    .unwrap();
                barrier.wait();
                // Every thread walks all functions, starting at a different
                // place, so first calls of the same function collide.
                let start = t as u32 * FUNCTIONS / threads as u32;
                let mut wrong = Vec::new();
                for k in 0..FUNCTIONS {
                    let i = (start + k) % FUNCTIONS;
                    let got = call.call(&mut store, i as i32).unwrap();
                    if got != value_of(i) {
                        wrong.push((i, got));
                    }
                }
                let expected = (0..FUNCTIONS).fold(0i32, |s, i| s.wrapping_add(value_of(i)));
                (wrong, sum.call(&mut store, ()).unwrap(), expected)
            })
        })
        .collect();
    for worker in workers {
        let (wrong, sum, expected) = worker.join().unwrap();
        assert!(
            wrong.is_empty(),
            "wrong results: {:?}",
            &wrong[..wrong.len().min(5)]
        );
        assert_eq!(sum, expected);
    }
    // The 10^4 functions, `call`, `sum` and its 100 helpers, each once.
    assert_eq!(
        module.lazily_compiled_functions(),
        Some(FUNCTIONS as usize + 2 + 100)
    );
}

/// `tests/debug/divide.c` (see `backtraces.rs`): `_start` calls `divide(10, 0)`.
const DIVIDE: &[u8] = include_bytes!("../debug/divide.wasm");

fn divide_trap(lazy: bool) -> wazerox::Trap {
    let mut config = Config::new();
    config.wasm_backtrace_details(WasmBacktraceDetails::Enable);
    config.lazy_compilation(lazy);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, DIVIDE).unwrap();
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap("wasi_snapshot_preview1", "proc_exit", |_: i32| {})
        .unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .unwrap();
    let error = start.call(&mut store, ()).unwrap_err();
    error.as_trap().expect("a trap").clone()
}

#[test]
fn traps_in_lazily_compiled_code_have_the_eager_backtrace() {
    let eager = divide_trap(false);
    let lazy = divide_trap(true);
    assert_eq!(lazy.code(), eager.code());
    assert_eq!(lazy.backtrace()[0].func_name.as_deref(), Some("divide"));
    assert_eq!(lazy.backtrace()[0].module_offset, Some(0x72));
    assert_eq!(lazy.backtrace(), eager.backtrace());
}

#[test]
fn a_lazy_module_serializes_every_function() {
    let engine = lazy_engine();
    let module = Module::new(&engine, many_functions()).unwrap();
    let artifact = module.serialize();
    assert_eq!(module.lazily_compiled_functions(), Some(0));
    // SAFETY: the artifact was just written by this engine.
    let loaded = unsafe { Module::deserialize(&engine, &artifact) }.unwrap();
    assert_eq!(loaded.lazily_compiled_functions(), None);
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &loaded, &[]).unwrap();
    let sum = instance
        .get_typed_func::<(), i32>(&mut store, "sum")
        .unwrap();
    let expected = (0..FUNCTIONS).fold(0i32, |s, i| s.wrapping_add(value_of(i)));
    assert_eq!(sum.call(&mut store, ()).unwrap(), expected);
}

#[test]
fn a_lazy_export_imported_by_another_instance_is_callable() {
    let engine = lazy_engine();
    let exporter = Module::new(
        &engine,
        r#"(module (func (export "double") (param i32) (result i32)
             local.get 0 local.get 0 i32.add))"#,
    )
    .unwrap();
    let importer = Module::new(
        &engine,
        r#"(module (import "m" "double" (func $d (param i32) (result i32)))
             (func (export "quadruple") (param i32) (result i32)
               local.get 0 call $d call $d))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let first = Instance::new(&mut store, &exporter, &[]).unwrap();
    let double = first.get_func(&mut store, "double").unwrap();
    let second = Instance::new(&mut store, &importer, &[double.into()]).unwrap();
    let quadruple = second
        .get_typed_func::<i32, i32>(&mut store, "quadruple")
        .unwrap();
    assert_eq!(quadruple.call(&mut store, 5).unwrap(), 20);
}
