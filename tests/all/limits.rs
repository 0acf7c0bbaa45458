//! Instantiation resources: copy-on-write memory images, the pooling allocator,
//! resource limits.

use wazerox::{Engine, Instance, Module, Store};

/// 64 KiB + 1 of data at 1 MiB - 3, big enough to be mapped from a memory image,
/// straddling page boundaries, plus a small segment elsewhere.
fn data_module(engine: &Engine) -> Module {
    let big = "\\11".repeat(65537);
    Module::new(
        engine,
        format!(
            r#"(module
                (memory (export "memory") 17 100)
                (data (i32.const 1048573) "{big}")
                (data (i32.const 16) "hello")
                (data (i32.const 1048573) "\22")
                (func (export "poke") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
                (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0)))
                (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#
        ),
    )
    .unwrap()
}

fn check_initial_contents(store: &mut Store<()>, instance: Instance) {
    let peek = instance
        .get_typed_func::<i32, i32>(&mut *store, "peek")
        .unwrap();
    assert_eq!(peek.call(&mut *store, 16).unwrap(), i32::from(b'h'));
    assert_eq!(peek.call(&mut *store, 1048572).unwrap(), 0);
    assert_eq!(
        peek.call(&mut *store, 1048573).unwrap(),
        0x22,
        "later segment wins"
    );
    assert_eq!(peek.call(&mut *store, 1048574).unwrap(), 0x11);
    assert_eq!(peek.call(&mut *store, 1048573 + 65536).unwrap(), 0x11);
    assert_eq!(peek.call(&mut *store, 1048573 + 65537).unwrap(), 0);
    let memory = instance.get_memory(&mut *store, "memory").unwrap();
    let data = memory.data(&*store);
    assert_eq!(data.len(), 17 * 65536);
    assert_eq!(&data[16..21], b"hello");
    assert!(data[21..1048573].iter().all(|b| *b == 0));
    assert!(data[1048574..1048573 + 65537].iter().all(|b| *b == 0x11));
}

#[test]
fn memory_images_give_each_instance_the_data_and_isolate_writes() {
    let engine = Engine::default();
    let module = data_module(&engine);
    let mut store = Store::new(&engine, ());
    let first = Instance::new(&mut store, &module, &[]).unwrap();
    check_initial_contents(&mut store, first);
    let poke = first
        .get_typed_func::<(i32, i32), ()>(&mut store, "poke")
        .unwrap();
    poke.call(&mut store, (1048574, 0x55)).unwrap();
    poke.call(&mut store, (17, 0x55)).unwrap();
    let peek = first
        .get_typed_func::<i32, i32>(&mut store, "peek")
        .unwrap();
    assert_eq!(peek.call(&mut store, 1048574).unwrap(), 0x55);

    // Another instance in the same store and one in another store still see the
    // module's data, not the first instance's writes.
    let second = Instance::new(&mut store, &module, &[]).unwrap();
    check_initial_contents(&mut store, second);
    let mut other = Store::new(&engine, ());
    let third = Instance::new(&mut other, &module, &[]).unwrap();
    check_initial_contents(&mut other, third);
    assert_eq!(peek.call(&mut store, 1048574).unwrap(), 0x55, "writes stay");

    // Growth keeps the data and adds zero pages.
    let grow = first
        .get_typed_func::<i32, i32>(&mut store, "grow")
        .unwrap();
    assert_eq!(grow.call(&mut store, 3).unwrap(), 17);
    assert_eq!(peek.call(&mut store, 1048574).unwrap(), 0x55);
    assert_eq!(peek.call(&mut store, 17 * 65536 + 5).unwrap(), 0);
}

#[test]
fn memory_images_work_with_explicit_bounds_checks() {
    let mut config = wazerox::Config::new();
    config.explicit_bounds_checks(true);
    let engine = Engine::new(&config).unwrap();
    let module = data_module(&engine);
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    check_initial_contents(&mut store, instance);
    let peek = instance
        .get_typed_func::<i32, i32>(&mut store, "peek")
        .unwrap();
    assert!(peek.call(&mut store, 17 * 65536).is_err());
}

#[test]
fn segments_with_imported_offsets_are_still_copied_and_trap_when_out_of_bounds() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (import "env" "at" (global $at i32))
            (memory (export "memory") 1)
            (data (i32.const 0) "first")
            (data (global.get $at) "second"))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let at = |store: &mut Store<()>, v: i32| {
        wazerox::Global::new(
            &mut *store,
            wazerox::GlobalType::new(wazerox::ValType::I32, wazerox::Mutability::Const),
            wazerox::Val::I32(v),
        )
        .unwrap()
    };
    let ok = at(&mut store, 100);
    let instance = Instance::new(&mut store, &module, &[ok.into()]).unwrap();
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    assert_eq!(&memory.data(&store)[..5], b"first");
    assert_eq!(&memory.data(&store)[100..106], b"second");
    let past_end = at(&mut store, 65531);
    let err = Instance::new(&mut store, &module, &[past_end.into()]).unwrap_err();
    assert!(err.to_string().contains("out of bounds"), "{err}");
}

fn pooling_engine(slots: usize, max_memory_size: u64) -> Engine {
    let mut pooling = wazerox::PoolingConfig::new();
    pooling
        .total_memories(slots)
        .max_memory_size(max_memory_size);
    let mut config = wazerox::Config::new();
    config.allocation_strategy(wazerox::InstanceAllocationStrategy::Pooling(pooling));
    Engine::new(&config).unwrap()
}

#[test]
fn pooled_memories_are_reset_when_reused() {
    let engine = pooling_engine(2, 8 << 20);
    let module = data_module(&engine);
    for round in 0..4 {
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        check_initial_contents(&mut store, instance);
        let poke = instance
            .get_typed_func::<(i32, i32), ()>(&mut store, "poke")
            .unwrap();
        poke.call(&mut store, (1048574, round + 1)).unwrap();
        poke.call(&mut store, (100, round + 1)).unwrap();
        let grow = instance
            .get_typed_func::<i32, i32>(&mut store, "grow")
            .unwrap();
        assert_eq!(grow.call(&mut store, 2).unwrap(), 17);
        poke.call(&mut store, (17 * 65536 + 1, 7)).unwrap();
    }
    // A different module in a reused slot sees zeros, not the last one's data.
    let plain = Module::new(
        &engine,
        r#"(module (memory (export "memory") 20)
            (func (export "sum") (result i32) (local $i i32) (local $s i32)
              (loop $l
                (local.set $s (i32.add (local.get $s) (i32.load8_u (local.get $i))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br_if $l (i32.lt_u (local.get $i) (i32.const 1310720))))
              (local.get $s)))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &plain, &[]).unwrap();
    let sum = instance
        .get_typed_func::<(), i32>(&mut store, "sum")
        .unwrap();
    assert_eq!(sum.call(&mut store, ()).unwrap(), 0);
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    assert_eq!(memory.size(&store), 20);
}

#[test]
fn an_exhausted_pool_fails_instantiation_cleanly() {
    let engine = pooling_engine(2, 2 << 20);
    let module = data_module(&engine);
    let mut store = Store::new(&engine, ());
    let _a = Instance::new(&mut store, &module, &[]).unwrap();
    let mut other = Store::new(&engine, ());
    let _b = Instance::new(&mut other, &module, &[]).unwrap();
    let mut third = Store::new(&engine, ());
    let err = Instance::new(&mut third, &module, &[]).unwrap_err();
    assert_eq!(err.kind(), wazerox::ErrorKind::PoolExhausted);
    assert!(
        err.to_string().contains("all 2 memory slots are in use"),
        "{err}"
    );
    // Freeing a store frees its slot.
    drop(other);
    let instance = Instance::new(&mut third, &module, &[]).unwrap();
    check_initial_contents(&mut third, instance);
    // Growth stops at the pool's per-memory limit (2 MiB = 32 pages).
    let grow = instance
        .get_typed_func::<i32, i32>(&mut third, "grow")
        .unwrap();
    assert_eq!(grow.call(&mut third, 16).unwrap(), -1);
    assert_eq!(grow.call(&mut third, 15).unwrap(), 17);
    // A memory larger than a slot is refused up front.
    let big = Module::new(&engine, "(module (memory 33))").unwrap();
    let err = Instance::new(&mut third, &big, &[]).unwrap_err();
    assert!(err.to_string().contains("limit of 32 pages"), "{err}");
}

use wazerox::{ErrorKind, ResourceLimiter, StoreLimitsBuilder};

const GROWER: &str = r#"(module
    (memory (export "memory") 1)
    (table (export "table") 1 funcref)
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
    (func (export "grow_table") (param i32) (result i32)
      (table.grow (ref.null func) (local.get 0))))"#;

#[test]
fn store_limits_refuse_growth_with_minus_one() {
    let engine = Engine::default();
    let module = Module::new(&engine, GROWER).unwrap();
    let limits = StoreLimitsBuilder::new()
        .memory_size(4 * 65536)
        .table_elements(3)
        .build();
    let mut store = Store::new(&engine, limits);
    store.limiter(|limits| limits);
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let grow = instance
        .get_typed_func::<i32, i32>(&mut store, "grow")
        .unwrap();
    assert_eq!(
        grow.call(&mut store, 4).unwrap(),
        -1,
        "1 + 4 pages > 4 pages"
    );
    assert_eq!(grow.call(&mut store, 3).unwrap(), 1);
    assert_eq!(grow.call(&mut store, 1).unwrap(), -1);
    assert_eq!(grow.call(&mut store, 0).unwrap(), 4);
    let grow_table = instance
        .get_typed_func::<i32, i32>(&mut store, "grow_table")
        .unwrap();
    assert_eq!(grow_table.call(&mut store, 3).unwrap(), -1);
    assert_eq!(grow_table.call(&mut store, 2).unwrap(), 1);
    // The host API is limited too, with a clean error.
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    let err = memory.grow(&mut store, 1).unwrap_err();
    assert!(err.to_string().contains("resource limiter"), "{err}");
    assert_eq!(memory.size(&store), 4);
    let table = instance.get_table(&mut store, "table").unwrap();
    assert!(table.grow(&mut store, 1, wazerox::Ref::Func(None)).is_err());
    assert_eq!(table.size(&store), 3);
}

#[test]
fn a_limiter_error_ends_the_call_and_leaves_the_store_usable() {
    let engine = Engine::default();
    let module = Module::new(&engine, GROWER).unwrap();
    let limits = StoreLimitsBuilder::new()
        .memory_size(2 * 65536)
        .trap_on_grow_failure(true)
        .build();
    let mut store = Store::new(&engine, limits);
    store.limiter(|limits| limits);
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let grow = instance
        .get_typed_func::<i32, i32>(&mut store, "grow")
        .unwrap();
    let err = grow.call(&mut store, 5).unwrap_err();
    assert!(
        err.to_string()
            .contains("exceeds the store's limit of 131072"),
        "{err}"
    );
    assert_eq!(
        grow.call(&mut store, 1).unwrap(),
        1,
        "the store still works"
    );
}

#[test]
fn initial_sizes_above_the_limit_fail_instantiation() {
    let engine = Engine::default();
    let module = Module::new(&engine, "(module (memory 3))").unwrap();
    let mut store = Store::new(
        &engine,
        StoreLimitsBuilder::new().memory_size(65536).build(),
    );
    store.limiter(|limits| limits);
    let err = Instance::new(&mut store, &module, &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Instantiation);
    assert!(
        err.to_string()
            .contains("refused by the store's resource limiter"),
        "{err}"
    );
    let small = Module::new(&engine, "(module (memory 1))").unwrap();
    Instance::new(&mut store, &small, &[]).unwrap();
    let table = Module::new(&engine, "(module (table 10 funcref))").unwrap();
    let mut store = Store::new(&engine, StoreLimitsBuilder::new().table_elements(5).build());
    store.limiter(|limits| limits);
    assert!(Instance::new(&mut store, &table, &[]).is_err());
}

#[test]
fn instance_memory_and_table_counts_are_limited() {
    let engine = Engine::default();
    let module = Module::new(&engine, "(module (memory 1) (table 1 funcref))").unwrap();
    let empty = Module::new(&engine, "(module)").unwrap();
    let limits = StoreLimitsBuilder::new()
        .instances(3)
        .memories(2)
        .tables(5)
        .build();
    let mut store = Store::new(&engine, limits);
    store.limiter(|limits| limits);
    Instance::new(&mut store, &module, &[]).unwrap();
    Instance::new(&mut store, &module, &[]).unwrap();
    let err = Instance::new(&mut store, &module, &[]).unwrap_err();
    assert!(err.to_string().contains("limit of 2 memories"), "{err}");
    let err = wazerox::Memory::new(&mut store, wazerox::MemoryType::new(1, None)).unwrap_err();
    assert!(err.to_string().contains("limit of 2 memories"), "{err}");
    Instance::new(&mut store, &empty, &[]).unwrap();
    let err = Instance::new(&mut store, &empty, &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Instantiation);
    assert!(err.to_string().contains("limit of 3 instances"), "{err}");
}

/// A limiter that counts what it was asked.
#[derive(Default)]
struct Recorder {
    asked: Vec<(usize, usize, Option<usize>)>,
}

impl ResourceLimiter for Recorder {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wazerox::Result<bool> {
        self.asked.push((current, desired, maximum));
        Ok(desired <= 3 * 65536)
    }
    fn table_growing(&mut self, _: usize, _: usize, _: Option<usize>) -> wazerox::Result<bool> {
        Ok(true)
    }
}

#[test]
fn a_custom_limiter_sees_current_desired_and_maximum() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (memory 1 5)
            (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, Recorder::default());
    store.limiter(|r| r);
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let grow = instance
        .get_typed_func::<i32, i32>(&mut store, "grow")
        .unwrap();
    assert_eq!(grow.call(&mut store, 2).unwrap(), 1);
    assert_eq!(grow.call(&mut store, 1).unwrap(), -1);
    assert_eq!(grow.call(&mut store, 0).unwrap(), 3, "grow(0) asks nothing");
    assert_eq!(
        store.data().asked,
        vec![
            (0, 65536, Some(5 * 65536)),
            (65536, 3 * 65536, Some(5 * 65536)),
            (3 * 65536, 4 * 65536, Some(5 * 65536)),
        ]
    );
}

/// A limiter that panics once asked about a growth beyond `panic_above` (bytes or
/// elements).
struct PanickingLimiter {
    panic_above: usize,
}

impl ResourceLimiter for PanickingLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wazerox::Error> {
        if desired > self.panic_above {
            panic!("limiter panicked at {desired} bytes");
        }
        Ok(true)
    }
    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wazerox::Error> {
        if desired > self.panic_above {
            panic!("limiter panicked at {desired} elements");
        }
        Ok(true)
    }
}

#[test]
fn a_panicking_limiter_unwinds_to_the_embedder_and_the_store_stays_usable() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
            (memory 1)
            (table 1 funcref)
            (func (export "grow_memory") (param i32) (result i32)
              (memory.grow (local.get 0)))
            (func (export "grow_table") (param i32) (result i32)
              (table.grow (ref.null func) (local.get 0)))
            (func (export "size") (result i32) (memory.size)))"#,
    )
    .unwrap();
    let mut store = Store::new(
        &engine,
        PanickingLimiter {
            panic_above: 4 * 65536,
        },
    );
    store.limiter(|l| l);
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let grow_memory = instance
        .get_typed_func::<i32, i32>(&mut store, "grow_memory")
        .unwrap();
    let grow_table = instance
        .get_typed_func::<i32, i32>(&mut store, "grow_table")
        .unwrap();
    let size = instance
        .get_typed_func::<(), i32>(&mut store, "size")
        .unwrap();
    assert_eq!(grow_memory.call(&mut store, 1).unwrap(), 1);
    for (what, result) in [
        (
            "limiter panicked at 655360 bytes",
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                grow_memory.call(&mut store, 8)
            })),
        ),
        (
            "limiter panicked at 262145 elements",
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                grow_table.call(&mut store, 262144)
            })),
        ),
    ] {
        let payload = result.expect_err("the limiter's panic reaches the embedder");
        let message = payload
            .downcast_ref::<String>()
            .expect("panic!'s formatted payload");
        assert_eq!(message, what);
    }
    // The store stays usable: nothing grew, and Wasm runs again.
    assert_eq!(size.call(&mut store, ()).unwrap(), 2);
    assert_eq!(grow_memory.call(&mut store, 1).unwrap(), 2);
    assert_eq!(grow_table.call(&mut store, 1).unwrap(), 1);
}
