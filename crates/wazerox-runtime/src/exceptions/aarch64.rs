//! AArch64: the `Throw` builtin's entry stub and the jump into a landing block.

use std::arch::global_asm;

unsafe extern "C" {
    /// The `Throw` builtin as compiled code calls it: `(vmctx, exn)`. Adds the
    /// return address (x30) and the caller's frame pointer (x29: compiled code
    /// keeps frame pointers) and tail-jumps to [`super::throw`].
    pub(crate) fn wazerox_throw_stub(vmctx: *mut u8, exn: usize) -> !;
    /// Continues at `pc` with sp = `sp`, x29 = `fp` and the exception in x0, the
    /// first exception payload register of Cranelift's `tail` convention.
    pub(crate) fn wazerox_resume(pc: usize, sp: usize, fp: usize, exn: usize) -> !;
}

global_asm!(
    ".text",
    ".p2align 4",
    ".globl wazerox_throw_stub",
    ".hidden wazerox_throw_stub",
    ".type wazerox_throw_stub, %function",
    "wazerox_throw_stub:",
    "mov x2, x30",
    "mov x3, x29",
    "b {throw}",
    ".size wazerox_throw_stub, . - wazerox_throw_stub",
    "",
    ".p2align 4",
    ".globl wazerox_resume",
    ".hidden wazerox_resume",
    ".type wazerox_resume, %function",
    "wazerox_resume:",
    "mov x16, x0",
    "mov sp, x1",
    "mov x29, x2",
    "mov x0, x3",
    "br x16",
    ".size wazerox_resume, . - wazerox_resume",
    throw = sym super::throw,
);

/// The callee-saved general registers (x19–x29): the words a collection must
/// see besides the stack.
#[inline(always)]
pub(crate) fn callee_saved_registers() -> [usize; 12] {
    let mut registers = [0usize; 12];
    // SAFETY: stores twelve registers into the array; touches nothing else.
    unsafe {
        std::arch::asm!(
            "stp x19, x20, [{0}]",
            "stp x21, x22, [{0}, #16]",
            "stp x23, x24, [{0}, #32]",
            "stp x25, x26, [{0}, #48]",
            "stp x27, x28, [{0}, #64]",
            "stp x29, xzr, [{0}, #80]",
            in(reg) registers.as_mut_ptr(),
            options(nostack, preserves_flags),
        );
    }
    registers
}
