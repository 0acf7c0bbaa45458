//! Typed function references: types are identified across modules by the
//! engine's canonical ids (iso-recursive, so recursion groups count), imports
//! are checked by subtyping, and the API refuses values that do not have the
//! declared reference type.

use wazerox::{
    Config, Engine, ErrorKind, Func, FuncType, Global, GlobalType, HeapType, Instance, Linker,
    Module, Mutability, RefType, Store, TrapCode, Val, ValType,
};

fn engine() -> Engine {
    let mut config = Config::new();
    config.wasm_function_references(true);
    Engine::new(&config).unwrap()
}

/// Exports `f : (func (param (ref $a)) (result i32))` with `$a = (func (param i32))`,
/// a table holding `f`, and an immutable global `(ref $t)` holding it.
const EXPORTER: &str = r#"
(module
  (type $a (func (param i32)))
  (type $t (func (param (ref $a)) (result i32)))
  (func $f (export "f") (type $t) (i32.const 7))
  (table (export "table") 1 funcref)
  (elem (i32.const 0) $f)
  (global (export "g") (ref $t) (ref.func $f))
  (global (export "g-mut") (mut (ref null $t)) (ref.null $t)))
"#;

fn link(store: &mut Store<()>, importer: &str) -> Result<Instance, wazerox::Error> {
    let engine = store.engine().clone();
    let mut linker = Linker::new(&engine);
    let exporter = Linker::new(&engine)
        .instantiate(&mut *store, &Module::new(&engine, EXPORTER).unwrap())
        .unwrap();
    linker.instance(&mut *store, "m", exporter).unwrap();
    linker.instantiate(&mut *store, &Module::new(&engine, importer)?)
}

#[test]
fn function_imports_compare_canonical_types_not_indices() {
    let mut store = Store::new(&engine(), ());
    // The same types, declared at other indices: the same canonical type.
    let same = r#"(module
      (type (func))
      (type $a2 (func (param i32)))
      (type $t2 (func (param (ref $a2)) (result i32)))
      (import "m" "f" (func (type $t2))))"#;
    link(&mut store, same).expect("structurally equal types link");
    // A parameter referring to another function type: another type, although
    // both parameters are function references.
    let other = r#"(module
      (type $a3 (func (param i64)))
      (type $t3 (func (param (ref $a3)) (result i32)))
      (import "m" "f" (func (type $t3))))"#;
    let error = link(&mut store, other).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Link, "{error}");
    let funcref = r#"(module (import "m" "f" (func (param funcref) (result i32))))"#;
    assert_eq!(
        link(&mut store, funcref).unwrap_err().kind(),
        ErrorKind::Link
    );
}

#[test]
fn global_imports_are_checked_by_subtyping() {
    let mut store = Store::new(&engine(), ());
    let head = r#"(type $a (func (param i32))) (type $t (func (param (ref $a)) (result i32)))"#;
    let accepted = [
        r#"(global (import "m" "g") (ref $t))"#,
        r#"(global (import "m" "g") (ref null $t))"#,
        r#"(global (import "m" "g") (ref func))"#,
        r#"(global (import "m" "g") funcref)"#,
        r#"(global (import "m" "g-mut") (mut (ref null $t)))"#,
    ];
    for import in accepted {
        let wat = format!("(module {head} {import})");
        link(&mut store, &wat).unwrap_or_else(|e| panic!("{import}: {e}"));
    }
    let refused = [
        // Another function type.
        r#"(global (import "m" "g") (ref $a))"#,
        // Mutable globals are invariant.
        r#"(global (import "m" "g-mut") (mut funcref))"#,
        r#"(global (import "m" "g-mut") (mut (ref $t)))"#,
        // A nullable global is no non-nullable one.
        r#"(global (import "m" "g-mut") (ref $t))"#,
        r#"(global (import "m" "g") externref)"#,
    ];
    for import in refused {
        let wat = format!("(module {head} {import})");
        let error = link(&mut store, &wat).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Link, "{import}: {error}");
    }
}

#[test]
fn call_indirect_across_modules_compares_canonical_type_ids() {
    let mut store = Store::new(&engine(), ());
    let caller = r#"(module
      (type (func))
      (type $a2 (func (param i32)))
      (type $t2 (func (param (ref $a2)) (result i32)))
      (type $wrong (func (param funcref) (result i32)))
      (import "m" "table" (table 1 funcref))
      (func $dummy (param i32))
      (elem declare func $dummy)
      (func (export "same") (result i32)
        (call_indirect (type $t2) (ref.func $dummy) (i32.const 0)))
      (func (export "wrong") (result i32)
        (call_indirect (type $wrong) (ref.null func) (i32.const 0))))"#;
    let instance = link(&mut store, caller).unwrap();
    let same = instance
        .get_typed_func::<(), i32>(&mut store, "same")
        .unwrap();
    assert_eq!(same.call(&mut store, ()).unwrap(), 7);
    let wrong = instance
        .get_typed_func::<(), i32>(&mut store, "wrong")
        .unwrap();
    let error = wrong.call(&mut store, ()).unwrap_err();
    assert_eq!(
        error.as_trap().map(|t| t.code()),
        Some(TrapCode::BadSignature)
    );
}

#[test]
fn recursion_groups_make_distinct_types_across_modules() {
    // `$g` is the second member of a group: the same group in another module is
    // the same type, its first member and a lone `(func)` are other types.
    let mut config = Config::new();
    config.wasm_gc(true);
    let engine = Engine::new(&config).unwrap();
    let mut store = Store::new(&engine, ());
    let exporter = Module::new(
        &engine,
        r#"(module
          (rec (type $f (func)) (type $g (func)))
          (func $h (type $g))
          (table (export "table") 1 funcref)
          (elem (i32.const 0) $h))"#,
    )
    .unwrap();
    let exporter = Instance::new(&mut store, &exporter, &[]).unwrap();
    let table = exporter.get_table(&mut store, "table").unwrap();
    let caller = Module::new(
        &engine,
        r#"(module
          (rec (type $f2 (func)) (type $g2 (func)))
          (type $lone (func))
          (import "m" "table" (table 1 funcref))
          (func (export "group") (call_indirect (type $g2) (i32.const 0)))
          (func (export "first") (call_indirect (type $f2) (i32.const 0)))
          (func (export "lone") (call_indirect (type $lone) (i32.const 0))))"#,
    )
    .unwrap();
    let caller = Instance::new(&mut store, &caller, &[table.into()]).unwrap();
    let call = |store: &mut Store<()>, name: &str| {
        caller
            .get_typed_func::<(), ()>(&mut *store, name)
            .unwrap()
            .call(&mut *store, ())
    };
    call(&mut store, "group").expect("the same member of the same group");
    for name in ["first", "lone"] {
        let error = call(&mut store, name).unwrap_err();
        assert_eq!(
            error.as_trap().map(|t| t.code()),
            Some(TrapCode::BadSignature),
            "{name}: {error}"
        );
    }
}

#[test]
fn the_api_refuses_values_outside_a_reference_type() {
    let mut store = Store::new(&engine(), ());
    let module = Module::new(
        store.engine(),
        r#"(module
          (type $t (func (result i32)))
          (func $seven (type $t) (i32.const 7))
          (func $other (param i32))
          (elem declare func $seven $other)
          (func (export "seven") (result (ref $t)) (ref.func $seven))
          (func (export "other") (result (ref func)) (ref.func $other))
          (func (export "call") (param (ref $t)) (result i32)
            (call_ref $t (local.get 0))))"#,
    )
    .unwrap();
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let get = |store: &mut Store<()>, name: &str| {
        let f = instance.get_func(&mut *store, name).unwrap();
        let mut results = [Val::FuncRef(None)];
        f.call(&mut *store, &[], &mut results).unwrap();
        match &results[0] {
            Val::FuncRef(Some(f)) => *f,
            other => panic!("{name} returned {other:?}"),
        }
    };
    let seven = get(&mut store, "seven");
    let other = get(&mut store, "other");
    let ref_t = seven.ref_ty(&store);
    let call = instance.get_func(&mut store, "call").unwrap();
    let mut results = [Val::I32(0)];
    call.call(&mut store, &[Val::FuncRef(Some(seven))], &mut results)
        .unwrap();
    assert_eq!(results[0].i32(), Some(7));
    for bad in [Val::FuncRef(None), Val::FuncRef(Some(other))] {
        let error = call.call(&mut store, &[bad], &mut results).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Usage, "{error}");
    }

    let non_null = GlobalType::new(ValType::Ref(ref_t), Mutability::Var);
    let error = Global::new(&mut store, non_null, Val::FuncRef(None)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Usage, "{error}");
    let global = Global::new(&mut store, non_null, Val::FuncRef(Some(seven))).unwrap();
    let error = global
        .set(&mut store, Val::FuncRef(Some(other)))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Usage, "{error}");
    let nullable = RefType::new(true, ref_t.heap);
    let any_func = GlobalType::new(
        ValType::Ref(RefType::new(false, HeapType::Func)),
        Mutability::Const,
    );
    Global::new(&mut store, any_func, Val::FuncRef(Some(other))).unwrap();
    Global::new(
        &mut store,
        GlobalType::new(ValType::Ref(nullable), Mutability::Const),
        Val::FuncRef(None),
    )
    .unwrap();
}

#[test]
fn a_host_function_cannot_return_null_for_a_non_nullable_result() {
    let mut store = Store::new(&engine(), ());
    let non_null_func = ValType::Ref(RefType::new(false, HeapType::Func));
    let host = Func::new(
        &mut store,
        FuncType::new([], [non_null_func]),
        |_, _, results| {
            results[0] = Val::FuncRef(None);
            Ok(())
        },
    );
    let module = Module::new(
        store.engine(),
        r#"(module
          (import "" "host" (func $host (result (ref func))))
          (func (export "run") (result i32)
            (ref.is_null (call $host))))"#,
    )
    .unwrap();
    let instance = Instance::new(&mut store, &module, &[host.into()]).unwrap();
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    let error = run.call(&mut store, ()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Host, "{error}");
}

/// GC heap types and array operators compile (docs/gc.md; their behaviour is
/// tests/all/gc.rs's).
#[test]
fn gc_heap_types_and_array_operators_compile() {
    let mut config = Config::new();
    config.wasm_gc(true);
    let engine = Engine::new(&config).unwrap();
    for wat in [
        r#"(module (global anyref (ref.null any)))"#,
        r#"(module (func (param eqref)))"#,
        r#"(module (table 1 i31ref))"#,
        r#"(module (func (local structref)))"#,
        r#"(module (type $a (array i8))
             (func (result (ref $a)) (array.new_default $a (i32.const 1))))"#,
    ] {
        Module::new(&engine, wat).unwrap_or_else(|e| panic!("{wat}: {e}"));
    }
}

#[test]
fn call_indirect_accepts_declared_subtypes() {
    let mut config = Config::new();
    config.wasm_gc(true);
    let engine = Engine::new(&config).unwrap();
    let mut store = Store::new(&engine, ());
    let exporter = Module::new(
        &engine,
        r#"(module
          (type $super (sub (func (result i32))))
          (type $sub (sub $super (func (result i32))))
          ;; Not related to $sub: another signature, and a final look-alike of
          ;; $super (finality is part of a type's identity).
          (type $other (sub (func (param i32) (result i32))))
          (type $final (func (result i32)))
          (func $f (export "f") (type $sub) (i32.const 5))
          (table (export "table") 1 funcref)
          (elem (i32.const 0) $f)
          (func (export "as_super") (result i32) (call_indirect (type $super) (i32.const 0)))
          (func (export "as_sub") (result i32) (call_indirect (type $sub) (i32.const 0)))
          (func (export "as_other") (result i32)
            (call_indirect (type $other) (i32.const 1) (i32.const 0)))
          (func (export "as_final") (result i32) (call_indirect (type $final) (i32.const 0))))"#,
    )
    .unwrap();
    let exporter = Instance::new(&mut store, &exporter, &[]).unwrap();
    let call = |store: &mut Store<()>, instance: Instance, name: &str| {
        instance
            .get_typed_func::<(), i32>(&mut *store, name)
            .unwrap()
            .call(&mut *store, ())
    };
    assert_eq!(call(&mut store, exporter, "as_super").unwrap(), 5);
    assert_eq!(call(&mut store, exporter, "as_sub").unwrap(), 5);
    for name in ["as_other", "as_final"] {
        let error = call(&mut store, exporter, name).unwrap_err();
        assert_eq!(
            error.as_trap().map(|t| t.code()),
            Some(TrapCode::BadSignature),
            "{name}: {error}"
        );
    }

    // Another module declaring the same hierarchy: the same types, so the
    // function imports as its supertype and is called through it.
    let importer = Module::new(
        &engine,
        r#"(module
          (type $super (sub (func (result i32))))
          (type $sub (sub $super (func (result i32))))
          (import "m" "f" (func $f (type $super)))
          (import "m" "table" (table 1 funcref))
          (func (export "direct") (result i32) (call $f))
          (func (export "indirect") (result i32) (call_indirect (type $super) (i32.const 0))))"#,
    )
    .unwrap();
    let f = exporter.get_func(&mut store, "f").unwrap();
    let table = exporter.get_table(&mut store, "table").unwrap();
    let importer = Instance::new(&mut store, &importer, &[f.into(), table.into()]).unwrap();
    assert_eq!(call(&mut store, importer, "direct").unwrap(), 5);
    assert_eq!(call(&mut store, importer, "indirect").unwrap(), 5);
}
