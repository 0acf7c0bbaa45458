//! AArch64: the `GcAlloc` builtin's entry stub.

use std::arch::global_asm;

unsafe extern "C" {
    /// The `GcAlloc` builtin as compiled code calls it: `(vmctx, ty, length)`.
    /// Adds the return address (x30) and the caller's frame pointer (x29:
    /// compiled code keeps frame pointers), where a collection starts walking
    /// the Wasm frames, and tail-jumps to [`super::gc_alloc`].
    pub(crate) fn wazerox_gc_alloc_stub(vmctx: *mut u8, ty: u32, length: u32) -> u64;
}

global_asm!(
    ".text",
    ".p2align 4",
    ".globl wazerox_gc_alloc_stub",
    ".hidden wazerox_gc_alloc_stub",
    ".type wazerox_gc_alloc_stub, %function",
    "wazerox_gc_alloc_stub:",
    "mov x3, x30",
    "mov x4, x29",
    "b {gc_alloc}",
    ".size wazerox_gc_alloc_stub, . - wazerox_gc_alloc_stub",
    gc_alloc = sym super::gc_alloc,
);
