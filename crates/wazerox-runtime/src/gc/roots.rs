//! Collection inside a Wasm call (docs/gc.md, "Roots, safepoints"): the roots
//! held in the Wasm frames of the running activation, found with the stack maps
//! the compiler recorded per call site.

use super::GcHeap;
use crate::code_registry;
use crate::traphandlers::{self, FRAME_POINTER_ALIGN};
use crate::vmcontext::VMStoreContext;

/// What the embedding API registers in a store's context so the runtime can
/// collect inside a call: `(store, roots)` appends every any-hierarchy word the
/// store holds outside Wasm frames (globals, tables, host handles) and returns
/// true, or returns false when a collection must not run now (a Wasm frame of
/// the store lives outside the innermost activation: a nested call or a
/// suspended async call; a snapshot could restore frames the walk cannot see).
///
/// # Safety
/// `store` is the pointer in [`VMStoreContext::store`], set by the running call.
pub type GcRootsHook = unsafe fn(store: *mut u8, roots: &mut Vec<u64>) -> bool;

/// Collects `store`'s heap from inside a call of its compiled code, if every
/// root can be found: the hook's, and the stack-map slots of every Wasm frame
/// from the call at `pc` in the frame at `fp` up to the activation's entry.
/// Returns whether it collected.
///
/// # Safety
/// Called from a builtin that compiled code of `store` called, on the thread
/// running it: `pc` is that call's return address and `fp` the calling frame's
/// frame pointer; `store` is the store context of that code.
pub(crate) unsafe fn collect_in_call(store: &VMStoreContext, pc: usize, fp: usize) -> bool {
    // SAFETY: the thread running the store's code, between two accesses.
    let Some(hook) = (unsafe { *store.gc_roots_hook.get() }) else {
        return false;
    };
    let Some((_, activation_store, entry_sp)) = traphandlers::innermost_activation() else {
        return false;
    };
    if !std::ptr::eq(activation_store, store) {
        return false;
    }
    let mut roots = Vec::new();
    // The hook first: it refuses cheaply while other calls of the store are live.
    // SAFETY: the store pointer the running call set; the hook is the API's.
    if !unsafe { hook(*store.store.get(), &mut roots) } {
        return false;
    }
    let mut frame_words = Vec::new();
    // SAFETY: per the contract, `fp` is a frame of the innermost activation.
    if !unsafe { frame_roots(pc, fp, entry_sp, &mut frame_words) } {
        return false;
    }
    // SAFETY: as below.
    unsafe { store.gc.retain_objects(&mut frame_words) };
    roots.extend(frame_words);
    let heap: &GcHeap = &store.gc;
    // SAFETY: the roots are complete: the hook's, and every Wasm frame of the
    // store (the hook checked that the innermost activation holds all of them,
    // and the walk reached its entry). The heap is not in use: the builtin that
    // called us holds no reference into it.
    unsafe { heap.collect(roots) };
    true
}

/// Appends the words in the stack-map slots of every Wasm frame, from the call
/// whose return address is `pc` in the frame at `fp` up to the activation's
/// entry (its host→Wasm trampoline, the first frame whose return address lies
/// in registered code but in no Wasm function). Returns false, and the caller
/// must not collect, when the chain cannot be followed to that trampoline.
///
/// # Safety
/// `fp` is the frame pointer of compiled code at `pc` on this thread's live
/// stack, below `entry_sp`, the activation's entry.
unsafe fn frame_roots(mut pc: usize, mut fp: usize, entry_sp: usize, out: &mut Vec<u64>) -> bool {
    loop {
        if fp == 0 || !fp.is_multiple_of(FRAME_POINTER_ALIGN) || fp >= entry_sp {
            return false;
        }
        let Some((code, offset)) = code_registry::lookup(pc) else {
            return false;
        };
        // `offset - 1`: the return address of a call ending its function is
        // that function's end.
        if code.function_at(offset.saturating_sub(1)).is_none() {
            // The entry trampoline: every Wasm frame was seen.
            return true;
        }
        if let Some(map) = code.stack_map_at(offset) {
            let Some(sp) = fp.checked_sub(map.frame_size as usize) else {
                return false;
            };
            for slot in &map.slots {
                // SAFETY: the stack map describes this frame at this call: each
                // slot is an 8-byte word between its stack and frame pointers.
                out.push(unsafe { ((sp + *slot as usize) as *const u64).read() });
            }
        }
        // SAFETY: compiled code keeps frame pointers: `fp` is a frame record
        // (saved frame pointer, return address) on the live stack below the
        // entry (checked above).
        let (next_fp, return_address) =
            unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if next_fp <= fp || return_address == 0 {
            return false;
        }
        pc = return_address;
        fp = next_fp;
    }
}
