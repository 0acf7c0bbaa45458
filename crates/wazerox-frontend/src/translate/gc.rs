//! GC operators over the any hierarchy's tagged words (docs/gc.md): `i31`,
//! `ref.eq`, the extern/any conversions and type tests (`ref.test`,
//! `ref.cast`; `br_on_cast*` in `control.rs` share [`FuncTranslation::ref_test`]).

use super::FuncTranslation;
use super::environ::trusted;
use crate::signatures::ir_type;
use crate::trap::CraneliftTrapCode;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{self, InstBuilder};
use wasmparser::Operator;
use wazerox_environ::TrapCode;
use wazerox_environ::builtins::Builtin;
use wazerox_environ::gc::{self, GcLayout};
use wazerox_environ::parse::{WasmError, heap_type};
use wazerox_environ::types::{ConcreteType, FieldType, GcType, HeapType, RefType, StorageType};

impl FuncTranslation<'_, '_> {
    pub(crate) fn translate_gc(&mut self, op: &Operator<'_>) -> Result<bool, WasmError> {
        match op {
            Operator::RefI31 => {
                let v = self.pop1();
                let shifted = self.builder.ins().ishl_imm_u(v, 1);
                let tagged = self.builder.ins().bor_imm_u(shifted, gc::I31_TAG as i64);
                let word = self.builder.ins().uextend(I64, tagged);
                self.push1(word);
            }
            Operator::I31GetS | Operator::I31GetU => {
                let word = self.pop1();
                self.builder
                    .ins()
                    .trapz(word, TrapCode::NullReference.to_cranelift());
                let low = self.builder.ins().ireduce(I32, word);
                let v = if matches!(op, Operator::I31GetS) {
                    self.builder.ins().sshr_imm_u(low, 1)
                } else {
                    self.builder.ins().ushr_imm_u(low, 1)
                };
                self.push1(v);
            }
            Operator::RefEq => {
                let (a, b) = self.pop2();
                let equal = self.builder.ins().icmp(IntCC::Equal, a, b);
                let v = self.builder.ins().uextend(I32, equal);
                self.push1(v);
            }
            Operator::AnyConvertExtern => {
                let e = self.pop1();
                let v = self.any_from_extern(e);
                self.push1(v);
            }
            Operator::ExternConvertAny => {
                let a = self.pop1();
                let v = self.extern_from_any(a);
                self.push1(v);
            }
            Operator::RefTestNonNull { hty } | Operator::RefTestNullable { hty } => {
                let nullable = matches!(op, Operator::RefTestNullable { .. });
                let target = RefType::new(nullable, heap_type(*hty));
                let value = self.pop1();
                let matches = self.ref_test(value, target);
                self.push1(matches);
            }
            Operator::RefCastNonNull { hty } | Operator::RefCastNullable { hty } => {
                let nullable = matches!(op, Operator::RefCastNullable { .. });
                let target = RefType::new(nullable, heap_type(*hty));
                let value = *self.stack.last().expect("validated");
                let matches = self.ref_test(value, target);
                self.builder
                    .ins()
                    .trapz(matches, TrapCode::CastFailure.to_cranelift());
            }
            Operator::StructNew { struct_type_index } => {
                let ty = *struct_type_index;
                let (layout, fields) = self.struct_layout(ty);
                let values = self.popn(fields.len());
                let object = self.gc_alloc(ty, None);
                for ((value, field), offset) in
                    values.iter().zip(&fields).zip(&layout.field_offsets)
                {
                    self.store_field(field.storage, *value, object, *offset);
                }
                self.push1(object);
            }
            Operator::StructNewDefault { struct_type_index } => {
                // Objects are zeroed: every field starts at its default.
                let object = self.gc_alloc(*struct_type_index, None);
                self.push1(object);
            }
            Operator::StructGet {
                struct_type_index,
                field_index,
            }
            | Operator::StructGetS {
                struct_type_index,
                field_index,
            }
            | Operator::StructGetU {
                struct_type_index,
                field_index,
            } => {
                let (layout, fields) = self.struct_layout(*struct_type_index);
                let object = self.pop1();
                self.builder
                    .ins()
                    .trapz(object, TrapCode::NullReference.to_cranelift());
                let i = *field_index as usize;
                let signed = matches!(op, Operator::StructGetS { .. });
                let v = self.load_field(fields[i].storage, signed, object, layout.field_offsets[i]);
                self.push1(v);
            }
            Operator::StructSet {
                struct_type_index,
                field_index,
            } => {
                let (layout, fields) = self.struct_layout(*struct_type_index);
                let (object, value) = self.pop2();
                self.builder
                    .ins()
                    .trapz(object, TrapCode::NullReference.to_cranelift());
                let i = *field_index as usize;
                self.store_field(fields[i].storage, value, object, layout.field_offsets[i]);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The layout and fields of the module's struct type `ty`.
    fn struct_layout(&self, ty: u32) -> (GcLayout, Vec<FieldType>) {
        let gc_type = self.env.module.gc_types[ty as usize]
            .as_ref()
            .expect("validated: a struct type");
        let GcType::Struct(fields) = gc_type else {
            unreachable!("validated: a struct type")
        };
        (GcLayout::new(gc_type), fields.to_vec())
    }

    /// A new zeroed object of type `ty` (`length` elements for an array);
    /// traps `GcHeapExhausted` when the heap's cap forbids it.
    pub(crate) fn gc_alloc(&mut self, ty: u32, length: Option<ir::Value>) -> ir::Value {
        let ty = self.builder.ins().iconst(I32, i64::from(ty));
        let length = match length {
            Some(length) => length,
            None => self.builder.ins().iconst(I32, 0),
        };
        let object = self
            .env
            .call_builtin(&mut self.builder, Builtin::GcAlloc, &[ty, length])
            .expect("GcAlloc returns a value");
        self.builder
            .ins()
            .trapz(object, TrapCode::GcHeapExhausted.to_cranelift());
        object
    }

    pub(crate) fn store_field(
        &mut self,
        storage: StorageType,
        value: ir::Value,
        base: ir::Value,
        offset: u32,
    ) {
        let offset = offset as i32;
        match storage {
            StorageType::I8 => {
                self.builder.ins().istore8(trusted(), value, base, offset);
            }
            StorageType::I16 => {
                self.builder.ins().istore16(trusted(), value, base, offset);
            }
            StorageType::Val(ty) => {
                self.mark_if_exception_escapes(ty, value);
                self.builder.ins().store(trusted(), value, base, offset);
            }
        }
    }

    pub(crate) fn load_field(
        &mut self,
        storage: StorageType,
        signed: bool,
        base: ir::Value,
        offset: u32,
    ) -> ir::Value {
        let offset = offset as i32;
        let ins = self.builder.ins();
        match (storage, signed) {
            (StorageType::I8, true) => ins.sload8(I32, trusted(), base, offset),
            (StorageType::I8, false) => ins.uload8(I32, trusted(), base, offset),
            (StorageType::I16, true) => ins.sload16(I32, trusted(), base, offset),
            (StorageType::I16, false) => ins.uload16(I32, trusted(), base, offset),
            (StorageType::Val(v), _) => ins.load(ir_type(v), trusted(), base, offset),
        }
    }

    /// `any.convert_extern` (see `gc::any_from_extern`), branch-free.
    fn any_from_extern(&mut self, e: ir::Value) -> ir::Value {
        let externalized = self.builder.ins().icmp_imm_u(IntCC::SignedLessThan, e, 0);
        let unwrapped = self
            .builder
            .ins()
            .band_imm_u(e, !gc::EXTERNALIZED_ANY as i64);
        let shifted = self.builder.ins().ishl_imm_u(e, 2);
        let internalized = self.builder.ins().bor_imm_u(shifted, gc::EXTERN_TAG as i64);
        let word = self
            .builder
            .ins()
            .select(externalized, unwrapped, internalized);
        let is_null = self.builder.ins().icmp_imm_u(IntCC::Equal, e, 0);
        self.builder.ins().select(is_null, e, word)
    }

    /// `extern.convert_any` (see `gc::extern_from_any`), branch-free.
    fn extern_from_any(&mut self, a: ir::Value) -> ir::Value {
        let tag = self.builder.ins().band_imm_u(a, 3);
        let internalized = self
            .builder
            .ins()
            .icmp_imm_u(IntCC::Equal, tag, gc::EXTERN_TAG as i64);
        let handle = self.builder.ins().ushr_imm_u(a, 2);
        let externalized = self.builder.ins().bor_imm_u(a, gc::EXTERNALIZED_ANY as i64);
        let value = self
            .builder
            .ins()
            .select(internalized, handle, externalized);
        let is_null = self.builder.ins().icmp_imm_u(IntCC::Equal, a, 0);
        self.builder.ins().select(is_null, a, value)
    }

    /// An `i32` that is 1 when reference `value` has type `target` (the value's
    /// static type being of the same hierarchy, as validation guarantees).
    pub(crate) fn ref_test(&mut self, value: ir::Value, target: RefType) -> ir::Value {
        let when_not_null = match target.heap {
            HeapType::Func | HeapType::Extern | HeapType::Exn | HeapType::Any => {
                self.builder.ins().iconst(I32, 1)
            }
            HeapType::NoFunc | HeapType::NoExtern | HeapType::NoExn | HeapType::None => {
                self.builder.ins().iconst(I32, 0)
            }
            HeapType::Eq => {
                let tag = self.builder.ins().band_imm_u(value, 3);
                let eq = self
                    .builder
                    .ins()
                    .icmp_imm_u(IntCC::NotEqual, tag, gc::EXTERN_TAG as i64);
                self.builder.ins().uextend(I32, eq)
            }
            HeapType::I31 => {
                let low = self.builder.ins().ireduce(I32, value);
                self.builder.ins().band_imm_u(low, gc::I31_TAG as i64)
            }
            HeapType::Struct => self.ref_test_builtin(value, gc::TEST_STRUCT, 0),
            HeapType::Array => self.ref_test_builtin(value, gc::TEST_ARRAY, 0),
            HeapType::Concrete(ConcreteType::Module(t))
            | HeapType::ConcreteStruct(ConcreteType::Module(t))
            | HeapType::ConcreteArray(ConcreteType::Module(t)) => {
                self.ref_test_builtin(value, gc::TEST_CONCRETE, t.0)
            }
            HeapType::Concrete(other)
            | HeapType::ConcreteStruct(other)
            | HeapType::ConcreteArray(other) => {
                unreachable!("the translator sees module-relative types, not {other:?}")
            }
        };
        let is_null = self.builder.ins().icmp_imm_u(IntCC::Equal, value, 0);
        let when_null = self.builder.ins().iconst(I32, i64::from(target.nullable));
        self.builder.ins().select(is_null, when_null, when_not_null)
    }

    /// The `RefTest` builtin's answer (0 for null, which the caller replaces).
    fn ref_test_builtin(&mut self, value: ir::Value, test: u32, ty: u32) -> ir::Value {
        let test = self.builder.ins().iconst(I32, i64::from(test));
        let ty = self.builder.ins().iconst(I32, i64::from(ty));
        self.env
            .call_builtin(&mut self.builder, Builtin::RefTest, &[value, test, ty])
            .expect("RefTest returns a value")
    }
}
