//! Linear-memory operators: loads, stores, `memory.size/grow` and bulk memory.
//!
//! Bounds checks: a memory reserves `memory_reservation` bytes (4 GiB by default)
//! followed by a guard region, so when the reservation covers the whole 32-bit
//! range, `base + index + offset` of any 32-bit access whose `offset + size` fits
//! in the guard lands in reserved address space; out-of-bounds accesses fault and
//! the signal handler turns them into `MemoryOutOfBounds`. A 64-bit memory whose
//! maximum is at most 4 GiB gets the same treatment after one compare of the index
//! with a constant (an index of 2^32 or more is out of bounds whatever the size).
//! Every other access — large offsets, one-byte pages, 64-bit memories that may
//! grow past 4 GiB, a smaller reservation, or `explicit_bounds_checks` — compares
//! `index + offset + size` against the current length, overflow-checked; with
//! Spectre guards on, the address is then clamped with `select_spectre_guard` so a
//! mispredicted check cannot read out of bounds speculatively.

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
        let index = self.pop1();
        Ok(self.checked_heap_address(
            MemoryIndex(memarg.memory),
            index,
            memarg.offset,
            access_size,
        ))
    }

    /// The native address of `size` bytes at `index + offset` in `memory`, with
    /// the bounds check the memory's type and the configuration call for, and a
    /// static offset still to be added (non-zero only when guard pages check it).
    pub(crate) fn checked_heap_address(
        &mut self,
        memory: MemoryIndex,
        index: ir::Value,
        offset: u64,
        access_size: u32,
    ) -> (ir::Value, i32) {
        let ty = self.env.module.memories[memory.index()];
        let heap = self.env.heap(memory);
        let config = *self.env.config;
        let size = u64::from(access_size);
        let mut index = self.env.index_to_pointer(&mut self.builder, index);
        let maximum_bytes = ty.maximum.map_or(u64::MAX, |m| {
            m.checked_shl(ty.page_size_log2.into()).unwrap_or(u64::MAX)
        });
        let guarded = config.elides_bounds_check(&ty, offset, size)
            && (!ty.memory64 || maximum_bytes <= 1 << 32);
        if guarded {
            if ty.memory64 {
                // The maximum is at most 4 GiB: an index that needs more than 32
                // bits is out of bounds; any smaller one lands in the reservation
                // or its guard, as a 32-bit index does.
                let out_of_bounds = self.builder.ins().icmp_imm_u(
                    IntCC::UnsignedGreaterThan,
                    index,
                    i64::from(u32::MAX),
                );
                self.builder
                    .ins()
                    .trapnz(out_of_bounds, TrapCode::MemoryOutOfBounds.to_cranelift());
                if config.spectre_guards {
                    let zero = self.builder.ins().iconst(I64, 0);
                    index = self
                        .builder
                        .ins()
                        .select_spectre_guard(out_of_bounds, zero, index);
                }
            }
            let address = self.builder.ins().iadd(heap.base, index);
            return match i32::try_from(offset) {
                Ok(offset) => (address, offset),
                Err(_) => (self.builder.ins().iadd_imm_u(address, offset as i64), 0),
            };
        }
        let length = self.builder.ins().load(
            I64,
            trusted(),
            heap.definition,
            vmoffsets::VMMEMORY_CURRENT_LENGTH as i32,
        );
        let code = TrapCode::MemoryOutOfBounds.to_cranelift();
        let access_end = if !ty.memory64 {
            // A 32-bit index plus a 32-bit offset plus the size stays below 2^34.
            self.builder
                .ins()
                .iadd_imm_u(index, offset.wrapping_add(size) as i64)
        } else {
            // 64-bit index and offset: an end beyond 2^64 is out of bounds.
            let offset_value = self.builder.ins().iconst(I64, offset as i64);
            let end = self
                .builder
                .ins()
                .uadd_overflow_trap(index, offset_value, code);
            let size_value = self.builder.ins().iconst(I64, size as i64);
            self.builder.ins().uadd_overflow_trap(end, size_value, code)
        };
        let out_of_bounds = self
            .builder
            .ins()
            .icmp(IntCC::UnsignedGreaterThan, access_end, length);
        self.builder.ins().trapnz(out_of_bounds, code);
        let address = self.builder.ins().iadd(heap.base, index);
        let mut address = self.builder.ins().iadd_imm_u(address, offset as i64);
        if config.spectre_guards {
            let zero = self.builder.ins().iconst(I64, 0);
            address = self
                .builder
                .ins()
                .select_spectre_guard(out_of_bounds, zero, address);
        }
        (address, 0)
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
                let ty = self.env.module.memories[*mem as usize];
                let heap = self.env.heap(MemoryIndex(*mem));
                let length = self.builder.ins().load(
                    I64,
                    trusted(),
                    heap.definition,
                    vmoffsets::VMMEMORY_CURRENT_LENGTH as i32,
                );
                let pages = self
                    .builder
                    .ins()
                    .ushr_imm_u(length, i64::from(ty.page_size_log2));
                let pages = self.narrow_to_index_type(pages, ty.memory64);
                self.push1(pages);
            }
            Operator::MemoryGrow { mem } => {
                let memory64 = self.env.module.memories[*mem as usize].memory64;
                let delta = self.pop1();
                let delta = self.env.index_to_pointer(&mut self.builder, delta);
                let index = self.builder.ins().iconst(I32, i64::from(*mem));
                let old = self
                    .env
                    .call_builtin(&mut self.builder, Builtin::MemoryGrow, &[index, delta])
                    .expect("memory.grow returns a value");
                let old = self.narrow_to_index_type(old, memory64);
                self.push1(old);
            }
            Operator::MemoryFill { mem } => {
                let (dst, byte, len) = self.pop3();
                let mem = self.builder.ins().iconst(I32, i64::from(*mem));
                let dst = self.env.index_to_pointer(&mut self.builder, dst);
                let len = self.env.index_to_pointer(&mut self.builder, len);
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
                let dst = self.env.index_to_pointer(&mut self.builder, dst);
                let src = self.env.index_to_pointer(&mut self.builder, src);
                let len = self.env.index_to_pointer(&mut self.builder, len);
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
                let dst = self.env.index_to_pointer(&mut self.builder, dst);
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

    /// A size or index computed as an `i64` (`memory.size`, the result of a
    /// `grow` builtin), as the Wasm index type: `i64` when `is_64`, else truncated
    /// to `i32` (a failed grow's `u64::MAX` becomes -1 either way).
    pub(crate) fn narrow_to_index_type(&mut self, value: ir::Value, is_64: bool) -> ir::Value {
        if is_64 {
            value
        } else {
            self.builder.ins().ireduce(I32, value)
        }
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
