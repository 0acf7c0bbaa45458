//! Stack checkpoint/restore (see `/work/shared/docs/CHECKPOINT.md` §4): snapshots
//! taken by host functions and restored later make the snapshotted host call
//! return again (longjmp semantics).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use wazerox::{
    Caller, Engine, ErrorKind, Instance, Linker, Module, Snapshot, Store, TrapCode, Val,
};

/// Snapshot and counters of the tests that checkpoint and restore through
/// `host.checkpoint`/`host.restore` (here and in other features' files).
#[derive(Default)]
pub(crate) struct Snapshots {
    pub(crate) snapshot: Option<Snapshot>,
    /// Snapshots taken.
    pub(crate) taken: u32,
    /// Restores requested.
    pub(crate) restores: u32,
}

/// Store data that holds [`Snapshots`].
pub(crate) trait HoldsSnapshots {
    fn snapshots(&mut self) -> &mut Snapshots;
}

impl HoldsSnapshots for Snapshots {
    fn snapshots(&mut self) -> &mut Snapshots {
        self
    }
}

/// Defines `host.checkpoint() -> i32`, which snapshots and returns 0, and
/// `host.restore(v)`, which restores the last snapshot so that `checkpoint`
/// returns `v`.
pub(crate) fn define_checkpoint_functions<T: HoldsSnapshots + 'static>(linker: &mut Linker<T>) {
    linker
        .func_wrap(
            "host",
            "checkpoint",
            |mut caller: Caller<'_, T>| -> Result<i32, wazerox::Error> {
                let snapshot = caller.snapshot()?;
                let snapshots = caller.data_mut().snapshots();
                snapshots.snapshot = Some(snapshot);
                snapshots.taken += 1;
                Ok(0)
            },
        )
        .unwrap();
    linker
        .func_wrap(
            "host",
            "restore",
            |mut caller: Caller<'_, T>, value: i32| -> Result<(), wazerox::Error> {
                let snapshots = caller.data_mut().snapshots();
                snapshots.restores += 1;
                let snapshot = snapshots.snapshot.clone().expect("a snapshot was taken");
                Err(snapshot.restore(&[Val::I32(value)]).into())
            },
        )
        .unwrap();
}

type State = Snapshots;

fn linker(engine: &Engine) -> Linker<State> {
    let mut linker = Linker::new(engine);
    define_checkpoint_functions(&mut linker);
    linker
}

fn setup(wat: &str) -> (Store<State>, Instance, Linker<State>) {
    let engine = Engine::default();
    let module = Module::new(&engine, wat).unwrap();
    let mut store = Store::new(&engine, State::default());
    let linker = linker(&engine);
    let instance = linker.instantiate(&mut store, &module).unwrap();
    (store, instance, linker)
}

const IMPORTS: &str = r#"
    (import "host" "checkpoint" (func $checkpoint (result i32)))
    (import "host" "restore" (func $restore (param i32)))"#;

#[test]
fn run_snapshots_helper_restores_with_5_and_run_returns_5() {
    let (mut store, instance, _) = setup(&format!(
        r#"(module {IMPORTS}
            (func $helper (call $restore (i32.const 5)))
            (func (export "run") (result i32)
              (local $r i32)
              (local.set $r (call $checkpoint))
              (if (i32.eqz (local.get $r)) (then (call $helper) (unreachable)))
              (local.get $r)))"#
    ));
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, ()).unwrap(), 5);
    assert_eq!(store.data().taken, 1);
}

#[test]
fn restore_issued_four_frames_below_the_snapshotting_function() {
    let (mut store, instance, _) = setup(&format!(
        r#"(module {IMPORTS}
            (func $deep (param i32)
              (if (i32.eqz (local.get 0))
                (then (call $restore (i32.const 42)))
                (else (call $deep (i32.sub (local.get 0) (i32.const 1))))))
            (func (export "run") (result i32)
              (local $r i32)
              (local.set $r (call $checkpoint))
              (if (i32.eqz (local.get $r)) (then (call $deep (i32.const 3)) (unreachable)))
              (local.get $r)))"#
    ));
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, ()).unwrap(), 42);
}

#[test]
fn same_snapshot_restored_three_times_locals_revert_each_time() {
    let (mut store, instance, _) = setup(&format!(
        r#"(module {IMPORTS}
            (global $resumes (export "resumes") (mut i32) (i32.const 0))
            (func (export "run") (result i32)
              (local $r i32) (local $x i32) (local $y f64)
              (local.set $x (i32.const 100))
              (local.set $y (f64.const 2.5))
              (local.set $r (call $checkpoint))
              ;; After every resume the locals hold their snapshot-time values.
              (if (i32.ne (local.get $x) (i32.const 100)) (then (unreachable)))
              (if (f64.ne (local.get $y) (f64.const 2.5)) (then (unreachable)))
              (global.set $resumes (i32.add (global.get $resumes) (i32.const 1)))
              (local.set $x (i32.const 999))
              (local.set $y (f64.const -1))
              (if (i32.lt_u (local.get $r) (i32.const 3))
                (then (call $restore (i32.add (local.get $r) (i32.const 1)))))
              (local.get $r)))"#
    ));
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, ()).unwrap(), 3);
    let resumes = instance.get_global(&mut store, "resumes").unwrap();
    assert_eq!(
        resumes.get(&mut store).i32(),
        Some(4),
        "first return + 3 restores"
    );
    assert_eq!(store.data().taken, 1, "the checkpoint ran once");
}

#[test]
fn snapshot_in_a_callee_that_returned_revives_its_frame() {
    let (mut store, instance, _) = setup(&format!(
        r#"(module {IMPORTS}
            (global $revived (export "revived") (mut i32) (i32.const 0))
            ;; Like wasix-libc's setjmp: the checkpointing frame returns before longjmp.
            (func $setjmp (param $tag i32) (result i32)
              (local $r i32)
              (local.set $r (call $checkpoint))
              (if (local.get $r) (then (global.set $revived (local.get $tag))))
              (i32.add (local.get $r) (local.get $tag)))
            (func $scribble (param i32) (result i64)
              (local i64 i64 i64 i64)
              (local.set 1 (i64.const -1)) (local.set 2 (i64.const -2))
              (local.set 3 (i64.const -3)) (local.set 4 (i64.const -4))
              (if (result i64) (i32.eqz (local.get 0))
                (then (i64.add (local.get 1) (local.get 4)))
                (else (i64.add (local.get 2)
                  (call $scribble (i32.sub (local.get 0) (i32.const 1)))))))
            (func (export "run") (param $reuse i32) (result i32)
              (local $r i32)
              (local.set $r (call $setjmp (i32.const 1000)))
              (if (i32.eq (local.get $r) (i32.const 1000))
                (then
                  ;; Overwrite the dead frame's stack area before jumping back.
                  (if (local.get $reuse) (then (drop (call $scribble (i32.const 8)))))
                  (call $restore (i32.const 7))
                  (unreachable)))
              (local.get $r)))"#
    ));
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    for reuse in [0, 1] {
        assert_eq!(run.call(&mut store, reuse).unwrap(), 1007, "reuse={reuse}");
        let revived = instance.get_global(&mut store, "revived").unwrap();
        assert_eq!(revived.get(&mut store).i32(), Some(1000));
    }
}

#[test]
fn snapshot_from_a_nested_activation_is_stale_after_it_returned() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        format!(
            r#"(module {IMPORTS}
                (import "host" "nest" (func $nest (result i32)))
                (func (export "inner") (result i32) (call $checkpoint))
                (func (export "outer") (result i32) (call $nest)))"#
        ),
    )
    .unwrap();
    let mut store = Store::new(&engine, State::default());
    let mut linker = linker(&engine);
    linker
        .func_wrap(
            "host",
            "nest",
            |mut caller: Caller<'_, State>| -> Result<i32, wazerox::Error> {
                let inner = caller.get_export("inner").unwrap().into_func().unwrap();
                let mut results = [Val::I32(-1)];
                inner.call(&mut caller, &[], &mut results)?;
                // The nested activation that took the snapshot has returned.
                let snapshot = caller.data().snapshot.clone().unwrap();
                Err(snapshot.restore(&[Val::I32(1)]).into())
            },
        )
        .unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let outer = instance
        .get_typed_func::<(), i32>(&mut store, "outer")
        .unwrap();
    let error = outer.call(&mut store, ()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Usage, "{error}");
    assert!(error.to_string().contains("stale"), "{error}");
    // The store is still usable.
    assert_eq!(
        outer.call(&mut store, ()).unwrap_err().kind(),
        ErrorKind::Usage
    );
}

#[test]
fn snapshot_from_an_earlier_call_of_the_same_export_is_stale() {
    let (mut store, instance, _) = setup(&format!(
        r#"(module {IMPORTS}
            (func (export "run") (param $restore i32) (result i32)
              (if (local.get $restore) (then (call $restore (i32.const 3))))
              (call $checkpoint)))"#
    ));
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, 0).unwrap(), 0);
    let error = run.call(&mut store, 1).unwrap_err();
    assert!(error.to_string().contains("stale"), "{error}");
}

static DROPPED: AtomicUsize = AtomicUsize::new(0);

struct Guard;
impl Drop for Guard {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn restore_across_host_wasm_host_chains_runs_destructors() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        format!(
            r#"(module {IMPORTS}
                (import "host" "reenter" (func $reenter (param i32)))
                (func (export "leaf") (param i32)
                  (if (i32.eqz (local.get 0))
                    (then (call $restore (i32.const 9)))
                    (else (call $reenter (i32.sub (local.get 0) (i32.const 1))))))
                (func (export "run") (result i32)
                  (local $r i32)
                  (local.set $r (call $checkpoint))
                  (if (i32.eqz (local.get $r)) (then (call $reenter (i32.const 3)) (unreachable)))
                  (local.get $r)))"#
        ),
    )
    .unwrap();
    let mut store = Store::new(&engine, State::default());
    let mut linker = linker(&engine);
    linker
        .func_wrap(
            "host",
            "reenter",
            |mut caller: Caller<'_, State>, depth: i32| -> Result<(), wazerox::Error> {
                let _guard = Guard;
                let leaf = caller.get_export("leaf").unwrap().into_func().unwrap();
                leaf.call(&mut caller, &[Val::I32(depth)], &mut [])?;
                Ok(())
            },
        )
        .unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    let dropped_before = DROPPED.load(Ordering::SeqCst);
    assert_eq!(run.call(&mut store, ()).unwrap(), 9);
    assert_eq!(
        DROPPED.load(Ordering::SeqCst) - dropped_before,
        4,
        "each host frame's guard dropped"
    );
}

#[test]
fn restore_on_another_thread_is_a_clean_error() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        format!(
            r#"(module {IMPORTS}
                (import "host" "elsewhere" (func $elsewhere))
                (func (export "run") (result i32)
                  (drop (call $checkpoint)) (call $elsewhere) (i32.const 1)))"#
        ),
    )
    .unwrap();
    let mut store = Store::new(&engine, State::default());
    let mut linker = linker(&engine);
    linker
        .func_wrap(
            "host",
            "elsewhere",
            |caller: Caller<'_, State>| -> Result<(), wazerox::Error> {
                let snapshot = caller.data().snapshot.clone().unwrap();
                let message = std::thread::spawn(move || {
                    let error: wazerox::Error = snapshot.restore(&[Val::I32(1)]).into();
                    error.to_string()
                })
                .join()
                .unwrap();
                assert!(message.contains("another thread"), "{message}");
                Ok(())
            },
        )
        .unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, ()).unwrap(), 1);
}

#[test]
fn restore_from_a_foreign_store_is_a_clean_error() {
    let engine = Engine::default();
    // Store B's module restores whatever snapshot it is handed.
    let module_b = Module::new(
        &engine,
        r#"(module (import "host" "restore" (func $restore (param i32)))
             (func (export "go") (call $restore (i32.const 1))))"#,
    )
    .unwrap();
    let shared: Arc<Mutex<Option<Snapshot>>> = Arc::default();
    let mut linker_b: Linker<()> = Linker::new(&engine);
    let from_a = shared.clone();
    linker_b
        .func_wrap(
            "host",
            "restore",
            move |_: Caller<'_, ()>, v: i32| -> Result<(), wazerox::Error> {
                let snapshot = from_a.lock().unwrap().clone().unwrap();
                Err(snapshot.restore(&[Val::I32(v)]).into())
            },
        )
        .unwrap();
    let store_b = Arc::new(Mutex::new(Store::new(&engine, ())));
    let instance_b = linker_b
        .instantiate(&mut *store_b.lock().unwrap(), &module_b)
        .unwrap();

    let module_a = Module::new(
        &engine,
        format!(
            r#"(module {IMPORTS}
                (import "host" "call_b" (func $call_b))
                (func (export "run") (result i32)
                  (drop (call $checkpoint)) (call $call_b) (i32.const 1)))"#
        ),
    )
    .unwrap();
    let mut store_a = Store::new(&engine, State::default());
    let mut linker_a = linker(&engine);
    let (to_b, b) = (shared.clone(), store_b.clone());
    linker_a
        .func_wrap(
            "host",
            "call_b",
            move |caller: Caller<'_, State>| -> Result<(), wazerox::Error> {
                *to_b.lock().unwrap() = caller.data().snapshot.clone();
                let mut store_b = b.lock().unwrap();
                let go = instance_b
                    .get_typed_func::<(), ()>(&mut *store_b, "go")
                    .unwrap();
                let error = go.call(&mut *store_b, ()).unwrap_err();
                assert!(error.to_string().contains("another store"), "{error}");
                Ok(())
            },
        )
        .unwrap();
    let instance_a = linker_a.instantiate(&mut store_a, &module_a).unwrap();
    let run = instance_a
        .get_typed_func::<(), i32>(&mut store_a, "run")
        .unwrap();
    assert_eq!(run.call(&mut store_a, ()).unwrap(), 1);
}

#[test]
fn wrong_results_are_a_clean_error() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        format!(
            r#"(module {IMPORTS}
                (import "host" "bad" (func $bad))
                (func (export "run") (result i32) (drop (call $checkpoint)) (call $bad) (i32.const 1)))"#
        ),
    )
    .unwrap();
    let mut linker = linker(&engine);
    linker
        .func_wrap(
            "host",
            "bad",
            |caller: Caller<'_, State>| -> Result<(), wazerox::Error> {
                let snapshot = caller.data().snapshot.clone().unwrap();
                Err(snapshot.restore(&[Val::I64(1)]).into())
            },
        )
        .unwrap();
    let mut store = Store::new(&engine, State::default());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    let error = run.call(&mut store, ()).unwrap_err();
    assert!(error.to_string().contains("do not match"), "{error}");
}

#[test]
fn trap_after_a_restore_has_a_correct_backtrace() {
    let (mut store, instance, _) = setup(&format!(
        r#"(module {IMPORTS}
            (func $boom (unreachable))
            (func $run (export "run") (result i32)
              (local $r i32)
              (local.set $r (call $checkpoint))
              (if (i32.eqz (local.get $r)) (then (call $restore (i32.const 1))))
              (call $boom)
              (local.get $r)))"#
    ));
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    let error = run.call(&mut store, ()).unwrap_err();
    let trap = error.as_trap().expect("a trap");
    assert_eq!(trap.code(), TrapCode::UnreachableCodeReached);
    let names: Vec<_> = trap
        .backtrace()
        .iter()
        .map(|f| f.func_name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["boom", "run"]);
    // The store stays usable: a second run traps the same way.
    assert_eq!(
        run.call(&mut store, ())
            .unwrap_err()
            .as_trap()
            .unwrap()
            .code(),
        TrapCode::UnreachableCodeReached
    );
}

/// Values the Wasm side keeps across the snapshotted host call — in callee-saved
/// registers or spilled, integer and float, in the calling function and in its
/// callers — must be exactly what they were when the call first returned.
#[test]
fn values_live_across_the_host_call_survive_a_restore() {
    let wat = format!(
        r#"(module {IMPORTS}
        (global $restored (mut i32) (i32.const 0))
        (func $mix (param $x i64) (result i64)
          (local $r i64)
          (local $a0 i64) (local $a1 i64) (local $a2 i64) (local $a3 i64)
          (local $a4 i64) (local $a5 i64) (local $a6 i64) (local $a7 i64)
          (local $f0 f64) (local $f1 f64) (local $f2 f64) (local $f3 f64)
          (local.set $a0 (i64.mul (local.get $x) (i64.const 3)))
          (local.set $a1 (i64.xor (local.get $x) (i64.const 0x5555)))
          (local.set $a2 (i64.rotl (local.get $x) (i64.const 13)))
          (local.set $a3 (i64.add (local.get $x) (i64.const 1000003)))
          (local.set $a4 (i64.mul (local.get $a0) (local.get $a1)))
          (local.set $a5 (i64.sub (local.get $a2) (local.get $a3)))
          (local.set $a6 (i64.shl (local.get $x) (i64.const 7)))
          (local.set $a7 (i64.popcnt (local.get $a4)))
          (local.set $f0 (f64.convert_i64_s (local.get $a0)))
          (local.set $f1 (f64.div (f64.convert_i64_s (local.get $x)) (f64.const 7)))
          (local.set $f2 (f64.sqrt (f64.convert_i64_u (local.get $a6))))
          (local.set $f3 (f64.mul (local.get $f1) (f64.const 1.5)))
          (local.set $r (i64.extend_i32_u (call $checkpoint)))
          (i64.add
            (i64.mul (local.get $r)
              (i64.add (i64.add (i64.add (local.get $a0) (local.get $a1))
                                (i64.add (local.get $a2) (local.get $a3)))
                       (i64.add (i64.add (local.get $a4) (local.get $a5))
                                (i64.add (local.get $a6) (local.get $a7)))))
            (i64.trunc_f64_s
              (f64.add (f64.add (local.get $f0) (local.get $f1))
                       (f64.add (local.get $f2) (local.get $f3))))))
        (func (export "run") (param $x i64) (result i64)
          (local $kept i64) (local $result i64)
          (local.set $kept (i64.mul (local.get $x) (i64.const 31)))
          (local.set $result (call $mix (local.get $x)))
          (if (i32.eqz (global.get $restored))
            (then (global.set $restored (i32.const 1)) (call $restore (i32.const 5))))
          (i64.add (local.get $result) (local.get $kept)))
        (func (export "reference") (param $x i64) (result i64)
          (global.set $restored (i32.const 1))
          (call $restore_free (local.get $x)))
        (func $restore_free (param $x i64) (result i64)
          (i64.add (call $mix (local.get $x)) (i64.mul (local.get $x) (i64.const 31)))))"#
    );
    for x in [1i64, 123_456_789, -987_654_321_012] {
        let (mut store, instance, _linker) = setup(&wat);
        let run = instance
            .get_typed_func::<i64, i64>(&mut store, "run")
            .unwrap();
        let restored = run.call(&mut store, x).unwrap();
        assert_eq!(store.data().taken, 1);

        // The same computation where the checkpoint simply returns 5.
        let engine = store.engine().clone();
        let module = Module::new(&engine, &wat).unwrap();
        let mut linker = Linker::new(&engine);
        linker
            .func_wrap("host", "checkpoint", |_: Caller<'_, ()>| 5i32)
            .unwrap();
        linker
            .func_wrap("host", "restore", |_: Caller<'_, ()>, _: i32| {})
            .unwrap();
        let mut plain = Store::new(&engine, ());
        let instance = linker.instantiate(&mut plain, &module).unwrap();
        let reference = instance
            .get_typed_func::<i64, i64>(&mut plain, "reference")
            .unwrap();
        assert_eq!(restored, reference.call(&mut plain, x).unwrap(), "x = {x}");
    }
}
