//! AArch64: the jump buffer, the catch/unwind routines, and signal-context access.
//!
//! Same contract as the x86-64 module. The jump buffer holds the AAPCS64
//! callee-saved registers: x19–x28, the frame pointer x29, the link register x30,
//! sp, and the low halves d8–d15 of v8–v15. FPCR is callee-saved in its control
//! bits, but neither host nor compiled code changes it.

use std::arch::global_asm;

/// Callee-saved registers at the host→Wasm entry (offsets hard-coded below):
/// x19–x28 at 0..80, x29 and x30 at 80 and 88, sp at 96, d8–d15 at 104..168.
#[repr(C)]
#[derive(Default)]
pub(crate) struct JmpBuf {
    registers: [usize; 21],
}

const SP_SLOT: usize = 12;

/// Alignment of every frame pointer in the chain: AAPCS64 frame records are
/// 16-byte aligned.
pub(crate) const FRAME_POINTER_ALIGN: usize = 16;

/// The stack pointer `wazerox_catch_call` saved: its own frame, which bounds the
/// frames of the activation from above.
pub(crate) fn saved_stack_pointer(buf: *const JmpBuf) -> usize {
    // SAFETY: `buf` points at a live jump buffer filled by `wazerox_catch_call`.
    unsafe { (*buf).registers[SP_SLOT] }
}

unsafe extern "C" {
    /// Saves the callee-saved registers in `buf`, calls `callback(data)`, returns 0;
    /// returns 1 instead when `wazerox_unwind_to(buf)` runs during the callback.
    pub(crate) fn wazerox_catch_call(
        buf: *mut JmpBuf,
        callback: extern "C" fn(*mut u8),
        data: *mut u8,
    ) -> u32;
    /// Restores the registers saved in `buf` and returns 1 from its `wazerox_catch_call`.
    pub(crate) fn wazerox_unwind_to(buf: *mut JmpBuf) -> !;
}

global_asm!(
    ".text",
    ".p2align 4",
    ".globl wazerox_catch_call",
    ".hidden wazerox_catch_call",
    ".type wazerox_catch_call, %function",
    "wazerox_catch_call:",
    ".cfi_startproc",
    // A frame record of our own keeps the frame-pointer chain intact; sp stays
    // 16-byte aligned.
    "stp x29, x30, [sp, #-16]!",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset x29, -16",
    ".cfi_offset x30, -8",
    "mov x29, sp",
    ".cfi_def_cfa_register x29",
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
    ".cfi_def_cfa sp, 0",
    ".cfi_restore x29",
    ".cfi_restore x30",
    "ret",
    ".cfi_endproc",
    ".size wazerox_catch_call, . - wazerox_catch_call",
    "",
    ".p2align 4",
    ".globl wazerox_unwind_to",
    ".hidden wazerox_unwind_to",
    ".type wazerox_unwind_to, %function",
    "wazerox_unwind_to:",
    // Entered from a signal handler's return with sp still in the trapped frames;
    // nothing is stored before sp is replaced by the saved one.
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
    // Now exactly in `wazerox_catch_call`'s frame after its call: finish as it does.
    "ldp x29, x30, [sp], #16",
    "ret",
    ".size wazerox_unwind_to, . - wazerox_unwind_to",
);

/// Program counter and frame pointer of a signal context.
///
/// # Safety
/// `context` is the `ucontext_t` passed to an `SA_SIGINFO` signal handler.
pub(crate) unsafe fn context_pc_fp(context: *mut libc::c_void) -> (usize, usize) {
    // SAFETY: per the contract, `context` is a valid ucontext_t.
    unsafe {
        let mcontext = &(*context.cast::<libc::ucontext_t>()).uc_mcontext;
        (mcontext.pc as usize, mcontext.regs[29] as usize)
    }
}

/// Makes the interrupted thread continue in `wazerox_unwind_to(buf)` when the
/// signal handler returns. The stack pointer stays the trapped code's: valid stack
/// memory, which `wazerox_unwind_to` leaves before using any.
///
/// # Safety
/// `context` is the `ucontext_t` passed to a signal handler; `buf` a live jump
/// buffer of this thread.
pub(crate) unsafe fn resume_in_unwind(context: *mut libc::c_void, buf: *mut JmpBuf) {
    // SAFETY: per the contract, `context` is a valid ucontext_t that the kernel
    // restores when the handler returns.
    unsafe {
        let mcontext = &mut (*context.cast::<libc::ucontext_t>()).uc_mcontext;
        mcontext.pc = wazerox_unwind_to as *const () as u64;
        mcontext.regs[0] = buf as u64;
    }
}
