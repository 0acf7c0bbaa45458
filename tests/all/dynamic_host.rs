//! Dynamic host functions (`Func::new`, `Linker::func_new`) over every shape of
//! signature their calls take a separate path for: small all-number signatures
//! (one instantiation per arity), longer all-number ones (values on the stack),
//! and signatures with references (the store's buffer).

use wazerox::{
    Engine, ErrorKind, ExternRef, Func, FuncType, Instance, Linker, Module, Store, Val, ValType,
};

const NUMBERS: [ValType; 4] = [ValType::I32, ValType::I64, ValType::F32, ValType::F64];

fn wat_name(ty: ValType) -> &'static str {
    match ty {
        ValType::I32 => "i32",
        ValType::I64 => "i64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        _ => unreachable!("only numbers here"),
    }
}

/// The argument a test passes in position `i` of type `ty`.
fn argument(ty: ValType, i: usize) -> Val {
    let i = i as i32;
    match ty {
        ValType::I32 => Val::I32(-7 * (i + 1)),
        ValType::I64 => Val::I64(1 << (33 + i)),
        ValType::F32 => Val::F32((1.5f32 + i as f32).to_bits()),
        ValType::F64 => Val::F64((-2.25f64 * (i + 1) as f64).to_bits()),
        _ => unreachable!("only numbers here"),
    }
}

/// Any number as an i64, floats by value.
fn as_i64(value: &Val) -> i64 {
    match value {
        Val::I32(v) => i64::from(*v),
        Val::I64(v) => *v,
        Val::F32(bits) => f32::from_bits(*bits) as i64,
        Val::F64(bits) => f64::from_bits(*bits) as i64,
        other => panic!("not a number: {other:?}"),
    }
}

/// Result `j` of type `ty` for the parameters `params`: their sum, plus `j`.
fn result_for(params: &[Val], ty: ValType, j: usize) -> Val {
    let sum = params.iter().map(as_i64).fold(j as i64, i64::wrapping_add);
    match ty {
        ValType::I32 => Val::I32(sum as i32),
        ValType::I64 => Val::I64(sum),
        ValType::F32 => Val::F32((sum as f32).to_bits()),
        ValType::F64 => Val::F64((sum as f64).to_bits()),
        _ => unreachable!("only numbers here"),
    }
}

fn bits(value: &Val) -> (ValType, u128) {
    let raw = match value {
        Val::I32(v) => *v as u32 as u128,
        Val::I64(v) => *v as u64 as u128,
        Val::F32(v) => u128::from(*v),
        Val::F64(v) => u128::from(*v),
        other => panic!("not a number: {other:?}"),
    };
    (value.ty(), raw)
}

/// Wasm calls an imported dynamic host function of `params` → `results` with the
/// test's arguments and returns what it returned; checked against the same
/// computation in Rust.
fn check_number_signature(params: &[ValType], results: &[ValType]) {
    let engine = Engine::default();
    let list = |tys: &[ValType]| {
        tys.iter()
            .map(|t| wat_name(*t))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let gets: String = (0..params.len())
        .map(|i| format!("(local.get {i})"))
        .collect();
    let wat = format!(
        r#"(module
            (import "host" "f" (func $f (param {p}) (result {r})))
            (func (export "run") (param {p}) (result {r}) (call $f {gets})))"#,
        p = list(params),
        r = list(results),
    );
    let module = Module::new(&engine, &wat).unwrap();
    let mut store = Store::new(&engine, ());
    let expected_params = params.to_vec();
    let result_types = results.to_vec();
    let host = Func::new(
        &mut store,
        FuncType::new(params.iter().copied(), results.iter().copied()),
        move |_, params, results| {
            let seen: Vec<ValType> = params.iter().map(Val::ty).collect();
            assert_eq!(seen, expected_params, "parameter types");
            for (j, (slot, ty)) in results.iter_mut().zip(&result_types).enumerate() {
                assert_eq!(slot.ty(), *ty, "results start as zeros of their types");
                *slot = result_for(params, *ty, j);
            }
            Ok(())
        },
    );
    let instance = Instance::new(&mut store, &module, &[host.into()]).unwrap();
    let run = instance.get_func(&mut store, "run").unwrap();
    let args: Vec<Val> = params
        .iter()
        .enumerate()
        .map(|(i, t)| argument(*t, i))
        .collect();
    let mut out: Vec<Val> = results.iter().map(|_| Val::I32(0)).collect();
    // Twice: the second call reuses whatever the first one set up.
    for _ in 0..2 {
        run.call(&mut store, &args, &mut out).unwrap();
        let expected: Vec<_> = results
            .iter()
            .enumerate()
            .map(|(j, t)| bits(&result_for(&args, *t, j)))
            .collect();
        assert_eq!(
            out.iter().map(bits).collect::<Vec<_>>(),
            expected,
            "{params:?} -> {results:?}"
        );
    }
}

#[test]
fn every_small_number_signature_passes_its_values() {
    for params in 0..=5 {
        for results in 0..=2 {
            // Two rotations of the four number types, so each position sees
            // more than one type.
            for shift in 0..2 {
                let tys = |n: usize, offset: usize| -> Vec<ValType> {
                    (0..n).map(|i| NUMBERS[(i + offset + shift) % 4]).collect()
                };
                check_number_signature(&tys(params, 0), &tys(results, 1));
            }
        }
    }
}

#[test]
fn long_number_signatures_pass_their_values() {
    let params: Vec<ValType> = (0..12).map(|i| NUMBERS[i % 4]).collect();
    check_number_signature(
        &params,
        &[ValType::F64, ValType::I32, ValType::I64, ValType::F32],
    );
    let params: Vec<ValType> = (0..17).map(|i| NUMBERS[i % 4]).collect();
    check_number_signature(&params, &[ValType::I64]);
}

fn one_result_module(engine: &Engine) -> Module {
    Module::new(
        engine,
        r#"(module
            (import "host" "f" (func $f (param i32) (result i32)))
            (func (export "run") (param i32) (result i32) (call $f (local.get 0))))"#,
    )
    .unwrap()
}

#[test]
fn a_result_of_the_wrong_type_is_an_error() {
    let engine = Engine::default();
    let module = one_result_module(&engine);
    let mut store = Store::new(&engine, ());
    let host = Func::new(
        &mut store,
        FuncType::new([ValType::I32], [ValType::I32]),
        |mut caller, params, results| {
            results[0] = match params[0].i32().unwrap() {
                0 => Val::I32(5),
                1 => Val::I64(5),
                _ => Val::ExternRef(Some(ExternRef::new(&mut caller, "not a number"))),
            };
            Ok(())
        },
    );
    let instance = Instance::new(&mut store, &module, &[host.into()]).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, 0).unwrap(), 5);
    let error = run.call(&mut store, 1).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Host);
    assert_eq!(
        error.to_string(),
        "host function returned i64 where i32 was expected"
    );
    let error = run.call(&mut store, 2).unwrap_err();
    assert_eq!(
        error.to_string(),
        "host function returned externref where i32 was expected"
    );
    // The store still works after both.
    assert_eq!(run.call(&mut store, 0).unwrap(), 5);
}

#[test]
fn errors_and_panics_of_a_dynamic_host_function_reach_the_caller() {
    let engine = Engine::default();
    let module = one_result_module(&engine);
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::new(&engine);
    linker
        .func_new(
            "host",
            "f",
            FuncType::new([ValType::I32], [ValType::I32]),
            |_, params, results| {
                let x = params[0].i32().unwrap();
                results[0] = Val::I32(x + 1);
                match x {
                    1 => panic!("dynamic host panicked"),
                    2 => Err(wazerox::Error::msg(format!("dynamic host failed with {x}"))),
                    _ => Ok(()),
                }
            },
        )
        .unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, 41).unwrap(), 42);
    let error = run.call(&mut store, 2).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Host);
    assert_eq!(error.to_string(), "dynamic host failed with 2");
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.call(&mut store, 1)));
    assert!(panic.is_err(), "the host panic resumes in the caller");
    assert_eq!(run.call(&mut store, 9).unwrap(), 10);
}
