//! The WebAssembly 2.0 testsuite (every `wasm-v2` file except `simd_*`, which has its
//! own milestone) must pass completely.

#[test]
fn wasm_v2_passes_completely() {
    let total = wazerox_spectest::check_suite("wasm-v2", Some("/simd_"));
    assert_eq!(total.failed, 0, "every wasm-v2 assertion passes");
    assert!(
        total.passed >= 28_000,
        "all assertions ran ({} passed)",
        total.passed
    );
}
