//! The `wazerox` command-line runtime.
//!
//! ```text
//! wazerox [run] [OPTIONS] FILE [ARGS...]   run `_start`, or `--invoke NAME` with ARGS
//! wazerox compile [OPTIONS] FILE [-o OUT]  compile ahead of time
//! wazerox wast FILE...                     run wast scripts (spec tests)
//! ```
//!
//! Arguments are parsed with clap (derive), the Rust ecosystem's standard parser,
//! so `--help` and `--version` behave as users expect, and the flags are spelled as
//! wasmtime's: a wasmtime command line works with the binary renamed. As in
//! wasmtime, a first argument that is not a subcommand means `run`. See
//! docs/cli-and-spectest.md.

mod cache;
mod compile;
mod options;
mod profile;
mod run;

use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;

/// A WebAssembly runtime that compiles Wasm to native code with Cranelift.
#[derive(Parser)]
#[command(name = "wazerox", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a WebAssembly program (WASI preview1, WASIX, wasi-threads), or call
    /// one of its exports with `--invoke`.
    Run(Box<run::RunCommand>),
    /// Compile a module ahead of time into a `.cwasm` artifact that `run
    /// --allow-precompiled` runs without compiling.
    Compile(compile::CompileCommand),
    /// Run wast scripts (the spec tests' format); the last line says
    /// `N passed, M failed`.
    Wast(WastCommand),
}

#[derive(Args)]
struct WastCommand {
    /// The scripts to run.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<std::path::PathBuf>,
}

/// The arguments with `run` inserted when the first one is not a subcommand or a
/// top-level flag (`wazerox prog.wasm`, `wazerox --dir . prog.wasm`), as wasmtime
/// does.
fn with_default_subcommand(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let known = [
        "run",
        "compile",
        "wast",
        "help",
        "-h",
        "--help",
        "-V",
        "--version",
    ];
    if let Some(first) = args.get(1)
        && !known.iter().any(|k| first == k)
    {
        args.insert(1, "run".into());
    }
    args
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(with_default_subcommand(std::env::args_os().collect()));
    match cli.command {
        Command::Run(command) => run::main(*command),
        Command::Compile(command) => compile::main(command),
        Command::Wast(command) => {
            ExitCode::from(wazerox_spectest::run_wast_files(&command.files) as u8)
        }
    }
}
