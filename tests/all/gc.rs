//! GC (docs/gc.md): objects live in the store's heap, the collector frees the
//! unreachable ones between calls and keeps everything globals, tables, host
//! handles and live Wasm frames refer to; casts follow declared subtyping.

use wazerox::{
    AnyRef, Caller, Config, Engine, ErrorKind, ExternRef, Instance, Linker, Module, Store,
    TrapCode, Val,
};

fn engine(heap_limit: usize) -> Engine {
    let mut config = Config::new();
    config.wasm_gc(true).gc_heap_limit(heap_limit);
    Engine::new(&config).unwrap()
}

/// A linked list node type, lists reachable from a global and a table, and a
/// host import the module calls while holding a node in a local.
const LISTS: &str = r#"
(module
  (type $node (struct (field $v (mut i32)) (field $next (mut (ref null $node)))))
  (import "host" "collect" (func $collect))
  (global $g (mut (ref null $node)) (ref.null $node))
  (table $t 1 (ref null $node))

  (func $cons (param $v i32) (param $next (ref null $node)) (result (ref $node))
    (struct.new $node (local.get $v) (local.get $next)))
  (func (export "make") (param i32) (result (ref $node))
    (call $cons (local.get 0) (ref.null $node)))
  (func (export "get_v") (param (ref null $node)) (result i32)
    (struct.get $node $v (local.get 0)))

  ;; g = [1, 2], t[0] = [3]
  (func (export "setup")
    (global.set $g (call $cons (i32.const 1) (call $cons (i32.const 2) (ref.null $node))))
    (table.set $t (i32.const 0) (call $cons (i32.const 3) (ref.null $node))))
  (func (export "sum") (result i32)
    (i32.add
      (i32.add
        (struct.get $node $v (global.get $g))
        (struct.get $node $v (struct.get $node $next (global.get $g))))
      (struct.get $node $v (table.get $t (i32.const 0)))))

  ;; Builds a list of $n nodes and drops it: all garbage once the call returns.
  (func (export "garbage") (param $n i32) (result i32)
    (local $list (ref null $node))
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $list (call $cons (local.get $n) (local.get $list)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again)))
    (struct.get $node $v (local.get $list)))

  ;; A node held only by a local while the host asks for a collection.
  (func (export "local_across_call") (result i32)
    (local $l (ref null $node))
    (local.set $l (call $cons (i32.const 42) (ref.null $node)))
    (call $collect)
    (drop (call $cons (i32.const 0) (ref.null $node)))
    (struct.get $node $v (local.get $l))))
"#;

fn lists(store: &mut Store<()>) -> Instance {
    let engine = store.engine().clone();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap("host", "collect", |mut caller: Caller<'_, ()>| {
            let before = caller.as_context_mut().gc_heap_stats().collections;
            caller.as_context_mut().gc();
            // A Wasm frame of the store is live: no collection may run.
            assert_eq!(caller.as_context_mut().gc_heap_stats().collections, before);
        })
        .unwrap();
    let module = Module::new(&engine, LISTS).unwrap();
    linker.instantiate(&mut *store, &module).unwrap()
}

fn call(
    store: &mut Store<()>,
    instance: Instance,
    name: &str,
    args: &[Val],
) -> Result<Val, wazerox::Error> {
    let func = instance.get_func(&mut *store, name).unwrap();
    let mut results = vec![Val::I32(0); func.ty(&*store).results().len()];
    func.call(&mut *store, args, &mut results)?;
    Ok(results.pop().unwrap_or(Val::I32(0)))
}

use wazerox::AsContextMut;

#[test]
fn allocating_far_beyond_the_heap_cap_runs_in_bounded_memory() {
    const CAP: usize = 4 << 20;
    let mut store = Store::new(&engine(CAP), ());
    let instance = lists(&mut store);
    // 2,000 calls of 10,000 nodes of 32 bytes: 640 MB allocated through a
    // 4 MiB heap; without collections the first calls past the cap would trap.
    let mut peak_bytes = 0;
    for _ in 0..2000 {
        let v = call(&mut store, instance, "garbage", &[Val::I32(10_000)]).unwrap();
        assert_eq!(v.i32(), Some(1));
        peak_bytes = peak_bytes.max(store.gc_heap_stats().bytes);
    }
    let stats = store.gc_heap_stats();
    assert!(peak_bytes <= CAP, "peak {peak_bytes} bytes");
    assert!(stats.collections >= 100, "{stats:?}");
}

#[test]
fn a_call_allocating_past_the_cap_traps_and_the_store_recovers() {
    let mut store = Store::new(&engine(1 << 20), ());
    let instance = lists(&mut store);
    let error = call(&mut store, instance, "garbage", &[Val::I32(1_000_000)]).unwrap_err();
    assert_eq!(
        error.as_trap().map(|t| t.code()),
        Some(TrapCode::GcHeapExhausted),
        "{error}"
    );
    store.gc();
    assert_eq!(store.gc_heap_stats().objects, 0);
    let v = call(&mut store, instance, "garbage", &[Val::I32(1000)]).unwrap();
    assert_eq!(v.i32(), Some(1));
}

#[test]
fn objects_reachable_from_globals_tables_and_host_handles_survive() {
    let mut store = Store::new(&engine(64 << 20), ());
    let instance = lists(&mut store);
    call(&mut store, instance, "setup", &[]).unwrap();
    let Val::AnyRef(Some(handle)) = call(&mut store, instance, "make", &[Val::I32(5)]).unwrap()
    else {
        panic!("make returns a non-null reference");
    };
    call(&mut store, instance, "garbage", &[Val::I32(50_000)]).unwrap();
    store.gc();
    // Two nodes from the global, one from the table, one held by the host.
    assert_eq!(store.gc_heap_stats().objects, 4);
    assert_eq!(
        call(&mut store, instance, "sum", &[]).unwrap().i32(),
        Some(6)
    );
    let v = call(
        &mut store,
        instance,
        "get_v",
        &[Val::AnyRef(Some(handle.clone()))],
    )
    .unwrap();
    assert_eq!(v.i32(), Some(5));
    drop(handle);
    store.gc();
    assert_eq!(store.gc_heap_stats().objects, 3);
    assert_eq!(
        call(&mut store, instance, "sum", &[]).unwrap().i32(),
        Some(6)
    );
}

#[test]
fn a_collection_requested_during_a_call_keeps_the_callers_locals() {
    let mut store = Store::new(&engine(64 << 20), ());
    let instance = lists(&mut store);
    // Garbage first, so that a collection would have work to do.
    call(&mut store, instance, "garbage", &[Val::I32(100_000)]).unwrap();
    let v = call(&mut store, instance, "local_across_call", &[]).unwrap();
    assert_eq!(v.i32(), Some(42));
}

const SHAPES: &str = r#"
(module
  (type $shape (sub (struct (field i32))))
  (type $circle (sub final $shape (struct (field i32) (field f64))))
  (type $square (sub final $shape (struct (field i32) (field i64))))
  (func (export "circle") (result anyref) (struct.new $circle (i32.const 1) (f64.const 2.5)))
  (func (export "square") (result anyref) (struct.new $square (i32.const 2) (i64.const 4)))
  (func (export "i31") (result anyref) (ref.i31 (i32.const -3)))
  ;; 1 shape, 2 circle, 3 square, 4 i31, 0 otherwise (br_on_cast chain)
  (func (export "classify") (param $x anyref) (result i32)
    (block $is_i31 (result (ref i31))
      (block $is_square (result (ref $square))
        (block $is_circle (result (ref $circle))
          (local.get $x)
          (br_on_cast $is_circle anyref (ref $circle))
          (br_on_cast $is_square anyref (ref $square))
          (br_on_cast $is_i31 anyref (ref i31))
          (drop)
          (return (i32.const 0)))
        (drop) (return (i32.const 2)))
      (drop) (return (i32.const 3)))
    (drop) (i32.const 4))
  (func (export "is_shape") (param anyref) (result i32) (ref.test (ref $shape) (local.get 0)))
  (func (export "tag_of") (param (ref $shape)) (result i32) (struct.get $shape 0 (local.get 0)))
  (func (export "shape_tag") (param anyref) (result i32)
    (struct.get $shape 0 (ref.cast (ref $shape) (local.get 0)))))
"#;

#[test]
fn casts_follow_declared_subtyping() {
    let engine = engine(64 << 20);
    let mut store = Store::new(&engine, ());
    let module = Module::new(&engine, SHAPES).unwrap();
    let instance = Linker::new(&engine)
        .instantiate(&mut store, &module)
        .unwrap();
    let circle = call(&mut store, instance, "circle", &[]).unwrap();
    let square = call(&mut store, instance, "square", &[]).unwrap();
    let i31 = call(&mut store, instance, "i31", &[]).unwrap();
    let null = Val::AnyRef(None);
    let classify = |store: &mut Store<()>, v: &Val| {
        call(store, instance, "classify", std::slice::from_ref(v))
            .unwrap()
            .i32()
            .unwrap()
    };
    assert_eq!(classify(&mut store, &circle), 2);
    assert_eq!(classify(&mut store, &square), 3);
    assert_eq!(classify(&mut store, &i31), 4);
    assert_eq!(classify(&mut store, &null), 0);
    for (v, expected) in [(&circle, 1), (&square, 1), (&i31, 0), (&null, 0)] {
        let got = call(&mut store, instance, "is_shape", std::slice::from_ref(v)).unwrap();
        assert_eq!(got.i32(), Some(expected), "{v:?}");
    }
    let tag = call(
        &mut store,
        instance,
        "shape_tag",
        std::slice::from_ref(&square),
    )
    .unwrap();
    assert_eq!(tag.i32(), Some(2));
    let error = call(
        &mut store,
        instance,
        "shape_tag",
        std::slice::from_ref(&i31),
    )
    .unwrap_err();
    assert_eq!(
        error.as_trap().map(|t| t.code()),
        Some(TrapCode::CastFailure)
    );
    let Val::AnyRef(Some(i31)) = i31 else {
        panic!()
    };
    assert_eq!(i31.i31_s(), Some(-3));
    let Val::AnyRef(Some(square)) = square else {
        panic!()
    };
    assert!(square.is_struct(&store) && !square.is_array(&store));
}

#[test]
fn the_host_cannot_pass_a_reference_of_another_type() {
    let engine = engine(64 << 20);
    let mut store = Store::new(&engine, ());
    let module = Module::new(&engine, SHAPES).unwrap();
    let instance = Linker::new(&engine)
        .instantiate(&mut store, &module)
        .unwrap();
    let square = call(&mut store, instance, "square", &[]).unwrap();
    let i31 = Val::AnyRef(Some(AnyRef::from_i31(&mut store, 9)));
    let tag_of = instance.get_func(&mut store, "tag_of").unwrap();
    let mut result = [Val::I32(0)];
    tag_of.call(&mut store, &[square], &mut result).unwrap();
    assert_eq!(result[0].i32(), Some(2));
    for wrong in [i31, Val::AnyRef(None)] {
        let error = tag_of.call(&mut store, &[wrong], &mut result).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Usage, "{error}");
    }
}

#[test]
fn tags_carrying_gc_references_are_refused_until_exceptions_are_traced() {
    use wazerox::{FuncType, Tag, ValType};
    let engine = engine(64 << 20);
    let mut store = Store::new(&engine, ());
    let ty = FuncType::new([ValType::ANYREF], []);
    let error = Tag::new(&mut store, &ty).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported, "{error}");
    let module = r#"(module (tag (param anyref)))"#;
    let Err(error) = Module::new(&engine, module) else {
        panic!("a tag with an anyref payload is refused")
    };
    assert_eq!(error.kind(), ErrorKind::Unsupported, "{error}");
}

/// Arrays of references to boxes, held by a global (initialized by a constant
/// expression), a table, a passive element segment and the host.
const ARRAYS: &str = r#"
(module
  (type $box (struct (field i32)))
  (type $boxes (array (mut (ref null $box))))
  (type $bytes (array (mut i8)))
  (global $g (mut (ref null $boxes))
    (array.new_fixed $boxes 2 (struct.new $box (i32.const 10)) (struct.new $box (i32.const 20))))
  (table $t 1 (ref null $boxes))
  (elem $seg (ref null $box) (item (struct.new $box (i32.const 7))))
  (data $d "\01\02\03")

  ;; An array of $n fresh boxes holding 0..$n.
  (func $boxes (export "boxes") (param $n i32) (result (ref $boxes))
    (local $a (ref $boxes)) (local $i i32)
    (local.set $a (array.new_default $boxes (local.get $n)))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (array.set $boxes (local.get $a) (local.get $i) (struct.new $box (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))
    (local.get $a))
  (func $sum (export "sum") (param $a (ref null $boxes)) (result i32)
    (local $i i32) (local $s i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (array.len (local.get $a))))
        (local.set $s (i32.add (local.get $s)
          (struct.get $box 0 (array.get $boxes (local.get $a) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))
    (local.get $s))
  (func (export "fill_table") (param $n i32)
    (table.set $t (i32.const 0) (call $boxes (local.get $n))))
  (func (export "sum_global") (result i32) (call $sum (global.get $g)))
  (func (export "sum_table") (result i32) (call $sum (table.get $t (i32.const 0))))
  (func (export "from_segment") (result (ref $boxes))
    (array.new_elem $boxes $seg (i32.const 0) (i32.const 1)))
  (func (export "same_segment_item") (result i32)
    (ref.eq
      (array.get $boxes (array.new_elem $boxes $seg (i32.const 0) (i32.const 1)) (i32.const 0))
      (array.get $boxes (array.new_elem $boxes $seg (i32.const 0) (i32.const 1)) (i32.const 0))))

  ;; Traps.
  (func (export "get") (param $len i32) (param $i i32) (result i32)
    (array.get_u $bytes (array.new $bytes (i32.const 255) (local.get $len)) (local.get $i)))
  (func (export "get_s") (param $i i32) (result i32)
    (array.get_s $bytes (array.new $bytes (i32.const 255) (i32.const 4)) (local.get $i)))
  (func (export "set_null") (array.set $bytes (ref.null $bytes) (i32.const 0) (i32.const 1)))
  (func (export "fill") (param $at i32) (param $n i32)
    (array.fill $bytes (array.new_default $bytes (i32.const 8)) (local.get $at) (i32.const 1) (local.get $n)))
  (func (export "new_data") (param $at i32) (param $n i32) (result i32)
    (array.len (array.new_data $bytes $d (local.get $at) (local.get $n))))
  ;; array.copy of [0, 1, 2, 3, 4] onto itself: $dst, $src, $n; returns the
  ;; elements as decimal digits.
  (func (export "copy_within") (param $dst i32) (param $src i32) (param $n i32) (result i32)
    (local $a (ref $bytes)) (local $i i32) (local $r i32)
    (local.set $a (array.new_fixed $bytes 5 (i32.const 0) (i32.const 1) (i32.const 2) (i32.const 3) (i32.const 4)))
    (array.copy $bytes $bytes (local.get $a) (local.get $dst) (local.get $a) (local.get $src) (local.get $n))
    (block $done
      (loop $again
        (br_if $done (i32.eq (local.get $i) (i32.const 5)))
        (local.set $r (i32.add (i32.mul (local.get $r) (i32.const 10))
          (array.get_u $bytes (local.get $a) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))
    (local.get $r)))
"#;

fn arrays(store: &mut Store<()>) -> Instance {
    let engine = store.engine().clone();
    let module = Module::new(&engine, ARRAYS).unwrap();
    Linker::new(&engine).instantiate(store, &module).unwrap()
}

fn trap_of(result: Result<Val, wazerox::Error>) -> Option<TrapCode> {
    result.unwrap_err().as_trap().map(|t| t.code())
}

#[test]
fn arrays_held_by_a_global_a_table_a_segment_and_the_host_survive_a_collection() {
    let mut store = Store::new(&engine(64 << 20), ());
    let instance = arrays(&mut store);
    call(&mut store, instance, "fill_table", &[Val::I32(100)]).unwrap();
    let Val::AnyRef(Some(held)) = call(&mut store, instance, "boxes", &[Val::I32(10)]).unwrap()
    else {
        panic!("boxes returns a non-null array");
    };
    for _ in 0..20 {
        call(&mut store, instance, "boxes", &[Val::I32(1000)]).unwrap();
    }
    store.gc();
    // Global: the array and 2 boxes; table: 1 + 100; segment: 1 box; host: 1 + 10.
    assert_eq!(store.gc_heap_stats().objects, 3 + 101 + 1 + 11);
    assert_eq!(
        call(&mut store, instance, "sum_global", &[]).unwrap().i32(),
        Some(30)
    );
    assert_eq!(
        call(&mut store, instance, "sum_table", &[]).unwrap().i32(),
        Some((0..100).sum())
    );
    let sum = call(
        &mut store,
        instance,
        "sum",
        &[Val::AnyRef(Some(held.clone()))],
    )
    .unwrap();
    assert_eq!(sum.i32(), Some((0..10).sum()));
    let from_segment = call(&mut store, instance, "from_segment", &[]).unwrap();
    let sum = call(&mut store, instance, "sum", &[from_segment]).unwrap();
    assert_eq!(sum.i32(), Some(7));
    assert_eq!(
        call(&mut store, instance, "same_segment_item", &[])
            .unwrap()
            .i32(),
        Some(1),
        "a segment's items are evaluated once"
    );
    drop(held);
    store.gc();
    assert_eq!(store.gc_heap_stats().objects, 3 + 101 + 1);
}

#[test]
fn array_accesses_outside_the_array_trap() {
    let mut store = Store::new(&engine(64 << 20), ());
    let instance = arrays(&mut store);
    let get = |store: &mut Store<()>, len: i32, i: i32| {
        call(store, instance, "get", &[Val::I32(len), Val::I32(i)])
    };
    assert_eq!(get(&mut store, 4, 3).unwrap().i32(), Some(255));
    assert_eq!(
        call(&mut store, instance, "get_s", &[Val::I32(0)])
            .unwrap()
            .i32(),
        Some(-1)
    );
    for (len, i) in [(4, 4), (0, 0), (4, -1)] {
        assert_eq!(
            trap_of(get(&mut store, len, i)),
            Some(TrapCode::ArrayOutOfBounds)
        );
    }
    assert_eq!(
        trap_of(call(&mut store, instance, "set_null", &[])),
        Some(TrapCode::NullReference)
    );
    let fill = |store: &mut Store<()>, at: i32, n: i32| {
        call(store, instance, "fill", &[Val::I32(at), Val::I32(n)])
    };
    assert!(fill(&mut store, 0, 8).is_ok() && fill(&mut store, 8, 0).is_ok());
    for (at, n) in [(1, 8), (9, 0), (4, -1)] {
        assert_eq!(
            trap_of(fill(&mut store, at, n)),
            Some(TrapCode::ArrayOutOfBounds)
        );
    }
    let new_data = |store: &mut Store<()>, at: i32, n: i32| {
        call(store, instance, "new_data", &[Val::I32(at), Val::I32(n)])
    };
    assert_eq!(new_data(&mut store, 1, 2).unwrap().i32(), Some(2));
    assert_eq!(
        trap_of(new_data(&mut store, 2, 2)),
        Some(TrapCode::MemoryOutOfBounds)
    );
}

#[test]
fn an_array_larger_than_the_heap_cap_traps() {
    let mut store = Store::new(&engine(1 << 20), ());
    let instance = arrays(&mut store);
    for len in [2 << 20, -1] {
        let error = call(&mut store, instance, "get", &[Val::I32(len), Val::I32(0)]);
        assert_eq!(trap_of(error), Some(TrapCode::GcHeapExhausted));
    }
    assert_eq!(
        call(
            &mut store,
            instance,
            "get",
            &[Val::I32(1000), Val::I32(999)]
        )
        .unwrap()
        .i32(),
        Some(255)
    );
}

#[test]
fn array_copy_within_one_array_handles_overlap() {
    let mut store = Store::new(&engine(64 << 20), ());
    let instance = arrays(&mut store);
    let copy = |store: &mut Store<()>, dst: i32, src: i32, n: i32| {
        call(
            store,
            instance,
            "copy_within",
            &[Val::I32(dst), Val::I32(src), Val::I32(n)],
        )
    };
    assert_eq!(copy(&mut store, 1, 0, 4).unwrap().i32(), Some(123));
    assert_eq!(copy(&mut store, 0, 1, 4).unwrap().i32(), Some(12344));
    assert_eq!(copy(&mut store, 0, 0, 5).unwrap().i32(), Some(1234));
    assert_eq!(
        trap_of(copy(&mut store, 1, 0, 5)),
        Some(TrapCode::ArrayOutOfBounds)
    );
}

#[test]
fn a_global_initializer_past_the_heap_cap_fails_instantiation() {
    let engine = engine(1 << 20);
    let mut store = Store::new(&engine, ());
    let module = Module::new(
        &engine,
        r#"(module (type $a (array i64))
             (global (ref $a) (array.new_default $a (i32.const 1000000))))"#,
    )
    .unwrap();
    let Err(error) = Linker::new(&engine).instantiate(&mut store, &module) else {
        panic!("an 8 MB array does not fit a 1 MiB heap")
    };
    assert_eq!(
        error.as_trap().map(|t| t.code()),
        Some(TrapCode::GcHeapExhausted),
        "{error}"
    );
}

#[test]
fn the_host_reads_and_writes_struct_fields_and_array_elements() {
    let engine = engine(64 << 20);
    let mut store = Store::new(&engine, ());
    let module = Module::new(
        &engine,
        r#"(module
             (type $point (struct (field $x (mut i32)) (field $tag i8) (field $next (mut anyref))))
             (type $bytes (array (mut i8)))
             (type $consts (array f64))
             (func (export "point") (result anyref)
               (struct.new $point (i32.const 3) (i32.const -1) (ref.i31 (i32.const 9))))
             (func (export "bytes") (result anyref)
               (array.new_fixed $bytes 3 (i32.const 1) (i32.const 2) (i32.const 300)))
             (func (export "consts") (result anyref)
               (array.new $consts (f64.const 0.5) (i32.const 2)))
             (func (export "x") (param anyref) (result i32)
               (struct.get $point $x (ref.cast (ref $point) (local.get 0))))
             (func (export "byte_sum") (param anyref) (result i32)
               (local $a (ref $bytes))
               (local.set $a (ref.cast (ref $bytes) (local.get 0)))
               (i32.add (array.get_u $bytes (local.get $a) (i32.const 0))
                 (i32.add (array.get_u $bytes (local.get $a) (i32.const 1))
                   (array.get_u $bytes (local.get $a) (i32.const 2))))))"#,
    )
    .unwrap();
    let instance = Linker::new(&engine)
        .instantiate(&mut store, &module)
        .unwrap();
    let Val::AnyRef(Some(point)) = call(&mut store, instance, "point", &[]).unwrap() else {
        panic!("point returns a struct")
    };
    assert!(point.as_array(&store).is_none());
    let point = point.as_struct(&store).unwrap();
    assert_eq!(point.field(&mut store, 0).unwrap().i32(), Some(3));
    assert_eq!(point.field(&mut store, 1).unwrap().i32(), Some(255));
    let Val::AnyRef(Some(next)) = point.field(&mut store, 2).unwrap() else {
        panic!("field 2 holds an i31")
    };
    assert_eq!(next.i31_s(), Some(9));
    point.set_field(&mut store, 0, Val::I32(-7)).unwrap();
    point
        .set_field(&mut store, 2, Val::AnyRef(Some(point.to_anyref())))
        .unwrap();
    let x = call(
        &mut store,
        instance,
        "x",
        &[Val::AnyRef(Some(point.to_anyref()))],
    );
    assert_eq!(x.unwrap().i32(), Some(-7));
    // Immutable field, wrong type, no such field.
    for (index, value) in [(1, Val::I32(0)), (0, Val::I64(1)), (3, Val::I32(0))] {
        let error = point.set_field(&mut store, index, value).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Usage, "{error}");
    }

    let Val::AnyRef(Some(bytes)) = call(&mut store, instance, "bytes", &[]).unwrap() else {
        panic!("bytes returns an array")
    };
    let bytes = bytes.as_array(&store).unwrap();
    assert_eq!(bytes.len(&store), 3);
    assert_eq!(bytes.get(&mut store, 2).unwrap().i32(), Some(300 & 0xff));
    bytes.set(&mut store, 0, Val::I32(0x1ff)).unwrap();
    assert_eq!(bytes.get(&mut store, 0).unwrap().i32(), Some(0xff));
    assert_eq!(
        bytes.get(&mut store, 3).unwrap_err().kind(),
        ErrorKind::Usage
    );
    let sum = call(
        &mut store,
        instance,
        "byte_sum",
        &[Val::AnyRef(Some(bytes.to_anyref()))],
    );
    assert_eq!(sum.unwrap().i32(), Some(0xff + 2 + (300 & 0xff)));

    let Val::AnyRef(Some(consts)) = call(&mut store, instance, "consts", &[]).unwrap() else {
        panic!("consts returns an array")
    };
    let consts = consts.as_array(&store).unwrap();
    assert_eq!(consts.get(&mut store, 1).unwrap().f64(), Some(0.5));
    let error = consts
        .set(&mut store, 0, Val::F64(1.0f64.to_bits()))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Usage, "an immutable array");

    // Handles keep what they refer to alive; the point's field keeps itself.
    store.gc();
    assert_eq!(store.gc_heap_stats().objects, 3);
    assert_eq!(point.field(&mut store, 0).unwrap().i32(), Some(-7));
}

#[test]
fn typed_functions_pass_anyrefs() {
    let engine = engine(64 << 20);
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap("host", "keep", |r: Option<AnyRef>| -> Option<AnyRef> { r })
        .unwrap();
    linker
        .func_wrap("host", "i31_of", |r: AnyRef| -> i32 {
            r.i31_s().unwrap_or(-1)
        })
        .unwrap();
    let module = Module::new(
        &engine,
        r#"(module
             (type $box (struct (field i32)))
             (import "host" "keep" (func $keep (param anyref) (result anyref)))
             (import "host" "i31_of" (func $i31_of (param (ref any)) (result i32)))
             (func (export "round_trip") (param i32) (result i32)
               (struct.get $box 0
                 (ref.cast (ref $box) (call $keep (struct.new $box (local.get 0))))))
             (func (export "i31") (param i32) (result i32)
               (call $i31_of (ref.i31 (local.get 0))))
             (func (export "make") (param i32) (result (ref any))
               (struct.new $box (local.get 0)))
             (func (export "unbox") (param anyref) (result i32)
               (struct.get $box 0 (ref.cast (ref $box) (local.get 0)))))"#,
    )
    .unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let round_trip = instance
        .get_typed_func::<i32, i32>(&mut store, "round_trip")
        .unwrap();
    assert_eq!(round_trip.call(&mut store, 17).unwrap(), 17);
    let i31 = instance
        .get_typed_func::<i32, i32>(&mut store, "i31")
        .unwrap();
    assert_eq!(i31.call(&mut store, -5).unwrap(), -5);
    let make = instance
        .get_typed_func::<i32, AnyRef>(&mut store, "make")
        .unwrap();
    let unbox = instance
        .get_typed_func::<Option<AnyRef>, i32>(&mut store, "unbox")
        .unwrap();
    let boxed = make.call(&mut store, 41).unwrap();
    store.gc();
    assert_eq!(unbox.call(&mut store, Some(boxed)).unwrap(), 41);
    let error = unbox.call(&mut store, None).unwrap_err();
    assert_eq!(
        error.as_trap().map(|t| t.code()),
        Some(TrapCode::CastFailure)
    );
    assert!(
        instance
            .get_typed_func::<i32, Option<AnyRef>>(&mut store, "make")
            .is_err(),
        "a typed function's types are exact"
    );
}

/// Objects externalized with `extern.convert_any` and stored in externref
/// globals, tables, struct fields and array elements stay reachable.
#[test]
fn externalized_objects_in_externref_slots_survive_a_collection() {
    let engine = engine(64 << 20);
    let mut store = Store::new(&engine, ());
    let module = Module::new(
        &engine,
        r#"(module
             (type $box (struct (field i32)))
             (type $holder (struct (field externref)))
             (type $externs (array (mut externref)))
             (global $g (mut externref) (ref.null extern))
             (global $h (mut (ref null $holder)) (ref.null $holder))
             (global $a (mut (ref null $externs)) (ref.null $externs))
             (table $t 1 externref)
             (func $box (param i32) (result externref)
               (extern.convert_any (struct.new $box (local.get 0))))
             (func $unbox (param externref) (result i32)
               (struct.get $box 0 (ref.cast (ref $box) (any.convert_extern (local.get 0)))))
             (func (export "setup")
               (global.set $g (call $box (i32.const 1)))
               (table.set $t (i32.const 0) (call $box (i32.const 2)))
               (global.set $h (struct.new $holder (call $box (i32.const 3))))
               (global.set $a (array.new $externs (call $box (i32.const 4)) (i32.const 1))))
             (func (export "garbage")
               (local $i i32)
               (loop $l
                 (drop (struct.new $box (local.get $i)))
                 (local.set $i (i32.add (local.get $i) (i32.const 1)))
                 (br_if $l (i32.lt_u (local.get $i) (i32.const 1000)))))
             (func (export "sum") (result i32)
               (i32.add
                 (i32.add (call $unbox (global.get $g)) (call $unbox (table.get $t (i32.const 0))))
                 (i32.add
                   (call $unbox (struct.get $holder 0 (global.get $h)))
                   (call $unbox (array.get $externs (global.get $a) (i32.const 0)))))))"#,
    )
    .unwrap();
    let instance = Linker::new(&engine)
        .instantiate(&mut store, &module)
        .unwrap();
    call(&mut store, instance, "setup", &[]).unwrap();
    call(&mut store, instance, "garbage", &[]).unwrap();
    store.gc();
    // The four boxes, the holder and the array.
    assert_eq!(store.gc_heap_stats().objects, 6);
    call(&mut store, instance, "garbage", &[]).unwrap();
    assert_eq!(
        call(&mut store, instance, "sum", &[]).unwrap().i32(),
        Some(10)
    );
}

/// An object that reaches the host only as an externref (`extern.convert_any`)
/// stays alive while the host may still pass it back.
#[test]
fn an_externalized_object_held_by_the_host_survives_a_collection() {
    let engine = engine(64 << 20);
    let mut store = Store::new(&engine, ());
    let module = Module::new(
        &engine,
        r#"(module
             (type $box (struct (field i32)))
             (func (export "box") (param i32) (result externref)
               (extern.convert_any (struct.new $box (local.get 0))))
             (func (export "unbox") (param externref) (result i32)
               (struct.get $box 0 (ref.cast (ref $box) (any.convert_extern (local.get 0))))))"#,
    )
    .unwrap();
    let instance = Linker::new(&engine)
        .instantiate(&mut store, &module)
        .unwrap();
    let boxed = call(&mut store, instance, "box", &[Val::I32(77)]).unwrap();
    let typed_box = instance
        .get_typed_func::<i32, Option<wazerox::ExternRef>>(&mut store, "box")
        .unwrap();
    let typed = typed_box.call(&mut store, 78).unwrap();
    for _ in 0..3 {
        call(&mut store, instance, "box", &[Val::I32(0)]).unwrap();
    }
    store.gc();
    assert_eq!(
        call(&mut store, instance, "unbox", &[boxed]).unwrap().i32(),
        Some(77)
    );
    let v = call(&mut store, instance, "unbox", &[Val::ExternRef(typed)]);
    assert_eq!(v.unwrap().i32(), Some(78));
}

/// Programs that allocate far more than the heap's cap within one call while
/// keeping a few objects live in locals, parameters and on the operand stack:
/// they run only if allocations collect inside the call, finding those roots
/// in the Wasm frames (docs/gc.md, "Roots, safepoints").
const CHURN: &str = r#"
(module
  (type $node (struct (field $v (mut i32)) (field $next (mut (ref null $node)))))
  (type $tree (struct (field $l (ref null $tree)) (field $r (ref null $tree))))
  (import "host" "reenter" (func $reenter (param i32) (result i32)))

  ;; The list n, n-1, ..., 1.
  (func $list (param $n i32) (result (ref null $node))
    (local $l (ref null $node))
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $l (struct.new $node (local.get $n) (local.get $l)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again)))
    (local.get $l))
  (func $sum (param $l (ref null $node)) (result i32)
    (local $s i32)
    (block $done
      (loop $again
        (br_if $done (ref.is_null (local.get $l)))
        (local.set $s (i32.add (local.get $s) (struct.get $node $v (local.get $l))))
        (local.set $l (struct.get $node $next (local.get $l)))
        (br $again)))
    (local.get $s))

  ;; Allocates $n short-lived two-node lists while [10..1] lives in a local
  ;; and [5..1] on the operand stack: returns 55 + 15.
  (func $churn (export "churn") (param $n i32) (result i32)
    (local $kept (ref null $node))
    (local.set $kept (call $list (i32.const 10)))
    (call $list (i32.const 5))
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $n)))
        (drop (call $list (i32.const 2)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again)))
    (call $sum)
    (i32.add (call $sum (local.get $kept))))

  ;; Binary trees: a full tree of depth $d (its left subtree is on the operand
  ;; stack while the right one is built), and its node count.
  (func $make (param $d i32) (result (ref $tree))
    (if (result (ref $tree)) (i32.eqz (local.get $d))
      (then (struct.new_default $tree))
      (else
        (struct.new $tree
          (call $make (i32.sub (local.get $d) (i32.const 1)))
          (call $make (i32.sub (local.get $d) (i32.const 1)))))))
  (func $check (param $t (ref null $tree)) (result i32)
    (if (result i32) (ref.is_null (local.get $t))
      (then (i32.const 0))
      (else
        (i32.add (i32.const 1)
          (i32.add
            (call $check (struct.get $tree $l (local.get $t)))
            (call $check (struct.get $tree $r (local.get $t))))))))
  ;; A long-lived tree of depth $long, then $iters short-lived ones of depth
  ;; $d: the total node count checked.
  (func (export "trees") (param $long i32) (param $iters i32) (param $d i32) (result i32)
    (local $kept (ref null $tree))
    (local $total i32)
    (local.set $kept (call $make (local.get $long)))
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $iters)))
        (local.set $total (i32.add (local.get $total) (call $check (call $make (local.get $d)))))
        (local.set $iters (i32.sub (local.get $iters) (i32.const 1)))
        (br $again)))
    (i32.add (local.get $total) (call $check (local.get $kept))))

  ;; Keeps a struct only as an externref (externalized) and a host externref
  ;; in locals while churning: the struct's field, and the host reference back.
  (func (export "extern_kept") (param $h externref) (param $n i32) (result i32 externref)
    (local $e externref)
    (local.set $e (extern.convert_any (struct.new $node (i32.const 77) (ref.null $node))))
    (drop (call $churn (local.get $n)))
    (struct.get $node $v (ref.cast (ref $node) (any.convert_extern (local.get $e))))
    (local.get $h))

  ;; Keeps [10..1] in a local across a host call that calls `churn` back,
  ;; then churns $n itself: returns the inner result + 55 + 70.
  (func (export "nested") (param $inner i32) (param $n i32) (result i32)
    (local $kept (ref null $node))
    (local.set $kept (call $list (i32.const 10)))
    (call $reenter (local.get $inner))
    (i32.add (call $churn (local.get $n)))
    (i32.add (call $sum (local.get $kept)))))
"#;

fn churn_instance(store: &mut Store<()>) -> Instance {
    let engine = store.engine().clone();
    let module = Module::new(&engine, CHURN).unwrap();
    churn_instance_of(store, &module)
}

fn churn_instance_of(store: &mut Store<()>, module: &Module) -> Instance {
    let mut linker = Linker::new(store.engine());
    linker
        .func_wrap(
            "host",
            "reenter",
            |mut caller: Caller<'_, ()>, n: i32| -> Result<i32, wazerox::Error> {
                let before = caller.as_context_mut().gc_heap_stats().collections;
                let churn = caller.get_export("churn").unwrap().into_func().unwrap();
                let mut results = [Val::I32(0)];
                churn.call(&mut caller, &[Val::I32(n)], &mut results)?;
                // The outer call's frames are not walked: no collection inside.
                assert_eq!(caller.as_context_mut().gc_heap_stats().collections, before);
                Ok(results[0].i32().unwrap())
            },
        )
        .unwrap();
    linker.instantiate(&mut *store, module).unwrap()
}

const SMALL_CAP: usize = 4 << 20;

#[test]
fn a_call_allocating_far_past_the_cap_collects_and_keeps_its_frames_objects() {
    let mut store = Store::new(&engine(SMALL_CAP), ());
    let instance = churn_instance(&mut store);
    // 400,000 nodes of 32 bytes (12.8 MB) in one call through a 4 MiB heap.
    let v = call(&mut store, instance, "churn", &[Val::I32(200_000)]).unwrap();
    assert_eq!(v.i32(), Some(70));
    let stats = store.gc_heap_stats();
    assert!(stats.collections >= 5, "{stats:?}");
    assert!(stats.bytes <= SMALL_CAP, "{stats:?}");
}

#[test]
fn binary_trees_of_a_million_nodes_run_in_one_call_in_a_small_heap() {
    let mut store = Store::new(&engine(SMALL_CAP), ());
    let instance = churn_instance(&mut store);
    // A long-lived tree of 2^13 - 1 nodes, then 500 trees of 2^11 - 1: about
    // 10^6 objects (33 MB) in one call.
    let args = [Val::I32(12), Val::I32(500), Val::I32(10)];
    let v = call(&mut store, instance, "trees", &args).unwrap();
    assert_eq!(v.i32(), Some(500 * 2047 + 8191));
    let stats = store.gc_heap_stats();
    assert!(stats.collections >= 10, "{stats:?}");
    assert!(stats.bytes <= SMALL_CAP, "{stats:?}");
}

#[test]
fn externrefs_in_frames_keep_externalized_objects_and_host_handles_intact() {
    let mut store = Store::new(&engine(SMALL_CAP), ());
    let instance = churn_instance(&mut store);
    // Handle 8 is a multiple of 8, the shape of an object address: the
    // collector must not take it for one.
    let handles: Vec<ExternRef> = (1..=8u32).map(|i| ExternRef::new(&mut store, i)).collect();
    let func = instance.get_func(&mut store, "extern_kept").unwrap();
    let mut results = [Val::I32(0), Val::I32(0)];
    let args = [Val::ExternRef(Some(handles[7])), Val::I32(200_000)];
    func.call(&mut store, &args, &mut results).unwrap();
    assert_eq!(results[0].i32(), Some(77));
    let Val::ExternRef(Some(back)) = &results[1] else {
        panic!("{:?}", results[1]);
    };
    let data = back.data(&store).unwrap().downcast_ref::<u32>();
    assert_eq!(data, Some(&8));
    assert!(store.gc_heap_stats().collections >= 5);
}

#[test]
fn a_nested_call_does_not_collect_and_the_outer_one_does_afterwards() {
    let mut store = Store::new(&engine(SMALL_CAP), ());
    let instance = churn_instance(&mut store);
    // The inner call allocates under the cap (20,000 nodes, 640 KB) without
    // collecting; the outer one then churns 12.8 MB, collecting.
    let args = [Val::I32(10_000), Val::I32(200_000)];
    let v = call(&mut store, instance, "nested", &args).unwrap();
    assert_eq!(v.i32(), Some(70 + 70 + 55));
    assert!(store.gc_heap_stats().collections >= 5);
}

#[test]
fn a_nested_call_past_the_cap_traps_instead_of_collecting() {
    let mut store = Store::new(&engine(1 << 20), ());
    let instance = churn_instance(&mut store);
    // 200,000 nodes (6.4 MB) in the inner call, past the 1 MiB cap.
    let args = [Val::I32(100_000), Val::I32(0)];
    let error = call(&mut store, instance, "nested", &args).unwrap_err();
    assert_eq!(
        error.as_trap().map(|t| t.code()),
        Some(TrapCode::GcHeapExhausted),
        "{error}"
    );
    assert_eq!(store.gc_heap_stats().collections, 0);
}

#[test]
fn lazily_compiled_and_deserialized_code_collects_inside_calls() {
    let mut config = Config::new();
    config
        .wasm_gc(true)
        .gc_heap_limit(SMALL_CAP)
        .compilation_strategy(wazerox::CompilationStrategy::Lazy);
    let lazy = Engine::new(&config).unwrap();
    let mut store = Store::new(&lazy, ());
    let instance = churn_instance(&mut store);
    let v = call(&mut store, instance, "churn", &[Val::I32(200_000)]).unwrap();
    assert_eq!(v.i32(), Some(70));
    assert!(store.gc_heap_stats().collections >= 5);

    let engine = engine(SMALL_CAP);
    let artifact = Module::new(&engine, CHURN).unwrap().serialize();
    // SAFETY: an artifact this engine just produced.
    let module = unsafe { Module::deserialize(&engine, &artifact) }.unwrap();
    let mut store = Store::new(&engine, ());
    let instance = churn_instance_of(&mut store, &module);
    let v = call(&mut store, instance, "churn", &[Val::I32(200_000)]).unwrap();
    assert_eq!(v.i32(), Some(70));
    assert!(store.gc_heap_stats().collections >= 5);
}
