//! v128 loads and stores: whole vectors, extending loads, splats, zero-filling loads
//! and single-lane accesses.
//!
//! Every access goes through the scalar translator's `heap_address` (same bounds
//! checks, sized by the bytes actually touched) and carries the same `heap_flags`, so
//! an out-of-bounds access traps exactly as a scalar one would.

use crate::translate::FuncTranslation;
use crate::translate::memory::heap_flags;
use cranelift_codegen::ir::types::{I8X16, I16X8, I32X4, I64X2, Type};
use cranelift_codegen::ir::{self, InstBuilder, MemFlagsData};
use cranelift_frontend::FunctionBuilder;
use wasmparser::{MemArg, Operator};
use wazerox_environ::parse::WasmError;

/// `load8x8_s` and friends: 8 bytes read and widened to 8 lanes of twice the width.
type ExtendingLoad = fn(&mut FunctionBuilder<'_>, MemFlagsData, ir::Value, i32) -> ir::Value;

/// The integer type of one lane of `ty`, which a lane load or store moves.
fn lane_int(ty: Type) -> Type {
    Type::int(ty.lane_bits() as u16).expect("lanes of 8 to 64 bits")
}

impl FuncTranslation<'_, '_> {
    fn v128_load(&mut self, memarg: &MemArg) -> Result<(), WasmError> {
        let (address, offset) = self.heap_address(memarg, 16)?;
        let v = self
            .builder
            .ins()
            .load(I8X16, heap_flags(), address, offset);
        self.push1(v);
        Ok(())
    }

    fn v128_load_extend(&mut self, memarg: &MemArg, load: ExtendingLoad) -> Result<(), WasmError> {
        let (address, offset) = self.heap_address(memarg, 8)?;
        let v = load(&mut self.builder, heap_flags(), address, offset);
        self.push_v128(v);
        Ok(())
    }

    /// Loads one lane-sized scalar and copies it into every lane of `ty`.
    fn v128_load_splat(&mut self, memarg: &MemArg, ty: Type) -> Result<(), WasmError> {
        let lane = lane_int(ty);
        let (address, offset) = self.heap_address(memarg, lane.bytes())?;
        let scalar = self.builder.ins().load(lane, heap_flags(), address, offset);
        let v = self.builder.ins().splat(ty, scalar);
        self.push_v128(v);
        Ok(())
    }

    /// Loads one lane-sized scalar into lane 0 of `ty`; the other lanes are zero.
    fn v128_load_zero(&mut self, memarg: &MemArg, ty: Type) -> Result<(), WasmError> {
        let lane = lane_int(ty);
        let (address, offset) = self.heap_address(memarg, lane.bytes())?;
        let scalar = self.builder.ins().load(lane, heap_flags(), address, offset);
        let v = self.builder.ins().scalar_to_vector(ty, scalar);
        self.push_v128(v);
        Ok(())
    }

    /// Replaces lane `lane` of the vector on top of the stack with a scalar loaded
    /// from the address below it.
    fn v128_load_lane(&mut self, memarg: &MemArg, ty: Type, lane: u8) -> Result<(), WasmError> {
        let vector = self.pop_v128(ty);
        let scalar_ty = lane_int(ty);
        let (address, offset) = self.heap_address(memarg, scalar_ty.bytes())?;
        let scalar = self
            .builder
            .ins()
            .load(scalar_ty, heap_flags(), address, offset);
        let v = self.builder.ins().insertlane(vector, scalar, lane);
        self.push_v128(v);
        Ok(())
    }

    fn v128_store(&mut self, memarg: &MemArg) -> Result<(), WasmError> {
        let value = self.pop1();
        let (address, offset) = self.heap_address(memarg, 16)?;
        self.builder
            .ins()
            .store(heap_flags(), value, address, offset);
        Ok(())
    }

    /// Stores lane `lane` of the vector on top of the stack.
    fn v128_store_lane(&mut self, memarg: &MemArg, ty: Type, lane: u8) -> Result<(), WasmError> {
        let vector = self.pop_v128(ty);
        let scalar = self.builder.ins().extractlane(vector, lane);
        let (address, offset) = self.heap_address(memarg, lane_int(ty).bytes())?;
        self.builder
            .ins()
            .store(heap_flags(), scalar, address, offset);
        Ok(())
    }

    /// Returns whether `op` is a v128 memory operator (and translates it).
    pub(super) fn translate_simd_memory(&mut self, op: &Operator<'_>) -> Result<bool, WasmError> {
        match op {
            Operator::V128Load { memarg } => self.v128_load(memarg)?,
            Operator::V128Load8x8S { memarg } => {
                self.v128_load_extend(memarg, |b, f, p, o| b.ins().sload8x8(f, p, o))?
            }
            Operator::V128Load8x8U { memarg } => {
                self.v128_load_extend(memarg, |b, f, p, o| b.ins().uload8x8(f, p, o))?
            }
            Operator::V128Load16x4S { memarg } => {
                self.v128_load_extend(memarg, |b, f, p, o| b.ins().sload16x4(f, p, o))?
            }
            Operator::V128Load16x4U { memarg } => {
                self.v128_load_extend(memarg, |b, f, p, o| b.ins().uload16x4(f, p, o))?
            }
            Operator::V128Load32x2S { memarg } => {
                self.v128_load_extend(memarg, |b, f, p, o| b.ins().sload32x2(f, p, o))?
            }
            Operator::V128Load32x2U { memarg } => {
                self.v128_load_extend(memarg, |b, f, p, o| b.ins().uload32x2(f, p, o))?
            }
            Operator::V128Load8Splat { memarg } => self.v128_load_splat(memarg, I8X16)?,
            Operator::V128Load16Splat { memarg } => self.v128_load_splat(memarg, I16X8)?,
            Operator::V128Load32Splat { memarg } => self.v128_load_splat(memarg, I32X4)?,
            Operator::V128Load64Splat { memarg } => self.v128_load_splat(memarg, I64X2)?,
            Operator::V128Load32Zero { memarg } => self.v128_load_zero(memarg, I32X4)?,
            Operator::V128Load64Zero { memarg } => self.v128_load_zero(memarg, I64X2)?,
            Operator::V128Load8Lane { memarg, lane } => {
                self.v128_load_lane(memarg, I8X16, *lane)?
            }
            Operator::V128Load16Lane { memarg, lane } => {
                self.v128_load_lane(memarg, I16X8, *lane)?
            }
            Operator::V128Load32Lane { memarg, lane } => {
                self.v128_load_lane(memarg, I32X4, *lane)?
            }
            Operator::V128Load64Lane { memarg, lane } => {
                self.v128_load_lane(memarg, I64X2, *lane)?
            }
            Operator::V128Store { memarg } => self.v128_store(memarg)?,
            Operator::V128Store8Lane { memarg, lane } => {
                self.v128_store_lane(memarg, I8X16, *lane)?
            }
            Operator::V128Store16Lane { memarg, lane } => {
                self.v128_store_lane(memarg, I16X8, *lane)?
            }
            Operator::V128Store32Lane { memarg, lane } => {
                self.v128_store_lane(memarg, I32X4, *lane)?
            }
            Operator::V128Store64Lane { memarg, lane } => {
                self.v128_store_lane(memarg, I64X2, *lane)?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}
