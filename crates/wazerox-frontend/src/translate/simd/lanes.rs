//! Moving lanes: `v128.const`, `i8x16.shuffle`/`swizzle`, splats, and extracting or
//! replacing one lane.
//!
//! Wasm passes 8- and 16-bit lanes as i32: splats and `replace_lane` first reduce the
//! scalar to the lane width, `extract_lane_s/u` extend the lane back to i32.

use crate::translate::FuncTranslation;
use cranelift_codegen::ir::types::{F32X4, F64X2, I8X16, I16X8, I32, I32X4, I64X2, Type};
use cranelift_codegen::ir::{ConstantData, InstBuilder};
use wasmparser::Operator;

#[derive(Clone, Copy)]
enum Extend {
    None,
    Signed,
    Unsigned,
}

impl FuncTranslation<'_, '_> {
    fn v128_const(&mut self, bytes: &[u8; 16]) {
        let constant = self
            .builder
            .func
            .dfg
            .constants
            .insert(ConstantData::from(&bytes[..]));
        let v = self.builder.ins().vconst(I8X16, constant);
        self.push1(v);
    }

    fn v128_shuffle(&mut self, lanes: &[u8; 16]) {
        let (a, b) = self.pop2_v128(I8X16);
        let mask = self
            .builder
            .func
            .dfg
            .immediates
            .push(ConstantData::from(&lanes[..]));
        let v = self.builder.ins().shuffle(a, b, mask);
        self.push1(v);
    }

    /// The scalar operand of a splat or `replace_lane` at the width of `ty`'s lanes.
    fn lane_scalar(&mut self, ty: Type) -> cranelift_codegen::ir::Value {
        let scalar = self.pop1();
        if ty.lane_type().bits() < 32 {
            self.builder.ins().ireduce(ty.lane_type(), scalar)
        } else {
            scalar
        }
    }

    fn v128_splat(&mut self, ty: Type) {
        let scalar = self.lane_scalar(ty);
        let v = self.builder.ins().splat(ty, scalar);
        self.push_v128(v);
    }

    fn v128_extract_lane(&mut self, ty: Type, lane: u8, extend: Extend) {
        let vector = self.pop_v128(ty);
        let scalar = self.builder.ins().extractlane(vector, lane);
        let v = match extend {
            Extend::None => scalar,
            Extend::Signed => self.builder.ins().sextend(I32, scalar),
            Extend::Unsigned => self.builder.ins().uextend(I32, scalar),
        };
        self.push1(v);
    }

    fn v128_replace_lane(&mut self, ty: Type, lane: u8) {
        let scalar = self.lane_scalar(ty);
        let vector = self.pop_v128(ty);
        let v = self.builder.ins().insertlane(vector, scalar, lane);
        self.push_v128(v);
    }

    /// Returns whether `op` moves lanes (and translates it).
    pub(super) fn translate_simd_lanes(&mut self, op: &Operator<'_>) -> bool {
        match op {
            Operator::V128Const { value } => self.v128_const(value.bytes()),
            Operator::I8x16Shuffle { lanes } => self.v128_shuffle(lanes),
            Operator::I8x16Swizzle => self.v128_binary(I8X16, |b, x, s| b.ins().swizzle(x, s)),

            Operator::I8x16Splat => self.v128_splat(I8X16),
            Operator::I16x8Splat => self.v128_splat(I16X8),
            Operator::I32x4Splat => self.v128_splat(I32X4),
            Operator::I64x2Splat => self.v128_splat(I64X2),
            Operator::F32x4Splat => self.v128_splat(F32X4),
            Operator::F64x2Splat => self.v128_splat(F64X2),

            Operator::I8x16ExtractLaneS { lane } => {
                self.v128_extract_lane(I8X16, *lane, Extend::Signed)
            }
            Operator::I8x16ExtractLaneU { lane } => {
                self.v128_extract_lane(I8X16, *lane, Extend::Unsigned)
            }
            Operator::I16x8ExtractLaneS { lane } => {
                self.v128_extract_lane(I16X8, *lane, Extend::Signed)
            }
            Operator::I16x8ExtractLaneU { lane } => {
                self.v128_extract_lane(I16X8, *lane, Extend::Unsigned)
            }
            Operator::I32x4ExtractLane { lane } => {
                self.v128_extract_lane(I32X4, *lane, Extend::None)
            }
            Operator::I64x2ExtractLane { lane } => {
                self.v128_extract_lane(I64X2, *lane, Extend::None)
            }
            Operator::F32x4ExtractLane { lane } => {
                self.v128_extract_lane(F32X4, *lane, Extend::None)
            }
            Operator::F64x2ExtractLane { lane } => {
                self.v128_extract_lane(F64X2, *lane, Extend::None)
            }

            Operator::I8x16ReplaceLane { lane } => self.v128_replace_lane(I8X16, *lane),
            Operator::I16x8ReplaceLane { lane } => self.v128_replace_lane(I16X8, *lane),
            Operator::I32x4ReplaceLane { lane } => self.v128_replace_lane(I32X4, *lane),
            Operator::I64x2ReplaceLane { lane } => self.v128_replace_lane(I64X2, *lane),
            Operator::F32x4ReplaceLane { lane } => self.v128_replace_lane(F32X4, *lane),
            Operator::F64x2ReplaceLane { lane } => self.v128_replace_lane(F64X2, *lane),
            _ => return false,
        }
        true
    }
}
