//! Exception tags and exception references.
//!
//! A [`Tag`] is an exception tag of a store: exported by an instance, or created by
//! the host with [`Tag::new`] (and then importable). An [`ExnRef`] is an exception
//! object: thrown by Wasm, or created by the host with [`ExnRef::new`]. An
//! exception that leaves a call into Wasm uncaught comes back as an [`Error`] of
//! kind [`ErrorKind::Exception`](crate::ErrorKind::Exception), from which
//! [`Error::as_exception`] gives the `ExnRef`; a host function throws a Wasm
//! exception by returning [`Error::throw`]. Traps are never exceptions.

use crate::error::Error;
use crate::func::{val_from_raw, val_to_raw};
use crate::store::{AsContext, AsContextMut, StoreOpaque};
use crate::values::Val;
use wazerox_environ::FuncType;
use wazerox_runtime::exceptions::{ExceptionRef, VMTag};

/// An exception tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag {
    pub(crate) store: u64,
    pub(crate) index: usize,
}

impl Tag {
    /// A new tag, distinct from every other, whose exceptions carry values of
    /// `ty`'s parameter types (`ty` has no results).
    pub fn new(mut store: impl AsContextMut, ty: &FuncType) -> Result<Tag, Error> {
        if !ty.results().is_empty() {
            return Err(Error::usage("a tag's function type has no results"));
        }
        // Exception objects are not scanned by the collector (docs/gc.md).
        if ty.params().iter().any(|p| {
            p.as_ref()
                .is_some_and(|r| r.kind() == wazerox_environ::RefKind::Any)
        }) {
            return Err(Error::with_kind(
                crate::ErrorKind::Unsupported,
                "unsupported feature: GC references in exception payloads",
            ));
        }
        let mut ctx = store.as_context_mut();
        let store = ctx.opaque_mut();
        let type_id = store.engine().type_id(ty);
        let tag = Box::new(VMTag {
            ty: ty.clone(),
            type_id,
        });
        let ptr: *const VMTag = &*tag;
        store.host_tags.push(tag);
        Ok(Tag::register(store, ptr))
    }

    /// The handle of the tag at `ptr` (the same tag always gets the same handle).
    pub(crate) fn register(store: &mut StoreOpaque, ptr: *const VMTag) -> Tag {
        let index = match store.tag_handles.get(&(ptr as usize)) {
            Some(i) => *i,
            None => {
                store.tags.push(ptr);
                let i = store.tags.len() - 1;
                store.tag_handles.insert(ptr as usize, i);
                i
            }
        };
        Tag {
            store: store.id,
            index,
        }
    }

    pub(crate) fn ptr(&self, store: &StoreOpaque) -> *const VMTag {
        store.tags[self.index]
    }

    /// The tag's type: its params are the exception's values.
    pub fn ty(&self, store: impl AsContext) -> FuncType {
        let ctx = store.as_context();
        let store = ctx.opaque();
        // SAFETY: tags of a store live as long as the store.
        unsafe { (*self.ptr(store)).ty.clone() }
    }

    pub(crate) fn type_id(&self, store: &StoreOpaque) -> u32 {
        // SAFETY: as in `ty`.
        unsafe { (*self.ptr(store)).type_id }
    }
}

/// A reference to an exception object of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExnRef {
    pub(crate) store: u64,
    /// Address of the exception object (never 0).
    pub(crate) raw: usize,
}

impl ExnRef {
    /// A new exception of `tag` carrying `fields` (typed as the tag's params),
    /// e.g. for a host function to throw with [`Error::throw`].
    pub fn new(mut store: impl AsContextMut, tag: &Tag, fields: &[Val]) -> Result<ExnRef, Error> {
        let mut ctx = store.as_context_mut();
        let store = ctx.opaque_mut();
        store.check(tag.store)?;
        let ptr = tag.ptr(store);
        // SAFETY: the store's tags are live.
        let params = unsafe { (*ptr).ty.params().to_vec() };
        if params.len() != fields.len()
            || params
                .iter()
                .zip(fields)
                .any(|(t, v)| !v.matches_ty(store, *t))
        {
            return Err(Error::usage("exception fields do not match the tag's type"));
        }
        let raws = fields
            .iter()
            .map(|v| val_to_raw(store, v))
            .collect::<Result<Vec<_>, _>>()?;
        // SAFETY: this thread runs the store; `ptr` is live.
        let raw = unsafe { store.vm_store_context.exceptions.allocate(ptr) } as usize;
        for (i, value) in raws.iter().enumerate() {
            // SAFETY: the object has `params.len()` slots, nothing else reads it yet.
            unsafe { ExceptionRef(raw).set_value(i, value.get_u128()) };
        }
        Ok(ExnRef::pinned(store.id, raw))
    }

    /// The handle of the object at `raw` (non-null), which from now on lives
    /// as long as its store: the collector cannot see the host's handles.
    pub(crate) fn pinned(store: u64, raw: usize) -> ExnRef {
        // SAFETY: `raw` is a live exception object of the store `store` (every
        // caller got it from the store's heap or its compiled code).
        unsafe { ExceptionRef(raw).pin() };
        ExnRef { store, raw }
    }

    pub(crate) fn from_raw(store: &StoreOpaque, raw: usize) -> Option<ExnRef> {
        (raw != 0).then(|| ExnRef::pinned(store.id, raw))
    }

    pub(crate) fn to_raw(self) -> usize {
        self.raw
    }

    /// The tag the exception was thrown with.
    pub fn tag(&self, mut store: impl AsContextMut) -> Result<Tag, Error> {
        let mut ctx = store.as_context_mut();
        let store = ctx.opaque_mut();
        store.check(self.store)?;
        // SAFETY: exception objects of a store live as long as the store.
        let ptr = unsafe { ExceptionRef(self.raw).tag() };
        Ok(Tag::register(store, ptr))
    }

    /// The values the exception carries.
    pub fn fields(&self, mut store: impl AsContextMut) -> Result<Vec<Val>, Error> {
        let mut ctx = store.as_context_mut();
        let store = ctx.opaque_mut();
        store.check(self.store)?;
        let exn = ExceptionRef(self.raw);
        // SAFETY: as in `tag`; the object has one slot per param of its tag.
        let params = unsafe { (*exn.tag()).ty.params().to_vec() };
        let mut fields = Vec::with_capacity(params.len());
        for (i, ty) in params.into_iter().enumerate() {
            // SAFETY: as above.
            let raw = wazerox_runtime::vmcontext::ValRaw::u128(unsafe { exn.value(i) });
            fields.push(val_from_raw(store, ty, &raw)?);
        }
        Ok(fields)
    }
}
