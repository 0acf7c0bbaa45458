//! Integer lane arithmetic, comparisons, bitwise operators, shifts, reductions to a
//! scalar, narrowing and widening.
//!
//! The widening operators are written as the compositions Cranelift's backends
//! recognise: extended multiplies as `imul` of two `swiden`/`uwiden` halves, pairwise
//! additions as `iadd_pairwise` of the widened low and high halves of one vector, and
//! `i32x4.dot_i16x8_s` as `iadd_pairwise` of the low and high extended products
//! (one `pmaddwd` on x86).

use super::{Binary, Unary};
use crate::translate::FuncTranslation;
use cranelift_codegen::ir::InstBuilder;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I8X16, I16X8, I32, I32X4, I64X2, Type};
use wasmparser::Operator;

impl FuncTranslation<'_, '_> {
    /// A lane-wise comparison: all ones in the lanes where `cc` holds, zeros elsewhere.
    fn v128_icmp(&mut self, ty: Type, cc: IntCC) {
        let (a, b) = self.pop2_v128(ty);
        let v = self.builder.ins().icmp(cc, a, b);
        self.push_v128(v);
    }

    /// A shift of every lane by an i32 count; Cranelift masks the count by the lane
    /// width, as Wasm does.
    fn v128_shift(&mut self, ty: Type, shift: Binary) {
        let count = self.pop1();
        let vector = self.pop_v128(ty);
        let v = shift(&mut self.builder, vector, count);
        self.push_v128(v);
    }

    fn v128_all_true(&mut self, ty: Type) {
        let vector = self.pop_v128(ty);
        let truth = self.builder.ins().vall_true(vector);
        self.push_truth(truth);
    }

    fn v128_bitmask(&mut self, ty: Type) {
        let vector = self.pop_v128(ty);
        let v = self.builder.ins().vhigh_bits(I32, vector);
        self.push1(v);
    }

    /// `extmul_*`: both operands' halves widened, then multiplied at the wider width.
    fn v128_extmul(&mut self, ty: Type, widen: Unary) {
        let (a, b) = self.pop2_v128(ty);
        let a = widen(&mut self.builder, a);
        let b = widen(&mut self.builder, b);
        let v = self.builder.ins().imul(a, b);
        self.push_v128(v);
    }

    /// `extadd_pairwise_*`: sums of adjacent lanes at twice the width.
    fn v128_extadd_pairwise(&mut self, ty: Type, signed: bool) {
        let vector = self.pop_v128(ty);
        let b = &mut self.builder;
        let (low, high) = if signed {
            (b.ins().swiden_low(vector), b.ins().swiden_high(vector))
        } else {
            (b.ins().uwiden_low(vector), b.ins().uwiden_high(vector))
        };
        let v = b.ins().iadd_pairwise(low, high);
        self.push_v128(v);
    }

    fn v128_dot_i16x8_s(&mut self) {
        let (a, b) = self.pop2_v128(I16X8);
        let builder = &mut self.builder;
        let (a_low, b_low) = (builder.ins().swiden_low(a), builder.ins().swiden_low(b));
        let low = builder.ins().imul(a_low, b_low);
        let (a_high, b_high) = (builder.ins().swiden_high(a), builder.ins().swiden_high(b));
        let high = builder.ins().imul(a_high, b_high);
        let v = builder.ins().iadd_pairwise(low, high);
        self.push_v128(v);
    }

    /// Returns whether `op` is an integer or bitwise v128 operator (and translates it).
    pub(super) fn translate_simd_integer(&mut self, op: &Operator<'_>) -> bool {
        use IntCC::*;
        match op {
            Operator::I8x16Eq => self.v128_icmp(I8X16, Equal),
            Operator::I8x16Ne => self.v128_icmp(I8X16, NotEqual),
            Operator::I8x16LtS => self.v128_icmp(I8X16, SignedLessThan),
            Operator::I8x16LtU => self.v128_icmp(I8X16, UnsignedLessThan),
            Operator::I8x16GtS => self.v128_icmp(I8X16, SignedGreaterThan),
            Operator::I8x16GtU => self.v128_icmp(I8X16, UnsignedGreaterThan),
            Operator::I8x16LeS => self.v128_icmp(I8X16, SignedLessThanOrEqual),
            Operator::I8x16LeU => self.v128_icmp(I8X16, UnsignedLessThanOrEqual),
            Operator::I8x16GeS => self.v128_icmp(I8X16, SignedGreaterThanOrEqual),
            Operator::I8x16GeU => self.v128_icmp(I8X16, UnsignedGreaterThanOrEqual),
            Operator::I16x8Eq => self.v128_icmp(I16X8, Equal),
            Operator::I16x8Ne => self.v128_icmp(I16X8, NotEqual),
            Operator::I16x8LtS => self.v128_icmp(I16X8, SignedLessThan),
            Operator::I16x8LtU => self.v128_icmp(I16X8, UnsignedLessThan),
            Operator::I16x8GtS => self.v128_icmp(I16X8, SignedGreaterThan),
            Operator::I16x8GtU => self.v128_icmp(I16X8, UnsignedGreaterThan),
            Operator::I16x8LeS => self.v128_icmp(I16X8, SignedLessThanOrEqual),
            Operator::I16x8LeU => self.v128_icmp(I16X8, UnsignedLessThanOrEqual),
            Operator::I16x8GeS => self.v128_icmp(I16X8, SignedGreaterThanOrEqual),
            Operator::I16x8GeU => self.v128_icmp(I16X8, UnsignedGreaterThanOrEqual),
            Operator::I32x4Eq => self.v128_icmp(I32X4, Equal),
            Operator::I32x4Ne => self.v128_icmp(I32X4, NotEqual),
            Operator::I32x4LtS => self.v128_icmp(I32X4, SignedLessThan),
            Operator::I32x4LtU => self.v128_icmp(I32X4, UnsignedLessThan),
            Operator::I32x4GtS => self.v128_icmp(I32X4, SignedGreaterThan),
            Operator::I32x4GtU => self.v128_icmp(I32X4, UnsignedGreaterThan),
            Operator::I32x4LeS => self.v128_icmp(I32X4, SignedLessThanOrEqual),
            Operator::I32x4LeU => self.v128_icmp(I32X4, UnsignedLessThanOrEqual),
            Operator::I32x4GeS => self.v128_icmp(I32X4, SignedGreaterThanOrEqual),
            Operator::I32x4GeU => self.v128_icmp(I32X4, UnsignedGreaterThanOrEqual),
            Operator::I64x2Eq => self.v128_icmp(I64X2, Equal),
            Operator::I64x2Ne => self.v128_icmp(I64X2, NotEqual),
            Operator::I64x2LtS => self.v128_icmp(I64X2, SignedLessThan),
            Operator::I64x2GtS => self.v128_icmp(I64X2, SignedGreaterThan),
            Operator::I64x2LeS => self.v128_icmp(I64X2, SignedLessThanOrEqual),
            Operator::I64x2GeS => self.v128_icmp(I64X2, SignedGreaterThanOrEqual),

            Operator::V128Not => self.v128_unary(I8X16, |b, a| b.ins().bnot(a)),
            Operator::V128And => self.v128_binary(I8X16, |b, x, y| b.ins().band(x, y)),
            Operator::V128AndNot => self.v128_binary(I8X16, |b, x, y| b.ins().band_not(x, y)),
            Operator::V128Or => self.v128_binary(I8X16, |b, x, y| b.ins().bor(x, y)),
            Operator::V128Xor => self.v128_binary(I8X16, |b, x, y| b.ins().bxor(x, y)),
            Operator::V128Bitselect => {
                let mask = self.pop_v128(I8X16);
                let (if_set, if_clear) = self.pop2_v128(I8X16);
                let v = self.builder.ins().bitselect(mask, if_set, if_clear);
                self.push1(v);
            }
            Operator::V128AnyTrue => {
                let vector = self.pop_v128(I8X16);
                let truth = self.builder.ins().vany_true(vector);
                self.push_truth(truth);
            }

            Operator::I8x16AllTrue => self.v128_all_true(I8X16),
            Operator::I16x8AllTrue => self.v128_all_true(I16X8),
            Operator::I32x4AllTrue => self.v128_all_true(I32X4),
            Operator::I64x2AllTrue => self.v128_all_true(I64X2),
            Operator::I8x16Bitmask => self.v128_bitmask(I8X16),
            Operator::I16x8Bitmask => self.v128_bitmask(I16X8),
            Operator::I32x4Bitmask => self.v128_bitmask(I32X4),
            Operator::I64x2Bitmask => self.v128_bitmask(I64X2),

            Operator::I8x16Abs => self.v128_unary(I8X16, |b, a| b.ins().iabs(a)),
            Operator::I16x8Abs => self.v128_unary(I16X8, |b, a| b.ins().iabs(a)),
            Operator::I32x4Abs => self.v128_unary(I32X4, |b, a| b.ins().iabs(a)),
            Operator::I64x2Abs => self.v128_unary(I64X2, |b, a| b.ins().iabs(a)),
            Operator::I8x16Neg => self.v128_unary(I8X16, |b, a| b.ins().ineg(a)),
            Operator::I16x8Neg => self.v128_unary(I16X8, |b, a| b.ins().ineg(a)),
            Operator::I32x4Neg => self.v128_unary(I32X4, |b, a| b.ins().ineg(a)),
            Operator::I64x2Neg => self.v128_unary(I64X2, |b, a| b.ins().ineg(a)),
            Operator::I8x16Popcnt => self.v128_unary(I8X16, |b, a| b.ins().popcnt(a)),

            Operator::I8x16Shl => self.v128_shift(I8X16, |b, v, c| b.ins().ishl(v, c)),
            Operator::I16x8Shl => self.v128_shift(I16X8, |b, v, c| b.ins().ishl(v, c)),
            Operator::I32x4Shl => self.v128_shift(I32X4, |b, v, c| b.ins().ishl(v, c)),
            Operator::I64x2Shl => self.v128_shift(I64X2, |b, v, c| b.ins().ishl(v, c)),
            Operator::I8x16ShrS => self.v128_shift(I8X16, |b, v, c| b.ins().sshr(v, c)),
            Operator::I16x8ShrS => self.v128_shift(I16X8, |b, v, c| b.ins().sshr(v, c)),
            Operator::I32x4ShrS => self.v128_shift(I32X4, |b, v, c| b.ins().sshr(v, c)),
            Operator::I64x2ShrS => self.v128_shift(I64X2, |b, v, c| b.ins().sshr(v, c)),
            Operator::I8x16ShrU => self.v128_shift(I8X16, |b, v, c| b.ins().ushr(v, c)),
            Operator::I16x8ShrU => self.v128_shift(I16X8, |b, v, c| b.ins().ushr(v, c)),
            Operator::I32x4ShrU => self.v128_shift(I32X4, |b, v, c| b.ins().ushr(v, c)),
            Operator::I64x2ShrU => self.v128_shift(I64X2, |b, v, c| b.ins().ushr(v, c)),

            Operator::I8x16Add => self.v128_binary(I8X16, |b, x, y| b.ins().iadd(x, y)),
            Operator::I16x8Add => self.v128_binary(I16X8, |b, x, y| b.ins().iadd(x, y)),
            Operator::I32x4Add => self.v128_binary(I32X4, |b, x, y| b.ins().iadd(x, y)),
            Operator::I64x2Add => self.v128_binary(I64X2, |b, x, y| b.ins().iadd(x, y)),
            Operator::I8x16Sub => self.v128_binary(I8X16, |b, x, y| b.ins().isub(x, y)),
            Operator::I16x8Sub => self.v128_binary(I16X8, |b, x, y| b.ins().isub(x, y)),
            Operator::I32x4Sub => self.v128_binary(I32X4, |b, x, y| b.ins().isub(x, y)),
            Operator::I64x2Sub => self.v128_binary(I64X2, |b, x, y| b.ins().isub(x, y)),
            Operator::I16x8Mul => self.v128_binary(I16X8, |b, x, y| b.ins().imul(x, y)),
            Operator::I32x4Mul => self.v128_binary(I32X4, |b, x, y| b.ins().imul(x, y)),
            Operator::I64x2Mul => self.v128_binary(I64X2, |b, x, y| b.ins().imul(x, y)),
            Operator::I8x16AddSatS => self.v128_binary(I8X16, |b, x, y| b.ins().sadd_sat(x, y)),
            Operator::I8x16AddSatU => self.v128_binary(I8X16, |b, x, y| b.ins().uadd_sat(x, y)),
            Operator::I16x8AddSatS => self.v128_binary(I16X8, |b, x, y| b.ins().sadd_sat(x, y)),
            Operator::I16x8AddSatU => self.v128_binary(I16X8, |b, x, y| b.ins().uadd_sat(x, y)),
            Operator::I8x16SubSatS => self.v128_binary(I8X16, |b, x, y| b.ins().ssub_sat(x, y)),
            Operator::I8x16SubSatU => self.v128_binary(I8X16, |b, x, y| b.ins().usub_sat(x, y)),
            Operator::I16x8SubSatS => self.v128_binary(I16X8, |b, x, y| b.ins().ssub_sat(x, y)),
            Operator::I16x8SubSatU => self.v128_binary(I16X8, |b, x, y| b.ins().usub_sat(x, y)),
            Operator::I8x16MinS => self.v128_binary(I8X16, |b, x, y| b.ins().smin(x, y)),
            Operator::I8x16MinU => self.v128_binary(I8X16, |b, x, y| b.ins().umin(x, y)),
            Operator::I16x8MinS => self.v128_binary(I16X8, |b, x, y| b.ins().smin(x, y)),
            Operator::I16x8MinU => self.v128_binary(I16X8, |b, x, y| b.ins().umin(x, y)),
            Operator::I32x4MinS => self.v128_binary(I32X4, |b, x, y| b.ins().smin(x, y)),
            Operator::I32x4MinU => self.v128_binary(I32X4, |b, x, y| b.ins().umin(x, y)),
            Operator::I8x16MaxS => self.v128_binary(I8X16, |b, x, y| b.ins().smax(x, y)),
            Operator::I8x16MaxU => self.v128_binary(I8X16, |b, x, y| b.ins().umax(x, y)),
            Operator::I16x8MaxS => self.v128_binary(I16X8, |b, x, y| b.ins().smax(x, y)),
            Operator::I16x8MaxU => self.v128_binary(I16X8, |b, x, y| b.ins().umax(x, y)),
            Operator::I32x4MaxS => self.v128_binary(I32X4, |b, x, y| b.ins().smax(x, y)),
            Operator::I32x4MaxU => self.v128_binary(I32X4, |b, x, y| b.ins().umax(x, y)),
            Operator::I8x16AvgrU => self.v128_binary(I8X16, |b, x, y| b.ins().avg_round(x, y)),
            Operator::I16x8AvgrU => self.v128_binary(I16X8, |b, x, y| b.ins().avg_round(x, y)),
            Operator::I16x8Q15MulrSatS => {
                self.v128_binary(I16X8, |b, x, y| b.ins().sqmul_round_sat(x, y))
            }
            Operator::I32x4DotI16x8S => self.v128_dot_i16x8_s(),

            Operator::I8x16NarrowI16x8S => self.v128_binary(I16X8, |b, x, y| b.ins().snarrow(x, y)),
            Operator::I8x16NarrowI16x8U => self.v128_binary(I16X8, |b, x, y| b.ins().unarrow(x, y)),
            Operator::I16x8NarrowI32x4S => self.v128_binary(I32X4, |b, x, y| b.ins().snarrow(x, y)),
            Operator::I16x8NarrowI32x4U => self.v128_binary(I32X4, |b, x, y| b.ins().unarrow(x, y)),

            Operator::I16x8ExtendLowI8x16S => self.v128_unary(I8X16, |b, a| b.ins().swiden_low(a)),
            Operator::I16x8ExtendHighI8x16S => {
                self.v128_unary(I8X16, |b, a| b.ins().swiden_high(a))
            }
            Operator::I16x8ExtendLowI8x16U => self.v128_unary(I8X16, |b, a| b.ins().uwiden_low(a)),
            Operator::I16x8ExtendHighI8x16U => {
                self.v128_unary(I8X16, |b, a| b.ins().uwiden_high(a))
            }
            Operator::I32x4ExtendLowI16x8S => self.v128_unary(I16X8, |b, a| b.ins().swiden_low(a)),
            Operator::I32x4ExtendHighI16x8S => {
                self.v128_unary(I16X8, |b, a| b.ins().swiden_high(a))
            }
            Operator::I32x4ExtendLowI16x8U => self.v128_unary(I16X8, |b, a| b.ins().uwiden_low(a)),
            Operator::I32x4ExtendHighI16x8U => {
                self.v128_unary(I16X8, |b, a| b.ins().uwiden_high(a))
            }
            Operator::I64x2ExtendLowI32x4S => self.v128_unary(I32X4, |b, a| b.ins().swiden_low(a)),
            Operator::I64x2ExtendHighI32x4S => {
                self.v128_unary(I32X4, |b, a| b.ins().swiden_high(a))
            }
            Operator::I64x2ExtendLowI32x4U => self.v128_unary(I32X4, |b, a| b.ins().uwiden_low(a)),
            Operator::I64x2ExtendHighI32x4U => {
                self.v128_unary(I32X4, |b, a| b.ins().uwiden_high(a))
            }

            Operator::I16x8ExtMulLowI8x16S => self.v128_extmul(I8X16, |b, a| b.ins().swiden_low(a)),
            Operator::I16x8ExtMulHighI8x16S => {
                self.v128_extmul(I8X16, |b, a| b.ins().swiden_high(a))
            }
            Operator::I16x8ExtMulLowI8x16U => self.v128_extmul(I8X16, |b, a| b.ins().uwiden_low(a)),
            Operator::I16x8ExtMulHighI8x16U => {
                self.v128_extmul(I8X16, |b, a| b.ins().uwiden_high(a))
            }
            Operator::I32x4ExtMulLowI16x8S => self.v128_extmul(I16X8, |b, a| b.ins().swiden_low(a)),
            Operator::I32x4ExtMulHighI16x8S => {
                self.v128_extmul(I16X8, |b, a| b.ins().swiden_high(a))
            }
            Operator::I32x4ExtMulLowI16x8U => self.v128_extmul(I16X8, |b, a| b.ins().uwiden_low(a)),
            Operator::I32x4ExtMulHighI16x8U => {
                self.v128_extmul(I16X8, |b, a| b.ins().uwiden_high(a))
            }
            Operator::I64x2ExtMulLowI32x4S => self.v128_extmul(I32X4, |b, a| b.ins().swiden_low(a)),
            Operator::I64x2ExtMulHighI32x4S => {
                self.v128_extmul(I32X4, |b, a| b.ins().swiden_high(a))
            }
            Operator::I64x2ExtMulLowI32x4U => self.v128_extmul(I32X4, |b, a| b.ins().uwiden_low(a)),
            Operator::I64x2ExtMulHighI32x4U => {
                self.v128_extmul(I32X4, |b, a| b.ins().uwiden_high(a))
            }

            Operator::I16x8ExtAddPairwiseI8x16S => self.v128_extadd_pairwise(I8X16, true),
            Operator::I16x8ExtAddPairwiseI8x16U => self.v128_extadd_pairwise(I8X16, false),
            Operator::I32x4ExtAddPairwiseI16x8S => self.v128_extadd_pairwise(I16X8, true),
            Operator::I32x4ExtAddPairwiseI16x8U => self.v128_extadd_pairwise(I16X8, false),
            _ => return false,
        }
        true
    }
}
