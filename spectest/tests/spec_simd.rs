//! The SIMD testsuite (`proposals/simd`, every `v128` instruction of Wasm 2.0) must
//! pass completely, with SIMD enabled by default.

use wazerox_spectest::{WastReport, config_for, run_wast_with, suite_files};

/// Runs one file of the suite with the features it assumes: `simd_memory-multi.wast`
/// (taken from wasmtime's multi-memory tests) also needs multiple memories.
fn run_simd_file(name: &str, contents: &str) -> WastReport {
    let mut config = config_for(name);
    if name.ends_with("/simd_memory-multi.wast") {
        config.wasm_multi_memory(true);
    }
    run_wast_with(name, contents, &config)
}

#[test]
fn simd_proposal_passes_completely() {
    let files = suite_files("proposals/simd").expect("the simd suite exists");
    // A large stack, as `wazerox wast` gives every script.
    let total = std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(move || {
            let mut total = WastReport::default();
            for (name, contents) in &files {
                let report = run_simd_file(name, contents);
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
        .expect("the runner does not panic");
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
