//! Instantiate-and-run: arbitrary `wasm-smith` modules (any configuration the
//! generator can be given, sometimes with invalid function bodies or a corrupted
//! byte) are compiled, instantiated with host definitions for every import, and every
//! export is called under a small fuel budget, a small native stack and small memory
//! maxima. The host must not crash or hang, and every failure must be a typed error
//! of the stage that produced it. The resource-limit oracle ([`crate::resources`])
//! adds a store limit on memories and tables, a wall-clock timeout, and fails any
//! case whose host memory or wall time exceeds its bound.

use crate::differential::{kind_ours, val_ours, value_ours};
use crate::report::arguments;
use crate::resources;
use arbitrary::{Arbitrary, Unstructured};
use std::cell::RefCell;
use std::collections::HashMap;
use wazerox::{
    Engine, ErrorKind, Extern, ExternType, Func, Global, Linker, Memory, Module, Ref, SharedMemory,
    Store, StoreLimitsBuilder, Table, Val,
};

/// How far a case got, for the smoke run's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// Rejected at compile time, with a decode/validation/unsupported error.
    Rejected,
    /// Compiled; instantiation failed with a typed error.
    NotInstantiated,
    /// Instantiated and every export called.
    Ran { calls: usize, traps: usize },
}

/// Engine settings a case chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Arbitrary)]
pub struct EngineKnobs {
    /// Index into [`STACK_LIMITS`].
    pub stack: u8,
    pub unoptimized: bool,
    pub explicit_bounds_checks: bool,
    pub fuel: bool,
    /// Epoch checks, so that interrupting a store stops its running code.
    pub epochs: bool,
    /// The relaxed SIMD lowering that gives wasmi's (the spec's deterministic)
    /// results, instead of the CPU's.
    pub relaxed_simd_deterministic: bool,
    /// The GC proposal (`Config::wasm_gc`; the GC campaign's modules). Never
    /// drawn from the input: the instantiate target's modules have no GC.
    #[arbitrary(default)]
    pub gc: bool,
}

/// Native stack limits tried: small, so deep recursion hits the guard quickly (the
/// last one, the default, is for the differential target).
pub const STACK_LIMITS: &[usize] = &[16 << 10, 32 << 10, 64 << 10, 128 << 10, 512 << 10];

/// The GC heap's cap in fuzzing engines (the GC campaign's oracle caps
/// wasmtime's memories, GC heap included, at the same size).
pub const GC_HEAP_LIMIT: usize = 16 << 20;

/// Index of the default stack limit in [`STACK_LIMITS`].
pub const DEFAULT_STACK: u8 = 4;

thread_local! {
    static ENGINES: RefCell<HashMap<EngineKnobs, Engine>> = RefCell::new(HashMap::new());
}

/// An engine with fuel for these knobs, shared by the cases of a thread.
pub fn engine(knobs: EngineKnobs) -> Engine {
    ENGINES.with(|engines| {
        engines
            .borrow_mut()
            .entry(knobs)
            .or_insert_with(|| {
                let mut config = wazerox::Config::new();
                config
                    .consume_fuel(knobs.fuel)
                    .epoch_interruption(knobs.epochs)
                    .max_wasm_stack(STACK_LIMITS[knobs.stack as usize % STACK_LIMITS.len()])
                    .explicit_bounds_checks(knobs.explicit_bounds_checks)
                    .relaxed_simd_deterministic(knobs.relaxed_simd_deterministic)
                    .wasm_gc(knobs.gc)
                    // Small, so that huge arrays (wasm-smith's lengths are any
                    // i32) fail fast instead of touching gigabytes.
                    .gc_heap_limit(GC_HEAP_LIMIT)
                    .cranelift_opt_level(if knobs.unoptimized { "none" } else { "speed" })
                    // Cases are small; threads would only contend with the fuzzer.
                    .compile_threads(1);
                Engine::new(&config).expect("fuzzing configurations are valid")
            })
            .clone()
    })
}

/// A wasm-smith configuration chosen by the input, clamped to tiny resources and to
/// proposals wazerox's default configuration enables (others only waste cases: the
/// validation target covers their rejection).
pub fn config(u: &mut Unstructured) -> arbitrary::Result<wasm_smith::Config> {
    let mut c: wasm_smith::Config = u.arbitrary()?;
    c.gc_enabled = false;
    c.exceptions_enabled = false;
    c.shared_everything_threads_enabled = false;
    c.custom_descriptors_enabled = false;
    // `memory.atomic.wait` on a shared memory blocks until notified, which fuel does
    // not interrupt: a legitimate hang, not a bug, so no shared memories here.
    c.threads_enabled = false;
    c.max_memories = c.max_memories.min(3);
    c.max_tables = c.max_tables.min(4);
    c.max_memory32_bytes = c.max_memory32_bytes.min(16 << 16);
    c.max_memory64_bytes = c.max_memory64_bytes.min(16 << 16);
    c.memory_max_size_required = true;
    c.max_table_elements = c.max_table_elements.min(1000);
    c.table_max_size_required = true;
    c.max_funcs = c.max_funcs.min(40);
    c.max_instructions = c.max_instructions.min(500);
    c.max_imports = c.max_imports.min(8);
    c.max_exports = c.max_exports.min(40);
    c.max_globals = c.max_globals.min(40);
    c.max_types = c.max_types.min(40);
    c.max_data_segments = c.max_data_segments.min(20);
    c.max_element_segments = c.max_element_segments.min(20);
    c.max_elements = c.max_elements.min(100);
    // At least a few functions to call (random configurations often allow none).
    c.min_funcs = 3;
    c.max_funcs = c.max_funcs.max(3);
    c.export_everything = u.ratio(7, 8)?;
    c.allow_invalid_funcs = u.ratio(1, 8)?;
    Ok(c)
}

/// Defines every import of `module` in a fresh linker: functions return zeros (or
/// fail, when `fail_host_calls`), memories, tables and globals are created with the
/// import's type. An import that cannot be created is left undefined, so
/// instantiation fails with a link error.
pub fn define_imports(store: &mut Store<()>, module: &Module, fail_host_calls: bool) -> Linker<()> {
    let mut linker = Linker::new(module.engine());
    for import in module.imports() {
        let item: Option<Extern> = match import.ty() {
            ExternType::Func(ty) => {
                let func = Func::new(&mut *store, ty, move |_, _, results| {
                    if fail_host_calls {
                        return Err(wazerox::Error::msg("host function failed on purpose"));
                    }
                    for r in results.iter_mut() {
                        *r = Val::default_for(r.ty());
                    }
                    Ok(())
                });
                Some(func.into())
            }
            ExternType::Memory(ty) if ty.is_shared() => SharedMemory::new(module.engine(), ty)
                .ok()
                .map(Extern::from),
            ExternType::Memory(ty) => Memory::new(&mut *store, ty).ok().map(Extern::from),
            ExternType::Table(ty) => {
                let init = match ty.element() {
                    wazerox::ValType::EXTERNREF => Ref::Extern(None),
                    _ => Ref::Func(None),
                };
                Table::new(&mut *store, ty, init).ok().map(Extern::from)
            }
            ExternType::Global(ty) => {
                let value = Val::default_for(ty.content());
                Global::new(&mut *store, ty, value).ok().map(Extern::from)
            }
            ExternType::Tag(ty) => wazerox::Tag::new(&mut *store, &ty).ok().map(Extern::from),
        };
        if let Some(item) = item {
            linker
                .define(&mut *store, import.module(), import.name(), item)
                .expect("defining in a linker cannot fail");
        }
    }
    linker
}

/// Checks that a failed call is a trap (with a code) or the host error we planted.
pub fn check_call_error(e: &wazerox::Error) -> Result<(), String> {
    match e.kind() {
        ErrorKind::Trap if e.as_trap().is_some() => Ok(()),
        ErrorKind::Host if e.to_string().contains("failed on purpose") => Ok(()),
        kind => Err(format!("call failed with {kind:?} (not a trap): {e}")),
    }
}

/// Runs one case from fuzzer bytes. `Err` describes a violated expectation.
pub fn check(data: &[u8]) -> Result<Option<Reached>, String> {
    let mut u = Unstructured::new(data);
    let Ok(mut knobs) = u.arbitrary::<EngineKnobs>() else {
        return Ok(None);
    };
    // Fuel is what keeps these cases from running forever, the timeout what stops
    // them anyway; the stack stays small.
    knobs.fuel = true;
    knobs.epochs = true;
    knobs.stack %= DEFAULT_STACK;
    let (Ok(fuel), Ok(args_seed), Ok(fail_host_calls), Ok(corrupt)) = (
        u.int_in_range(0..=20_000u64),
        u.arbitrary::<u64>(),
        u.ratio(1, 4),
        u.arbitrary::<Option<(u16, u8)>>(),
    ) else {
        return Ok(None);
    };
    let Ok(config) = config(&mut u) else {
        return Ok(None);
    };
    let invalid_funcs = config.allow_invalid_funcs;
    let Ok(module) = wasm_smith::Module::new(config, &mut u) else {
        return Ok(None);
    };
    let mut wasm = module.to_bytes();
    // One corrupted byte in one case of sixteen-or-so: decoding must fail cleanly.
    let corrupted = match corrupt {
        Some((at, byte)) if at.is_multiple_of(16) && !wasm.is_empty() => {
            let i = (at as usize / 16) % wasm.len();
            wasm[i] ^= byte | 1;
            true
        }
        _ => false,
    };
    run(
        &engine(knobs),
        &wasm,
        fuel,
        args_seed,
        fail_host_calls,
        !invalid_funcs && !corrupted,
    )
    .map(Some)
}

/// Compiles, instantiates and calls every export of `wasm` under the limits of
/// [`crate::resources`], then checks the case's host memory and wall time.
/// `expect_valid`: the generator promised a valid module, so a rejection wasmparser
/// does not share is a bug.
pub fn run(
    engine: &Engine,
    wasm: &[u8],
    fuel: u64,
    args_seed: u64,
    fail_host_calls: bool,
    expect_valid: bool,
) -> Result<Reached, String> {
    let started = std::time::Instant::now();
    let probe = resources::RssProbe::start();
    let reached = run_limited(engine, wasm, fuel, args_seed, fail_host_calls, expect_valid)?;
    resources::check_case(probe.as_ref(), started)?;
    Ok(reached)
}

fn run_limited(
    engine: &Engine,
    wasm: &[u8],
    fuel: u64,
    args_seed: u64,
    fail_host_calls: bool,
    expect_valid: bool,
) -> Result<Reached, String> {
    let module = match Module::new(engine, wasm) {
        Ok(m) => m,
        Err(e) => {
            if !matches!(
                e.kind(),
                ErrorKind::Decode | ErrorKind::Validation | ErrorKind::Unsupported
            ) {
                return Err(format!("compilation failed with {:?}: {e}", e.kind()));
            }
            let reference = wasmparser::Validator::new_with_features(crate::validate::features())
                .validate_all(wasm);
            if expect_valid && reference.is_ok() {
                return Err(format!("valid module rejected ({:?}): {e}", e.kind()));
            }
            return Ok(Reached::Rejected);
        }
    };
    let mut store = Store::new(engine, ());
    // Before the imports: host-created memories and tables count too.
    store.set_limiter(
        StoreLimitsBuilder::new()
            .memory_size(resources::MEMORY_LIMIT)
            .table_bytes(resources::MEMORY_LIMIT)
            .build(),
    );
    let _deadline = resources::Deadline::arm(store.interrupt_handle(), resources::CASE_TIMEOUT);
    let linker = define_imports(&mut store, &module, fail_host_calls);
    store.set_fuel(fuel).map_err(|e| format!("set_fuel: {e}"))?;
    let instance = match linker.instantiate(&mut store, &module) {
        Ok(i) => i,
        Err(e) => {
            return match e.kind() {
                ErrorKind::Link | ErrorKind::Instantiation => Ok(Reached::NotInstantiated),
                _ => check_call_error(&e)
                    .map(|()| Reached::NotInstantiated)
                    .map_err(|m| format!("instantiation: {m}")),
            };
        }
    };
    let exports = instance.exports(&mut store);
    let (mut calls, mut traps) = (0, 0);
    for (name, export) in &exports {
        let Extern::Func(func) = export else { continue };
        let ty = func.ty(&store);
        let kinds: Vec<_> = ty.params().iter().map(|t| kind_ours(*t)).collect();
        let params: Vec<Val> = arguments(args_seed, calls, &kinds)
            .into_iter()
            .map(val_ours)
            .collect();
        let mut results: Vec<Val> = ty.results().iter().map(|t| Val::default_for(*t)).collect();
        store.set_fuel(fuel).map_err(|e| format!("set_fuel: {e}"))?;
        calls += 1;
        match func.call(&mut store, &params, &mut results) {
            Ok(()) => {
                for (value, expected) in results.iter().zip(ty.results()) {
                    if value.ty() != *expected {
                        return Err(format!("export {name} returned {value:?}, type {expected}"));
                    }
                    // Reading every result exercises the conversions of references.
                    let _ = value_ours(&store, value);
                }
            }
            Err(e) => {
                traps += 1;
                check_call_error(&e).map_err(|m| format!("export {name}: {m}"))?;
            }
        }
        let left = store.get_fuel().map_err(|e| format!("get_fuel: {e}"))?;
        if left > fuel {
            return Err(format!("fuel grew from {fuel} to {left} in export {name}"));
        }
    }
    for (name, export) in &exports {
        if let Extern::Memory(m) = export {
            let (pages, bytes) = (m.size(&store), m.data_size(&store));
            let page_size = m.ty(&store).page_size();
            if pages * page_size != bytes as u64 || m.data(&store).len() != bytes {
                return Err(format!("memory {name}: {pages} pages but {bytes} bytes"));
            }
        }
    }
    if std::env::var_os("WAZEROX_FUZZ_DEBUG").is_some() {
        eprintln!("{} bytes, {calls} calls, {traps} traps", wasm.len());
    }
    Ok(Reached::Ran { calls, traps })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited_engine() -> Engine {
        engine(EngineKnobs {
            stack: 1,
            unoptimized: false,
            explicit_bounds_checks: false,
            fuel: true,
            epochs: true,
            relaxed_simd_deterministic: false,
            gc: false,
        })
    }

    /// A wait with no timeout consumes no fuel and would block forever: the case's
    /// deadline interrupts it, and the case ends as a trap within its wall limit.
    #[test]
    fn the_timeout_ends_a_blocking_wait() {
        let _alone = resources::measuring_alone();
        let wasm = wat::parse_str(
            r#"(module (memory 1 1 shared)
                (func (export "block") (result i32)
                  (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1))))"#,
        )
        .unwrap();
        let started = std::time::Instant::now();
        let reached = run(&limited_engine(), &wasm, 1000, 0, false, true).unwrap();
        assert_eq!(reached, Reached::Ran { calls: 1, traps: 1 });
        assert!(started.elapsed() >= resources::CASE_TIMEOUT);
        assert!(started.elapsed() < resources::case_wall_limit());
    }

    /// Memories and tables beyond the case's limit are refused at instantiation.
    #[test]
    fn the_store_limit_refuses_large_memories_and_tables() {
        let _alone = resources::measuring_alone();
        for wat in [
            "(module (memory 13))",
            "(module (table 100000 funcref))",
            r#"(module (import "m" "t" (table 100000 funcref)))"#,
        ] {
            let wasm = wat::parse_str(wat).unwrap();
            let reached = run(&limited_engine(), &wasm, 1000, 0, false, true).unwrap();
            assert_eq!(reached, Reached::NotInstantiated, "{wat}");
        }
        let fits = wat::parse_str("(module (memory 12) (table 1000 funcref))").unwrap();
        let reached = run(&limited_engine(), &fits, 1000, 0, false, true).unwrap();
        assert_eq!(reached, Reached::Ran { calls: 0, traps: 0 });
    }
}
