//! The second oracle of the differential fuzzer: runs one module in the `wasmtime`
//! crate with the harness's canonical call sequence and prints the report in the
//! format of `wazerox-fuzz repro`/`compare`, so a mismatch between wazerox and wasmi
//! can be diffed three ways before it is called ours (docs/fuzzing.md). Imports are
//! the harness's host functions (`report::host_call`).
//!
//! `cargo run --release --bin oracle -- MODULE.wasm ARGS-SEED`

use std::process::ExitCode;
use wasmtime::{
    Config, Engine, Extern, ExternType, Linker, Module, Store, Trap, V128, Val, ValType,
};
use wazerox_fuzz::report::{Call, Kind, Outcome, Report, Value, host_call, plan};

fn kind(ty: &ValType) -> Kind {
    match ty {
        ValType::I32 => Kind::I32,
        ValType::I64 => Kind::I64,
        ValType::F32 => Kind::F32,
        ValType::F64 => Kind::F64,
        ValType::V128 => Kind::V128,
        ValType::Ref(r) if r.heap_type().is_func() => Kind::FuncRef,
        ValType::Ref(_) => Kind::ExternRef,
    }
}

fn val(v: Value) -> Val {
    match v {
        Value::I32(x) => Val::I32(x as i32),
        Value::I64(x) => Val::I64(x as i64),
        Value::F32(x) => Val::F32(x),
        Value::F64(x) => Val::F64(x),
        Value::V128(x) => Val::V128(V128::from(x)),
        Value::FuncRef(_) => Val::null_func_ref(),
        Value::ExternRef(_) => Val::null_extern_ref(),
    }
}

fn value(v: &Val) -> Value {
    match v {
        Val::I32(x) => Value::I32(*x as u32),
        Val::I64(x) => Value::I64(*x as u64),
        Val::F32(b) => Value::f32(*b),
        Val::F64(b) => Value::f64(*b),
        Val::V128(x) => Value::V128(x.as_u128()),
        Val::FuncRef(f) => Value::FuncRef(f.is_some()),
        Val::ExternRef(e) => Value::ExternRef(e.is_some()),
        other => panic!("the generator makes no {other:?}"),
    }
}

fn trap_kind(trap: Trap) -> &'static str {
    match trap {
        Trap::StackOverflow => "stack",
        Trap::MemoryOutOfBounds => "memory",
        Trap::TableOutOfBounds => "table",
        Trap::IndirectCallToNull => "null-call",
        Trap::BadSignature => "signature",
        Trap::IntegerOverflow => "int-overflow",
        Trap::IntegerDivisionByZero => "div-zero",
        Trap::BadConversionToInteger => "conversion",
        Trap::UnreachableCodeReached => "unreachable",
        Trap::NullReference => "null-reference",
        Trap::OutOfFuel => "out-of-fuel",
        _ => "other",
    }
}

fn error_kind(e: &wasmtime::Error) -> &'static str {
    e.downcast_ref::<Trap>().map_or("host", |t| trap_kind(*t))
}

fn run(wasm: &[u8], args_seed: u64) -> Result<Report, String> {
    // The differential modules may use memory64 and one-byte pages.
    let mut config = Config::new();
    config.wasm_memory64(true).wasm_custom_page_sizes(true);
    let engine = Engine::new(&config).map_err(|e| e.to_string())?;
    let module = Module::new(&engine, wasm).map_err(|e| format!("wasmtime rejected: {e:#}"))?;
    // The store counts host calls, as in the harness.
    let mut store = Store::new(&engine, 0u64);
    let mut linker = Linker::new(&engine);
    for import in module.imports() {
        let ExternType::Func(ty) = import.ty() else {
            return Err(format!("unexpected import {}", import.name()));
        };
        let name = import.name().to_string();
        let result_kinds: Vec<Kind> = ty.results().map(|t| kind(&t)).collect();
        linker
            .func_new(
                "host",
                &name.clone(),
                ty,
                move |mut caller, params, results| {
                    let args: Vec<Value> = params.iter().map(value).collect();
                    let calls = *caller.data();
                    *caller.data_mut() += 1;
                    for (slot, v) in
                        results
                            .iter_mut()
                            .zip(host_call(&name, calls, &args, &result_kinds))
                    {
                        *slot = val(v);
                    }
                    Ok(())
                },
            )
            .map_err(|e| e.to_string())?;
    }
    let Ok(instance) = linker.instantiate(&mut store, &module) else {
        return Ok(Report::instantiation_failed());
    };
    let mut exports: Vec<(String, Extern)> = instance
        .exports(&mut store)
        .map(|e| (e.name().to_string(), e.into_extern()))
        .collect();
    exports.sort_by(|a, b| a.0.cmp(&b.0));
    let funcs = exports
        .iter()
        .filter_map(|(name, e)| match e {
            Extern::Func(f) => Some((
                name.clone(),
                f.ty(&store).params().map(|t| kind(&t)).collect(),
            )),
            _ => None,
        })
        .collect();
    let mut calls = Vec::new();
    for (name, args) in plan(funcs, args_seed) {
        let func = instance
            .get_func(&mut store, &name)
            .expect("planned from the exports");
        let results_len = func.ty(&store).results().len();
        let params: Vec<Val> = args.iter().map(|a| val(*a)).collect();
        let mut results = vec![Val::I32(0); results_len];
        let outcome = match func.call(&mut store, &params, &mut results) {
            Ok(()) => Outcome::Values(results.iter().map(value).collect()),
            Err(e) => Outcome::Trap(error_kind(&e)),
        };
        let stop = outcome == Outcome::Trap("stack");
        calls.push(Call {
            name,
            args,
            outcome,
        });
        if stop {
            break;
        }
    }
    let mut report = Report {
        calls: Some(calls),
        ..Report::default()
    };
    for (name, export) in &exports {
        match export {
            Extern::Memory(m) => report.add_memory(m.data(&store)),
            Extern::Global(g) => report
                .globals
                .push((name.clone(), value(&g.get(&mut store)))),
            _ => {}
        }
    }
    Ok(report)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(path), Some(args_seed)) = (args.first(), args.get(1).and_then(|s| s.parse().ok()))
    else {
        eprintln!("usage: oracle MODULE.wasm ARGS-SEED");
        return ExitCode::from(2);
    };
    let wasm = match std::fs::read(path) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&wasm, args_seed) {
        Ok(report) => print!("{report}"),
        Err(e) => println!("rejected: {e}"),
    }
    ExitCode::SUCCESS
}
