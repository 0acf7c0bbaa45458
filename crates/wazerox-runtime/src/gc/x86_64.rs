//! x86-64: the `GcAlloc` builtin's entry stub.

use std::arch::global_asm;

unsafe extern "C" {
    /// The `GcAlloc` builtin as compiled code calls it: `(vmctx, ty, length)`.
    /// Adds the return address and the caller's frame pointer (rbp: compiled
    /// code keeps frame pointers), where a collection starts walking the Wasm
    /// frames, and tail-jumps to [`super::gc_alloc`].
    pub(crate) fn wazerox_gc_alloc_stub(vmctx: *mut u8, ty: u32, length: u32) -> u64;
}

global_asm!(
    ".text",
    ".p2align 4",
    ".globl wazerox_gc_alloc_stub",
    ".hidden wazerox_gc_alloc_stub",
    ".type wazerox_gc_alloc_stub, @function",
    "wazerox_gc_alloc_stub:",
    // rdi = vmctx, esi = ty, edx = length; the return address is at [rsp]. The
    // stack is as the call left it, so the jump is a call of `gc_alloc` made by
    // the compiled code, and `gc_alloc` returns straight to it.
    "mov rcx, [rsp]",
    "mov r8, rbp",
    "jmp {gc_alloc}",
    ".size wazerox_gc_alloc_stub, . - wazerox_gc_alloc_stub",
    gc_alloc = sym super::gc_alloc,
);
