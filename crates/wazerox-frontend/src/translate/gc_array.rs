//! `array.*` operators (docs/gc.md): elements follow the 16-byte header at their
//! storage size; the length is the header's `u32`. Element access, `array.len`,
//! `array.fill` and the `array.new*` forms that take values are inline; the
//! copies between arrays and from segments are builtins (`ArrayCopy`,
//! `ArrayNewData`/`Elem`, `ArrayInitData`/`Elem`), which check their ranges.

use super::FuncTranslation;
use super::environ::trusted;
use crate::trap::CraneliftTrapCode;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{self, BlockArg, InstBuilder};
use wasmparser::Operator;
use wazerox_environ::TrapCode;
use wazerox_environ::builtins::Builtin;
use wazerox_environ::gc::{HEADER_LENGTH, HEADER_SIZE};
use wazerox_environ::parse::WasmError;
use wazerox_environ::types::{FieldType, GcType, StorageType};

impl FuncTranslation<'_, '_> {
    pub(crate) fn translate_gc_array(&mut self, op: &Operator<'_>) -> Result<bool, WasmError> {
        match op {
            Operator::ArrayNew { array_type_index } => {
                let ty = *array_type_index;
                let (value, length) = self.pop2();
                let element = self.array_element(ty);
                let object = self.gc_alloc(ty, Some(length));
                let zero = self.builder.ins().iconst(I32, 0);
                self.fill_elements(element.storage, object, zero, length, value);
                self.push1(object);
            }
            Operator::ArrayNewDefault { array_type_index } => {
                // Objects are zeroed: every element starts at its default.
                let length = self.pop1();
                let object = self.gc_alloc(*array_type_index, Some(length));
                self.push1(object);
            }
            Operator::ArrayNewFixed {
                array_type_index,
                array_size,
            } => {
                let ty = *array_type_index;
                let element = self.array_element(ty);
                let values = self.popn(*array_size as usize);
                let length = self.builder.ins().iconst(I32, i64::from(*array_size));
                let object = self.gc_alloc(ty, Some(length));
                let size = element.storage.size();
                for (i, value) in values.iter().enumerate() {
                    let offset = HEADER_SIZE + i as u32 * size;
                    self.store_field(element.storage, *value, object, offset);
                }
                self.push1(object);
            }
            Operator::ArrayGet { array_type_index }
            | Operator::ArrayGetS { array_type_index }
            | Operator::ArrayGetU { array_type_index } => {
                let element = self.array_element(*array_type_index);
                let (object, index) = self.pop2();
                let address = self.element_address(object, index, element.storage);
                let signed = matches!(op, Operator::ArrayGetS { .. });
                let v = self.load_field(element.storage, signed, address, 0);
                self.push1(v);
            }
            Operator::ArraySet { array_type_index } => {
                let element = self.array_element(*array_type_index);
                let (object, index, value) = self.pop3();
                let address = self.element_address(object, index, element.storage);
                self.store_field(element.storage, value, address, 0);
            }
            Operator::ArrayLen => {
                let object = self.pop1();
                let length = self.array_length(object);
                self.push1(length);
            }
            Operator::ArrayFill { array_type_index } => {
                let element = self.array_element(*array_type_index);
                let v = self.popn(4);
                let (object, start, value, count) = (v[0], v[1], v[2], v[3]);
                let length = self.array_length(object);
                self.check_range(start, count, length);
                self.fill_elements(element.storage, object, start, count, value);
            }
            Operator::ArrayCopy {
                array_type_index_dst,
                array_type_index_src: _,
            } => {
                let element = self.array_element(*array_type_index_dst);
                let v = self.popn(5);
                let (dst, dst_index, src, src_index, count) = (v[0], v[1], v[2], v[3], v[4]);
                self.null_check(dst);
                self.null_check(src);
                let size = self
                    .builder
                    .ins()
                    .iconst(I32, i64::from(element.storage.size()));
                self.call_failing_builtin(
                    Builtin::ArrayCopy,
                    &[dst, dst_index, src, src_index, count, size],
                    TrapCode::ArrayOutOfBounds,
                );
            }
            Operator::ArrayNewData {
                array_type_index,
                array_data_index: segment,
            }
            | Operator::ArrayNewElem {
                array_type_index,
                array_elem_index: segment,
            } => {
                let (offset, length) = self.pop2();
                let ty = self.builder.ins().iconst(I32, i64::from(*array_type_index));
                let segment = self.builder.ins().iconst(I32, i64::from(*segment));
                let builtin = if matches!(op, Operator::ArrayNewData { .. }) {
                    Builtin::ArrayNewData
                } else {
                    Builtin::ArrayNewElem
                };
                let object = self
                    .env
                    .call_builtin(&mut self.builder, builtin, &[ty, segment, offset, length])
                    .expect("returns the array");
                self.push1(object);
            }
            Operator::ArrayInitData {
                array_type_index,
                array_data_index: segment,
            }
            | Operator::ArrayInitElem {
                array_type_index,
                array_elem_index: segment,
            } => {
                let v = self.popn(4);
                let (object, dst, src, count) = (v[0], v[1], v[2], v[3]);
                self.null_check(object);
                let ty = self.builder.ins().iconst(I32, i64::from(*array_type_index));
                let segment = self.builder.ins().iconst(I32, i64::from(*segment));
                let builtin = if matches!(op, Operator::ArrayInitData { .. }) {
                    Builtin::ArrayInitData
                } else {
                    Builtin::ArrayInitElem
                };
                self.env.call_builtin(
                    &mut self.builder,
                    builtin,
                    &[ty, object, dst, segment, src, count],
                );
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The element type of the module's array type `ty`.
    fn array_element(&self, ty: u32) -> FieldType {
        match self.env.module.gc_types[ty as usize] {
            Some(GcType::Array(element)) => element,
            _ => unreachable!("validated: an array type"),
        }
    }

    fn null_check(&mut self, object: ir::Value) {
        self.builder
            .ins()
            .trapz(object, TrapCode::NullReference.to_cranelift());
    }

    /// The length of array `object` (an `i32`), trapping on null.
    fn array_length(&mut self, object: ir::Value) -> ir::Value {
        self.null_check(object);
        self.builder
            .ins()
            .load(I32, trusted(), object, HEADER_LENGTH as i32)
    }

    /// Traps `ArrayOutOfBounds` unless `start + count <= length` (all `i32`,
    /// unsigned, summed without overflow).
    fn check_range(&mut self, start: ir::Value, count: ir::Value, length: ir::Value) {
        let start = self.builder.ins().uextend(I64, start);
        let count = self.builder.ins().uextend(I64, count);
        let length = self.builder.ins().uextend(I64, length);
        let end = self.builder.ins().iadd(start, count);
        let outside = self
            .builder
            .ins()
            .icmp(IntCC::UnsignedGreaterThan, end, length);
        self.builder
            .ins()
            .trapnz(outside, TrapCode::ArrayOutOfBounds.to_cranelift());
    }

    /// The address of element `index` of array `object`, after the null and
    /// bounds checks.
    fn element_address(
        &mut self,
        object: ir::Value,
        index: ir::Value,
        storage: StorageType,
    ) -> ir::Value {
        let length = self.array_length(object);
        let outside = self
            .builder
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, index, length);
        self.builder
            .ins()
            .trapnz(outside, TrapCode::ArrayOutOfBounds.to_cranelift());
        self.element_pointer(object, index, storage)
    }

    /// `object + HEADER_SIZE + index * size`, unchecked.
    fn element_pointer(
        &mut self,
        object: ir::Value,
        index: ir::Value,
        storage: StorageType,
    ) -> ir::Value {
        let index = self.builder.ins().uextend(I64, index);
        let scaled = self
            .builder
            .ins()
            .imul_imm_u(index, i64::from(storage.size()));
        let base = self.builder.ins().iadd(object, scaled);
        self.builder.ins().iadd_imm_u(base, i64::from(HEADER_SIZE))
    }

    /// Stores `value` into elements `start..start + count` of `object` (already
    /// checked): a loop over the element addresses.
    fn fill_elements(
        &mut self,
        storage: StorageType,
        object: ir::Value,
        start: ir::Value,
        count: ir::Value,
        value: ir::Value,
    ) {
        let first = self.element_pointer(object, start, storage);
        let count = self.builder.ins().uextend(I64, count);
        let bytes = self
            .builder
            .ins()
            .imul_imm_u(count, i64::from(storage.size()));
        let end = self.builder.ins().iadd(first, bytes);

        let header = self.builder.create_block();
        let body = self.builder.create_block();
        let done = self.builder.create_block();
        let cursor = self.builder.append_block_param(header, I64);
        self.builder.ins().jump(header, &[BlockArg::Value(first)]);

        self.builder.switch_to_block(header);
        let finished = self.builder.ins().icmp(IntCC::Equal, cursor, end);
        self.builder.ins().brif(finished, done, &[], body, &[]);

        self.builder.switch_to_block(body);
        self.builder.seal_block(body);
        self.store_field(storage, value, cursor, 0);
        let next = self
            .builder
            .ins()
            .iadd_imm_u(cursor, i64::from(storage.size()));
        self.builder.ins().jump(header, &[BlockArg::Value(next)]);
        self.builder.seal_block(header);

        self.builder.switch_to_block(done);
        self.builder.seal_block(done);
    }
}
