//! The embedding API: modules, instances, typed and dynamic calls, host functions
//! with `Caller`, memories, globals, tables and linking.

use wazerox::{
    Caller, Engine, Extern, Func, FuncType, Global, GlobalType, Instance, Linker, Memory,
    MemoryType, Module, Mutability, Ref, Store, Table, TableType, Val, ValType,
};

#[test]
fn fib_through_typed_and_dynamic_calls() {
    let engine = Engine::default();
    let module = Module::new(&engine, include_str!("../../examples/fib.wat")).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let fib = instance
        .get_typed_func::<i32, i32>(&mut store, "fib")
        .unwrap();
    assert_eq!(fib.call(&mut store, 20).unwrap(), 6765);
    let mut results = [Val::I32(0)];
    instance
        .get_func(&mut store, "fib")
        .unwrap()
        .call(&mut store, &[Val::I32(25)], &mut results)
        .unwrap();
    assert_eq!(results[0].i32(), Some(75025));
    assert!(
        instance
            .get_typed_func::<i64, i32>(&mut store, "fib")
            .is_err()
    );
}

#[test]
fn host_functions_see_store_data_and_caller_memory() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "env" "log" (func $log (param i32 i32)))
            (memory (export "memory") 1)
            (data (i32.const 16) "hello, host")
            (func (export "run") (call $log (i32.const 16) (i32.const 11))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, Vec::<String>::new());
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap(
            "env",
            "log",
            |mut caller: Caller<'_, Vec<String>>, ptr: i32, len: i32| {
                let memory = caller.get_export("memory").unwrap().into_memory().unwrap();
                let bytes = memory.data(&caller)[ptr as usize..(ptr + len) as usize].to_vec();
                caller.data_mut().push(String::from_utf8(bytes).unwrap());
            },
        )
        .unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<(), ()>(&mut store, "run")
        .unwrap();
    run.call(&mut store, ()).unwrap();
    run.call(&mut store, ()).unwrap();
    assert_eq!(store.data(), &["hello, host", "hello, host"]);
}

#[test]
fn multi_value_and_dynamic_host_functions() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "swap" (func $swap (param i64 f64) (result f64 i64)))
            (func (export "run") (param i64 f64) (result f64 i64)
              (call $swap (local.get 0) (local.get 1))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let swap = Func::new(
        &mut store,
        FuncType::new([ValType::I64, ValType::F64], [ValType::F64, ValType::I64]),
        |_caller, params, results| {
            results[0] = params[1].clone();
            results[1] = params[0].clone();
            Ok(())
        },
    );
    let instance = Instance::new(&mut store, &module, &[swap.into()]).unwrap();
    let run = instance
        .get_typed_func::<(i64, f64), (f64, i64)>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, (-5, 2.5)).unwrap(), (2.5, -5));
}

#[test]
fn memory_grow_and_access_from_host() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (memory (export "mem") 1 4)
            (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
            (func (export "size") (result i32) (memory.size))
            (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let grow = instance
        .get_typed_func::<i32, i32>(&mut store, "grow")
        .unwrap();
    let size = instance
        .get_typed_func::<(), i32>(&mut store, "size")
        .unwrap();
    let peek = instance
        .get_typed_func::<i32, i32>(&mut store, "peek")
        .unwrap();
    let mem = instance.get_memory(&mut store, "mem").unwrap();
    assert_eq!(grow.call(&mut store, 2).unwrap(), 1);
    assert_eq!(size.call(&mut store, ()).unwrap(), 3);
    assert_eq!(grow.call(&mut store, 2).unwrap(), -1, "beyond the maximum");
    assert_eq!(mem.size(&store), 3);
    mem.write(&mut store, 3 * 65536 - 1, &[42]).unwrap();
    assert_eq!(peek.call(&mut store, 3 * 65536 - 1).unwrap(), 42);
    assert!(mem.write(&mut store, 3 * 65536, &[1]).is_err());
    assert_eq!(mem.grow(&mut store, 1).unwrap(), 3);
    assert_eq!(mem.data(&store).len(), 4 * 65536);
}

#[test]
fn globals_tables_and_linking_between_instances() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let counter = Global::new(
        &mut store,
        GlobalType::new(ValType::I32, Mutability::Var),
        Val::I32(10),
    )
    .unwrap();
    let memory = Memory::new(&mut store, MemoryType::new(1, None)).unwrap();
    let table = Table::new(
        &mut store,
        TableType::new(ValType::FUNCREF, 2, None),
        Ref::Func(None),
    )
    .unwrap();
    let provider = Module::new(
        &engine,
        r#"(module
            (import "host" "counter" (global $c (mut i32)))
            (import "host" "memory" (memory 1))
            (import "host" "table" (table 2 funcref))
            (elem (i32.const 1) $bump)
            (func $bump (export "bump") (result i32)
              (global.set $c (i32.add (global.get $c) (i32.const 1)))
              (i32.store (i32.const 0) (global.get $c))
              (global.get $c)))"#,
    )
    .unwrap();
    let mut linker = Linker::new(&engine);
    linker
        .define(&mut store, "host", "counter", counter)
        .unwrap();
    linker.define(&mut store, "host", "memory", memory).unwrap();
    linker.define(&mut store, "host", "table", table).unwrap();
    let provider = linker.instantiate(&mut store, &provider).unwrap();
    linker.instance(&mut store, "provider", provider).unwrap();
    let consumer = Module::new(
        &engine,
        r#"(module
            (import "provider" "bump" (func $bump (result i32)))
            (import "host" "table" (table 2 funcref))
            (type $t (func (result i32)))
            (func (export "twice") (result i32)
              (drop (call $bump))
              (call_indirect (type $t) (i32.const 1))))"#,
    )
    .unwrap();
    let consumer = linker.instantiate(&mut store, &consumer).unwrap();
    let twice = consumer
        .get_typed_func::<(), i32>(&mut store, "twice")
        .unwrap();
    assert_eq!(twice.call(&mut store, ()).unwrap(), 12);
    assert_eq!(counter.get(&mut store).i32(), Some(12));
    let mut word = [0u8; 4];
    memory.read(&store, 0, &mut word).unwrap();
    assert_eq!(i32::from_le_bytes(word), 12);
    // The table entry the provider's segment wrote is a callable Func.
    let Some(Ref::Func(Some(bump))) = table.get(&mut store, 1) else {
        panic!("table holds the function")
    };
    let mut results = [Val::I32(0)];
    bump.call(&mut store, &[], &mut results).unwrap();
    assert_eq!(results[0].i32(), Some(13));
    assert!(matches!(
        linker.get(&mut store, "provider", "bump"),
        Some(Extern::Func(_))
    ));
}

#[test]
fn link_errors_name_the_import() {
    let engine = Engine::default();
    let module = Module::new(&engine, r#"(module (import "env" "missing" (func)))"#).unwrap();
    let mut store = Store::new(&engine, ());
    let error = Linker::new(&engine)
        .instantiate(&mut store, &module)
        .unwrap_err();
    assert_eq!(error.kind(), wazerox::ErrorKind::Link);
    assert!(error.to_string().contains("env::missing"), "{error}");
}

#[test]
fn malformed_and_invalid_modules_are_rejected_by_stage() {
    let engine = Engine::default();
    let malformed = Module::new(&engine, b"\0asm\x01\0\0\0\x01\x05")
        .err()
        .unwrap();
    assert_eq!(malformed.kind(), wazerox::ErrorKind::Decode);
    let invalid = Module::new(&engine, r#"(module (func (result i32) (i64.const 1)))"#)
        .err()
        .unwrap();
    assert_eq!(invalid.kind(), wazerox::ErrorKind::Validation);
    assert!(Module::validate(&engine, b"\0asm\x01\0\0\0").is_ok());
}

/// Regression (found by the differential fuzzer): functions returning more values
/// than there are return registers, across Wasm→Wasm, host→Wasm and Wasm→host calls.
#[test]
fn many_results_cross_every_call_boundary() {
    let results = "(result i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64)";
    let consts: String = (1..=16).map(|i| format!("(i64.const {i}) ")).collect();
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        format!(
            r#"(module
                (import "host" "many" (func $host_many {results}))
                (func $many {results} {consts})
                (func (export "direct") {results} (call $many))
                (func (export "via_host") {results} (call $host_many)))"#
        ),
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let ty = FuncType::new([], [ValType::I64; 16]);
    let host = Func::new(&mut store, ty, |_, _, results| {
        for (i, r) in results.iter_mut().enumerate() {
            *r = Val::I64(100 + i as i64);
        }
        Ok(())
    });
    let instance = Instance::new(&mut store, &module, &[host.into()]).unwrap();
    let mut out = vec![Val::I64(0); 16];
    instance
        .get_func(&mut store, "direct")
        .unwrap()
        .call(&mut store, &[], &mut out)
        .unwrap();
    assert_eq!(
        out.iter().map(|v| v.i64().unwrap()).collect::<Vec<_>>(),
        (1..=16).collect::<Vec<_>>()
    );
    instance
        .get_func(&mut store, "via_host")
        .unwrap()
        .call(&mut store, &[], &mut out)
        .unwrap();
    assert_eq!(
        out.iter().map(|v| v.i64().unwrap()).collect::<Vec<_>>(),
        (100..116).collect::<Vec<_>>()
    );
}

/// Every accessor of a handle used with a store it does not belong to panics
/// with the same message (docs/api.md), rather than erroring in some places,
/// panicking in others and answering for the wrong object in the rest.
#[test]
fn handles_used_with_another_store_panic_in_every_accessor() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
             (memory (export "m") 1)
             (table (export "t") 1 funcref)
             (global (export "g") (mut i32) (i32.const 1))
             (func (export "f") (result i32) (i32.const 7)))"#,
    )
    .unwrap();
    let mut mine = Store::new(&engine, ());
    let instance = Instance::new(&mut mine, &module, &[]).unwrap();
    let f = instance.get_func(&mut mine, "f").unwrap();
    let m = instance.get_memory(&mut mine, "m").unwrap();
    let t = instance.get_table(&mut mine, "t").unwrap();
    let g = instance.get_global(&mut mine, "g").unwrap();
    let typed = f.typed::<(), i32>(&mine).unwrap();
    // Another store with objects at the same indices, so a missing check would
    // silently answer for the wrong object instead of failing.
    let mut theirs = Store::new(&engine, ());
    Instance::new(&mut theirs, &module, &[]).unwrap();
    Instance::new(&mut theirs, &module, &[]).unwrap();
    type Access<'a> = Box<dyn FnOnce(&mut Store<()>) + 'a>;
    let accesses: Vec<(&str, Access)> = vec![
        (
            "Func::call",
            Box::new(|s| drop(f.call(s, &[], &mut [Val::I32(0)]))),
        ),
        ("Func::ty", Box::new(|s| drop(f.ty(&*s)))),
        ("Func::typed", Box::new(|s| drop(f.typed::<(), i32>(&*s)))),
        ("TypedFunc::call", Box::new(|s| drop(typed.call(s, ())))),
        ("Extern::ty", Box::new(|s| drop(Extern::Func(f).ty(&*s)))),
        (
            "Memory::size",
            Box::new(|s| {
                let _ = m.size(&*s);
            }),
        ),
        (
            "Memory::data",
            Box::new(|s| {
                let _ = m.data(&*s).len();
            }),
        ),
        (
            "Table::size",
            Box::new(|s| {
                let _ = t.size(&*s);
            }),
        ),
        (
            "Global::get",
            Box::new(|s| {
                let _ = g.get(s);
            }),
        ),
        (
            "Instance::get_export",
            Box::new(|s| drop(instance.get_export(s, "f"))),
        ),
        ("Instance::exports", Box::new(|s| drop(instance.exports(s)))),
    ];
    for (what, access) in accesses {
        let payload =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| access(&mut theirs)))
                .expect_err(what);
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(
            message.contains("used with a store it does not belong to"),
            "{what}: {message}"
        );
    }
    // Both stores are fine afterwards.
    assert_eq!(typed.call(&mut mine, ()).unwrap(), 7);
}
