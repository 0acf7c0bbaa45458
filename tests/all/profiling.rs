//! Native profiler support: every compiled function (and trampoline) is named in
//! the perf map and the jitdump, at the address where its code runs.

use wazerox::{Config, Engine, Module, ProfilingStrategy};

/// Five functions, two of them named in the name section, in a module whose
/// name is unique to `tag`.
fn program(tag: &str) -> String {
    format!(
        r#"(module ${tag}
             (func $named_one (export "a") (result i32) i32.const 1)
             (func $named_two (export "b") (param i32) (result i32) local.get 0)
             (func (export "c") (result i64) i64.const 3)
             (func (export "d"))
             (func (export "e") (param f32) (result f32) local.get 0))"#
    )
}

fn compile(tag: &str, strategy: ProfilingStrategy) {
    let mut config = Config::new();
    config.profiler(strategy);
    let engine = Engine::new(&config).unwrap();
    // Kept alive until the end of the test process: the records must stay true.
    std::mem::forget(Module::new(&engine, program(tag)).unwrap());
}

/// `(address, size, name)` of every perf-map line naming `tag`'s module.
fn perf_map_entries(tag: &str) -> Vec<(u64, u64, String)> {
    let map = std::fs::read_to_string(format!("/tmp/perf-{}.map", std::process::id())).unwrap();
    map.lines()
        .filter(|line| line.contains(&format!("wasm[{tag}]")))
        .map(|line| {
            let mut fields = line.splitn(3, ' ');
            let address = u64::from_str_radix(fields.next().unwrap(), 16).unwrap();
            let size = u64::from_str_radix(fields.next().unwrap(), 16).unwrap();
            (address, size, fields.next().unwrap().to_string())
        })
        .collect()
}

#[test]
fn perf_map_names_every_compiled_function() {
    compile("perfmap_probe", ProfilingStrategy::PerfMap);
    let mut entries = perf_map_entries("perfmap_probe");
    entries.sort();
    let names: Vec<&str> = entries.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(names.len(), 5, "{entries:?}");
    for expected in [
        "wasm[perfmap_probe]::named_one",
        "wasm[perfmap_probe]::named_two",
        "wasm[perfmap_probe]::function[2]",
        "wasm[perfmap_probe]::function[3]",
        "wasm[perfmap_probe]::function[4]",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }
    // Functions do not overlap and each has code.
    for pair in entries.windows(2) {
        assert!(pair[0].0 + pair[0].1 <= pair[1].0, "{entries:?}");
    }
    assert!(entries.iter().all(|e| e.0 != 0 && e.1 != 0));
    let map = std::fs::read_to_string(format!("/tmp/perf-{}.map", std::process::id())).unwrap();
    // The trampolines of the module's types are named too (mapped with the module
    // unless an earlier module of the same engine brought them).
    assert!(
        map.contains(" wasm-trampolines[(func (param f32) (result f32))]\n"),
        "{map}"
    );
}

#[test]
fn jitdump_records_every_compiled_function_with_its_code() {
    compile("jitdump_probe", ProfilingStrategy::JitDump);
    let dump = std::fs::read(format!("/tmp/jit-{}.dump", std::process::id())).unwrap();
    let u32_at = |at: usize| u32::from_le_bytes(dump[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(dump[at..at + 8].try_into().unwrap());
    assert_eq!(u32_at(0), 0x4A69_5444, "magic");
    assert_eq!(u32_at(4), 1, "version");
    assert_eq!(u32_at(20), std::process::id(), "pid");
    let mut at = u32_at(8) as usize;
    let mut ours = Vec::new();
    while at < dump.len() {
        let (id, total) = (u32_at(at), u32_at(at + 4) as usize);
        assert_eq!(id, 0, "only code-load records are written");
        let (vma, code_addr, size) = (u64_at(at + 24), u64_at(at + 32), u64_at(at + 40));
        let name_start = at + 56;
        let name_end = name_start + dump[name_start..].iter().position(|b| *b == 0).unwrap();
        let name = String::from_utf8(dump[name_start..name_end].to_vec()).unwrap();
        assert_eq!(vma, code_addr);
        assert_eq!(
            total,
            name_end + 1 + size as usize - at,
            "{name}: record size"
        );
        if name.starts_with("wasm[jitdump_probe]") {
            ours.push((name, size));
        }
        at += total;
    }
    assert_eq!(at, dump.len(), "records end with the file");
    assert_eq!(ours.len(), 5, "{ours:?}");
    assert!(ours.iter().all(|(_, size)| *size > 0));
}
