//! Typed function references (`Config::wasm_function_references`): the
//! proposal's suite must pass completely.

#[test]
fn function_references_proposal_passes_completely() {
    let total = wazerox_spectest::check_suite("proposals/function-references", None);
    assert_eq!(
        total.failed, 0,
        "every function-references assertion passes"
    );
    assert!(
        total.passed >= 1874,
        "all assertions ran ({} passed)",
        total.passed
    );
}
