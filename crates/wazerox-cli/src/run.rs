//! `wazerox run`: instantiate a module with WASI and run `_start`, or call an
//! exported function with arguments parsed by its parameter types.
//!
//! Flags follow `wasmtime run` (see `options.rs` for `-W`/`-S`/`-C`/`-O`):
//! `--dir HOST[::GUEST]` (`--dir-ro` for a read-only one), `--env NAME[=VALUE]`,
//! `--preload NAME=PATH`, `--invoke NAME`, `--argv0`, `--profile`; everything after
//! FILE is the program's argv (`argv[0]` is FILE unless `--argv0`).
//! `-S tcplisten=HOST:PORT` (or `--tcplisten`) gives a listening socket for
//! `sock_accept`, numbered after the preopened directories.
//! A precompiled artifact (`wazerox compile`) is native code trusted like a shared
//! library; `run` refuses one unless `--allow-precompiled` is given, as wasmtime
//! does (docs/security.md).
//! Exit status: the program's `proc_exit` code (0 when `_start` returns) when it is
//! in 0..=125; a code outside that range is an error (exit 1), as in wasmtime, so
//! that 126 and up (shell conventions, signals) and 134 keep their meaning; 134
//! after a trap (its message and Wasm backtrace go to stderr); 1 for other errors.
//! WASIX functions (`wasix_32v1`) are always linked. Threaded programs (importing
//! `wasi.thread-spawn`, `wasix_32v1.thread_spawn_v2` or a shared memory) run in a
//! `ThreadGroup`: `proc_exit` or a trap in any thread ends the program with that
//! status, after the other threads were stopped; they get epoch checks for that.
//! Limits: `--max-memory BYTES` (`-W max-memory-size`) caps every memory (shared
//! ones too, in every thread), `--fuel N` (`-W fuel`) is given to every thread,
//! `--max-threads N` (`-S max-threads`, default 4096) caps the threads running at
//! once, and `--timeout` (`-W timeout`) also ends blocking WASI calls (exit status
//! 134, as the `Interrupt` trap it is).

use crate::options::Compilation;
use crate::options::{self, Options};
use crate::profile::Profile;
use clap::Args;
use std::process::ExitCode;
use std::sync::Arc;
use wazerox::{
    CompilationStrategy, Engine, Linker, Module, Store, StoreLimitsBuilder, Val, ValType,
};
use wazerox_wasi::threads;
use wazerox_wasi::{I32Exit, WasiCtx, WasiCtxBuilder};

/// `wazerox run`'s flags.
#[derive(Args)]
pub struct RunCommand {
    /// Wasm features and limits, `-W help` to list them (e.g. `-W threads=y`,
    /// `-W fuel=1000000`, `-W timeout=2s`).
    #[arg(short = 'W', long = "wasm", value_name = "KEY[=VAL[,..]]")]
    wasm: Vec<String>,
    /// WASI options, `-S help` to list them (e.g. `-S threads=y`, `-S inherit-env`).
    #[arg(short = 'S', long = "wasi", value_name = "KEY[=VAL[,..]]")]
    wasi: Vec<String>,
    /// Code generation options, `-C help` to list them (e.g. `-C cache=y`).
    #[arg(short = 'C', long = "codegen", value_name = "KEY[=VAL[,..]]")]
    codegen: Vec<String>,
    /// Optimization and memory-layout options, `-O help` to list them (e.g.
    /// `-O opt-level=0`).
    #[arg(short = 'O', long = "optimize", value_name = "KEY[=VAL[,..]]")]
    optimize: Vec<String>,
    /// Give the program a directory: HOST as GUEST (default: the same path).
    #[arg(long, value_name = "HOST_DIR[::GUEST_DIR]")]
    dir: Vec<String>,
    /// Like `--dir`, but the program may only read it.
    #[arg(long = "dir-ro", value_name = "HOST_DIR[::GUEST_DIR]")]
    dir_ro: Vec<String>,
    /// Set an environment variable for the program; NAME alone passes this
    /// process's value.
    #[arg(long, value_name = "NAME[=VAL]")]
    env: Vec<String>,
    /// Instantiate MODULE_PATH first and give its exports to the program as
    /// imports from module NAME.
    #[arg(long, value_name = "NAME=MODULE_PATH")]
    preload: Vec<String>,
    /// Call this exported function instead of `_start`; the program arguments are
    /// its parameters, and its results are printed one per line.
    #[arg(long, value_name = "FUNCTION")]
    invoke: Option<String>,
    /// The program's `argv[0]` (default: FILE as given).
    #[arg(long, value_name = "ARGV0")]
    argv0: Option<String>,
    /// Run a precompiled artifact (`wazerox compile`): its machine code runs as
    /// is, so trust it like a native library.
    #[arg(long)]
    allow_precompiled: bool,
    /// Profile the run: `perfmap` (/tmp/perf-PID.map for `perf report`),
    /// `jitdump` (/tmp/jit-PID.dump for `perf inject --jit`), or
    /// `guest[,PATH][,INTERVAL]` (sample Wasm stacks every INTERVAL, default
    /// 10ms, into PATH, default wazerox-guest-profile.json, for speedscope or the
    /// Firefox profiler).
    #[arg(long, value_name = "STRATEGY")]
    profile: Option<Profile>,
    /// Fuel for the program (each thread); running out traps. Same as `-W fuel=N`.
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,
    /// End the program after this long (500ms, 2s, 1m); exit status 134. Same as
    /// `-W timeout=D`.
    #[arg(long, value_name = "DURATION", value_parser = options::parse_duration)]
    timeout: Option<std::time::Duration>,
    /// Largest size of each memory and table, in bytes. Same as
    /// `-W max-memory-size=N`.
    #[arg(long = "max-memory", value_name = "BYTES", value_parser = parse_bytes)]
    max_memory: Option<usize>,
    /// Threads the program may run at once (default 4096). Same as
    /// `-S max-threads=N`.
    #[arg(long = "max-threads", value_name = "N")]
    max_threads: Option<usize>,
    /// A listening TCP socket for `sock_accept`. Same as `-S tcplisten=ADDR`.
    #[arg(long, value_name = "ADDR:PORT")]
    tcplisten: Vec<String>,
    /// The module (binary, text, or with `--allow-precompiled` an artifact), then
    /// the program's arguments.
    #[arg(
        value_name = "WASM",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    module_and_args: Vec<String>,
}

/// `--max-memory`'s value; the message names the flag and the value, as the
/// message of the hand-written parser before clap did.
fn parse_bytes(text: &str) -> Result<usize, String> {
    options::parse_size(text)
        .ok()
        .and_then(|bytes| usize::try_from(bytes).ok())
        .ok_or(format!("--max-memory {text}: not a number of bytes"))
}

/// A run's settings: the flags, merged with their `-W`/`-S` spellings.
struct RunArgs {
    options: Options,
    allow_precompiled: bool,
    file: String,
    argv0: Option<String>,
    invoke: Option<String>,
    dirs: Vec<Preopen>,
    env: Vec<(String, String)>,
    preload: Vec<(String, String)>,
    profile: Option<Profile>,
    args: Vec<String>,
}

/// What `-X help` printed, or the settings.
enum Parsed {
    Help(String),
    Run(Box<RunArgs>),
}

fn parse(command: RunCommand) -> Result<Parsed, String> {
    let groups = [
        ('W', &command.wasm),
        ('S', &command.wasi),
        ('C', &command.codegen),
        ('O', &command.optimize),
    ];
    for (flag, values) in groups {
        if options::wants_help(values) {
            return Ok(Parsed::Help(options::help(flag)));
        }
    }
    let mut options = Options::default();
    for (flag, values) in groups {
        options.parse(flag, values)?;
    }
    // The long flags are the same settings as their `-W`/`-S` keys.
    options.fuel = command.fuel.or(options.fuel);
    options.timeout = command.timeout.or(options.timeout);
    options.max_memory_size = command.max_memory.or(options.max_memory_size);
    options.max_threads = command.max_threads.or(options.max_threads);
    options.tcplisten.extend(command.tcplisten);

    let mut dirs = Vec::new();
    for (specs, read_only) in [(&command.dir, false), (&command.dir_ro, true)] {
        for spec in specs {
            let (host, guest) = match spec.split_once("::") {
                Some((h, g)) => (h.to_string(), g.to_string()),
                None => (spec.clone(), spec.clone()),
            };
            dirs.push(Preopen {
                host,
                guest,
                read_only,
            });
        }
    }
    let env = command
        .env
        .iter()
        .map(|spec| match spec.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => (spec.clone(), std::env::var(spec).unwrap_or_default()),
        })
        .collect();
    let preload = command
        .preload
        .iter()
        .map(|spec| {
            spec.split_once('=')
                .map(|(n, p)| (n.to_string(), p.to_string()))
                .ok_or(format!("--preload {spec}: expected NAME=MODULE_PATH"))
        })
        .collect::<Result<_, _>>()?;

    let mut rest = command.module_and_args.into_iter();
    let file = rest
        .next()
        .ok_or("missing the module to run (`wazerox run --help`)")?;
    let mut args: Vec<String> = rest.collect();
    let mut invoke = command.invoke;
    // Also accept `FILE --invoke NAME ARGS...` (the order the README's first
    // example uses); a program argument can still be `--invoke` when the flag
    // comes before FILE.
    if invoke.is_none() && args.first().map(String::as_str) == Some("--invoke") {
        if args.len() < 2 {
            return Err("--invoke needs a function name".into());
        }
        invoke = Some(args[1].clone());
        args.drain(..2);
    }
    Ok(Parsed::Run(Box::new(RunArgs {
        options,
        allow_precompiled: command.allow_precompiled,
        file,
        argv0: command.argv0,
        invoke,
        dirs,
        env,
        preload,
        profile: command.profile,
        args,
    })))
}

/// A directory given to the guest: `--dir HOST[::GUEST]`, or `--dir-ro` for one the
/// guest may read but not change.
struct Preopen {
    host: String,
    guest: String,
    read_only: bool,
}

fn parse_value(text: &str, ty: ValType) -> Result<Val, String> {
    let bad = || format!("cannot parse `{text}` as {ty}");
    Ok(match ty {
        ValType::I32 => Val::I32(match text.parse::<i32>() {
            Ok(v) => v,
            Err(_) => text.parse::<u32>().map_err(|_| bad())? as i32,
        }),
        ValType::I64 => Val::I64(match text.parse::<i64>() {
            Ok(v) => v,
            Err(_) => text.parse::<u64>().map_err(|_| bad())? as i64,
        }),
        ValType::F32 => Val::F32(text.parse::<f32>().map_err(|_| bad())?.to_bits()),
        ValType::F64 => Val::F64(text.parse::<f64>().map_err(|_| bad())?.to_bits()),
        // Printed as a 128-bit hex number (lane 0 lowest); accepted that way too.
        ValType::V128 => Val::V128(match text.strip_prefix("0x") {
            Some(hex) => u128::from_str_radix(&hex.replace('_', ""), 16).map_err(|_| bad())?,
            None => text.parse::<u128>().map_err(|_| bad())?,
        }),
        other => return Err(format!("cannot pass a {other} on the command line")),
    })
}

fn format_value(value: &Val) -> String {
    match value {
        Val::I32(v) => v.to_string(),
        Val::I64(v) => v.to_string(),
        Val::F32(bits) => f32::from_bits(*bits).to_string(),
        Val::F64(bits) => f64::from_bits(*bits).to_string(),
        Val::V128(v) => format!("{v:#034x}"),
        Val::FuncRef(None) | Val::ExternRef(None) | Val::ExnRef(None) | Val::AnyRef(None) => {
            "null".to_string()
        }
        Val::AnyRef(Some(a)) => match a.i31_s() {
            Some(v) => format!("i31ref:{v}"),
            None => "anyref".to_string(),
        },
        Val::FuncRef(Some(_)) => "funcref".to_string(),
        Val::ExternRef(Some(_)) => "externref".to_string(),
        Val::ExnRef(Some(_)) => "exnref".to_string(),
    }
}

fn run(args: RunArgs) -> Result<(), wazerox::Error> {
    let error = |text: String| wazerox::Error::msg(text);
    let bytes =
        std::fs::read(&args.file).map_err(|e| error(format!("reading {}: {e}", args.file)))?;
    let cache_dir = match args.options.cache {
        Some(true) => match crate::cache::usable_dir() {
            Ok(dir) => Some(dir),
            Err(why) => {
                eprintln!("wazerox: warning: not using the compilation cache: {why}");
                None
            }
        },
        _ => None,
    };
    let strategy = compilation_strategy(&args.options, &bytes, cache_dir.is_some());
    let engine_for = |threaded: bool| engine_for(&args, cache_dir.as_deref(), strategy, threaded);
    // Threaded programs get epoch checks so that an ending thread can stop busy
    // ones. A binary's imports are read before compiling; a text module is
    // compiled again if it turns out to be threaded.
    let (engine, module) = if Module::is_artifact(&bytes) {
        if !args.allow_precompiled {
            return Err(error(format!(
                "{} is a precompiled module: running it requires the `--allow-precompiled` \
                 flag (its machine code runs as is, trusted like a native library)",
                args.file
            )));
        }
        // An artifact runs with the configuration it was compiled for; `wazerox
        // compile` gives threaded modules epoch checks.
        let plain = engine_for(false)?;
        match load_artifact(&plain, &bytes) {
            Ok(module) => (plain, module),
            Err(first) => {
                let checked = engine_for(true)?;
                let module = load_artifact(&checked, &bytes).map_err(|_| first)?;
                (checked, module)
            }
        }
    } else {
        compile_for_run(&bytes, engine_for)?
    };
    let options = &args.options;
    let mut builder = WasiCtxBuilder::new();
    // Standard streams are inherited unless `-S inherit-std*=n`.
    if options.inherit_stdin != Some(false) {
        builder.inherit_stdin();
    }
    if options.inherit_stdout != Some(false) {
        builder.inherit_stdout();
    }
    if options.inherit_stderr != Some(false) {
        builder.inherit_stderr();
    }
    if options.inherit_env {
        builder.inherit_env();
    }
    builder
        .arg(args.argv0.as_deref().unwrap_or(&args.file))
        .args(args.args.iter().cloned());
    for (name, value) in &args.env {
        builder.env(name, value);
    }
    for Preopen {
        host,
        guest,
        read_only,
    } in &args.dirs
    {
        builder
            .preopened_dir(host, guest, *read_only)
            .map_err(|e| error(format!("--dir {host}: {e}")))?;
    }
    for address in &options.tcplisten {
        let listener = std::net::TcpListener::bind(address)
            .and_then(|l| builder.preopened_socket(l).map(drop))
            .map_err(|e| error(format!("--tcplisten {address}: {e}")));
        listener?;
    }
    let ctx: Arc<WasiCtx> = builder.build();
    let mut store = Store::new(&engine, ctx);
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
    wazerox_wasi::add_to_linker(&mut linker, |ctx| ctx)?;
    wazerox_wasi::wasix::add_to_linker(&mut linker, |ctx| ctx)?;
    // Each memory of the program (shared ones included) and each table (its
    // elements counted in host bytes) is capped: growth beyond returns -1 to the
    // program (as an allocator failure), a larger initial size is an error.
    let limits = options.max_memory_size.map(|bytes| {
        StoreLimitsBuilder::new()
            .memory_size(bytes)
            .table_bytes(bytes)
            .build()
    });
    if let Some(fuel) = options.fuel {
        store.set_fuel(fuel)?;
    }
    if let Some(limits) = limits.clone() {
        store.set_limiter(limits);
    }
    // Preloaded modules are instantiated in the program's store, in order, each
    // seeing the ones before it; their exports become importable under NAME.
    for (name, path) in &args.preload {
        let bytes = std::fs::read(path).map_err(|e| error(format!("--preload {path}: {e}")))?;
        let preloaded = Module::new(&engine, &bytes)
            .map_err(|e| error(format!("--preload {name}={path}: {e}")))?;
        let instance = linker.instantiate(&mut store, &preloaded)?;
        linker.instance(&mut store, name, instance)?;
    }
    // A proc_exit or trap in any thread ends the whole program; the group stops the
    // other threads and gives the one result back here. Every thread gets the
    // limits and its own fuel. `-S threads=n` leaves thread-spawn undefined.
    let group = if options.wasi_threads == Some(false) {
        None
    } else {
        let thread_options = threads::ThreadOptions {
            max_threads: options.max_threads.unwrap_or(threads::DEFAULT_MAX_THREADS),
            fuel: options.fuel,
            limits,
        };
        threads::enable_if_needed_with(&module, &mut linker, store.data(), thread_options)?
    };
    let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(timeout) = options.timeout {
        // Interrupting the main thread's store stops its code and its waits;
        // cancelling the context ends every blocking WASI call (sleeps, reads of
        // stdin, accepts) in every thread; in a threaded program, the main
        // thread's trap then ends the others.
        let main = store.interrupt_handle();
        let ctx = store.data().clone();
        let timed_out = timed_out.clone();
        std::thread::spawn(move || {
            std::thread::sleep(timeout);
            timed_out.store(true, std::sync::atomic::Ordering::SeqCst);
            main.interrupt();
            ctx.cancel();
        });
    }
    let name = args.invoke.as_deref().unwrap_or("_start");
    let invoke_args = if args.invoke.is_some() {
        &args.args[..]
    } else {
        &[]
    };
    let main = |store: &mut Store<Arc<WasiCtx>>| -> Result<Vec<Val>, wazerox::Error> {
        let instance = linker.instantiate(&mut *store, &module)?;
        let func = instance
            .get_func(&mut *store, name)
            .ok_or_else(|| error(format!("module has no exported function `{name}`")))?;
        let ty = func.ty(&*store);
        if invoke_args.len() != ty.params().len() {
            return Err(error(format!(
                "`{name}` takes {} arguments, {} given",
                ty.params().len(),
                invoke_args.len()
            )));
        }
        let params = invoke_args
            .iter()
            .zip(ty.params())
            .map(|(a, t)| parse_value(a, *t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(wazerox::Error::msg)?;
        let mut results: Vec<Val> = ty.results().iter().map(|t| Val::default_for(*t)).collect();
        func.call(&mut *store, &params, &mut results)?;
        Ok(results)
    };
    // The guest profiler samples this thread, the one that runs `_start`.
    let profiler = crate::profile::start_guest(args.profile.as_ref())?;
    let results = match &group {
        Some(group) => group.run_main(&mut store, main),
        None => main(&mut store),
    };
    crate::profile::finish_guest(profiler, &args.file);
    // Whichever thread or call noticed the timeout first, it ends the run as the
    // `Interrupt` trap of an expired deadline.
    let results = match results {
        Err(_) if timed_out.load(std::sync::atomic::Ordering::SeqCst) => {
            eprintln!("wazerox: --timeout reached");
            return Err(wazerox::Error::interrupt());
        }
        other => other?,
    };
    for r in &results {
        println!("{}", format_value(r));
    }
    Ok(())
}

/// Compiles `bytes` with the engine `engine_for(threaded)` gives, `threaded` saying
/// whether the module imports `thread-spawn` or a shared memory.
pub(crate) fn compile_for_run(
    bytes: &[u8],
    engine_for: impl Fn(bool) -> Result<Engine, wazerox::Error>,
) -> Result<(Engine, Module), wazerox::Error> {
    let threaded = binary_is_threaded(bytes).unwrap_or(false);
    let engine = engine_for(threaded)?;
    let module = Module::new(&engine, bytes)?;
    if !threaded && threads::is_threaded(&module) {
        let engine = engine_for(true)?;
        let module = Module::new(&engine, bytes)?;
        return Ok((engine, module));
    }
    Ok((engine, module))
}

/// The engine for a run: the options' settings, plus fuel and epoch checks as
/// the flags (and threads) need.
fn engine_for(
    args: &RunArgs,
    cache_dir: Option<&std::path::Path>,
    strategy: CompilationStrategy,
    threaded: bool,
) -> Result<Engine, wazerox::Error> {
    let options = &args.options;
    let mut config = base_config(options)?;
    config.consume_fuel(options.fuel.is_some());
    config.epoch_interruption(
        options.epoch_interruption.unwrap_or(false) || options.timeout.is_some() || threaded,
    );
    if let Some(dir) = cache_dir {
        config.cache_dir(dir);
    }
    if let Some(profile) = &args.profile {
        config.profiler(profile.native_strategy());
    }
    config.compilation_strategy(strategy);
    config.background_compilation(options.background_compilation.unwrap_or(false));
    Engine::new(&config)
}

/// Below this many bytes of code section, `-C compilation=auto` compiles eagerly:
/// on every core the whole module compiles in a fraction of a second, and its
/// code then runs with direct calls. Above, lazy compilation starts sooner
/// (docs/PERFORMANCE.md, "Choosing the strategy of a first run").
pub(crate) const EAGER_CODE_SIZE_LIMIT: u64 = 1 << 20;

/// The strategy of `run`: what `-C compilation` says; by default (`auto`), eager
/// for small modules and lazy for big ones. With the code cache on, `auto` is
/// eager: the cache only stores fully compiled modules, so a lazy first run would
/// leave every later run to compile again.
fn compilation_strategy(options: &Options, bytes: &[u8], cached: bool) -> CompilationStrategy {
    match options.compilation.unwrap_or(Compilation::Auto) {
        Compilation::Fixed(strategy) => strategy,
        Compilation::Auto if cached => CompilationStrategy::Eager,
        Compilation::Auto => match code_section_size(bytes) {
            Some(size) if size >= EAGER_CODE_SIZE_LIMIT => CompilationStrategy::Lazy,
            _ => CompilationStrategy::Eager,
        },
    }
}

/// The size in bytes of a binary module's code section; `None` for anything
/// else (text, artifacts, garbage) or a module without one.
fn code_section_size(bytes: &[u8]) -> Option<u64> {
    use wasmparser::{Parser, Payload};
    if !bytes.starts_with(b"\0asm") {
        return None;
    }
    for payload in Parser::new(0).parse_all(bytes) {
        if let Payload::CodeSectionStart { size, .. } = payload.ok()? {
            return Some(u64::from(size));
        }
    }
    None
}

/// The configuration `run` and `compile` share: the legacy exception encoding
/// (real toolchains still emit it for C++ exceptions and setjmp/longjmp), then
/// whatever `-W`, `-C` and `-O` say.
pub(crate) fn base_config(options: &Options) -> Result<wazerox::Config, wazerox::Error> {
    let mut config = wazerox::Config::new();
    config.wasm_legacy_exceptions(true);
    options
        .configure(&mut config)
        .map_err(wazerox::Error::msg)?;
    Ok(config)
}

/// Whether a binary module imports `wasi.thread-spawn`, `wasix_32v1.thread_spawn_v2`
/// or a shared memory; `None`
/// for anything that is not a readable binary module (text, artifacts, garbage:
/// compiling reports those).
fn binary_is_threaded(bytes: &[u8]) -> Option<bool> {
    use wasmparser::{Parser, Payload, TypeRef};
    if !bytes.starts_with(b"\0asm") {
        return None;
    }
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.ok()? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.ok()?;
                    let shared = matches!(import.ty, TypeRef::Memory(m) if m.shared);
                    let spawns = (import.module == "wasi" && import.name == "thread-spawn")
                        || (import.module == "wasix_32v1" && import.name == "thread_spawn_v2");
                    if shared || spawns {
                        return Some(true);
                    }
                }
                return Some(false);
            }
            // Imports come before every section that follows them.
            Payload::FunctionSection(_)
            | Payload::TableSection(_)
            | Payload::MemorySection(_)
            | Payload::CodeSectionStart { .. } => return Some(false),
            _ => {}
        }
    }
    Some(false)
}

/// A module from an artifact of `wazerox compile`.
fn load_artifact(engine: &Engine, bytes: &[u8]) -> Result<Module, wazerox::Error> {
    // SAFETY: only reached with `--allow-precompiled`: the user vouches for the
    // artifact like for a native program they run; its checksum, build id and
    // engine fingerprint are checked before any of its code is mapped.
    unsafe { Module::deserialize(engine, bytes) }
}

/// Runs `wazerox run`; the process's exit status.
pub fn main(command: RunCommand) -> ExitCode {
    let args = match parse(command) {
        Ok(Parsed::Run(args)) => *args,
        Ok(Parsed::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<I32Exit>() {
                // A status the shell would wrap (256 → 0) or read as a signal or
                // a trap (126..=255) is refused, as wasmtime refuses it.
                if let Ok(code @ 0..=125) = u8::try_from(exit.0) {
                    return ExitCode::from(code);
                }
                eprintln!(
                    "error: exit with invalid exit status {} outside of [0..126)",
                    exit.0
                );
                return ExitCode::FAILURE;
            }
            // WASIX `thread_exit` of the only thread: the program is done.
            if e.downcast_ref::<wazerox_wasi::wasix::ThreadExit>()
                .is_some()
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e}");
            if e.as_trap().is_some() {
                ExitCode::from(134)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leb(mut n: u32, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    /// A module with one function of `nops` `nop`s.
    fn module_with_nops(nops: u32) -> Vec<u8> {
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        wasm.extend([1, 4, 1, 0x60, 0, 0]); // type section: () -> ()
        wasm.extend([3, 2, 1, 0]); // function section: one function of type 0
        let mut body = vec![0]; // no locals
        body.extend(std::iter::repeat_n(0x01, nops as usize));
        body.push(0x0b);
        let mut entry = Vec::new();
        leb(body.len() as u32, &mut entry);
        entry.extend(body);
        let mut section = vec![1];
        section.extend(entry);
        wasm.push(10);
        leb(section.len() as u32, &mut wasm);
        wasm.extend(section);
        wasm
    }

    fn options(compilation: Option<Compilation>) -> Options {
        Options {
            compilation,
            ..Options::default()
        }
    }

    #[test]
    fn auto_compiles_small_modules_eagerly_and_big_ones_lazily() {
        let limit = EAGER_CODE_SIZE_LIMIT as u32;
        let small = module_with_nops(limit - 100);
        let big = module_with_nops(limit);
        assert!(code_section_size(&small).unwrap() < EAGER_CODE_SIZE_LIMIT);
        assert!(code_section_size(&big).unwrap() >= EAGER_CODE_SIZE_LIMIT);
        for auto in [None, Some(Compilation::Auto)] {
            let auto = options(auto);
            assert_eq!(
                compilation_strategy(&auto, &small, false),
                CompilationStrategy::Eager
            );
            assert_eq!(
                compilation_strategy(&auto, &big, false),
                CompilationStrategy::Lazy
            );
            // The code cache stores only fully compiled modules.
            assert_eq!(
                compilation_strategy(&auto, &big, true),
                CompilationStrategy::Eager
            );
            // Text is compiled eagerly.
            assert_eq!(
                compilation_strategy(&auto, b"(module)", false),
                CompilationStrategy::Eager
            );
        }
        for strategy in [
            CompilationStrategy::Eager,
            CompilationStrategy::Lazy,
            CompilationStrategy::LazyFast,
        ] {
            let fixed = options(Some(Compilation::Fixed(strategy)));
            assert_eq!(compilation_strategy(&fixed, &small, true), strategy);
            assert_eq!(compilation_strategy(&fixed, &big, false), strategy);
        }
    }
}
