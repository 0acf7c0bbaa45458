//! x86-64 host-call shim and restore routine.
//!
//! Exit record (at the shim's stack pointer, 16-byte aligned):
//! `[rbx, r12, r13, r14, r15, padding]`, then the shim's saved rbp and its return
//! address into the trampoline.

use std::arch::global_asm;

unsafe extern "C" {
    fn wazerox_host_shim();
    fn wazerox_host_shim_plain();
    /// Copies `len` bytes from `src` to `dst` (the exit record), reloads the
    /// callee-saved registers from the revived record and resumes the shim.
    pub(super) fn wazerox_restore(src: *const u8, dst: *mut u8, len: usize) -> !;
}

/// Address of the shim the Wasm→host trampoline calls: `shim(host_ctx,
/// caller_vmctx, values, len)` loads the real callback from `host_ctx + 8` and calls
/// it with the exit record as a fifth argument.
pub fn host_shim_address() -> usize {
    wazerox_host_shim as *const () as usize
}

/// The shim for engines without checkpoints: no frame, no stores — it passes a null
/// exit record and jumps straight to the callback.
pub fn plain_host_shim_address() -> usize {
    wazerox_host_shim_plain as *const () as usize
}

global_asm!(
    ".text",
    ".p2align 4",
    ".globl wazerox_host_shim",
    ".type wazerox_host_shim, @function",
    "wazerox_host_shim:",
    "push rbp",
    "mov rbp, rsp",
    "sub rsp, 48",
    "mov [rsp], rbx",
    "mov [rsp + 8], r12",
    "mov [rsp + 16], r13",
    "mov [rsp + 24], r14",
    "mov [rsp + 32], r15",
    "mov r8, rsp",
    "call qword ptr [rdi + 8]",
    "mov rsp, rbp",
    "pop rbp",
    "ret",
    // A restore lands here with rsp at the revived exit record.
    "wazerox_host_shim_resume:",
    "call {finished}",
    "mov eax, 1",
    "mov rsp, rbp",
    "pop rbp",
    "ret",
    ".size wazerox_host_shim, . - wazerox_host_shim",
    "",
    ".p2align 4",
    ".globl wazerox_host_shim_plain",
    ".type wazerox_host_shim_plain, @function",
    "wazerox_host_shim_plain:",
    "xor r8d, r8d",
    "jmp qword ptr [rdi + 8]",
    ".size wazerox_host_shim_plain, . - wazerox_host_shim_plain",
    "",
    ".p2align 4",
    ".globl wazerox_restore",
    ".type wazerox_restore, @function",
    "wazerox_restore:",
    // Move the stack below the region first, so nothing (e.g. a signal frame) is
    // pushed into bytes already restored.
    "lea rsp, [rsi - 256]",
    "and rsp, -16",
    "mov r8, rsi",
    "mov rcx, rdx",
    "xchg rdi, rsi",
    "cld",
    "rep movsb",
    "mov rsp, r8",
    "lea rbp, [r8 + 48]",
    "mov rbx, [r8]",
    "mov r12, [r8 + 8]",
    "mov r13, [r8 + 16]",
    "mov r14, [r8 + 24]",
    "mov r15, [r8 + 32]",
    "jmp wazerox_host_shim_resume",
    ".size wazerox_restore, . - wazerox_restore",
    finished = sym super::wazerox_restore_finished,
);
