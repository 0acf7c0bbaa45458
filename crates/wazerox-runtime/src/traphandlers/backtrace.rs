//! Wasm backtraces from the frame-pointer chain.
//!
//! Compiled code keeps frame pointers, so each frame starts with a record
//! `[previous fp, return address]` (x86-64: pushed rbp and the call's return
//! address; AArch64: the x29/x30 pair). The walk happens in two steps:
//! - [`capture_frames`], in the signal handler, copies the raw PCs into a
//!   preallocated buffer. It must run there: once the handler resumes the thread in
//!   the unwind routine, the trapped frames' stack is reused by Rust code.
//! - [`symbolize`], after unwinding, maps PCs to Wasm functions with the code
//!   registry and drops every PC outside a function range (trampolines, the
//!   host-call shim, and the Rust frames between the entry and the first JIT frame).

use super::arch;
use crate::code_registry::{self, ModuleCode};
use std::sync::Arc;

/// Wasm frames of a trap, innermost first.
#[derive(Debug, Default, Clone)]
pub struct Backtrace {
    pub frames: Vec<BacktraceFrame>,
}

/// One Wasm function activation in a [`Backtrace`].
#[derive(Debug, Clone)]
pub struct BacktraceFrame {
    /// The code (and names) of the function's module.
    pub module: Arc<ModuleCode>,
    /// The function's index in its module (imports counted).
    pub func_index: u32,
    /// Offset of the PC from the start of the function's code: the trapping
    /// instruction for the innermost frame, the call instruction for the others.
    pub func_offset: u32,
    /// Offset in the module binary of the Wasm instruction at that PC, when known.
    pub wasm_offset: Option<u32>,
}

/// Most frames a backtrace records (the innermost ones).
pub(crate) const MAX_BACKTRACE_FRAMES: usize = 1024;

/// Copies the PCs of the frame-pointer chain, from a trap up to the activation's
/// entry, into `buffer`, and returns how many it wrote (at most
/// `MAX_BACKTRACE_FRAMES`). Return addresses are stored minus one, so a call that is
/// the last instruction of its function still maps to that function.
///
/// Runs in the signal handler: no allocation, no locks. Every frame pointer is
/// checked before it is read: non-zero, aligned, strictly above the previous one
/// (the stack grows down, so callers' frames are higher), and below `entry_sp`,
/// the stack pointer `wazerox_catch_call` saved. Those checks confine every read to
/// the live stack between the trapped frame and the entry, even when a frame on the
/// way (host code built without frame pointers) left an arbitrary value in the
/// frame-pointer register.
///
/// # Safety
/// `fp` is the frame-pointer register at `pc` on this thread's stack, and the stack
/// between the trapped code and `entry_sp` is live; `buffer` holds
/// `MAX_BACKTRACE_FRAMES` words.
pub(crate) unsafe fn capture_frames(
    pc: usize,
    fp: usize,
    entry_sp: usize,
    buffer: *mut usize,
) -> usize {
    let (mut pc, mut fp) = (pc, fp);
    let mut count = 0;
    while count < MAX_BACKTRACE_FRAMES {
        // SAFETY: `count` is within the buffer.
        unsafe { buffer.add(count).write(pc) };
        count += 1;
        if fp == 0 || !fp.is_multiple_of(arch::FRAME_POINTER_ALIGN) || fp >= entry_sp {
            break;
        }
        // SAFETY: `fp` lies on the live stack below the entry's frame (checked
        // above; `entry_sp` is itself the address of a frame record, so the word
        // after `fp` is also below or at it and readable).
        let (next_fp, return_address) =
            unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if next_fp <= fp || return_address == 0 {
            break;
        }
        pc = return_address - 1;
        fp = next_fp;
    }
    count
}

/// Maps captured PCs to Wasm functions; PCs outside Wasm functions are dropped.
pub(crate) fn symbolize(pcs: &[usize]) -> Backtrace {
    let frames = pcs
        .iter()
        .filter_map(|&pc| {
            let (module, offset) = code_registry::lookup(pc)?;
            let function = *module.function_at(offset)?;
            Some(BacktraceFrame {
                func_index: function.func_index,
                func_offset: offset - function.start,
                wasm_offset: module.wasm_offset_at(offset),
                module,
            })
        })
        .collect();
    Backtrace { frames }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake stack of frame records: `[fp, ret]` pairs at increasing addresses.
    struct FakeStack {
        /// 16-byte-aligned base inside `_words`, the only pointer used for access.
        base: *mut usize,
        _words: Vec<usize>,
    }

    impl FakeStack {
        fn new() -> FakeStack {
            // One spare word so that a 16-byte-aligned base leaves 16 words.
            let mut words = vec![0usize; 17];
            let raw = words.as_mut_ptr();
            let skip = (raw as usize).next_multiple_of(16) - raw as usize;
            FakeStack {
                // SAFETY: `skip` is 0 or 8 bytes, inside the allocation.
                base: unsafe { raw.byte_add(skip) },
                _words: words,
            }
        }

        /// Address of word `i < 16`.
        fn at(&self, i: usize) -> usize {
            self.base as usize + i * 8
        }

        fn set(&self, i: usize, value: usize) {
            assert!(i < 16);
            // SAFETY: within the allocation (checked above), accessed only
            // through `base`.
            unsafe { self.base.add(i).write(value) };
        }
    }

    #[test]
    fn walk_follows_records_and_stops_at_the_entry() {
        let stack = FakeStack::new();
        // Frame records at words 0, 4, 8; the entry is at word 12.
        stack.set(0, stack.at(4));
        stack.set(1, 0x1001);
        stack.set(4, stack.at(8));
        stack.set(5, 0x2001);
        stack.set(8, stack.at(14)); // beyond the entry: the walk stops there
        stack.set(9, 0x3001);
        let mut buffer = vec![0usize; MAX_BACKTRACE_FRAMES];
        let (fp, entry) = (stack.at(0), stack.at(12));
        // SAFETY: the fake stack is live and the buffer has room.
        let n = unsafe { capture_frames(0x500, fp, entry, buffer.as_mut_ptr()) };
        assert_eq!(&buffer[..n], &[0x500, 0x1000, 0x2000, 0x3000]);
    }

    #[test]
    fn walk_stops_at_a_non_increasing_or_misaligned_frame_pointer() {
        let stack = FakeStack::new();
        stack.set(4, stack.at(0)); // points back down: a loop
        stack.set(5, 0x2001);
        let mut buffer = vec![0usize; MAX_BACKTRACE_FRAMES];
        let (fp, entry) = (stack.at(4), stack.at(15));
        // SAFETY: as above.
        let n = unsafe { capture_frames(0x500, fp, entry, buffer.as_mut_ptr()) };
        assert_eq!(&buffer[..n], &[0x500]);
        // SAFETY: as above; a misaligned fp is never dereferenced.
        let n = unsafe { capture_frames(0x500, fp + 3, entry, buffer.as_mut_ptr()) };
        assert_eq!(n, 1);
        // SAFETY: as above; a zero fp is never dereferenced.
        let n = unsafe { capture_frames(0x500, 0, entry, buffer.as_mut_ptr()) };
        assert_eq!(n, 1);
    }
}
