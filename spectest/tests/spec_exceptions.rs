//! Exception handling must pass completely: the proposal's suite (exnref
//! encoding) and the legacy encoding's suite (`try`/`catch`/`delegate`/`rethrow`).

#[test]
fn exceptions_proposal_passes_completely() {
    let total = wazerox_spectest::check_suite("proposals/exceptions", None);
    assert_eq!(total.failed, 0, "every exceptions assertion passes");
    assert!(
        total.passed >= 105,
        "all assertions ran ({} passed)",
        total.passed
    );
}

#[test]
fn legacy_exceptions_pass_completely() {
    let total = wazerox_spectest::check_suite("legacy-exceptions", None);
    assert_eq!(total.failed, 0, "every legacy exception assertion passes");
    assert!(
        total.passed >= 96,
        "all assertions ran ({} passed)",
        total.passed
    );
}
