//! Linear-memory operators: loads, stores, `memory.size/grow` and bulk memory.
//!
//! Bounds checks: a 32-bit memory is a 4 GiB reservation followed by a guard
//! region, so `base + index + offset` of any access whose `offset + size` fits in the
//! guard lands in reserved address space; out-of-bounds accesses fault and the
//! signal handler turns them into `MemoryOutOfBounds`. Accesses with larger offsets,
//! or every access when the config asks for it, compare against the current length.

use super::FuncTranslation;
use super::environ::trusted;
use crate::trap::CraneliftTrapCode;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{F32, F64, I8, I16, I32, I64};
use cranelift_codegen::ir::{self, Endianness, InstBuilder, MemFlagsData};
use wasmparser::{MemArg, Operator};
use wazerox_environ::TrapCode;
use wazerox_environ::builtins::Builtin;
use wazerox_environ::parse::WasmError;
use wazerox_environ::types::{DataIndex, MemoryIndex};
use wazerox_environ::vmoffsets;

/// Flags of a Wasm heap access: little-endian, may fault (reported as out of bounds).
pub(crate) fn heap_flags() -> MemFlagsData {
    MemFlagsData::new()
        .with_endianness(Endianness::Little)
        .with_trap_code(Some(TrapCode::MemoryOutOfBounds.to_cranelift()))
}

#[derive(Clone, Copy)]
enum Extend {
    Plain,
    Signed,
    Unsigned,
}

impl FuncTranslation<'_, '_> {
    /// Pops the index operand and returns the native address of the access and a
    /// static offset to fold into the load/store.
    pub(crate) fn heap_address(
        &mut self,
        memarg: &MemArg,
        access_size: u32,
    ) -> Result<(ir::Value, i32), WasmError> {
        let memory = MemoryIndex(memarg.memory);
        if self.env.module.memories[memory.index()].memory64 {
            return Err(WasmError::unsupported("memory64"));
        }
        let heap = self.env.heap(memory);
        let index = self.pop1();
        let index = self.builder.ins().uextend(I64, index);
        let end = memarg.offset + u64::from(access_size);
        let guarded = !self.env.config.explicit_bounds_checks && end <= self.env.config.guard_bytes;
        if guarded && i32::try_from(memarg.offset).is_ok() {
            let address = self.builder.ins().iadd(heap.base, index);
            return Ok((address, memarg.offset as i32));
        }
        let length = self.builder.ins().load(
            I64,
            trusted(),
            heap.definition,
            vmoffsets::VMMEMORY_CURRENT_LENGTH as i32,
        );
        // `index + end` cannot overflow 64 bits: both are below 2^33.
        let access_end = self.builder.ins().iadd_imm_u(index, end as i64);
        let out_of_bounds = self
            .builder
            .ins()
            .icmp(IntCC::UnsignedGreaterThan, access_end, length);
        self.builder
            .ins()
            .trapnz(out_of_bounds, TrapCode::MemoryOutOfBounds.to_cranelift());
        let address = self.builder.ins().iadd(heap.base, index);
        let address = self.builder.ins().iadd_imm_u(address, memarg.offset as i64);
        Ok((address, 0))
    }

    fn load(
        &mut self,
        memarg: &MemArg,
        mem_ty: ir::Type,
        result_ty: ir::Type,
        extend: Extend,
    ) -> Result<(), WasmError> {
        let (address, offset) = self.heap_address(memarg, mem_ty.bytes())?;
        let ins = self.builder.ins();
        let value = match extend {
            Extend::Plain => ins.load(result_ty, heap_flags(), address, offset),
            Extend::Signed if mem_ty == I8 => ins.sload8(result_ty, heap_flags(), address, offset),
            Extend::Signed if mem_ty == I16 => {
                ins.sload16(result_ty, heap_flags(), address, offset)
            }
            Extend::Signed => ins.sload32(heap_flags(), address, offset),
            Extend::Unsigned if mem_ty == I8 => {
                ins.uload8(result_ty, heap_flags(), address, offset)
            }
            Extend::Unsigned if mem_ty == I16 => {
                ins.uload16(result_ty, heap_flags(), address, offset)
            }
            Extend::Unsigned => ins.uload32(heap_flags(), address, offset),
        };
        self.push1(value);
        Ok(())
    }

    fn store(&mut self, memarg: &MemArg, mem_ty: ir::Type) -> Result<(), WasmError> {
        let value = self.pop1();
        let (address, offset) = self.heap_address(memarg, mem_ty.bytes())?;
        let value_ty = self.builder.func.dfg.value_type(value);
        let ins = self.builder.ins();
        if value_ty == mem_ty {
            ins.store(heap_flags(), value, address, offset);
        } else if mem_ty == I8 {
            ins.istore8(heap_flags(), value, address, offset);
        } else if mem_ty == I16 {
            ins.istore16(heap_flags(), value, address, offset);
        } else {
            ins.istore32(heap_flags(), value, address, offset);
        }
        Ok(())
    }

    pub(crate) fn translate_memory(&mut self, op: &Operator<'_>) -> Result<bool, WasmError> {
        match op {
            Operator::I32Load { memarg } => self.load(memarg, I32, I32, Extend::Plain)?,
            Operator::I64Load { memarg } => self.load(memarg, I64, I64, Extend::Plain)?,
            Operator::F32Load { memarg } => self.load(memarg, F32, F32, Extend::Plain)?,
            Operator::F64Load { memarg } => self.load(memarg, F64, F64, Extend::Plain)?,
            Operator::I32Load8S { memarg } => self.load(memarg, I8, I32, Extend::Signed)?,
            Operator::I32Load8U { memarg } => self.load(memarg, I8, I32, Extend::Unsigned)?,
            Operator::I32Load16S { memarg } => self.load(memarg, I16, I32, Extend::Signed)?,
            Operator::I32Load16U { memarg } => self.load(memarg, I16, I32, Extend::Unsigned)?,
            Operator::I64Load8S { memarg } => self.load(memarg, I8, I64, Extend::Signed)?,
            Operator::I64Load8U { memarg } => self.load(memarg, I8, I64, Extend::Unsigned)?,
            Operator::I64Load16S { memarg } => self.load(memarg, I16, I64, Extend::Signed)?,
            Operator::I64Load16U { memarg } => self.load(memarg, I16, I64, Extend::Unsigned)?,
            Operator::I64Load32S { memarg } => self.load(memarg, I32, I64, Extend::Signed)?,
            Operator::I64Load32U { memarg } => self.load(memarg, I32, I64, Extend::Unsigned)?,
            Operator::I32Store { memarg } => self.store(memarg, I32)?,
            Operator::I64Store { memarg } => self.store(memarg, I64)?,
            Operator::F32Store { memarg } => self.store(memarg, F32)?,
            Operator::F64Store { memarg } => self.store(memarg, F64)?,
            Operator::I32Store8 { memarg } | Operator::I64Store8 { memarg } => {
                self.store(memarg, I8)?
            }
            Operator::I32Store16 { memarg } | Operator::I64Store16 { memarg } => {
                self.store(memarg, I16)?
            }
            Operator::I64Store32 { memarg } => self.store(memarg, I32)?,
            Operator::MemorySize { mem } => {
                let heap = self.env.heap(MemoryIndex(*mem));
                let length = self.builder.ins().load(
                    I64,
                    trusted(),
                    heap.definition,
                    vmoffsets::VMMEMORY_CURRENT_LENGTH as i32,
                );
                let pages = self.builder.ins().ushr_imm_u(length, 16);
                let pages = self.builder.ins().ireduce(I32, pages);
                self.push1(pages);
            }
            Operator::MemoryGrow { mem } => {
                let delta = self.pop1();
                let delta = self.builder.ins().uextend(I64, delta);
                let index = self.builder.ins().iconst(I32, i64::from(*mem));
                let old = self
                    .env
                    .call_builtin(&mut self.builder, Builtin::MemoryGrow, &[index, delta])
                    .expect("memory.grow returns a value");
                let old = self.builder.ins().ireduce(I32, old);
                self.push1(old);
            }
            Operator::MemoryFill { mem } => {
                let (dst, byte, len) = self.pop3();
                let mem = self.builder.ins().iconst(I32, i64::from(*mem));
                let dst = self.builder.ins().uextend(I64, dst);
                let len = self.builder.ins().uextend(I64, len);
                self.call_failing_builtin(
                    Builtin::MemoryFill,
                    &[mem, dst, byte, len],
                    TrapCode::MemoryOutOfBounds,
                );
            }
            Operator::MemoryCopy { dst_mem, src_mem } => {
                let (dst, src, len) = self.pop3();
                let dst_mem = self.builder.ins().iconst(I32, i64::from(*dst_mem));
                let src_mem = self.builder.ins().iconst(I32, i64::from(*src_mem));
                let dst = self.builder.ins().uextend(I64, dst);
                let src = self.builder.ins().uextend(I64, src);
                let len = self.builder.ins().uextend(I64, len);
                self.call_failing_builtin(
                    Builtin::MemoryCopy,
                    &[dst_mem, dst, src_mem, src, len],
                    TrapCode::MemoryOutOfBounds,
                );
            }
            Operator::MemoryInit { data_index, mem } => {
                let (dst, src, len) = self.pop3();
                let mem = self.builder.ins().iconst(I32, i64::from(*mem));
                let data = self
                    .builder
                    .ins()
                    .iconst(I32, i64::from(DataIndex(*data_index).0));
                let dst = self.builder.ins().uextend(I64, dst);
                self.call_failing_builtin(
                    Builtin::MemoryInit,
                    &[mem, data, dst, src, len],
                    TrapCode::MemoryOutOfBounds,
                );
            }
            Operator::DataDrop { data_index } => {
                let data = self.builder.ins().iconst(I32, i64::from(*data_index));
                self.env
                    .call_builtin(&mut self.builder, Builtin::DataDrop, &[data]);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub(crate) fn call_failing_builtin(
        &mut self,
        builtin: Builtin,
        args: &[ir::Value],
        code: TrapCode,
    ) {
        let failed = self
            .env
            .call_builtin(&mut self.builder, builtin, args)
            .expect("failing builtins return a status");
        self.env.trap_if_failed(&mut self.builder, failed, code);
    }
}
