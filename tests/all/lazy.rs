//! Lazy compilation (`CompilationStrategy::Lazy`, docs/lazy-compilation.md):
//! functions compiled on first call behave like eagerly compiled ones, compile
//! once however many threads call them first, and keep traps, backtraces and
//! serialization right.

use std::sync::{Arc, Barrier};
use wazerox::{
    CompilationStrategy, Config, Engine, Instance, Linker, Module, Store, Val, WasmBacktraceDetails,
};

fn lazy_engine() -> Engine {
    let mut config = Config::new();
    config.compilation_strategy(CompilationStrategy::Lazy);
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
    eight_threads_call_every_function(lazy_engine());
}

/// The same race with the background worker compiling callees at the same time.
#[test]
fn first_calls_from_eight_threads_race_the_background_worker() {
    let mut config = Config::new();
    config
        .compilation_strategy(CompilationStrategy::Lazy)
        .background_compilation(true);
    eight_threads_call_every_function(Engine::new(&config).unwrap());
}

fn eight_threads_call_every_function(engine: Engine) {
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

/// The background worker compiles what a compiled function calls directly before
/// it is called, and the program still sees each function's own behaviour.
#[test]
fn background_compilation_compiles_direct_callees_before_their_first_call() {
    let mut config = Config::new();
    config
        .compilation_strategy(CompilationStrategy::Lazy)
        .background_compilation(true);
    let engine = Engine::new(&config).unwrap();
    let wat = r#"(module
      (func $callee (result i32) i32.const 41)
      (func $never (result i32) i32.const 7)
      (func (export "main") (param i32) (result i32)
        local.get 0
        if (result i32) call $callee i32.const 1 i32.add else i32.const 0 end))"#;
    let module = Module::new(&engine, wat).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let main = instance
        .get_typed_func::<i32, i32>(&mut store, "main")
        .unwrap();
    assert_eq!(main.call(&mut store, 0).unwrap(), 0);
    // `main` was called; `$callee` was not, yet the worker compiles it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while module.lazily_compiled_functions() != Some(2) {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker did not compile `$callee`: {:?}",
            module.lazily_compiled_functions()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(main.call(&mut store, 1).unwrap(), 42);
    // Nothing calls `$never`: it is not compiled.
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(module.lazily_compiled_functions(), Some(2));
}

/// `tests/debug/divide.c` (see `backtraces.rs`): `_start` calls `divide(10, 0)`.
const DIVIDE: &[u8] = include_bytes!("../debug/divide.wasm");

fn divide_trap(lazy: bool) -> wazerox::Trap {
    let mut config = Config::new();
    config.wasm_backtrace_details(WasmBacktraceDetails::Enable);
    config.compilation_strategy(if lazy {
        CompilationStrategy::Lazy
    } else {
        CompilationStrategy::Eager
    });
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

/// A lazy engine that also accepts typed function references (`call_ref`).
fn lazy_engine_with_references() -> Engine {
    let mut config = Config::new();
    config
        .compilation_strategy(CompilationStrategy::Lazy)
        .wasm_function_references(true);
    Engine::new(&config).unwrap()
}

/// Eight functions `$f{k}` returning `x + 100 k`, in an exported typed table.
const CALLEES: &str = r#"(module
  (type $t (func (param i32) (result i32)))
  (func $f0 (type $t) local.get 0 i32.const 0 i32.add)
  (func $f1 (type $t) local.get 0 i32.const 100 i32.add)
  (func $f2 (type $t) local.get 0 i32.const 200 i32.add)
  (func $f3 (type $t) local.get 0 i32.const 300 i32.add)
  (func $f4 (type $t) local.get 0 i32.const 400 i32.add)
  (func $f5 (type $t) local.get 0 i32.const 500 i32.add)
  (func $f6 (type $t) local.get 0 i32.const 600 i32.add)
  (func $f7 (type $t) local.get 0 i32.const 700 i32.add)
  (table (export "table") 8 (ref null $t))
  (elem (table 0) (i32.const 0) (ref null $t)
    (ref.func $f0) (ref.func $f1) (ref.func $f2) (ref.func $f3)
    (ref.func $f4) (ref.func $f5) (ref.func $f6) (ref.func $f7))
  (func (export "direct") (param i32) (result i32) local.get 0 call $f0)
  (func (export "via_call_ref") (param i32) (result i32)
    local.get 0 ref.func $f1 call_ref $t)
  (func (export "ref") (result funcref) ref.func $f2)
  (export "f3" (func $f3))
)"#;

/// Calls the imported table's elements as eager code does: no knowledge of laziness.
const TABLE_USER: &str = r#"(module
  (type $t (func (param i32) (result i32)))
  (import "l" "table" (table 8 (ref null $t)))
  (func (export "indirect") (param i32 i32) (result i32)
    local.get 1 local.get 0 call_indirect (type $t))
  (func (export "get_and_call") (param i32 i32) (result i32)
    local.get 1 local.get 0 table.get 0 call_ref $t)
)"#;

#[test]
fn a_function_not_compiled_yet_is_reachable_through_every_call_path() {
    let engine = lazy_engine_with_references();
    let callees = Module::new(&engine, CALLEES).unwrap();
    // Eager code in the lazy engine: an artifact of the whole module, as a code
    // cache or `wazerox compile` produces it.
    let artifact = Module::new(&engine, TABLE_USER).unwrap().serialize();
    // SAFETY: written just now by this engine.
    let table_user = unsafe { Module::deserialize(&engine, &artifact) }.unwrap();
    assert_eq!(table_user.lazily_compiled_functions(), None);

    let mut store = Store::new(&engine, ());
    let lazy = Instance::new(&mut store, &callees, &[]).unwrap();
    let table = lazy.get_table(&mut store, "table").unwrap();
    let eager = Instance::new(&mut store, &table_user, &[table.into()]).unwrap();
    let compiled =
        |expected: usize| assert_eq!(callees.lazily_compiled_functions(), Some(expected));
    compiled(0);

    // Host `Func::call` of an export.
    let f3 = lazy.get_typed_func::<i32, i32>(&mut store, "f3").unwrap();
    assert_eq!(f3.call(&mut store, 1).unwrap(), 301);
    compiled(1);
    // A direct call (`direct` and `$f0`).
    let direct = lazy
        .get_typed_func::<i32, i32>(&mut store, "direct")
        .unwrap();
    assert_eq!(direct.call(&mut store, 2).unwrap(), 2);
    compiled(3);
    // `ref.func` + `call_ref` inside the lazy module (`via_call_ref` and `$f1`).
    let call_ref = lazy
        .get_typed_func::<i32, i32>(&mut store, "via_call_ref")
        .unwrap();
    assert_eq!(call_ref.call(&mut store, 3).unwrap(), 103);
    compiled(5);
    // A `ref.func` handed to the host, then called by it (`ref` and `$f2`).
    let reference = lazy.get_func(&mut store, "ref").unwrap();
    let mut result = [Val::I32(0)];
    reference.call(&mut store, &[], &mut result).unwrap();
    let Val::FuncRef(Some(f2)) = &result[0] else {
        panic!("ref.func gave {:?}", result[0]);
    };
    let mut sum = [Val::I32(0)];
    f2.call(&mut store, &[Val::I32(4)], &mut sum).unwrap();
    assert!(matches!(sum[0], Val::I32(204)), "{:?}", sum[0]);
    compiled(7);
    // Eager code of another instance: `call_indirect` through the imported table
    // (`$f4`), then `table.get` + `call_ref` (`$f6`).
    let indirect = eager
        .get_typed_func::<(i32, i32), i32>(&mut store, "indirect")
        .unwrap();
    assert_eq!(indirect.call(&mut store, (4, 5)).unwrap(), 405);
    compiled(8);
    let get_and_call = eager
        .get_typed_func::<(i32, i32), i32>(&mut store, "get_and_call")
        .unwrap();
    assert_eq!(get_and_call.call(&mut store, (6, 7)).unwrap(), 607);
    compiled(9);
    // Calls after compilation take the code directly and give the same results.
    assert_eq!(indirect.call(&mut store, (4, 8)).unwrap(), 408);
    assert_eq!(indirect.call(&mut store, (7, 8)).unwrap(), 708);
    assert_eq!(get_and_call.call(&mut store, (3, 1)).unwrap(), 301);
    assert_eq!(direct.call(&mut store, 9).unwrap(), 9);
    compiled(10);
}

/// `$callee` takes more arguments than the convention has registers (twelve
/// integers, ten floats, two vectors) and returns more results than fit in
/// registers (a return area); `run` calls it directly and through a table and
/// folds the results, so every argument register and the stack arguments must
/// survive the stub.
fn many_arguments() -> String {
    let params: String = (0..12)
        .map(|_| " i64")
        .chain((0..10).map(|_| " f64"))
        .chain((0..2).map(|_| " v128"))
        .collect();
    let mut body = String::new();
    for i in 0..12 {
        body.push_str(&format!(
            "local.get {i} i64.const {} i64.mul local.get {} i64.trunc_f64_s i64.add\n",
            i + 1,
            12 + i % 10
        ));
    }
    body.push_str("local.get 22 i64x2.extract_lane 1 local.get 23 i64x2.extract_lane 0 i64.sub\n");
    let results: String = (0..13).map(|_| " i64").collect();
    let mut args = String::new();
    for i in 0..12i64 {
        args.push_str(&format!("i64.const {}\n", i * 1_000_003 - 7));
    }
    for i in 0..10 {
        args.push_str(&format!("f64.const {}.5\n", i * 17 - 40));
    }
    args.push_str("v128.const i64x2 11 22 v128.const i64x2 333 444\n");
    let mut fold = String::new();
    for i in (0..13).rev() {
        fold.push_str(&format!("local.set {i}\n"));
    }
    fold.push_str("i64.const 0\n");
    for i in 0..13 {
        fold.push_str(&format!("i64.const 31 i64.mul local.get {i} i64.add\n"));
    }
    format!(
        r#"(module
  (type $big (func (param{params}) (result{results})))
  (table 1 funcref)
  (elem (i32.const 0) $callee)
  (func $callee (type $big)
    {body})
  (func (export "direct") (result i64) (local{results})
    {args} call $callee
    {fold})
  (func (export "indirect") (result i64) (local{results})
    {args} i32.const 0 call_indirect (type $big)
    {fold})
)"#
    )
}

#[test]
fn arguments_in_registers_and_on_the_stack_survive_the_stub() {
    let wat = many_arguments();
    let run = |engine: &Engine, export: &str| {
        let module = Module::new(engine, &wat).unwrap();
        let mut store = Store::new(engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let f = instance
            .get_typed_func::<(), i64>(&mut store, export)
            .unwrap();
        // First call (through the stub), second call (compiled code).
        (
            f.call(&mut store, ()).unwrap(),
            f.call(&mut store, ()).unwrap(),
        )
    };
    let eager = Engine::default();
    let (expected, again) = run(&eager, "direct");
    assert_eq!(expected, again);
    assert_eq!(run(&eager, "indirect"), (expected, expected));
    let lazy = lazy_engine();
    assert_eq!(run(&lazy, "direct"), (expected, expected));
    assert_eq!(run(&lazy, "indirect"), (expected, expected));
    let mut config = Config::new();
    config.compilation_strategy(CompilationStrategy::LazyFast);
    let fast = Engine::new(&config).unwrap();
    assert_eq!(run(&fast, "direct"), (expected, expected));
    assert_eq!(run(&fast, "indirect"), (expected, expected));
}

/// More functions than Linux's default `vm.max_map_count` (65,530) allows
/// mappings: lazily compiled code must not take a mapping per function.
const MANY: u32 = 70_000;

#[test]
fn seventy_thousand_lazily_compiled_functions_fit_in_a_few_mappings() {
    let mut wat = String::from("(module\n  (type $f (func (result i32)))\n");
    wat.push_str(&format!(
        "  (table {MANY} funcref)\n  (elem (i32.const 0) func"
    ));
    for i in 0..MANY {
        wat.push_str(&format!(" $f{i}"));
    }
    wat.push_str(")\n");
    for i in 0..MANY {
        wat.push_str(&format!(
            "  (func $f{i} (type $f) i32.const {i} i32.const 7 i32.mul i32.const 3 i32.add)\n"
        ));
    }
    wat.push_str(&format!(
        r#"  (func (export "sum") (result i32) (local $i i32) (local $sum i32)
    loop $next
      local.get $sum local.get $i call_indirect (type $f) i32.add local.set $sum
      local.get $i i32.const 1 i32.add local.tee $i
      i32.const {MANY} i32.lt_u br_if $next
    end
    local.get $sum)
)"#
    ));
    let mappings = || {
        std::fs::read_to_string("/proc/self/maps")
            .map(|maps| maps.lines().count())
            .unwrap_or(0)
    };
    let engine = lazy_engine();
    let module = Module::new(&engine, &wat).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let sum = instance
        .get_typed_func::<(), i32>(&mut store, "sum")
        .unwrap();
    let before = mappings();
    let expected = (0..MANY).fold(0i32, |s, i| s.wrapping_add(value_of(i)));
    assert_eq!(sum.call(&mut store, ()).unwrap(), expected);
    assert_eq!(module.lazily_compiled_functions(), Some(MANY as usize + 1));
    // Other tests map and unmap memory meanwhile; a mapping per function would
    // add 70,000 (and fail before the end at the default limit).
    let after = mappings();
    assert!(
        after < before + 5_000,
        "{before} mappings before, {after} after"
    );
}
