//! AArch64 host-call shim and restore routine (not yet exercised by CI, which runs
//! on x86-64).
//!
//! Unlike x86-64, the trampoline cannot make Cranelift save every callee-saved
//! register in its frame (no convention clobbers x28 and the high halves of v8–v15),
//! so a shim between the trampoline and the callback does it: it saves
//! `[x19..x28, d8..d15]` (144 bytes, padded to 160) in an exit record on its own
//! frame, followed by its saved x29/x30 pair, and passes the record's address to the
//! callback as the exit stack pointer.

use std::arch::global_asm;

use super::ExitFrame;

unsafe extern "C" {
    fn wazerox_host_shim();
    fn wazerox_host_shim_plain();
    fn wazerox_restore(src: *const u8, dst: *mut u8, len: usize) -> !;
}

/// Nothing beyond the exit record is needed to resume: the shim's frame is in it.
#[derive(Debug, Clone, Copy)]
pub(super) struct ResumePoint;

/// The address the Wasm→host trampoline calls: the shim, which calls the callback
/// stored at offset 8 of the host context.
pub fn host_entry_address(checkpoints: bool, _callback: usize) -> usize {
    if checkpoints {
        wazerox_host_shim as *const () as usize
    } else {
        wazerox_host_shim_plain as *const () as usize
    }
}

/// # Safety
/// `exit` is what the shim passed to the host callback that is still running.
pub(super) unsafe fn resume_point(exit: ExitFrame) -> Option<ResumePoint> {
    (exit.sp != 0).then_some(ResumePoint)
}

/// # Safety
/// See `super::restore`.
pub(super) unsafe fn jump_to_snapshot(
    src: *const u8,
    dst: usize,
    len: usize,
    _resume: ResumePoint,
) -> ! {
    // SAFETY: per the contract.
    unsafe { wazerox_restore(src, dst as *mut u8, len) }
}

global_asm!(
    ".text",
    ".p2align 4",
    ".globl wazerox_host_shim",
    ".type wazerox_host_shim, %function",
    "wazerox_host_shim:",
    "stp x29, x30, [sp, #-16]!",
    "mov x29, sp",
    "sub sp, sp, #160",
    "stp x19, x20, [sp, #0]",
    "stp x21, x22, [sp, #16]",
    "stp x23, x24, [sp, #32]",
    "stp x25, x26, [sp, #48]",
    "stp x27, x28, [sp, #64]",
    "stp d8, d9, [sp, #80]",
    "stp d10, d11, [sp, #96]",
    "stp d12, d13, [sp, #112]",
    "stp d14, d15, [sp, #128]",
    "ldr x9, [x0, #8]",
    "mov x4, sp",
    "blr x9",
    "mov sp, x29",
    "ldp x29, x30, [sp], #16",
    "ret",
    "wazerox_host_shim_resume:",
    "bl {finished}",
    "mov w0, #1",
    "mov sp, x29",
    "ldp x29, x30, [sp], #16",
    "ret",
    ".size wazerox_host_shim, . - wazerox_host_shim",
    "",
    ".p2align 4",
    ".globl wazerox_host_shim_plain",
    ".type wazerox_host_shim_plain, %function",
    "wazerox_host_shim_plain:",
    "mov x4, xzr",
    "ldr x9, [x0, #8]",
    "br x9",
    ".size wazerox_host_shim_plain, . - wazerox_host_shim_plain",
    "",
    ".p2align 4",
    ".globl wazerox_restore",
    ".type wazerox_restore, %function",
    "wazerox_restore:",
    "sub x10, x1, #256",
    "and x10, x10, #-16",
    "mov sp, x10",
    "mov x9, x1",
    "cbz x2, 2f",
    "1:",
    "ldrb w10, [x0], #1",
    "strb w10, [x1], #1",
    "subs x2, x2, #1",
    "b.ne 1b",
    "2:",
    "mov sp, x9",
    "add x29, x9, #160",
    "ldp x19, x20, [sp, #0]",
    "ldp x21, x22, [sp, #16]",
    "ldp x23, x24, [sp, #32]",
    "ldp x25, x26, [sp, #48]",
    "ldp x27, x28, [sp, #64]",
    "ldp d8, d9, [sp, #80]",
    "ldp d10, d11, [sp, #96]",
    "ldp d12, d13, [sp, #112]",
    "ldp d14, d15, [sp, #128]",
    "b wazerox_host_shim_resume",
    ".size wazerox_restore, . - wazerox_restore",
    finished = sym super::wazerox_restore_finished,
);
