//! Threads proposal: atomic loads, stores, read-modify-writes, compare-exchange,
//! `atomic.fence`, and `memory.atomic.wait32/wait64/notify`.
//!
//! Every atomic access checks alignment first (`HeapMisaligned`), then bounds
//! (guard pages, or an explicit check for large offsets), then performs a
//! sequentially consistent Cranelift atomic. Narrow forms zero-extend. Wait and
//! notify call runtime builtins after the same checks; `wait` on an unshared memory
//! traps (known statically from the memory's type).

use super::FuncTranslation;
use crate::trap::CraneliftTrapCode;
use cranelift_codegen::ir::types::{I8, I16, I32, I64};
use cranelift_codegen::ir::{self, AtomicRmwOp, Endianness, InstBuilder, MemFlagsData};
use wasmparser::{MemArg, Operator};
use wazerox_environ::TrapCode;
use wazerox_environ::builtins::Builtin;
use wazerox_environ::parse::WasmError;
use wazerox_environ::types::MemoryIndex;

fn atomic_flags() -> MemFlagsData {
    MemFlagsData::new()
        .with_endianness(Endianness::Little)
        .with_trap_code(Some(TrapCode::MemoryOutOfBounds.to_cranelift()))
}

impl FuncTranslation<'_, '_> {
    /// Pops the index and returns the checked native address of an atomic access.
    fn atomic_address(&mut self, memarg: &MemArg, size: u32) -> Result<ir::Value, WasmError> {
        let memory = MemoryIndex(memarg.memory);
        let index = self.pop1();
        let index = self.env.index_to_pointer(&mut self.builder, index);
        if size > 1 {
            // Alignment depends only on the low bits of `index + offset`, which
            // wrapping addition gets right.
            let effective = self.builder.ins().iadd_imm_u(index, memarg.offset as i64);
            let misaligned = self
                .builder
                .ins()
                .band_imm_u(effective, i64::from(size - 1));
            self.builder
                .ins()
                .trapnz(misaligned, TrapCode::HeapMisaligned.to_cranelift());
        }
        let (address, offset) = self.checked_heap_address(memory, index, memarg.offset, size);
        Ok(if offset == 0 {
            address
        } else {
            self.builder.ins().iadd_imm_u(address, i64::from(offset))
        })
    }

    /// The byte offset (not address) of a checked access, for builtins.
    fn atomic_offset(&mut self, memarg: &MemArg, size: u32) -> Result<ir::Value, WasmError> {
        let address = self.atomic_address(memarg, size)?;
        let base = self.env.heap(MemoryIndex(memarg.memory)).base;
        Ok(self.builder.ins().isub(address, base))
    }

    fn extend_to(&mut self, value: ir::Value, ty: ir::Type) -> ir::Value {
        if self.builder.func.dfg.value_type(value) == ty {
            value
        } else {
            self.builder.ins().uextend(ty, value)
        }
    }

    fn narrow_to(&mut self, value: ir::Value, ty: ir::Type) -> ir::Value {
        if self.builder.func.dfg.value_type(value) == ty {
            value
        } else {
            self.builder.ins().ireduce(ty, value)
        }
    }

    fn atomic_load(
        &mut self,
        memarg: &MemArg,
        access: ir::Type,
        result: ir::Type,
    ) -> Result<(), WasmError> {
        let address = self.atomic_address(memarg, access.bytes())?;
        let v = self
            .builder
            .ins()
            .atomic_load(access, atomic_flags(), address);
        let v = self.extend_to(v, result);
        self.push1(v);
        Ok(())
    }

    fn atomic_store(&mut self, memarg: &MemArg, access: ir::Type) -> Result<(), WasmError> {
        let value = self.pop1();
        let address = self.atomic_address(memarg, access.bytes())?;
        let value = self.narrow_to(value, access);
        self.builder
            .ins()
            .atomic_store(atomic_flags(), value, address);
        Ok(())
    }

    fn atomic_rmw(
        &mut self,
        memarg: &MemArg,
        access: ir::Type,
        result: ir::Type,
        op: AtomicRmwOp,
    ) -> Result<(), WasmError> {
        let value = self.pop1();
        let address = self.atomic_address(memarg, access.bytes())?;
        let value = self.narrow_to(value, access);
        let old = self
            .builder
            .ins()
            .atomic_rmw(access, atomic_flags(), op, address, value);
        let old = self.extend_to(old, result);
        self.push1(old);
        Ok(())
    }

    fn atomic_cmpxchg(
        &mut self,
        memarg: &MemArg,
        access: ir::Type,
        result: ir::Type,
    ) -> Result<(), WasmError> {
        let (expected, replacement) = self.pop2();
        let address = self.atomic_address(memarg, access.bytes())?;
        // The comparison is on the access width: narrow both operands (for narrow
        // forms the expected value's upper bits are ignored).
        let expected = self.narrow_to(expected, access);
        let replacement = self.narrow_to(replacement, access);
        let old = self
            .builder
            .ins()
            .atomic_cas(atomic_flags(), address, expected, replacement);
        let old = self.extend_to(old, result);
        self.push1(old);
        Ok(())
    }

    fn atomic_wait(&mut self, memarg: &MemArg, size: u32) -> Result<(), WasmError> {
        let (expected, timeout) = self.pop2();
        let offset = self.atomic_offset(memarg, size)?;
        if !self.env.module.memories[memarg.memory as usize].shared {
            self.builder
                .ins()
                .trap(TrapCode::AtomicWaitNonSharedMemory.to_cranelift());
            // Keep the operand stack shape; this point is unreachable.
            let dummy = self.builder.create_block();
            self.builder.switch_to_block(dummy);
            self.builder.seal_block(dummy);
        }
        let memory = self.builder.ins().iconst(I32, i64::from(memarg.memory));
        let builtin = if size == 4 {
            Builtin::MemoryAtomicWait32
        } else {
            Builtin::MemoryAtomicWait64
        };
        let result = self
            .env
            .call_builtin(
                &mut self.builder,
                builtin,
                &[memory, offset, expected, timeout],
            )
            .expect("wait returns a value");
        self.push1(result);
        Ok(())
    }

    /// Returns whether `op` is an atomic operator (and translates it).
    pub(crate) fn translate_atomic(&mut self, op: &Operator<'_>) -> Result<bool, WasmError> {
        use AtomicRmwOp::*;
        match op {
            Operator::AtomicFence => {
                self.builder.ins().fence();
            }
            Operator::MemoryAtomicNotify { memarg } => {
                let count = self.pop1();
                let offset = self.atomic_offset(memarg, 4)?;
                let memory = self.builder.ins().iconst(I32, i64::from(memarg.memory));
                let woken = self
                    .env
                    .call_builtin(
                        &mut self.builder,
                        Builtin::MemoryAtomicNotify,
                        &[memory, offset, count],
                    )
                    .expect("notify returns a value");
                self.push1(woken);
            }
            Operator::MemoryAtomicWait32 { memarg } => self.atomic_wait(memarg, 4)?,
            Operator::MemoryAtomicWait64 { memarg } => self.atomic_wait(memarg, 8)?,

            Operator::I32AtomicLoad { memarg } => self.atomic_load(memarg, I32, I32)?,
            Operator::I64AtomicLoad { memarg } => self.atomic_load(memarg, I64, I64)?,
            Operator::I32AtomicLoad8U { memarg } => self.atomic_load(memarg, I8, I32)?,
            Operator::I32AtomicLoad16U { memarg } => self.atomic_load(memarg, I16, I32)?,
            Operator::I64AtomicLoad8U { memarg } => self.atomic_load(memarg, I8, I64)?,
            Operator::I64AtomicLoad16U { memarg } => self.atomic_load(memarg, I16, I64)?,
            Operator::I64AtomicLoad32U { memarg } => self.atomic_load(memarg, I32, I64)?,

            Operator::I32AtomicStore { memarg } => self.atomic_store(memarg, I32)?,
            Operator::I64AtomicStore { memarg } => self.atomic_store(memarg, I64)?,
            Operator::I32AtomicStore8 { memarg } | Operator::I64AtomicStore8 { memarg } => {
                self.atomic_store(memarg, I8)?
            }
            Operator::I32AtomicStore16 { memarg } | Operator::I64AtomicStore16 { memarg } => {
                self.atomic_store(memarg, I16)?
            }
            Operator::I64AtomicStore32 { memarg } => self.atomic_store(memarg, I32)?,

            Operator::I32AtomicRmwAdd { memarg } => self.atomic_rmw(memarg, I32, I32, Add)?,
            Operator::I64AtomicRmwAdd { memarg } => self.atomic_rmw(memarg, I64, I64, Add)?,
            Operator::I32AtomicRmw8AddU { memarg } => self.atomic_rmw(memarg, I8, I32, Add)?,
            Operator::I32AtomicRmw16AddU { memarg } => self.atomic_rmw(memarg, I16, I32, Add)?,
            Operator::I64AtomicRmw8AddU { memarg } => self.atomic_rmw(memarg, I8, I64, Add)?,
            Operator::I64AtomicRmw16AddU { memarg } => self.atomic_rmw(memarg, I16, I64, Add)?,
            Operator::I64AtomicRmw32AddU { memarg } => self.atomic_rmw(memarg, I32, I64, Add)?,

            Operator::I32AtomicRmwSub { memarg } => self.atomic_rmw(memarg, I32, I32, Sub)?,
            Operator::I64AtomicRmwSub { memarg } => self.atomic_rmw(memarg, I64, I64, Sub)?,
            Operator::I32AtomicRmw8SubU { memarg } => self.atomic_rmw(memarg, I8, I32, Sub)?,
            Operator::I32AtomicRmw16SubU { memarg } => self.atomic_rmw(memarg, I16, I32, Sub)?,
            Operator::I64AtomicRmw8SubU { memarg } => self.atomic_rmw(memarg, I8, I64, Sub)?,
            Operator::I64AtomicRmw16SubU { memarg } => self.atomic_rmw(memarg, I16, I64, Sub)?,
            Operator::I64AtomicRmw32SubU { memarg } => self.atomic_rmw(memarg, I32, I64, Sub)?,

            Operator::I32AtomicRmwAnd { memarg } => self.atomic_rmw(memarg, I32, I32, And)?,
            Operator::I64AtomicRmwAnd { memarg } => self.atomic_rmw(memarg, I64, I64, And)?,
            Operator::I32AtomicRmw8AndU { memarg } => self.atomic_rmw(memarg, I8, I32, And)?,
            Operator::I32AtomicRmw16AndU { memarg } => self.atomic_rmw(memarg, I16, I32, And)?,
            Operator::I64AtomicRmw8AndU { memarg } => self.atomic_rmw(memarg, I8, I64, And)?,
            Operator::I64AtomicRmw16AndU { memarg } => self.atomic_rmw(memarg, I16, I64, And)?,
            Operator::I64AtomicRmw32AndU { memarg } => self.atomic_rmw(memarg, I32, I64, And)?,

            Operator::I32AtomicRmwOr { memarg } => self.atomic_rmw(memarg, I32, I32, Or)?,
            Operator::I64AtomicRmwOr { memarg } => self.atomic_rmw(memarg, I64, I64, Or)?,
            Operator::I32AtomicRmw8OrU { memarg } => self.atomic_rmw(memarg, I8, I32, Or)?,
            Operator::I32AtomicRmw16OrU { memarg } => self.atomic_rmw(memarg, I16, I32, Or)?,
            Operator::I64AtomicRmw8OrU { memarg } => self.atomic_rmw(memarg, I8, I64, Or)?,
            Operator::I64AtomicRmw16OrU { memarg } => self.atomic_rmw(memarg, I16, I64, Or)?,
            Operator::I64AtomicRmw32OrU { memarg } => self.atomic_rmw(memarg, I32, I64, Or)?,

            Operator::I32AtomicRmwXor { memarg } => self.atomic_rmw(memarg, I32, I32, Xor)?,
            Operator::I64AtomicRmwXor { memarg } => self.atomic_rmw(memarg, I64, I64, Xor)?,
            Operator::I32AtomicRmw8XorU { memarg } => self.atomic_rmw(memarg, I8, I32, Xor)?,
            Operator::I32AtomicRmw16XorU { memarg } => self.atomic_rmw(memarg, I16, I32, Xor)?,
            Operator::I64AtomicRmw8XorU { memarg } => self.atomic_rmw(memarg, I8, I64, Xor)?,
            Operator::I64AtomicRmw16XorU { memarg } => self.atomic_rmw(memarg, I16, I64, Xor)?,
            Operator::I64AtomicRmw32XorU { memarg } => self.atomic_rmw(memarg, I32, I64, Xor)?,

            Operator::I32AtomicRmwXchg { memarg } => self.atomic_rmw(memarg, I32, I32, Xchg)?,
            Operator::I64AtomicRmwXchg { memarg } => self.atomic_rmw(memarg, I64, I64, Xchg)?,
            Operator::I32AtomicRmw8XchgU { memarg } => self.atomic_rmw(memarg, I8, I32, Xchg)?,
            Operator::I32AtomicRmw16XchgU { memarg } => self.atomic_rmw(memarg, I16, I32, Xchg)?,
            Operator::I64AtomicRmw8XchgU { memarg } => self.atomic_rmw(memarg, I8, I64, Xchg)?,
            Operator::I64AtomicRmw16XchgU { memarg } => self.atomic_rmw(memarg, I16, I64, Xchg)?,
            Operator::I64AtomicRmw32XchgU { memarg } => self.atomic_rmw(memarg, I32, I64, Xchg)?,

            Operator::I32AtomicRmwCmpxchg { memarg } => self.atomic_cmpxchg(memarg, I32, I32)?,
            Operator::I64AtomicRmwCmpxchg { memarg } => self.atomic_cmpxchg(memarg, I64, I64)?,
            Operator::I32AtomicRmw8CmpxchgU { memarg } => self.atomic_cmpxchg(memarg, I8, I32)?,
            Operator::I32AtomicRmw16CmpxchgU { memarg } => self.atomic_cmpxchg(memarg, I16, I32)?,
            Operator::I64AtomicRmw8CmpxchgU { memarg } => self.atomic_cmpxchg(memarg, I8, I64)?,
            Operator::I64AtomicRmw16CmpxchgU { memarg } => self.atomic_cmpxchg(memarg, I16, I64)?,
            Operator::I64AtomicRmw32CmpxchgU { memarg } => self.atomic_cmpxchg(memarg, I32, I64)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}
