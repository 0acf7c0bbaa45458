//! References of the GC proposal's any hierarchy as the host sees them
//! (docs/gc.md): [`AnyRef`], an owned root.

use crate::store::{AsContext, AsContextMut, StoreOpaque};
use crate::values::ExternRef;
use std::sync::Arc;
use wazerox_environ::gc;
use wazerox_environ::{ConcreteType, HeapType};

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
    pub fn to_externref(&self, store: impl AsContext) -> ExternRef {
        let ctx = store.as_context();
        let store = ctx.opaque();
        store.assert_owns(self.store, "anyref");
        ExternRef::from_raw(store, gc::extern_from_any(*self.word) as usize)
            .expect("a non-null anyref externalizes to a non-null externref")
    }
}
