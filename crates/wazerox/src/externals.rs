//! Memories, tables and globals, and `Extern`, the sum of everything importable.

use crate::error::{Error, ErrorKind};
use crate::func::{Func, val_from_raw, val_to_raw};
use crate::store::{AsContext, AsContextMut, GlobalData, StoreOpaque};
use crate::values::{ExternType, GlobalType, MemoryType, Mutability, Ref, TableType, Val};
use wazerox_environ::ValType;
use wazerox_runtime::instance::Growth;
use wazerox_runtime::memory::LinearMemory;
use wazerox_runtime::table::Table as RuntimeTable;
use wazerox_runtime::vmcontext::{VMGlobalDefinition, ValRaw};

/// Anything an instance can import or export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extern {
    /// A function.
    Func(Func),
    /// A global.
    Global(Global),
    /// A table.
    Table(Table),
    /// A memory owned by one store.
    Memory(Memory),
    /// A memory shared between threads and stores (threads proposal).
    SharedMemory(SharedMemory),
    /// An exception tag.
    Tag(crate::Tag),
}

impl Extern {
    /// The function, if this is one.
    pub fn into_func(self) -> Option<Func> {
        if let Extern::Func(f) = self {
            Some(f)
        } else {
            None
        }
    }
    /// The global, if this is one.
    pub fn into_global(self) -> Option<Global> {
        if let Extern::Global(g) = self {
            Some(g)
        } else {
            None
        }
    }
    /// The table, if this is one.
    pub fn into_table(self) -> Option<Table> {
        if let Extern::Table(t) = self {
            Some(t)
        } else {
            None
        }
    }
    /// The (unshared) memory, if this is one.
    pub fn into_memory(self) -> Option<Memory> {
        if let Extern::Memory(m) = self {
            Some(m)
        } else {
            None
        }
    }
    /// The shared memory, if this is one.
    pub fn into_shared_memory(self) -> Option<SharedMemory> {
        if let Extern::SharedMemory(m) = self {
            Some(m)
        } else {
            None
        }
    }
    /// The item's type.
    pub fn ty(&self, store: impl AsContext) -> ExternType {
        let ctx = store.as_context();
        let store = ctx.opaque();
        match self {
            Extern::Func(f) => {
                store.assert_owns(f.store, "function");
                ExternType::Func(store.funcs[f.index].ty.clone())
            }
            Extern::Global(g) => ExternType::Global(g.ty_in(store)),
            Extern::Table(t) => ExternType::Table(t.ty_in(store)),
            Extern::Memory(m) => ExternType::Memory(m.ty_in(store)),
            Extern::SharedMemory(m) => ExternType::Memory(m.ty()),
            Extern::Tag(t) => ExternType::Tag(t.ty(ctx)),
        }
    }
    /// The store the item belongs to; `None` for items that belong to no store.
    pub(crate) fn store_id(&self) -> Option<u64> {
        match self {
            Extern::Func(f) => Some(f.store),
            Extern::Global(g) => Some(g.store),
            Extern::Table(t) => Some(t.store),
            Extern::Memory(m) => Some(m.store),
            Extern::SharedMemory(_) => None,
            Extern::Tag(t) => Some(t.store),
        }
    }
}

impl From<Func> for Extern {
    fn from(f: Func) -> Self {
        Extern::Func(f)
    }
}
impl From<Global> for Extern {
    fn from(g: Global) -> Self {
        Extern::Global(g)
    }
}
impl From<Table> for Extern {
    fn from(t: Table) -> Self {
        Extern::Table(t)
    }
}
impl From<Memory> for Extern {
    fn from(m: Memory) -> Self {
        Extern::Memory(m)
    }
}
impl From<crate::Tag> for Extern {
    fn from(t: crate::Tag) -> Self {
        Extern::Tag(t)
    }
}
impl From<SharedMemory> for Extern {
    fn from(m: SharedMemory) -> Self {
        Extern::SharedMemory(m)
    }
}

/// A linear memory that threads share: not tied to a store, `Send + Sync`, cheap to
/// clone. Every instance that imports it (in any store, on any thread) sees the same
/// bytes; it never moves, and growth on one thread is seen by all.
#[derive(Clone)]
pub struct SharedMemory(pub(crate) std::sync::Arc<LinearMemory>);

impl std::fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedMemory({} pages)", self.0.size_pages())
    }
}

impl PartialEq for SharedMemory {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for SharedMemory {}

impl SharedMemory {
    /// A new shared memory; `ty` must be shared and have a maximum.
    pub fn new(engine: &crate::Engine, ty: MemoryType) -> Result<SharedMemory, Error> {
        if !ty.is_shared() || ty.maximum().is_none() {
            return Err(Error::usage(
                "a shared memory needs a shared type with a maximum",
            ));
        }
        let memory = LinearMemory::for_type(&ty.inner, &engine.config().memory_style())
            .map_err(|e| Error::with_kind(ErrorKind::Instantiation, e.to_string()))?;
        Ok(SharedMemory(std::sync::Arc::new(memory)))
    }

    /// The memory's type (limits in pages, shared).
    pub fn ty(&self) -> MemoryType {
        MemoryType { inner: self.0.ty() }
    }

    /// Size in 64 KiB pages.
    pub fn size(&self) -> u64 {
        self.0.size_pages()
    }

    /// Current size in bytes.
    pub fn data_size(&self) -> usize {
        self.0.byte_size() as usize
    }

    /// Grows by `delta` pages (atomically with respect to other growers); returns
    /// the previous size in pages.
    pub fn grow(&self, delta: u64) -> Result<u64, Error> {
        self.0
            .grow(delta)
            .ok_or_else(|| Error::usage(format!("failed to grow shared memory by {delta} pages")))
    }

    /// The bytes, as cells: other threads may read and write them at any time, so
    /// they are never `&[u8]` or `&mut [u8]`. Access them through raw pointers
    /// (`UnsafeCell::get`) or, more simply, [`SharedMemory::read`] and
    /// [`SharedMemory::write`]. The slice covers the size at the time of the call;
    /// the memory never shrinks or moves, so it stays valid.
    pub fn data(&self) -> &[std::cell::UnsafeCell<u8>] {
        // SAFETY: the first `data_size` bytes are mapped for as long as `self.0`
        // lives (growth only adds pages, nothing moves); `UnsafeCell<u8>` has the
        // layout of `u8` and allows mutation through shared references.
        unsafe {
            let base = (*self.0.vmmemory()).base;
            std::slice::from_raw_parts(base.cast::<std::cell::UnsafeCell<u8>>(), self.data_size())
        }
    }

    /// Copies bytes out. Other threads may write concurrently; the copy sees each
    /// byte either before or after their writes.
    pub fn read(&self, offset: usize, buffer: &mut [u8]) -> Result<(), Error> {
        let end = offset
            .checked_add(buffer.len())
            .filter(|e| *e <= self.data_size());
        end.ok_or_else(|| Error::usage("shared memory read out of bounds"))?;
        // SAFETY: the range is within the accessible part of a memory that never
        // moves or shrinks.
        unsafe {
            let base = (*self.0.vmmemory()).base;
            std::ptr::copy_nonoverlapping(base.add(offset), buffer.as_mut_ptr(), buffer.len());
        }
        Ok(())
    }

    /// Copies bytes in (see [`SharedMemory::read`] about concurrency).
    pub fn write(&self, offset: usize, buffer: &[u8]) -> Result<(), Error> {
        let end = offset
            .checked_add(buffer.len())
            .filter(|e| *e <= self.data_size());
        end.ok_or_else(|| Error::usage("shared memory write out of bounds"))?;
        // SAFETY: as for `read`.
        unsafe {
            let base = (*self.0.vmmemory()).base;
            std::ptr::copy_nonoverlapping(buffer.as_ptr(), base.add(offset), buffer.len());
        }
        Ok(())
    }

    pub(crate) fn ptr(&self) -> *mut LinearMemory {
        std::sync::Arc::as_ptr(&self.0).cast_mut()
    }
}

/// A linear memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Memory {
    pub(crate) store: u64,
    pub(crate) index: usize,
}

impl Memory {
    /// A new unshared memory in `store` (a shared type is an error: shared
    /// memories belong to no store, see [`SharedMemory::new`]).
    pub fn new(mut store: impl AsContextMut, ty: MemoryType) -> Result<Memory, Error> {
        if ty.is_shared() {
            return Err(Error::usage(
                "Memory::new was given a shared memory type; use SharedMemory::new",
            ));
        }
        let mut ctx = store.as_context_mut();
        ctx.0.check_counts(0, 1, 0)?;
        let growth = Growth::Memory {
            current: 0,
            desired: ty.minimum().saturating_mul(ty.page_size()) as usize,
            maximum: ty
                .maximum()
                .map(|m| m.saturating_mul(ty.page_size()) as usize),
        };
        if !ctx.0.growing(growth)? {
            return Err(Error::with_kind(
                ErrorKind::Instantiation,
                "memory refused by the store's resource limiter",
            ));
        }
        let store = ctx.opaque_mut();
        store.memory_count += 1;
        let style = store.engine.config().memory_style();
        let mut memory = Box::new(
            LinearMemory::for_type(&ty.inner, &style)
                .map_err(|e| Error::with_kind(ErrorKind::Instantiation, e.to_string()))?,
        );
        let ptr: *mut LinearMemory = &mut *memory;
        store.host_memories.push(memory);
        Ok(Memory::register(store, ptr))
    }

    pub(crate) fn register(store: &mut StoreOpaque, ptr: *mut LinearMemory) -> Memory {
        // SAFETY: `ptr` is a live memory of this store.
        debug_assert!(
            !unsafe { (*ptr).is_shared() },
            "shared memories are SharedMemory"
        );
        let index = match store.memory_handles.get(&(ptr as usize)) {
            Some(i) => *i,
            None => {
                store.memories.push(ptr);
                store
                    .memory_handles
                    .insert(ptr as usize, store.memories.len() - 1);
                store.memories.len() - 1
            }
        };
        Memory {
            store: store.id,
            index,
        }
    }

    pub(crate) fn ptr(&self, store: &StoreOpaque) -> *mut LinearMemory {
        store.assert_owns(self.store, "memory");
        store.memories[self.index]
    }

    fn linear<'a>(&self, store: &'a StoreOpaque) -> &'a LinearMemory {
        // SAFETY: memories live as long as their store.
        unsafe { &*self.ptr(store) }
    }

    pub(crate) fn ty_in(&self, store: &StoreOpaque) -> MemoryType {
        MemoryType {
            inner: self.linear(store).ty(),
        }
    }

    /// The memory's type, with its current size as the minimum.
    pub fn ty(&self, store: impl AsContext) -> MemoryType {
        self.ty_in(store.as_context().opaque())
    }

    /// The memory's bytes. Panics if used with another store.
    pub fn data<'a, T: 'a>(&self, store: impl Into<crate::StoreContext<'a, T>>) -> &'a [u8] {
        self.linear(store.into().opaque()).data()
    }

    /// The memory's bytes, for reading and writing from the host.
    pub fn data_mut<'a, T: 'a>(
        &self,
        store: impl Into<crate::StoreContextMut<'a, T>>,
    ) -> &'a mut [u8] {
        let ctx = store.into();
        let ptr = self.ptr(&ctx.0.opaque);
        // SAFETY: the exclusive store borrow for 'a guarantees no other access.
        unsafe { (*ptr).data_mut() }
    }

    /// Size in 64 KiB pages.
    pub fn size(&self, store: impl AsContext) -> u64 {
        self.linear(store.as_context().opaque()).size_pages()
    }

    /// Current size in bytes.
    pub fn data_size(&self, store: impl AsContext) -> usize {
        self.linear(store.as_context().opaque()).byte_size() as usize
    }

    /// Grows by `delta` pages; returns the previous size in pages.
    pub fn grow(&self, mut store: impl AsContextMut, delta: u64) -> Result<u64, Error> {
        let mut ctx = store.as_context_mut();
        let ptr = self.ptr(ctx.opaque_mut());
        let refused = || Error::usage(format!("failed to grow memory by {delta} pages"));
        if delta != 0 && ctx.0.limiter.is_some() {
            // SAFETY: the memory is live for the store's life.
            let memory = unsafe { &*ptr };
            let current = memory.byte_size();
            let page_size = memory.ty().page_size();
            let desired = delta
                .checked_mul(page_size)
                .and_then(|d| d.checked_add(current))
                .ok_or_else(refused)?;
            let growth = Growth::Memory {
                current: current as usize,
                desired: usize::try_from(desired).map_err(|_| refused())?,
                maximum: memory
                    .maximum_pages()
                    .map(|m| m.saturating_mul(page_size) as usize),
            };
            if !ctx.0.growing(growth)? {
                return Err(Error::usage(format!(
                    "growing memory by {delta} pages refused by the store's resource limiter"
                )));
            }
        }
        // SAFETY: the memory is live; growth takes `&self`.
        unsafe { (*ptr).grow(delta) }
            .ok_or_else(|| Error::usage(format!("failed to grow memory by {delta} pages")))
    }

    /// Copies `buffer.len()` bytes at `offset` into `buffer`; an error if the range is out of bounds.
    pub fn read(
        &self,
        store: impl AsContext,
        offset: usize,
        buffer: &mut [u8],
    ) -> Result<(), Error> {
        let data = self.linear(store.as_context().opaque()).data();
        let src = offset
            .checked_add(buffer.len())
            .and_then(|end| data.get(offset..end))
            .ok_or_else(|| Error::usage("memory read out of bounds"))?;
        buffer.copy_from_slice(src);
        Ok(())
    }

    /// Copies `buffer` to `offset`; an error if the range is out of bounds.
    pub fn write(
        &self,
        mut store: impl AsContextMut,
        offset: usize,
        buffer: &[u8],
    ) -> Result<(), Error> {
        let mut ctx = store.as_context_mut();
        let ptr = self.ptr(ctx.opaque_mut());
        // SAFETY: exclusive store access; the memory is live.
        let data = unsafe { (*ptr).data_mut() };
        let dst = offset
            .checked_add(buffer.len())
            .and_then(|end| data.get_mut(offset..end))
            .ok_or_else(|| Error::usage("memory write out of bounds"))?;
        dst.copy_from_slice(buffer);
        Ok(())
    }
}

impl<'a, T: AsContextMut> From<&'a mut T> for crate::StoreContextMut<'a, T::Data> {
    fn from(t: &'a mut T) -> Self {
        t.as_context_mut()
    }
}

/// A global variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Global {
    pub(crate) store: u64,
    pub(crate) index: usize,
}

impl Global {
    /// A new global of type `ty` holding `value`, owned by `store` (for imports); an error if `value` is not of `ty`'s type.
    pub fn new(mut store: impl AsContextMut, ty: GlobalType, value: Val) -> Result<Global, Error> {
        let mut ctx = store.as_context_mut();
        let store = ctx.opaque_mut();
        if !value.matches_ty(store, ty.content()) {
            return Err(Error::usage(format!(
                "global of type {} initialised with a {}",
                ty.content(),
                value.ty()
            )));
        }
        let raw = val_to_raw(store, &value)?;
        let mut definition = Box::new(VMGlobalDefinition { bytes: raw.bytes });
        let ptr: *mut VMGlobalDefinition = &mut *definition;
        store.host_globals.push(definition);
        let ty = wazerox_environ::GlobalType {
            content: ty.content(),
            mutable: ty.mutability() == Mutability::Var,
        };
        Ok(Global::register(store, ptr, ty))
    }

    pub(crate) fn register(
        store: &mut StoreOpaque,
        definition: *mut VMGlobalDefinition,
        ty: wazerox_environ::GlobalType,
    ) -> Global {
        let index = match store.global_handles.get(&(definition as usize)) {
            Some(i) => *i,
            None => {
                store.globals.push(GlobalData { definition, ty });
                store
                    .global_handles
                    .insert(definition as usize, store.globals.len() - 1);
                store.globals.len() - 1
            }
        };
        Global {
            store: store.id,
            index,
        }
    }

    pub(crate) fn data<'a>(&self, store: &'a StoreOpaque) -> &'a GlobalData {
        store.assert_owns(self.store, "global");
        &store.globals[self.index]
    }

    pub(crate) fn ty_in(&self, store: &StoreOpaque) -> GlobalType {
        GlobalType::from_frontend(self.data(store).ty)
    }

    /// The global's type.
    pub fn ty(&self, store: impl AsContext) -> GlobalType {
        self.ty_in(store.as_context().opaque())
    }

    /// The global's current value.
    pub fn get(&self, mut store: impl AsContextMut) -> Val {
        let mut ctx = store.as_context_mut();
        let store = ctx.opaque_mut();
        let data = self.data(store);
        let ty = data.ty.content;
        // SAFETY: global storage lives as long as the store.
        let raw = ValRaw {
            bytes: unsafe { (*data.definition).bytes },
        };
        val_from_raw(store, ty, &raw).unwrap_or(Val::default_for(ty))
    }

    /// Sets the global; an error if it is immutable or `value` has another type.
    pub fn set(&self, mut store: impl AsContextMut, value: Val) -> Result<(), Error> {
        let mut ctx = store.as_context_mut();
        let store = ctx.opaque_mut();
        let data = self.data(store);
        if !data.ty.mutable {
            return Err(Error::usage("cannot set an immutable global"));
        }
        if !value.matches_ty(store, data.ty.content) {
            return Err(Error::usage(format!(
                "global of type {} set to a {}",
                data.ty.content,
                value.ty()
            )));
        }
        let definition = data.definition;
        let raw = val_to_raw(store, &value)?;
        // SAFETY: exclusive store access; storage lives as long as the store.
        unsafe { (*definition).bytes = raw.bytes };
        Ok(())
    }
}

/// A table of references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Table {
    pub(crate) store: u64,
    pub(crate) index: usize,
}

fn ref_to_raw(store: &StoreOpaque, element: ValType, value: Ref) -> Result<usize, Error> {
    let value = value.into_val();
    if !value.matches_ty(store, element) {
        return Err(Error::usage(format!(
            "{} stored in a table of {element}",
            value.ty()
        )));
    }
    Ok(val_to_raw(store, &value)?.get_ptr())
}

impl Table {
    /// A new table of type `ty`, every element `init`, owned by `store` (for imports).
    pub fn new(mut store: impl AsContextMut, ty: TableType, init: Ref) -> Result<Table, Error> {
        let mut ctx = store.as_context_mut();
        ctx.0.check_counts(0, 0, 1)?;
        let growth = Growth::Table {
            current: 0,
            desired: ty.inner.minimum as usize,
            maximum: ty.inner.maximum.map(|m| m as usize),
        };
        if !ctx.0.growing(growth)? {
            return Err(Error::with_kind(
                ErrorKind::Instantiation,
                "table refused by the store's resource limiter",
            ));
        }
        let store = ctx.opaque_mut();
        store.table_count += 1;
        let init = ref_to_raw(store, ty.element(), init)?;
        let mut table = Box::new(
            RuntimeTable::new(ty.inner, init)
                .map_err(|e| Error::with_kind(ErrorKind::Instantiation, e.to_string()))?,
        );
        let ptr: *mut RuntimeTable = &mut *table;
        store.host_tables.push(table);
        Ok(Table::register(store, ptr))
    }

    pub(crate) fn register(store: &mut StoreOpaque, ptr: *mut RuntimeTable) -> Table {
        let index = match store.table_handles.get(&(ptr as usize)) {
            Some(i) => *i,
            None => {
                store.tables.push(ptr);
                store
                    .table_handles
                    .insert(ptr as usize, store.tables.len() - 1);
                store.tables.len() - 1
            }
        };
        Table {
            store: store.id,
            index,
        }
    }

    pub(crate) fn ptr(&self, store: &StoreOpaque) -> *mut RuntimeTable {
        store.assert_owns(self.store, "table");
        store.tables[self.index]
    }

    pub(crate) fn ty_in(&self, store: &StoreOpaque) -> TableType {
        // SAFETY: tables live as long as their store.
        TableType {
            inner: unsafe { (*self.ptr(store)).ty() },
        }
    }

    /// The table's type, with its current size as the minimum.
    pub fn ty(&self, store: impl AsContext) -> TableType {
        self.ty_in(store.as_context().opaque())
    }

    /// Current number of elements.
    pub fn size(&self, store: impl AsContext) -> u64 {
        // SAFETY: tables live as long as their store.
        unsafe { (*self.ptr(store.as_context().opaque())).size() }
    }

    /// Element `index`, or `None` past the end.
    pub fn get(&self, mut store: impl AsContextMut, index: u64) -> Option<Ref> {
        let mut ctx = store.as_context_mut();
        let store = ctx.opaque_mut();
        let ptr = self.ptr(store);
        // SAFETY: tables live as long as their store.
        let (raw, element) = unsafe { ((*ptr).get(index)?, (*ptr).ty().element) };
        match val_from_raw(store, element, &ValRaw::ptr(raw)).ok()? {
            Val::FuncRef(f) => Some(Ref::Func(f)),
            Val::ExternRef(e) => Some(Ref::Extern(e)),
            _ => None,
        }
    }

    /// Sets element `index`; an error past the end or for a reference of another type.
    pub fn set(&self, mut store: impl AsContextMut, index: u64, value: Ref) -> Result<(), Error> {
        let mut ctx = store.as_context_mut();
        let store = ctx.opaque_mut();
        let ptr = self.ptr(store);
        // SAFETY: exclusive store access; tables live as long as their store.
        unsafe {
            let raw = ref_to_raw(store, (*ptr).ty().element, value)?;
            (*ptr)
                .set(index, raw)
                .map_err(|e| Error::usage(e.to_string()))
        }
    }

    /// Grows by `delta` elements set to `init`; returns the previous size.
    pub fn grow(&self, mut store: impl AsContextMut, delta: u64, init: Ref) -> Result<u64, Error> {
        let mut ctx = store.as_context_mut();
        if delta != 0 && ctx.0.limiter.is_some() {
            let ptr = self.ptr(ctx.opaque_mut());
            // SAFETY: tables live as long as their store.
            let table = unsafe { &*ptr };
            let growth = Growth::Table {
                current: table.size() as usize,
                desired: table.size().saturating_add(delta) as usize,
                maximum: table.maximum().map(|m| m as usize),
            };
            if !ctx.0.growing(growth)? {
                return Err(Error::usage(format!(
                    "growing table by {delta} refused by the store's resource limiter"
                )));
            }
        }
        let store = ctx.opaque_mut();
        let ptr = self.ptr(store);
        // SAFETY: exclusive store access; tables live as long as their store.
        unsafe {
            let raw = ref_to_raw(store, (*ptr).ty().element, init)?;
            (*ptr)
                .grow(delta, raw)
                .ok_or_else(|| Error::usage(format!("failed to grow table by {delta}")))
        }
    }
}
