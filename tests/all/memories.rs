//! WebAssembly 3.0 memories — multi-memory, memory64 (and table64), custom page
//! sizes — and the memory layout settings (`memory_reservation`,
//! `memory_guard_size`, Spectre guards) that decide which accesses are checked.

use wazerox::{
    Config, Engine, ErrorKind, Instance, InstanceAllocationStrategy, Module, PoolingConfig, Store,
    TrapCode,
};

const GIB: u64 = 1 << 30;

fn instantiate(engine: &Engine, wat: &str) -> (Store<()>, Instance) {
    let module = Module::new(engine, wat).expect("module compiles");
    let mut store = Store::new(engine, ());
    let instance = Instance::new(&mut store, &module, &[]).expect("instantiates");
    (store, instance)
}

fn trap_code<T: std::fmt::Debug>(result: Result<T, wazerox::Error>) -> TrapCode {
    let error = result.expect_err("expected a trap");
    assert_eq!(error.kind(), ErrorKind::Trap, "{error}");
    error.as_trap().expect("trap details").code()
}

/// 5 GiB = 81,920 pages of 64 KiB.
const FIVE_GIB_MODULE: &str = r#"(module
    (memory (export "memory") i64 81920)
    (func (export "store") (param i64 i64) (i64.store (local.get 0) (local.get 1)))
    (func (export "load") (param i64) (result i64) (i64.load (local.get 0)))
    (func (export "size") (result i64) (memory.size))
    (func (export "grow") (param i64) (result i64) (memory.grow (local.get 0))))"#;

#[test]
fn a_memory64_module_uses_a_sparse_five_gib_memory_when_the_host_allows_it() {
    let mut config = Config::new();
    config.memory_reservation(8 * GIB);
    let engine = Engine::new(&config).unwrap();
    let (mut store, instance) = instantiate(&engine, FIVE_GIB_MODULE);
    let store_fn = instance
        .get_typed_func::<(i64, i64), ()>(&mut store, "store")
        .unwrap();
    let load = instance
        .get_typed_func::<i64, i64>(&mut store, "load")
        .unwrap();
    let size = instance
        .get_typed_func::<(), i64>(&mut store, "size")
        .unwrap();
    let grow = instance
        .get_typed_func::<i64, i64>(&mut store, "grow")
        .unwrap();
    let last = (5 * GIB - 8) as i64;
    assert_eq!(size.call(&mut store, ()).unwrap(), 81920);
    assert_eq!(
        load.call(&mut store, last).unwrap(),
        0,
        "untouched pages are zero"
    );
    store_fn
        .call(&mut store, (last, 0x0123_4567_89ab_cdef))
        .unwrap();
    store_fn.call(&mut store, (4 * GIB as i64, 42)).unwrap();
    assert_eq!(load.call(&mut store, last).unwrap(), 0x0123_4567_89ab_cdef);
    assert_eq!(load.call(&mut store, 4 * GIB as i64).unwrap(), 42);
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    assert_eq!(memory.data_size(&store) as u64, 5 * GIB);
    assert!(memory.ty(&store).is_64());
    assert_eq!(memory.data(&store)[(5 * GIB - 1) as usize], 0x01);
    // One byte past the end, and an address needing all 64 bits, trap.
    assert_eq!(
        trap_code(load.call(&mut store, last + 1)),
        TrapCode::MemoryOutOfBounds
    );
    assert_eq!(
        trap_code(load.call(&mut store, -8)),
        TrapCode::MemoryOutOfBounds
    );
    // Growth stops at the reservation (8 GiB = 131,072 pages).
    assert_eq!(grow.call(&mut store, 131072 - 81920 + 1).unwrap(), -1);
    assert_eq!(grow.call(&mut store, 16).unwrap(), 81920);
    assert_eq!(size.call(&mut store, ()).unwrap(), 81936);
}

#[test]
fn a_memory_beyond_the_reservation_is_an_instantiation_error() {
    let engine = Engine::default();
    let module = Module::new(&engine, FIVE_GIB_MODULE).unwrap();
    let mut store = Store::new(&engine, ());
    let error = Instance::new(&mut store, &module, &[]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Instantiation, "{error}");
    assert!(error.to_string().contains("81920 pages"), "{error}");
}

#[test]
fn memory64_bounds_checks_catch_offsets_that_overflow_64_bits() {
    let engine = Engine::default();
    // Unbounded: explicit checks. Bounded by 4 GiB: the index is compared with
    // 2^32 and the guard region does the rest.
    for limits in ["1", "1 65536"] {
        let (mut store, instance) = instantiate(
            &engine,
            &format!(
                r#"(module (memory i64 {limits})
                    (func (export "far") (param i64) (result i32)
                      (i32.load offset=0xffffffff_fffffff0 (local.get 0)))
                    (func (export "near") (param i64) (result i32)
                      (i32.load offset=8 (local.get 0))))"#
            ),
        );
        let far = instance
            .get_typed_func::<i64, i32>(&mut store, "far")
            .unwrap();
        let near = instance
            .get_typed_func::<i64, i32>(&mut store, "near")
            .unwrap();
        for index in [0, 0x10, 0x20, i64::MAX] {
            assert_eq!(
                trap_code(far.call(&mut store, index)),
                TrapCode::MemoryOutOfBounds,
                "{limits}: far {index:#x}"
            );
        }
        assert_eq!(near.call(&mut store, 65536 - 12).unwrap(), 0);
        for index in [65536 - 11, 1 << 32, -9, -1] {
            assert_eq!(
                trap_code(near.call(&mut store, index)),
                TrapCode::MemoryOutOfBounds,
                "{limits}: near {index:#x}"
            );
        }
    }
}

#[test]
fn table64_indices_sizes_and_indirect_calls() {
    let engine = Engine::default();
    let (mut store, instance) = instantiate(
        &engine,
        r#"(module
            (type $t (func (result i32)))
            (table $tab i64 2 funcref)
            (elem (table $tab) (i64.const 1) func $seven)
            (func $seven (result i32) (i32.const 7))
            (func (export "call") (param i64) (result i32)
              (call_indirect $tab (type $t) (local.get 0)))
            (func (export "grow") (param i64) (result i64)
              (table.grow $tab (ref.null func) (local.get 0)))
            (func (export "size") (result i64) (table.size $tab)))"#,
    );
    let call = instance
        .get_typed_func::<i64, i32>(&mut store, "call")
        .unwrap();
    let grow = instance
        .get_typed_func::<i64, i64>(&mut store, "grow")
        .unwrap();
    let size = instance
        .get_typed_func::<(), i64>(&mut store, "size")
        .unwrap();
    assert_eq!(call.call(&mut store, 1).unwrap(), 7);
    assert_eq!(
        trap_code(call.call(&mut store, 0)),
        TrapCode::IndirectCallToNull
    );
    for index in [2, 1 << 32 | 1, -1] {
        assert_eq!(
            trap_code(call.call(&mut store, index)),
            TrapCode::TableOutOfBounds,
            "{index:#x}"
        );
    }
    assert_eq!(grow.call(&mut store, 3).unwrap(), 2);
    assert_eq!(size.call(&mut store, ()).unwrap(), 5);
    assert_eq!(grow.call(&mut store, 1 << 40).unwrap(), -1);
}

#[test]
fn one_byte_pages_are_checked_to_the_byte() {
    let engine = Engine::default();
    let (mut store, instance) = instantiate(
        &engine,
        r#"(module
            (memory (export "memory") 10 (pagesize 1))
            (func (export "load") (param i32) (result i32) (i32.load8_u (local.get 0)))
            (func (export "store") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
            (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
            (func (export "size") (result i32) (memory.size)))"#,
    );
    let load = instance
        .get_typed_func::<i32, i32>(&mut store, "load")
        .unwrap();
    let store_fn = instance
        .get_typed_func::<(i32, i32), ()>(&mut store, "store")
        .unwrap();
    let grow = instance
        .get_typed_func::<i32, i32>(&mut store, "grow")
        .unwrap();
    let size = instance
        .get_typed_func::<(), i32>(&mut store, "size")
        .unwrap();
    store_fn.call(&mut store, (9, 5)).unwrap();
    assert_eq!(load.call(&mut store, 9).unwrap(), 5);
    // Byte 10 lies in the same host page, yet is out of bounds.
    assert_eq!(
        trap_code(load.call(&mut store, 10)),
        TrapCode::MemoryOutOfBounds
    );
    assert_eq!(grow.call(&mut store, 3).unwrap(), 10);
    assert_eq!(size.call(&mut store, ()).unwrap(), 13);
    assert_eq!(load.call(&mut store, 12).unwrap(), 0);
    assert_eq!(
        trap_code(load.call(&mut store, 13)),
        TrapCode::MemoryOutOfBounds
    );
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    assert_eq!(memory.size(&store), 13);
    assert_eq!(memory.ty(&store).page_size(), 1);
    assert_eq!(memory.data(&store).len(), 13);
}

/// Three memories with data big enough to be mapped from images (more than
/// `COPY_THRESHOLD`), one copying into another.
const THREE_MEMORIES: &str = r#"(module
    (memory $a (export "a") 2)
    (memory $b (export "b") 3)
    (memory $c 1 1)
    (data (memory $a) (i32.const 100) "A")
    (data (memory $b) (i32.const 70000) "B")
    (data (memory $c) (i32.const 0) "C")
    (func (export "peek") (param i32 i32) (result i32)
      (if (result i32) (i32.eqz (local.get 0))
        (then (i32.load8_u $a (local.get 1)))
        (else (if (result i32) (i32.eq (local.get 0) (i32.const 1))
          (then (i32.load8_u $b (local.get 1)))
          (else (i32.load8_u $c (local.get 1)))))))
    (func (export "poke_b") (param i32 i32) (i32.store8 $b (local.get 0) (local.get 1)))
    (func (export "copy_c_to_a") (param i32 i32 i32)
      (memory.copy $a $c (local.get 0) (local.get 1) (local.get 2))))"#;

fn three_memories(engine: &Engine) -> Module {
    // 64 KiB + 1 of data in memory $b: large enough for a mapped image.
    let big = "\\11".repeat(65537);
    let wat = THREE_MEMORIES.replace(
        r#"(data (memory $b) (i32.const 70000) "B")"#,
        &format!(r#"(data (memory $b) (i32.const 70000) "B{big}")"#),
    );
    Module::new(engine, wat).unwrap()
}

#[test]
fn multi_memory_works_with_the_pooling_allocator_and_images() {
    let mut pooling = PoolingConfig::new();
    pooling
        .total_memories(3)
        .max_memories_per_module(3)
        .max_memory_size(1 << 20);
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    let engine = Engine::new(&config).unwrap();
    let module = three_memories(&engine);
    for round in 0..3 {
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let peek = instance
            .get_typed_func::<(i32, i32), i32>(&mut store, "peek")
            .unwrap();
        let poke_b = instance
            .get_typed_func::<(i32, i32), ()>(&mut store, "poke_b")
            .unwrap();
        let copy = instance
            .get_typed_func::<(i32, i32, i32), ()>(&mut store, "copy_c_to_a")
            .unwrap();
        // Every memory starts with its own segments, whatever the last round wrote.
        assert_eq!(peek.call(&mut store, (0, 100)).unwrap(), i32::from(b'A'));
        assert_eq!(peek.call(&mut store, (1, 70000)).unwrap(), i32::from(b'B'));
        assert_eq!(peek.call(&mut store, (1, 70001)).unwrap(), 0x11);
        assert_eq!(peek.call(&mut store, (1, 70000 + 65538)).unwrap(), 0);
        assert_eq!(peek.call(&mut store, (2, 0)).unwrap(), i32::from(b'C'));
        assert_eq!(peek.call(&mut store, (0, 5)).unwrap(), 0);
        assert_eq!(peek.call(&mut store, (1, 70002)).unwrap(), 0x11);
        poke_b.call(&mut store, (70002, round + 1)).unwrap();
        assert_eq!(peek.call(&mut store, (1, 70002)).unwrap(), round + 1);
        copy.call(&mut store, (5, 0, 1)).unwrap();
        assert_eq!(peek.call(&mut store, (0, 5)).unwrap(), i32::from(b'C'));
        assert_eq!(
            trap_code(copy.call(&mut store, (0, 65536, 1))),
            TrapCode::MemoryOutOfBounds,
            "memory $c has one page"
        );
        let a = instance.get_memory(&mut store, "a").unwrap();
        let b = instance.get_memory(&mut store, "b").unwrap();
        assert_eq!((a.size(&store), b.size(&store)), (2, 3));
        // All three slots are in use: a second instance at once does not fit.
        let mut other = Store::new(&engine, ());
        let error = Instance::new(&mut other, &module, &[]).unwrap_err();
        assert!(
            error.to_string().contains("all 3 memory slots are in use"),
            "{error}"
        );
    }
}

/// A module and the `Config` change that must make it invalid.
type RefusalCase = (&'static str, fn(&mut Config));

#[test]
fn the_3_0_memory_features_can_each_be_refused() {
    let cases: [RefusalCase; 3] = [
        ("(module (memory 1) (memory 1))", |c| {
            c.wasm_multi_memory(false);
        }),
        ("(module (memory i64 1))", |c| {
            c.wasm_memory64(false);
        }),
        ("(module (memory 1 (pagesize 1)))", |c| {
            c.wasm_custom_page_sizes(false);
        }),
    ];
    for (wat, refuse) in cases {
        assert!(Module::new(&Engine::default(), wat).is_ok(), "{wat}");
        let mut config = Config::new();
        refuse(&mut config);
        let error = Module::new(&Engine::new(&config).unwrap(), wat)
            .err()
            .unwrap_or_else(|| panic!("{wat} accepted"));
        assert_eq!(error.kind(), ErrorKind::Validation, "{wat}: {error}");
    }
}

#[test]
fn memory_layout_settings_are_validated() {
    for (reservation, guard) in [
        (0, 0),
        (GIB + 4096, 0),
        (GIB, 4096),
        (1 << 46, 1 << 16),
        (u64::MAX - 65535, GIB),
    ] {
        let mut config = Config::new();
        config
            .memory_reservation(reservation)
            .memory_guard_size(guard);
        let error = Engine::new(&config)
            .err()
            .unwrap_or_else(|| panic!("{reservation} + {guard} accepted"));
        assert_eq!(error.kind(), ErrorKind::Usage, "{error}");
    }
    let mut config = Config::new();
    config.memory_reservation(1 << 16).memory_guard_size(0);
    assert!(Engine::new(&config).is_ok());
}

/// Accesses near the end of memory, with offsets the default guard covers.
const EDGE: &str = r#"(module
    (memory 1)
    (func (export "load") (param i32) (result i64) (i64.load offset=65536 (local.get 0)))
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#;

fn check_edge(engine: &Engine) {
    let (mut store, instance) = instantiate(engine, EDGE);
    let load = instance
        .get_typed_func::<i32, i64>(&mut store, "load")
        .unwrap();
    let grow = instance
        .get_typed_func::<i32, i32>(&mut store, "grow")
        .unwrap();
    for index in [0, -1, i32::MAX, 1 << 20] {
        assert_eq!(
            trap_code(load.call(&mut store, index)),
            TrapCode::MemoryOutOfBounds,
            "{index:#x}"
        );
    }
    assert_eq!(grow.call(&mut store, 1).unwrap(), 1);
    assert_eq!(load.call(&mut store, 65536 - 8).unwrap(), 0);
    assert_eq!(
        trap_code(load.call(&mut store, 65536 - 7)),
        TrapCode::MemoryOutOfBounds
    );
}

#[test]
fn without_a_guard_region_accesses_are_checked_explicitly() {
    let mut config = Config::new();
    config.memory_guard_size(0);
    check_edge(&Engine::new(&config).unwrap());
}

#[test]
fn a_reservation_below_4_gib_checks_every_access_and_bounds_growth() {
    let mut config = Config::new();
    config.memory_reservation(4 << 16).memory_guard_size(0);
    let engine = Engine::new(&config).unwrap();
    check_edge(&engine);
    let (mut store, instance) = instantiate(&engine, EDGE);
    let grow = instance
        .get_typed_func::<i32, i32>(&mut store, "grow")
        .unwrap();
    assert_eq!(
        grow.call(&mut store, 4).unwrap(),
        -1,
        "past the reservation"
    );
    assert_eq!(grow.call(&mut store, 3).unwrap(), 1);
}

#[test]
fn spectre_guards_do_not_change_results() {
    for (spectre, explicit) in [(true, true), (false, true), (false, false)] {
        let mut config = Config::new();
        config
            .spectre_guards(spectre)
            .explicit_bounds_checks(explicit);
        let engine = Engine::new(&config).unwrap();
        check_edge(&engine);
        let (mut store, instance) = instantiate(
            &engine,
            r#"(module (table 2 funcref) (elem (i32.const 1) func $f)
                (func $f (result i32) (i32.const 3))
                (func (export "call") (param i32) (result i32)
                  (call_indirect (result i32) (local.get 0))))"#,
        );
        let call = instance
            .get_typed_func::<i32, i32>(&mut store, "call")
            .unwrap();
        assert_eq!(call.call(&mut store, 1).unwrap(), 3);
        assert_eq!(
            trap_code(call.call(&mut store, 2)),
            TrapCode::TableOutOfBounds
        );
    }
}
