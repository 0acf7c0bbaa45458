//! Math routines Cranelift calls when the CPU lacks an instruction for them (e.g.
//! `ceil`/`floor`/`trunc`/`nearest` without SSE4.1, `fma` without FMA). The compiler
//! leaves absolute relocations against these names; the code loader patches in the
//! addresses from [`address`].

/// Wasm requires rounding a NaN to give a quiet (arithmetic) NaN; a software
/// rounding may hand a signalling NaN back unchanged. Adding it to itself quiets it.
fn quiet<F: Copy + PartialEq + std::ops::Add<Output = F>>(x: F) -> F {
    #[allow(clippy::eq_op)] // x != x is the NaN test that works for both widths
    if x != x { x + x } else { x }
}

extern "C" fn ceil_f32(x: f32) -> f32 {
    quiet(x).ceil()
}
extern "C" fn ceil_f64(x: f64) -> f64 {
    quiet(x).ceil()
}
extern "C" fn floor_f32(x: f32) -> f32 {
    quiet(x).floor()
}
extern "C" fn floor_f64(x: f64) -> f64 {
    quiet(x).floor()
}
extern "C" fn trunc_f32(x: f32) -> f32 {
    quiet(x).trunc()
}
extern "C" fn trunc_f64(x: f64) -> f64 {
    quiet(x).trunc()
}
extern "C" fn nearest_f32(x: f32) -> f32 {
    quiet(x).round_ties_even()
}
extern "C" fn nearest_f64(x: f64) -> f64 {
    quiet(x).round_ties_even()
}
extern "C" fn fma_f32(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}
extern "C" fn fma_f64(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}

/// `pshufb` for x86_64 CPUs without SSSE3: lane `i` of the result is lane
/// `b[i] & 15` of `a`, or 0 when `b[i]` has its top bit set.
#[cfg(target_arch = "x86_64")]
// The vector type is passed in an xmm register by the System V ABI, which is what
// Cranelift's call to this libcall uses; the lint cannot know that.
#[allow(improper_ctypes_definitions)]
extern "C" fn x86_pshufb(
    a: std::arch::x86_64::__m128i,
    b: std::arch::x86_64::__m128i,
) -> std::arch::x86_64::__m128i {
    use std::arch::x86_64::__m128i;
    // SAFETY: __m128i and [u8; 16] have the same size and every bit pattern is
    // valid for both.
    let (a, b) = unsafe {
        (
            std::mem::transmute::<__m128i, [u8; 16]>(a),
            std::mem::transmute::<__m128i, [u8; 16]>(b),
        )
    };
    let result: [u8; 16] = std::array::from_fn(|i| {
        if b[i] & 0x80 != 0 {
            0
        } else {
            a[usize::from(b[i] & 15)]
        }
    });
    // SAFETY: as above.
    unsafe { std::mem::transmute::<[u8; 16], __m128i>(result) }
}

/// The address of the libcall Cranelift names `name`, if the runtime provides it.
pub fn address(name: &str) -> Option<usize> {
    Some(match name {
        "CeilF32" => ceil_f32 as extern "C" fn(f32) -> f32 as usize,
        "CeilF64" => ceil_f64 as extern "C" fn(f64) -> f64 as usize,
        "FloorF32" => floor_f32 as extern "C" fn(f32) -> f32 as usize,
        "FloorF64" => floor_f64 as extern "C" fn(f64) -> f64 as usize,
        "TruncF32" => trunc_f32 as extern "C" fn(f32) -> f32 as usize,
        "TruncF64" => trunc_f64 as extern "C" fn(f64) -> f64 as usize,
        "NearestF32" => nearest_f32 as extern "C" fn(f32) -> f32 as usize,
        "NearestF64" => nearest_f64 as extern "C" fn(f64) -> f64 as usize,
        "FmaF32" => fma_f32 as extern "C" fn(f32, f32, f32) -> f32 as usize,
        "FmaF64" => fma_f64 as extern "C" fn(f64, f64, f64) -> f64 as usize,
        #[cfg(target_arch = "x86_64")]
        "X86Pshufb" => {
            use std::arch::x86_64::__m128i;
            x86_pshufb as extern "C" fn(__m128i, __m128i) -> __m128i as usize
        }
        _ => return None,
    })
}
