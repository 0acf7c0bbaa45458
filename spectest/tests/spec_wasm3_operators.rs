//! The operator half of WebAssembly 3.0 — tail calls, extended constant
//! expressions, relaxed SIMD, wide arithmetic — on by default: their proposal suites
//! and the wasm-v3 files that need nothing else must pass completely.

use wazerox::Config;
use wazerox_spectest::{WastReport, check_suite, config_for, run_wast_with, suite_files};

/// Runs the files of `suite` whose name contains one of `only` (all if empty), with
/// `adjust` applied to each file's configuration; prints failures.
fn run(suite: &str, only: &[&str], adjust: fn(&mut Config)) -> WastReport {
    let files = suite_files(suite).expect("the suite exists");
    let mut total = WastReport::default();
    let mut files_run = 0;
    for (name, contents) in &files {
        if !only.is_empty() && !only.iter().any(|o| name.ends_with(o)) {
            continue;
        }
        let mut config = config_for(name);
        adjust(&mut config);
        let report = run_wast_with(name, contents, &config);
        for failure in report.failures.iter().take(20) {
            println!("    {failure}");
        }
        total.merge(&report);
        files_run += 1;
    }
    assert!(files_run > 0, "no file of {suite} matched {only:?}");
    println!("{suite}: {} passed, {} failed", total.passed, total.failed);
    total
}

/// Runs `f` on a thread with the large stack `wazerox wast` gives every script.
fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the runner does not panic")
}

#[test]
fn tail_call_proposal_passes_completely() {
    let total = check_suite("proposals/tail-call", None);
    assert_eq!(total.failed, 0, "every tail-call assertion passes");
    assert!(total.passed >= 119, "{} passed", total.passed);
}

#[test]
fn tail_call_proposal_passes_unoptimized() {
    let total = on_big_stack(|| {
        run("proposals/tail-call", &[], |config| {
            config.cranelift_opt_level("none");
        })
    });
    assert_eq!(total.failed, 0);
    assert!(total.passed >= 119, "{} passed", total.passed);
}

#[test]
fn extended_const_proposal_passes_completely() {
    let total = check_suite("proposals/extended-const", None);
    assert_eq!(total.failed, 0, "every extended-const assertion passes");
    assert!(total.passed >= 284, "{} passed", total.passed);
}

#[test]
fn wide_arithmetic_proposal_passes_completely() {
    let total = check_suite("proposals/wide-arithmetic", None);
    assert_eq!(total.failed, 0, "every wide-arithmetic assertion passes");
    assert!(total.passed >= 109, "{} passed", total.passed);
}

#[test]
fn relaxed_simd_proposal_passes_completely() {
    let total = check_suite("proposals/relaxed-simd", None);
    assert_eq!(total.failed, 0, "every relaxed-simd assertion passes");
    assert!(total.passed >= 77, "{} passed", total.passed);
}

/// The suite accepts every result the spec allows, so each lowering must pass it:
/// the deterministic one, the native one on a CPU without SSSE3/SSE4.1/FMA (other
/// instructions and libcalls), and both unoptimized.
#[test]
fn relaxed_simd_proposal_passes_with_every_lowering() {
    let adjustments: [fn(&mut Config); 4] = [
        |c| {
            c.relaxed_simd_deterministic(true);
        },
        |c| {
            c.cranelift_baseline_cpu(true);
        },
        |c| {
            c.relaxed_simd_deterministic(true)
                .cranelift_baseline_cpu(true);
        },
        |c| {
            c.cranelift_opt_level("none");
        },
    ];
    for adjust in adjustments {
        let total = run("proposals/relaxed-simd", &[], adjust);
        assert_eq!(total.failed, 0);
        assert!(total.passed >= 77, "{} passed", total.passed);
    }
}

/// Of the wasm-v3 files, these need no proposal beyond this set (the others need
/// function references, GC, exceptions, memory64 or multi-memory).
#[test]
fn wasm_v3_tail_call_files_pass() {
    let total = on_big_stack(|| {
        run(
            "wasm-v3",
            &["/return_call.wast", "/return_call_indirect.wast"],
            |_| {},
        )
    });
    assert_eq!(total.failed, 0);
    assert!(total.passed >= 126, "{} passed", total.passed);
}

/// A module using one proposal, and the switch that refuses that proposal.
type RefusalCase = (&'static str, fn(&mut Config));

/// Turning a proposal off makes modules that use it invalid again.
#[test]
fn each_proposal_can_be_refused() {
    let cases: [RefusalCase; 4] = [
        (r#"(module (func $f (return_call $f)))"#, |c| {
            c.wasm_tail_call(false);
        }),
        (
            r#"(module (global i32 (i32.add (i32.const 1) (i32.const 2))))"#,
            |c| {
                c.wasm_extended_const(false);
            },
        ),
        (
            r#"(module (func (param v128 v128) (result v128)
                 (i8x16.relaxed_swizzle (local.get 0) (local.get 1))))"#,
            |c| {
                c.wasm_relaxed_simd(false);
            },
        ),
        (
            r#"(module (func (param i64 i64) (result i64 i64)
                 (i64.mul_wide_u (local.get 0) (local.get 1))))"#,
            |c| {
                c.wasm_wide_arithmetic(false);
            },
        ),
    ];
    for (wat, refuse) in cases {
        let accepted = wazerox::Module::new(&wazerox::Engine::default(), wat);
        assert!(
            accepted.is_ok(),
            "default engine accepts {wat}: {:?}",
            accepted.err()
        );
        let mut config = Config::new();
        refuse(&mut config);
        let engine = wazerox::Engine::new(&config).unwrap();
        let refused = wazerox::Module::new(&engine, wat).err();
        assert_eq!(
            refused.as_ref().map(|e| e.kind()),
            Some(wazerox::ErrorKind::Validation),
            "{wat}: {refused:?}"
        );
    }
}
