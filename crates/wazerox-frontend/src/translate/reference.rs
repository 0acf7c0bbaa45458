//! Globals, tables and reference operators.
//!
//! Table elements are pointer-sized (a `*const VMFuncRef` or an externref handle,
//! 0 = null). Tables can grow and move, so their base and length are loaded from the
//! table definition at every access; accesses are always bounds-checked.

use super::FuncTranslation;
use super::environ::{readonly, trusted};
use crate::signatures::ir_type;
use crate::trap::CraneliftTrapCode;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{self, InstBuilder};
use wasmparser::Operator;
use wazerox_environ::TrapCode;
use wazerox_environ::builtins::Builtin;
use wazerox_environ::parse::WasmError;
use wazerox_environ::types::{FuncIndex, GlobalIndex, TableIndex};
use wazerox_environ::vmoffsets;

impl FuncTranslation<'_, '_> {
    /// Address and flags of global `index`'s storage.
    fn global_address(&mut self, index: GlobalIndex) -> (ir::Value, i32) {
        let module = self.env.module;
        if module.is_imported_global(index) {
            let pointer = self
                .env
                .load_vmctx_ptr(&mut self.builder, self.env.offsets.global_pointer(index));
            (pointer, 0)
        } else {
            let defined = index.0 - module.num_imported_globals;
            (
                self.env.vmctx(),
                self.env.offsets.defined_global(defined) as i32,
            )
        }
    }

    /// Bounds-checks `index` (an i32, or an i64 for table64) against `table` and
    /// returns the element's address, clamped with `select_spectre_guard` when
    /// Spectre guards are on (a mispredicted check then reads the first element).
    pub(crate) fn table_element_address(
        &mut self,
        table: TableIndex,
        index: ir::Value,
    ) -> ir::Value {
        let definition = self
            .env
            .load_vmctx_ptr(&mut self.builder, self.env.offsets.table_pointer(table));
        let length = self.builder.ins().load(
            I64,
            trusted(),
            definition,
            vmoffsets::VMTABLE_CURRENT_ELEMENTS as i32,
        );
        let index = self.env.index_to_pointer(&mut self.builder, index);
        let out_of_bounds =
            self.builder
                .ins()
                .icmp(IntCC::UnsignedGreaterThanOrEqual, index, length);
        self.builder
            .ins()
            .trapnz(out_of_bounds, TrapCode::TableOutOfBounds.to_cranelift());
        let base =
            self.builder
                .ins()
                .load(I64, trusted(), definition, vmoffsets::VMTABLE_BASE as i32);
        let scaled = self.builder.ins().ishl_imm_u(index, 3);
        let address = self.builder.ins().iadd(base, scaled);
        if self.env.config.spectre_guards {
            self.builder
                .ins()
                .select_spectre_guard(out_of_bounds, base, address)
        } else {
            address
        }
    }

    fn table_index_const(&mut self, table: u32) -> ir::Value {
        self.builder.ins().iconst(I32, i64::from(table))
    }

    pub(crate) fn translate_reference(&mut self, op: &Operator<'_>) -> Result<bool, WasmError> {
        match op {
            Operator::GlobalGet { global_index } => {
                let index = GlobalIndex(*global_index);
                let global = &self.env.module.globals[index.index()];
                let ty = ir_type(global.ty.content);
                let flags = if global.ty.mutable {
                    trusted()
                } else {
                    readonly()
                };
                let (address, offset) = self.global_address(index);
                let v = self.builder.ins().load(ty, flags, address, offset);
                self.push1(v);
            }
            Operator::GlobalSet { global_index } => {
                let value = self.pop1();
                let ty = self.env.module.globals[*global_index as usize].ty.content;
                self.mark_if_exception_escapes(ty, value);
                let (address, offset) = self.global_address(GlobalIndex(*global_index));
                self.builder.ins().store(trusted(), value, address, offset);
            }
            Operator::TableGet { table } => {
                let index = self.pop1();
                let address = self.table_element_address(TableIndex(*table), index);
                let v = self.builder.ins().load(I64, trusted(), address, 0);
                self.push1(v);
            }
            Operator::TableSet { table } => {
                let (index, value) = self.pop2();
                let ty = self.env.module.tables[*table as usize].ty.element;
                self.mark_if_exception_escapes(ty, value);
                let address = self.table_element_address(TableIndex(*table), index);
                self.builder.ins().store(trusted(), value, address, 0);
                // Tell the runtime the table no longer holds its initial image
                // (a pooled table is refilled on reuse only then).
                let definition = self.env.load_vmctx_ptr(
                    &mut self.builder,
                    self.env.offsets.table_pointer(TableIndex(*table)),
                );
                let written = self.builder.ins().iconst(I64, 1);
                self.builder.ins().store(
                    trusted(),
                    written,
                    definition,
                    vmoffsets::VMTABLE_WRITTEN as i32,
                );
            }
            Operator::TableSize { table } => {
                let table64 = self.env.module.tables[*table as usize].ty.table64;
                let definition = self.env.load_vmctx_ptr(
                    &mut self.builder,
                    self.env.offsets.table_pointer(TableIndex(*table)),
                );
                let length = self.builder.ins().load(
                    I64,
                    trusted(),
                    definition,
                    vmoffsets::VMTABLE_CURRENT_ELEMENTS as i32,
                );
                let length = self.narrow_to_index_type(length, table64);
                self.push1(length);
            }
            Operator::TableGrow { table } => {
                let (init, delta) = self.pop2();
                let ty = self.env.module.tables[*table as usize].ty.element;
                self.mark_if_exception_escapes(ty, init);
                let table64 = self.env.module.tables[*table as usize].ty.table64;
                let table = self.table_index_const(*table);
                let delta = self.env.index_to_pointer(&mut self.builder, delta);
                let old = self
                    .env
                    .call_builtin(&mut self.builder, Builtin::TableGrow, &[table, delta, init])
                    .expect("table.grow returns a value");
                let old = self.narrow_to_index_type(old, table64);
                self.push1(old);
            }
            Operator::TableFill { table } => {
                let (dst, value, len) = self.pop3();
                let ty = self.env.module.tables[*table as usize].ty.element;
                self.mark_if_exception_escapes(ty, value);
                let table = self.table_index_const(*table);
                let dst = self.env.index_to_pointer(&mut self.builder, dst);
                let len = self.env.index_to_pointer(&mut self.builder, len);
                self.call_failing_builtin(
                    Builtin::TableFill,
                    &[table, dst, value, len],
                    TrapCode::TableOutOfBounds,
                );
            }
            Operator::TableCopy {
                dst_table,
                src_table,
            } => {
                let (dst, src, len) = self.pop3();
                let dst_table = self.table_index_const(*dst_table);
                let src_table = self.table_index_const(*src_table);
                let dst = self.env.index_to_pointer(&mut self.builder, dst);
                let src = self.env.index_to_pointer(&mut self.builder, src);
                let len = self.env.index_to_pointer(&mut self.builder, len);
                self.call_failing_builtin(
                    Builtin::TableCopy,
                    &[dst_table, src_table, dst, src, len],
                    TrapCode::TableOutOfBounds,
                );
            }
            Operator::TableInit { elem_index, table } => {
                let (dst, src, len) = self.pop3();
                let table = self.table_index_const(*table);
                let elem = self.builder.ins().iconst(I32, i64::from(*elem_index));
                let dst = self.env.index_to_pointer(&mut self.builder, dst);
                self.call_failing_builtin(
                    Builtin::TableInit,
                    &[table, elem, dst, src, len],
                    TrapCode::TableOutOfBounds,
                );
            }
            Operator::ElemDrop { elem_index } => {
                let elem = self.builder.ins().iconst(I32, i64::from(*elem_index));
                self.env
                    .call_builtin(&mut self.builder, Builtin::ElemDrop, &[elem]);
            }
            Operator::RefNull { .. } => {
                let v = self.builder.ins().iconst(I64, 0);
                self.push1(v);
            }
            Operator::RefIsNull => {
                let r = self.pop1();
                let c = self.builder.ins().icmp_imm_u(IntCC::Equal, r, 0);
                let v = self.builder.ins().uextend(I32, c);
                self.push1(v);
            }
            Operator::RefAsNonNull => {
                let r = *self.stack.last().expect("validated");
                self.builder
                    .ins()
                    .trapz(r, TrapCode::NullReference.to_cranelift());
            }
            Operator::RefFunc { function_index } => {
                let offset = self.env.offsets.func_ref(FuncIndex(*function_index));
                let v = self
                    .builder
                    .ins()
                    .iadd_imm_u(self.env.vmctx(), i64::from(offset));
                self.push1(v);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}
