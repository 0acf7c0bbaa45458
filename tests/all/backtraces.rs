//! Backtraces a person can read: function names, Wasm offsets, and — when the
//! module has DWARF and details are on — source files and lines.

use wazerox::{
    Config, Engine, Func, Instance, Linker, Module, Store, TrapCode, WasmBacktraceDetails,
};

/// `tests/debug/divide.c`, built with `-g` by `tests/debug/build.sh`: `_start`
/// calls `divide(10, 0)`, which divides by zero on line 7.
const DIVIDE: &[u8] = include_bytes!("../debug/divide.wasm");

fn run_divide(details: WasmBacktraceDetails) -> wazerox::Trap {
    let mut config = Config::new();
    config.wasm_backtrace_details(details);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, DIVIDE).unwrap();
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap("wasi_snapshot_preview1", "proc_exit", |_: i32| {})
        .unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .unwrap();
    let error = start.call(&mut store, ()).unwrap_err();
    error.as_trap().expect("a trap").clone()
}

#[test]
fn a_c_program_built_with_debug_info_shows_file_and_line() {
    let trap = run_divide(WasmBacktraceDetails::Enable);
    assert_eq!(trap.code(), TrapCode::IntegerDivisionByZero);
    let frames = trap.backtrace();
    assert_eq!(frames[0].func_name.as_deref(), Some("divide"));
    assert_eq!(frames[1].func_name.as_deref(), Some("_start"));
    let top = &frames[0].symbols[0];
    assert!(
        top.file.as_deref().unwrap().ends_with("divide.c"),
        "{top:?}"
    );
    assert_eq!(top.line, Some(7), "{top:?}");
    let caller = &frames[1].symbols[0];
    assert_eq!(caller.line, Some(12), "{caller:?}");
    let text = trap.to_string();
    assert!(text.contains("divide.c:7"), "{text}");
    // The offsets are those wasmtime reports for the same binary.
    assert_eq!(frames[0].module_offset, Some(0x72), "{text}");
    assert_eq!(frames[1].module_offset, Some(0x97), "{text}");
}

#[test]
fn without_details_frames_show_names_and_offsets_only() {
    let trap = run_divide(WasmBacktraceDetails::Disable);
    assert!(trap.backtrace().iter().all(|f| f.symbols.is_empty()));
    assert_eq!(trap.backtrace()[0].module_offset, Some(0x72));
    assert!(!trap.to_string().contains("divide.c"));
}

#[test]
fn frames_report_the_wasm_offset_of_the_trapping_instruction() {
    // Offsets in this module's binary: `unreachable` is the only instruction of
    // $inner, called from $outer.
    let wasm = wat::parse_str(
        r#"(module
             (func $inner unreachable)
             (func $outer (export "outer") nop call $inner))"#,
    )
    .unwrap();
    let engine = Engine::default();
    let module = Module::new(&engine, &wasm).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let outer: Func = instance.get_func(&mut store, "outer").unwrap();
    let error = outer.call(&mut store, &[], &mut []).unwrap_err();
    let trap = error.as_trap().unwrap();
    let frames = trap.backtrace();
    // The body of $inner is `[locals=0] 0x00 0x0b`: the trap is one byte in.
    assert_eq!(frames[0].func_offset, Some(1), "{trap}");
    // $outer's body is `[0] 0x01 (nop) 0x10 0x00 (call 0) 0x0b`: the call is at 2.
    assert_eq!(frames[1].func_offset, Some(2), "{trap}");
    let module_offset = frames[0].module_offset.unwrap();
    assert_eq!(wasm[module_offset], 0x00, "unreachable's opcode");
    assert_eq!(
        wasm[frames[1].module_offset.unwrap()],
        0x10,
        "call's opcode"
    );
}
