//! Lazy compilation (docs/lazy-compilation.md) is a second configuration of the
//! spec suites: every function compiled on its first call must behave exactly as
//! the eagerly compiled one, through direct calls, `call_indirect`, exports,
//! imports across instances, traps and exceptions.

use wazerox::{CompilationStrategy, Config};
use wazerox_spectest::check_suite_with;

fn lazy(config: &mut Config) {
    config.compilation_strategy(CompilationStrategy::Lazy);
}

/// Lazy compilation's cheap first tier (`CompilationStrategy::LazyFast`).
fn lazy_fast(config: &mut Config) {
    config.compilation_strategy(CompilationStrategy::LazyFast);
}

fn passes_lazily(suite: &str, at_least: usize) {
    passes_with(suite, at_least, lazy);
}

fn passes_with(suite: &str, at_least: usize, configure: fn(&mut Config)) {
    let total = check_suite_with(suite, None, configure);
    assert_eq!(total.failed, 0, "every {suite} assertion passes lazily");
    assert!(
        total.passed >= at_least,
        "all assertions of {suite} ran ({} passed)",
        total.passed
    );
}

#[test]
fn wasm_v2_passes_lazily() {
    passes_lazily("wasm-v2", 28_000);
}

#[test]
fn simd_proposal_passes_lazily() {
    passes_lazily("proposals/simd", 25_000);
}

#[test]
fn threads_proposal_passes_lazily() {
    passes_lazily("proposals/threads", 600);
}

#[test]
fn exceptions_pass_lazily() {
    passes_lazily("proposals/exceptions", 105);
    passes_lazily("legacy-exceptions", 96);
}

#[test]
fn wasm_v2_passes_with_the_fast_tier() {
    passes_with("wasm-v2", 28_000, lazy_fast);
}

#[test]
fn simd_proposal_passes_with_the_fast_tier() {
    passes_with("proposals/simd", 25_000, lazy_fast);
}
