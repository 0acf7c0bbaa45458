//! Seeded, bounded fuzzing runs for every `cargo test`: failures print the seed, and
//! `WAZEROX_FUZZ_CASES=N` runs more.

use wazerox_fuzz::{SeedBytes, differential, validate};

fn cases(default: u64) -> u64 {
    std::env::var("WAZEROX_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn differential_against_wasmi() {
    let (mut compared, mut skipped_stack, mut no_module) = (0, 0, 0);
    let mut failures = Vec::new();
    for seed in 0..cases(5000) {
        let data = SeedBytes::new(seed).bytes(2048);
        match differential::check(&data) {
            Ok(Ok(())) => compared += 1,
            Ok(Err(differential::Skip::StackExhausted)) => skipped_stack += 1,
            Ok(Err(differential::Skip::NoModule)) => no_module += 1,
            Err(e) => failures.push(format!("seed {seed}: {e}")),
        }
    }
    println!(
        "differential: {compared} compared, {skipped_stack} stack-limited, {no_module} without a module, {} mismatches",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared >= 4000, "most cases compare ({compared})");
}

#[test]
fn validation_agrees_with_wasmparser() {
    let engine = wazerox::Engine::default();
    let mut failures = Vec::new();
    for seed in 0..cases(50_000) {
        let mut bytes = SeedBytes::new(seed ^ 0x5eed).bytes(64 + (seed % 200) as usize);
        // Half the cases start like a module, so they get past the header.
        if seed % 2 == 0 {
            bytes[..8].copy_from_slice(b"\0asm\x01\0\0\0");
        }
        if let Err(e) = validate(&engine, &bytes) {
            failures.push(format!("seed {seed}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
