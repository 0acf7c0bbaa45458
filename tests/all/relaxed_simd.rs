//! Relaxed SIMD gives the results documented per operator in docs/frontend.md:
//! with `Config::relaxed_simd_deterministic`, the same as a model of the
//! deterministic semantics on every input; by default on x86-64, the native
//! instruction's result where it differs.

use wazerox::{Config, Engine, Instance, Module, Store, TypedFunc};

const WAT: &str = r#"
(module
  (func (export "swizzle") (param v128 v128) (result v128)
    (i8x16.relaxed_swizzle (local.get 0) (local.get 1)))
  (func (export "trunc_f32x4_s") (param v128) (result v128)
    (i32x4.relaxed_trunc_f32x4_s (local.get 0)))
  (func (export "trunc_f32x4_u") (param v128) (result v128)
    (i32x4.relaxed_trunc_f32x4_u (local.get 0)))
  (func (export "trunc_f64x2_s_zero") (param v128) (result v128)
    (i32x4.relaxed_trunc_f64x2_s_zero (local.get 0)))
  (func (export "trunc_f64x2_u_zero") (param v128) (result v128)
    (i32x4.relaxed_trunc_f64x2_u_zero (local.get 0)))
  (func (export "f32x4_madd") (param v128 v128 v128) (result v128)
    (f32x4.relaxed_madd (local.get 0) (local.get 1) (local.get 2)))
  (func (export "f32x4_nmadd") (param v128 v128 v128) (result v128)
    (f32x4.relaxed_nmadd (local.get 0) (local.get 1) (local.get 2)))
  (func (export "f64x2_madd") (param v128 v128 v128) (result v128)
    (f64x2.relaxed_madd (local.get 0) (local.get 1) (local.get 2)))
  (func (export "f64x2_nmadd") (param v128 v128 v128) (result v128)
    (f64x2.relaxed_nmadd (local.get 0) (local.get 1) (local.get 2)))
  (func (export "i8x16_laneselect") (param v128 v128 v128) (result v128)
    (i8x16.relaxed_laneselect (local.get 0) (local.get 1) (local.get 2)))
  (func (export "i16x8_laneselect") (param v128 v128 v128) (result v128)
    (i16x8.relaxed_laneselect (local.get 0) (local.get 1) (local.get 2)))
  (func (export "i32x4_laneselect") (param v128 v128 v128) (result v128)
    (i32x4.relaxed_laneselect (local.get 0) (local.get 1) (local.get 2)))
  (func (export "i64x2_laneselect") (param v128 v128 v128) (result v128)
    (i64x2.relaxed_laneselect (local.get 0) (local.get 1) (local.get 2)))
  (func (export "f32x4_min") (param v128 v128) (result v128)
    (f32x4.relaxed_min (local.get 0) (local.get 1)))
  (func (export "f32x4_max") (param v128 v128) (result v128)
    (f32x4.relaxed_max (local.get 0) (local.get 1)))
  (func (export "f64x2_min") (param v128 v128) (result v128)
    (f64x2.relaxed_min (local.get 0) (local.get 1)))
  (func (export "f64x2_max") (param v128 v128) (result v128)
    (f64x2.relaxed_max (local.get 0) (local.get 1)))
  (func (export "q15mulr") (param v128 v128) (result v128)
    (i16x8.relaxed_q15mulr_s (local.get 0) (local.get 1)))
  (func (export "dot") (param v128 v128) (result v128)
    (i16x8.relaxed_dot_i8x16_i7x16_s (local.get 0) (local.get 1)))
  (func (export "dot_add") (param v128 v128 v128) (result v128)
    (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get 0) (local.get 1) (local.get 2)))
)
"#;

struct Ops {
    store: Store<()>,
    instance: Instance,
}

impl Ops {
    fn new(deterministic: bool) -> Ops {
        let mut config = Config::new();
        config.relaxed_simd_deterministic(deterministic);
        let engine = Engine::new(&config).unwrap();
        let module = Module::new(&engine, WAT).unwrap();
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        Ops { store, instance }
    }

    fn unary(&mut self, name: &str, a: u128) -> u128 {
        let f: TypedFunc<u128, u128> = self.instance.get_typed_func(&mut self.store, name).unwrap();
        f.call(&mut self.store, a).unwrap()
    }

    fn binary(&mut self, name: &str, a: u128, b: u128) -> u128 {
        let f: TypedFunc<(u128, u128), u128> =
            self.instance.get_typed_func(&mut self.store, name).unwrap();
        f.call(&mut self.store, (a, b)).unwrap()
    }

    fn ternary(&mut self, name: &str, a: u128, b: u128, c: u128) -> u128 {
        let f: TypedFunc<(u128, u128, u128), u128> =
            self.instance.get_typed_func(&mut self.store, name).unwrap();
        f.call(&mut self.store, (a, b, c)).unwrap()
    }
}

// Lane views (lane 0 in the low bits, as Wasm lays a v128 out).
fn bytes(v: u128) -> [u8; 16] {
    v.to_le_bytes()
}
fn from_bytes(b: [u8; 16]) -> u128 {
    u128::from_le_bytes(b)
}
fn i16s(v: u128) -> [i16; 8] {
    std::array::from_fn(|i| (v >> (16 * i)) as u16 as i16)
}
fn from_i16s(l: [i16; 8]) -> u128 {
    l.iter()
        .rev()
        .fold(0, |acc, x| (acc << 16) | u128::from(*x as u16))
}
fn u32s(v: u128) -> [u32; 4] {
    std::array::from_fn(|i| (v >> (32 * i)) as u32)
}
fn from_u32s(l: [u32; 4]) -> u128 {
    l.iter()
        .rev()
        .fold(0, |acc, x| (acc << 32) | u128::from(*x))
}
fn f32s(v: u128) -> [f32; 4] {
    u32s(v).map(f32::from_bits)
}
fn from_f32s(l: [f32; 4]) -> u128 {
    from_u32s(l.map(f32::to_bits))
}
fn f64s(v: u128) -> [f64; 2] {
    [f64::from_bits(v as u64), f64::from_bits((v >> 64) as u64)]
}
fn from_f64s(l: [f64; 2]) -> u128 {
    u128::from(l[0].to_bits()) | (u128::from(l[1].to_bits()) << 64)
}

/// Float lanes are equal, or both NaN (NaN payloads are not specified).
fn same_f32(a: u128, b: u128) -> bool {
    f32s(a)
        .iter()
        .zip(f32s(b))
        .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}
fn same_f64(a: u128, b: u128) -> bool {
    f64s(a)
        .iter()
        .zip(f64s(b))
        .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

/// Wasm's `min`/`max`: NaN if either is NaN, -0 below +0.
fn wasm_min<T: PartialOrd + Copy>(a: T, b: T, nan: fn(T) -> bool, neg: fn(T) -> bool) -> T {
    if nan(a) {
        a
    } else if nan(b) {
        b
    } else if a == b {
        if neg(a) { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}
fn wasm_max<T: PartialOrd + Copy>(a: T, b: T, nan: fn(T) -> bool, neg: fn(T) -> bool) -> T {
    if nan(a) {
        a
    } else if nan(b) {
        b
    } else if a == b {
        if neg(a) { b } else { a }
    } else if a > b {
        a
    } else {
        b
    }
}

/// Inputs: random bits, random floats, and the values where lowerings differ.
fn inputs() -> Vec<u128> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let special_f32 = [
        f32::NAN,
        -f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
        1.0,
        -1.5,
        2147483648.0,
        -2147483904.0,
        4294967296.0,
        1.0000001,
        3.0e9,
        -3.0e9,
        0.5,
        1e-40,
    ];
    let special_f64 = [
        f64::NAN,
        -f64::NAN,
        f64::INFINITY,
        -0.0,
        0.0,
        2147483648.0,
        -2147483649.0,
        4294967296.0,
        1.0000000000000002,
        -1.5,
        1e300,
        1e-310,
    ];
    let mut v = Vec::new();
    for i in 0..200 {
        let random = u128::from(next()) | (u128::from(next()) << 64);
        v.push(random);
        v.push(from_f32s(std::array::from_fn(|k| {
            special_f32[(i * 4 + k + (next() as usize)) % special_f32.len()]
        })));
        v.push(from_f64s(std::array::from_fn(|k| {
            special_f64[(i * 2 + k + (next() as usize)) % special_f64.len()]
        })));
        v.push(from_i16s(std::array::from_fn(|k| {
            [
                i16::MIN,
                i16::MAX,
                -1,
                1,
                0x4000,
                -0x4000,
                i16::MIN + 1,
                12345,
            ][(k + i) % 8]
        })));
        v.push(from_bytes(std::array::from_fn(|k| {
            [0u8, 1, 15, 16, 17, 0x7f, 0x80, 0x81, 0xff, 0x40, 0xc0, 31][(k * 7 + i) % 12]
        })));
    }
    v
}

#[test]
fn the_deterministic_lowering_matches_its_model_on_every_input() {
    let mut ops = Ops::new(true);
    let inputs = inputs();
    let n = inputs.len();
    for (i, &a) in inputs.iter().enumerate() {
        let b = inputs[(i * 7 + 3) % n];
        let c = inputs[(i * 13 + 5) % n];

        let expected = {
            let (x, s) = (bytes(a), bytes(b));
            from_bytes(std::array::from_fn(|k| {
                if s[k] < 16 { x[s[k] as usize] } else { 0 }
            }))
        };
        assert_eq!(ops.binary("swizzle", a, b), expected, "swizzle {a:x} {b:x}");

        let fa = f32s(a);
        let da = f64s(a);
        assert_eq!(
            ops.unary("trunc_f32x4_s", a),
            from_u32s(fa.map(|x| x as i32 as u32))
        );
        assert_eq!(
            ops.unary("trunc_f32x4_u", a),
            from_u32s(fa.map(|x| x as u32))
        );
        assert_eq!(
            ops.unary("trunc_f64x2_s_zero", a),
            from_u32s([da[0] as i32 as u32, da[1] as i32 as u32, 0, 0])
        );
        assert_eq!(
            ops.unary("trunc_f64x2_u_zero", a),
            from_u32s([da[0] as u32, da[1] as u32, 0, 0])
        );

        let (fb, fc, db, dc) = (f32s(b), f32s(c), f64s(b), f64s(c));
        let madd = from_f32s(std::array::from_fn(|k| fa[k].mul_add(fb[k], fc[k])));
        assert!(
            same_f32(ops.ternary("f32x4_madd", a, b, c), madd),
            "madd {a:x}"
        );
        let nmadd = from_f32s(std::array::from_fn(|k| (-fa[k]).mul_add(fb[k], fc[k])));
        assert!(same_f32(ops.ternary("f32x4_nmadd", a, b, c), nmadd));
        let madd = from_f64s(std::array::from_fn(|k| da[k].mul_add(db[k], dc[k])));
        assert!(same_f64(ops.ternary("f64x2_madd", a, b, c), madd));
        let nmadd = from_f64s(std::array::from_fn(|k| (-da[k]).mul_add(db[k], dc[k])));
        assert!(same_f64(ops.ternary("f64x2_nmadd", a, b, c), nmadd));

        let bitselect = (a & c) | (b & !c);
        for op in ["i8x16", "i16x8", "i32x4", "i64x2"] {
            assert_eq!(
                ops.ternary(&format!("{op}_laneselect"), a, b, c),
                bitselect,
                "{op}"
            );
        }

        let min = from_f32s(std::array::from_fn(|k| {
            wasm_min(fa[k], fb[k], f32::is_nan, f32::is_sign_negative)
        }));
        assert!(
            same_f32(ops.binary("f32x4_min", a, b), min),
            "min {a:x} {b:x}"
        );
        let max = from_f32s(std::array::from_fn(|k| {
            wasm_max(fa[k], fb[k], f32::is_nan, f32::is_sign_negative)
        }));
        assert!(
            same_f32(ops.binary("f32x4_max", a, b), max),
            "max {a:x} {b:x}"
        );
        let min = from_f64s(std::array::from_fn(|k| {
            wasm_min(da[k], db[k], f64::is_nan, f64::is_sign_negative)
        }));
        assert!(same_f64(ops.binary("f64x2_min", a, b), min));
        let max = from_f64s(std::array::from_fn(|k| {
            wasm_max(da[k], db[k], f64::is_nan, f64::is_sign_negative)
        }));
        assert!(same_f64(ops.binary("f64x2_max", a, b), max));

        let (ha, hb) = (i16s(a), i16s(b));
        let q15 = from_i16s(std::array::from_fn(|k| {
            let product = (i32::from(ha[k]) * i32::from(hb[k]) + 0x4000) >> 15;
            product.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
        }));
        assert_eq!(ops.binary("q15mulr", a, b), q15, "q15mulr {a:x} {b:x}");

        // Both operands signed; the i16 sums wrap.
        let (sa, sb) = (bytes(a).map(|x| x as i8), bytes(b).map(|x| x as i8));
        let dot: [i16; 8] = std::array::from_fn(|k| {
            (i16::from(sa[2 * k]) * i16::from(sb[2 * k]))
                .wrapping_add(i16::from(sa[2 * k + 1]) * i16::from(sb[2 * k + 1]))
        });
        assert_eq!(ops.binary("dot", a, b), from_i16s(dot), "dot {a:x} {b:x}");
        let acc = u32s(c);
        let dot_add = from_u32s(std::array::from_fn(|k| {
            let pair = i32::from(dot[2 * k]) + i32::from(dot[2 * k + 1]);
            pair.wrapping_add(acc[k] as i32) as u32
        }));
        assert_eq!(ops.ternary("dot_add", a, b, c), dot_add, "dot_add");
    }
}

/// On x86-64 the default lowering is the native instruction, as wasmtime's: the
/// inputs below are where it differs from the deterministic result.
#[cfg(target_arch = "x86_64")]
#[test]
fn the_native_lowering_on_x86_64_gives_the_instructions_results() {
    let mut native = Ops::new(false);
    let ssse3 = std::arch::is_x86_feature_detected!("ssse3");
    let sse41 = std::arch::is_x86_feature_detected!("sse4.1");
    let fma =
        std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx");

    // cvttps2dq / cvttpd2dq: NaN and out-of-range lanes become 0x80000000.
    let trunc = native.unary("trunc_f32x4_s", from_f32s([f32::NAN, 3.0e9, -3.0e9, -1.5]));
    assert_eq!(
        u32s(trunc),
        [0x8000_0000, 0x8000_0000, 0x8000_0000, -1i32 as u32]
    );
    let trunc = native.unary("trunc_f64x2_s_zero", from_f64s([f64::NAN, 2147483648.0]));
    assert_eq!(u32s(trunc), [0x8000_0000, 0x8000_0000, 0, 0]);
    // The unsigned forms have no native instruction: they saturate.
    let trunc = native.unary("trunc_f32x4_u", from_f32s([f32::NAN, 5.0e9, -1.0, 7.5]));
    assert_eq!(u32s(trunc), [0, u32::MAX, 0, 7]);

    // minps/maxps, as Wasm's pmin/pmax: the first operand unless the second is
    // strictly smaller (min) or larger (max), so NaNs and zeros of either sign in the
    // first operand win.
    let a = from_f32s([1.0, f32::NAN, -0.0, 0.0]);
    let b = from_f32s([f32::NAN, 1.0, 0.0, -0.0]);
    for op in ["f32x4_min", "f32x4_max"] {
        let r = f32s(native.binary(op, a, b));
        assert_eq!(r[0], 1.0, "{op}");
        assert!(r[1].is_nan(), "{op}");
        assert_eq!(
            [r[2].to_bits(), r[3].to_bits()],
            [(-0.0f32).to_bits(), 0],
            "{op}"
        );
    }
    let r = f32s(native.binary(
        "f32x4_min",
        from_f32s([3.0, 1.0, 0.0, 0.0]),
        from_f32s([2.0, 4.0, 0.0, 0.0]),
    ));
    assert_eq!(r[..2], [2.0, 1.0]);
    let r = f64s(native.binary(
        "f64x2_max",
        from_f64s([2.0, -0.0]),
        from_f64s([f64::NAN, 0.0]),
    ));
    assert_eq!(
        [r[0], r[1]].map(f64::to_bits),
        [2.0f64.to_bits(), (-0.0f64).to_bits()]
    );
    let r = f64s(native.binary(
        "f64x2_min",
        from_f64s([f64::NAN, 5.0]),
        from_f64s([1.0, 4.0]),
    ));
    assert!(r[0].is_nan() && r[1] == 4.0);

    // pshufb: indices below 128 select `index % 16`; without SSSE3, swizzle.
    let data = from_bytes(std::array::from_fn(|k| k as u8 + 100));
    let indices = from_bytes([17, 0x7f, 0x80, 0xff, 16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let swizzled = bytes(native.binary("swizzle", data, indices));
    if ssse3 {
        assert_eq!(swizzled[..6], [101, 115, 0, 0, 100, 100]);
    } else {
        assert_eq!(swizzled[..6], [0, 0, 0, 0, 0, 100]);
    }

    // pmulhrsw: -32768 * -32768 wraps to -32768; without SSSE3 it saturates.
    let q15 = i16s(native.binary(
        "q15mulr",
        from_i16s([i16::MIN; 8]),
        from_i16s([i16::MIN; 8]),
    ));
    assert_eq!(q15[0], if ssse3 { i16::MIN } else { i16::MAX });

    // pmaddubsw: the second operand's bytes unsigned, pair sums saturated.
    let a = from_bytes([0x80, 0x80, 0xff, 0xff, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let b = from_bytes([0xff, 0xff, 0x80, 0x80, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let dot = i16s(native.binary("dot", a, b));
    if ssse3 {
        // -128 * 255 * 2 saturates; -1 * 128 * 2.
        assert_eq!(dot[..3], [i16::MIN, -256, 11]);
    } else {
        assert_eq!(dot[..3], [256, 256, 11]);
    }

    // blendv: only each lane's top mask bit counts (SSE4.1; never for i16x8).
    let mask = from_bytes([
        0x80, 0x7f, 0xff, 0x00, 0x40, 0xc0, 0x01, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    let ones = u128::MAX;
    let blended = bytes(native.ternary("i8x16_laneselect", ones, 0, mask));
    if sse41 {
        assert_eq!(blended[..8], [0xff, 0, 0xff, 0, 0, 0xff, 0, 0xff]);
    } else {
        assert_eq!(blended[..8], [0x80, 0x7f, 0xff, 0, 0x40, 0xc0, 0x01, 0xfe]);
    }
    assert_eq!(native.ternary("i16x8_laneselect", ones, 0, mask), mask);

    // Fused only with FMA: (1 + 2^-23)^2 - (1 + 2^-22) is 2^-46 exactly, 0 rounded twice.
    let x = 1.0f32 + f32::EPSILON;
    let madd = f32s(native.ternary(
        "f32x4_madd",
        from_f32s([x; 4]),
        from_f32s([x; 4]),
        from_f32s([-(1.0 + 2.0 * f32::EPSILON); 4]),
    ));
    assert_eq!(madd[0], if fma { 2f32.powi(-46) } else { 0.0 });
}
