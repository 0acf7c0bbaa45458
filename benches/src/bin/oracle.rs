//! The second oracle of the differential fuzzer: runs one module in the `wasmtime`
//! crate with the harness's canonical call sequence and prints the report in the
//! format of `wazerox-fuzz repro`/`compare`, so a mismatch between wazerox and wasmi
//! can be diffed three ways before it is called ours (docs/fuzzing.md). Imports are
//! the harness's host functions (`report::host_call`).
//!
//! It is also the oracle of the exceptions campaign (wasmi has no exceptions): for
//! each seed, the module of `wazerox_fuzz::exceptions::generate` runs in wazerox
//! (`differential::run_wazerox`) and here, and the reports are compared by
//! `differential::compare_reports`, as the wasmi campaign compares its own.
//!
//! ```text
//! cargo run --release --bin oracle -- MODULE.wasm ARGS-SEED
//! cargo run --release --bin oracle -- run exceptions [--from SEED] [--count N] [--seconds S]
//! cargo run --release --bin oracle -- repro exceptions SEED [--out DIR]
//! ```

use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;
use wasmtime::{
    Config, Engine, Extern, ExternType, Linker, Module, Store, Tag, ThrownException, Trap, V128,
    Val, ValType,
};
use wazerox_fuzz::campaign::run_seeds;
use wazerox_fuzz::differential::{self, Skip, compare_reports};
use wazerox_fuzz::report::{Call, Kind, Outcome, Report, Value, host_call, plan, tag_export_index};
use wazerox_fuzz::{Target, exceptions, seeded_input};

fn kind(ty: &ValType) -> Kind {
    match ty {
        ValType::I32 => Kind::I32,
        ValType::I64 => Kind::I64,
        ValType::F32 => Kind::F32,
        ValType::F64 => Kind::F64,
        ValType::V128 => Kind::V128,
        ValType::Ref(r) if r.heap_type().is_func() => Kind::FuncRef,
        ValType::Ref(r) if r.heap_type().is_exn() => Kind::ExnRef,
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
        Value::ExnRef(_) => Val::ExnRef(None),
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
        Val::ExnRef(e) => Value::ExnRef(e.is_some()),
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

/// One engine for every case: the differential modules' features, exceptions
/// (exnref), and the deterministic relaxed SIMD lowering, whose results are
/// wazerox's with `relaxed_simd_deterministic` (and wasmi's).
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config
            .wasm_memory64(true)
            .wasm_custom_page_sizes(true)
            .wasm_wide_arithmetic(true)
            .wasm_exceptions(true)
            .relaxed_simd_deterministic(true)
            // One core per campaign process.
            .parallel_compilation(false);
        Engine::new(&config).expect("the oracle's configuration is valid")
    })
}

/// Runs the canonical call sequence in wasmtime. `Err` only if the module is rejected.
fn run(wasm: &[u8], args_seed: u64) -> Result<Report, String> {
    let engine = engine();
    let module = Module::new(engine, wasm).map_err(|e| format!("wasmtime rejected: {e:#}"))?;
    // The store counts host calls, as in the harness.
    let mut store = Store::new(engine, 0u64);
    let mut linker = Linker::new(engine);
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
    let tags: Vec<(Tag, u32)> = exports
        .iter()
        .filter_map(|(name, e)| match e {
            Extern::Tag(t) => Some((*t, tag_export_index(name)?)),
            _ => None,
        })
        .collect();
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
            Err(e) if e.is::<ThrownException>() => uncaught(&mut store, &tags)?,
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

/// The outcome of a call that threw an exception out of Wasm (the store's pending
/// exception).
fn uncaught(store: &mut Store<u64>, tags: &[(Tag, u32)]) -> Result<Outcome, String> {
    let exn = store
        .take_pending_exception()
        .ok_or("a thrown exception without a pending one")?;
    let tag = exn.tag(&mut *store).map_err(|e| e.to_string())?;
    let payload = exn
        .fields(&mut *store)
        .map_err(|e| e.to_string())?
        .collect::<Vec<_>>();
    Ok(Outcome::Exception {
        tag: tags
            .iter()
            .find(|(t, _)| Tag::eq(t, &tag, &*store))
            .map(|(_, i)| *i),
        payload: payload.iter().map(value).collect(),
    })
}

/// One case of the exceptions campaign: the label for the statistics, or the
/// mismatch.
fn exceptions_case(seed: u64) -> Result<&'static str, String> {
    let Some(case) = exceptions::generate(&seeded_input(Target::Differential, seed)) else {
        return Ok("no module");
    };
    let ours = differential::run_wazerox(&case.wasm, case.args_seed)?;
    let reference = run(&case.wasm, case.args_seed)?;
    let threw = ours
        .calls
        .iter()
        .flatten()
        .any(|c| matches!(c.outcome, Outcome::Exception { .. }));
    match compare_reports(&ours, &reference, "wasmtime", case.args_seed)? {
        Ok(()) if threw => Ok("compared, an exception escaped"),
        Ok(()) => Ok("compared"),
        Err(Skip::StackExhausted) => Ok("stack-limited"),
        Err(Skip::NoModule) => Ok("no module"),
    }
}

fn option(args: &[String], name: &str) -> Option<u64> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
}

fn run_exceptions(args: &[String]) -> ExitCode {
    let failures = run_seeds(
        "exceptions",
        option(args, "--from").unwrap_or(0),
        option(args, "--count").unwrap_or(u64::MAX),
        option(args, "--seconds").map(Duration::from_secs),
        exceptions_case,
    );
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Writes seed SEED's module and both reports to DIR (`seed-N.wasm`,
/// `seed-N.wazerox.txt`, `seed-N.wasmtime.txt`) and prints the verdict.
fn repro_exceptions(seed: u64, out: &str) -> ExitCode {
    let Some(case) = exceptions::generate(&seeded_input(Target::Differential, seed)) else {
        println!("no module from this seed");
        return ExitCode::SUCCESS;
    };
    let stem = format!("{out}/seed-{seed}");
    let reports = [
        (
            "wazerox",
            differential::run_wazerox(&case.wasm, case.args_seed),
        ),
        ("wasmtime", run(&case.wasm, case.args_seed)),
    ];
    let mut files = vec![(format!("{stem}.wasm"), case.wasm.clone())];
    for (name, report) in &reports {
        let text = match report {
            Ok(r) => r.to_string(),
            Err(e) => format!("rejected: {e}\n"),
        };
        println!("--- {name}\n{text}");
        files.push((format!("{stem}.{name}.txt"), text.into_bytes()));
    }
    for (path, bytes) in files {
        if let Err(e) = std::fs::write(&path, bytes) {
            eprintln!("{path}: {e}");
            return ExitCode::from(2);
        }
    }
    println!("module: {stem}.wasm, args seed {}", case.args_seed);
    match exceptions_case(seed) {
        Ok(label) => {
            println!("{label}");
            ExitCode::SUCCESS
        }
        Err(mismatch) => {
            println!("MISMATCH: {mismatch}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match (
        args.first().map(String::as_str),
        args.get(1).map(String::as_str),
    ) {
        (Some("run"), Some("exceptions")) => return run_exceptions(&args),
        (Some("repro"), Some("exceptions")) => {
            let Some(seed) = args.get(2).and_then(|s| s.parse().ok()) else {
                eprintln!("usage: oracle repro exceptions SEED [--out DIR]");
                return ExitCode::from(2);
            };
            let out = args
                .iter()
                .position(|a| a == "--out")
                .and_then(|i| args.get(i + 1))
                .map_or(".", String::as_str);
            return repro_exceptions(seed, out);
        }
        _ => {}
    }
    let (Some(path), Some(args_seed)) = (args.first(), args.get(1).and_then(|s| s.parse().ok()))
    else {
        eprintln!(
            "usage: oracle MODULE.wasm ARGS-SEED\n       oracle run exceptions [--from SEED] [--count N] [--seconds S]\n       oracle repro exceptions SEED [--out DIR]"
        );
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
