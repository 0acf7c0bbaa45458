//! The seeded-run loop of the long campaigns, shared by `wazerox-fuzz run` and the
//! wasmtime oracle's exceptions campaign (`benches/src/bin/oracle.rs`): one case per
//! seed, panics caught and counted as failures, progress every minute.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Runs `case` for seeds `from..from + count` (or until `budget` has passed),
/// printing `NAME seeds A..B: N execs … {label: count}` every minute and at the
/// end, and each failing seed with its message. Returns the failing seeds.
pub fn run_seeds(
    name: &str,
    from: u64,
    count: u64,
    budget: Option<Duration>,
    mut case: impl FnMut(u64) -> Result<&'static str, String>,
) -> Vec<u64> {
    let start = Instant::now();
    let mut last_progress = start;
    let mut labels: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut seed = from;
    let print = |seed: u64, labels: &BTreeMap<&str, u64>, failures: usize| {
        let execs: u64 = labels.values().sum();
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "{name} seeds {from}..{seed}: {execs} execs in {secs:.0} s ({:.0}/s), {labels:?}, {failures} failures",
            execs as f64 / secs.max(1e-9)
        );
    };
    while seed - from < count && budget.is_none_or(|b| start.elapsed() < b) {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(seed))) {
            Ok(Ok(label)) => *labels.entry(label).or_default() += 1,
            Ok(Err(message)) => {
                eprintln!("seed {seed}: {message}");
                failures.push(seed);
                *labels.entry("FAILED").or_default() += 1;
            }
            Err(_) => {
                eprintln!("seed {seed}: panicked");
                failures.push(seed);
                *labels.entry("PANICKED").or_default() += 1;
            }
        }
        seed += 1;
        if last_progress.elapsed() > Duration::from_secs(60) {
            print(seed, &labels, failures.len());
            last_progress = Instant::now();
        }
    }
    print(seed, &labels, failures.len());
    if !failures.is_empty() {
        let shown = &failures[..failures.len().min(20)];
        eprintln!("{} failing seeds, the first: {shown:?}", failures.len());
    }
    failures
}
