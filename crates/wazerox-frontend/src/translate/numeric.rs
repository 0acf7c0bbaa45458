//! Integer and float arithmetic, comparisons and conversions (Wasm 2.0 scalar), and
//! wide arithmetic (128-bit results as pairs of i64s).
//!
//! Cranelift's operators already have Wasm's semantics where it matters: shifts mask
//! their count, `fmin`/`fmax` propagate NaN and order -0 below +0, `sdiv`/`udiv`/`srem`
//! /`urem` trap on zero (and `sdiv` on overflow), `fcvt_to_*int` trap on NaN and
//! overflow with the matching trap codes, and the `_sat` forms saturate.

use super::FuncTranslation;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::types::{F32, F64, I8, I16, I32, I64, I128};
use cranelift_codegen::ir::{self, InstBuilder, MemFlagsData};
use cranelift_frontend::FunctionBuilder;
use wasmparser::Operator;

type Binary = fn(&mut FunctionBuilder<'_>, ir::Value, ir::Value) -> ir::Value;
type Unary = fn(&mut FunctionBuilder<'_>, ir::Value) -> ir::Value;

impl FuncTranslation<'_, '_> {
    fn binary(&mut self, f: Binary) {
        let (a, b) = self.pop2();
        let v = f(&mut self.builder, a, b);
        self.push1(v);
    }

    fn unary(&mut self, f: Unary) {
        let a = self.pop1();
        let v = f(&mut self.builder, a);
        self.push1(v);
    }

    fn icmp(&mut self, cc: IntCC) {
        let (a, b) = self.pop2();
        let c = self.builder.ins().icmp(cc, a, b);
        let v = self.builder.ins().uextend(I32, c);
        self.push1(v);
    }

    fn fcmp(&mut self, cc: FloatCC) {
        let (a, b) = self.pop2();
        let c = self.builder.ins().fcmp(cc, a, b);
        let v = self.builder.ins().uextend(I32, c);
        self.push1(v);
    }

    fn eqz(&mut self) {
        let a = self.pop1();
        let c = self.builder.ins().icmp_imm_u(IntCC::Equal, a, 0);
        let v = self.builder.ins().uextend(I32, c);
        self.push1(v);
    }

    /// Sign-extends the low `from` bits of the top value within its own type.
    fn extend_in_place(&mut self, from: ir::Type, to: ir::Type) {
        let a = self.pop1();
        let narrow = self.builder.ins().ireduce(from, a);
        let v = self.builder.ins().sextend(to, narrow);
        self.push1(v);
    }

    fn convert(
        &mut self,
        f: fn(&mut FunctionBuilder<'_>, ir::Type, ir::Value) -> ir::Value,
        to: ir::Type,
    ) {
        let a = self.pop1();
        let v = f(&mut self.builder, to, a);
        self.push1(v);
    }

    fn reinterpret(&mut self, to: ir::Type) {
        let a = self.pop1();
        let v = self.builder.ins().bitcast(
            to,
            MemFlagsData::new().with_endianness(ir::Endianness::Little),
            a,
        );
        self.push1(v);
    }

    /// `i64.add128` / `i64.sub128`: `(a_lo a_hi b_lo b_hi) -> (lo hi)`.
    fn wide_binary(&mut self, f: Binary) {
        let (b_lo, b_hi) = self.pop2();
        let (a_lo, a_hi) = self.pop2();
        let a = self.builder.ins().iconcat(a_lo, a_hi);
        let b = self.builder.ins().iconcat(b_lo, b_hi);
        let wide = f(&mut self.builder, a, b);
        self.push_wide(wide);
    }

    /// `i64.mul_wide_s` / `i64.mul_wide_u`: the full 128-bit product of two i64s.
    fn mul_wide(&mut self, extend: Unary) {
        let (a, b) = self.pop2();
        let a = extend(&mut self.builder, a);
        let b = extend(&mut self.builder, b);
        let wide = self.builder.ins().imul(a, b);
        self.push_wide(wide);
    }

    /// Pushes an i128 as its low and then its high i64.
    fn push_wide(&mut self, wide: ir::Value) {
        let (lo, hi) = self.builder.ins().isplit(wide);
        self.push1(lo);
        self.push1(hi);
    }

    /// Returns whether `op` is a numeric operator (and translates it).
    pub(crate) fn translate_numeric(&mut self, op: &Operator<'_>) -> bool {
        match op {
            Operator::I32Const { value } => {
                let v = self.builder.ins().iconst(I32, i64::from(*value));
                self.push1(v);
            }
            Operator::I64Const { value } => {
                let v = self.builder.ins().iconst(I64, *value);
                self.push1(v);
            }
            Operator::F32Const { value } => {
                let v = self.builder.ins().f32const(Ieee32::with_bits(value.bits()));
                self.push1(v);
            }
            Operator::F64Const { value } => {
                let v = self.builder.ins().f64const(Ieee64::with_bits(value.bits()));
                self.push1(v);
            }

            Operator::I32Eqz | Operator::I64Eqz => self.eqz(),
            Operator::I32Eq | Operator::I64Eq => self.icmp(IntCC::Equal),
            Operator::I32Ne | Operator::I64Ne => self.icmp(IntCC::NotEqual),
            Operator::I32LtS | Operator::I64LtS => self.icmp(IntCC::SignedLessThan),
            Operator::I32LtU | Operator::I64LtU => self.icmp(IntCC::UnsignedLessThan),
            Operator::I32GtS | Operator::I64GtS => self.icmp(IntCC::SignedGreaterThan),
            Operator::I32GtU | Operator::I64GtU => self.icmp(IntCC::UnsignedGreaterThan),
            Operator::I32LeS | Operator::I64LeS => self.icmp(IntCC::SignedLessThanOrEqual),
            Operator::I32LeU | Operator::I64LeU => self.icmp(IntCC::UnsignedLessThanOrEqual),
            Operator::I32GeS | Operator::I64GeS => self.icmp(IntCC::SignedGreaterThanOrEqual),
            Operator::I32GeU | Operator::I64GeU => self.icmp(IntCC::UnsignedGreaterThanOrEqual),

            Operator::F32Eq | Operator::F64Eq => self.fcmp(FloatCC::Equal),
            Operator::F32Ne | Operator::F64Ne => self.fcmp(FloatCC::NotEqual),
            Operator::F32Lt | Operator::F64Lt => self.fcmp(FloatCC::LessThan),
            Operator::F32Gt | Operator::F64Gt => self.fcmp(FloatCC::GreaterThan),
            Operator::F32Le | Operator::F64Le => self.fcmp(FloatCC::LessThanOrEqual),
            Operator::F32Ge | Operator::F64Ge => self.fcmp(FloatCC::GreaterThanOrEqual),

            Operator::I32Clz | Operator::I64Clz => self.unary(|b, a| b.ins().clz(a)),
            Operator::I32Ctz | Operator::I64Ctz => self.unary(|b, a| b.ins().ctz(a)),
            Operator::I32Popcnt | Operator::I64Popcnt => self.unary(|b, a| b.ins().popcnt(a)),
            Operator::I32Add | Operator::I64Add => self.binary(|b, x, y| b.ins().iadd(x, y)),
            Operator::I32Sub | Operator::I64Sub => self.binary(|b, x, y| b.ins().isub(x, y)),
            Operator::I32Mul | Operator::I64Mul => self.binary(|b, x, y| b.ins().imul(x, y)),
            Operator::I32DivS | Operator::I64DivS => self.binary(|b, x, y| b.ins().sdiv(x, y)),
            Operator::I32DivU | Operator::I64DivU => self.binary(|b, x, y| b.ins().udiv(x, y)),
            Operator::I32RemS | Operator::I64RemS => self.binary(|b, x, y| b.ins().srem(x, y)),
            Operator::I32RemU | Operator::I64RemU => self.binary(|b, x, y| b.ins().urem(x, y)),
            Operator::I32And | Operator::I64And => self.binary(|b, x, y| b.ins().band(x, y)),
            Operator::I32Or | Operator::I64Or => self.binary(|b, x, y| b.ins().bor(x, y)),
            Operator::I32Xor | Operator::I64Xor => self.binary(|b, x, y| b.ins().bxor(x, y)),
            Operator::I32Shl | Operator::I64Shl => self.binary(|b, x, y| b.ins().ishl(x, y)),
            Operator::I32ShrS | Operator::I64ShrS => self.binary(|b, x, y| b.ins().sshr(x, y)),
            Operator::I32ShrU | Operator::I64ShrU => self.binary(|b, x, y| b.ins().ushr(x, y)),
            Operator::I32Rotl | Operator::I64Rotl => self.binary(|b, x, y| b.ins().rotl(x, y)),
            Operator::I32Rotr | Operator::I64Rotr => self.binary(|b, x, y| b.ins().rotr(x, y)),

            Operator::F32Abs | Operator::F64Abs => self.unary(|b, a| b.ins().fabs(a)),
            Operator::F32Neg | Operator::F64Neg => self.unary(|b, a| b.ins().fneg(a)),
            Operator::F32Ceil | Operator::F64Ceil => self.unary(|b, a| b.ins().ceil(a)),
            Operator::F32Floor | Operator::F64Floor => self.unary(|b, a| b.ins().floor(a)),
            Operator::F32Trunc | Operator::F64Trunc => self.unary(|b, a| b.ins().trunc(a)),
            Operator::F32Nearest | Operator::F64Nearest => self.unary(|b, a| b.ins().nearest(a)),
            Operator::F32Sqrt | Operator::F64Sqrt => self.unary(|b, a| b.ins().sqrt(a)),
            Operator::F32Add | Operator::F64Add => self.binary(|b, x, y| b.ins().fadd(x, y)),
            Operator::F32Sub | Operator::F64Sub => self.binary(|b, x, y| b.ins().fsub(x, y)),
            Operator::F32Mul | Operator::F64Mul => self.binary(|b, x, y| b.ins().fmul(x, y)),
            Operator::F32Div | Operator::F64Div => self.binary(|b, x, y| b.ins().fdiv(x, y)),
            Operator::F32Min | Operator::F64Min => self.binary(|b, x, y| b.ins().fmin(x, y)),
            Operator::F32Max | Operator::F64Max => self.binary(|b, x, y| b.ins().fmax(x, y)),
            Operator::F32Copysign | Operator::F64Copysign => {
                self.binary(|b, x, y| b.ins().fcopysign(x, y))
            }

            Operator::I32WrapI64 => self.convert(|b, t, a| b.ins().ireduce(t, a), I32),
            Operator::I64ExtendI32S => self.convert(|b, t, a| b.ins().sextend(t, a), I64),
            Operator::I64ExtendI32U => self.convert(|b, t, a| b.ins().uextend(t, a), I64),
            Operator::I32Extend8S => self.extend_in_place(I8, I32),
            Operator::I32Extend16S => self.extend_in_place(I16, I32),
            Operator::I64Extend8S => self.extend_in_place(I8, I64),
            Operator::I64Extend16S => self.extend_in_place(I16, I64),
            Operator::I64Extend32S => self.extend_in_place(I32, I64),

            Operator::I32TruncF32S | Operator::I32TruncF64S => {
                self.convert(|b, t, a| b.ins().fcvt_to_sint(t, a), I32)
            }
            Operator::I32TruncF32U | Operator::I32TruncF64U => {
                self.convert(|b, t, a| b.ins().fcvt_to_uint(t, a), I32)
            }
            Operator::I64TruncF32S | Operator::I64TruncF64S => {
                self.convert(|b, t, a| b.ins().fcvt_to_sint(t, a), I64)
            }
            Operator::I64TruncF32U | Operator::I64TruncF64U => {
                self.convert(|b, t, a| b.ins().fcvt_to_uint(t, a), I64)
            }
            Operator::I32TruncSatF32S | Operator::I32TruncSatF64S => {
                self.convert(|b, t, a| b.ins().fcvt_to_sint_sat(t, a), I32)
            }
            Operator::I32TruncSatF32U | Operator::I32TruncSatF64U => {
                self.convert(|b, t, a| b.ins().fcvt_to_uint_sat(t, a), I32)
            }
            Operator::I64TruncSatF32S | Operator::I64TruncSatF64S => {
                self.convert(|b, t, a| b.ins().fcvt_to_sint_sat(t, a), I64)
            }
            Operator::I64TruncSatF32U | Operator::I64TruncSatF64U => {
                self.convert(|b, t, a| b.ins().fcvt_to_uint_sat(t, a), I64)
            }
            Operator::F32ConvertI32S | Operator::F32ConvertI64S => {
                self.convert(|b, t, a| b.ins().fcvt_from_sint(t, a), F32)
            }
            Operator::F32ConvertI32U | Operator::F32ConvertI64U => {
                self.convert(|b, t, a| b.ins().fcvt_from_uint(t, a), F32)
            }
            Operator::F64ConvertI32S | Operator::F64ConvertI64S => {
                self.convert(|b, t, a| b.ins().fcvt_from_sint(t, a), F64)
            }
            Operator::F64ConvertI32U | Operator::F64ConvertI64U => {
                self.convert(|b, t, a| b.ins().fcvt_from_uint(t, a), F64)
            }
            Operator::F32DemoteF64 => self.convert(|b, t, a| b.ins().fdemote(t, a), F32),
            Operator::F64PromoteF32 => self.convert(|b, t, a| b.ins().fpromote(t, a), F64),
            Operator::I32ReinterpretF32 => self.reinterpret(I32),
            Operator::I64ReinterpretF64 => self.reinterpret(I64),
            Operator::F32ReinterpretI32 => self.reinterpret(F32),
            Operator::F64ReinterpretI64 => self.reinterpret(F64),

            Operator::I64Add128 => self.wide_binary(|b, x, y| b.ins().iadd(x, y)),
            Operator::I64Sub128 => self.wide_binary(|b, x, y| b.ins().isub(x, y)),
            Operator::I64MulWideS => self.mul_wide(|b, a| b.ins().sextend(I128, a)),
            Operator::I64MulWideU => self.mul_wide(|b, a| b.ins().uextend(I128, a)),
            _ => return false,
        }
        true
    }
}
