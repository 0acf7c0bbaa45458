//! Compiled artifacts: `Module::serialize` / `Module::deserialize`.

use wazerox::{Config, Engine, ErrorKind, Instance, Module, Store};

const WAT: &str = r#"(module
    (memory 1) (data (i32.const 0) "\2a")
    (func $fib (export "fib") (param i32) (result i32)
      (if (result i32) (i32.lt_u (local.get 0) (i32.const 2)) (then (local.get 0))
        (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                       (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
    (func (export "byte") (result i32) (i32.load8_u (i32.const 0)))
    (func (export "trap") (unreachable)))"#;

fn fib_of(engine: &Engine, module: &Module) -> i32 {
    let mut store = Store::new(engine, ());
    let instance = Instance::new(&mut store, module, &[]).unwrap();
    let fib = instance
        .get_typed_func::<i32, i32>(&mut store, "fib")
        .unwrap();
    let byte = instance
        .get_typed_func::<(), i32>(&mut store, "byte")
        .unwrap();
    assert_eq!(byte.call(&mut store, ()).unwrap(), 42);
    let trap = instance
        .get_typed_func::<(), ()>(&mut store, "trap")
        .unwrap();
    let error = trap.call(&mut store, ()).unwrap_err();
    assert_eq!(
        error.as_trap().unwrap().code(),
        wazerox::TrapCode::UnreachableCodeReached
    );
    fib.call(&mut store, 20).unwrap()
}

#[test]
fn serialized_modules_load_and_run() {
    let engine = Engine::default();
    let artifact = Module::new(&engine, WAT).unwrap().serialize();
    assert!(Module::is_artifact(&artifact));
    // SAFETY: written just above by this process.
    let module = unsafe { Module::deserialize(&engine, &artifact) }.unwrap();
    assert_eq!(fib_of(&engine, &module), 6765);
    // A second engine with the same configuration accepts it too.
    let other = Engine::default();
    // SAFETY: as above.
    let module = unsafe { Module::deserialize(&other, &artifact) }.unwrap();
    assert_eq!(fib_of(&other, &module), 6765);
}

#[test]
fn tampered_truncated_and_foreign_artifacts_are_rejected() {
    let engine = Engine::default();
    let artifact = Module::new(&engine, WAT).unwrap().serialize();
    // Every single-byte change, anywhere, is caught.
    for at in 0..artifact.len() {
        let mut tampered = artifact.clone();
        tampered[at] ^= 0x40;
        // SAFETY: the checksum must reject it before any code is mapped.
        let error = unsafe { Module::deserialize(&engine, &tampered) }
            .err()
            .expect("rejected");
        assert_eq!(error.kind(), ErrorKind::Decode, "{error}");
    }
    for len in [0, 7, 30, artifact.len() - 1] {
        // SAFETY: as above.
        let error = unsafe { Module::deserialize(&engine, &artifact[..len]) }
            .err()
            .expect("rejected");
        assert_eq!(error.kind(), ErrorKind::Decode, "{error}");
    }
    let mut config = Config::new();
    config.explicit_bounds_checks(true);
    let foreign = Engine::new(&config).unwrap();
    // SAFETY: as above; the fingerprint must reject it.
    let error = unsafe { Module::deserialize(&foreign, &artifact) }
        .err()
        .expect("rejected");
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert!(
        error.to_string().contains("another engine configuration"),
        "{error}"
    );
}
