//! References of the GC proposal's any hierarchy as the host sees them
//! (docs/gc.md): [`AnyRef`], an owned root, and its [`StructRef`] and
//! [`ArrayRef`] views, whose fields and elements the host reads and writes.

use crate::error::Error;
use crate::func::{val_from_raw, val_to_raw};
use crate::store::{AsContext, AsContextMut, StoreOpaque};
use crate::values::{ExternRef, Val};
use std::sync::Arc;
use wazerox_environ::gc::{self, GcLayout};
use wazerox_environ::{ConcreteType, FieldType, GcType, HeapType, StorageType};
use wazerox_runtime::vmcontext::ValRaw;

/// A non-null reference of the any hierarchy (`anyref`, `eqref`, `i31ref`,
/// `structref`, `arrayref`, or an internalized `externref`), owned by one store.
///
/// It is a root: the object it refers to survives collections as long as a
/// clone of the handle exists. Using it with another store is an error.
#[derive(Debug, Clone)]
pub struct AnyRef {
    pub(crate) store: u64,
    word: Arc<u64>,
}

impl AnyRef {
    /// The `i31ref` holding the low 31 bits of `value` (Wasm's `ref.i31`).
    pub fn from_i31(mut store: impl AsContextMut, value: i32) -> AnyRef {
        let mut ctx = store.as_context_mut();
        AnyRef::from_word(ctx.opaque_mut(), gc::i31_word(value)).expect("an i31 word is not null")
    }

    /// `any.convert_extern`: the externref as an anyref.
    pub fn convert_extern(mut store: impl AsContextMut, externref: ExternRef) -> AnyRef {
        let mut ctx = store.as_context_mut();
        let store = ctx.opaque_mut();
        store.assert_owns(externref.store, "externref");
        AnyRef::from_word(store, gc::any_from_extern(externref.to_raw() as u64))
            .expect("an externref is not null")
    }

    /// The handle of `word` (an any-hierarchy word of `store`), rooted; `None`
    /// for null.
    pub(crate) fn from_word(store: &mut StoreOpaque, word: u64) -> Option<AnyRef> {
        if word == 0 {
            return None;
        }
        let word = Arc::new(word);
        if gc::is_object(*word) {
            store.gc_roots.push(Arc::downgrade(&word));
        }
        Some(AnyRef {
            store: store.id,
            word,
        })
    }

    pub(crate) fn to_word(&self) -> u64 {
        *self.word
    }

    /// The payload, sign-extended, if this is an `i31ref` (`i31.get_s`).
    pub fn i31_s(&self) -> Option<i32> {
        gc::is_i31(*self.word).then(|| gc::i31_get_s(*self.word))
    }

    /// The payload, zero-extended, if this is an `i31ref` (`i31.get_u`).
    pub fn i31_u(&self) -> Option<u32> {
        gc::is_i31(*self.word).then(|| gc::i31_get_u(*self.word))
    }

    /// The externref this is, if it was made by `any.convert_extern` from a host
    /// reference.
    pub fn as_externref(&self, store: impl AsContext) -> Option<ExternRef> {
        let ctx = store.as_context();
        let store = ctx.opaque();
        store.assert_owns(self.store, "anyref");
        if !gc::is_internalized_extern(*self.word) {
            return None;
        }
        ExternRef::from_raw(store, gc::extern_from_any(*self.word) as usize)
    }

    /// Whether this reference has heap type `heap` (of the any hierarchy;
    /// concrete types in the engine's frame).
    pub(crate) fn matches_heap(&self, store: &StoreOpaque, heap: HeapType) -> bool {
        let word = *self.word;
        match heap {
            HeapType::Any => true,
            HeapType::Eq => !gc::is_internalized_extern(word),
            HeapType::I31 => gc::is_i31(word),
            // SAFETY (both): the handle roots its object, so the object is alive.
            HeapType::Struct => {
                gc::is_object(word) && !unsafe { wazerox_runtime::gc::is_array(word) }
            }
            HeapType::Array => {
                gc::is_object(word) && unsafe { wazerox_runtime::gc::is_array(word) }
            }
            HeapType::ConcreteStruct(ConcreteType::Engine(id))
            | HeapType::ConcreteArray(ConcreteType::Engine(id)) => {
                // SAFETY: the handle roots its object, so the object is alive.
                gc::is_object(word)
                    && store
                        .engine()
                        .is_subtype(unsafe { wazerox_runtime::gc::type_id(word) }, id)
            }
            _ => false,
        }
    }

    /// Whether this is a struct.
    pub fn is_struct(&self, store: impl AsContext) -> bool {
        self.object_is_array(store) == Some(false)
    }

    /// Whether this is an array.
    pub fn is_array(&self, store: impl AsContext) -> bool {
        self.object_is_array(store) == Some(true)
    }

    /// `Some(is_array)` for an object, `None` for an i31 or externref.
    fn object_is_array(&self, store: impl AsContext) -> Option<bool> {
        let ctx = store.as_context();
        ctx.opaque().assert_owns(self.store, "anyref");
        let word = *self.word;
        // SAFETY: the handle roots its object, so the object is alive.
        gc::is_object(word).then(|| unsafe { wazerox_runtime::gc::is_array(word) })
    }

    /// `extern.convert_any`: this reference as an externref (which the host
    /// can hand back to Wasm, where `any.convert_extern` gives this anyref
    /// again).
    pub fn to_externref(&self, mut store: impl AsContextMut) -> ExternRef {
        let mut ctx = store.as_context_mut();
        let store = ctx.opaque_mut();
        store.assert_owns(self.store, "anyref");
        ExternRef::from_raw_rooted(store, gc::extern_from_any(*self.word) as usize)
            .expect("a non-null anyref externalizes to a non-null externref")
    }
}

impl AnyRef {
    /// This reference as a struct, if it is one.
    pub fn as_struct(&self, store: impl AsContext) -> Option<StructRef> {
        self.is_struct(store).then(|| StructRef(self.clone()))
    }

    /// This reference as an array, if it is one.
    pub fn as_array(&self, store: impl AsContext) -> Option<ArrayRef> {
        self.is_array(store).then(|| ArrayRef(self.clone()))
    }

    /// The struct or array type of this object, in engine form.
    fn object_type(&self, store: &StoreOpaque) -> GcType {
        store.assert_owns(self.store, "anyref");
        // SAFETY: the handle roots its object (a struct or array, as the
        // `StructRef`/`ArrayRef` holding it was checked to be), so it is alive.
        let id = unsafe { wazerox_runtime::gc::type_id(*self.word) };
        store
            .engine()
            .gc_type_of(id)
            .expect("a GC object's type is a struct or array type")
    }
}

/// A struct of a store's GC heap, rooted like the [`AnyRef`] it was made from
/// ([`AnyRef::as_struct`]); its fields read and written from the host.
#[derive(Debug, Clone)]
pub struct StructRef(AnyRef);

/// An array of a store's GC heap, rooted like the [`AnyRef`] it was made from
/// ([`AnyRef::as_array`]); its elements read and written from the host.
#[derive(Debug, Clone)]
pub struct ArrayRef(AnyRef);

/// Reads the `storage` field or element at byte `offset` of `object`: a packed
/// one as its zero-extended `i32` (as `struct.get_u`/`array.get_u`).
fn read_slot(store: &mut StoreOpaque, object: &AnyRef, offset: u64, storage: StorageType) -> Val {
    // SAFETY: the handle roots the object; the caller's `offset` is a field or
    // an element below the length of the object's type.
    let raw = unsafe {
        wazerox_runtime::gc_array::read_slot(object.to_word(), offset, storage.size() as usize)
    };
    match storage {
        StorageType::I8 | StorageType::I16 => Val::I32(raw as u32 as i32),
        StorageType::Val(ty) => {
            val_from_raw(store, ty, &ValRaw::u128(raw)).expect("a field holds a value of its type")
        }
    }
}

/// Writes `value` into the `field` at byte `offset` of `object`, after checking
/// that the field is mutable and the value has its type (a packed field takes
/// the low bits of an `i32`).
fn write_slot(
    store: &StoreOpaque,
    object: &AnyRef,
    offset: u64,
    field: FieldType,
    value: &Val,
) -> Result<(), Error> {
    if !field.mutable {
        return Err(Error::usage("the field or element is immutable"));
    }
    let matches = match field.storage {
        StorageType::I8 | StorageType::I16 => matches!(value, Val::I32(_)),
        StorageType::Val(ty) => value.matches_ty(store, ty),
    };
    if !matches {
        return Err(Error::usage(format!(
            "a value of type {} does not fit a field of type {:?}",
            value.ty(),
            field.storage
        )));
    }
    let raw = val_to_raw(store, value)?;
    // SAFETY: the handle roots the object; the caller's `offset` is a field or
    // an element below the length of the object's type.
    unsafe {
        wazerox_runtime::gc_array::write_slot(
            object.to_word(),
            offset,
            field.storage.size() as usize,
            raw.get_u128(),
        )
    };
    Ok(())
}

impl StructRef {
    /// The struct as an [`AnyRef`] (to pass to Wasm as a [`Val::AnyRef`]).
    pub fn to_anyref(&self) -> AnyRef {
        self.0.clone()
    }

    /// The type and offset of field `index`.
    fn field_at(&self, store: &StoreOpaque, index: usize) -> Result<(FieldType, u64), Error> {
        let ty = self.0.object_type(store);
        let GcType::Struct(fields) = &ty else {
            unreachable!("a StructRef holds a struct")
        };
        let field = *fields.get(index).ok_or_else(|| {
            Error::usage(format!(
                "field {index} of a struct of {} fields",
                fields.len()
            ))
        })?;
        Ok((field, u64::from(GcLayout::new(&ty).field_offsets[index])))
    }

    /// The value of field `index` (a packed field zero-extended).
    pub fn field(&self, mut store: impl AsContextMut, index: usize) -> Result<Val, Error> {
        let mut ctx = store.as_context_mut();
        let store = ctx.opaque_mut();
        let (field, offset) = self.field_at(store, index)?;
        Ok(read_slot(store, &self.0, offset, field.storage))
    }

    /// Sets mutable field `index` to `value`, which must have the field's type.
    pub fn set_field(
        &self,
        mut store: impl AsContextMut,
        index: usize,
        value: Val,
    ) -> Result<(), Error> {
        let mut ctx = store.as_context_mut();
        let store = ctx.opaque_mut();
        let (field, offset) = self.field_at(store, index)?;
        write_slot(store, &self.0, offset, field, &value)
    }
}

impl ArrayRef {
    /// The array as an [`AnyRef`] (to pass to Wasm as a [`Val::AnyRef`]).
    pub fn to_anyref(&self) -> AnyRef {
        self.0.clone()
    }

    /// The number of elements.
    pub fn len(&self, store: impl AsContext) -> u32 {
        let ctx = store.as_context();
        ctx.opaque().assert_owns(self.0.store, "arrayref");
        // SAFETY: the handle roots the array, so it is alive.
        unsafe { wazerox_runtime::gc_array::array_length(self.0.to_word()) }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self, store: impl AsContext) -> bool {
        self.len(store) == 0
    }

    /// The element type and the offset of element `index`, checked against
    /// the length.
    fn element_at(&self, store: &StoreOpaque, index: u32) -> Result<(FieldType, u64), Error> {
        let GcType::Array(element) = self.0.object_type(store) else {
            unreachable!("an ArrayRef holds an array")
        };
        // SAFETY: the handle roots the array, so it is alive.
        let length = unsafe { wazerox_runtime::gc_array::array_length(self.0.to_word()) };
        if index >= length {
            return Err(Error::usage(format!(
                "element {index} of an array of {length} elements"
            )));
        }
        let offset =
            u64::from(gc::HEADER_SIZE) + u64::from(index) * u64::from(element.storage.size());
        Ok((element, offset))
    }

    /// Element `index` (a packed element zero-extended).
    pub fn get(&self, mut store: impl AsContextMut, index: u32) -> Result<Val, Error> {
        let mut ctx = store.as_context_mut();
        let store = ctx.opaque_mut();
        let (element, offset) = self.element_at(store, index)?;
        Ok(read_slot(store, &self.0, offset, element.storage))
    }

    /// Sets element `index` of a mutable array to `value`, which must have the
    /// element type.
    pub fn set(&self, mut store: impl AsContextMut, index: u32, value: Val) -> Result<(), Error> {
        let mut ctx = store.as_context_mut();
        let store = ctx.opaque_mut();
        let (element, offset) = self.element_at(store, index)?;
        write_slot(store, &self.0, offset, element, &value)
    }
}
