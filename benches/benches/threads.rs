//! Threads: a `memory.atomic.wait/notify` ping-pong round trip and a parallel-sum
//! speed-up (1 vs 2 threads), next to the same done natively in Rust (std threads,
//! futex-based `Mutex`/`Condvar`, plain loops).
//!
//! `cd benches && cargo bench --bench threads`

use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use wazerox::{Engine, Instance, Linker, MemoryType, Module, SharedMemory, Store};

const MODULE: &str = r#"(module
    (import "env" "memory" (memory 32 32 shared))
    ;; Waits until the flag at 0 equals $mine, then hands it over ($mine ^ 1).
    (func $turns (param $mine i32) (param $n i32)
      (loop $round
        (block $ready
          (loop $wait
            (br_if $ready (i32.eq (i32.atomic.load (i32.const 0)) (local.get $mine)))
            (drop (memory.atomic.wait32 (i32.const 0) (i32.xor (local.get $mine) (i32.const 1)) (i64.const -1)))
            (br $wait)))
        (i32.atomic.store (i32.const 0) (i32.xor (local.get $mine) (i32.const 1)))
        (drop (memory.atomic.notify (i32.const 0) (i32.const 1)))
        (br_if $round (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (func (export "ping") (param $n i32) (call $turns (i32.const 0) (local.get $n)))
    (func (export "pong") (param $n i32) (call $turns (i32.const 1) (local.get $n)))
    ;; Sums the u32 words in [from, to) (byte offsets), `rounds` times.
    (func (export "sum") (param $from i32) (param $to i32) (param $rounds i32) (result i64)
      (local $i i32) (local $acc i64)
      (loop $round
        (local.set $i (local.get $from))
        (loop $next
          (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (i32.load (local.get $i)))))
          (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 4))) (local.get $to))))
        (br_if $round (local.tee $rounds (i32.sub (local.get $rounds) (i32.const 1)))))
      (local.get $acc)))"#;

struct Program {
    engine: Engine,
    module: Module,
    memory: SharedMemory,
}

impl Program {
    fn new() -> Program {
        let engine = Engine::default();
        let module = Module::new(&engine, MODULE).unwrap();
        let memory = SharedMemory::new(&engine, MemoryType::shared(32, 32)).unwrap();
        let words: Vec<u8> = (0..(32 * 65536 / 4) as u32)
            .flat_map(|i| (i % 1000).to_le_bytes())
            .collect();
        memory.write(0, &words).unwrap();
        memory.write(0, &0u32.to_le_bytes()).unwrap();
        Program {
            engine,
            module,
            memory,
        }
    }

    fn instance(&self) -> (Store<()>, Instance) {
        let mut store = Store::new(&self.engine, ());
        let mut linker = Linker::new(&self.engine);
        linker
            .define(&mut store, "env", "memory", self.memory.clone())
            .unwrap();
        let instance = linker.instantiate(&mut store, &self.module).unwrap();
        (store, instance)
    }
}

const ROUND_TRIPS: i32 = 10_000;
const BYTES: i32 = 32 * 65536;
const ROUNDS: i32 = 20;

fn ping_pong(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("wait/notify ping-pong x{ROUND_TRIPS}"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    let program = Program::new();
    group.bench_function("wazerox", |b| {
        b.iter(|| {
            program.memory.write(0, &0u32.to_le_bytes()).unwrap();
            std::thread::scope(|scope| {
                for side in ["ping", "pong"] {
                    let program = &program;
                    scope.spawn(move || {
                        let (mut store, instance) = program.instance();
                        let f = instance
                            .get_typed_func::<i32, ()>(&mut store, side)
                            .unwrap();
                        f.call(&mut store, ROUND_TRIPS).unwrap();
                    });
                }
            });
        })
    });
    group.bench_function("native (std Mutex+Condvar)", |b| {
        b.iter(|| {
            let state = Arc::new((Mutex::new(0u32), Condvar::new()));
            std::thread::scope(|scope| {
                for mine in [0u32, 1] {
                    let state = state.clone();
                    scope.spawn(move || {
                        let (flag, turn) = &*state;
                        for _ in 0..ROUND_TRIPS {
                            let mut f = turn
                                .wait_while(flag.lock().unwrap(), |f| *f != mine)
                                .unwrap();
                            *f = mine ^ 1;
                            turn.notify_one();
                        }
                    });
                }
            });
        })
    });
    group.finish();
}

fn parallel_sum(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("parallel sum of 2 MiB x{ROUNDS}"));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    let program = Program::new();
    for threads in [1, 2] {
        group.bench_function(format!("wazerox {threads} thread(s)"), |b| {
            b.iter(|| {
                std::thread::scope(|scope| {
                    let chunk = BYTES / threads;
                    for t in 0..threads {
                        let program = &program;
                        scope.spawn(move || {
                            let (mut store, instance) = program.instance();
                            let sum = instance
                                .get_typed_func::<(i32, i32, i32), i64>(&mut store, "sum")
                                .unwrap();
                            sum.call(&mut store, (t * chunk, (t + 1) * chunk, ROUNDS))
                                .unwrap()
                        });
                    }
                });
            })
        });
    }
    let words: Arc<Vec<u32>> = Arc::new((0..(BYTES / 4) as u32).map(|i| i % 1000).collect());
    for threads in [1usize, 2] {
        group.bench_function(format!("native {threads} thread(s)"), |b| {
            b.iter(|| {
                std::thread::scope(|scope| {
                    let chunk = words.len() / threads;
                    for t in 0..threads {
                        let words = &words;
                        scope.spawn(move || {
                            let mut acc = 0u64;
                            for _ in 0..ROUNDS {
                                for w in &words[t * chunk..(t + 1) * chunk] {
                                    acc = acc.wrapping_add(u64::from(std::hint::black_box(*w)));
                                }
                            }
                            acc
                        });
                    }
                });
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ping_pong, parallel_sum);
criterion_main!(benches);
