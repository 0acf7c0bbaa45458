//! Relaxed SIMD: operators whose result the spec lets depend on the platform.
//!
//! Each operator has two lowerings. The *native* one is the instruction this CPU
//! has (on x86-64: `pshufb`, `cvttps2dq`, `pmulhrsw`, `pmaddubsw`, `blendv*`,
//! `minps`/`maxps`, and a fused multiply-add only with FMA). The *deterministic* one
//! (`Config::relaxed_simd_deterministic`) gives every CPU and architecture the same
//! result: the non-relaxed counterpart's (`swizzle`, `trunc_sat`, `q15mulr_sat`,
//! `bitselect`, `min`/`max`), a signed dot product, and a fused multiply-add. Both
//! follow wasmtime's choice per operator, so a module computes the same values under
//! wazerox and wasmtime on the same machine; docs/frontend.md lists the choices.

use crate::translate::FuncTranslation;
use crate::translate::simd::float::Pseudo;
use cranelift_codegen::ir::types::{F32X4, F64X2, I8X16, I16X8, I32X4, I64X2, Type};
use cranelift_codegen::ir::{self, InstBuilder};
use cranelift_codegen::isa::TargetIsa;
use wasmparser::Operator;

/// Which native instructions the relaxed operators use; all `false` (and a fused
/// multiply-add) is the deterministic lowering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelaxedSimdLowering {
    /// x86's `minps`/`maxps` for `relaxed_min/max` (= `pmin`/`pmax`) and
    /// `cvttps2dq`/`cvttpd2dq` for the signed `relaxed_trunc` (0x80000000 for NaN
    /// and out-of-range lanes).
    pub x86_min_max_trunc: bool,
    /// `pshufb` for `relaxed_swizzle` (indices 16..=127 select `index % 16`).
    pub x86_pshufb: bool,
    /// `pmulhrsw` for `relaxed_q15mulr_s` (-32768 * -32768 wraps to -32768).
    pub x86_pmulhrsw: bool,
    /// `pmaddubsw` for the `relaxed_dot` operators (the second operand's bytes
    /// unsigned, pairwise sums saturated).
    pub x86_pmaddubsw: bool,
    /// `blendv` for `relaxed_laneselect` of these lane types (only the mask's top
    /// bit per lane counts).
    pub blendv_i8x16: bool,
    pub blendv_i32x4: bool,
    pub blendv_i64x2: bool,
    /// `relaxed_madd`/`nmadd` fused (one rounding) rather than a multiply then an
    /// add (two roundings).
    pub fused_madd: bool,
}

impl RelaxedSimdLowering {
    /// The same result on every CPU and architecture.
    pub const DETERMINISTIC: RelaxedSimdLowering = RelaxedSimdLowering {
        x86_min_max_trunc: false,
        x86_pshufb: false,
        x86_pmulhrsw: false,
        x86_pmaddubsw: false,
        blendv_i8x16: false,
        blendv_i32x4: false,
        blendv_i64x2: false,
        fused_madd: true,
    };

    /// The lowering for code generated for `isa`.
    pub fn for_isa(isa: &dyn TargetIsa, deterministic: bool) -> RelaxedSimdLowering {
        if deterministic {
            return Self::DETERMINISTIC;
        }
        let x86 = isa.name() == "x64";
        RelaxedSimdLowering {
            x86_min_max_trunc: x86,
            x86_pshufb: x86 && isa.has_x86_pshufb_lowering(),
            x86_pmulhrsw: x86 && isa.has_x86_pmulhrsw_lowering(),
            x86_pmaddubsw: x86 && isa.has_x86_pmaddubsw_lowering(),
            blendv_i8x16: isa.has_blendv_lowering(I8X16),
            blendv_i32x4: isa.has_blendv_lowering(I32X4),
            blendv_i64x2: isa.has_blendv_lowering(I64X2),
            fused_madd: isa.has_native_fma(),
        }
    }

    fn blendv(&self, ty: Type) -> bool {
        match ty {
            I8X16 => self.blendv_i8x16,
            I32X4 => self.blendv_i32x4,
            I64X2 => self.blendv_i64x2,
            _ => false,
        }
    }
}

impl FuncTranslation<'_, '_> {
    fn relaxed(&self) -> RelaxedSimdLowering {
        self.env.relaxed_simd
    }

    /// `relaxed_madd` (`a * b + c`) and `relaxed_nmadd` (`-(a * b) + c`).
    fn v128_relaxed_madd(&mut self, ty: Type, negate: bool) {
        let c = self.pop_v128(ty);
        let (a, b) = self.pop2_v128(ty);
        let a = if negate {
            self.builder.ins().fneg(a)
        } else {
            a
        };
        let v = if self.relaxed().fused_madd {
            self.builder.ins().fma(a, b, c)
        } else {
            let product = self.builder.ins().fmul(a, b);
            self.builder.ins().fadd(product, c)
        };
        self.push_v128(v);
    }

    /// `relaxed_laneselect`: lanes of `a` where the mask `c` is set, of `b` elsewhere.
    fn v128_relaxed_laneselect(&mut self, ty: Type) {
        let c = self.pop_v128(ty);
        let (a, b) = self.pop2_v128(ty);
        let v = if self.relaxed().blendv(ty) {
            self.builder.ins().blendv(c, a, b)
        } else {
            self.builder.ins().bitselect(c, a, b)
        };
        self.push_v128(v);
    }

    /// The i16x8 pairwise dot product of two i8x16 (`b` nominally 7-bit).
    fn relaxed_dot_i8x16(&mut self, a: ir::Value, b: ir::Value) -> ir::Value {
        if self.relaxed().x86_pmaddubsw {
            return self.builder.ins().x86_pmaddubsw(a, b);
        }
        let ins = &mut self.builder;
        let (a_low, b_low) = (ins.ins().swiden_low(a), ins.ins().swiden_low(b));
        let low = ins.ins().imul(a_low, b_low);
        let (a_high, b_high) = (ins.ins().swiden_high(a), ins.ins().swiden_high(b));
        let high = ins.ins().imul(a_high, b_high);
        ins.ins().iadd_pairwise(low, high)
    }

    /// Returns whether `op` is a relaxed SIMD operator (and translates it).
    pub(super) fn translate_simd_relaxed(&mut self, op: &Operator<'_>) -> bool {
        let relaxed = self.relaxed();
        match op {
            Operator::I8x16RelaxedSwizzle => {
                if relaxed.x86_pshufb {
                    self.v128_binary(I8X16, |b, x, s| b.ins().x86_pshufb(x, s));
                } else {
                    self.v128_binary(I8X16, |b, x, s| b.ins().swizzle(x, s));
                }
            }
            Operator::I32x4RelaxedTruncF32x4S => {
                if relaxed.x86_min_max_trunc {
                    self.v128_unary(F32X4, |b, a| b.ins().x86_cvtt2dq(I32X4, a));
                } else {
                    self.v128_unary(F32X4, |b, a| b.ins().fcvt_to_sint_sat(I32X4, a));
                }
            }
            Operator::I32x4RelaxedTruncF32x4U => {
                self.v128_unary(F32X4, |b, a| b.ins().fcvt_to_uint_sat(I32X4, a))
            }
            Operator::I32x4RelaxedTruncF64x2SZero => {
                if relaxed.x86_min_max_trunc {
                    let a = self.pop_v128(F64X2);
                    let wide = self.builder.ins().x86_cvtt2dq(I64X2, a);
                    let zeros = self.v128_zeros(I64X2);
                    let v = self.builder.ins().snarrow(wide, zeros);
                    self.push_v128(v);
                } else {
                    self.v128_trunc_sat_f64x2_zero(true);
                }
            }
            Operator::I32x4RelaxedTruncF64x2UZero => self.v128_trunc_sat_f64x2_zero(false),
            Operator::F32x4RelaxedMadd => self.v128_relaxed_madd(F32X4, false),
            Operator::F32x4RelaxedNmadd => self.v128_relaxed_madd(F32X4, true),
            Operator::F64x2RelaxedMadd => self.v128_relaxed_madd(F64X2, false),
            Operator::F64x2RelaxedNmadd => self.v128_relaxed_madd(F64X2, true),
            Operator::I8x16RelaxedLaneselect => self.v128_relaxed_laneselect(I8X16),
            Operator::I16x8RelaxedLaneselect => self.v128_relaxed_laneselect(I16X8),
            Operator::I32x4RelaxedLaneselect => self.v128_relaxed_laneselect(I32X4),
            Operator::I64x2RelaxedLaneselect => self.v128_relaxed_laneselect(I64X2),
            Operator::F32x4RelaxedMin | Operator::F64x2RelaxedMin => {
                let ty = if matches!(op, Operator::F32x4RelaxedMin) {
                    F32X4
                } else {
                    F64X2
                };
                if relaxed.x86_min_max_trunc {
                    self.v128_pseudo_min_max(ty, Pseudo::Min);
                } else {
                    self.v128_binary(ty, |b, x, y| b.ins().fmin(x, y));
                }
            }
            Operator::F32x4RelaxedMax | Operator::F64x2RelaxedMax => {
                let ty = if matches!(op, Operator::F32x4RelaxedMax) {
                    F32X4
                } else {
                    F64X2
                };
                if relaxed.x86_min_max_trunc {
                    self.v128_pseudo_min_max(ty, Pseudo::Max);
                } else {
                    self.v128_binary(ty, |b, x, y| b.ins().fmax(x, y));
                }
            }
            Operator::I16x8RelaxedQ15mulrS => {
                if relaxed.x86_pmulhrsw {
                    self.v128_binary(I16X8, |b, x, y| b.ins().x86_pmulhrsw(x, y));
                } else {
                    self.v128_binary(I16X8, |b, x, y| b.ins().sqmul_round_sat(x, y));
                }
            }
            Operator::I16x8RelaxedDotI8x16I7x16S => {
                let (a, b) = self.pop2_v128(I8X16);
                let v = self.relaxed_dot_i8x16(a, b);
                self.push_v128(v);
            }
            Operator::I32x4RelaxedDotI8x16I7x16AddS => {
                let c = self.pop_v128(I32X4);
                let (a, b) = self.pop2_v128(I8X16);
                let dot = self.relaxed_dot_i8x16(a, b);
                let ins = &mut self.builder;
                let (low, high) = (ins.ins().swiden_low(dot), ins.ins().swiden_high(dot));
                let dot = ins.ins().iadd_pairwise(low, high);
                let v = ins.ins().iadd(dot, c);
                self.push_v128(v);
            }
            _ => return false,
        }
        true
    }
}
