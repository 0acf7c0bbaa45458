//! The plugin request loop of `benches/pooling.rs` (pooled engine, new store,
//! instantiate, call, drop), N times, for instruction counts and for resident
//! memory over long runs:
//!
//! ```sh
//! cd benches && cargo build --release --example plugin_requests
//! # instructions per request: the run with N requests minus the run with 0
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/plugin_requests wazerox 10000
//! # wall time per request, and RSS after 10^4, 10^5 and 10^6 requests
//! target/release/examples/plugin_requests wazerox 1000000
//! ```
//! Runtimes: `wazerox`, `wasmtime`. CPU time (user, system) per request is
//! what load on the machine disturbs least after instruction counts. RSS is read from `/proc/self/statm`
//! (resident pages) after every power of ten from 10^4 on, and after the last.

#[allow(dead_code)] // `table_module` is the pooling benchmark's alone.
#[path = "../src/plugin_modules.rs"]
mod plugin_modules;

use std::time::Instant;

/// Resident set size in KiB, from `/proc/self/statm` (its second field, in pages).
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .expect("statm's resident field");
    // The page size from the kernel's view of this process's mappings.
    let page_kib: u64 = std::fs::read_to_string("/proc/self/smaps")
        .ok()
        .and_then(|smaps| {
            smaps
                .lines()
                .find_map(|line| line.strip_prefix("KernelPageSize:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(4);
    pages * page_kib
}

/// User and system CPU time of this process so far, in seconds (from
/// `/proc/self/stat`, in clock ticks of 10 ms: meaningful over many requests).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let after_name = &stat[stat.rfind(')').expect("stat's command name") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields[i].parse::<f64>().expect("a tick count") / 100.0;
    (ticks(11), ticks(12))
}

/// Runs `n` requests with `request`, printing RSS at 10^4, 10^5, … and at the end.
fn run(n: u64, mut request: impl FnMut()) {
    let start = Instant::now();
    let (user0, system0) = cpu_seconds();
    let mut next_report = 10_000;
    for i in 1..=n {
        request();
        if i == next_report || i == n {
            let per_request = |seconds: f64| seconds * 1e6 / i as f64;
            let (user, system) = cpu_seconds();
            println!(
                "{i} requests: {:.2} us wall, {:.2} us user + {:.2} us system CPU per request, RSS {} KiB",
                per_request(start.elapsed().as_secs_f64()),
                per_request(user - user0),
                per_request(system - system0),
                rss_kib()
            );
            if i == next_report {
                next_report *= 10;
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: plugin_requests wazerox|wasmtime N";
    let [_, runtime, n] = &args[..] else {
        panic!("{usage}")
    };
    let n: u64 = n.parse().expect(usage);
    let wat = plugin_modules::plugin_module();
    match runtime.as_str() {
        "wazerox" => {
            let mut config = wazerox::Config::new();
            config.allocation_strategy(wazerox::InstanceAllocationStrategy::pooling());
            let engine = wazerox::Engine::new(&config).unwrap();
            let module = wazerox::Module::new(&engine, &wat).unwrap();
            let pre = wazerox::Linker::new(&engine)
                .instantiate_pre(&module)
                .unwrap();
            println!("start: RSS {} KiB", rss_kib());
            run(n, || {
                let mut store = wazerox::Store::new(&engine, ());
                let instance = pre.instantiate(&mut store).unwrap();
                let run = instance
                    .get_typed_func::<i32, i32>(&mut store, "run")
                    .unwrap();
                assert_eq!(run.call(&mut store, 5).unwrap(), 47);
            });
        }
        "wasmtime" => {
            let mut config = wasmtime::Config::new();
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::pooling());
            let engine = wasmtime::Engine::new(&config).unwrap();
            let module = wasmtime::Module::new(&engine, &wat).unwrap();
            let pre = wasmtime::Linker::new(&engine)
                .instantiate_pre(&module)
                .unwrap();
            println!("start: RSS {} KiB", rss_kib());
            run(n, || {
                let mut store = wasmtime::Store::new(&engine, ());
                let instance = pre.instantiate(&mut store).unwrap();
                let run = instance
                    .get_typed_func::<i32, i32>(&mut store, "run")
                    .unwrap();
                assert_eq!(run.call(&mut store, 5).unwrap(), 47);
            });
        }
        _ => panic!("{usage}"),
    }
}
