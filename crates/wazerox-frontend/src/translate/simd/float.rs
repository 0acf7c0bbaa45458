//! Float lane arithmetic, comparisons, and conversions between lane types.
//!
//! - `pmin`/`pmax` are the "pseudo" minimum and maximum `b < a ? b : a` and
//!   `a < b ? b : a`: a `bitselect` of an `fcmp lt` (one `minps`/`maxps` on x86),
//!   unlike `min`/`max`, whose NaN and ±0 rules are those of Cranelift's `fmin`/`fmax`.
//! - `i32x4.trunc_sat_f64x2_{s,u}_zero` saturate to 64-bit lanes and narrow them next to
//!   a zero vector; Cranelift lowers exactly this composition to a clamped truncation.

use crate::translate::FuncTranslation;
use cranelift_codegen::ir::InstBuilder;
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::types::{F32X4, F64X2, I32X4, I64X2, Type};
use wasmparser::Operator;

#[derive(Clone, Copy)]
pub(super) enum Pseudo {
    Min,
    Max,
}

impl FuncTranslation<'_, '_> {
    /// A lane-wise comparison: all ones in the lanes where `cc` holds, zeros elsewhere.
    fn v128_fcmp(&mut self, ty: Type, cc: FloatCC) {
        let (a, b) = self.pop2_v128(ty);
        let v = self.builder.ins().fcmp(cc, a, b);
        self.push_v128(v);
    }

    pub(super) fn v128_pseudo_min_max(&mut self, ty: Type, which: Pseudo) {
        let (a, b) = self.pop2_v128(ty);
        let b_wins = match which {
            Pseudo::Min => self.builder.ins().fcmp(FloatCC::LessThan, b, a),
            Pseudo::Max => self.builder.ins().fcmp(FloatCC::LessThan, a, b),
        };
        let b_wins = self.v128_as(b_wins, ty);
        let v = self.builder.ins().bitselect(b_wins, b, a);
        self.push_v128(v);
    }

    /// `i32x4.trunc_sat_f64x2_{s,u}_zero`: two saturated conversions in the low lanes,
    /// zeros in the high ones.
    pub(super) fn v128_trunc_sat_f64x2_zero(&mut self, signed: bool) {
        let vector = self.pop_v128(F64X2);
        let zeros = self.v128_zeros(I64X2);
        let b = &mut self.builder;
        let v = if signed {
            let wide = b.ins().fcvt_to_sint_sat(I64X2, vector);
            b.ins().snarrow(wide, zeros)
        } else {
            let wide = b.ins().fcvt_to_uint_sat(I64X2, vector);
            b.ins().uunarrow(wide, zeros)
        };
        self.push_v128(v);
    }

    /// Returns whether `op` is a float v128 operator or a conversion (and translates
    /// it).
    pub(super) fn translate_simd_float(&mut self, op: &Operator<'_>) -> bool {
        use FloatCC::*;
        match op {
            Operator::F32x4Eq => self.v128_fcmp(F32X4, Equal),
            Operator::F32x4Ne => self.v128_fcmp(F32X4, NotEqual),
            Operator::F32x4Lt => self.v128_fcmp(F32X4, LessThan),
            Operator::F32x4Gt => self.v128_fcmp(F32X4, GreaterThan),
            Operator::F32x4Le => self.v128_fcmp(F32X4, LessThanOrEqual),
            Operator::F32x4Ge => self.v128_fcmp(F32X4, GreaterThanOrEqual),
            Operator::F64x2Eq => self.v128_fcmp(F64X2, Equal),
            Operator::F64x2Ne => self.v128_fcmp(F64X2, NotEqual),
            Operator::F64x2Lt => self.v128_fcmp(F64X2, LessThan),
            Operator::F64x2Gt => self.v128_fcmp(F64X2, GreaterThan),
            Operator::F64x2Le => self.v128_fcmp(F64X2, LessThanOrEqual),
            Operator::F64x2Ge => self.v128_fcmp(F64X2, GreaterThanOrEqual),

            Operator::F32x4Ceil => self.v128_unary(F32X4, |b, a| b.ins().ceil(a)),
            Operator::F64x2Ceil => self.v128_unary(F64X2, |b, a| b.ins().ceil(a)),
            Operator::F32x4Floor => self.v128_unary(F32X4, |b, a| b.ins().floor(a)),
            Operator::F64x2Floor => self.v128_unary(F64X2, |b, a| b.ins().floor(a)),
            Operator::F32x4Trunc => self.v128_unary(F32X4, |b, a| b.ins().trunc(a)),
            Operator::F64x2Trunc => self.v128_unary(F64X2, |b, a| b.ins().trunc(a)),
            Operator::F32x4Nearest => self.v128_unary(F32X4, |b, a| b.ins().nearest(a)),
            Operator::F64x2Nearest => self.v128_unary(F64X2, |b, a| b.ins().nearest(a)),
            Operator::F32x4Abs => self.v128_unary(F32X4, |b, a| b.ins().fabs(a)),
            Operator::F64x2Abs => self.v128_unary(F64X2, |b, a| b.ins().fabs(a)),
            Operator::F32x4Neg => self.v128_unary(F32X4, |b, a| b.ins().fneg(a)),
            Operator::F64x2Neg => self.v128_unary(F64X2, |b, a| b.ins().fneg(a)),
            Operator::F32x4Sqrt => self.v128_unary(F32X4, |b, a| b.ins().sqrt(a)),
            Operator::F64x2Sqrt => self.v128_unary(F64X2, |b, a| b.ins().sqrt(a)),
            Operator::F32x4Add => self.v128_binary(F32X4, |b, x, y| b.ins().fadd(x, y)),
            Operator::F64x2Add => self.v128_binary(F64X2, |b, x, y| b.ins().fadd(x, y)),
            Operator::F32x4Sub => self.v128_binary(F32X4, |b, x, y| b.ins().fsub(x, y)),
            Operator::F64x2Sub => self.v128_binary(F64X2, |b, x, y| b.ins().fsub(x, y)),
            Operator::F32x4Mul => self.v128_binary(F32X4, |b, x, y| b.ins().fmul(x, y)),
            Operator::F64x2Mul => self.v128_binary(F64X2, |b, x, y| b.ins().fmul(x, y)),
            Operator::F32x4Div => self.v128_binary(F32X4, |b, x, y| b.ins().fdiv(x, y)),
            Operator::F64x2Div => self.v128_binary(F64X2, |b, x, y| b.ins().fdiv(x, y)),
            Operator::F32x4Min => self.v128_binary(F32X4, |b, x, y| b.ins().fmin(x, y)),
            Operator::F64x2Min => self.v128_binary(F64X2, |b, x, y| b.ins().fmin(x, y)),
            Operator::F32x4Max => self.v128_binary(F32X4, |b, x, y| b.ins().fmax(x, y)),
            Operator::F64x2Max => self.v128_binary(F64X2, |b, x, y| b.ins().fmax(x, y)),
            Operator::F32x4PMin => self.v128_pseudo_min_max(F32X4, Pseudo::Min),
            Operator::F64x2PMin => self.v128_pseudo_min_max(F64X2, Pseudo::Min),
            Operator::F32x4PMax => self.v128_pseudo_min_max(F32X4, Pseudo::Max),
            Operator::F64x2PMax => self.v128_pseudo_min_max(F64X2, Pseudo::Max),

            Operator::I32x4TruncSatF32x4S => {
                self.v128_unary(F32X4, |b, a| b.ins().fcvt_to_sint_sat(I32X4, a))
            }
            Operator::I32x4TruncSatF32x4U => {
                self.v128_unary(F32X4, |b, a| b.ins().fcvt_to_uint_sat(I32X4, a))
            }
            Operator::I32x4TruncSatF64x2SZero => self.v128_trunc_sat_f64x2_zero(true),
            Operator::I32x4TruncSatF64x2UZero => self.v128_trunc_sat_f64x2_zero(false),
            Operator::F32x4ConvertI32x4S => {
                self.v128_unary(I32X4, |b, a| b.ins().fcvt_from_sint(F32X4, a))
            }
            Operator::F32x4ConvertI32x4U => {
                self.v128_unary(I32X4, |b, a| b.ins().fcvt_from_uint(F32X4, a))
            }
            Operator::F64x2ConvertLowI32x4S => self.v128_unary(I32X4, |b, a| {
                let wide = b.ins().swiden_low(a);
                b.ins().fcvt_from_sint(F64X2, wide)
            }),
            Operator::F64x2ConvertLowI32x4U => self.v128_unary(I32X4, |b, a| {
                let wide = b.ins().uwiden_low(a);
                b.ins().fcvt_from_uint(F64X2, wide)
            }),
            Operator::F32x4DemoteF64x2Zero => self.v128_unary(F64X2, |b, a| b.ins().fvdemote(a)),
            Operator::F64x2PromoteLowF32x4 => {
                self.v128_unary(F32X4, |b, a| b.ins().fvpromote_low(a))
            }
            _ => return false,
        }
        true
    }
}
