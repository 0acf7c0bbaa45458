//! Differential execution: wazerox vs the `wasmi` interpreter.

use arbitrary::Unstructured;

/// What one call did, in a form both runtimes can produce.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Results, with float NaNs canonicalized (NaN bits are allowed to differ).
    Values(Vec<u128>),
    /// A trap, by kind.
    Trap(&'static str),
}

/// Why a case was not compared to the end.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// wasm-smith could not build a module from these bytes.
    NoModule,
    /// A stack overflow on either side: stack limits legitimately differ.
    StackExhausted,
}

fn canonical_f32(bits: u32) -> u128 {
    if f32::from_bits(bits).is_nan() {
        0x7fc0_0000
    } else {
        bits as u128
    }
}

fn canonical_f64(bits: u64) -> u128 {
    if f64::from_bits(bits).is_nan() {
        0x7ff8_0000_0000_0000
    } else {
        bits as u128
    }
}

/// The wasm-smith configuration: features both runtimes implement.
pub fn config() -> wasm_smith::Config {
    wasm_smith::Config {
        simd_enabled: false,
        relaxed_simd_enabled: false,
        threads_enabled: false,
        tail_call_enabled: false,
        exceptions_enabled: false,
        gc_enabled: false,
        custom_page_sizes_enabled: false,
        wide_arithmetic_enabled: false,
        memory64_enabled: false,
        multi_value_enabled: true,
        extended_const_enabled: false,
        max_memories: 1,
        max_tables: 2,
        max_imports: 0,
        min_funcs: 1,
        max_funcs: 20,
        max_instructions: 200,
        max_memory32_bytes: 4 << 16,
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

fn trap_kind_ours(code: wazerox::TrapCode) -> &'static str {
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
        _ => "other",
    }
}

struct Run {
    calls: Vec<(String, Outcome)>,
    memory: Vec<u8>,
    globals: Vec<(String, u128)>,
}

fn run_wazerox(bytes: &[u8]) -> Result<Run, String> {
    use wazerox::{Engine, Extern, Instance, Module, Store, Val};
    let engine = Engine::default();
    let module = Module::new(&engine, bytes).map_err(|e| format!("wazerox rejected: {e}"))?;
    let mut store = Store::new(&engine, ());
    let instance = match Instance::new(&mut store, &module, &[]) {
        Ok(i) => i,
        // wasmi reports segment initialization failures as plain errors, not traps
        // with a code, so a failed instantiation is compared as such.
        Err(_) => {
            return Ok(Run {
                calls: vec![("<instantiate>".into(), Outcome::Trap("instantiation"))],
                memory: vec![],
                globals: vec![],
            });
        }
    };
    let mut calls = Vec::new();
    // One canonical order on both sides (calls have side effects): by export name.
    let mut exports = instance.exports(&mut store);
    exports.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, export) in exports.clone() {
        let Extern::Func(func) = export else { continue };
        let ty = func.ty(&store);
        let params: Vec<Val> = ty.params().iter().map(|t| Val::default_for(*t)).collect();
        let mut results: Vec<Val> = ty.results().iter().map(|t| Val::default_for(*t)).collect();
        let outcome = match func.call(&mut store, &params, &mut results) {
            Ok(()) => Outcome::Values(results.iter().map(val_bits_ours).collect()),
            Err(e) => Outcome::Trap(e.as_trap().map_or("host", |t| trap_kind_ours(t.code()))),
        };
        let stop = outcome == Outcome::Trap("stack");
        calls.push((name, outcome));
        if stop {
            break;
        }
    }
    let mut memory = Vec::new();
    let mut globals = Vec::new();
    for (name, export) in exports {
        match export {
            Extern::Memory(m) => memory = m.data(&store).to_vec(),
            Extern::Global(g) => globals.push((name, val_bits_ours(&g.get(&mut store)))),
            _ => {}
        }
    }
    Ok(Run {
        calls,
        memory,
        globals,
    })
}

fn val_bits_ours(v: &wazerox::Val) -> u128 {
    use wazerox::Val;
    match v {
        Val::I32(x) => *x as u32 as u128,
        Val::I64(x) => *x as u64 as u128,
        Val::F32(b) => canonical_f32(*b),
        Val::F64(b) => canonical_f64(*b),
        Val::V128(x) => *x,
        Val::FuncRef(f) => f.is_some() as u128,
        Val::ExternRef(e) => e.is_some() as u128,
    }
}

fn val_bits_wasmi(v: &wasmi::Val) -> u128 {
    use wasmi::Val;
    match v {
        Val::I32(x) => *x as u32 as u128,
        Val::I64(x) => *x as u64 as u128,
        Val::F32(f) => canonical_f32(f.to_bits()),
        Val::F64(f) => canonical_f64(f.to_bits()),
        Val::FuncRef(f) => !f.is_null() as u128,
        Val::ExternRef(e) => !e.is_null() as u128,
        _ => u128::MAX,
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

fn default_wasmi(ty: &wasmi::ValType) -> wasmi::Val {
    wasmi::Val::default(*ty)
}

fn run_wasmi(bytes: &[u8]) -> Result<Run, String> {
    use wasmi::{Engine, Extern, Linker, Module, Store};
    let engine = Engine::default();
    let module = Module::new(&engine, bytes).map_err(|e| format!("wasmi rejected: {e}"))?;
    let mut store = Store::new(&engine, ());
    let linker = <Linker<()>>::new(&engine);
    let instance = match linker.instantiate_and_start(&mut store, &module) {
        Ok(i) => i,
        Err(_) => {
            return Ok(Run {
                calls: vec![("<instantiate>".into(), Outcome::Trap("instantiation"))],
                memory: vec![],
                globals: vec![],
            });
        }
    };
    let mut calls = Vec::new();
    let mut exports: Vec<(String, Extern)> = instance
        .exports(&store)
        .map(|e| (e.name().to_string(), e.into_extern()))
        .collect();
    exports.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, export) in &exports {
        let Extern::Func(func) = export else { continue };
        let ty = func.ty(&store);
        let params: Vec<wasmi::Val> = ty.params().iter().map(default_wasmi).collect();
        let mut results: Vec<wasmi::Val> = ty.results().iter().map(default_wasmi).collect();
        let outcome = match func.call(&mut store, &params, &mut results) {
            Ok(()) => Outcome::Values(results.iter().map(val_bits_wasmi).collect()),
            Err(e) => Outcome::Trap(
                e.as_trap_code()
                    .map_or_else(|| wasmi_error_kind(&e), trap_kind_wasmi),
            ),
        };
        let stop = outcome == Outcome::Trap("stack");
        calls.push((name.clone(), outcome));
        if stop {
            break;
        }
    }
    let mut memory = Vec::new();
    let mut globals = Vec::new();
    for (name, export) in &exports {
        match export {
            Extern::Memory(m) => memory = m.data(&store).to_vec(),
            Extern::Global(g) => globals.push((name.clone(), val_bits_wasmi(&g.get(&store)))),
            _ => {}
        }
    }
    Ok(Run {
        calls,
        memory,
        globals,
    })
}

/// Builds a module from fuzzer bytes and compares both runtimes on it.
pub fn check(data: &[u8]) -> Result<Result<(), Skip>, String> {
    let mut u = Unstructured::new(data);
    let Ok(mut module) = wasm_smith::Module::new(config(), &mut u) else {
        return Ok(Err(Skip::NoModule));
    };
    if module.ensure_termination(1000).is_err() {
        return Ok(Err(Skip::NoModule));
    }
    let bytes = module.to_bytes();
    compare(&bytes)
}

/// Compares both runtimes on a module binary.
pub fn compare(bytes: &[u8]) -> Result<Result<(), Skip>, String> {
    let ours = run_wazerox(bytes)?;
    let reference = run_wasmi(bytes)?;
    let exhausted = |r: &Run| r.calls.iter().any(|(_, o)| *o == Outcome::Trap("stack"));
    if exhausted(&ours) || exhausted(&reference) {
        return Ok(Err(Skip::StackExhausted));
    }
    if ours.calls != reference.calls {
        return Err(format!(
            "calls differ:\n  wazerox: {:?}\n  wasmi:   {:?}",
            ours.calls, reference.calls
        ));
    }
    if ours.memory != reference.memory {
        let at = ours
            .memory
            .iter()
            .zip(&reference.memory)
            .position(|(a, b)| a != b);
        return Err(format!(
            "final memory differs (first at {at:?}, sizes {} vs {})",
            ours.memory.len(),
            reference.memory.len()
        ));
    }
    if ours.globals != reference.globals {
        return Err(format!(
            "globals differ:\n  wazerox: {:?}\n  wasmi:   {:?}",
            ours.globals, reference.globals
        ));
    }
    Ok(Ok(()))
}
