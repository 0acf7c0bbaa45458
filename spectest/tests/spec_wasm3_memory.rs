//! WebAssembly 3.0 memories: the multi-memory, memory64 (with table64) and
//! custom-page-sizes proposals' testsuites must pass completely, and so must the
//! whole `wasm-v3` directory.

use wazerox_spectest::{WastReport, check_suite, run_files_parallel, suite_files};

fn passes_completely(suite: &str, at_least: usize) {
    let total = check_suite(suite, None);
    assert_eq!(total.failed, 0, "every {suite} assertion passes");
    assert!(
        total.passed >= at_least,
        "all {suite} assertions ran ({} passed)",
        total.passed
    );
}

#[test]
fn multi_memory_proposal_passes_completely() {
    passes_completely("proposals/multi-memory", 912);
}

#[test]
fn memory64_proposal_passes_completely() {
    passes_completely("proposals/memory64", 1606);
}

#[test]
fn custom_page_sizes_proposal_passes_completely() {
    passes_completely("proposals/custom-page-sizes", 207);
}

#[test]
fn wasm_v3_passes_completely() {
    let files = suite_files("wasm-v3").expect("the suite exists");
    assert!(files.len() >= 97, "{} files", files.len());
    let mut total = WastReport::default();
    for (name, report) in run_files_parallel(&files) {
        assert_eq!(report.failures, Vec::<String>::new(), "{name}");
        total.merge(&report);
    }
    assert!(total.passed >= 21_228, "{} passed", total.passed);
}
