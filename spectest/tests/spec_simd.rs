//! The SIMD testsuite (`proposals/simd`, every `v128` instruction of Wasm 2.0) must
//! pass completely, with SIMD enabled by default, also unoptimized and with explicit
//! bounds checks; v128 values must cross every kind of edge between operators.

use wazerox::Config;
use wazerox_spectest::{WastReport, config_for, run_wast_with, suite_files};

/// Runs the files of `proposals/simd` whose name contains one of `only` (all if
/// empty) with `adjust` applied to their configuration, and returns the total.
fn run_simd_suite(only: &'static [&'static str], adjust: fn(&mut Config)) -> WastReport {
    let files = suite_files("proposals/simd").expect("the simd suite exists");
    // A large stack, as `wazerox wast` gives every script.
    std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(move || {
            let mut total = WastReport::default();
            for (name, contents) in &files {
                if !only.is_empty() && !only.iter().any(|o| name.contains(o)) {
                    continue;
                }
                let mut config = config_for(name);
                adjust(&mut config);
                let report = run_wast_with(name, contents, &config);
                if report.failed > 0 {
                    println!("{name}: {} passed, {} failed", report.passed, report.failed);
                    for failure in report.failures.iter().take(20) {
                        println!("    {failure}");
                    }
                }
                total.merge(&report);
            }
            total
        })
        .expect("spawn the suite's thread")
        .join()
        .expect("the runner does not panic")
}

#[test]
fn simd_proposal_passes_completely() {
    let total = run_simd_suite(&[], |_| {});
    println!(
        "proposals/simd: {} passed, {} failed",
        total.passed, total.failed
    );
    assert_eq!(total.failed, 0, "every simd assertion passes");
    assert!(
        total.passed >= 25_000,
        "all assertions ran ({} passed)",
        total.passed
    );
}

#[test]
fn simd_proposal_passes_unoptimized() {
    let total = run_simd_suite(&[], |config| {
        config.cranelift_opt_level("none");
    });
    assert_eq!(total.failed, 0, "every simd assertion passes");
    assert!(total.passed >= 25_000, "{} passed", total.passed);
}

#[test]
fn simd_memory_accesses_pass_with_explicit_bounds_checks() {
    let total = run_simd_suite(&["load", "store", "address", "align", "memory"], |config| {
        config.explicit_bounds_checks(true);
    });
    assert_eq!(total.failed, 0, "every simd memory assertion passes");
    assert!(total.passed >= 700, "{} passed", total.passed);
}

/// Params on the stack, results beyond the return registers, block params and results
/// produced by operators of different lane types, `br_table`, `select`, globals,
/// indirect calls, zeroed locals.
const V128_EDGES: &str = r#"
(module
  (global $g (mut v128) (v128.const i64x2 0x0102030405060708 0x090a0b0c0d0e0f10))
  (table 2 funcref)
  (elem (i32.const 0) $pick $sum20)
  (type $pick_t (func (param v128 v128 i32) (result v128)))

  ;; Twenty v128 params: most of them are passed on the stack.
  (func $sum20 (param v128 v128 v128 v128 v128 v128 v128 v128 v128 v128
                      v128 v128 v128 v128 v128 v128 v128 v128 v128 v128) (result v128)
    (local $acc v128)
    (local.set $acc (i32x4.add (local.get 0) (local.get 1)))
    (local.set $acc (i32x4.add (local.get $acc) (local.get 2)))
    (local.set $acc (i32x4.add (local.get $acc) (local.get 3)))
    (local.set $acc (i32x4.add (local.get $acc) (local.get 4)))
    (local.set $acc (i32x4.add (local.get $acc) (local.get 5)))
    (local.set $acc (i32x4.add (local.get $acc) (local.get 6)))
    (local.set $acc (i32x4.add (local.get $acc) (local.get 7)))
    (local.set $acc (i32x4.add (local.get $acc) (local.get 8)))
    (local.set $acc (i32x4.add (local.get $acc) (local.get 9)))
    (local.set $acc (i32x4.add (local.get $acc) (local.get 10)))
    (local.set $acc (i32x4.add (local.get $acc) (local.get 11)))
    (local.set $acc (i32x4.add (local.get $acc) (local.get 12)))
    (local.set $acc (i32x4.add (local.get $acc) (local.get 13)))
    (local.set $acc (i32x4.add (local.get $acc) (local.get 14)))
    (local.set $acc (i32x4.add (local.get $acc) (local.get 15)))
    (local.set $acc (i32x4.add (local.get $acc) (local.get 16)))
    (local.set $acc (i32x4.add (local.get $acc) (local.get 17)))
    (local.set $acc (i32x4.add (local.get $acc) (local.get 18)))
    (i32x4.add (local.get $acc) (local.get 19)))
  (func (export "many-params") (result v128)
    (call $sum20
      (v128.const i32x4 1 100 0 -1) (v128.const i32x4 2 100 0 -1) (v128.const i32x4 3 100 0 -1)
      (v128.const i32x4 4 100 0 -1) (v128.const i32x4 5 100 0 -1) (v128.const i32x4 6 100 0 -1)
      (v128.const i32x4 7 100 0 -1) (v128.const i32x4 8 100 0 -1) (v128.const i32x4 9 100 0 -1)
      (v128.const i32x4 10 100 0 -1) (v128.const i32x4 11 100 0 -1) (v128.const i32x4 12 100 0 -1)
      (v128.const i32x4 13 100 0 -1) (v128.const i32x4 14 100 0 -1) (v128.const i32x4 15 100 0 -1)
      (v128.const i32x4 16 100 0 -1) (v128.const i32x4 17 100 0 -1) (v128.const i32x4 18 100 0 -1)
      (v128.const i32x4 19 100 0 -1) (v128.const i32x4 20 100 0 -1)))

  ;; More v128 results than return registers, mixed with scalars.
  (func $spread (param v128) (result v128 i32 v128 f64 v128 v128 v128)
    (i32x4.splat (i32x4.extract_lane 0 (local.get 0)))
    (i32x4.extract_lane 1 (local.get 0))
    (i32x4.splat (i32x4.extract_lane 1 (local.get 0)))
    (f64.const 2.5)
    (i32x4.splat (i32x4.extract_lane 2 (local.get 0)))
    (i32x4.splat (i32x4.extract_lane 3 (local.get 0)))
    (local.get 0))
  (func (export "many-results") (result v128 i32 v128 f64 v128 v128 v128)
    (call $spread (v128.const i32x4 1 2 3 4)))

  ;; Block params and results produced by operators of different lane types.
  (func (export "if-mixed") (param i32) (result v128)
    (if (result v128) (local.get 0)
      (then (f32x4.splat (f32.const 1)))
      (else (i16x8.splat (i32.const 2)))))
  (func (export "loop-carried") (param $n i32) (result v128)
    (v128.const i32x4 0 0 0 0)
    (loop $l (param v128) (result v128)
      (f32x4.add (f32x4.splat (f32.const 1)))
      (i32x4.add (v128.const i32x4 0 0 0 1))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
  (func (export "br-table") (param i32) (result v128)
    (block $a (result v128)
      (block $b (result v128)
        (block $c (result v128)
          (i64x2.splat (i64.const -7))
          (br_table $a $b $c (local.get 0)))
        (f64x2.neg)
        (br $a))
      (i8x16.abs)))
  (func (export "select") (param i32) (result v128)
    (select (f64x2.splat (f64.const -1)) (i8x16.splat (i32.const -1)) (local.get 0)))

  ;; Globals, indirect calls and locals defaulting to zero.
  (func $pick (param v128 v128 i32) (result v128)
    (select (local.get 0) (local.get 1) (local.get 2)))
  (func (export "global-roundtrip") (result v128)
    (global.set $g (i8x16.add (global.get $g) (i8x16.splat (i32.const 1))))
    (global.get $g))
  (func (export "indirect") (param i32) (result v128)
    (call_indirect (type $pick_t)
      (i16x8.splat (i32.const 3)) (f32x4.splat (f32.const 0.5)) (local.get 0) (i32.const 0)))
  (func (export "zero-local") (result v128) (local v128) (local.get 0))
)

(assert_return (invoke "many-params") (v128.const i32x4 210 2000 0 -20))
(assert_return (invoke "many-results")
  (v128.const i32x4 1 1 1 1) (i32.const 2) (v128.const i32x4 2 2 2 2) (f64.const 2.5)
  (v128.const i32x4 3 3 3 3) (v128.const i32x4 4 4 4 4) (v128.const i32x4 1 2 3 4))
(assert_return (invoke "if-mixed" (i32.const 1)) (v128.const f32x4 1 1 1 1))
(assert_return (invoke "if-mixed" (i32.const 0)) (v128.const i16x8 2 2 2 2 2 2 2 2))
(assert_return (invoke "loop-carried" (i32.const 1)) (v128.const i32x4 0x3f800000 0x3f800000 0x3f800000 0x3f800001))
(assert_return (invoke "br-table" (i32.const 0)) (v128.const i64x2 -7 -7))
(assert_return (invoke "br-table" (i32.const 1)) (v128.const i64x2 0x0101010101010107 0x0101010101010107))
(assert_return (invoke "br-table" (i32.const 2)) (v128.const i64x2 0x7ffffffffffffff9 0x7ffffffffffffff9))
(assert_return (invoke "select" (i32.const 1)) (v128.const f64x2 -1 -1))
(assert_return (invoke "select" (i32.const 0)) (v128.const i8x16 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1))
(assert_return (invoke "global-roundtrip") (v128.const i64x2 0x0203040506070809 0x0a0b0c0d0e0f1011))
(assert_return (invoke "global-roundtrip") (v128.const i64x2 0x030405060708090a 0x0b0c0d0e0f101112))
(assert_return (invoke "indirect" (i32.const 1)) (v128.const i16x8 3 3 3 3 3 3 3 3))
(assert_return (invoke "indirect" (i32.const 0)) (v128.const f32x4 0.5 0.5 0.5 0.5))
(assert_return (invoke "zero-local") (v128.const i64x2 0 0))
"#;

#[test]
fn v128_values_cross_every_edge() {
    let report = run_wast_with("v128_edges.wast", V128_EDGES, &Config::new());
    assert_eq!(report.failures, Vec::<String>::new());
    assert_eq!(report.passed, 16);
}

/// The suite keeps `simd_*` files outside `proposals/simd` too; they must pass as well.
#[test]
fn simd_files_of_other_suites_pass() {
    let mut total = WastReport::default();
    let mut files_run = 0;
    for suite in ["proposals/memory64", "proposals/annotations"] {
        let files = suite_files(suite).expect("the suite exists");
        for (name, contents) in files.iter().filter(|(name, _)| name.contains("/simd_")) {
            let report = run_wast_with(name, contents, &config_for(name));
            assert_eq!(report.failures, Vec::<String>::new(), "{name}");
            total.merge(&report);
            files_run += 1;
        }
    }
    assert_eq!(files_run, 2, "simd_address.wast and simd_lane.wast");
    assert!(total.passed >= 500, "{} passed", total.passed);
}

/// Without SSSE3/SSE4.1 Cranelift falls back to other sequences and to runtime
/// libcalls (`pshufb`, rounding); the whole suite must still pass on the baseline CPU.
#[test]
fn simd_proposal_passes_on_the_baseline_cpu() {
    let total = run_simd_suite(&[], |config| {
        config.cranelift_baseline_cpu(true);
    });
    assert_eq!(total.failed, 0, "every simd assertion passes");
    assert!(total.passed >= 25_000, "{} passed", total.passed);
}
