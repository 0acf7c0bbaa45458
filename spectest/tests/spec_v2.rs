//! The WebAssembly 2.0 testsuite (every `wasm-v2` file except `simd_*`, which has its
//! own milestone) must pass completely.

use wazerox_spectest::{WastReport, run_wast_isolated, suite_files};

#[test]
fn wasm_v2_passes_completely() {
    let files: Vec<_> = suite_files("wasm-v2")
        .expect("wasm-v2 suite")
        .into_iter()
        .filter(|(name, _)| !name.contains("/simd_"))
        .collect();
    assert!(
        files.len() >= 80,
        "the suite has its files ({} found)",
        files.len()
    );
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunks: Vec<Vec<(String, &'static str)>> = (0..workers)
        .map(|w| files.iter().skip(w).step_by(workers).cloned().collect())
        .collect();
    let reports: Vec<(String, WastReport)> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|(name, contents)| {
                            let report = run_wast_isolated(&name, contents);
                            (name, report)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut total = WastReport::default();
    for (name, report) in &reports {
        if report.failed > 0 {
            println!("{name}: {} passed, {} failed", report.passed, report.failed);
            for failure in report.failures.iter().take(20) {
                println!("    {failure}");
            }
        }
        total.merge(report);
    }
    println!("wasm-v2: {} passed, {} failed", total.passed, total.failed);
    assert_eq!(total.failed, 0, "every wasm-v2 assertion passes");
    assert!(
        total.passed >= 28_000,
        "all assertions ran ({} passed)",
        total.passed
    );
}
