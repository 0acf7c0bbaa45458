//! The second oracle of the differential fuzzer: runs one module in the `wasmtime`
//! crate with the harness's canonical call sequence and prints the report in the
//! format of `wazerox-fuzz repro`/`compare`, so a mismatch between wazerox and wasmi
//! can be diffed three ways before it is called ours (docs/fuzzing.md). Imports are
//! the harness's host functions (`report::host_call`).
//!
//! It is also the oracle of the exceptions campaign (wasmi has no exceptions): for
//! each seed, the module of `wazerox_fuzz::exceptions::generate` runs in wazerox
//! (`differential::run_wazerox`) and here, and the reports are compared by
//! `differential::compare_reports`, as the wasmi campaign compares its own. The GC
//! campaign (`gc`) is the same with `wazerox_fuzz::gc`'s modules and engine, and
//! wasmtime's GC proposal on (`--gc` for a module file).
//!
//! ```text
//! cargo run --release --bin oracle -- MODULE.wasm ARGS-SEED [--gc]
//! cargo run --release --bin oracle -- run (exceptions | gc) [--from SEED] [--count N] [--seconds S]
//! cargo run --release --bin oracle -- repro (exceptions | gc) SEED [--out DIR]
//! ```

use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;
use wasmtime::{
    AnyRef, AsContext, Config, Engine, Extern, ExternType, GcHeapOutOfMemory, HeapType, Linker,
    Module, Rooted, Store, StoreLimits, StoreLimitsBuilder, Tag, ThrownException, Trap, V128, Val,
    ValType,
};
use wazerox_fuzz::campaign::run_seeds;
use wazerox_fuzz::differential::{self, Skip, compare_reports};
use wazerox_fuzz::report::{
    AnyValue, Call, Kind, Outcome, Report, Value, host_call, plan, tag_export_index,
};
use wazerox_fuzz::{Target, exceptions, gc, seeded_input};

fn kind(ty: &ValType) -> Kind {
    match ty {
        ValType::I32 => Kind::I32,
        ValType::I64 => Kind::I64,
        ValType::F32 => Kind::F32,
        ValType::F64 => Kind::F64,
        ValType::V128 => Kind::V128,
        ValType::Ref(r) => match r.heap_type().top() {
            HeapType::Func => Kind::FuncRef,
            HeapType::Exn => Kind::ExnRef,
            HeapType::Any => Kind::AnyRef,
            HeapType::Extern => Kind::ExternRef,
            other => panic!("the generator makes no {other:?}"),
        },
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
        Value::AnyRef(_) => Val::AnyRef(None),
    }
}

fn value(store: impl AsContext, v: &Val) -> Value {
    match v {
        Val::I32(x) => Value::I32(*x as u32),
        Val::I64(x) => Value::I64(*x as u64),
        Val::F32(b) => Value::f32(*b),
        Val::F64(b) => Value::f64(*b),
        Val::V128(x) => Value::V128(x.as_u128()),
        Val::FuncRef(f) => Value::FuncRef(f.is_some()),
        Val::ExternRef(e) => Value::ExternRef(e.is_some()),
        Val::ExnRef(e) => Value::ExnRef(e.is_some()),
        Val::AnyRef(None) => Value::AnyRef(AnyValue::Null),
        Val::AnyRef(Some(a)) => Value::AnyRef(any_value(store, a)),
        other => panic!("the generator makes no {other:?}"),
    }
}

/// What a non-null any-hierarchy reference is (`report::AnyValue`).
fn any_value(store: impl AsContext, a: &Rooted<AnyRef>) -> AnyValue {
    let store = store.as_context();
    if let Some(x) = a.as_i31(&store).expect("a live root") {
        AnyValue::I31(x.get_u32())
    } else if a.is_struct(&store).expect("a live root") {
        AnyValue::Struct
    } else if a.is_array(&store).expect("a live root") {
        AnyValue::Array
    } else {
        AnyValue::Extern
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
        Trap::CastFailure => "cast",
        Trap::ArrayOutOfBounds => "array",
        Trap::AllocationTooLarge => "gc-heap",
        _ => "other",
    }
}

fn error_kind(e: &wasmtime::Error) -> &'static str {
    if gc_heap_exhausted(e) {
        return "gc-heap";
    }
    e.downcast_ref::<Trap>().map_or("host", |t| trap_kind(*t))
}

/// Whether `e` is the GC heap running out (past the store's memory limit).
fn gc_heap_exhausted(e: &wasmtime::Error) -> bool {
    e.is::<GcHeapOutOfMemory<()>>() || e.downcast_ref::<Trap>() == Some(&Trap::AllocationTooLarge)
}

/// One engine for every case (and one with the GC proposal for the GC campaign):
/// the differential modules' features, exceptions (exnref), and the deterministic
/// relaxed SIMD lowering, whose results are wazerox's with
/// `relaxed_simd_deterministic` (and wasmi's).
fn engine(gc: bool) -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    static GC_ENGINE: OnceLock<Engine> = OnceLock::new();
    (if gc { &GC_ENGINE } else { &ENGINE }).get_or_init(|| {
        let mut config = Config::new();
        config.wasm_gc(gc).wasm_function_references(gc);
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

/// A store's data: host calls so far (part of what host functions return) and
/// the memory limits.
struct State {
    calls: u64,
    limits: StoreLimits,
}

/// Runs the canonical call sequence in wasmtime. `Err` only if the module is rejected.
fn run(wasm: &[u8], args_seed: u64, gc: bool) -> Result<Report, String> {
    let engine = engine(gc);
    let module = Module::new(engine, wasm).map_err(|e| format!("wasmtime rejected: {e:#}"))?;
    // The store counts host calls, as in the harness.
    let mut store = Store::new(
        engine,
        State {
            calls: 0,
            // wazerox's `instantiate::GC_HEAP_LIMIT`: wasmtime's GC heap is a
            // memory, so this caps it (linear memories here are ≤ 4 pages).
            limits: StoreLimitsBuilder::new()
                .memory_size(wazerox_fuzz::instantiate::GC_HEAP_LIMIT)
                .build(),
        },
    );
    store.limiter(|s| &mut s.limits);
    let mut linker: Linker<State> = Linker::new(engine);
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
                    let args: Vec<Value> = params.iter().map(|p| value(&caller, p)).collect();
                    let calls = caller.data().calls;
                    caller.data_mut().calls += 1;
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
    let instance = match linker.instantiate(&mut store, &module) {
        Ok(instance) => instance,
        Err(e) => {
            return Ok(Report {
                gc_heap_exhausted_at_instantiation: gc_heap_exhausted(&e),
                ..Report::instantiation_failed()
            });
        }
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
            Ok(()) => Outcome::Values(results.iter().map(|r| value(&store, r)).collect()),
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
            Extern::Global(g) => {
                let v = g.get(&mut store);
                report.globals.push((name.clone(), value(&store, &v)))
            }
            _ => {}
        }
    }
    Ok(report)
}

/// The outcome of a call that threw an exception out of Wasm (the store's pending
/// exception).
fn uncaught(store: &mut Store<State>, tags: &[(Tag, u32)]) -> Result<Outcome, String> {
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
        payload: payload.iter().map(|v| value(&*store, v)).collect(),
    })
}

/// A campaign against wasmtime: `exceptions` or `gc` (which has exceptions too).
#[derive(Clone, Copy)]
enum Campaign {
    Exceptions,
    Gc,
}

impl Campaign {
    fn parse(name: Option<&str>) -> Option<Campaign> {
        match name? {
            "exceptions" => Some(Campaign::Exceptions),
            "gc" => Some(Campaign::Gc),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Campaign::Exceptions => "exceptions",
            Campaign::Gc => "gc",
        }
    }

    fn gc(self) -> bool {
        matches!(self, Campaign::Gc)
    }

    fn generate(self, seed: u64) -> Option<differential::Case> {
        let data = seeded_input(Target::Differential, seed);
        match self {
            Campaign::Exceptions => exceptions::generate(&data),
            Campaign::Gc => gc::generate(&data),
        }
    }

    fn run_wazerox(self, wasm: &[u8], args_seed: u64) -> Result<Report, String> {
        match self {
            Campaign::Exceptions => differential::run_wazerox(wasm, args_seed),
            Campaign::Gc => gc::run_wazerox(wasm, args_seed),
        }
    }
}

/// One case of a campaign: the label for the statistics, or the mismatch.
fn campaign_case(campaign: Campaign, seed: u64) -> Result<&'static str, String> {
    let Some(case) = campaign.generate(seed) else {
        return Ok("no module");
    };
    let ours = campaign.run_wazerox(&case.wasm, case.args_seed)?;
    let reference = run(&case.wasm, case.args_seed, campaign.gc())?;
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
        Err(Skip::GcHeapExhausted) => Ok("gc-heap-limited"),
    }
}

fn option(args: &[String], name: &str) -> Option<u64> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
}

fn run_campaign(campaign: Campaign, args: &[String]) -> ExitCode {
    let failures = run_seeds(
        campaign.name(),
        option(args, "--from").unwrap_or(0),
        option(args, "--count").unwrap_or(u64::MAX),
        option(args, "--seconds").map(Duration::from_secs),
        |seed| campaign_case(campaign, seed),
    );
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Writes seed SEED's module and both reports to DIR (`seed-N.wasm`,
/// `seed-N.wazerox.txt`, `seed-N.wasmtime.txt`) and prints the verdict.
fn repro_campaign(campaign: Campaign, seed: u64, out: &str) -> ExitCode {
    let Some(case) = campaign.generate(seed) else {
        println!("no module from this seed");
        return ExitCode::SUCCESS;
    };
    let stem = format!("{out}/seed-{seed}");
    let reports = [
        ("wazerox", campaign.run_wazerox(&case.wasm, case.args_seed)),
        ("wasmtime", run(&case.wasm, case.args_seed, campaign.gc())),
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
    match campaign_case(campaign, seed) {
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
        (Some("run"), campaign) if Campaign::parse(campaign).is_some() => {
            return run_campaign(Campaign::parse(campaign).unwrap(), &args);
        }
        (Some("repro"), campaign) if Campaign::parse(campaign).is_some() => {
            let Some(seed) = args.get(2).and_then(|s| s.parse().ok()) else {
                eprintln!("usage: oracle repro (exceptions | gc) SEED [--out DIR]");
                return ExitCode::from(2);
            };
            let out = args
                .iter()
                .position(|a| a == "--out")
                .and_then(|i| args.get(i + 1))
                .map_or(".", String::as_str);
            return repro_campaign(Campaign::parse(campaign).unwrap(), seed, out);
        }
        _ => {}
    }
    let (Some(path), Some(args_seed)) = (args.first(), args.get(1).and_then(|s| s.parse().ok()))
    else {
        eprintln!(
            "usage: oracle MODULE.wasm ARGS-SEED [--gc]\n       oracle run (exceptions | gc) [--from SEED] [--count N] [--seconds S]\n       oracle repro (exceptions | gc) SEED [--out DIR]"
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
    match run(&wasm, args_seed, args.iter().any(|a| a == "--gc")) {
        Ok(report) => print!("{report}"),
        Err(e) => println!("rejected: {e}"),
    }
    ExitCode::SUCCESS
}
