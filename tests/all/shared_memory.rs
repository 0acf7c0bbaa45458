//! Shared memories through the embedding API: they surface as `SharedMemory`
//! everywhere (never as a `Memory`, whose `data_mut` is a `&mut [u8]`), report
//! their sharing in their type, and can be re-linked into other instances.

use std::sync::Arc;
use wazerox::{Engine, Extern, Linker, Memory, MemoryType, Module, SharedMemory, Store};
use wazerox_wasi::{WasiCtx, WasiCtxBuilder};

const DEFINES_SHARED: &str = r#"
    (module
      (memory (export "m") 1 4 shared)
      (data (i32.const 16) "seg")
      (func (export "store") (param i32 i32) local.get 0 local.get 1 i32.store8))
"#;

#[test]
fn exported_shared_memory_is_a_shared_memory() {
    let engine = Engine::default();
    let module = Module::new(&engine, DEFINES_SHARED).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Linker::new(&engine)
        .instantiate(&mut store, &module)
        .unwrap();
    let export = instance.get_export(&mut store, "m").unwrap();
    assert!(
        matches!(export, Extern::SharedMemory(_)),
        "a shared export is an Extern::SharedMemory, got {export:?}"
    );
    assert!(instance.get_memory(&mut store, "m").is_none());
    let shared = instance.get_shared_memory(&mut store, "m").unwrap();
    assert!(shared.ty().is_shared());
    assert_eq!(shared.ty().maximum(), Some(4));
    // The data segment went in, and Wasm's stores are seen through the handle.
    let mut seg = [0u8; 3];
    shared.read(16, &mut seg).unwrap();
    assert_eq!(&seg, b"seg");
    let store8 = instance
        .get_typed_func::<(i32, i32), ()>(&mut store, "store")
        .unwrap();
    store8.call(&mut store, (100, 42)).unwrap();
    let mut byte = [0u8];
    shared.read(100, &mut byte).unwrap();
    assert_eq!(byte[0], 42);
    // The cells view sees the same byte.
    // SAFETY: no other thread runs code on this memory.
    assert_eq!(unsafe { *shared.data()[100].get() }, 42);
    // The same export gives the same memory each time, and `exports` agrees.
    assert_eq!(instance.get_shared_memory(&mut store, "m").unwrap(), shared);
    let exports = instance.exports(&mut store);
    assert!(matches!(&exports[0].1, Extern::SharedMemory(m) if *m == shared));
}

#[test]
fn shared_export_relinks_into_another_instance() {
    let engine = Engine::default();
    let definer = Module::new(&engine, DEFINES_SHARED).unwrap();
    let importer = Module::new(
        &engine,
        r#"(module
             (import "a" "m" (memory 1 4 shared))
             (func (export "load") (param i32) (result i32) local.get 0 i32.load8_u))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::new(&engine);
    let a = linker.instantiate(&mut store, &definer).unwrap();
    linker.instance(&mut store, "a", a).unwrap();
    let b = linker.instantiate(&mut store, &importer).unwrap();
    let store8 = a
        .get_typed_func::<(i32, i32), ()>(&mut store, "store")
        .unwrap();
    store8.call(&mut store, (7, 99)).unwrap();
    let load = b.get_typed_func::<i32, i32>(&mut store, "load").unwrap();
    assert_eq!(load.call(&mut store, 7).unwrap(), 99);

    // And into an instance of another store, on another thread.
    let shared = a.get_shared_memory(&mut store, "m").unwrap();
    std::thread::spawn(move || {
        let mut other = Store::new(&engine, ());
        let mut linker = Linker::new(&engine);
        linker.define(&mut other, "a", "m", shared).unwrap();
        let b = linker.instantiate(&mut other, &importer).unwrap();
        let load = b.get_typed_func::<i32, i32>(&mut other, "load").unwrap();
        assert_eq!(load.call(&mut other, 7).unwrap(), 99);
    })
    .join()
    .unwrap();
}

#[test]
fn sharing_must_match_on_import() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let unshared = Memory::new(&mut store, MemoryType::new(1, Some(4))).unwrap();
    let shared = SharedMemory::new(&engine, MemoryType::shared(1, 4)).unwrap();
    let wants_shared =
        Module::new(&engine, r#"(module (import "a" "m" (memory 1 4 shared)))"#).unwrap();
    let wants_unshared = Module::new(&engine, r#"(module (import "a" "m" (memory 1 4)))"#).unwrap();
    let err = wazerox::Instance::new(&mut store, &wants_shared, &[unshared.into()]).unwrap_err();
    assert!(
        err.to_string().contains("a shared memory is expected"),
        "{err}"
    );
    let err = wazerox::Instance::new(&mut store, &wants_unshared, &[shared.into()]).unwrap_err();
    assert!(
        err.to_string().contains("an unshared memory is expected"),
        "{err}"
    );
}

#[test]
fn memory_new_rejects_a_shared_type() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let err = Memory::new(&mut store, MemoryType::shared(1, 2)).unwrap_err();
    assert!(err.to_string().contains("SharedMemory::new"), "{err}");
}

#[test]
fn wasi_writes_into_an_exported_shared_memory() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
             (import "wasi_snapshot_preview1" "args_sizes_get"
               (func $sizes (param i32 i32) (result i32)))
             (import "wasi_snapshot_preview1" "random_get"
               (func $random (param i32 i32) (result i32)))
             (import "env" "memory" (memory 1 1 shared))
             (export "memory" (memory 0))
             (func (export "run") (result i32)
               (drop (call $sizes (i32.const 0) (i32.const 4)))
               (call $random (i32.const 64) (i32.const 32))))"#,
    )
    .unwrap();
    let mut builder = WasiCtxBuilder::new();
    builder.arg("prog").arg("x");
    let mut store = Store::new(&engine, builder.build());
    let mut linker: Linker<Arc<WasiCtx>> = Linker::new(&engine);
    wazerox_wasi::add_to_linker(&mut linker, |c| c).unwrap();
    let memory = SharedMemory::new(&engine, MemoryType::shared(1, 1)).unwrap();
    linker
        .define(&mut store, "env", "memory", memory.clone())
        .unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, ()).unwrap(), 0, "random_get succeeds");
    let mut sizes = [0u8; 8];
    memory.read(0, &mut sizes).unwrap();
    assert_eq!(u32::from_le_bytes(sizes[..4].try_into().unwrap()), 2);
    assert_eq!(u32::from_le_bytes(sizes[4..].try_into().unwrap()), 7);
    let mut random = [0u8; 32];
    memory.read(64, &mut random).unwrap();
    assert!(
        random.iter().any(|b| *b != 0),
        "random bytes were copied in"
    );
}
