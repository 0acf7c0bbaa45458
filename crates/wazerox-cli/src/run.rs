//! `wazerox run`: instantiate a module and run `_start` or an exported function.

use std::process::ExitCode;
use wazerox::{Engine, Linker, Module, Store, Val, ValType};

struct RunArgs {
    file: String,
    invoke: Option<String>,
    args: Vec<String>,
}

fn parse(args: &[String]) -> Result<RunArgs, String> {
    let mut invoke = None;
    let mut rest = args.iter();
    let mut file = None;
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--invoke" => {
                invoke = Some(rest.next().ok_or("--invoke needs a function name")?.clone())
            }
            flag if flag.starts_with("--") && file.is_none() => {
                return Err(format!("unknown option {flag}"));
            }
            _ => {
                file = Some(arg.clone());
                break;
            }
        }
    }
    let file = file.ok_or("missing FILE")?;
    let mut args: Vec<String> = rest.cloned().collect();
    if invoke.is_none() && args.first().map(String::as_str) == Some("--invoke") {
        args.remove(0);
        if args.is_empty() {
            return Err("--invoke needs a function name".into());
        }
        invoke = Some(args.remove(0));
    }
    Ok(RunArgs { file, invoke, args })
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
        ValType::V128 => Val::V128(text.parse::<u128>().map_err(|_| bad())?),
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
        Val::FuncRef(None) | Val::ExternRef(None) => "null".to_string(),
        Val::FuncRef(Some(_)) => "funcref".to_string(),
        Val::ExternRef(Some(_)) => "externref".to_string(),
    }
}

fn run(args: RunArgs) -> Result<(), wazerox::Error> {
    let engine = Engine::default();
    let module = Module::from_file(&engine, &args.file)?;
    let mut store = Store::new(&engine, ());
    let linker = Linker::new(&engine);
    let instance = linker.instantiate(&mut store, &module)?;
    let name = args.invoke.as_deref().unwrap_or("_start");
    let func = instance
        .get_func(&mut store, name)
        .ok_or_else(|| wazerox::Error::msg(format!("module has no exported function `{name}`")))?;
    let ty = func.ty(&store);
    if args.args.len() != ty.params().len() {
        return Err(wazerox::Error::msg(format!(
            "`{name}` takes {} arguments, {} given",
            ty.params().len(),
            args.args.len()
        )));
    }
    let params = args
        .args
        .iter()
        .zip(ty.params())
        .map(|(a, t)| parse_value(a, *t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(wazerox::Error::msg)?;
    let mut results: Vec<Val> = ty.results().iter().map(|t| Val::default_for(*t)).collect();
    func.call(&mut store, &params, &mut results)?;
    for r in &results {
        println!("{}", format_value(r));
    }
    Ok(())
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
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
