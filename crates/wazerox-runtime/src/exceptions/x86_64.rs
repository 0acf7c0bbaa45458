//! x86-64: the `Throw` builtin's entry stub and the jump into a landing block.

use std::arch::global_asm;

unsafe extern "C" {
    /// The `Throw` builtin as compiled code calls it: `(vmctx, exn)`. Adds the
    /// return address and the caller's frame pointer (rbp: compiled code keeps
    /// frame pointers) and tail-jumps to [`super::throw`].
    pub(crate) fn wazerox_throw_stub(vmctx: *mut u8, exn: usize) -> !;
    /// Continues at `pc` with rsp = `sp`, rbp = `fp` and the exception in rax,
    /// the first exception payload register of Cranelift's `tail` convention.
    pub(crate) fn wazerox_resume(pc: usize, sp: usize, fp: usize, exn: usize) -> !;
}

global_asm!(
    ".text",
    ".p2align 4",
    ".globl wazerox_throw_stub",
    ".hidden wazerox_throw_stub",
    ".type wazerox_throw_stub, @function",
    "wazerox_throw_stub:",
    // rdi = vmctx, rsi = exn; the return address is at [rsp]. The stack is as the
    // call left it, so the jump is a call of `throw` made by the compiled code.
    "mov rdx, [rsp]",
    "mov rcx, rbp",
    "jmp {throw}",
    ".size wazerox_throw_stub, . - wazerox_throw_stub",
    "",
    ".p2align 4",
    ".globl wazerox_resume",
    ".hidden wazerox_resume",
    ".type wazerox_resume, @function",
    "wazerox_resume:",
    "mov rsp, rsi",
    "mov rbp, rdx",
    "mov rax, rcx",
    "jmp rdi",
    ".size wazerox_resume, . - wazerox_resume",
    throw = sym super::throw,
);

/// The callee-saved registers (rbx, rbp, r12–r15): the words a collection
/// must see besides the stack.
#[inline(always)]
pub(crate) fn callee_saved_registers() -> [usize; 6] {
    let mut registers = [0usize; 6];
    // SAFETY: stores six registers into the array; touches nothing else.
    unsafe {
        std::arch::asm!(
            "mov [{0}], rbx",
            "mov [{0} + 8], rbp",
            "mov [{0} + 16], r12",
            "mov [{0} + 24], r13",
            "mov [{0} + 32], r14",
            "mov [{0} + 40], r15",
            in(reg) registers.as_mut_ptr(),
            options(nostack, preserves_flags),
        );
    }
    registers
}
