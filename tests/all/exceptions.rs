//! Exception handling across the host boundary: uncaught exceptions become errors
//! carrying tag and payload, host functions throw Wasm exceptions, exceptions pass
//! through host frames (whose destructors run), and traps are never catchable.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use wazerox::{
    Caller, Config, Engine, Error, ErrorKind, ExnRef, Extern, Func, FuncType, Instance, Module,
    Store, Tag, TrapCode, Val, ValType,
};

fn engine() -> Engine {
    let mut config = Config::new();
    config.wasm_legacy_exceptions(true);
    Engine::new(&config).unwrap()
}

#[test]
fn an_uncaught_exception_is_an_error_with_its_tag_and_payload() {
    let engine = engine();
    let module = Module::new(
        &engine,
        r#"(module
            (tag $e (export "e") (param i32 i64))
            (func $inner (param i32) (throw $e (local.get 0) (i64.const -5)))
            (func (export "run") (param i32) (call $inner (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let run = instance.get_func(&mut store, "run").unwrap();
    let error = run.call(&mut store, &[Val::I32(17)], &mut []).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Exception, "{error}");
    assert!(error.as_trap().is_none());
    let exn = *error.as_exception().expect("carries the exception");
    let Some(Extern::Tag(exported)) = instance.get_export(&mut store, "e") else {
        panic!("tag export")
    };
    assert_eq!(exn.tag(&mut store).unwrap(), exported);
    let fields = exn.fields(&mut store).unwrap();
    assert_eq!(fields[0].i32(), Some(17));
    assert_eq!(fields[1].i64(), Some(-5));
    assert_eq!(
        exported.ty(&store),
        FuncType::new([ValType::I32, ValType::I64], [])
    );
}

#[test]
fn a_host_function_throws_into_wasm_and_wasm_catches_it() {
    let engine = engine();
    let mut store = Store::new(&engine, ());
    let tag = Tag::new(&mut store, &FuncType::new([ValType::I32], [])).unwrap();
    let thrower_tag = tag;
    let throw = Func::new(
        &mut store,
        FuncType::new([ValType::I32], []),
        move |mut caller: Caller<'_, ()>, args, _| {
            let exn = ExnRef::new(
                &mut caller,
                &thrower_tag,
                &[Val::I32(args[0].i32().unwrap() * 2)],
            )?;
            Err(Error::throw(exn))
        },
    );
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "tag" (tag $e (param i32)))
            (import "host" "throw" (func $throw (param i32)))
            (func (export "catch") (param i32) (result i32)
              (block $h (result i32)
                (try_table (catch $e $h) (call $throw (local.get 0)))
                (i32.const -1)))
            (func (export "legacy") (param i32) (result i32)
              try (result i32)
                (call $throw (local.get 0))
                (i32.const -1)
              catch $e
                (i32.add (i32.const 1))
              end))"#,
    )
    .unwrap();
    let instance = Instance::new(&mut store, &module, &[tag.into(), throw.into()]).unwrap();
    let catch = instance
        .get_typed_func::<i32, i32>(&mut store, "catch")
        .unwrap();
    assert_eq!(catch.call(&mut store, 21).unwrap(), 42);
    let legacy = instance
        .get_typed_func::<i32, i32>(&mut store, "legacy")
        .unwrap();
    assert_eq!(legacy.call(&mut store, 5).unwrap(), 11);
    // Called directly from the host, the same function's exception is the error.
    let error = throw.call(&mut store, &[Val::I32(4)], &mut []).unwrap_err();
    let exn = *error.as_exception().expect("exception");
    assert_eq!(exn.fields(&mut store).unwrap()[0].i32(), Some(8));
}

/// Counts drops, to see that host frames an exception passes are unwound.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn an_exception_passes_through_host_frames_whose_destructors_run() {
    let engine = engine();
    let module = Module::new(
        &engine,
        r#"(module
            (tag $e (export "e") (param i32))
            (import "host" "reenter" (func $reenter (param i32) (result i32)))
            (func (export "inner") (param i32) (result i32)
              (throw $e (i32.add (local.get 0) (i32.const 100))))
            (func (export "outer") (param i32) (result i32)
              (block $h (result i32)
                (try_table (result i32) (catch $e $h)
                  (call $reenter (local.get 0))))))"#,
    )
    .unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut store = Store::new(&engine, None::<Instance>);
    let counter = drops.clone();
    let reenter = Func::new(
        &mut store,
        FuncType::new([ValType::I32], [ValType::I32]),
        move |mut caller: Caller<'_, Option<Instance>>, args, results| {
            let _guard = DropCounter(counter.clone());
            let instance = caller.data().expect("instance set");
            let inner = instance.get_func(&mut caller, "inner").unwrap();
            // The inner call's exception comes back as an error; `?` returns it,
            // which throws it again in the Wasm caller.
            inner.call(&mut caller, args, results)?;
            unreachable!("inner always throws")
        },
    );
    let instance = Instance::new(&mut store, &module, &[reenter.into()]).unwrap();
    *store.data_mut() = Some(instance);
    let outer = instance
        .get_typed_func::<i32, i32>(&mut store, "outer")
        .unwrap();
    assert_eq!(outer.call(&mut store, 1).unwrap(), 101);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the host frame was unwound"
    );
    assert_eq!(outer.call(&mut store, 2).unwrap(), 102);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn traps_are_never_caught() {
    let engine = engine();
    let module = Module::new(
        &engine,
        r#"(module
            (func $trap (unreachable))
            (func $div (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0)))
            (func (export "catch_all") (result i32)
              (block $h
                (try_table (catch_all $h) (call $trap)))
              (i32.const 1))
            (func (export "legacy") (result i32)
              try (result i32)
                (call $div (i32.const 0))
              catch_all
                (i32.const 2)
              end))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    for (name, code) in [
        ("catch_all", TrapCode::UnreachableCodeReached),
        ("legacy", TrapCode::IntegerDivisionByZero),
    ] {
        let f = instance.get_func(&mut store, name).unwrap();
        let error = f.call(&mut store, &[], &mut [Val::I32(0)]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Trap, "{name}: {error}");
        assert_eq!(error.as_trap().unwrap().code(), code);
    }
}

#[test]
fn exnref_values_travel_through_globals_tables_and_the_api() {
    let engine = engine();
    let module = Module::new(
        &engine,
        r#"(module
            (tag $e (param i32))
            (global $g (mut exnref) (ref.null exn))
            (table $t 2 exnref)
            (func (export "catch") (param i32) (result exnref)
              (block $h (result exnref)
                (try_table (catch_all_ref $h) (throw $e (local.get 0)))
                (unreachable)))
            (func (export "store") (param exnref)
              (global.set $g (local.get 0))
              (table.set $t (i32.const 1) (local.get 0)))
            (func (export "rethrow_global") (throw_ref (global.get $g)))
            (func (export "rethrow_table") (throw_ref (table.get $t (i32.const 1))))
            (func (export "rethrow_null") (throw_ref (ref.null exn))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let catch = instance.get_func(&mut store, "catch").unwrap();
    let mut results = [Val::ExnRef(None)];
    catch
        .call(&mut store, &[Val::I32(9)], &mut results)
        .unwrap();
    let Val::ExnRef(Some(exn)) = results[0] else {
        panic!("an exnref")
    };
    assert_eq!(exn.fields(&mut store).unwrap()[0].i32(), Some(9));
    let store_fn = instance.get_func(&mut store, "store").unwrap();
    store_fn
        .call(&mut store, &[Val::ExnRef(Some(exn))], &mut [])
        .unwrap();
    for name in ["rethrow_global", "rethrow_table"] {
        let f = instance.get_func(&mut store, name).unwrap();
        let error = f.call(&mut store, &[], &mut []).unwrap_err();
        assert_eq!(
            error.as_exception(),
            Some(&exn),
            "{name} rethrows the same object"
        );
    }
    let null = instance.get_func(&mut store, "rethrow_null").unwrap();
    let error = null.call(&mut store, &[], &mut []).unwrap_err();
    assert_eq!(
        error.as_trap().map(|t| t.code()),
        Some(TrapCode::NullReference)
    );
}

#[test]
fn exceptions_are_caught_across_many_frames_and_the_stack_is_reusable() {
    let engine = engine();
    let module = Module::new(
        &engine,
        r#"(module
            (tag $e (param i32))
            (func $down (param i32) (result i32)
              (if (i32.eqz (local.get 0)) (then (throw $e (i32.const 77))))
              (i32.add (call $down (i32.sub (local.get 0) (i32.const 1))) (i32.const 1)))
            (func (export "run") (param i32) (result i32)
              (block $h (result i32)
                (try_table (result i32) (catch $e $h) (call $down (local.get 0))))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    for depth in [0, 1, 10, 100, 1000, 5000] {
        for _ in 0..3 {
            assert_eq!(run.call(&mut store, depth).unwrap(), 77, "depth {depth}");
        }
    }
}

#[test]
fn legacy_exceptions_are_rejected_unless_enabled() {
    let engine = Engine::default();
    let Err(error) = Module::new(&engine, r#"(module (func try catch_all end))"#) else {
        panic!("legacy try accepted without wasm_legacy_exceptions")
    };
    assert_eq!(error.kind(), ErrorKind::Validation, "{error}");
    Module::new(
        &engine,
        r#"(module (tag) (func (try_table (catch_all 0))))"#,
    )
    .expect("exnref encoding is on by default");
}

/// Interplay with checkpoint/restore: a restore discards frames that sit inside
/// `try_table` and legacy `try` blocks. Their handlers must be gone with them: the
/// restore itself is not an exception (no handler of the discarded frames runs), and
/// a throw after the restore reaches the handler live at that point.
#[test]
fn a_restore_across_handler_frames_leaves_no_stale_handler_behind() {
    let engine = engine();
    let mut linker = wazerox::Linker::new(&engine);
    crate::checkpoint::define_checkpoint_functions::<crate::checkpoint::Snapshots>(&mut linker);
    let module = Module::new(
        &engine,
        r#"(module
            (import "host" "checkpoint" (func $checkpoint (result i32)))
            (import "host" "restore" (func $restore (param i32)))
            (tag $e (param i32))
            (global $stale_handlers (mut i32) (i32.const 0))
            ;; Each level sits inside a handler for $e (exnref encoding on even
            ;; levels, legacy on odd ones); the deepest one restores.
            (func $deep (param i32)
              (if (i32.eqz (local.get 0)) (then (call $restore (i32.const 7)) (return)))
              (if (i32.and (local.get 0) (i32.const 1))
                (then
                  try
                    (call $deep (i32.sub (local.get 0) (i32.const 1)))
                  catch $e
                    (drop)
                    (global.set $stale_handlers (i32.add (global.get $stale_handlers) (i32.const 1)))
                  catch_all
                    (global.set $stale_handlers (i32.add (global.get $stale_handlers) (i32.const 1)))
                  end)
                (else
                  (block $h
                    (try_table (catch_all $h)
                      (call $deep (i32.sub (local.get 0) (i32.const 1))))
                    (return))
                  (global.set $stale_handlers (i32.add (global.get $stale_handlers) (i32.const 1))))))
            (func (export "run") (result i32)
              (local $r i32)
              (block $outer (result i32)
                (try_table (result i32) (catch $e $outer)
                  (local.set $r (call $checkpoint))
                  (if (i32.eqz (local.get $r))
                    (then (call $deep (i32.const 6)) (unreachable)))
                  ;; Back from the restore: throw; only $outer may catch it.
                  (throw $e (i32.add (local.get $r) (i32.const 100))))))
            (func (export "stale_handlers") (result i32) (global.get $stale_handlers))
            ;; A throw after the restore, in a later call with no handler: uncaught.
            (func (export "throw_uncaught") (param i32) (throw $e (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, crate::checkpoint::Snapshots::default());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    let stale = instance
        .get_typed_func::<(), i32>(&mut store, "stale_handlers")
        .unwrap();
    for _ in 0..3 {
        assert_eq!(run.call(&mut store, ()).unwrap(), 107);
        assert_eq!(
            stale.call(&mut store, ()).unwrap(),
            0,
            "a discarded handler ran"
        );
    }
    let uncaught = instance.get_func(&mut store, "throw_uncaught").unwrap();
    let error = uncaught
        .call(&mut store, &[Val::I32(9)], &mut [])
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Exception, "{error}");
    let exn = *error.as_exception().unwrap();
    assert_eq!(exn.fields(&mut store).unwrap()[0].i32(), Some(9));
    assert_eq!(run.call(&mut store, ()).unwrap(), 107);
}

/// Exceptions are per thread: four threads throw and catch in a loop at the same
/// time (each its own store, one shared memory), and an uncaught exception in one
/// of them ends only that thread's call.
#[test]
fn threads_throw_and_catch_independently() {
    let engine = engine();
    let module = Module::new(
        &engine,
        r#"(module
            (import "env" "memory" (memory 1 1 shared))
            (tag $e (param i32))
            (func $thrower (param i32) (throw $e (local.get 0)))
            ;; Sums 0..n by throwing each value through a handler.
            (func (export "sum") (param $n i32) (result i32)
              (local $i i32) (local $sum i32)
              (loop $l
                (block $h (result i32)
                  (try_table (catch $e $h) (call $thrower (local.get $i)))
                  (unreachable))
                (local.set $sum (i32.add (local.get $sum)))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
              (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
              (local.get $sum))
            (func (export "escape") (param i32) (call $thrower (local.get 0))))"#,
    )
    .unwrap();
    let memory = wazerox::SharedMemory::new(&engine, wazerox::MemoryType::shared(1, 1)).unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(5));
    let threads: Vec<_> = (0..5)
        .map(|index| {
            let (engine, module, memory, barrier) = (
                engine.clone(),
                module.clone(),
                memory.clone(),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                let mut store = Store::new(&engine, ());
                let instance = Instance::new(&mut store, &module, &[memory.into()]).unwrap();
                barrier.wait();
                if index == 4 {
                    let escape = instance.get_func(&mut store, "escape").unwrap();
                    let error = escape
                        .call(&mut store, &[Val::I32(-3)], &mut [])
                        .unwrap_err();
                    assert_eq!(error.kind(), ErrorKind::Exception, "{error}");
                    let exn = *error.as_exception().unwrap();
                    return exn.fields(&mut store).unwrap()[0].i32().unwrap();
                }
                let sum = instance
                    .get_typed_func::<i32, i32>(&mut store, "sum")
                    .unwrap();
                let mut last = 0;
                for _ in 0..5 {
                    last = sum.call(&mut store, 20_000).unwrap();
                }
                last
            })
        })
        .collect();
    let results: Vec<i32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let expected = (0..20_000i64).sum::<i64>() as i32;
    assert_eq!(results, [expected, expected, expected, expected, -3]);
    let mut count = [0u8; 4];
    memory.read(0, &mut count).unwrap();
    assert_eq!(u32::from_le_bytes(count), 20, "every sum call finished");
}

/// Fuel and epoch interruptions are traps, so no handler catches them, also not a
/// `catch_all` around the loop; the store stays usable and its exceptions work.
#[test]
fn fuel_and_epoch_interruptions_pass_through_handlers() {
    const SPIN: &str = r#"(module
        (tag $e (param i32))
        (func $spin (loop $l (br $l)))
        (func (export "spin_in_try") (result i32)
          (block $h
            (try_table (catch_all $h) (call $spin)))
          (i32.const 1))
        (func (export "spin_in_legacy_try") (result i32)
          try (result i32)
            (call $spin) (i32.const 0)
          catch_all
            (i32.const 2)
          end)
        (func (export "throw_catch") (param i32) (result i32)
          (block $h (result i32)
            (try_table (catch $e $h) (throw $e (local.get 0)))
            (unreachable))))"#;
    for fuel in [true, false] {
        let mut config = Config::new();
        config.wasm_legacy_exceptions(true);
        if fuel {
            config.consume_fuel(true);
        } else {
            config.epoch_interruption(true);
        }
        let engine = Engine::new(&config).unwrap();
        let module = Module::new(&engine, SPIN).unwrap();
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let throw_catch = instance
            .get_typed_func::<i32, i32>(&mut store, "throw_catch")
            .unwrap();
        for name in ["spin_in_try", "spin_in_legacy_try"] {
            let expected = if fuel {
                store.set_fuel(50_000).unwrap();
                TrapCode::OutOfFuel
            } else {
                store.set_epoch_deadline(1);
                engine.increment_epoch();
                TrapCode::Interrupt
            };
            let spin = instance
                .get_typed_func::<(), i32>(&mut store, name)
                .unwrap();
            let error = spin.call(&mut store, ()).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Trap, "{name}: {error}");
            assert_eq!(error.as_trap().unwrap().code(), expected, "{name}");
            if fuel {
                store.set_fuel(10_000).unwrap();
            } else {
                store.set_epoch_deadline(1_000_000);
            }
            assert_eq!(
                throw_catch.call(&mut store, 41).unwrap(),
                41,
                "after {name}"
            );
        }
    }
}

// Exception objects are collected: a guest throwing in a loop must not grow the
// host (docs/runtime.md, "Exception objects"). Each test throws many more
// objects than the collection threshold (4096) within one call, and checks that
// every object still referenced survived with its payload.

/// Functions over the tag `$e (param i32)` the collection tests share:
/// `$churn n` throws and catches n exceptions; `$catch_ref v` returns the
/// exnref of a caught `$e v`; `$payload x` rethrows `x` and returns its value.
const EXN_HELPERS: &str = r#"
        (func $churn (param $n i32)
            (loop $next
                (block $caught (result i32)
                    (try_table (catch $e $caught) (throw $e (local.get $n)))
                    (unreachable))
                drop
                (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
        (func $catch_ref (param i32) (result exnref)
            (local $x exnref)
            (block $h (result i32 exnref)
                (try_table (catch_ref $e $h) (throw $e (local.get 0)))
                (unreachable))
            (local.set $x)
            drop
            (local.get $x))
        (func $payload (param exnref) (result i32)
            (block $h (result i32)
                (try_table (catch $e $h) (throw_ref (local.get 0)))
                (unreachable)))
"#;

/// Runs `run` (an `() -> i32` export of `wat`) and returns its outcome and the
/// store's exception heap counts afterwards.
fn run_counting(config: &Config, wat: &str) -> (Result<i32, Error>, wazerox::GcHeapStats) {
    let engine = Engine::new(config).unwrap();
    let module = Module::new(&engine, wat).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    let result = run.call(&mut store, ());
    (result, store.exception_heap_stats())
}

#[test]
fn caught_exceptions_are_freed_while_the_call_runs() {
    // 10^6 throws caught by `catch` (no exnref kept), the sum of payloads checked.
    let wat = r#"(module
        (tag $e (param i32))
        (func (export "run") (result i32)
            (local $i i32) (local $sum i32)
            (loop $next
                (block $caught (result i32)
                    (try_table (catch $e $caught) (throw $e (local.get $i)))
                    (unreachable))
                (local.set $sum (i32.add (local.get $sum)))
                (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                                       (i32.const 1000000))))
            (local.get $sum)))"#;
    let (sum, stats) = run_counting(&engine_config(), wat);
    let sum = sum.unwrap();
    assert_eq!(sum, (0..1_000_000i64).sum::<i64>() as i32);
    assert!(stats.collections > 0, "{stats:?}");
    assert!(stats.objects < 10_000, "objects were not freed: {stats:?}");
}

fn engine_config() -> Config {
    let mut config = Config::new();
    config.wasm_legacy_exceptions(true);
    config
}

#[test]
fn references_held_in_frames_survive_collections() {
    // An exnref kept in a local (catch_ref), one kept only as the payload of
    // another exception held in a local, and a legacy `catch` whose caught
    // exception is rethrown after a callee threw 20,000 others: all survive.
    let wat = format!(
        r#"(module
        (tag $e (param i32))
        (tag $boxed (param exnref))
        {EXN_HELPERS}
        (func (export "run") (result i32)
            (local $kept exnref) (local $box exnref) (local $r i32)
            (local.set $kept (call $catch_ref (i32.const 111)))
            (block $h (result exnref exnref)
                (try_table (catch_ref $boxed $h)
                    (throw $boxed (call $catch_ref (i32.const 222))))
                (unreachable))
            (local.set $box) drop
            (call $churn (i32.const 20000))
            ;; legacy: the caught exception lives only in the handler's frame
            try (result i32)
                try (result i32)
                    (throw $e (i32.const 333))
                catch $e
                    drop
                    (call $churn (i32.const 20000))
                    rethrow 0
                end
            catch $e
            end
            local.set $r
            (i32.add (i32.add
                (call $payload (local.get $kept))
                (block $b (result exnref)
                    (try_table (catch $boxed $b) (throw_ref (local.get $box)))
                    (unreachable))
                (call $payload)) ;; inner exnref → payload 222
            (local.get $r))))"#
    );
    let (result, stats) = run_counting(&engine_config(), &wat);
    let result = result.unwrap();
    assert_eq!(result, 111 + 222 + 333);
    assert!(stats.collections >= 2, "{stats:?}");
    assert!(stats.objects < 10_000, "{stats:?}");
}

#[test]
fn references_stored_in_globals_and_tables_survive_collections() {
    let wat = format!(
        r#"(module
        (tag $e (param i32))
        (global $g (mut exnref) (ref.null exn))
        (table $t 2 exnref)
        {EXN_HELPERS}
        (func (export "store")
            (global.set $g (call $catch_ref (i32.const 5)))
            (table.set $t (i32.const 0) (call $catch_ref (i32.const 6)))
            (table.fill $t (i32.const 1) (call $catch_ref (i32.const 7)) (i32.const 1))
            (drop (table.grow $t (call $catch_ref (i32.const 8)) (i32.const 1))))
        (func (export "churn") (call $churn (i32.const 20000)))
        (func (export "run") (result i32)
            (i32.add
                (i32.add (call $payload (global.get $g))
                         (call $payload (table.get $t (i32.const 0))))
                (i32.add (call $payload (table.get $t (i32.const 1)))
                         (call $payload (table.get $t (i32.const 2)))))))"#
    );
    let engine = Engine::new(&engine_config()).unwrap();
    let module = Module::new(&engine, &wat).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let call = |store: &mut Store<()>, name: &str| {
        instance
            .get_func(&mut *store, name)
            .unwrap()
            .call(store, &[], &mut [])
            .unwrap()
    };
    call(&mut store, "store");
    call(&mut store, "churn");
    call(&mut store, "churn");
    let stats = store.exception_heap_stats();
    assert!(stats.collections >= 2, "{stats:?}");
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, ()).unwrap(), 5 + 6 + 7 + 8);
}

#[test]
fn exceptions_the_host_has_seen_stay_readable() {
    // The host keeps the exception of an uncaught throw, the guest then throws
    // and catches 20,000 more; the host's handle still reads its payload.
    let wat = format!(
        r#"(module
        (tag $e (export "e") (param i32))
        (func (export "throw") (param i32) (throw $e (local.get 0)))
        {EXN_HELPERS}
        (func (export "churn") (call $churn (i32.const 20000))))"#
    );
    let engine = Engine::new(&engine_config()).unwrap();
    let module = Module::new(&engine, &wat).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let throw = instance.get_func(&mut store, "throw").unwrap();
    let error = throw
        .call(&mut store, &[Val::I32(42)], &mut [])
        .unwrap_err();
    let exn = *error.as_exception().unwrap();
    let churn = instance.get_func(&mut store, "churn").unwrap();
    churn.call(&mut store, &[], &mut []).unwrap();
    assert!(store.exception_heap_stats().collections > 0);
    assert_eq!(exn.fields(&mut store).unwrap()[0].i32(), Some(42));
}

#[test]
fn a_guest_hoarding_exceptions_traps_at_the_heap_cap() {
    // Every exception is kept in a growing table: nothing can be freed, and the
    // store's cap (`gc_heap_limit`, 1 MiB here) ends the call with a clean trap.
    let wat = r#"(module
        (tag $e (param i32))
        (table $t 0 exnref)
        (func (export "run") (result i32)
            (local $x exnref)
            (loop $next
                (block $h (result i32 exnref)
                    (try_table (catch_ref $e $h) (throw $e (i32.const 1)))
                    (unreachable))
                (local.set $x)
                drop
                (drop (table.grow $t (local.get $x) (i32.const 1)))
                (br $next))
            (i32.const 0)))"#;
    let mut config = engine_config();
    config.gc_heap_limit(1 << 20);
    let (result, stats) = run_counting(&config, wat);
    let error = result.unwrap_err();
    assert_eq!(
        error.as_trap().map(|t| t.code()),
        Some(TrapCode::GcHeapExhausted),
        "{error}"
    );
    assert!(stats.bytes <= 1 << 20, "{stats:?}");
}
