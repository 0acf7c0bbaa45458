//! AArch64: the lazy stubs' machine code and their shared trampoline.
//!
//! Cranelift's `tail` convention (our Wasm convention) passes arguments in
//! general registers from x2 up, the return-area pointer in x8, and vector
//! arguments in v0–v7; x16 and x17 (IP0/IP1) never carry arguments (linker
//! veneers may clobber them), so a stub can use them. The trampoline saves
//! x0–x15 and q0–q7, which covers every argument register.
//!
//! Not exercised by this machine's tests (x86-64); written to the same contract.

use std::arch::global_asm;

/// Bytes before the first stub (unused by the stubs, which hold their own
/// literals; kept so both architectures share the image layout).
pub(super) const HEADER_SIZE: usize = 16;
/// Bytes per stub.
pub(super) const STUB_SIZE: usize = 32;

/// Writes the stub: `ldr x16, =func_ref; ldr x17, =trampoline; br x17`, with
/// the two literals after the code.
pub(super) fn write_stub(stub: &mut [u8], _at: usize, func_ref: u64) {
    // LDR (literal), 64-bit: 0x58000000 | imm19 << 5 | Rt, imm19 in words.
    let ldr_x16 = 0x5800_0000u32 | (4 << 5) | 16; // at 0, literal at 16
    let ldr_x17 = 0x5800_0000u32 | (5 << 5) | 17; // at 4, literal at 24
    let br_x17 = 0xd61f_0220u32;
    let udf = 0u32;
    for (i, word) in [ldr_x16, ldr_x17, br_x17, udf].iter().enumerate() {
        stub[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
    }
    stub[16..24].copy_from_slice(&func_ref.to_le_bytes());
    stub[24..32].copy_from_slice(&(trampoline_address() as u64).to_le_bytes());
}

pub(super) fn trampoline_address() -> usize {
    unsafe extern "C" {
        fn wazerox_lazy_trampoline();
    }
    wazerox_lazy_trampoline as *const () as usize
}

// Entered by `br x17` from a stub with the stub's reference in x16 and the
// caller's return address in x30. `bti c` accepts a `br` through x16/x17.
global_asm!(
    ".text",
    ".p2align 4",
    ".globl wazerox_lazy_trampoline",
    ".hidden wazerox_lazy_trampoline",
    ".type wazerox_lazy_trampoline, %function",
    "wazerox_lazy_trampoline:",
    ".cfi_startproc",
    "hint #34",
    "stp x29, x30, [sp, #-16]!",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset x29, -16",
    ".cfi_offset x30, -8",
    "mov x29, sp",
    "sub sp, sp, #256",
    "stp x0, x1, [sp, #0]",
    "stp x2, x3, [sp, #16]",
    "stp x4, x5, [sp, #32]",
    "stp x6, x7, [sp, #48]",
    "stp x8, x9, [sp, #64]",
    "stp x10, x11, [sp, #80]",
    "stp x12, x13, [sp, #96]",
    "stp x14, x15, [sp, #112]",
    "stp q0, q1, [sp, #128]",
    "stp q2, q3, [sp, #160]",
    "stp q4, q5, [sp, #192]",
    "stp q6, q7, [sp, #224]",
    "mov x0, x16",
    "bl {resolve}",
    "mov x16, x0",
    "ldp x0, x1, [sp, #0]",
    "ldp x2, x3, [sp, #16]",
    "ldp x4, x5, [sp, #32]",
    "ldp x6, x7, [sp, #48]",
    "ldp x8, x9, [sp, #64]",
    "ldp x10, x11, [sp, #80]",
    "ldp x12, x13, [sp, #96]",
    "ldp x14, x15, [sp, #112]",
    "ldp q0, q1, [sp, #128]",
    "ldp q2, q3, [sp, #160]",
    "ldp q4, q5, [sp, #192]",
    "ldp q6, q7, [sp, #224]",
    "mov sp, x29",
    "ldp x29, x30, [sp], #16",
    ".cfi_def_cfa_offset 0",
    "br x16",
    ".cfi_endproc",
    ".size wazerox_lazy_trampoline, . - wazerox_lazy_trampoline",
    resolve = sym super::stub_resolve,
);
