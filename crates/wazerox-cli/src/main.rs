//! The `wazerox` command-line runtime.
//!
//! ```text
//! wazerox run FILE [--invoke NAME] [ARGS...]   run `_start`, or call NAME with ARGS
//! wazerox wast FILE...                         run wast scripts (spec tests)
//! ```
//!
//! Arguments are parsed by hand: the grammar is small and a parser crate would be
//! the CLI's largest dependency.

mod run;

use std::process::ExitCode;

const USAGE: &str = "usage:
  wazerox run [--dir HOST[::GUEST]]... [--dir-ro HOST[::GUEST]]... [--env NAME[=VALUE]]...
              [--tcplisten ADDR:PORT]... [--fuel N] [--timeout 2s] [--max-memory BYTES]
              [--allow-precompiled] [--max-threads N] [--invoke NAME] FILE [ARGS...]
  wazerox compile FILE [-o OUT.cwasm]            compile ahead of time; `run --allow-precompiled`
                                                 runs OUT.cwasm (native code: trust it like one)
  wazerox wast FILE...                         run wast scripts; last line `N passed, M failed`";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => run::main(&args[1..]),
        Some("compile") => run::compile(&args[1..]),
        Some("wast") => {
            let files: Vec<std::path::PathBuf> = args[1..].iter().map(Into::into).collect();
            if files.is_empty() {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
            ExitCode::from(wazerox_spectest::run_wast_files(&files) as u8)
        }
        Some("--help" | "-h" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
