//! The pooling allocator beyond memories (issue 22): pooled instances and
//! tables reset on reuse, per-pool limits and their errors, fiber stacks.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use wazerox::{
    Config, Engine, ErrorKind, Instance, InstanceAllocationStrategy, Linker, Module, PoolingConfig,
    Store, Val,
};

fn engine(pooling: &PoolingConfig) -> Engine {
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling.clone()));
    Engine::new(&config).unwrap()
}

/// Table, global and memory, each with an initial value; `dirty` overwrites
/// all of them, `observe` reports what it sees as one number.
const STATEFUL: &str = r#"(module
  (type $t (func (result i32)))
  (table $table (export "table") 4 8 funcref)
  (global $g (mut i32) (i32.const 7))
  (memory 1 2)
  (data (i32.const 16) "\2a")
  (func $one (type $t) (i32.const 1))
  (func $two (type $t) (i32.const 2))
  (elem (table $table) (i32.const 1) func $one $two)
  ;; Only the inline `table.set` path: no runtime call touches the table.
  (func (export "set_only")
    (table.set $table (i32.const 2) (ref.func $one)))
  (func (export "dirty")
    (table.set $table (i32.const 0) (ref.func $two))
    (table.set $table (i32.const 1) (ref.func $two))
    (drop (table.grow $table (ref.func $one) (i32.const 2)))
    (global.set $g (i32.const 99))
    (i32.store8 (i32.const 16) (i32.const 5))
    (i32.store8 (i32.const 100) (i32.const 6))
    (drop (memory.grow (i32.const 1))))
  ;; 1 if everything is as instantiation left it, else 0.
  (func (export "fresh") (result i32)
    (i32.and
      (i32.and
        (i32.and (ref.is_null (table.get $table (i32.const 0)))
                 (i32.eq (call_indirect $table (type $t) (i32.const 1)) (i32.const 1)))
        (i32.and (i32.eq (call_indirect $table (type $t) (i32.const 2)) (i32.const 2))
                 (i32.eq (table.size $table) (i32.const 4))))
      (i32.and
        (i32.and (i32.eq (global.get $g) (i32.const 7))
                 (i32.eq (memory.size) (i32.const 1)))
        (i32.and (i32.eq (i32.load8_u (i32.const 16)) (i32.const 42))
                 (i32.eqz (i32.load8_u (i32.const 100))))))))"#;

/// Issue 22: a pooled instance's state is fully reset on reuse. With one slot of
/// each kind, every round must reuse the last round's instance, table and
/// memory slots (or fail with `PoolExhausted`).
#[test]
fn a_pooled_instance_sees_fresh_table_globals_and_memory() {
    let mut pooling = PoolingConfig::new();
    pooling
        .total_core_instances(1)
        .total_tables(1)
        .total_memories(1)
        .max_memory_size(1 << 20);
    let engine = engine(&pooling);
    let module = Module::new(&engine, STATEFUL).unwrap();
    let pre = Linker::new(&engine).instantiate_pre(&module).unwrap();
    // Each round dirties the instance a different way: everything at once,
    // only compiled `table.set` (inline, no runtime call), only the host's
    // `Table::set`, or nothing (the table slot is then reused as it is).
    for round in 0..8 {
        let mut store = Store::new(&engine, ());
        let instance = pre.instantiate(&mut store).unwrap();
        let fresh = instance
            .get_typed_func::<(), i32>(&mut store, "fresh")
            .unwrap();
        assert_eq!(fresh.call(&mut store, ()).unwrap(), 1, "round {round}");
        let dirtied = match round % 4 {
            0 => {
                let dirty = instance.get_typed_func::<(), ()>(&mut store, "dirty");
                dirty.unwrap().call(&mut store, ()).unwrap();
                true
            }
            1 => {
                let set = instance.get_typed_func::<(), ()>(&mut store, "set_only");
                set.unwrap().call(&mut store, ()).unwrap();
                true
            }
            2 => {
                let table = instance.get_table(&mut store, "table").unwrap();
                let one = table.get(&mut store, 1).unwrap();
                table.set(&mut store, 0, one).unwrap();
                true
            }
            _ => false,
        };
        if dirtied {
            assert_eq!(
                fresh.call(&mut store, ()).unwrap(),
                0,
                "dirty in round {round}"
            );
        }
    }
    // The same holds for a store that stays alive while another is used: the
    // pool then is exhausted, cleanly.
    let mut held = Store::new(&engine, ());
    pre.instantiate(&mut held).unwrap();
    let mut other = Store::new(&engine, ());
    let err = pre.instantiate(&mut other).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PoolExhausted);
    assert!(err.to_string().contains("all 1 instance slots"), "{err}");
}

/// On-demand instances of the same module get the same table contents from
/// the module's table image, and growth still works.
#[test]
fn table_images_fill_on_demand_instances_too() {
    let engine = Engine::default();
    let module = Module::new(&engine, STATEFUL).unwrap();
    let mut store = Store::new(&engine, ());
    for _ in 0..2 {
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let fresh = instance.get_func(&mut store, "fresh").unwrap();
        let mut result = [Val::I32(0)];
        fresh.call(&mut store, &[], &mut result).unwrap();
        assert_eq!(result[0].i32(), Some(1));
    }
}

#[test]
fn pool_limits_are_errors_that_name_the_limit() {
    let table = |min: u32| format!("(module (table {min} funcref))");
    let mut pooling = PoolingConfig::new();
    pooling
        .total_core_instances(4)
        .total_tables(1)
        .table_elements(10);
    let engine = engine(&pooling);
    let small = Module::new(&engine, table(10)).unwrap();
    let mut a = Store::new(&engine, ());
    Instance::new(&mut a, &small, &[]).unwrap();
    let mut b = Store::new(&engine, ());
    let err = Instance::new(&mut b, &small, &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PoolExhausted);
    assert!(err.to_string().contains("all 1 table slots"), "{err}");
    drop(a);
    Instance::new(&mut b, &small, &[]).unwrap();
    drop(b);

    let big = Module::new(&engine, table(11)).unwrap();
    let err = Instance::new(&mut Store::new(&engine, ()), &big, &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Instantiation);
    assert!(err.to_string().contains("limit of 10 elements"), "{err}");

    let two_tables = Module::new(&engine, "(module (table 1 funcref) (table 1 funcref))").unwrap();
    let err = Instance::new(&mut Store::new(&engine, ()), &two_tables, &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Instantiation);
    assert!(err.to_string().contains("2 tables"), "{err}");

    let two_memories = Module::new(&engine, "(module (memory 1) (memory 1))").unwrap();
    let err = Instance::new(&mut Store::new(&engine, ()), &two_memories, &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Instantiation);
    assert!(err.to_string().contains("2 memories"), "{err}");

    // Growth stops at `table_elements`.
    let grower = Module::new(
        &engine,
        r#"(module (table 2 funcref)
            (func (export "grow") (param i32) (result i32)
              (table.grow (ref.null func) (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &grower, &[]).unwrap();
    let grow = instance
        .get_typed_func::<i32, i32>(&mut store, "grow")
        .unwrap();
    assert_eq!(grow.call(&mut store, 9).unwrap(), -1);
    assert_eq!(grow.call(&mut store, 8).unwrap(), 2);
}

/// `total_stacks` bounds the fibers of async calls alive at once.
#[test]
fn total_stacks_bounds_concurrent_async_calls() {
    let mut pooling = PoolingConfig::new();
    pooling.total_stacks(1);
    let mut config = Config::new();
    config
        .async_support(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(
        &engine,
        r#"(module (import "host" "wait" (func $wait))
            (func (export "run") (call $wait)))"#,
    )
    .unwrap();
    let mut linker: Linker<()> = Linker::new(&engine);
    linker
        .func_wrap_async("host", "wait", |_caller, (): ()| {
            Box::new(std::future::pending::<()>())
        })
        .unwrap();
    let instantiate = |store: &mut Store<()>| {
        let instance = linker.instantiate_pre(&module).unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        let mut future = pin!(instance.instantiate_async(&mut *store));
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(result) => result.unwrap(),
            Poll::Pending => panic!("instantiation does not wait"),
        }
    };
    let mut first = Store::new(&engine, ());
    let mut second = Store::new(&engine, ());
    let a = instantiate(&mut first);
    let b = instantiate(&mut second);
    let run_a = a.get_typed_func::<(), ()>(&mut first, "run").unwrap();
    let run_b = b.get_typed_func::<(), ()>(&mut second, "run").unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    {
        let mut waiting = pin!(run_a.call_async(&mut first, ()));
        assert!(
            waiting.as_mut().poll(&mut cx).is_pending(),
            "holds its stack"
        );
        let mut refused = pin!(run_b.call_async(&mut second, ()));
        match refused.as_mut().poll(&mut cx) {
            Poll::Ready(Err(e)) => {
                assert_eq!(e.kind(), ErrorKind::PoolExhausted, "{e}");
                assert!(e.to_string().contains("all 1 stack slots"), "{e}");
            }
            other => panic!("expected PoolExhausted, got {:?}", other.map(|r| r.is_ok())),
        }
    }
    // The first call was dropped (cancelled): its stack is free again.
    let mut next = pin!(run_b.call_async(&mut second, ()));
    assert!(next.as_mut().poll(&mut cx).is_pending());
}
