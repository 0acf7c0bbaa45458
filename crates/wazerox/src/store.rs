//! `Store<T>`: owns everything instantiated (instances, host functions, memories,
//! tables, globals, externrefs) plus the embedder's data `T`.
//!
//! Handles (`Func`, `Memory`, …) are indices into a store plus the store's id, so they
//! are `Copy`, cannot dangle (the store frees nothing before it is dropped), and
//! using one with the wrong store is a clean error.

use crate::engine::Engine;
use crate::error::Error;
use crate::func::HostFuncContext;
use crate::module::Module;
use std::any::Any;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use wazerox_environ::{FuncType, GlobalType};
use wazerox_runtime::instance::Instance as RuntimeInstance;
use wazerox_runtime::memory::LinearMemory;
use wazerox_runtime::table::Table as RuntimeTable;
use wazerox_runtime::vmcontext::{VMFuncRef, VMGlobalDefinition, VMStoreContext};

static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct InstanceData {
    pub runtime: Box<RuntimeInstance>,
    pub module: Module,
}

pub(crate) struct FuncData {
    pub func_ref: *const VMFuncRef,
    pub type_id: u32,
    pub ty: FuncType,
    /// Host→Wasm trampoline for the function's type.
    pub array_call: usize,
}

pub(crate) struct GlobalData {
    pub definition: *mut VMGlobalDefinition,
    pub ty: GlobalType,
}

/// The part of a store that does not depend on `T`.
pub struct StoreOpaque {
    pub(crate) id: u64,
    pub(crate) engine: Engine,
    pub(crate) vm_store_context: Arc<VMStoreContext>,
    pub(crate) instances: Vec<InstanceData>,
    pub(crate) funcs: Vec<FuncData>,
    // The host-owned objects below are boxed because compiled code and VMContexts
    // hold their addresses, which must survive the Vecs growing.
    #[allow(clippy::vec_box)]
    pub(crate) host_funcs: Vec<Box<HostFuncContext>>,
    pub(crate) memories: Vec<*mut LinearMemory>,
    pub(crate) tables: Vec<*mut RuntimeTable>,
    pub(crate) globals: Vec<GlobalData>,
    /// Memories, tables and globals created by the host (not by an instance).
    #[allow(clippy::vec_box)]
    pub(crate) host_memories: Vec<Box<LinearMemory>>,
    #[allow(clippy::vec_box)]
    pub(crate) host_tables: Vec<Box<RuntimeTable>>,
    #[allow(clippy::vec_box)]
    pub(crate) host_globals: Vec<Box<VMGlobalDefinition>>,
    pub(crate) externrefs: Vec<Arc<dyn Any + Send + Sync>>,
    /// Host handles of GC objects (`AnyRef`), roots while alive (docs/gc.md).
    pub(crate) gc_roots: Vec<std::sync::Weak<u64>>,
    /// Objects the host holds as externrefs (`extern.convert_any` words that
    /// reached the host): `ExternRef` is `Copy`, so these stay roots for the
    /// store's life, like every externref (docs/gc.md).
    pub(crate) externalized_roots: std::collections::HashSet<u64>,
    /// Set when a snapshot is taken, cleared when no call is live (every
    /// snapshot is stale then): a snapshot's saved frames hold references no
    /// stack walk sees, so no collection runs inside a call meanwhile.
    pub(crate) snapshot_taken: bool,
    /// Shared memories imported or defined by instances of this store, each once.
    pub(crate) shared_memories: Vec<crate::SharedMemory>,
    /// Handle of each object already handed out, keyed by its address, so the same
    /// object always gets the same handle. Looked up on every export access (WASI
    /// looks up `memory` on every call), so keyed with `AddressHasher`.
    pub(crate) func_handles: AddressMap,
    pub(crate) memory_handles: AddressMap,
    pub(crate) table_handles: AddressMap,
    pub(crate) global_handles: AddressMap,
    /// Exception tags handed out (see `tag.rs`), their handles by address, and
    /// the ones the host created.
    pub(crate) tags: Vec<*const wazerox_runtime::exceptions::VMTag>,
    pub(crate) tag_handles: AddressMap,
    #[allow(clippy::vec_box)]
    pub(crate) host_tags: Vec<Box<wazerox_runtime::exceptions::VMTag>>,
    /// VMContext address → index in `instances`.
    pub(crate) instance_by_vmctx: AddressMap,
    /// Memories and tables created in this store (by instances or the host), for
    /// the limiter's count limits.
    pub(crate) memory_count: usize,
    pub(crate) table_count: usize,
    /// Parameters and results of dynamic host calls (`Func::new`), reused across
    /// calls so that they allocate nothing (see `func::call_dynamic`).
    pub(crate) dynamic_values: Vec<crate::Val>,
}

// SAFETY: the raw pointers all point at objects owned by this store (or by the
// engine/modules it holds `Arc`s to); the store is used by one thread at a time.
unsafe impl Send for StoreOpaque {}
// SAFETY: shared references to a store only read.
unsafe impl Sync for StoreOpaque {}

impl StoreOpaque {
    #[inline]
    /// Keeps `memory` alive as long as the store (its instances point into it).
    pub(crate) fn keep_shared_memory(&mut self, memory: &crate::SharedMemory) {
        if !self.shared_memories.contains(memory) {
            self.shared_memories.push(memory.clone());
        }
    }

    /// The shared memory at `ptr`, if the memory there is shared: exports of shared
    /// memories surface as [`crate::SharedMemory`], never as a `Memory` whose
    /// `data_mut` would be a `&mut [u8]` over bytes other threads write.
    pub(crate) fn shared_memory_at(&self, ptr: *mut LinearMemory) -> Option<crate::SharedMemory> {
        self.shared_memories
            .iter()
            .find(|m| m.ptr() == ptr)
            .cloned()
    }

    /// Panics unless the handle (`what`, of store `store_id`) belongs to this store:
    /// using a handle with another store is a programming error, reported as a
    /// panic by every accessor, as wasmtime does (see docs/api.md). Inlined with
    /// a cold panic: every call into Wasm checks its handle.
    #[track_caller]
    #[inline]
    pub(crate) fn assert_owns(&self, store_id: u64, what: &str) {
        if self.id != store_id {
            foreign_handle(what);
        }
    }

    pub(crate) fn check(&self, store_id: u64) -> Result<(), Error> {
        if self.id == store_id {
            Ok(())
        } else {
            Err(Error::usage(
                "object used with a store it does not belong to",
            ))
        }
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Calls into Wasm of this store that have not returned (nested ones and
    /// suspended async ones included). A GC collection runs between calls when
    /// it is 0, and inside a call (at an allocation) only when it is 1: then the
    /// running activation holds every Wasm frame of the store (docs/gc.md).
    #[inline]
    pub(crate) fn wasm_calls(&self) -> usize {
        // SAFETY: the thread holding the store; only it writes the count.
        unsafe { *self.vm_store_context.wasm_calls.get() }
    }

    /// Collects the GC heap if enough was allocated since the last collection
    /// and no Wasm frame of the store is live (the only safepoint, docs/gc.md).
    /// Inlined: every call into Wasm asks.
    #[inline]
    pub(crate) fn maybe_collect_garbage(&mut self) {
        // SAFETY: the thread holding the store; none of its code runs.
        if self.wasm_calls() == 0 && unsafe { self.vm_store_context.gc.wants_collection() } {
            self.collect_garbage();
        }
    }

    /// Frees every GC object not reachable from the store's globals, tables and
    /// live host handles. Does nothing while a Wasm call of the store is live
    /// (collections inside calls happen at allocations, with the frames' roots).
    #[cold]
    pub(crate) fn collect_garbage(&mut self) {
        if self.wasm_calls() != 0 {
            return;
        }
        let mut roots = Vec::new();
        self.roots_outside_frames(&mut roots);
        // SAFETY: the thread holding the store, no Wasm frame live
        // (`wasm_calls` is 0), and the roots are every reference the store
        // holds outside Wasm frames.
        unsafe { self.vm_store_context.gc.collect(roots) };
    }

    /// Appends every any-hierarchy word the store holds outside Wasm frames:
    /// globals, tables, live host handles (dropping the dead ones).
    fn roots_outside_frames(&mut self, roots: &mut Vec<u64>) {
        for instance in &self.instances {
            wazerox_runtime::gc::instance_roots(&instance.runtime, roots);
        }
        for global in &self.globals {
            if let Some(kind) = wazerox_runtime::gc::traced_kind(global.ty.content) {
                // SAFETY: global definitions live as long as the store.
                let word = unsafe { wazerox_runtime::gc::global_word(global.definition) };
                roots.push(wazerox_environ::gc::traced_word(kind, word));
            }
        }
        for table in &self.tables {
            // SAFETY: tables live as long as the store.
            wazerox_runtime::gc::table_roots(unsafe { &**table }, roots);
        }
        roots.extend(self.externalized_roots.iter().copied());
        self.gc_roots.retain(|root| match root.upgrade() {
            Some(word) => {
                roots.push(*word);
                true
            }
            None => false,
        });
    }
}

/// The runtime's [`wazerox_runtime::gc::GcRootsHook`] for stores of `T`: the
/// roots outside Wasm frames, when the innermost activation holds every Wasm
/// frame of the store (exactly one call live, no snapshot that could bring
/// others back).
///
/// # Safety
/// `store` is the `StoreInner<T>` that `func::invoke` set in the store context
/// for the running call; the caller (a builtin of that call) holds no
/// reference into it.
unsafe fn roots_in_call<T>(store: *mut u8, roots: &mut Vec<u64>) -> bool {
    // SAFETY: per the contract; like a host function, the builtin is the only
    // user of the store while the call's code waits for it.
    let store = unsafe { &mut (*store.cast::<StoreInner<T>>()).opaque };
    if store.wasm_calls() != 1 || store.snapshot_taken {
        return false;
    }
    store.roots_outside_frames(roots);
    true
}

/// What [`Store::gc_heap_stats`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcHeapStats {
    /// Objects in the heap (live, or garbage not collected yet).
    pub objects: usize,
    /// Their bytes.
    pub bytes: usize,
    /// Collections run so far.
    pub collections: u64,
}

/// The store proper: [`StoreOpaque`] plus the embedder's data.
pub struct StoreInner<T> {
    pub(crate) opaque: StoreOpaque,
    pub(crate) limiter: Option<crate::limits::StoreLimiter<T>>,
    pub(crate) data: T,
}

/// A collection of instances and host objects, with embedder data `T`.
pub struct Store<T> {
    pub(crate) inner: Box<StoreInner<T>>,
}

impl<T> Store<T> {
    /// A store for instances of `engine`'s modules, holding the host data `data`.
    pub fn new(engine: &Engine, data: T) -> Store<T> {
        let vm_store_context = Arc::new(VMStoreContext::new());
        // SAFETY: the context is ours; the engine (and its counter) outlives the
        // store, which holds an `Engine` clone.
        unsafe { *vm_store_context.epoch.get() = &engine.0.epoch };
        // SAFETY: nothing runs in the new store yet.
        unsafe {
            vm_store_context.gc.set_limit(engine.config().gc_heap_limit);
            vm_store_context
                .exceptions
                .set_limit(engine.config().gc_heap_limit);
        }
        // SAFETY: as above; `roots_in_call::<T>` is for this store's type.
        unsafe { *vm_store_context.gc_roots_hook.get() = Some(roots_in_call::<T>) };
        Store {
            inner: Box::new(StoreInner {
                opaque: StoreOpaque {
                    id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
                    engine: engine.clone(),
                    vm_store_context,
                    instances: Vec::new(),
                    funcs: Vec::new(),
                    host_funcs: Vec::new(),
                    memories: Vec::new(),
                    tables: Vec::new(),
                    globals: Vec::new(),
                    host_memories: Vec::new(),
                    host_tables: Vec::new(),
                    host_globals: Vec::new(),
                    externrefs: Vec::new(),
                    gc_roots: Vec::new(),
                    externalized_roots: Default::default(),
                    snapshot_taken: false,
                    shared_memories: Vec::new(),
                    func_handles: AddressMap::default(),
                    memory_handles: AddressMap::default(),
                    table_handles: AddressMap::default(),
                    global_handles: AddressMap::default(),
                    tags: Vec::new(),
                    tag_handles: AddressMap::default(),
                    host_tags: Vec::new(),
                    instance_by_vmctx: AddressMap::default(),
                    memory_count: 0,
                    table_count: 0,
                    dynamic_values: Vec::new(),
                },
                limiter: None,
                data,
            }),
        }
    }

    /// The store's engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.opaque.engine
    }

    /// Runs a garbage collection of the store's GC heap now (docs/gc.md). Called
    /// from a host function (a Wasm call of the store being live), it does
    /// nothing: the host cannot see the Wasm frames' roots; the allocations of
    /// the running Wasm code collect instead.
    pub fn gc(&mut self) {
        self.inner.opaque.collect_garbage();
    }

    /// Objects and bytes in the store's GC heap, and collections so far.
    pub fn gc_heap_stats(&self) -> GcHeapStats {
        // SAFETY: the thread holding the store; `&self` excludes running code.
        let stats = unsafe { self.inner.opaque.vm_store_context.gc.stats() };
        GcHeapStats {
            objects: stats.objects,
            bytes: stats.bytes,
            collections: stats.collections,
        }
    }

    /// Exception objects (and their bytes) the store holds, and the collections
    /// of them so far (docs/runtime.md, "Exception objects").
    pub fn exception_heap_stats(&self) -> GcHeapStats {
        // SAFETY: the thread holding the store; `&self` excludes running code.
        let stats = unsafe { self.inner.opaque.vm_store_context.exceptions.stats() };
        GcHeapStats {
            objects: stats.objects,
            bytes: stats.bytes,
            collections: stats.collections,
        }
    }

    /// The host data.
    pub fn data(&self) -> &T {
        &self.inner.data
    }
    /// The host data, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.inner.data
    }
    /// Drops the store's instances and returns the host data.
    pub fn into_data(self) -> T {
        self.inner.data
    }

    /// Installs a resource limiter (see [`ResourceLimiter`](crate::ResourceLimiter)),
    /// found in the store's data by `limiter`; consulted from then on. Replaces any
    /// earlier limiter.
    pub fn limiter(
        &mut self,
        limiter: impl FnMut(&mut T) -> &mut (dyn crate::ResourceLimiter) + Send + Sync + 'static,
    ) {
        self.inner.limiter = Some(crate::limits::StoreLimiter::InData(Box::new(limiter)));
    }

    /// Installs a resource limiter owned by the store, for limits that are not part
    /// of the store's data (e.g. [`StoreLimits`](crate::StoreLimits) for a store
    /// whose data is someone else's type). Replaces any earlier limiter.
    pub fn set_limiter(&mut self, limiter: impl crate::ResourceLimiter + 'static) {
        self.inner.limiter = Some(crate::limits::StoreLimiter::Owned(Box::new(limiter)));
    }

    /// Sets the fuel left (needs `Config::consume_fuel`).
    pub fn set_fuel(&mut self, fuel: u64) -> Result<(), Error> {
        if !self.engine().config().translation.consume_fuel {
            return Err(Error::usage("fuel is not enabled in this engine's Config"));
        }
        // SAFETY: no Wasm runs in this store while we hold `&mut self`.
        unsafe { self.inner.opaque.vm_store_context.set_fuel(fuel) };
        Ok(())
    }

    /// The fuel left (needs `Config::consume_fuel`).
    pub fn get_fuel(&self) -> Result<u64, Error> {
        if !self.engine().config().translation.consume_fuel {
            return Err(Error::usage("fuel is not enabled in this engine's Config"));
        }
        // SAFETY: as for `set_fuel`, with shared access.
        Ok(unsafe { self.inner.opaque.vm_store_context.fuel_left() })
    }

    /// Traps running code once the engine's epoch has advanced `ticks` beyond its
    /// current value (needs `Config::epoch_interruption`; the default is never).
    /// Ignored once the store was interrupted ([`crate::InterruptHandle`]).
    pub fn set_epoch_deadline(&mut self, ticks: u64) {
        let deadline = self.engine().current_epoch().saturating_add(ticks);
        self.inner
            .opaque
            .vm_store_context
            .set_epoch_deadline(deadline);
    }
}

/// Shared access to a store.
pub struct StoreContext<'a, T>(pub(crate) &'a StoreInner<T>);

/// Exclusive access to a store.
pub struct StoreContextMut<'a, T>(pub(crate) &'a mut StoreInner<T>);

impl<'a, T> StoreContext<'a, T> {
    pub(crate) fn opaque(&self) -> &'a StoreOpaque {
        &self.0.opaque
    }
    /// The store's host data.
    pub fn data(&self) -> &'a T {
        &self.0.data
    }
}

impl<T> StoreContextMut<'_, T> {
    pub(crate) fn opaque(&self) -> &StoreOpaque {
        &self.0.opaque
    }
    pub(crate) fn opaque_mut(&mut self) -> &mut StoreOpaque {
        &mut self.0.opaque
    }
    /// The store's host data.
    pub fn data(&self) -> &T {
        &self.0.data
    }
    /// The store's host data, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.0.data
    }
    /// [`Store::gc`] through a context (e.g. a host function's `Caller`, where
    /// it does nothing: a Wasm call of the store is live).
    pub fn gc(&mut self) {
        self.0.opaque.collect_garbage();
    }
    /// [`Store::gc_heap_stats`] through a context.
    pub fn gc_heap_stats(&self) -> GcHeapStats {
        // SAFETY: the thread holding the store; reading counters only.
        let stats = unsafe { self.0.opaque.vm_store_context.gc.stats() };
        GcHeapStats {
            objects: stats.objects,
            bytes: stats.bytes,
            collections: stats.collections,
        }
    }
}

/// Anything that gives shared access to a store: `&Store<T>`, `&mut Store<T>`,
/// `Caller<'_, T>`, …
pub trait AsContext {
    /// The store's host data type.
    type Data;
    /// A shared view of the store.
    fn as_context(&self) -> StoreContext<'_, Self::Data>;
}

/// Anything that gives exclusive access to a store.
pub trait AsContextMut: AsContext {
    /// A mutable view of the store.
    fn as_context_mut(&mut self) -> StoreContextMut<'_, Self::Data>;
}

impl<T> AsContext for Store<T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext(&self.inner)
    }
}

impl<T> AsContextMut for Store<T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut(&mut self.inner)
    }
}

impl<T> AsContext for StoreContextMut<'_, T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext(self.0)
    }
}

impl<T> AsContextMut for StoreContextMut<'_, T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut(self.0)
    }
}

impl<T> AsContext for StoreContext<'_, T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext(self.0)
    }
}

impl<C: AsContext + ?Sized> AsContext for &C {
    type Data = C::Data;
    fn as_context(&self) -> StoreContext<'_, C::Data> {
        (**self).as_context()
    }
}

impl<C: AsContext + ?Sized> AsContext for &mut C {
    type Data = C::Data;
    fn as_context(&self) -> StoreContext<'_, C::Data> {
        (**self).as_context()
    }
}

impl<C: AsContextMut + ?Sized> AsContextMut for &mut C {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, C::Data> {
        (**self).as_context_mut()
    }
}

impl<'a, T: AsContext> From<&'a T> for StoreContext<'a, T::Data> {
    fn from(t: &'a T) -> Self {
        t.as_context()
    }
}

impl<'a, T: AsContextMut> From<&'a mut T> for StoreContext<'a, T::Data> {
    fn from(t: &'a mut T) -> Self {
        let t: &'a T = t;
        t.as_context()
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn foreign_handle(what: &str) -> ! {
    panic!("{what} used with a store it does not belong to")
}

/// A map keyed by host addresses of the store's own objects.
pub(crate) type AddressMap = HashMap<usize, usize, BuildHasherDefault<AddressHasher>>;

/// Hashes one address with a multiply and a fold instead of SipHash: the keys
/// are addresses the store allocated, never chosen by a guest, so there is no
/// flooding to resist, and SipHash was most of a WASI call's lookup cost
/// (hostcalls corpus program, callgrind).
#[derive(Default)]
pub(crate) struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_usize(&mut self, address: usize) {
        self.write_u64(address as u64);
    }

    fn write_u64(&mut self, value: u64) {
        // The product moves low bits up; the fold brings high bits down, so both
        // the bucket index (low bits) and the control byte (top bits) vary with
        // the address's middle bits, where allocations differ.
        let product = (self.0 ^ value).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = product ^ (product >> 32);
    }
}
