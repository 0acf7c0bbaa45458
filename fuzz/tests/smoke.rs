//! Seeded, bounded runs of every fuzzing target for every `cargo test`: failures
//! print the seed (rerun it with `wazerox-fuzz repro TARGET SEED`), and
//! `WAZEROX_FUZZ_CASES=N` scales every target's count by N/5000.

use std::collections::BTreeMap;
use wazerox_fuzz::{Target, run_one, seeded_input};

fn cases(default: u64) -> u64 {
    match std::env::var("WAZEROX_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(n) => (default * n / 5000).max(1),
        None => default,
    }
}

fn smoke(target: Target, count: u64) -> BTreeMap<&'static str, u64> {
    let mut labels = BTreeMap::new();
    let mut failures = Vec::new();
    for seed in 0..cases(count) {
        match run_one(target, &seeded_input(target, seed)) {
            Ok(label) => *labels.entry(label).or_insert(0) += 1,
            Err(e) => failures.push(format!("{} seed {seed}: {e}", target.name())),
        }
    }
    println!("{}: {labels:?}, {} failures", target.name(), failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    labels
}

#[test]
fn differential_against_wasmi() {
    let labels = smoke(Target::Differential, 5000);
    let compared = labels.get("compared").copied().unwrap_or(0);
    assert!(compared >= cases(4000), "most cases compare ({labels:?})");
}

#[test]
fn validation_agrees_with_wasmparser() {
    smoke(Target::Validate, 50_000);
}

#[test]
fn instantiate_and_run_under_tiny_limits() {
    let labels = smoke(Target::Instantiate, 2000);
    let ran = labels.get("ran").copied().unwrap_or(0);
    assert!(
        ran >= cases(1000),
        "most cases run their exports ({labels:?})"
    );
}

#[test]
fn api_sequences() {
    let labels = smoke(Target::Api, 1000);
    assert_eq!(labels.get("sequence").copied(), Some(cases(1000)));
}
