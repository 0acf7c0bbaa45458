//! Exceptions: tags, exception objects, and throwing.
//!
//! - A **tag** is a [`VMTag`]; its address is its identity. A defined tag belongs
//!   to its instance, a host-created one to its store; imports copy the pointer.
//!   Each VMContext lists its tags' addresses, so compiled code compares a thrown
//!   exception's tag with a `catch` clause's by one load and one compare.
//! - An **exception object** (what an `exnref` points at) is a block of 16-byte
//!   slots owned by the store's [`ExceptionHeap`]: slot 0 holds the tag's address,
//!   the payload follows (`VMEXN_*` in `wazerox_environ::vmoffsets`). Guests
//!   throw in loops (C++ exceptions, setjmp/longjmp), so objects are collected
//!   (see [`ExceptionHeap`]): compiled code sets an object's *escaped* byte
//!   before storing its address anywhere but its own frames (globals, tables,
//!   GC objects), the embedding layer before handing it to the host; escaped
//!   objects live as long as their store, so such references never dangle.
//!   The others are found by scanning the stack conservatively.
//! - **Throwing** (`Throw` builtin): compiled code calls an assembly stub that
//!   adds its return address and the caller's frame pointer, and [`throw`] walks
//!   the frame-pointer chain from there. Each return address is looked up in the
//!   handler table of its code (`try_call` sites); the first hit resumes at the
//!   landing block with the exception in the first payload register, the stack
//!   pointer at the call site's depth below that frame's pointer, and the frame
//!   pointer of that frame. Landing blocks assume every register clobbered, so
//!   nothing else needs restoring. The walk stops at the first return address
//!   that is not compiled code (the host→Wasm entry, or the host frames of a
//!   Wasm→host call) or at the activation's entry: the exception then ends the
//!   activation like a trap, and the embedding layer sees it as an error (and,
//!   for a Wasm→host→Wasm call, throws it again in the outer Wasm once the host
//!   function has returned, so host frames are always unwound by returning).
//!   Traps never reach this path: they are signals, caught only at the entry.

#[cfg_attr(target_arch = "x86_64", path = "exceptions/x86_64.rs")]
#[cfg_attr(target_arch = "aarch64", path = "exceptions/aarch64.rs")]
mod arch;

use crate::code_registry;
use crate::instance::Instance;
use crate::traphandlers;
use crate::vmcontext::VMStoreContext;
use std::cell::UnsafeCell;
use wazerox_environ::vmoffsets::VMEXN_ESCAPED;
use wazerox_environ::{FuncType, TagIndex};

pub(crate) use arch::wazerox_throw_stub;

/// An exception tag. Its address is its identity.
#[derive(Debug)]
pub struct VMTag {
    /// The payload types (the tag's function type's params; it has no results).
    pub ty: FuncType,
    /// The engine-wide canonical id of the tag's function type, for import checks.
    pub type_id: u32,
}

/// Payload slots are 16 bytes; slot 0 is the header (the tag's address, and the
/// escaped byte at `VMEXN_ESCAPED`).
type Slot = u128;

/// Objects allocated before the first collection is considered; afterwards the
/// threshold is twice the objects that survived the last one.
const INITIAL_COLLECTION_THRESHOLD: usize = 4096;

/// Bytes counted per object besides its slots (the box and the list entry).
const OBJECT_OVERHEAD: usize = 32;

/// The store's exception objects. Only the thread running the store touches it.
///
/// Objects are freed by a collection inside the `ExnNew` builtin (see
/// [`exn_new`]): an object is live if it has escaped (stored where the
/// collector does not look: a global, a table, a GC object, handed to the host)
/// or if a word on the stack of the store's running Wasm frames, or in the
/// payload of a live object, points into it.
#[derive(Debug)]
pub struct ExceptionHeap {
    state: UnsafeCell<HeapState>,
}

#[derive(Debug)]
struct HeapState {
    objects: Vec<Box<[Slot]>>,
    /// Bytes of `objects`, overhead included.
    bytes: usize,
    /// Collect when `objects` reaches this many.
    threshold: usize,
    /// The cap on `bytes` for objects the guest allocates (`Config::gc_heap_limit`).
    limit: usize,
    /// A stack snapshot (checkpoint) was taken in the store: a snapshot's copy of
    /// the stack may hold references the collector cannot see, so nothing is
    /// freed any more until the store is dropped.
    frozen: bool,
    collections: u64,
}

impl Default for ExceptionHeap {
    fn default() -> Self {
        ExceptionHeap {
            state: UnsafeCell::new(HeapState {
                objects: Vec::new(),
                bytes: 0,
                threshold: INITIAL_COLLECTION_THRESHOLD,
                limit: usize::MAX,
                frozen: false,
                collections: 0,
            }),
        }
    }
}

/// What [`ExceptionHeap::stats`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExceptionHeapStats {
    /// Objects in the heap (live, or garbage not collected yet).
    pub objects: usize,
    /// Their bytes, bookkeeping included.
    pub bytes: usize,
    /// Collections run so far.
    pub collections: u64,
}

fn object_bytes(slots: usize) -> usize {
    slots * std::mem::size_of::<Slot>() + OBJECT_OVERHEAD
}

impl ExceptionHeap {
    /// # Safety
    /// Only the thread running the owning store calls this, and no reference
    /// returned by an earlier call is still in use.
    #[allow(clippy::mut_from_ref)]
    unsafe fn state(&self) -> &mut HeapState {
        // SAFETY: per the contract.
        unsafe { &mut *self.state.get() }
    }

    /// Caps the bytes of guest-allocated objects (`Config::gc_heap_limit`).
    ///
    /// # Safety
    /// Only the thread holding the store calls this.
    pub unsafe fn set_limit(&self, limit: usize) {
        // SAFETY: per the contract.
        unsafe { self.state().limit = limit };
    }

    /// Counts of the heap's objects and collections.
    ///
    /// # Safety
    /// Only the thread holding the store calls this.
    pub unsafe fn stats(&self) -> ExceptionHeapStats {
        // SAFETY: per the contract.
        let state = unsafe { self.state() };
        ExceptionHeapStats {
            objects: state.objects.len(),
            bytes: state.bytes,
            collections: state.collections,
        }
    }

    /// Stops all freeing (a stack snapshot of the store exists).
    ///
    /// # Safety
    /// Only the thread running the owning store calls this.
    pub unsafe fn freeze(&self) {
        // SAFETY: per the contract.
        unsafe { self.state().frozen = true };
    }

    /// A new exception of `tag` with a zeroed payload; returns its address. Not
    /// capped (the host's allocations), and not escaped yet.
    ///
    /// # Safety
    /// Only the thread running the owning store calls this, and `tag` is live.
    pub unsafe fn allocate(&self, tag: *const VMTag) -> *mut u8 {
        // SAFETY: per the contract.
        let values = unsafe { (*tag).ty.params().len() };
        let mut object = vec![0 as Slot; 1 + values].into_boxed_slice();
        object[0] = tag as usize as Slot;
        let address = object.as_mut_ptr().cast::<u8>();
        // SAFETY: per the contract, no other reference to the state exists now.
        let state = unsafe { self.state() };
        state.bytes += object_bytes(object.len());
        state.objects.push(object);
        address
    }

    /// Whether `exn` is the address of one of this heap's objects (checks
    /// exnrefs that come from the embedder).
    ///
    /// # Safety
    /// Only the thread running the owning store calls this.
    pub unsafe fn contains(&self, exn: usize) -> bool {
        // SAFETY: per the contract.
        let objects = unsafe { &self.state().objects };
        objects.iter().any(|o| o.as_ptr() as usize == exn)
    }

    /// Frees every object that has not escaped and that no word of `stack`
    /// (and, transitively, no payload slot of a live object) points into.
    ///
    /// # Safety
    /// Only the thread running the owning store calls this; `stack` is readable
    /// and holds every word of the store's live Wasm frames (spilled
    /// callee-saved registers included).
    unsafe fn collect(&self, stack: std::ops::Range<usize>) {
        // SAFETY: per the contract.
        let state = unsafe { self.state() };
        state.collections += 1;
        // Object ranges sorted by address, for looking up interior pointers too.
        let mut ranges: Vec<(usize, usize, usize)> = state
            .objects
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let start = o.as_ptr() as usize;
                (start, start + o.len() * std::mem::size_of::<Slot>(), i)
            })
            .collect();
        ranges.sort_unstable();
        let find = |word: usize| -> Option<usize> {
            let after = ranges.partition_point(|&(start, _, _)| start <= word);
            let &(_, end, i) = ranges.get(after.checked_sub(1)?)?;
            (word < end).then_some(i)
        };
        let mut marked = vec![false; state.objects.len()];
        let mut work = Vec::new();
        for (i, object) in state.objects.iter().enumerate() {
            if escaped(object) {
                marked[i] = true;
                work.push(i);
            }
        }
        let mut address = stack.start & !7;
        while address + 8 <= stack.end {
            // SAFETY: per the contract, the range is readable stack; a volatile
            // read because it belongs to other (suspended) frames.
            let word = unsafe { std::ptr::read_volatile(address as *const usize) };
            if let Some(i) = find(word)
                && !marked[i]
            {
                marked[i] = true;
                work.push(i);
            }
            address += 8;
        }
        // Payloads: an exnref (or anything that looks like one) in a live object
        // keeps its target alive.
        while let Some(i) = work.pop() {
            for slot in &state.objects[i][1..] {
                for word in [*slot as u64 as usize, (*slot >> 64) as u64 as usize] {
                    if let Some(j) = find(word)
                        && !marked[j]
                    {
                        marked[j] = true;
                        work.push(j);
                    }
                }
            }
        }
        let mut i = 0;
        state.objects.retain_mut(|object| {
            i += 1;
            if !marked[i - 1] {
                // Zeroed before it is freed: a reference the collector missed
                // would then see no tag (caught by nothing) rather than a
                // plausible stale exception.
                object.fill(0);
            }
            marked[i - 1]
        });
        state.bytes = state.objects.iter().map(|o| object_bytes(o.len())).sum();
        state.threshold = (2 * state.objects.len()).max(INITIAL_COLLECTION_THRESHOLD);
    }
}

/// Whether an object's escaped byte is set.
fn escaped(object: &[Slot]) -> bool {
    (object[0] >> (8 * VMEXN_ESCAPED)) as u8 != 0
}

/// A view of a live exception object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExceptionRef(pub usize);

impl ExceptionRef {
    /// Marks the object escaped: it is never freed before its store (the host
    /// holds its address from now on).
    ///
    /// # Safety
    /// `self` is the address of a live exception object.
    pub unsafe fn pin(self) {
        // SAFETY: per the contract; the escaped byte is part of the header.
        unsafe { *((self.0 + VMEXN_ESCAPED as usize) as *mut u8) = 1 }
    }

    /// The thrown tag.
    ///
    /// # Safety
    /// `self` is the address of a live exception object.
    pub unsafe fn tag(self) -> *const VMTag {
        // SAFETY: slot 0 holds the tag's address.
        unsafe { *(self.0 as *const usize) as *const VMTag }
    }

    /// The `i`th payload slot (raw 16 bytes, as `ValRaw` lays values out).
    ///
    /// # Safety
    /// `self` is the address of a live exception object with more than `i` values.
    pub unsafe fn value(self, i: usize) -> u128 {
        // SAFETY: per the contract, slot `1 + i` exists.
        unsafe { *(self.0 as *const Slot).add(1 + i) }
    }

    /// Writes the `i`th payload slot.
    ///
    /// # Safety
    /// As for [`value`](Self::value); the object is not being read meanwhile.
    pub unsafe fn set_value(self, i: usize, value: u128) {
        // SAFETY: per the contract.
        unsafe { *(self.0 as *mut Slot).add(1 + i) = value }
    }
}

/// The `ExnNew` builtin: a new exception of the caller's tag `tag`.
///
/// # Safety
/// Called by compiled code with the VMContext of a live instance that has `tag`.
/// Returns 0 when the objects would pass the store's cap (`Config::gc_heap_limit`)
/// even after a collection; compiled code then traps with `GcHeapExhausted`.
///
/// # Safety
/// Called by compiled code with the VMContext of a live instance that has `tag`.
pub(crate) unsafe extern "C" fn exn_new(vmctx: *mut u8, tag: u32) -> u64 {
    // SAFETY: per the contract.
    unsafe {
        let instance = Instance::from_vmctx(vmctx);
        let tag = instance.tag_ptr(TagIndex(tag));
        let store = &*instance.store_context();
        let heap = &store.exceptions;
        let size = object_bytes(1 + (*tag).ty.params().len());
        let (due, over) = {
            let state = heap.state();
            (
                state.objects.len() >= state.threshold,
                state.bytes.saturating_add(size) > state.limit,
            )
        };
        if due || over {
            collect_in_wasm(store);
            let state = heap.state();
            if state.bytes.saturating_add(size) > state.limit {
                return 0;
            }
        }
        heap.allocate(tag) as u64
    }
}

/// A collection from a builtin called by the store's compiled code: scans this
/// thread's stack from here up to the outermost entry of the store's
/// activations. Collects nothing (and waits for twice as many objects) when
/// that range would not hold every live Wasm frame of the store: a stack
/// snapshot exists, or a call of the store runs on another thread or is
/// suspended on another stack (an async fiber).
///
/// # Safety
/// Called (indirectly) by compiled code of `store`, on this thread.
#[inline(never)]
unsafe fn collect_in_wasm(store: &VMStoreContext) {
    let heap = &store.exceptions;
    // SAFETY: this thread runs the store.
    let state = unsafe { heap.state() };
    // SAFETY: as above.
    let calls = unsafe { *store.wasm_calls.get() };
    let top = traphandlers::store_stack_top(store, calls);
    let Some(top) = top.filter(|_| !state.frozen) else {
        state.threshold = state.threshold.saturating_mul(2);
        return;
    };
    // Registers the Wasm callers may still hold references in (callee-saved
    // ones: values live across a call are there or in their frames), stored
    // into this frame so the scan below sees them.
    let registers = arch::callee_saved_registers();
    let bottom = registers.as_ptr() as usize;
    // SAFETY: `[bottom, top)` is this thread's live stack: this frame, the Rust
    // frames of the builtin, and every frame of the store's activations (all
    // on this stack, checked by `store_stack_top`).
    unsafe { heap.collect(bottom..top) };
    std::hint::black_box(&registers);
}

/// The `Throw` builtin, entered from [`wazerox_throw_stub`] with the return
/// address into the throwing code and that code's frame pointer: resumes at the
/// nearest landing block, or ends the innermost activation with the exception.
///
/// # Safety
/// Called (through the stub) by compiled code of this thread's innermost
/// activation, with `exn` a live exception object of its store. The Rust frames
/// this discards (its own) hold nothing that needs dropping when it jumps.
pub(crate) unsafe extern "C" fn throw(_vmctx: *mut u8, exn: usize, pc: usize, fp: usize) -> ! {
    let Some(entry_sp) = traphandlers::innermost_activation().map(|(_, _, sp)| sp) else {
        // Unreachable by the contract; an `extern "C"` caller cannot unwind.
        std::process::abort();
    };
    // SAFETY: `fp` is the frame pointer of the compiled code that called the stub,
    // on this thread's live stack below the activation's entry.
    if let Some((handler, sp, fp)) = unsafe { find_handler(pc, fp, entry_sp) } {
        // SAFETY: `find_handler` found a landing block whose frame is live; its
        // code expects the exception in the first payload register and the stack
        // and frame pointers of the call site; the frames below are discarded.
        unsafe { arch::wazerox_resume(handler, sp, fp, exn) }
    }
    // SAFETY: per the contract (nothing in this frame needs dropping).
    unsafe { traphandlers::raise_exception(exn) }
}

/// Walks the frame-pointer chain from the call whose return address is `pc` in
/// the frame at `fp`, up to `entry_sp`, and returns `(handler, sp, fp)` of the
/// first `try_call` site found.
///
/// # Safety
/// `fp` is the frame pointer of compiled code at `pc`, on this thread's live stack.
unsafe fn find_handler(
    mut pc: usize,
    mut fp: usize,
    entry_sp: usize,
) -> Option<(usize, usize, usize)> {
    loop {
        let (code, offset) = code_registry::lookup(pc)?;
        if let Some(h) = code.handler_at(offset) {
            return Some((
                code.code.base() + h.handler as usize,
                fp - h.sp_to_fp as usize,
                fp,
            ));
        }
        drop(code);
        if fp == 0 || !fp.is_multiple_of(8) || fp >= entry_sp {
            return None;
        }
        // SAFETY: compiled code keeps frame pointers: `fp` is a frame record
        // (saved frame pointer, return address) on the live stack below the entry.
        let (next_fp, return_address) =
            unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if next_fp <= fp || return_address == 0 {
            return None;
        }
        pc = return_address;
        fp = next_fp;
    }
}
