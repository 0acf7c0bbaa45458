//! `v128` values across the embedding API: typed and dynamic calls into Wasm, host
//! functions made by `wrap` and `new` (also with more v128 arguments than vector
//! registers), and globals.

use wazerox::{
    Engine, FuncType, Global, GlobalType, Instance, Linker, Module, Mutability, Store, Val, ValType,
};

/// Packs four i32 lanes the way Wasm lays them out (lane 0 lowest).
fn i32x4(lanes: [i32; 4]) -> u128 {
    lanes
        .iter()
        .rev()
        .fold(0u128, |acc, &lane| (acc << 32) | u128::from(lane as u32))
}

fn lanes(v: u128) -> [i32; 4] {
    std::array::from_fn(|i| (v >> (32 * i)) as u32 as i32)
}

const WAT: &str = r#"
(module
  (import "host" "scale" (func $scale (param v128 i32) (result v128)))
  (import "host" "sum10" (func $sum10
    (param v128 v128 v128 v128 v128 v128 v128 v128 v128 v128) (result v128)))
  (import "host" "swap" (func $swap (param v128 v128) (result v128 v128)))
  (global (export "g") (mut v128) (v128.const i32x4 1 2 3 4))
  (func (export "add") (param v128 v128) (result v128)
    (i32x4.add (local.get 0) (local.get 1)))
  (func (export "scale-twice") (param v128) (result v128)
    (call $scale (call $scale (local.get 0) (i32.const 2)) (i32.const 3)))
  (func (export "sum10") (param v128) (result v128)
    (call $sum10 (local.get 0) (local.get 0) (local.get 0) (local.get 0)
                 (local.get 0) (local.get 0) (local.get 0) (local.get 0)
                 (local.get 0) (v128.const i32x4 100 200 300 400)))
  (func (export "swap-sub") (param v128 v128) (result v128)
    (call $swap (local.get 0) (local.get 1))
    (i32x4.sub))
  (func (export "bump-global") (result v128)
    (global.set 0 (i32x4.add (global.get 0) (v128.const i32x4 10 10 10 10)))
    (global.get 0))
)
"#;

fn instantiate(store: &mut Store<()>, engine: &Engine) -> Instance {
    let module = Module::new(engine, WAT).unwrap();
    let mut linker = Linker::new(engine);
    linker
        .func_wrap("host", "scale", |v: u128, k: i32| {
            i32x4(lanes(v).map(|lane| lane * k))
        })
        .unwrap();
    linker
        .func_wrap(
            "host",
            "sum10",
            |a: u128,
             b: u128,
             c: u128,
             d: u128,
             e: u128,
             f: u128,
             g: u128,
             h: u128,
             i: u128,
             j: u128| {
                let mut total = [0i32; 4];
                for v in [a, b, c, d, e, f, g, h, i, j] {
                    for (t, lane) in total.iter_mut().zip(lanes(v)) {
                        *t += lane;
                    }
                }
                i32x4(total)
            },
        )
        .unwrap();
    linker
        .func_new(
            "host",
            "swap",
            FuncType::new(
                vec![ValType::V128, ValType::V128],
                vec![ValType::V128, ValType::V128],
            ),
            |_caller, params, results| {
                results[0] = params[1].clone();
                results[1] = params[0].clone();
                Ok(())
            },
        )
        .unwrap();
    linker.instantiate(&mut *store, &module).unwrap()
}

#[test]
fn v128_through_typed_and_dynamic_calls() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let instance = instantiate(&mut store, &engine);
    let add = instance
        .get_typed_func::<(u128, u128), u128>(&mut store, "add")
        .unwrap();
    let sum = add
        .call(
            &mut store,
            (i32x4([1, -2, i32::MAX, 7]), i32x4([10, 20, 1, -7])),
        )
        .unwrap();
    assert_eq!(lanes(sum), [11, 18, i32::MIN, 0]);

    let mut results = [Val::I32(0)];
    instance
        .get_func(&mut store, "add")
        .unwrap()
        .call(
            &mut store,
            &[Val::V128(u128::MAX), Val::V128(i32x4([1, 1, 1, 1]))],
            &mut results,
        )
        .unwrap();
    assert_eq!(results[0].v128(), Some(0));
    // A v128 where another type is expected is refused, not reinterpreted.
    assert!(
        instance
            .get_typed_func::<(u128, u64), u128>(&mut store, "add")
            .is_err()
    );
}

#[test]
fn v128_crosses_into_host_functions() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let instance = instantiate(&mut store, &engine);
    let scale = instance
        .get_typed_func::<u128, u128>(&mut store, "scale-twice")
        .unwrap();
    assert_eq!(
        lanes(scale.call(&mut store, i32x4([1, -2, 3, 1000])).unwrap()),
        [6, -12, 18, 6000]
    );
    // Ten vector arguments: more than there are vector argument registers.
    let sum10 = instance
        .get_typed_func::<u128, u128>(&mut store, "sum10")
        .unwrap();
    assert_eq!(
        lanes(sum10.call(&mut store, i32x4([1, 2, 3, 4])).unwrap()),
        [109, 218, 327, 436]
    );
    // A dynamic host function with two v128 results.
    let swap_sub = instance
        .get_typed_func::<(u128, u128), u128>(&mut store, "swap-sub")
        .unwrap();
    assert_eq!(
        lanes(
            swap_sub
                .call(&mut store, (i32x4([1, 1, 1, 1]), i32x4([5, 6, 7, 8])))
                .unwrap()
        ),
        [4, 5, 6, 7]
    );
}

#[test]
fn v128_globals() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let instance = instantiate(&mut store, &engine);
    let global = instance.get_global(&mut store, "g").unwrap();
    assert_eq!(global.get(&mut store).v128(), Some(i32x4([1, 2, 3, 4])));
    global
        .set(&mut store, Val::V128(i32x4([-10, 0, 10, 20])))
        .unwrap();
    let bump = instance
        .get_typed_func::<(), u128>(&mut store, "bump-global")
        .unwrap();
    assert_eq!(lanes(bump.call(&mut store, ()).unwrap()), [0, 10, 20, 30]);
    assert!(global.set(&mut store, Val::I32(1)).is_err());

    let host_global = Global::new(
        &mut store,
        GlobalType::new(ValType::V128, Mutability::Const),
        Val::V128(u128::MAX),
    )
    .unwrap();
    assert_eq!(host_global.get(&mut store).v128(), Some(u128::MAX));
}
