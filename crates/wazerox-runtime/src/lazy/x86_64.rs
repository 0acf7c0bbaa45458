//! x86-64: the lazy stubs' machine code and their shared trampoline.
//!
//! Cranelift's `tail` convention (our Wasm convention) passes arguments in rdi,
//! rsi, rdx, rcx, r8, r9 (the return-area pointer, when there is one, in rdi)
//! and xmm0–xmm7, the rest on the stack; r10 and r11 carry no argument, and r11
//! is a scratch register in every convention, so a stub can use it.

use std::arch::global_asm;

/// Bytes before the first stub: the trampoline's address, padded to 16.
pub(super) const HEADER_SIZE: usize = 16;
/// Bytes per stub.
pub(super) const STUB_SIZE: usize = 16;

/// Writes the stub at offset `at` of the image: `mov r11, func_ref;
/// jmp [rip → header]` (the image may be farther than ±2 GiB from the
/// trampoline, so the jump goes through the header's absolute address).
pub(super) fn write_stub(stub: &mut [u8], at: usize, func_ref: u64) {
    stub[0..2].copy_from_slice(&[0x49, 0xbb]);
    stub[2..10].copy_from_slice(&func_ref.to_le_bytes());
    // The displacement counts from the end of the jump, which ends the stub.
    let displacement = -((at + STUB_SIZE) as i64);
    let displacement = i32::try_from(displacement).expect("stub image under 2 GiB");
    stub[10..12].copy_from_slice(&[0xff, 0x25]);
    stub[12..16].copy_from_slice(&displacement.to_le_bytes());
}

pub(super) fn trampoline_address() -> usize {
    unsafe extern "C" {
        fn wazerox_lazy_trampoline();
    }
    wazerox_lazy_trampoline as *const () as usize
}

// Entered by a jump from a stub, with the caller's return address on top of the
// stack (rsp = 8 mod 16) and the stub's reference in r11. A standard frame keeps
// the frame-pointer chain intact; the saved argument registers (6 general, 8
// vector of 16 bytes: 176 bytes) leave rsp 16-byte aligned for the call. The
// final jump leaves the stack exactly as the caller's call left it, so stack
// arguments and the return address are where the function expects them.
global_asm!(
    ".text",
    ".p2align 4",
    ".globl wazerox_lazy_trampoline",
    ".hidden wazerox_lazy_trampoline",
    ".type wazerox_lazy_trampoline, @function",
    "wazerox_lazy_trampoline:",
    ".cfi_startproc",
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset rbp, -16",
    "mov rbp, rsp",
    ".cfi_def_cfa_register rbp",
    "sub rsp, 176",
    "mov [rsp], rdi",
    "mov [rsp + 8], rsi",
    "mov [rsp + 16], rdx",
    "mov [rsp + 24], rcx",
    "mov [rsp + 32], r8",
    "mov [rsp + 40], r9",
    "movdqu [rsp + 48], xmm0",
    "movdqu [rsp + 64], xmm1",
    "movdqu [rsp + 80], xmm2",
    "movdqu [rsp + 96], xmm3",
    "movdqu [rsp + 112], xmm4",
    "movdqu [rsp + 128], xmm5",
    "movdqu [rsp + 144], xmm6",
    "movdqu [rsp + 160], xmm7",
    "mov rdi, r11",
    "call {resolve}",
    "mov r11, rax",
    "mov rdi, [rsp]",
    "mov rsi, [rsp + 8]",
    "mov rdx, [rsp + 16]",
    "mov rcx, [rsp + 24]",
    "mov r8, [rsp + 32]",
    "mov r9, [rsp + 40]",
    "movdqu xmm0, [rsp + 48]",
    "movdqu xmm1, [rsp + 64]",
    "movdqu xmm2, [rsp + 80]",
    "movdqu xmm3, [rsp + 96]",
    "movdqu xmm4, [rsp + 112]",
    "movdqu xmm5, [rsp + 128]",
    "movdqu xmm6, [rsp + 144]",
    "movdqu xmm7, [rsp + 160]",
    "mov rsp, rbp",
    "pop rbp",
    ".cfi_def_cfa rsp, 8",
    "jmp r11",
    ".cfi_endproc",
    ".size wazerox_lazy_trampoline, . - wazerox_lazy_trampoline",
    resolve = sym super::stub_resolve,
);
