//! Allocation counts of hot paths. A counting global allocator (per thread, so
//! tests running in parallel do not see each other's allocations) lives in its
//! own test binary: it would slow every other test down.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use wazerox::{Engine, Func, FuncType, Instance, Linker, Module, Store, Val, ValType};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; counting touches only a const-
// initialised thread-local `Cell` (no allocation, no destructor).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

const LOOP: &str = r#"(module
  (import "host" "add" (func $add (param i32 i64) (result i64 i32)))
  (func (export "loop") (param $n i32) (result i64)
    (local $acc i64) (local $flag i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (call $add (local.get $n) (local.get $acc))
      (local.set $flag)
      (local.set $acc)
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $acc)))"#;

/// Issue 22: a `Func::new`/`Linker::func_new` host call cloned the function type
/// and allocated two `Vec<Val>` per call; `Func::call` cloned the type and
/// allocated its value array.
#[test]
fn dynamic_host_calls_and_untyped_calls_do_not_allocate() {
    let engine = Engine::default();
    let module = Module::new(&engine, LOOP).unwrap();
    let mut linker: Linker<u64> = Linker::new(&engine);
    linker
        .func_new(
            "host",
            "add",
            FuncType::new([ValType::I32, ValType::I64], [ValType::I64, ValType::I32]),
            |mut caller, params, results| {
                *caller.data_mut() += 1;
                let n = params[0].i32().unwrap();
                results[0] = Val::I64(params[1].i64().unwrap() + i64::from(n));
                results[1] = Val::I32(n & 1);
                Ok(())
            },
        )
        .unwrap();
    let mut store = Store::new(&engine, 0u64);
    let instance: Instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance.get_func(&mut store, "loop").unwrap();
    let mut results = [Val::I64(0)];
    // The first call grows the store's reusable buffers.
    run.call(&mut store, &[Val::I32(10)], &mut results).unwrap();
    assert_eq!(results[0].i64(), Some(55));
    let n = allocations_during(|| {
        run.call(&mut store, &[Val::I32(1000)], &mut results)
            .unwrap();
    });
    assert_eq!(results[0].i64(), Some(500_500), "the host function ran");
    assert_eq!(*store.data(), 1010, "once per iteration");
    assert_eq!(
        n, 0,
        "allocations in 1000 dynamic host calls and one Func::call"
    );
}

/// A dynamic host function that calls back into Wasm, which calls it again: each
/// level has its own parameters and results (the reused buffer is not shared).
#[test]
fn nested_dynamic_host_calls_keep_their_own_values() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
          (import "host" "down" (func $down (param i32) (result i32)))
          (func (export "enter") (param i32) (result i32)
            (i32.add (call $down (local.get 0)) (i32.const 1))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, None::<Func>);
    let down = Func::new(
        &mut store,
        FuncType::new([ValType::I32], [ValType::I32]),
        |mut caller, params, results| {
            let depth = params[0].i32().unwrap();
            let value = if depth == 0 {
                100
            } else {
                let enter = caller.data().unwrap();
                let mut inner = [Val::I32(0)];
                enter.call(&mut caller, &[Val::I32(depth - 1)], &mut inner)?;
                // Our own parameter is untouched by the nested call.
                assert_eq!(params[0].i32(), Some(depth));
                inner[0].i32().unwrap() * 2
            };
            results[0] = Val::I32(value);
            Ok(())
        },
    );
    let instance = Instance::new(&mut store, &module, &[down.into()]).unwrap();
    let enter = instance.get_func(&mut store, "enter").unwrap();
    *store.data_mut() = Some(enter);
    let mut results = [Val::I32(0)];
    enter
        .call(&mut store, &[Val::I32(3)], &mut results)
        .unwrap();
    // depth 0: 100 + 1; each level above: 2x + 1.
    assert_eq!(results[0].i32(), Some(((101 * 2 + 1) * 2 + 1) * 2 + 1));
}
