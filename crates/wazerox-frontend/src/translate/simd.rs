//! Fixed-width SIMD: every `v128` operator of Wasm 2.0.
//!
//! One representation crosses every edge: a v128 on the operand stack, in a local, a
//! global, a block param or a call is an `I8X16`. An operator reinterprets its
//! operands as the lane type it works on (`I16X8`, `F32X4`, …) with a `bitcast`, which
//! costs nothing in machine code, and reinterprets its result back to `I8X16`. So the
//! SSA values that meet at a block param always have one type, whichever operators
//! produced them.
//!
//! The work is split like the scalar translator: `memory` (loads, stores, lane
//! accesses), `lanes` (constants, shuffles, splats, lane extraction and replacement),
//! `integer` and `float` (lane arithmetic, comparisons, conversions), `relaxed`
//! (relaxed SIMD, native or deterministic). Cranelift's
//! vector instructions have Wasm's semantics where the two could differ (shift counts
//! are masked by the lane width, `swizzle` gives 0 for out-of-range indices, `fmin`/
//! `fmax` propagate NaN and order -0 below +0, the `_sat` conversions send NaN to 0);
//! each family notes the few places where the translation composes instructions.

mod float;
mod integer;
mod lanes;
mod memory;
mod relaxed;

pub use relaxed::RelaxedSimdLowering;

use super::FuncTranslation;
use cranelift_codegen::ir::types::{I8X16, I32};
use cranelift_codegen::ir::{self, Endianness, InstBuilder, MemFlagsData};
use cranelift_frontend::FunctionBuilder;
use wasmparser::Operator;
use wazerox_environ::parse::WasmError;

type Unary = fn(&mut FunctionBuilder<'_>, ir::Value) -> ir::Value;
type Binary = fn(&mut FunctionBuilder<'_>, ir::Value, ir::Value) -> ir::Value;

/// Flags of a lane reinterpretation: the 16 bytes keep their little-endian order, so
/// lane `i` of the result is made of the bytes lane `i` occupies in Wasm.
fn lane_order() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

impl FuncTranslation<'_, '_> {
    /// Returns whether `op` is a SIMD operator (and translates it).
    pub(crate) fn translate_simd(&mut self, op: &Operator<'_>) -> Result<bool, WasmError> {
        Ok(self.translate_simd_memory(op)?
            || self.translate_simd_lanes(op)
            || self.translate_simd_integer(op)
            || self.translate_simd_float(op)
            || self.translate_simd_relaxed(op))
    }

    /// `value` (any 128-bit vector) seen with the lanes of `ty`.
    fn v128_as(&mut self, value: ir::Value, ty: ir::Type) -> ir::Value {
        if self.builder.func.dfg.value_type(value) == ty {
            value
        } else {
            self.builder.ins().bitcast(ty, lane_order(), value)
        }
    }

    /// Pops a v128 and views it with the lanes of `ty`.
    fn pop_v128(&mut self, ty: ir::Type) -> ir::Value {
        let value = self.pop1();
        self.v128_as(value, ty)
    }

    fn pop2_v128(&mut self, ty: ir::Type) -> (ir::Value, ir::Value) {
        let b = self.pop_v128(ty);
        let a = self.pop_v128(ty);
        (a, b)
    }

    /// Pushes a vector of any lane type as the stack's `I8X16`.
    fn push_v128(&mut self, value: ir::Value) {
        let value = self.v128_as(value, I8X16);
        self.push1(value);
    }

    fn v128_unary(&mut self, ty: ir::Type, f: Unary) {
        let a = self.pop_v128(ty);
        let v = f(&mut self.builder, a);
        self.push_v128(v);
    }

    fn v128_binary(&mut self, ty: ir::Type, f: Binary) {
        let (a, b) = self.pop2_v128(ty);
        let v = f(&mut self.builder, a, b);
        self.push_v128(v);
    }

    /// A vector of zeros with the lanes of `ty`.
    fn v128_zeros(&mut self, ty: ir::Type) -> ir::Value {
        let zeros = self
            .builder
            .func
            .dfg
            .constants
            .insert(ir::ConstantData::from(&[0u8; 16][..]));
        self.builder.ins().vconst(ty, zeros)
    }

    /// Pushes an `i8` truth value (`vany_true`, `vall_true`) as Wasm's i32.
    fn push_truth(&mut self, truth: ir::Value) {
        let v = self.builder.ins().uextend(I32, truth);
        self.push1(v);
    }
}
