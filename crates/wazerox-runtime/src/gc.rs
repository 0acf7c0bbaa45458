//! GC support of the runtime (docs/gc.md): the store's heap and collector, and
//! the `GcAlloc` and `RefTest` builtins. `roots` finds the roots in Wasm frames
//! when `GcAlloc` collects inside a call.

#[cfg_attr(target_arch = "x86_64", path = "gc/x86_64.rs")]
#[cfg_attr(target_arch = "aarch64", path = "gc/aarch64.rs")]
mod arch;
mod roots;

pub(crate) use arch::wazerox_gc_alloc_stub;
pub use roots::GcRootsHook;

use crate::builtins::catching;
use crate::instance::Instance;
use crate::vmcontext::VMFuncRef;
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use wazerox_environ::gc::{
    self, FLAG_ARRAY, FLAG_MARK, GcLayout, HEADER_FLAGS, HEADER_LENGTH, HEADER_SIZE, HEADER_TYPE_ID,
};
use wazerox_environ::types::{RefKind, TypeIndex};

/// The header's type id and flags of object `word`.
///
/// # Safety
/// `word` must be a GC object of a live store (`gc::is_object`).
unsafe fn header(word: u64) -> (u32, u32) {
    let object = word as usize as *const u8;
    // SAFETY: per the contract, the object's 16-byte header is readable.
    unsafe {
        (
            object.add(HEADER_TYPE_ID as usize).cast::<u32>().read(),
            object.add(HEADER_FLAGS as usize).cast::<u32>().read(),
        )
    }
}

/// Whether object `word` is an array (else a struct).
///
/// # Safety
/// `word` must be a live GC object (`gc::is_object`).
pub unsafe fn is_array(word: u64) -> bool {
    // SAFETY: forwarded.
    unsafe { header(word) }.1 & FLAG_ARRAY != 0
}

/// The engine-wide type id of object `word`.
///
/// # Safety
/// `word` must be a live GC object (`gc::is_object`).
pub unsafe fn type_id(word: u64) -> u32 {
    // SAFETY: forwarded.
    unsafe { header(word) }.0
}

/// The `RefTest` builtin (`wazerox_environ::Builtin::RefTest`).
pub(crate) unsafe extern "C" fn ref_test(vmctx: *mut u8, value: u64, test: u32, ty: u32) -> u32 {
    let body = || {
        if value == 0 {
            return 0;
        }
        // SAFETY: called by compiled code with its own VMContext.
        let instance = unsafe { Instance::from_vmctx(vmctx) };
        let actual = match test {
            gc::TEST_STRUCT | gc::TEST_ARRAY => {
                if !gc::is_object(value) {
                    return 0;
                }
                // SAFETY: an any-hierarchy word that is an object (checked above).
                let (_, flags) = unsafe { header(value) };
                let is_array = flags & FLAG_ARRAY != 0;
                return u32::from(is_array == (test == gc::TEST_ARRAY));
            }
            _ if instance.module().is_func_type(TypeIndex(ty)) => {
                // SAFETY: validation typed `value` as a function reference, and
                // function references are live `VMFuncRef`s while the store is.
                unsafe { (*(value as usize as *const VMFuncRef)).type_id }
            }
            _ => {
                if !gc::is_object(value) {
                    return 0;
                }
                // SAFETY: as above.
                unsafe { header(value) }.0
            }
        };
        let expected = instance.type_id(TypeIndex(ty));
        u32::from(actual == expected || instance.types().is_subtype(actual, expected))
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { catching(body) }
}

/// The store's GC heap (docs/gc.md): objects allocated one by one from the host
/// allocator, freed by a non-moving mark-sweep. Only the thread holding the
/// store (or running its code) touches it.
#[derive(Debug)]
pub struct GcHeap {
    state: UnsafeCell<HeapState>,
}

#[derive(Debug)]
struct HeapState {
    /// Every object: address and allocation size.
    objects: Vec<(usize, usize)>,
    /// Bytes of all objects.
    bytes: usize,
    /// Collect at the next safepoint once `bytes` passes this.
    trigger: usize,
    /// Allocations that would pass this fail (trap `GcHeapExhausted`).
    limit: usize,
    /// Layouts by engine type id, for tracing.
    layouts: HashMap<u32, Arc<GcLayout>, BuildHasherDefault<TypeIdHasher>>,
    collections: u64,
}

/// Hashes engine type ids (small integers) with one multiplication: the
/// layouts map is looked up on every allocation and every object marked, where
/// SipHash cost a sixth of an allocation-heavy program's time.
#[derive(Default)]
struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// The first collection trigger, and the least one after a collection.
const INITIAL_TRIGGER: usize = 1 << 20;
/// The default cap on a store's GC heap.
pub const DEFAULT_GC_HEAP_LIMIT: usize = 1 << 30;

impl Default for GcHeap {
    fn default() -> Self {
        GcHeap {
            state: UnsafeCell::new(HeapState {
                objects: Vec::new(),
                bytes: 0,
                trigger: INITIAL_TRIGGER,
                limit: DEFAULT_GC_HEAP_LIMIT,
                layouts: HashMap::default(),
                collections: 0,
            }),
        }
    }
}

/// Statistics of a store's GC heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcHeapStats {
    pub objects: usize,
    pub bytes: usize,
    pub collections: u64,
}

impl GcHeap {
    /// # Safety
    /// Only the thread holding the store or running its code calls `GcHeap`
    /// methods, and never two at once (none of them calls back out).
    #[allow(clippy::mut_from_ref)]
    #[inline]
    unsafe fn state(&self) -> &mut HeapState {
        // SAFETY: per the contract, this is the only reference.
        unsafe { &mut *self.state.get() }
    }

    /// Sets the cap in bytes.
    ///
    /// # Safety
    /// See [`GcHeap::state`].
    pub unsafe fn set_limit(&self, limit: usize) {
        // SAFETY: forwarded.
        unsafe { self.state() }.limit = limit;
    }

    /// # Safety
    /// See [`GcHeap::state`].
    pub unsafe fn stats(&self) -> GcHeapStats {
        // SAFETY: forwarded.
        let state = unsafe { self.state() };
        GcHeapStats {
            objects: state.objects.len(),
            bytes: state.bytes,
            collections: state.collections,
        }
    }

    /// Whether enough was allocated since the last collection to run one.
    ///
    /// # Safety
    /// See [`GcHeap::state`].
    #[inline]
    pub unsafe fn wants_collection(&self) -> bool {
        // SAFETY: forwarded.
        let state = unsafe { self.state() };
        state.bytes > state.trigger
    }

    /// The layout of engine type `type_id`, computed by `compute` the first time.
    ///
    /// # Safety
    /// See [`GcHeap::state`].
    pub unsafe fn layout(&self, type_id: u32, compute: impl FnOnce() -> GcLayout) -> Arc<GcLayout> {
        // SAFETY: forwarded.
        let state = unsafe { self.state() };
        state
            .layouts
            .entry(type_id)
            .or_insert_with(|| Arc::new(compute()))
            .clone()
    }

    /// A zeroed object of type `type_id` (`length` elements for an array), its
    /// header written; `None` if it would take the heap past its cap.
    ///
    /// # Safety
    /// See [`GcHeap::state`]; `layout` is `type_id`'s (from [`GcHeap::layout`]).
    pub unsafe fn allocate(&self, type_id: u32, layout: &GcLayout, length: u32) -> Option<u64> {
        // SAFETY: forwarded.
        let state = unsafe { self.state() };
        let size = if layout.is_array {
            u64::from(HEADER_SIZE) + u64::from(length) * u64::from(layout.element_size)
        } else {
            u64::from(layout.size)
        };
        let size = usize::try_from(size.next_multiple_of(16)).ok()?;
        if state.bytes.checked_add(size)? > state.limit {
            return None;
        }
        let alloc_layout = Layout::from_size_align(size, 16).ok()?;
        // SAFETY: the size is at least the 16-byte header.
        let object = unsafe { alloc_zeroed(alloc_layout) };
        if object.is_null() {
            return None;
        }
        // SAFETY: the object is `size` bytes, 16-aligned, ours.
        unsafe {
            object
                .add(HEADER_TYPE_ID as usize)
                .cast::<u32>()
                .write(type_id);
            let flags = if layout.is_array { FLAG_ARRAY } else { 0 };
            object.add(HEADER_FLAGS as usize).cast::<u32>().write(flags);
            object
                .add(HEADER_LENGTH as usize)
                .cast::<u32>()
                .write(length);
        }
        state.objects.push((object as usize, size));
        state.bytes += size;
        Some(object as u64)
    }

    /// Keeps, of `words` (read from Wasm frames' stack-map slots: any-hierarchy
    /// words and externrefs), the objects of this heap they refer to: a word
    /// that is an object's address, or is one once its top bit (an
    /// externalized anyref's mark) is cleared. Anything else (i31s, host
    /// externref handles) is dropped, so the collector never reads through a
    /// word that is not one of its objects.
    ///
    /// # Safety
    /// See [`GcHeap::state`].
    pub unsafe fn retain_objects(&self, words: &mut Vec<u64>) {
        // SAFETY: forwarded.
        let state = unsafe { self.state() };
        let mut candidates: Vec<u64> = words
            .iter()
            .flat_map(|w| [*w, *w & !(1 << 63)])
            .filter(|w| gc::is_object(*w))
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        words.clear();
        if candidates.is_empty() {
            return;
        }
        for &(address, _) in &state.objects {
            if candidates.binary_search(&(address as u64)).is_ok() {
                words.push(address as u64);
            }
        }
    }

    /// Marks everything reachable from `roots` (words of the any hierarchy) and
    /// frees everything else.
    ///
    /// # Safety
    /// See [`GcHeap::state`]. `roots` must be *every* any-hierarchy word the
    /// store's globals, tables and host handles hold, and every word in the
    /// stack-map slots of every live Wasm frame of the store (docs/gc.md).
    pub unsafe fn collect(&self, roots: impl IntoIterator<Item = u64>) {
        // SAFETY: forwarded.
        let state = unsafe { self.state() };
        let mut work: Vec<u64> = roots.into_iter().filter(|w| gc::is_object(*w)).collect();
        while let Some(word) = work.pop() {
            let object = word as usize as *mut u8;
            // SAFETY: every object word in a root or a traced field is a live
            // object of this heap: nothing was freed since it was stored (the
            // previous sweep kept everything reachable).
            unsafe {
                let flags = object.add(HEADER_FLAGS as usize).cast::<u32>();
                if *flags & FLAG_MARK != 0 {
                    continue;
                }
                *flags |= FLAG_MARK;
                let type_id = object.add(HEADER_TYPE_ID as usize).cast::<u32>().read();
                let layout = &state.layouts[&type_id];
                let child = |offset: usize| object.add(offset).cast::<u64>().read();
                // Filtered as pushed: an array of a million references must not
                // make every later pop rescan the work list.
                let mut trace = |kind, offset: usize| {
                    let word = gc::traced_word(kind, child(offset));
                    if gc::is_object(word) {
                        work.push(word);
                    }
                };
                for offset in &layout.ref_offsets {
                    trace(RefKind::Any, *offset as usize);
                }
                for offset in &layout.extern_offsets {
                    trace(RefKind::Extern, *offset as usize);
                }
                let element_kind = if layout.elements_are_refs {
                    Some(RefKind::Any)
                } else if layout.elements_are_externrefs {
                    Some(RefKind::Extern)
                } else {
                    None
                };
                if let Some(kind) = element_kind {
                    let length = object.add(HEADER_LENGTH as usize).cast::<u32>().read();
                    for i in 0..length as usize {
                        trace(kind, HEADER_SIZE as usize + 8 * i);
                    }
                }
            }
        }
        let mut live = 0;
        state.objects.retain(|&(address, size)| {
            let flags = (address + HEADER_FLAGS as usize) as *mut u32;
            // SAFETY: every listed object is live until freed here.
            unsafe {
                if *flags & FLAG_MARK != 0 {
                    *flags &= !FLAG_MARK;
                    live += size;
                    true
                } else {
                    dealloc(
                        address as *mut u8,
                        Layout::from_size_align_unchecked(size, 16),
                    );
                    false
                }
            }
        });
        state.bytes = live;
        state.trigger = (2 * live).max(INITIAL_TRIGGER);
        state.collections += 1;
    }
}

impl Drop for GcHeap {
    fn drop(&mut self) {
        for &(address, size) in &self.state.get_mut().objects {
            // SAFETY: allocated by `allocate` with this size and alignment.
            unsafe {
                dealloc(
                    address as *mut u8,
                    Layout::from_size_align_unchecked(size, 16),
                )
            };
        }
    }
}

/// The `GcAlloc` builtin: a zeroed object of the module's type `ty`, entered
/// from [`wazerox_gc_alloc_stub`] with the call's return address `pc` and the
/// calling frame's frame pointer `fp`. A safepoint: it collects first when the
/// heap passed its trigger, and before giving up when the cap is reached, if
/// every root can be found (`roots::collect_in_call`).
pub(crate) unsafe extern "C" fn gc_alloc(
    vmctx: *mut u8,
    ty: u32,
    length: u32,
    pc: usize,
    fp: usize,
) -> u64 {
    let body = || {
        // SAFETY: called by compiled code with its own VMContext.
        let instance = unsafe { Instance::from_vmctx(vmctx) };
        let type_id = instance.type_id(TypeIndex(ty));
        // SAFETY: the store context outlives its instances' code.
        let store = unsafe { &*instance.store_context() };
        let heap = &store.gc;
        // SAFETY: a builtin of the store's running code; `pc` and `fp` are its
        // caller's, as the stub passes them.
        unsafe {
            let layout = heap.layout(type_id, || {
                GcLayout::new(
                    instance.module().gc_types[ty as usize]
                        .as_ref()
                        .expect("validated: a struct or array type"),
                )
            });
            let collected = heap.wants_collection() && roots::collect_in_call(store, pc, fp);
            match heap.allocate(type_id, &layout, length) {
                Some(object) => object,
                None if !collected && roots::collect_in_call(store, pc, fp) => {
                    heap.allocate(type_id, &layout, length).unwrap_or(0)
                }
                None => 0,
            }
        }
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { catching(body) }
}

/// The hierarchy of a global's or table's references when they may keep GC
/// objects alive: any-hierarchy words, and externrefs (externalized objects,
/// `gc::traced_word`).
pub fn traced_kind(ty: wazerox_environ::ValType) -> Option<RefKind> {
    ty.as_ref()
        .map(|r| r.kind())
        .filter(|k| matches!(k, RefKind::Any | RefKind::Extern))
}

/// Appends the objects `instance`'s globals and tables (defined and imported)
/// and its evaluated element segments keep alive: the instance's part of a
/// collection's roots.
pub fn instance_roots(instance: &Instance, out: &mut Vec<u64>) {
    let module = instance.module();
    out.extend(instance.gc_element_words());
    for (i, global) in module.globals.iter().enumerate() {
        if let Some(kind) = traced_kind(global.ty.content) {
            let definition = instance.global_ptr(wazerox_environ::GlobalIndex(i as u32));
            // SAFETY: global definitions live as long as the store.
            out.push(gc::traced_word(kind, unsafe { global_word(definition) }));
        }
    }
    for (i, table) in module.tables.iter().enumerate() {
        if traced_kind(table.ty.element).is_some() {
            // SAFETY: tables live as long as the store.
            let table = unsafe { &*instance.table_ptr(wazerox_environ::TableIndex(i as u32)) };
            table_roots(table, out);
        }
    }
}

/// Appends the objects a table's elements keep alive.
pub fn table_roots(table: &crate::table::Table, out: &mut Vec<u64>) {
    if let Some(kind) = traced_kind(table.ty().element) {
        out.extend(
            table
                .elements()
                .iter()
                .map(|w| gc::traced_word(kind, *w as u64)),
        );
    }
}

/// The reference word a global holds.
///
/// # Safety
/// `definition` is a live global definition.
pub unsafe fn global_word(definition: *const crate::vmcontext::VMGlobalDefinition) -> u64 {
    // SAFETY: per the contract.
    let bytes = unsafe { (*definition).bytes };
    u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
}
