//! Math routines Cranelift calls when the CPU lacks an instruction for them (e.g.
//! `ceil`/`floor`/`trunc`/`nearest` without SSE4.1, `fma` without FMA). The compiler
//! leaves absolute relocations against these names; the code loader patches in the
//! addresses from [`address`].

extern "C" fn ceil_f32(x: f32) -> f32 {
    x.ceil()
}
extern "C" fn ceil_f64(x: f64) -> f64 {
    x.ceil()
}
extern "C" fn floor_f32(x: f32) -> f32 {
    x.floor()
}
extern "C" fn floor_f64(x: f64) -> f64 {
    x.floor()
}
extern "C" fn trunc_f32(x: f32) -> f32 {
    x.trunc()
}
extern "C" fn trunc_f64(x: f64) -> f64 {
    x.trunc()
}
extern "C" fn nearest_f32(x: f32) -> f32 {
    x.round_ties_even()
}
extern "C" fn nearest_f64(x: f64) -> f64 {
    x.round_ties_even()
}
extern "C" fn fma_f32(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}
extern "C" fn fma_f64(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
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
        _ => return None,
    })
}
