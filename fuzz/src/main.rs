//! `wazerox-fuzz`: long seeded runs of the fuzzing targets without a fuzzing engine,
//! and reproduction of one failing input.
//!
//! ```text
//! wazerox-fuzz run TARGET [--from SEED] [--count N] [--seconds S]
//! wazerox-fuzz repro TARGET (SEED | INPUT-FILE) [--out DIR]
//! wazerox-fuzz compare MODULE.wasm ARGS-SEED
//! wazerox-fuzz corpus TARGET DIR [--count N]
//! wazerox-fuzz features (differential | exceptions | gc) [--from SEED] [--count N]
//! ```
//! TARGET is differential, validate, instantiate or api. `repro` of a differential
//! case writes the module and both runtimes' reports to DIR (default `.`) so they can
//! be diffed with the wasmtime oracle's output (`benches`: `cargo run --release --bin
//! oracle -- MODULE.wasm ARGS-SEED`). `features` counts how many of the modules of
//! seeds SEED.. (default 0, 300 of them) use each tracked feature.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;
use wazerox_fuzz::campaign::run_seeds;
use wazerox_fuzz::{Target, differential, exceptions, features, gc, run_one, seeded_input};

fn usage() -> ExitCode {
    eprintln!(
        "usage:\n  wazerox-fuzz run TARGET [--from SEED] [--count N] [--seconds S]\n  \
         wazerox-fuzz repro TARGET (SEED | INPUT-FILE) [--out DIR]\n  \
         wazerox-fuzz compare MODULE.wasm ARGS-SEED\n  \
         wazerox-fuzz corpus TARGET DIR [--count N]\n  \
         wazerox-fuzz features (differential | exceptions | gc) [--from SEED] [--count N]\n\
         TARGET: differential | validate | instantiate | api"
    );
    ExitCode::from(2)
}

fn option(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let target = args.get(1).and_then(|t| Target::from_name(t));
    match (args.first().map(String::as_str), target) {
        (Some("run"), Some(target)) => run(target, &args),
        (Some("repro"), Some(target)) => match args.get(2) {
            Some(input) => repro(target, input, &option(&args, "--out").unwrap_or(".".into())),
            None => usage(),
        },
        (Some("corpus"), Some(target)) => match args.get(2) {
            Some(dir) => corpus(target, dir, &args),
            None => usage(),
        },
        (Some("features"), _) => feature_counts(&args),
        (Some("compare"), _) => match (args.get(1), args.get(2).and_then(|s| s.parse().ok())) {
            (Some(path), Some(args_seed)) => compare(path, args_seed),
            _ => usage(),
        },
        _ => usage(),
    }
}

fn run(target: Target, args: &[String]) -> ExitCode {
    let from: u64 = option(args, "--from")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let count: u64 = option(args, "--count")
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX);
    let budget = option(args, "--seconds")
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs);
    let failures = run_seeds(target.name(), from, count, budget, |seed| {
        run_one(target, &seeded_input(target, seed))
    });
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn repro(target: Target, input: &str, out: &str) -> ExitCode {
    let (data, stem) = match input.parse::<u64>() {
        Ok(seed) => (seeded_input(target, seed), format!("seed-{seed}")),
        Err(_) => match std::fs::read(input) {
            Ok(data) => (data, "input".to_string()),
            Err(e) => {
                eprintln!("{input}: {e}");
                return ExitCode::from(2);
            }
        },
    };
    if target == Target::Differential {
        let Some(case) = differential::generate(&data) else {
            println!("no module from this input");
            return ExitCode::SUCCESS;
        };
        let path = format!("{out}/{stem}.wasm");
        if let Err(e) = std::fs::write(&path, &case.wasm) {
            eprintln!("{path}: {e}");
            return ExitCode::from(2);
        }
        println!("module: {path}, args seed {}", case.args_seed);
        return report_both(&case.wasm, case.args_seed, Some(&format!("{out}/{stem}")));
    }
    match run_one(target, &data) {
        Ok(label) => {
            println!("{}: {label}", target.name());
            ExitCode::SUCCESS
        }
        Err(message) => {
            println!("{}: FAILED: {message}", target.name());
            ExitCode::FAILURE
        }
    }
}

fn compare(path: &str, args_seed: u64) -> ExitCode {
    match std::fs::read(path) {
        Ok(wasm) => report_both(&wasm, args_seed, None),
        Err(e) => {
            eprintln!("{path}: {e}");
            ExitCode::from(2)
        }
    }
}

/// Prints (and, with a stem, writes to STEM.wazerox.txt / STEM.wasmi.txt) both
/// runtimes' reports in the oracle's format.
fn report_both(wasm: &[u8], args_seed: u64, stem: Option<&str>) -> ExitCode {
    let ours = differential::run_wazerox(wasm, args_seed);
    let reference = differential::run_wasmi(wasm, args_seed);
    for (name, report) in [("wazerox", &ours), ("wasmi", &reference)] {
        let text = match report {
            Ok(r) => r.to_string(),
            Err(e) => format!("rejected: {e}\n"),
        };
        if let Some(stem) = stem {
            let path = format!("{stem}.{name}.txt");
            if let Err(e) = std::fs::write(&path, &text) {
                eprintln!("{path}: {e}");
            }
        }
        println!("--- {name}\n{text}");
    }
    match differential::compare(wasm, args_seed) {
        Ok(Ok(())) => {
            println!("agree");
            ExitCode::SUCCESS
        }
        Ok(Err(skip)) => {
            println!("not compared: {skip:?}");
            ExitCode::SUCCESS
        }
        Err(mismatch) => {
            println!("MISMATCH: {mismatch}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the seeded inputs of a target as files: a starting corpus for libFuzzer.
fn corpus(target: Target, dir: &str, args: &[String]) -> ExitCode {
    let count: u64 = option(args, "--count")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("{dir}: {e}");
        return ExitCode::from(2);
    }
    for seed in 0..count {
        let path = format!("{dir}/seed-{seed}");
        if let Err(e) = std::fs::write(&path, seeded_input(target, seed)) {
            eprintln!("{path}: {e}");
            return ExitCode::from(2);
        }
    }
    println!("{count} inputs in {dir}");
    ExitCode::SUCCESS
}

/// How many generated modules use each feature (`features::features`).
fn feature_counts(args: &[String]) -> ExitCode {
    let generate = match args.get(1).map(String::as_str) {
        Some("differential") => differential::generate,
        Some("exceptions") => exceptions::generate,
        Some("gc") => gc::generate,
        _ => return usage(),
    };
    let from: u64 = option(args, "--from")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let count: u64 = option(args, "--count")
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let mut modules = 0;
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for seed in from..from + count {
        let Some(case) = generate(&seeded_input(Target::Differential, seed)) else {
            continue;
        };
        modules += 1;
        match features::features(&case.wasm) {
            Ok(names) => names
                .into_iter()
                .for_each(|n| *counts.entry(n).or_default() += 1),
            Err(e) => {
                eprintln!("seed {seed}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("{modules} modules of seeds {from}..{}:", from + count);
    for (name, n) in counts {
        println!(
            "  {name}: {n} ({:.0} %)",
            100.0 * n as f64 / modules.max(1) as f64
        );
    }
    ExitCode::SUCCESS
}
