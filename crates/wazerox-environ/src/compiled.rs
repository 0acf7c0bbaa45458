//! Compiled code as plain data: what the compiler produces and what an artifact
//! stores, so that a runtime-only build can load and run code without knowing how
//! it was generated.

use crate::trap::TrapCode;

/// A relocation the runtime must patch once the code's address is known: an
/// absolute 8-byte address of a runtime libcall (e.g. `floorf` when the CPU lacks
/// SSE4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibcallRelocation {
    pub offset: u32,
    pub libcall: String,
    pub addend: i64,
}

/// The two trampolines of one function type, linked into one code image: host →
/// Wasm (`array_call`) and Wasm → host (`wasm_to_host`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureTrampolinesCode {
    pub code: Vec<u8>,
    /// Offset of the host→Wasm trampoline.
    pub array_call: u32,
    /// Offset of the Wasm→host trampoline.
    pub wasm_to_host: u32,
    pub traps: Vec<(u32, TrapCode)>,
}

/// A call site inside a handler scope (a `try_call`): when an exception unwinds
/// to the frame at this call, execution resumes at `handler` (the scope's landing
/// block, which takes the exception object in the first payload register) with
/// the stack pointer `sp_to_fp` bytes below the frame pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExceptionHandler {
    /// Offset of the call's return address.
    pub return_address: u32,
    /// Offset of the landing block.
    pub handler: u32,
    /// Frame pointer minus stack pointer at the call.
    pub sp_to_fp: u32,
}

/// The GC references live across one call site of compiled code (docs/gc.md,
/// "Roots, safepoints"): where a collection finds the roots of a frame stopped
/// at this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackMap {
    /// Offset of the call's return address.
    pub return_address: u32,
    /// Frame pointer minus stack pointer at the call.
    pub frame_size: u32,
    /// Offsets from that stack pointer of the 8-byte slots holding words of the
    /// any hierarchy, ascending.
    pub slots: Vec<u32>,
}
