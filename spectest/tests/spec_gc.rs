//! The GC proposal (docs/gc.md), implemented in slices: the files listed in
//! `COMPLETE` must pass completely; the whole suite's pass count must not drop
//! below the last measured one (every failure, unsupported features included,
//! is counted as a failure, never skipped).

use wazerox_spectest::{WastReport, check_suite, run_files_parallel, suite_files};

/// proposals/gc files that pass completely.
const COMPLETE: &[&str] = &[
    "i31.wast",
    "binary-gc.wast",
    "type-subtyping.wast",
    "array_new_data.wast",
    "br_on_cast.wast",
    "br_on_cast_fail.wast",
    "extern.wast",
    "ref_cast.wast",
    "ref_eq.wast",
    "ref_test.wast",
];

#[test]
fn gc_files_of_implemented_parts_pass_completely() {
    let files: Vec<_> = suite_files("proposals/gc")
        .expect("the suite exists")
        .into_iter()
        .filter(|(name, _)| COMPLETE.iter().any(|f| name.ends_with(&format!("/{f}"))))
        .collect();
    assert_eq!(files.len(), COMPLETE.len());
    let mut total = WastReport::default();
    for (name, report) in run_files_parallel(&files) {
        assert_eq!(report.failures, Vec::<String>::new(), "{name}");
        total.merge(&report);
    }
    assert!(
        total.passed >= 204 + 28 + 37 + 37 + 18 + 45 + 89 + 71,
        "{} passed",
        total.passed
    );
}

#[test]
fn gc_proposal_pass_count_does_not_drop() {
    let total = check_suite("proposals/gc", None);
    // Measured: 613 passed, 171 failed (784 in all).
    assert!(total.passed >= 613, "{} passed", total.passed);
    assert_eq!(
        total.passed + total.failed,
        784,
        "every assertion is counted"
    );
}
