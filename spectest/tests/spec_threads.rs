//! The threads proposal's testsuite (shared memories, atomics, wait/notify) must
//! pass completely.

#[test]
fn threads_proposal_passes_completely() {
    let total = wazerox_spectest::check_suite("proposals/threads", None);
    assert_eq!(total.failed, 0, "every threads assertion passes");
    assert!(
        total.passed >= 600,
        "all assertions ran ({} passed)",
        total.passed
    );
}
