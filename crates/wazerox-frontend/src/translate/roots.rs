//! GC roots in Wasm frames (docs/gc.md, "Roots, safepoints"): every SSA value
//! and variable that may refer to a GC object (any hierarchy, externrefs) is
//! declared to Cranelift as needing a
//! stack map, so that Cranelift spills the ones live across a call to stack
//! slots and records, per call site, which slots hold them.
//!
//! One place sees every value: after each reachable operator, the values it
//! left on the operand stack that were not examined before are typed with the
//! validator's operand stack (which mirrors ours in reachable code). An operator
//! only ever pushes on top, so the walk from the top stops at the first value
//! already examined. Locals are declared once, as variables.

use super::FuncTranslation;
use cranelift_codegen::entity::EntitySet;
use cranelift_codegen::ir;
use wasmparser::{
    AbstractHeapType, CompositeInnerType, FuncValidator, HeapType, UnpackedIndex,
    ValidatorResources, WasmModuleResources,
};
use wazerox_environ::parse::{WasmError, WasmErrorKind};

/// Whether a value of type `ty` may refer to a GC object: the any hierarchy,
/// and externrefs (an externalized anyref is its word with the top bit set,
/// docs/gc.md). Function and exception references never do. The collector
/// takes a frame's slot for a root only if the word (or the word without its
/// top bit) is an object of the heap, so a host externref handle in a slot is
/// harmless.
pub(crate) fn is_gc_ref(
    resources: &ValidatorResources,
    ty: wasmparser::ValType,
) -> Result<bool, WasmError> {
    let wasmparser::ValType::Ref(r) = ty else {
        return Ok(false);
    };
    let concrete_is_gc = |inner: &CompositeInnerType| {
        matches!(
            inner,
            CompositeInnerType::Struct(_) | CompositeInnerType::Array(_)
        )
    };
    Ok(match r.heap_type() {
        HeapType::Abstract { ty, .. } => matches!(
            ty,
            AbstractHeapType::Any
                | AbstractHeapType::Eq
                | AbstractHeapType::I31
                | AbstractHeapType::Struct
                | AbstractHeapType::Array
                | AbstractHeapType::None
                | AbstractHeapType::Extern
                | AbstractHeapType::NoExtern
        ),
        HeapType::Concrete(index) | HeapType::Exact(index) => match index {
            UnpackedIndex::Module(i) => resources
                .sub_type_at(i)
                .is_some_and(|t| concrete_is_gc(&t.composite_type.inner)),
            UnpackedIndex::Id(id) => {
                concrete_is_gc(&resources.sub_type_at_id(id).composite_type.inner)
            }
            UnpackedIndex::RecGroup(_) => {
                return Err(WasmError {
                    kind: WasmErrorKind::Validation,
                    message: "recursion-group type index outside a type definition".into(),
                    offset: None,
                });
            }
        },
    })
}

/// The values of the operand stack already examined by [`FuncTranslation::declare_stack_roots`].
#[derive(Default)]
pub(crate) struct ExaminedValues(EntitySet<ir::Value>);

impl FuncTranslation<'_, '_> {
    /// Declares the any-hierarchy values newly on the operand stack as needing
    /// stack maps. Called after every operator that leaves the code reachable.
    pub(crate) fn declare_stack_roots(
        &mut self,
        validator: &FuncValidator<ValidatorResources>,
    ) -> Result<(), WasmError> {
        let height = validator.operand_stack_height() as usize;
        if height != self.stack.len() {
            // Our stack mirrors the validator's in reachable code; if it did not,
            // the types below would belong to other values.
            return Err(WasmError {
                kind: WasmErrorKind::Unsupported,
                message: format!(
                    "internal: operand stack of {} values where the validator has {height}",
                    self.stack.len()
                ),
                offset: None,
            });
        }
        for depth in 0..height {
            let value = self.stack[height - 1 - depth];
            if !self.examined.0.insert(value) {
                break;
            }
            let Some(Some(ty)) = validator.get_operand_type(depth) else {
                continue;
            };
            if is_gc_ref(validator.resources(), ty)? {
                self.builder.declare_value_needs_stack_map(value);
            }
        }
        Ok(())
    }
}
