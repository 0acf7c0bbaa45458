//! x86-64: host calls need no shim. With checkpoints, the Wasm→host trampoline calls
//! the Rust callback directly under a convention that clobbers every register, so
//! its own prologue saves the callee-saved registers (rbx, r12–r15) in its frame, and
//! it passes its stack pointer at the call and its frame pointer (the exit frame).
//! The return address into the trampoline sits just below that stack pointer.
//!
//! A restore copies the saved bytes back (the trampoline's frame and every Wasm frame
//! above it), puts rsp and rbp back as they were at the call, and jumps to that return
//! address with eax = 1 ("callback succeeded"). The trampoline keeps nothing in
//! registers across the call, and its epilogue reloads the Wasm caller's callee-saved
//! registers from the revived frame, so the machine state is the one the first return
//! produced.

use super::ExitFrame;
use std::arch::global_asm;

unsafe extern "C" {
    /// Copies `len` bytes from `src` to `dst` (the exit stack pointer), then resumes
    /// the trampoline at `resume_pc` with rsp = `dst` and rbp = `frame_pointer`.
    fn wazerox_restore(
        src: *const u8,
        dst: *mut u8,
        len: usize,
        frame_pointer: usize,
        resume_pc: usize,
    ) -> !;
}

/// Where a restore resumes: the trampoline's frame pointer and the return address
/// of its call to the host.
#[derive(Debug, Clone, Copy)]
pub(super) struct ResumePoint {
    frame_pointer: usize,
    pc: usize,
}

/// The address the Wasm→host trampoline calls: the callback itself.
pub fn host_entry_address(_checkpoints: bool, callback: usize) -> usize {
    callback
}

/// Reads the resume point of the host call that reported `exit`.
///
/// # Safety
/// `exit` is what the trampoline passed to the host callback that is still running.
pub(super) unsafe fn resume_point(exit: ExitFrame) -> Option<ResumePoint> {
    if exit.sp == 0 || !exit.sp.is_multiple_of(16) || exit.fp <= exit.sp {
        return None;
    }
    // SAFETY: the trampoline's `call` pushed its return address just below the
    // stack pointer it reported, and the callback it called is still running, so
    // that slot is intact.
    let pc = unsafe { ((exit.sp - 8) as *const usize).read() };
    Some(ResumePoint {
        frame_pointer: exit.fp,
        pc,
    })
}

/// # Safety
/// See `super::restore`: `dst` is the exit stack pointer of the snapshot, `src`
/// its saved bytes, and the stack below the snapshot's region is dead.
pub(super) unsafe fn jump_to_snapshot(
    src: *const u8,
    dst: usize,
    len: usize,
    resume: ResumePoint,
) -> ! {
    // SAFETY: per the contract.
    unsafe { wazerox_restore(src, dst as *mut u8, len, resume.frame_pointer, resume.pc) }
}

global_asm!(
    ".text",
    ".p2align 4",
    ".globl wazerox_restore",
    ".type wazerox_restore, @function",
    "wazerox_restore:",
    // Move the stack below the region first, so nothing (e.g. a signal frame) is
    // pushed into bytes already restored.
    "lea rsp, [rsi - 256]",
    "and rsp, -16",
    "mov r12, rsi",
    "mov r13, rcx",
    "mov r14, r8",
    "mov rcx, rdx",
    "xchg rdi, rsi",
    "cld",
    "rep movsb",
    // rsp is where the trampoline's call left it (16-byte aligned, as at any
    // call); the result writer runs below the revived region.
    "mov rsp, r12",
    "call {finished}",
    "mov rbp, r13",
    "mov eax, 1",
    "jmp r14",
    ".size wazerox_restore, . - wazerox_restore",
    finished = sym super::wazerox_restore_finished,
);
