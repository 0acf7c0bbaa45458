//! Differential execution: wazerox vs the `wasmi` interpreter (and, to confirm a
//! mismatch, the `wasmtime` crate: `benches/src/bin/oracle.rs`).
//!
//! Each case is a `wasm-smith` module plus an argument seed, both taken from the
//! fuzzer's bytes; both runtimes follow the canonical call sequence of
//! [`crate::report::plan`] and their [`Report`]s must be equal.

use crate::report::{AnyValue, Call, Kind, Outcome, Report, Value, plan};
use arbitrary::Unstructured;

/// Why a case was not compared to the end.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// wasm-smith could not build a module from these bytes.
    NoModule,
    /// A stack overflow on either side: stack limits legitimately differ.
    StackExhausted,
    /// The GC heap's cap reached on either side (in a call or at instantiation):
    /// caps and object sizes legitimately differ (the GC campaign only).
    GcHeapExhausted,
}

/// One differential case: a module binary and the seed of its call arguments.
#[derive(Debug, Clone)]
pub struct Case {
    pub wasm: Vec<u8>,
    pub args_seed: u64,
}

/// The wasm-smith configuration: features both runtimes implement.
pub fn config() -> wasm_smith::Config {
    wasm_smith::Config {
        simd_enabled: true,
        // wasm-smith's `canonicalize_nans` does not cover the relaxed float operators
        // (`relaxed_min/max/madd/nmadd`), whose NaN bits the spec leaves open (a
        // NaN's sign from `f64x2.relaxed_max`, seed 50029425 of the first run with
        // them): `generate` adds that canonicalization (`relaxed_nans`). wazerox
        // runs with the deterministic lowering, whose results are wasmi's.
        relaxed_simd_enabled: true,
        threads_enabled: false,
        tail_call_enabled: true,
        exceptions_enabled: false,
        gc_enabled: false,
        custom_page_sizes_enabled: true,
        wide_arithmetic_enabled: true,
        memory64_enabled: true,
        multi_value_enabled: true,
        extended_const_enabled: true,
        max_memories: 3,
        max_tables: 2,
        max_imports: 6,
        available_imports: Some(
            wat::parse_str(crate::report::HOST_IMPORTS).expect("the host imports parse"),
        ),
        min_funcs: 1,
        max_funcs: 20,
        max_instructions: 200,
        max_memory32_bytes: 4 << 16,
        max_memory64_bytes: 4 << 16,
        // Every memory and table declares a maximum, so `memory.grow` cannot make a
        // case allocate gigabytes (on both sides, plus the final-memory copies).
        memory_max_size_required: true,
        table_max_size_required: true,
        max_table_elements: 100,
        canonicalize_nans: true,
        export_everything: true,
        allow_start_export: false,
        ..wasm_smith::Config::default()
    }
}

/// Builds a case from fuzzer bytes: the argument seed first, then the module.
pub fn generate(data: &[u8]) -> Option<Case> {
    generate_with(config(), data)
}

/// [`generate`] with another wasm-smith configuration (the exceptions campaign's).
pub fn generate_with(config: wasm_smith::Config, data: &[u8]) -> Option<Case> {
    let mut u = Unstructured::new(data);
    let args_seed: u64 = u.arbitrary().ok()?;
    let mut module = wasm_smith::Module::new(config, &mut u).ok()?;
    // Every loop and call chain is bounded, so the reference interpreter (which has
    // no fuel here) always finishes.
    module.ensure_termination(1000).ok()?;
    let wasm =
        crate::relaxed_nans::canonicalize(&module.to_bytes()).expect("wasm-smith's modules parse");
    Some(Case { wasm, args_seed })
}

/// Builds a module from fuzzer bytes and compares both runtimes on it.
pub fn check(data: &[u8]) -> Result<Result<(), Skip>, String> {
    match generate(data) {
        Some(case) => compare(&case.wasm, case.args_seed),
        None => Ok(Err(Skip::NoModule)),
    }
}

/// Compares both runtimes on a module binary with the given argument seed.
pub fn compare(wasm: &[u8], args_seed: u64) -> Result<Result<(), Skip>, String> {
    let ours = run_wazerox(wasm, args_seed)?;
    let reference = run_wasmi(wasm, args_seed)?;
    compare_reports(&ours, &reference, "wasmi", args_seed)
}

/// The verdict on wazerox's report against a reference runtime's (named
/// `reference_name` in the message) for one module and argument seed: equal, not
/// compared to the end (a stack overflow on either side; the calls before it still
/// compare), or the first difference.
pub fn compare_reports(
    ours: &Report,
    reference: &Report,
    reference_name: &str,
    args_seed: u64,
) -> Result<Result<(), Skip>, String> {
    if ours.gc_heap_exhausted() || reference.gc_heap_exhausted() {
        let (a, b) = (
            ours.calls_before_gc_heap(),
            reference.calls_before_gc_heap(),
        );
        let n = a.len().min(b.len());
        if let Some(i) = (0..n).find(|i| a[*i] != b[*i]) {
            return Err(format!(
                "args seed {args_seed}: call {i} differs before the GC heap ran out\n  wazerox: {:?}\n  {reference_name}: {:?}",
                a[i], b[i]
            ));
        }
        return Ok(Err(Skip::GcHeapExhausted));
    }
    if ours.calls.is_some() != reference.calls.is_some() {
        return Err(format!(
            "instantiation succeeded in {} only",
            if ours.calls.is_some() {
                "wazerox"
            } else {
                reference_name
            }
        ));
    }
    if ours.stack_exhausted() || reference.stack_exhausted() {
        let (a, b) = (
            ours.calls_before_overflow(),
            reference.calls_before_overflow(),
        );
        let n = a.len().min(b.len());
        if a[..n] != b[..n] {
            let i = (0..n).find(|i| a[*i] != b[*i]).expect("they differ");
            return Err(format!(
                "args seed {args_seed}: call {i} differs before a stack overflow\n  wazerox: {:?}\n  {reference_name}: {:?}",
                a[i], b[i]
            ));
        }
        return Ok(Err(Skip::StackExhausted));
    }
    if ours == reference {
        return Ok(Ok(()));
    }
    let (a, b) = ours
        .first_difference(reference)
        .unwrap_or_else(|| ("<memory contents>".into(), "<memory contents>".into()));
    Err(format!(
        "args seed {args_seed}: reports differ\n  wazerox: {a}\n  {reference_name}: {b}"
    ))
}

/// Maps a wazerox trap code to the harness's trap kinds.
pub fn trap_kind_ours(code: wazerox::TrapCode) -> &'static str {
    use wazerox::TrapCode::*;
    match code {
        StackOverflow => "stack",
        MemoryOutOfBounds => "memory",
        TableOutOfBounds => "table",
        IndirectCallToNull => "null-call",
        BadSignature => "signature",
        IntegerOverflow => "int-overflow",
        IntegerDivisionByZero => "div-zero",
        BadConversionToInteger => "conversion",
        UnreachableCodeReached => "unreachable",
        NullReference => "null-reference",
        OutOfFuel => "out-of-fuel",
        CastFailure => "cast",
        ArrayOutOfBounds => "array",
        GcHeapExhausted => "gc-heap",
        _ => "other",
    }
}

fn trap_kind_wasmi(code: wasmi::TrapCode) -> &'static str {
    use wasmi::TrapCode::*;
    match code {
        StackOverflow => "stack",
        MemoryOutOfBounds => "memory",
        TableOutOfBounds => "table",
        IndirectCallToNull => "null-call",
        BadSignature => "signature",
        IntegerOverflow => "int-overflow",
        IntegerDivisionByZero => "div-zero",
        BadConversionToInteger => "conversion",
        UnreachableCodeReached => "unreachable",
        OutOfFuel => "out-of-fuel",
        _ => "other",
    }
}

pub fn kind_ours(ty: wazerox::ValType) -> Kind {
    use wazerox::ValType;
    match ty {
        ValType::I32 => Kind::I32,
        ValType::I64 => Kind::I64,
        ValType::F32 => Kind::F32,
        ValType::F64 => Kind::F64,
        ValType::V128 => Kind::V128,
        ValType::Ref(r) => match r.kind() {
            wazerox::RefKind::Func => Kind::FuncRef,
            wazerox::RefKind::Extern => Kind::ExternRef,
            wazerox::RefKind::Exn => Kind::ExnRef,
            wazerox::RefKind::Any => Kind::AnyRef,
        },
    }
}

/// The wazerox value of an argument (references are always null).
pub fn val_ours(v: Value) -> wazerox::Val {
    use wazerox::Val;
    match v {
        Value::I32(x) => Val::I32(x as i32),
        Value::I64(x) => Val::I64(x as i64),
        Value::F32(x) => Val::F32(x),
        Value::F64(x) => Val::F64(x),
        Value::V128(x) => Val::V128(x),
        Value::FuncRef(_) => Val::FuncRef(None),
        Value::ExternRef(_) => Val::ExternRef(None),
        Value::ExnRef(_) => Val::ExnRef(None),
        Value::AnyRef(_) => Val::AnyRef(None),
    }
}

pub fn value_ours(store: impl wazerox::AsContext, v: &wazerox::Val) -> Value {
    use wazerox::Val;
    match v {
        Val::I32(x) => Value::I32(*x as u32),
        Val::I64(x) => Value::I64(*x as u64),
        Val::F32(b) => Value::f32(*b),
        Val::F64(b) => Value::f64(*b),
        Val::V128(x) => Value::V128(*x),
        Val::FuncRef(f) => Value::FuncRef(f.is_some()),
        Val::ExternRef(e) => Value::ExternRef(e.is_some()),
        Val::ExnRef(e) => Value::ExnRef(e.is_some()),
        Val::AnyRef(a) => Value::AnyRef(match a {
            None => AnyValue::Null,
            Some(a) => any_value_ours(store, a),
        }),
    }
}

/// What a non-null any-hierarchy reference is (`report::AnyValue`).
fn any_value_ours(store: impl wazerox::AsContext, a: &wazerox::AnyRef) -> AnyValue {
    if let Some(x) = a.i31_u() {
        AnyValue::I31(x)
    } else if a.is_struct(&store) {
        AnyValue::Struct
    } else if a.is_array(&store) {
        AnyValue::Array
    } else {
        AnyValue::Extern
    }
}

/// The wazerox engine of a case: the top bits of the argument seed choose Cranelift's
/// optimization level and explicit bounds checks (instead of guard pages), so both
/// code paths are compared; the argument values do not depend on these bits alone.
pub fn engine_for(args_seed: u64) -> wazerox::Engine {
    engine_with(args_seed, false)
}

/// [`engine_for`], with the GC proposal on or off (the GC campaign's engine).
pub fn engine_with(args_seed: u64, gc: bool) -> wazerox::Engine {
    crate::instantiate::engine(crate::instantiate::EngineKnobs {
        // 512 KiB, the default.
        stack: crate::instantiate::DEFAULT_STACK,
        unoptimized: args_seed >> 63 == 1,
        explicit_bounds_checks: (args_seed >> 62) & 1 == 1,
        fuel: false,
        epochs: false,
        // wasmi's relaxed SIMD results are the deterministic lowering's.
        relaxed_simd_deterministic: true,
        gc,
    })
}

/// Runs the canonical call sequence in wazerox. `Err` only if the module is rejected.
pub fn run_wazerox(wasm: &[u8], args_seed: u64) -> Result<Report, String> {
    run_wazerox_on(&engine_for(args_seed), wasm, args_seed)
}

/// [`run_wazerox`] on a given engine (the GC campaign's: [`engine_with`]).
pub fn run_wazerox_on(
    engine: &wazerox::Engine,
    wasm: &[u8],
    args_seed: u64,
) -> Result<Report, String> {
    use wazerox::{Extern, ExternType, Linker, Module, Store, Val};
    let module = Module::new(engine, wasm).map_err(|e| format!("wazerox rejected: {e}"))?;
    // The store counts host calls (they are part of what host functions return).
    let mut store = Store::new(engine, 0u64);
    let mut linker = Linker::new(engine);
    for import in module.imports() {
        let ExternType::Func(ty) = import.ty() else {
            return Err(format!("unexpected import {}", import.name()));
        };
        let name = import.name().to_string();
        let result_kinds: Vec<Kind> = ty.results().iter().map(|t| kind_ours(*t)).collect();
        linker
            .func_new(
                "host",
                &name.clone(),
                ty,
                move |mut caller, params, results| {
                    let args: Vec<Value> = params.iter().map(|p| value_ours(&caller, p)).collect();
                    let calls = *caller.data();
                    *caller.data_mut() += 1;
                    let values = crate::report::host_call(&name, calls, &args, &result_kinds);
                    for (slot, v) in results.iter_mut().zip(values) {
                        *slot = val_ours(v);
                    }
                    Ok(())
                },
            )
            .map_err(|e| e.to_string())?;
    }
    // wasmi reports segment initialization failures as plain errors, not traps with
    // a code, so a failed instantiation is compared as such, without its reason.
    let instance = match linker.instantiate(&mut store, &module) {
        Ok(instance) => instance,
        Err(e) => {
            if std::env::var_os("WAZEROX_FUZZ_DEBUG").is_some() {
                eprintln!("wazerox instantiation failed: {e}");
            }
            let gc_heap = e.as_trap().map(|t| t.code()) == Some(wazerox::TrapCode::GcHeapExhausted);
            return Ok(Report {
                gc_heap_exhausted_at_instantiation: gc_heap,
                ..Report::instantiation_failed()
            });
        }
    };
    let exports = instance.exports(&mut store);
    // The tags the generator exported (`report::tag_export_name`), to name the tag
    // of an uncaught exception.
    let tags: Vec<(wazerox::Tag, u32)> = exports
        .iter()
        .filter_map(|(name, e)| match e {
            Extern::Tag(t) => Some((*t, crate::report::tag_export_index(name)?)),
            _ => None,
        })
        .collect();
    let funcs = exports
        .iter()
        .filter_map(|(name, e)| match e {
            Extern::Func(f) => Some((
                name.clone(),
                f.ty(&store)
                    .params()
                    .iter()
                    .map(|t| kind_ours(*t))
                    .collect(),
            )),
            _ => None,
        })
        .collect();
    let mut calls = Vec::new();
    for (name, args) in plan(funcs, args_seed) {
        let func = instance
            .get_func(&mut store, &name)
            .expect("planned from the exports");
        let ty = func.ty(&store);
        let params: Vec<Val> = args.iter().map(|a| val_ours(*a)).collect();
        let mut results: Vec<Val> = ty.results().iter().map(|t| Val::default_for(*t)).collect();
        let outcome = match func.call(&mut store, &params, &mut results) {
            Ok(()) => Outcome::Values(results.iter().map(|r| value_ours(&store, r)).collect()),
            Err(e) => match e.as_exception() {
                Some(exn) => uncaught_ours(&mut store, *exn, &tags)?,
                None => Outcome::Trap(e.as_trap().map_or("host", |t| trap_kind_ours(t.code()))),
            },
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
    let mut exports = exports;
    exports.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, export) in exports {
        match export {
            Extern::Memory(m) => report.add_memory(m.data(&store)),
            Extern::Global(g) => {
                let value = g.get(&mut store);
                report.globals.push((name, value_ours(&store, &value)))
            }
            _ => {}
        }
    }
    Ok(report)
}

/// The outcome of a call that threw `exn` out of Wasm.
fn uncaught_ours(
    store: &mut wazerox::Store<u64>,
    exn: wazerox::ExnRef,
    tags: &[(wazerox::Tag, u32)],
) -> Result<Outcome, String> {
    let tag = exn.tag(&mut *store).map_err(|e| e.to_string())?;
    let payload = exn.fields(&mut *store).map_err(|e| e.to_string())?;
    Ok(Outcome::Exception {
        tag: tags.iter().find(|(t, _)| *t == tag).map(|(_, i)| *i),
        payload: payload.iter().map(|v| value_ours(&*store, v)).collect(),
    })
}

fn kind_wasmi(ty: &wasmi::ValType) -> Kind {
    use wasmi::ValType;
    match ty {
        ValType::I32 => Kind::I32,
        ValType::I64 => Kind::I64,
        ValType::F32 => Kind::F32,
        ValType::F64 => Kind::F64,
        ValType::V128 => Kind::V128,
        ValType::FuncRef => Kind::FuncRef,
        ValType::ExternRef => Kind::ExternRef,
    }
}

fn val_wasmi(v: Value) -> wasmi::Val {
    use wasmi::{Val, ValType};
    match v {
        Value::I32(x) => Val::I32(x as i32),
        Value::I64(x) => Val::I64(x as i64),
        Value::F32(x) => Val::F32(wasmi::F32::from_bits(x)),
        Value::F64(x) => Val::F64(wasmi::F64::from_bits(x)),
        Value::V128(x) => Val::V128(wasmi::V128::from(x)),
        Value::FuncRef(_) => Val::default(ValType::FuncRef),
        Value::ExternRef(_) => Val::default(ValType::ExternRef),
        Value::ExnRef(_) | Value::AnyRef(_) => {
            unreachable!("wasmi has no exceptions or GC; its cases have none")
        }
    }
}

fn value_wasmi(v: &wasmi::Val) -> Value {
    use wasmi::Val;
    match v {
        Val::I32(x) => Value::I32(*x as u32),
        Val::I64(x) => Value::I64(*x as u64),
        Val::F32(f) => Value::f32(f.to_bits()),
        Val::F64(f) => Value::f64(f.to_bits()),
        Val::V128(x) => Value::V128(x.as_u128()),
        Val::FuncRef(f) => Value::FuncRef(!f.is_null()),
        Val::ExternRef(e) => Value::ExternRef(!e.is_null()),
    }
}

/// wasmi reports some failures as errors without a trap code; classify them by
/// their message so they compare with our trap kinds.
fn wasmi_error_kind(e: &wasmi::Error) -> &'static str {
    let message = e.to_string();
    if std::env::var_os("WAZEROX_FUZZ_DEBUG").is_some() {
        eprintln!("wasmi error without trap code: {message} / {:?}", e.kind());
    }
    if message.contains("out of bounds") && message.contains("table") {
        "table"
    } else if message.contains("out of bounds") {
        "memory"
    } else {
        "host"
    }
}

/// Runs the canonical call sequence in wasmi. `Err` only if the module is rejected.
pub fn run_wasmi(wasm: &[u8], args_seed: u64) -> Result<Report, String> {
    use wasmi::{Engine, Extern, ExternType, Linker, Module, Store};
    // wasmi 1.0 enables tail calls, extended-const, relaxed SIMD and multi-memory
    // by default; wide arithmetic, memory64 and custom page sizes not.
    let mut config = wasmi::Config::default();
    config
        .wasm_wide_arithmetic(true)
        .wasm_memory64(true)
        .wasm_custom_page_sizes(true);
    let engine = Engine::new(&config);
    let module = Module::new(&engine, wasm).map_err(|e| format!("wasmi rejected: {e}"))?;
    let mut store = Store::new(&engine, 0u64);
    let mut linker = <Linker<u64>>::new(&engine);
    for import in module.imports() {
        let ExternType::Func(ty) = import.ty() else {
            return Err(format!("unexpected import {}", import.name()));
        };
        let name = import.name().to_string();
        let result_kinds: Vec<Kind> = ty.results().iter().map(kind_wasmi).collect();
        linker
            .func_new(
                "host",
                &name.clone(),
                ty.clone(),
                move |mut caller, params, results| {
                    let args: Vec<Value> = params.iter().map(value_wasmi).collect();
                    let calls = *caller.data();
                    *caller.data_mut() += 1;
                    let values = crate::report::host_call(&name, calls, &args, &result_kinds);
                    for (slot, v) in results.iter_mut().zip(values) {
                        *slot = val_wasmi(v);
                    }
                    Ok(())
                },
            )
            .map_err(|e| e.to_string())?;
    }
    let Ok(instance) = linker.instantiate_and_start(&mut store, &module) else {
        return Ok(Report::instantiation_failed());
    };
    let mut exports: Vec<(String, Extern)> = instance
        .exports(&store)
        .map(|e| (e.name().to_string(), e.into_extern()))
        .collect();
    exports.sort_by(|a, b| a.0.cmp(&b.0));
    let funcs = exports
        .iter()
        .filter_map(|(name, e)| match e {
            Extern::Func(f) => Some((
                name.clone(),
                f.ty(&store).params().iter().map(kind_wasmi).collect(),
            )),
            _ => None,
        })
        .collect();
    let mut calls = Vec::new();
    for (name, args) in plan(funcs, args_seed) {
        let func = instance
            .get_func(&store, &name)
            .expect("planned from the exports");
        let ty = func.ty(&store);
        let params: Vec<wasmi::Val> = args.iter().map(|a| val_wasmi(*a)).collect();
        let mut results: Vec<wasmi::Val> = ty
            .results()
            .iter()
            .map(|t| wasmi::Val::default(*t))
            .collect();
        let outcome = match func.call(&mut store, &params, &mut results) {
            Ok(()) => Outcome::Values(results.iter().map(value_wasmi).collect()),
            Err(e) => Outcome::Trap(
                e.as_trap_code()
                    .map_or_else(|| wasmi_error_kind(&e), trap_kind_wasmi),
            ),
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
                .push((name.clone(), value_wasmi(&g.get(&store)))),
            _ => {}
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two false mismatches of the first campaign with relaxed SIMD (seeds
    /// 50,029,425 and 50,033,223, configuration of commit 0e7e5ba: one memory, no
    /// memory64 or custom page sizes): a NaN's bits from `f32x4/f64x2.relaxed_max`
    /// reached a global. Without the canonicalization of `relaxed_nans` they differ
    /// still; with it, they agree.
    #[test]
    fn first_relaxed_campaign_false_mismatches_agree_now() {
        let mut old = config();
        old.custom_page_sizes_enabled = false;
        old.memory64_enabled = false;
        old.max_memories = 1;
        for seed in [50_029_425, 50_033_223] {
            let data = crate::seeded_input(crate::Target::Differential, seed);
            let mut u = Unstructured::new(&data);
            let args_seed: u64 = u.arbitrary().unwrap();
            let mut module = wasm_smith::Module::new(old.clone(), &mut u).unwrap();
            module.ensure_termination(1000).unwrap();
            let raw = module.to_bytes();
            assert!(
                compare(&raw, args_seed).is_err(),
                "seed {seed}: the raw module still shows the NaN-bits mismatch"
            );
            let case = generate_with(old.clone(), &data).unwrap();
            assert_eq!(
                compare(&case.wasm, case.args_seed),
                Ok(Ok(())),
                "seed {seed}"
            );
        }
    }
}
