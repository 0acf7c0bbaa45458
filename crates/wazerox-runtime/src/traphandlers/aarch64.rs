//! AArch64: the jump buffer, the catch/unwind routines, and signal-context access.
//! Same contract as the x86-64 module; not yet exercised by CI (x86-64 only).

use std::arch::global_asm;

/// Callee-saved registers at the host→Wasm entry: x19–x28, x29 (fp), x30 (lr),
/// sp, d8–d15.
#[repr(C)]
#[derive(Default)]
pub(crate) struct JmpBuf {
    registers: [usize; 21],
}

const SP_SLOT: usize = 12;

pub(crate) fn saved_stack_pointer(buf: *const JmpBuf) -> usize {
    // SAFETY: `buf` points at a live jump buffer filled by `wazerox_catch_call`.
    unsafe { (*buf).registers[SP_SLOT] }
}

unsafe extern "C" {
    pub(crate) fn wazerox_catch_call(
        buf: *mut JmpBuf,
        callback: extern "C" fn(*mut u8),
        data: *mut u8,
    ) -> u32;
    pub(crate) fn wazerox_unwind_to(buf: *mut JmpBuf) -> !;
}

global_asm!(
    ".text",
    ".p2align 4",
    ".globl wazerox_catch_call",
    ".type wazerox_catch_call, %function",
    "wazerox_catch_call:",
    "stp x29, x30, [sp, #-16]!",
    "mov x29, sp",
    "stp x19, x20, [x0, #0]",
    "stp x21, x22, [x0, #16]",
    "stp x23, x24, [x0, #32]",
    "stp x25, x26, [x0, #48]",
    "stp x27, x28, [x0, #64]",
    "stp x29, x30, [x0, #80]",
    "mov x9, sp",
    "str x9, [x0, #96]",
    "stp d8, d9, [x0, #104]",
    "stp d10, d11, [x0, #120]",
    "stp d12, d13, [x0, #136]",
    "stp d14, d15, [x0, #152]",
    "mov x9, x1",
    "mov x0, x2",
    "blr x9",
    "mov w0, #0",
    "ldp x29, x30, [sp], #16",
    "ret",
    ".size wazerox_catch_call, . - wazerox_catch_call",
    "",
    ".p2align 4",
    ".globl wazerox_unwind_to",
    ".type wazerox_unwind_to, %function",
    "wazerox_unwind_to:",
    "ldp x19, x20, [x0, #0]",
    "ldp x21, x22, [x0, #16]",
    "ldp x23, x24, [x0, #32]",
    "ldp x25, x26, [x0, #48]",
    "ldp x27, x28, [x0, #64]",
    "ldp x29, x30, [x0, #80]",
    "ldr x9, [x0, #96]",
    "mov sp, x9",
    "ldp d8, d9, [x0, #104]",
    "ldp d10, d11, [x0, #120]",
    "ldp d12, d13, [x0, #136]",
    "ldp d14, d15, [x0, #152]",
    "mov w0, #1",
    "ldp x29, x30, [sp], #16",
    "ret",
    ".size wazerox_unwind_to, . - wazerox_unwind_to",
);

/// # Safety
/// `context` is the `ucontext_t` passed to a signal handler.
pub(crate) unsafe fn context_pc_fp(context: *mut libc::c_void) -> (usize, usize) {
    // SAFETY: per the contract.
    unsafe {
        let mcontext = &(*context.cast::<libc::ucontext_t>()).uc_mcontext;
        (mcontext.pc as usize, mcontext.regs[29] as usize)
    }
}

/// # Safety
/// `context` is the `ucontext_t` passed to a signal handler; `buf` a live jump
/// buffer of this thread.
pub(crate) unsafe fn resume_in_unwind(context: *mut libc::c_void, buf: *mut JmpBuf) {
    // SAFETY: per the contract.
    unsafe {
        let mcontext = &mut (*context.cast::<libc::ucontext_t>()).uc_mcontext;
        mcontext.pc = wazerox_unwind_to as *const () as u64;
        mcontext.regs[0] = buf as u64;
    }
}
