//! x86-64: the jump buffer, the catch/unwind routines, and signal-context access.
//!
//! The jump buffer holds the System V callee-saved general registers. The x87 and
//! MXCSR control words are callee-saved too, but neither host nor compiled code
//! changes them, so there is nothing to restore.

use std::arch::global_asm;

/// Callee-saved registers at the host→Wasm entry: rbx, rbp, r12–r15, rsp (the
/// offsets below are hard-coded in the assembly).
#[repr(C)]
#[derive(Default)]
pub(crate) struct JmpBuf {
    registers: [usize; 7],
}

const SP_SLOT: usize = 6;

/// Alignment of every frame pointer in the chain: a frame record is two words.
pub(crate) const FRAME_POINTER_ALIGN: usize = 8;

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
    ".type wazerox_catch_call, @function",
    "wazerox_catch_call:",
    ".cfi_startproc",
    // A frame of our own keeps the frame-pointer chain intact for backtraces and
    // leaves the stack 16-byte aligned for the call below (entry: 8 mod 16).
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset rbp, -16",
    "mov rbp, rsp",
    ".cfi_def_cfa_register rbp",
    "mov [rdi], rbx",
    "mov [rdi + 8], rbp",
    "mov [rdi + 16], r12",
    "mov [rdi + 24], r13",
    "mov [rdi + 32], r14",
    "mov [rdi + 40], r15",
    "mov [rdi + 48], rsp",
    "mov rax, rsi",
    "mov rdi, rdx",
    "call rax",
    "xor eax, eax",
    "pop rbp",
    ".cfi_def_cfa rsp, 8",
    "ret",
    ".cfi_endproc",
    ".size wazerox_catch_call, . - wazerox_catch_call",
    "",
    ".p2align 4",
    ".globl wazerox_unwind_to",
    ".hidden wazerox_unwind_to",
    ".type wazerox_unwind_to, @function",
    "wazerox_unwind_to:",
    // Entered from a signal handler's return with rsp still in the trapped frames;
    // nothing is pushed before rsp is replaced by the saved one.
    "mov rbx, [rdi]",
    "mov rbp, [rdi + 8]",
    "mov r12, [rdi + 16]",
    "mov r13, [rdi + 24]",
    "mov r14, [rdi + 32]",
    "mov r15, [rdi + 40]",
    "mov rsp, [rdi + 48]",
    "mov eax, 1",
    // Now exactly in `wazerox_catch_call`'s frame after its call: finish as it does.
    "pop rbp",
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
        let gregs = &(*context.cast::<libc::ucontext_t>()).uc_mcontext.gregs;
        (
            gregs[libc::REG_RIP as usize] as usize,
            gregs[libc::REG_RBP as usize] as usize,
        )
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
        let gregs = &mut (*context.cast::<libc::ucontext_t>()).uc_mcontext.gregs;
        gregs[libc::REG_RIP as usize] = wazerox_unwind_to as *const () as i64;
        gregs[libc::REG_RDI as usize] = buf as i64;
    }
}
