//! Exceptions: tags, exception objects, and throwing.
//!
//! - A **tag** is a [`VMTag`]; its address is its identity. A defined tag belongs
//!   to its instance, a host-created one to its store; imports copy the pointer.
//!   Each VMContext lists its tags' addresses, so compiled code compares a thrown
//!   exception's tag with a `catch` clause's by one load and one compare.
//! - An **exception object** (what an `exnref` points at) is a block of 16-byte
//!   slots owned by the store's [`ExceptionHeap`]: slot 0 holds the tag's address,
//!   the payload follows (`VMEXN_*` in `wazerox_environ::vmoffsets`). Objects live
//!   as long as their store (there is no collector); an exnref held in a global
//!   or table therefore never dangles.
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
use std::cell::UnsafeCell;
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

/// Payload slots are 16 bytes; slot 0 is the header (the tag's address).
type Slot = u128;

/// The store's exception objects. Only the thread running the store touches it.
#[derive(Debug, Default)]
pub struct ExceptionHeap {
    objects: UnsafeCell<Vec<Box<[Slot]>>>,
}

impl ExceptionHeap {
    /// A new exception of `tag` with a zeroed payload; returns its address.
    ///
    /// # Safety
    /// Only the thread running the owning store calls this, and `tag` is live.
    pub unsafe fn allocate(&self, tag: *const VMTag) -> *mut u8 {
        // SAFETY: per the contract.
        let values = unsafe { (*tag).ty.params().len() };
        let mut object = vec![0 as Slot; 1 + values].into_boxed_slice();
        object[0] = tag as usize as Slot;
        let address = object.as_mut_ptr().cast::<u8>();
        // SAFETY: per the contract, no other reference to the vector exists now.
        unsafe { (*self.objects.get()).push(object) };
        address
    }

    /// Whether `exn` is the address of one of this heap's objects (checks
    /// exnrefs that come from the embedder).
    ///
    /// # Safety
    /// Only the thread running the owning store calls this.
    pub unsafe fn contains(&self, exn: usize) -> bool {
        // SAFETY: per the contract.
        let objects = unsafe { &*self.objects.get() };
        objects.iter().any(|o| o.as_ptr() as usize == exn)
    }
}

/// A view of a live exception object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExceptionRef(pub usize);

impl ExceptionRef {
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
pub(crate) unsafe extern "C" fn exn_new(vmctx: *mut u8, tag: u32) -> u64 {
    // SAFETY: per the contract.
    unsafe {
        let instance = Instance::from_vmctx(vmctx);
        let tag = instance.tag_ptr(TagIndex(tag));
        let store = instance.store_context();
        (*store).exceptions.allocate(tag) as u64
    }
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
