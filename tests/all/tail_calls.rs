//! Tail calls (`return_call`, `return_call_indirect`) replace the caller's frame:
//! unbounded tail recursion runs in constant native stack, and traps, backtraces,
//! host calls, fuel and checkpoint/restore stay right across tail-calling frames.

use crate::checkpoint::{Snapshots, define_checkpoint_functions};
use std::sync::{Arc, Mutex};
use wazerox::{Caller, Config, Engine, ErrorKind, Instance, Linker, Module, Store, TrapCode};

/// A stack limit far too small for 10^7 frames of anything.
const SMALL_STACK: usize = 64 * 1024;

fn engine(adjust: impl FnOnce(&mut Config)) -> Engine {
    let mut config = Config::new();
    config.max_wasm_stack(SMALL_STACK);
    adjust(&mut config);
    Engine::new(&config).unwrap()
}

fn trap_code(error: wazerox::Error) -> TrapCode {
    assert_eq!(error.kind(), ErrorKind::Trap, "{error}");
    error.as_trap().expect("trap details").code()
}

/// `probe` reports the address of one of its locals: the depth of the native stack
/// at the host call.
fn probing_linker(engine: &Engine, depths: Arc<Mutex<Vec<usize>>>) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap("host", "probe", move || {
            let marker = 0u8;
            depths
                .lock()
                .unwrap()
                .push(std::hint::black_box(&marker) as *const u8 as usize);
        })
        .unwrap();
    linker
}

const MUTUAL_RECURSION: &str = r#"
(module
  (import "host" "probe" (func $probe))
  (type $step (func (param i64) (result i64)))
  (table funcref (elem $odd_indirect $even_indirect))

  ;; even(n) = n == 0 ? 1 : odd(n - 1); odd(n) = n == 0 ? 0 : even(n - 1)
  (func $even (export "even") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0))
      (then (call $probe) (i64.const 1))
      (else (return_call $odd (i64.sub (local.get 0) (i64.const 1))))))
  (func $odd (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0))
      (then (call $probe) (i64.const 0))
      (else (return_call $even (i64.sub (local.get 0) (i64.const 1))))))

  ;; The same through the table: element 0 is odd, element 1 is even.
  (func $even_indirect (export "even_indirect") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0))
      (then (call $probe) (i64.const 1))
      (else (return_call_indirect (type $step)
              (i64.sub (local.get 0) (i64.const 1)) (i32.const 0)))))
  (func $odd_indirect (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0))
      (then (call $probe) (i64.const 0))
      (else (return_call_indirect (type $step)
              (i64.sub (local.get 0) (i64.const 1)) (i32.const 1)))))

  ;; The same recursion with ordinary calls, to show the limit bites.
  (func $even_call (export "even_call") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0))
      (then (i64.const 1))
      (else (call $odd_call (i64.sub (local.get 0) (i64.const 1))))))
  (func $odd_call (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0))
      (then (i64.const 0))
      (else (call $even_call (i64.sub (local.get 0) (i64.const 1)))))))
"#;

#[test]
fn ten_million_tail_calls_run_in_constant_stack() {
    let engine = engine(|_| {});
    let depths = Arc::new(Mutex::new(Vec::new()));
    let linker = probing_linker(&engine, depths.clone());
    let module = Module::new(&engine, MUTUAL_RECURSION).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();

    // Ordinary calls overflow the small stack long before 10^7 frames.
    let even_call = instance
        .get_typed_func::<i64, i64>(&mut store, "even_call")
        .unwrap();
    assert_eq!(even_call.call(&mut store, 10).unwrap(), 1);
    let overflow = even_call.call(&mut store, 100_000).unwrap_err();
    assert_eq!(trap_code(overflow), TrapCode::StackOverflow);

    for export in ["even", "even_indirect"] {
        depths.lock().unwrap().clear();
        let even = instance
            .get_typed_func::<i64, i64>(&mut store, export)
            .unwrap();
        assert_eq!(even.call(&mut store, 0).unwrap(), 1, "{export}(0)");
        assert_eq!(even.call(&mut store, 1).unwrap(), 0, "{export}(1)");
        assert_eq!(even.call(&mut store, 10_000_000).unwrap(), 1, "{export}");
        assert_eq!(even.call(&mut store, 10_000_001).unwrap(), 0, "{export}");
        // Every probe, after 0, 1, 10^7 or 10^7 + 1 tail calls, ran at one depth.
        let depths = depths.lock().unwrap();
        assert_eq!(depths.len(), 4);
        assert!(
            depths.iter().all(|d| *d == depths[0]),
            "{export}: {depths:x?}"
        );
    }
}

/// Tail calls between functions with different numbers of stack arguments: the
/// callee's incoming argument area must grow and shrink in place.
#[test]
fn tail_calls_between_signatures_of_different_stack_sizes() {
    let engine = engine(|_| {});
    let module = Module::new(
        &engine,
        r#"(module
          ;; 16 i64 params: most are passed on the stack.
          (func $wide (param $n i64) (param i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64)
                      (param $acc i64) (result i64 i64)
            (if (result i64 i64) (i64.eqz (local.get $n))
              (then (local.get $acc)
                    (i64.add (i64.add (local.get 1) (local.get 7)) (local.get 14)))
              (else (return_call $narrow (i64.sub (local.get $n) (i64.const 1))
                      (i64.add (local.get $acc)
                        (i64.add (local.get 1) (i64.add (local.get 8) (local.get 14))))))))
          (func $narrow (export "narrow") (param $n i64) (param $acc i64) (result i64 i64)
            (return_call $wide (local.get $n)
              (i64.const 1) (i64.const 2) (i64.const 3) (i64.const 4) (i64.const 5)
              (i64.const 6) (i64.const 7) (i64.const 8) (i64.const 9) (i64.const 10)
              (i64.const 11) (i64.const 12) (i64.const 13) (i64.const 14)
              (local.get $acc))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let narrow = instance
        .get_typed_func::<(i64, i64), (i64, i64)>(&mut store, "narrow")
        .unwrap();
    // Each round adds 1 + 8 + 14 = 23; the last `wide` reports 1 + 7 + 14 = 22.
    let rounds = 1_000_000;
    assert_eq!(
        narrow.call(&mut store, (rounds, 5)).unwrap(),
        (5 + 23 * rounds, 22)
    );
}

#[test]
fn a_trap_after_tail_calls_has_the_backtrace_of_the_frames_still_live() {
    let engine = engine(|_| {});
    let module = Module::new(
        &engine,
        r#"(module
          (type $v (func))
          (table funcref (elem $inner))
          (func $inner (unreachable))
          (func $replaced (return_call $inner))
          (func $replaced_indirect (return_call_indirect (type $v) (i32.const 0)))
          (func $outer (export "direct") (call $replaced))
          (func $outer_indirect (export "indirect") (call $replaced_indirect)))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    for (export, outer) in [("direct", "outer"), ("indirect", "outer_indirect")] {
        let f = instance
            .get_typed_func::<(), ()>(&mut store, export)
            .unwrap();
        let error = f.call(&mut store, ()).unwrap_err();
        let trap = error.as_trap().expect("a trap");
        assert_eq!(trap.code(), TrapCode::UnreachableCodeReached);
        let names: Vec<_> = trap
            .backtrace()
            .iter()
            .map(|f| f.func_name.clone().unwrap_or_default())
            .collect();
        // The tail-calling frame was replaced by its callee.
        assert_eq!(names, ["inner", outer], "{trap}");
    }
}

#[test]
fn tail_calls_to_host_functions_return_to_the_wasm_caller() {
    let engine = engine(|_| {});
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap(
            "host",
            "add_and_count",
            |mut caller: Caller<'_, u32>, a: i64, b: i64| -> (i64, i32) {
                *caller.data_mut() += 1;
                (a + b, *caller.data() as i32)
            },
        )
        .unwrap();
    linker
        .func_wrap(
            "host",
            "fail",
            |_: Caller<'_, u32>| -> Result<(), wazerox::Error> {
                Err(wazerox::Error::msg("host says no"))
            },
        )
        .unwrap();
    let module = Module::new(
        &engine,
        r#"(module
          (import "host" "add_and_count" (func $add (param i64 i64) (result i64 i32)))
          (import "host" "fail" (func $fail))
          (type $add_t (func (param i64 i64) (result i64 i32)))
          (table funcref (elem $add))
          (func $direct (param i64) (result i64 i32)
            (return_call $add (local.get 0) (i64.const 100)))
          (func $indirect (param i64) (result i64 i32)
            (return_call_indirect (type $add_t) (local.get 0) (i64.const 1000) (i32.const 0)))
          (func (export "both") (param i64) (result i64)
            (local $count i32)
            (call $direct (local.get 0))
            (local.set $count)
            (call $indirect)
            (drop)
            ;; result of indirect(direct(x)) and the count seen by the first call
            (i64.add (i64.extend_i32_u (local.get $count))))
          (func (export "entry_tail") (param i64) (result i64 i32)
            (return_call $add (local.get 0) (local.get 0)))
          (func $to_fail (return_call $fail))
          (func (export "fails") (call $to_fail)))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, 0u32);
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let both = instance
        .get_typed_func::<i64, i64>(&mut store, "both")
        .unwrap();
    assert_eq!(both.call(&mut store, 1).unwrap(), 1 + 100 + 1000 + 1);
    assert_eq!(*store.data(), 2);
    // An export whose first instruction tail-calls the host.
    let entry_tail = instance
        .get_typed_func::<i64, (i64, i32)>(&mut store, "entry_tail")
        .unwrap();
    assert_eq!(entry_tail.call(&mut store, 21).unwrap(), (42, 3));
    let fails = instance
        .get_typed_func::<(), ()>(&mut store, "fails")
        .unwrap();
    let error = fails.call(&mut store, ()).unwrap_err();
    assert!(error.to_string().contains("host says no"), "{error}");
    // The store still works after the error.
    assert_eq!(both.call(&mut store, 2).unwrap(), 2 + 100 + 1000 + 4);
}

#[test]
fn infinite_tail_recursion_runs_out_of_fuel() {
    let engine = engine(|c| {
        c.consume_fuel(true);
    });
    let module = Module::new(
        &engine,
        r#"(module
          (func $spin (export "spin") (param i32) (result i32)
            (return_call $spin (i32.add (local.get 0) (i32.const 1)))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    store.set_fuel(50_000_000).unwrap();
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let spin = instance
        .get_typed_func::<i32, i32>(&mut store, "spin")
        .unwrap();
    let error = spin.call(&mut store, 0).unwrap_err();
    assert_eq!(trap_code(error), TrapCode::OutOfFuel);
}

/// A snapshot taken by a host function reached by a tail call, restored from below
/// frames that tail-called each other, resumes the right caller with the right value.
#[test]
fn checkpoint_and_restore_across_tail_calling_frames() {
    let engine = engine(|_| {});
    let mut linker = Linker::new(&engine);
    define_checkpoint_functions::<Snapshots>(&mut linker);
    let module = Module::new(
        &engine,
        r#"(module
          (import "host" "checkpoint" (func $checkpoint (result i32)))
          (import "host" "restore" (func $restore (param i32)))
          ;; The snapshotted host call is reached by a tail call.
          (func $take (result i32) (return_call $checkpoint))
          ;; Tail-recurses n times, then restores with n + 40 (also by a tail call).
          (func $descend (param $n i32) (param $v i32)
            (if (i32.eqz (local.get $n))
              (then (return_call $restore (local.get $v))))
            (return_call $descend (i32.sub (local.get $n) (i32.const 1)) (local.get $v)))
          (func (export "run") (param $n i32) (result i32)
            (local $r i32)
            (local $live i32)
            (local.set $live (i32.mul (local.get $n) (i32.const 3)))
            (local.set $r (call $take))
            (if (i32.eqz (local.get $r))
              (then (call $descend (local.get $n) (i32.add (local.get $n) (i32.const 40)))
                    (unreachable)))
            ;; $live survived the restore.
            (i32.add (local.get $r) (local.get $live))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, Snapshots::default());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    for n in [0, 1, 1000, 1_000_000] {
        assert_eq!(run.call(&mut store, n).unwrap(), n + 40 + 3 * n, "n = {n}");
    }
    assert_eq!(store.data().taken, 4);
}
