//! Values and the types of externals, as the API presents them.

use crate::func::Func;
use crate::store::{AsContextMut, StoreOpaque};
use std::any::Any;
use std::sync::Arc;
use wazerox_environ::{ConcreteType, EntityType, FuncType, HeapType, RefKind, ValType};

/// A Wasm value.
#[derive(Debug, Clone)]
pub enum Val {
    /// A 32-bit integer.
    I32(i32),
    /// A 64-bit integer.
    I64(i64),
    /// Bits of an `f32` (NaN payloads are preserved).
    F32(u32),
    /// Bits of an `f64`.
    F64(u64),
    /// A 128-bit vector, lane 0 in the lowest bits.
    V128(u128),
    /// A function reference (`None`: null).
    FuncRef(Option<Func>),
    /// A host reference (`None`: null).
    ExternRef(Option<ExternRef>),
    /// An exception reference (`None`: null).
    ExnRef(Option<crate::ExnRef>),
    /// A reference of the GC any hierarchy (`None`: null).
    AnyRef(Option<crate::AnyRef>),
}

impl Val {
    /// The value's type.
    pub fn ty(&self) -> ValType {
        match self {
            Val::I32(_) => ValType::I32,
            Val::I64(_) => ValType::I64,
            Val::F32(_) => ValType::F32,
            Val::F64(_) => ValType::F64,
            Val::V128(_) => ValType::V128,
            Val::FuncRef(_) => ValType::FUNCREF,
            Val::ExternRef(_) => ValType::EXTERNREF,
            Val::ExnRef(_) => ValType::EXNREF,
            Val::AnyRef(_) => ValType::ANYREF,
        }
    }

    /// Whether this value has type `ty` or a subtype of it: null only for a
    /// nullable reference type, a function only for a function type it has.
    /// References of another store are left to `val_to_raw`, which refuses them.
    pub(crate) fn matches_ty(&self, store: &StoreOpaque, ty: ValType) -> bool {
        let ValType::Ref(expected) = ty else {
            return self.ty() == ty;
        };
        let (kind, is_null) = match self {
            Val::FuncRef(f) => (RefKind::Func, f.is_none()),
            Val::ExternRef(e) => (RefKind::Extern, e.is_none()),
            Val::ExnRef(e) => (RefKind::Exn, e.is_none()),
            Val::AnyRef(a) => (RefKind::Any, a.is_none()),
            _ => return false,
        };
        if kind != expected.kind() {
            return false;
        }
        if is_null {
            return expected.nullable;
        }
        match (self, expected.heap) {
            (_, HeapType::Func | HeapType::Extern | HeapType::Exn) => true,
            (Val::AnyRef(Some(a)), heap) => a.store != store.id || a.matches_heap(store, heap),
            (Val::FuncRef(Some(f)), HeapType::Concrete(ConcreteType::Engine(id))) => {
                f.store != store.id || store.engine().is_subtype(Func::type_id(*f, store), id)
            }
            _ => false,
        }
    }
    /// The value, if it is an `i32`.
    pub fn i32(&self) -> Option<i32> {
        if let Val::I32(v) = self {
            Some(*v)
        } else {
            None
        }
    }
    /// A `v128` as a little-endian `u128`: lane 0 is the lowest bits.
    pub fn v128(&self) -> Option<u128> {
        if let Val::V128(v) = self {
            Some(*v)
        } else {
            None
        }
    }
    /// The value, if it is an `i64`.
    pub fn i64(&self) -> Option<i64> {
        if let Val::I64(v) = self {
            Some(*v)
        } else {
            None
        }
    }
    /// The value, if it is an `f32`.
    pub fn f32(&self) -> Option<f32> {
        if let Val::F32(v) = self {
            Some(f32::from_bits(*v))
        } else {
            None
        }
    }
    /// The value, if it is an `f64`.
    pub fn f64(&self) -> Option<f64> {
        if let Val::F64(v) = self {
            Some(f64::from_bits(*v))
        } else {
            None
        }
    }
    /// The default (zero or null) value of a type.
    pub fn default_for(ty: ValType) -> Val {
        match ty {
            ValType::I32 => Val::I32(0),
            ValType::I64 => Val::I64(0),
            ValType::F32 => Val::F32(0),
            ValType::F64 => Val::F64(0),
            ValType::V128 => Val::V128(0),
            ValType::Ref(r) => match r.kind() {
                RefKind::Func => Val::FuncRef(None),
                RefKind::Extern => Val::ExternRef(None),
                RefKind::Exn => Val::ExnRef(None),
                RefKind::Any => Val::AnyRef(None),
            },
        }
    }
}

impl From<i32> for Val {
    fn from(v: i32) -> Val {
        Val::I32(v)
    }
}
impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::I64(v)
    }
}
impl From<f32> for Val {
    fn from(v: f32) -> Val {
        Val::F32(v.to_bits())
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Val {
        Val::F64(v.to_bits())
    }
}

/// A reference value, for table operations.
#[derive(Debug, Clone)]
pub enum Ref {
    /// A function reference (`None`: null).
    Func(Option<Func>),
    /// A host reference (`None`: null).
    Extern(Option<ExternRef>),
}

impl Ref {
    /// The reference as a [`Val`].
    pub fn into_val(self) -> Val {
        match self {
            Ref::Func(f) => Val::FuncRef(f),
            Ref::Extern(e) => Val::ExternRef(e),
        }
    }
}

/// An opaque host value passed to Wasm as an `externref`. It lives as long as its
/// store (stores do not collect externrefs yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExternRef {
    pub(crate) store: u64,
    /// 1-based handle; 0 is null inside Wasm.
    pub(crate) handle: usize,
}

impl ExternRef {
    /// A reference to the host value `value`, owned by `store`.
    pub fn new<T: Any + Send + Sync>(mut store: impl AsContextMut, value: T) -> ExternRef {
        let mut ctx = store.as_context_mut();
        let store = ctx.opaque_mut();
        store.externrefs.push(Arc::new(value));
        ExternRef {
            store: store.id,
            handle: store.externrefs.len(),
        }
    }

    /// The host value. Panics if used with another store.
    pub fn data<'a, T: 'a>(
        &self,
        store: impl Into<crate::store::StoreContext<'a, T>>,
    ) -> Option<&'a (dyn Any + Send + Sync)> {
        let store: &'a StoreOpaque = store.into().opaque();
        store.assert_owns(self.store, "externref");
        store.externrefs.get(self.handle - 1).map(|a| &**a)
    }

    pub(crate) fn from_raw(store: &StoreOpaque, raw: usize) -> Option<ExternRef> {
        (raw != 0).then_some(ExternRef {
            store: store.id,
            handle: raw,
        })
    }

    /// [`ExternRef::from_raw`] for a value reaching the host: an externalized
    /// object becomes a root for the store's life (an `ExternRef` is `Copy`,
    /// so nothing says when the host is done with it).
    pub(crate) fn from_raw_rooted(store: &mut StoreOpaque, raw: usize) -> Option<ExternRef> {
        let object = wazerox_environ::gc::traced_word(wazerox_environ::RefKind::Extern, raw as u64);
        if wazerox_environ::gc::is_object(object) {
            store.externalized_roots.insert(object);
        }
        ExternRef::from_raw(store, raw)
    }

    pub(crate) fn to_raw(self) -> usize {
        self.handle
    }
}

/// Whether a global can be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// Immutable.
    Const,
    /// Mutable (`global.set`, [`Global::set`](crate::Global::set)).
    Var,
}

/// The type of a global: its value type and mutability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalType {
    content: ValType,
    mutability: Mutability,
}

impl GlobalType {
    /// A global type.
    pub fn new(content: ValType, mutability: Mutability) -> Self {
        GlobalType {
            content,
            mutability,
        }
    }
    /// The type of the global's value.
    pub fn content(&self) -> ValType {
        self.content
    }
    /// Whether the global can be set.
    pub fn mutability(&self) -> Mutability {
        self.mutability
    }
    pub(crate) fn from_frontend(g: wazerox_environ::GlobalType) -> Self {
        GlobalType::new(
            g.content,
            if g.mutable {
                Mutability::Var
            } else {
                Mutability::Const
            },
        )
    }
}

/// The type of a table: element type and limits (in elements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableType {
    pub(crate) inner: wazerox_environ::TableType,
}

impl TableType {
    /// A 32-bit table type of `element`s, with `minimum` elements, growing to at most `maximum`.
    pub fn new(element: ValType, minimum: u32, maximum: Option<u32>) -> Self {
        TableType {
            inner: wazerox_environ::TableType {
                element,
                minimum: minimum.into(),
                maximum: maximum.map(u64::from),
                table64: false,
            },
        }
    }
    /// A table indexed by `i64` (table64, from the memory64 proposal).
    pub fn new64(element: ValType, minimum: u64, maximum: Option<u64>) -> Self {
        TableType {
            inner: wazerox_environ::TableType {
                element,
                minimum,
                maximum,
                table64: true,
            },
        }
    }
    /// Whether indices are `i64` (table64).
    pub fn is_64(&self) -> bool {
        self.inner.table64
    }
    /// The type of the table's elements.
    pub fn element(&self) -> ValType {
        self.inner.element
    }
    /// Minimum (initial) number of elements.
    pub fn minimum(&self) -> u64 {
        self.inner.minimum
    }
    /// Maximum number of elements, if any.
    pub fn maximum(&self) -> Option<u64> {
        self.inner.maximum
    }
}

/// The type of a memory: limits in pages, 64-bit or not, shared or not, page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryType {
    pub(crate) inner: wazerox_environ::MemoryType,
}

impl MemoryType {
    /// A 32-bit, unshared memory with limits in 64 KiB pages.
    pub fn new(minimum: u32, maximum: Option<u32>) -> Self {
        MemoryType {
            inner: wazerox_environ::MemoryType::new(minimum.into(), maximum.map(u64::from)),
        }
    }
    /// A 64-bit (memory64), unshared memory with limits in 64 KiB pages.
    pub fn new64(minimum: u64, maximum: Option<u64>) -> Self {
        MemoryType {
            inner: wazerox_environ::MemoryType {
                memory64: true,
                ..wazerox_environ::MemoryType::new(minimum, maximum)
            },
        }
    }
    /// The same type with pages of `1 << log2` bytes: 16 (64 KiB, the default) or
    /// 0 (one-byte pages, the custom-page-sizes proposal). Other sizes are refused
    /// when the memory is created.
    pub fn with_page_size_log2(mut self, log2: u8) -> Self {
        self.inner.page_size_log2 = log2;
        self
    }
    /// Whether addresses are `i64` (memory64).
    pub fn is_64(&self) -> bool {
        self.inner.memory64
    }
    /// Bytes per page.
    pub fn page_size(&self) -> u64 {
        self.inner.page_size()
    }
    /// A shared 32-bit memory (threads proposal); shared memories need a maximum.
    pub fn shared(minimum: u32, maximum: u32) -> Self {
        let mut ty = MemoryType::new(minimum, Some(maximum));
        ty.inner.shared = true;
        ty
    }
    /// Minimum (initial) size in pages.
    pub fn minimum(&self) -> u64 {
        self.inner.minimum
    }
    /// Maximum size in pages, if any.
    pub fn maximum(&self) -> Option<u64> {
        self.inner.maximum
    }
    /// Whether the memory is shared between threads.
    pub fn is_shared(&self) -> bool {
        self.inner.shared
    }
}

/// The type of an import or export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternType {
    /// A function's type.
    Func(FuncType),
    /// A global's type.
    Global(GlobalType),
    /// A table's type.
    Table(TableType),
    /// A memory's type.
    Memory(MemoryType),
    /// An exception tag: its params are the exception's values.
    Tag(FuncType),
}

impl ExternType {
    pub(crate) fn from_entity(e: EntityType) -> Self {
        match e {
            EntityType::Function(f) => ExternType::Func(f),
            EntityType::Global(g) => ExternType::Global(GlobalType::from_frontend(g)),
            EntityType::Table(t) => ExternType::Table(TableType { inner: t }),
            EntityType::Memory(m) => ExternType::Memory(MemoryType { inner: m }),
            EntityType::Tag(t) => ExternType::Tag(t),
        }
    }
}
