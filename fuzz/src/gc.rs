//! The GC campaign's modules: the exceptions campaign's (differential features,
//! exception handling, tags exported) with wasm-smith's `gc_enabled` on: recursion
//! groups, subtypes, typed function references, `i31`, structs, arrays, casts, and
//! results and globals of any-hierarchy types. Like exceptions, these run against
//! the `wasmtime` crate (`oracle run gc` in `benches/src/bin/oracle.rs`), wazerox
//! on [`engine`], with `Config::wasm_gc`. Reports show any-hierarchy values as
//! null, an `i31` with its exact payload, a struct, an array or an internalized
//! externref ([`crate::report::AnyValue`]): object identities differ between
//! runtimes, those do not.

use crate::differential::Case;

/// The exceptions configuration with the GC proposal on (wasm-smith's `gc_enabled`
/// needs reference types, which the differential configuration has).
pub fn config() -> wasm_smith::Config {
    wasm_smith::Config {
        gc_enabled: true,
        reference_types_enabled: true,
        // wazerox rejects GC references in exception payloads (an unsupported
        // feature, docs/gc.md): with exceptions on, ~3 % of the modules would be
        // rejected. Exceptions have their own campaign.
        exceptions_enabled: false,
        ..crate::exceptions::config()
    }
}

/// A case from fuzzer bytes, as [`crate::exceptions::generate`] builds it.
pub fn generate(data: &[u8]) -> Option<Case> {
    crate::exceptions::generate_with(config(), data)
}

/// The wazerox engine of a case: [`crate::differential::engine_for`]'s, with GC.
pub fn engine(args_seed: u64) -> wazerox::Engine {
    crate::differential::engine_with(args_seed, true)
}

/// Runs a case's canonical call sequence in wazerox.
pub fn run_wazerox(wasm: &[u8], args_seed: u64) -> Result<crate::report::Report, String> {
    crate::differential::run_wazerox_on(&engine(args_seed), wasm, args_seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{AnyValue, Value};

    /// The generator makes GC modules that validate, and wazerox runs some to
    /// the end.
    #[test]
    fn generated_modules_use_gc_and_run() {
        let (mut with_gc, mut ran) = (0, 0);
        for seed in 0..40 {
            let data = crate::seeded_input(crate::Target::Differential, seed);
            let Some(case) = generate(&data) else {
                continue;
            };
            wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
                .validate_all(&case.wasm)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            let names = crate::features::features(&case.wasm).unwrap();
            if ["struct", "array", "i31", "cast"]
                .iter()
                .any(|w| names.contains(w))
            {
                with_gc += 1;
            }
            if run_wazerox(&case.wasm, case.args_seed)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"))
                .calls
                .is_some()
            {
                ran += 1;
            }
        }
        assert!(with_gc > 10, "{with_gc} of 40 modules use GC");
        assert!(ran > 10, "{ran} of 40 modules instantiated");
    }

    /// Any-hierarchy results are reported exactly: an i31's payload, a struct,
    /// null.
    #[test]
    fn any_results_are_reported_by_what_they_are() {
        let wasm = wat::parse_str(
            r#"(module
                (type $s (struct (field i32)))
                (func (export "a") (result anyref) (ref.i31 (i32.const -5)))
                (func (export "b") (result (ref null $s)) (struct.new $s (i32.const 1)))
                (func (export "c") (result eqref) (ref.null eq))
                (global (export "g") i31ref (ref.i31 (i32.const 7))))"#,
        )
        .unwrap();
        let report = run_wazerox(&wasm, 0).unwrap();
        let results: Vec<_> = report
            .calls
            .unwrap()
            .into_iter()
            .map(|c| c.outcome)
            .collect();
        use crate::report::Outcome::Values;
        assert_eq!(
            results,
            vec![
                Values(vec![Value::AnyRef(AnyValue::I31(0x7fff_fffb))]),
                Values(vec![Value::AnyRef(AnyValue::Struct)]),
                Values(vec![Value::AnyRef(AnyValue::Null)]),
            ]
        );
        assert_eq!(
            report.globals,
            vec![("g".to_string(), Value::AnyRef(AnyValue::I31(7)))]
        );
    }

    /// An array past the GC heap's cap in a constant expression fails
    /// instantiation as "GC heap exhausted", and the comparison skips such a
    /// case instead of calling it a mismatch (wasmtime's cap differs).
    #[test]
    fn a_huge_array_at_instantiation_is_gc_heap_limited() {
        use crate::differential::{Skip, compare_reports};
        use crate::report::Report;
        let wasm = wat::parse_str(
            r#"(module
                (type $a (array i64))
                (global (export "g") (ref $a) (array.new_default $a (i32.const 200000000))))"#,
        )
        .unwrap();
        let ours = run_wazerox(&wasm, 0).unwrap();
        assert!(ours.calls.is_none() && ours.gc_heap_exhausted());
        let reference = Report {
            calls: Some(Vec::new()),
            ..Report::default()
        };
        assert_eq!(
            compare_reports(&ours, &reference, "wasmtime", 0),
            Ok(Err(Skip::GcHeapExhausted))
        );
        // Any other instantiation failure on one side only is a mismatch.
        assert!(
            compare_reports(&Report::instantiation_failed(), &reference, "wasmtime", 0).is_err()
        );
    }
}
