//! Every way guest code can fail becomes a typed trap, and the host survives it.

use wazerox::{AsContextMut, Engine, ErrorKind, Func, Instance, Module, Store, TrapCode, Val};

fn instantiate(wat: &str) -> (Store<()>, Instance) {
    let engine = Engine::default();
    let module = Module::new(&engine, wat).expect("module compiles");
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).expect("instantiates");
    (store, instance)
}

fn trap_code(result: Result<(), wazerox::Error>) -> TrapCode {
    let error = result.expect_err("expected a trap");
    assert_eq!(error.kind(), ErrorKind::Trap, "{error}");
    error.as_trap().expect("trap details").code()
}

fn call(
    store: &mut Store<()>,
    instance: &Instance,
    name: &str,
    args: &[Val],
) -> Result<(), wazerox::Error> {
    let func = instance.get_func(&mut *store, name).expect("export exists");
    let n = func.ty(&*store).results().len();
    let mut results = vec![Val::I32(0); n];
    func.call(store, args, &mut results)
}

#[test]
fn infinite_recursion_is_a_stack_overflow_and_the_store_stays_usable() {
    let (mut store, instance) = instantiate(
        r#"(module
            (func $forever (export "forever") (call $forever))
            (func $mutual_a (export "mutual") (param i64) (result i64)
              (call $mutual_b (i64.add (local.get 0) (i64.const 1))))
            (func $mutual_b (param i64) (result i64)
              (call $mutual_a (i64.mul (local.get 0) (i64.const 3))))
            (func (export "ok") (result i32) (i32.const 7)))"#,
    );
    for _ in 0..3 {
        assert_eq!(
            trap_code(call(&mut store, &instance, "forever", &[])),
            TrapCode::StackOverflow
        );
        assert_eq!(
            trap_code(call(&mut store, &instance, "mutual", &[Val::I64(1)])),
            TrapCode::StackOverflow
        );
    }
    let ok = instance
        .get_typed_func::<(), i32>(&mut store, "ok")
        .unwrap();
    assert_eq!(ok.call(&mut store, ()).unwrap(), 7);
}

#[test]
fn deep_but_bounded_recursion_succeeds() {
    let (mut store, instance) = instantiate(
        r#"(module
            (func $depth (export "depth") (param i32) (result i32)
              (if (result i32) (i32.eqz (local.get 0))
                (then (i32.const 0))
                (else (i32.add (i32.const 1) (call $depth (i32.sub (local.get 0) (i32.const 1))))))))"#,
    );
    let depth = instance
        .get_typed_func::<i32, i32>(&mut store, "depth")
        .unwrap();
    assert_eq!(depth.call(&mut store, 5000).unwrap(), 5000);
}

#[test]
fn out_of_bounds_at_every_offset_near_4gib_traps() {
    let (mut store, instance) = instantiate(
        r#"(module
            (memory 1)
            (func (export "load8") (param i32) (result i32) (i32.load8_u (local.get 0)))
            (func (export "load32") (param i32) (result i32) (i32.load (local.get 0)))
            (func (export "load64") (param i32) (result i64) (i64.load (local.get 0)))
            (func (export "store64") (param i32) (i64.store (local.get 0) (i64.const -1)))
            (func (export "load32_big_offset") (param i32) (result i32)
              (i32.load offset=0xfffffff0 (local.get 0)))
            (func (export "load64_max_offset") (param i32) (result i64)
              (i64.load offset=0xffffffff (local.get 0))))"#,
    );
    let names = [
        "load8",
        "load32",
        "load64",
        "store64",
        "load32_big_offset",
        "load64_max_offset",
    ];
    for name in names {
        for delta in 0u32..64 {
            let address = u32::MAX - delta;
            assert_eq!(
                trap_code(call(
                    &mut store,
                    &instance,
                    name,
                    &[Val::I32(address as i32)]
                )),
                TrapCode::MemoryOutOfBounds,
                "{name} at {address:#x}"
            );
        }
        // Just past the end of the one accessible page.
        assert_eq!(
            trap_code(call(&mut store, &instance, name, &[Val::I32(65536)])),
            TrapCode::MemoryOutOfBounds,
            "{name} at 64 KiB"
        );
    }
    // The last in-bounds bytes are still fine.
    let load32 = instance
        .get_typed_func::<i32, i32>(&mut store, "load32")
        .unwrap();
    assert_eq!(load32.call(&mut store, 65532).unwrap(), 0);
    let load8 = instance
        .get_typed_func::<i32, i32>(&mut store, "load8")
        .unwrap();
    assert_eq!(load8.call(&mut store, 65535).unwrap(), 0);
    assert_eq!(
        trap_code(call(&mut store, &instance, "load32", &[Val::I32(65533)])),
        TrapCode::MemoryOutOfBounds
    );
}

#[test]
fn out_of_bounds_with_explicit_bounds_checks() {
    let mut config = wazerox::Config::new();
    config.explicit_bounds_checks(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(
        &engine,
        r#"(module (memory 1)
            (func (export "load") (param i32) (result i32) (i32.load offset=4 (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let load = instance
        .get_typed_func::<i32, i32>(&mut store, "load")
        .unwrap();
    assert_eq!(load.call(&mut store, 65528).unwrap(), 0);
    for address in [65529u32, 65536, u32::MAX - 3, u32::MAX] {
        let error = load.call(&mut store, address as i32).unwrap_err();
        assert_eq!(error.as_trap().unwrap().code(), TrapCode::MemoryOutOfBounds);
    }
}

#[test]
fn integer_division_traps() {
    let (mut store, instance) = instantiate(
        r#"(module
            (func (export "div_s") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
            (func (export "div_u") (param i32 i32) (result i32) (i32.div_u (local.get 0) (local.get 1)))
            (func (export "rem_s") (param i32 i32) (result i32) (i32.rem_s (local.get 0) (local.get 1)))
            (func (export "rem_u") (param i32 i32) (result i32) (i32.rem_u (local.get 0) (local.get 1)))
            (func (export "div_s64") (param i64 i64) (result i64) (i64.div_s (local.get 0) (local.get 1)))
            (func (export "rem_s64") (param i64 i64) (result i64) (i64.rem_s (local.get 0) (local.get 1))))"#,
    );
    for name in ["div_s", "div_u", "rem_s", "rem_u"] {
        assert_eq!(
            trap_code(call(
                &mut store,
                &instance,
                name,
                &[Val::I32(7), Val::I32(0)]
            )),
            TrapCode::IntegerDivisionByZero
        );
    }
    for name in ["div_s64", "rem_s64"] {
        assert_eq!(
            trap_code(call(
                &mut store,
                &instance,
                name,
                &[Val::I64(7), Val::I64(0)]
            )),
            TrapCode::IntegerDivisionByZero
        );
    }
    assert_eq!(
        trap_code(call(
            &mut store,
            &instance,
            "div_s",
            &[Val::I32(i32::MIN), Val::I32(-1)]
        )),
        TrapCode::IntegerOverflow
    );
    assert_eq!(
        trap_code(call(
            &mut store,
            &instance,
            "div_s64",
            &[Val::I64(i64::MIN), Val::I64(-1)]
        )),
        TrapCode::IntegerOverflow
    );
    // INT_MIN % -1 is 0, not a trap.
    let rem_s = instance
        .get_typed_func::<(i32, i32), i32>(&mut store, "rem_s")
        .unwrap();
    assert_eq!(rem_s.call(&mut store, (i32::MIN, -1)).unwrap(), 0);
}

#[test]
fn bad_indirect_calls_trap() {
    let (mut store, instance) = instantiate(
        r#"(module
            (type $i2i (func (param i32) (result i32)))
            (type $v2v (func))
            (table 4 funcref)
            (elem (i32.const 0) $id $nothing)
            (func $id (param i32) (result i32) (local.get 0))
            (func $nothing)
            (func (export "call_i2i") (param i32) (result i32)
              (call_indirect (type $i2i) (i32.const 5) (local.get 0))))"#,
    );
    let call_i2i = instance
        .get_typed_func::<i32, i32>(&mut store, "call_i2i")
        .unwrap();
    assert_eq!(call_i2i.call(&mut store, 0).unwrap(), 5);
    let code = |r: Result<i32, wazerox::Error>| r.unwrap_err().as_trap().unwrap().code();
    assert_eq!(code(call_i2i.call(&mut store, 1)), TrapCode::BadSignature);
    assert_eq!(
        code(call_i2i.call(&mut store, 2)),
        TrapCode::IndirectCallToNull
    );
    assert_eq!(
        code(call_i2i.call(&mut store, 4)),
        TrapCode::TableOutOfBounds
    );
    assert_eq!(
        code(call_i2i.call(&mut store, -1)),
        TrapCode::TableOutOfBounds
    );
}

#[test]
fn unreachable_trap_has_a_backtrace_with_names() {
    let (mut store, instance) = instantiate(
        r#"(module
            (func $inner (unreachable))
            (func $middle (call $inner))
            (func (export "outer") (call $middle)))"#,
    );
    let error = call(&mut store, &instance, "outer", &[]).unwrap_err();
    let trap = error.as_trap().unwrap();
    assert_eq!(trap.code(), TrapCode::UnreachableCodeReached);
    let names: Vec<_> = trap
        .backtrace()
        .iter()
        .map(|f| f.func_name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["inner", "middle", ""], "{trap}");
}

#[test]
fn bad_conversions_trap() {
    let (mut store, instance) = instantiate(
        r#"(module
            (func (export "trunc") (param f64) (result i32) (i32.trunc_f64_s (local.get 0))))"#,
    );
    let trunc = instance
        .get_typed_func::<f64, i32>(&mut store, "trunc")
        .unwrap();
    assert_eq!(trunc.call(&mut store, -3.9).unwrap(), -3);
    let code = |r: Result<i32, wazerox::Error>| r.unwrap_err().as_trap().unwrap().code();
    assert_eq!(
        code(trunc.call(&mut store, f64::NAN)),
        TrapCode::BadConversionToInteger
    );
    assert_eq!(
        code(trunc.call(&mut store, 3e10)),
        TrapCode::IntegerOverflow
    );
}

#[test]
fn host_errors_propagate_and_panics_resume() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "fail" (func $fail (param i32)))
            (func (export "run") (param i32) (call $fail (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let fail = Func::wrap(&mut store, |x: i32| -> Result<(), wazerox::Error> {
        if x == 1 {
            panic!("host panicked");
        }
        Err(wazerox::Error::msg(format!("host failed with {x}")))
    });
    let instance = Instance::new(&mut store, &module, &[fail.into()]).unwrap();
    let run = instance
        .get_typed_func::<i32, ()>(&mut store, "run")
        .unwrap();
    let error = run.call(&mut store, 42).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Host);
    assert_eq!(error.to_string(), "host failed with 42");
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.call(&mut store, 1)));
    assert!(panic.is_err(), "the host panic resumes in the caller");
    // The store is still usable after both.
    assert!(run.call(&mut store, 3).is_err());
}

const RECURSION: &str = r#"(module
    (import "host" "elsewhere" (func $elsewhere))
    (func $depth (export "depth") (param i32) (result i32)
      (if (result i32) (i32.eqz (local.get 0))
        (then (i32.const 0))
        (else (i32.add (i32.const 1)
                (call $depth (i32.sub (local.get 0) (i32.const 1)))))))
    (func $forever (export "forever") (call $forever))
    (func (export "outer") (call $elsewhere)))"#;

/// Deep but bounded recursion returns; unbounded recursion traps with
/// `StackOverflow`, whatever thread runs it.
fn check_recursion(store: &mut Store<()>, instance: Instance) {
    let depth = instance
        .get_typed_func::<i32, i32>(&mut *store, "depth")
        .unwrap();
    assert_eq!(depth.call(&mut *store, 2000).unwrap(), 2000);
    let forever = instance
        .get_typed_func::<(), ()>(&mut *store, "forever")
        .unwrap();
    assert_eq!(
        trap_code(forever.call(&mut *store, ())),
        TrapCode::StackOverflow
    );
}

#[test]
fn a_store_driven_from_two_threads_in_turn_has_each_threads_stack_limit() {
    let engine = Engine::default();
    let module = Module::new(&engine, RECURSION).unwrap();
    let mut store = Store::new(&engine, ());
    let nothing = Func::wrap(&mut store, || {});
    let instance = Instance::new(&mut store, &module, &[nothing.into()]).unwrap();
    check_recursion(&mut store, instance);
    let mut store = std::thread::spawn(move || {
        check_recursion(&mut store, instance);
        store
    })
    .join()
    .unwrap();
    check_recursion(&mut store, instance);
}

#[test]
fn wasm_run_through_a_caller_sent_to_another_thread_uses_that_threads_stack_limit() {
    let engine = Engine::default();
    let module = Module::new(&engine, RECURSION).unwrap();
    let mut store = Store::new(&engine, ());
    let elsewhere = Func::wrap(&mut store, |mut caller: wazerox::Caller<'_, ()>| {
        let depth = caller.get_export("depth").unwrap().into_func().unwrap();
        let depth = depth.typed::<i32, i32>(&caller).unwrap();
        let forever = caller.get_export("forever").unwrap().into_func().unwrap();
        let forever = forever.typed::<(), ()>(&caller).unwrap();
        // The store context is `Send`: this host call's store goes to another
        // thread while the Wasm frames that called it wait here.
        let mut store = caller.as_context_mut();
        std::thread::scope(|s| {
            s.spawn(move || {
                assert_eq!(depth.call(&mut store, 2000).unwrap(), 2000);
                assert_eq!(
                    trap_code(forever.call(&mut store, ())),
                    TrapCode::StackOverflow
                );
            })
            .join()
            .unwrap();
        });
    });
    let instance = Instance::new(&mut store, &module, &[elsewhere.into()]).unwrap();
    let outer = instance
        .get_typed_func::<(), ()>(&mut store, "outer")
        .unwrap();
    outer.call(&mut store, ()).unwrap();
    // The first thread's limit is back for its own Wasm.
    check_recursion(&mut store, instance);
}

#[test]
fn host_functions_use_question_mark_on_any_error_and_traps_stay_traps() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "parse" (func $parse (param i32) (result i32)))
            (func (export "run") (param i32) (result i32) (call $parse (local.get 0)))
            (func (export "trap") unreachable))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let parse = Func::wrap(&mut store, |x: i32| -> Result<i32, wazerox::Error> {
        let text = if x == 0 { "not a number" } else { "41" };
        let n: i32 = text.parse()?; // a std error, through `?`
        Ok(n + x)
    });
    let instance = Instance::new(&mut store, &module, &[parse.into()]).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, 1).unwrap(), 42);
    let error = run.call(&mut store, 0).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Host);
    assert!(error.downcast_ref::<std::num::ParseIntError>().is_some());
    let trap = instance
        .get_typed_func::<(), ()>(&mut store, "trap")
        .unwrap();
    let error = trap.call(&mut store, ()).unwrap_err();
    let found = error
        .downcast_ref::<wazerox::Trap>()
        .expect("a trap is found");
    assert_eq!(found.code(), TrapCode::UnreachableCodeReached);
    assert_eq!(format!("{error:#}").matches("wasm trap").count(), 1);
    // Into a boxed std error for embedders' `?`, keeping its text.
    let text = error.to_string();
    let boxed: Box<dyn std::error::Error + Send + Sync> = error.into();
    assert_eq!(boxed.to_string(), text);
}

#[test]
fn host_functions_return_anyhow_results_and_traps_survive_the_round_trip() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "check" (func $check (param i32) (result i32)))
            (func (export "run") (param i32) (result i32) (call $check (local.get 0)))
            (func (export "trap") unreachable))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let check = Func::wrap(&mut store, |x: i32| -> anyhow::Result<i32> {
        anyhow::ensure!(x != 0, "zero is refused");
        let n: i32 = "41".parse()?;
        Ok(n + x)
    });
    let instance = Instance::new(&mut store, &module, &[check.into()]).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, 1).unwrap(), 42);
    let error = run.call(&mut store, 0).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Host);
    assert!(error.to_string().contains("zero is refused"), "{error}");

    // A wazerox trap travels through anyhow (`?` into anyhow::Error) and back
    // (`Error::from_anyhow`) as the same trap, printed once.
    let trap = instance
        .get_typed_func::<(), ()>(&mut store, "trap")
        .unwrap();
    let as_anyhow: anyhow::Error = trap.call(&mut store, ()).unwrap_err().into();
    let back = wazerox::Error::from_anyhow(as_anyhow);
    assert_eq!(back.kind(), ErrorKind::Trap);
    let found = back
        .downcast_ref::<wazerox::Trap>()
        .expect("a trap is found");
    assert_eq!(found.code(), TrapCode::UnreachableCodeReached);
    assert_eq!(format!("{back:#}").matches("wasm trap").count(), 1);
    // An anyhow error made from a bare Trap is a trap too.
    let bare = anyhow::Error::new(found.clone());
    assert_eq!(wazerox::Error::from_anyhow(bare).kind(), ErrorKind::Trap);
}
