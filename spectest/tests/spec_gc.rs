//! The GC proposal (docs/gc.md): every file of proposals/gc passes completely
//! (every failure, unsupported features included, would be counted as a
//! failure, never skipped).

use wazerox_spectest::check_suite;

#[test]
fn gc_proposal_passes_completely() {
    let total = check_suite("proposals/gc", None);
    // Measured: 784 passed, 0 failed (784 in all).
    assert_eq!(total.failed, 0, "{} failed", total.failed);
    assert_eq!(
        total.passed + total.failed,
        784,
        "every assertion is counted"
    );
}
