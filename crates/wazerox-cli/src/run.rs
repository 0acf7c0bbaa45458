//! `wazerox run`: instantiate a module with WASI and run `_start`, or call an
//! exported function with arguments parsed by its parameter types.
//!
//! Flags follow `wasmtime run`: `--dir HOST[::GUEST]` (`--dir-ro` for a read-only
//! one), `--env NAME[=VALUE]`,
//! `--tcplisten HOST:PORT` (a listening socket for `sock_accept`, numbered after the
//! preopened directories), `--invoke NAME`, all before FILE; everything after FILE is
//! the program's argv (`argv[0]` is FILE).
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
//! Limits: `--max-memory BYTES` caps every memory (shared ones too, in every
//! thread), `--fuel N` is given to every thread, `--max-threads N` (default
//! 4096) caps the threads running at once, and `--timeout` also ends blocking
//! WASI calls (exit status 134, as the `Interrupt` trap it is).

use std::process::ExitCode;
use std::sync::Arc;
use wazerox::{Engine, Linker, Module, Store, StoreLimitsBuilder, Val, ValType};
use wazerox_wasi::threads;
use wazerox_wasi::{I32Exit, WasiCtx, WasiCtxBuilder};

struct RunArgs {
    allow_precompiled: bool,
    fuel: Option<u64>,
    timeout: Option<std::time::Duration>,
    max_memory: Option<usize>,
    max_threads: Option<usize>,
    file: String,
    invoke: Option<String>,
    dirs: Vec<Preopen>,
    env: Vec<(String, String)>,
    listen: Vec<String>,
    args: Vec<String>,
}

fn parse(args: &[String]) -> Result<RunArgs, String> {
    let mut run = RunArgs {
        allow_precompiled: false,
        fuel: None,
        timeout: None,
        max_memory: None,
        max_threads: None,
        file: String::new(),
        invoke: None,
        dirs: Vec::new(),
        env: Vec::new(),
        listen: Vec::new(),
        args: Vec::new(),
    };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut value = |flag: &str| rest.next().cloned().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--invoke" => run.invoke = Some(value("--invoke")?),
            "--allow-precompiled" => run.allow_precompiled = true,
            "--fuel" => {
                let fuel = value("--fuel")?;
                run.fuel = Some(
                    fuel.parse()
                        .map_err(|_| format!("--fuel {fuel}: not a number"))?,
                );
            }
            "--timeout" => run.timeout = Some(parse_duration(&value("--timeout")?)?),
            "--max-memory" => {
                let bytes = value("--max-memory")?;
                run.max_memory = Some(
                    bytes
                        .parse()
                        .map_err(|_| format!("--max-memory {bytes}: not a number of bytes"))?,
                );
            }
            "--max-threads" => {
                let count = value("--max-threads")?;
                run.max_threads = Some(
                    count
                        .parse()
                        .map_err(|_| format!("--max-threads {count}: not a number"))?,
                );
            }
            "--dir" | "--dir-ro" => {
                let spec = value(arg)?;
                let (host, guest) = match spec.split_once("::") {
                    Some((h, g)) => (h.to_string(), g.to_string()),
                    None => (spec.clone(), spec.clone()),
                };
                run.dirs.push(Preopen {
                    host,
                    guest,
                    read_only: arg == "--dir-ro",
                });
            }
            "--env" => {
                let spec = value("--env")?;
                let (name, value) = match spec.split_once('=') {
                    Some((n, v)) => (n.to_string(), v.to_string()),
                    None => (spec.clone(), std::env::var(&spec).unwrap_or_default()),
                };
                run.env.push((name, value));
            }
            "--tcplisten" => run.listen.push(value("--tcplisten")?),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            file => {
                run.file = file.to_string();
                run.args = rest.cloned().collect();
                // Also accept `FILE --invoke NAME ARGS...` (the order the README's
                // first example uses); a program argument can still be `--invoke`
                // when the flag comes before FILE.
                if run.invoke.is_none() && run.args.first().map(String::as_str) == Some("--invoke")
                {
                    if run.args.len() < 2 {
                        return Err("--invoke needs a function name".into());
                    }
                    run.invoke = Some(run.args[1].clone());
                    run.args.drain(..2);
                }
                break;
            }
        }
    }
    if run.file.is_empty() {
        return Err("missing FILE".into());
    }
    Ok(run)
}

/// A directory given to the guest: `--dir HOST[::GUEST]`, or `--dir-ro` for one the
/// guest may read but not change.
struct Preopen {
    host: String,
    guest: String,
    read_only: bool,
}

/// `500ms`, `2s`, `1m`, or plain seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("--timeout {text}: expected e.g. 500ms, 2s or 1m");
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(bad()),
    };
    std::time::Duration::try_from_secs_f64(seconds).map_err(|_| bad())
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
        Val::FuncRef(None) | Val::ExternRef(None) | Val::ExnRef(None) => "null".to_string(),
        Val::FuncRef(Some(_)) => "funcref".to_string(),
        Val::ExternRef(Some(_)) => "externref".to_string(),
        Val::ExnRef(Some(_)) => "exnref".to_string(),
    }
}

fn run(args: RunArgs) -> Result<(), wazerox::Error> {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| wazerox::Error::msg(format!("reading {}: {e}", args.file)))?;
    // Threaded programs get epoch checks so that an ending thread can stop busy
    // ones. A binary's imports are read before compiling; a text module is
    // compiled again if it turns out to be threaded.
    let (engine, module) = if Module::is_artifact(&bytes) {
        if !args.allow_precompiled {
            return Err(wazerox::Error::msg(format!(
                "{} is a precompiled module: running it requires the `--allow-precompiled` \
                 flag (its machine code runs as is, trusted like a native library)",
                args.file
            )));
        }
        // An artifact runs with the configuration it was compiled for; `wazerox
        // compile` gives threaded modules epoch checks.
        let plain = engine_for(&args, false)?;
        match load_artifact(&plain, &bytes) {
            Ok(module) => (plain, module),
            Err(error) => {
                let checked = engine_for(&args, true)?;
                let module = load_artifact(&checked, &bytes).map_err(|_| error)?;
                (checked, module)
            }
        }
    } else {
        compile_for_run(&bytes, |threaded| engine_for(&args, threaded))?
    };
    let mut builder = WasiCtxBuilder::new();
    builder
        .inherit_stdio()
        .arg(&args.file)
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
            .map_err(|e| wazerox::Error::msg(format!("--dir {host}: {e}")))?;
    }
    for address in &args.listen {
        let listener = std::net::TcpListener::bind(address)
            .and_then(|l| builder.preopened_socket(l).map(drop))
            .map_err(|e| wazerox::Error::msg(format!("--tcplisten {address}: {e}")));
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
    let limits = args.max_memory.map(|bytes| {
        StoreLimitsBuilder::new()
            .memory_size(bytes)
            .table_bytes(bytes)
            .build()
    });
    // A proc_exit or trap in any thread ends the whole program; the group stops the
    // other threads and gives the one result back here. Every thread gets the
    // limits and its own `--fuel`.
    let thread_options = threads::ThreadOptions {
        max_threads: args.max_threads.unwrap_or(threads::DEFAULT_MAX_THREADS),
        fuel: args.fuel,
        limits: limits.clone(),
    };
    let group = threads::enable_if_needed_with(&module, &mut linker, store.data(), thread_options)?;
    if let Some(fuel) = args.fuel {
        store.set_fuel(fuel)?;
    }
    if let Some(limits) = limits {
        store.set_limiter(limits);
    }
    let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(timeout) = args.timeout {
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
        let func = instance.get_func(&mut *store, name).ok_or_else(|| {
            wazerox::Error::msg(format!("module has no exported function `{name}`"))
        })?;
        let ty = func.ty(&*store);
        if invoke_args.len() != ty.params().len() {
            return Err(wazerox::Error::msg(format!(
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
    let results = match &group {
        Some(group) => group.run_main(&mut store, main),
        None => main(&mut store),
    };
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
fn compile_for_run(
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

/// The engine for a run: fuel and epoch checks as the flags (and threads) need.
fn engine_for(args: &RunArgs, threaded: bool) -> Result<Engine, wazerox::Error> {
    let mut config = wazerox::Config::new();
    // Real toolchains still emit the legacy exception encoding (C++ exceptions,
    // setjmp/longjmp lowered to Wasm EH).
    config.wasm_legacy_exceptions(true);
    config.consume_fuel(args.fuel.is_some());
    config.epoch_interruption(args.timeout.is_some() || threaded);
    // WAZEROX_LAZY=1: compile each function on its first call
    // (docs/lazy-compilation.md).
    config.lazy_compilation(std::env::var_os("WAZEROX_LAZY").is_some_and(|v| v == "1"));
    Engine::new(&config)
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

/// `wazerox compile FILE [-o OUT]`: writes a compiled artifact (default:
/// FILE with extension `.cwasm`) for engines with the default configuration, plus
/// epoch checks for threaded modules.
pub fn compile(args: &[String]) -> ExitCode {
    let (file, out) = match args {
        [file] => (
            file.clone(),
            std::path::Path::new(file).with_extension("cwasm"),
        ),
        [file, flag, out] if flag == "-o" => (file.clone(), std::path::PathBuf::from(out)),
        _ => {
            eprintln!("usage: wazerox compile FILE [-o OUT.cwasm]");
            return ExitCode::from(2);
        }
    };
    let result = std::fs::read(&file)
        .map_err(|e| wazerox::Error::msg(format!("reading {file}: {e}")))
        .and_then(|bytes| {
            // Threaded modules get the epoch checks `run` needs to end them.
            compile_for_run(&bytes, |threaded| {
                let mut config = wazerox::Config::new();
                config.wasm_legacy_exceptions(true);
                config.epoch_interruption(threaded);
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

pub fn main(args: &[String]) -> ExitCode {
    let args = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("wazerox run: {e}\n{}", super::USAGE);
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
