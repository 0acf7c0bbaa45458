//! `wazerox compile`: writes a compiled artifact that `run --allow-precompiled`
//! (or `Module::deserialize`) loads without compiling.

use crate::options::{self, Options};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use wazerox::Engine;

/// `wazerox compile`'s flags.
#[derive(Args)]
pub struct CompileCommand {
    /// Wasm features, `-W help` to list them; the artifact runs only under the
    /// same settings.
    #[arg(short = 'W', long = "wasm", value_name = "KEY[=VAL[,..]]")]
    wasm: Vec<String>,
    /// Code generation options, `-C help` to list them.
    #[arg(short = 'C', long = "codegen", value_name = "KEY[=VAL[,..]]")]
    codegen: Vec<String>,
    /// Optimization and memory-layout options, `-O help` to list them.
    #[arg(short = 'O', long = "optimize", value_name = "KEY[=VAL[,..]]")]
    optimize: Vec<String>,
    /// Where to write the artifact (default: FILE with extension `.cwasm`).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: Option<PathBuf>,
    /// The module to compile (binary or text).
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Compiles for engines with `run`'s configuration: the options given here, plus
/// epoch checks for threaded modules (which `run` needs to end them). Exit status
/// 0, 1 on a compile error, 2 on a usage error.
pub fn main(command: CompileCommand) -> ExitCode {
    let groups = [
        ('W', &command.wasm),
        ('C', &command.codegen),
        ('O', &command.optimize),
    ];
    for (flag, values) in groups {
        if options::wants_help(values) {
            print!("{}", options::help(flag));
            return ExitCode::SUCCESS;
        }
    }
    let mut options = Options::default();
    for (flag, values) in groups {
        if let Err(e) = options.parse(flag, values) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    if options.fuel.is_some()
        || options.timeout.is_some()
        || options.cache.is_some()
        || options.compilation.is_some()
        || options.background_compilation.is_some()
    {
        eprintln!(
            "error: -W fuel, -W timeout, -C cache, -C compilation and -C background-compilation \
             are settings of `run`, not `compile` (which always compiles every function)"
        );
        return ExitCode::from(2);
    }
    let file = &command.file;
    let out = command
        .output
        .clone()
        .unwrap_or_else(|| file.with_extension("cwasm"));
    let result = std::fs::read(file)
        .map_err(|e| wazerox::Error::msg(format!("reading {}: {e}", file.display())))
        .and_then(|bytes| {
            crate::run::compile_for_run(&bytes, |threaded| {
                let mut config = crate::run::base_config(&options)?;
                config.epoch_interruption(options.epoch_interruption.unwrap_or(false) || threaded);
                Engine::new(&config)
            })
        })
        .and_then(|(_, m)| {
            std::fs::write(&out, m.serialize())
                .map_err(|e| wazerox::Error::msg(format!("writing {}: {e}", out.display())))
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
