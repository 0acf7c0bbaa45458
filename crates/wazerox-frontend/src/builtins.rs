//! Runtime functions that compiled code calls for operations too large to inline
//! (growing, bulk copies, segment initialisation).
//!
//! They are reached through a table of function pointers whose address sits in every
//! VMContext (`VMOffsets::BUILTINS`), so compiled code needs no relocations to reach
//! them and the runtime can swap implementations without recompiling. The order of
//! [`Builtin::ALL`] is the table layout; the runtime builds its table from it.
//!
//! Builtins that can fail return an `i32` that is non-zero on failure; the translator
//! then traps with the one trap code that builtin can cause.

use cranelift_codegen::ir::{AbiParam, Signature, types};
use cranelift_codegen::isa::CallConv;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// `(vmctx, memory: i32, delta_pages: i64) -> i64` old size in pages, or -1.
    MemoryGrow,
    /// `(vmctx, memory: i32, dst: i64, byte: i32, len: i64) -> i32` failed.
    MemoryFill,
    /// `(vmctx, dst_memory: i32, dst: i64, src_memory: i32, src: i64, len: i64) -> i32` failed.
    MemoryCopy,
    /// `(vmctx, memory: i32, data: i32, dst: i64, src: i32, len: i32) -> i32` failed.
    MemoryInit,
    /// `(vmctx, data: i32)`.
    DataDrop,
    /// `(vmctx, table: i32, delta: i64, init: i64) -> i64` old size, or -1.
    TableGrow,
    /// `(vmctx, table: i32, dst: i64, value: i64, len: i64) -> i32` failed.
    TableFill,
    /// `(vmctx, dst_table: i32, src_table: i32, dst: i64, src: i64, len: i64) -> i32` failed.
    TableCopy,
    /// `(vmctx, table: i32, elem: i32, dst: i64, src: i32, len: i32) -> i32` failed.
    TableInit,
    /// `(vmctx, elem: i32)`.
    ElemDrop,
    /// `(vmctx, memory: i32, address: i64, count: i32) -> i32` waiters woken.
    /// The address is checked (bounds, alignment) by compiled code.
    MemoryAtomicNotify,
    /// `(vmctx, memory: i32, address: i64, expected: i32, timeout_ns: i64) -> i32`
    /// 0 woken, 1 not equal, 2 timed out. Compiled code checks the address and
    /// that the memory is shared.
    MemoryAtomicWait32,
    /// `(vmctx, memory: i32, address: i64, expected: i64, timeout_ns: i64) -> i32`.
    MemoryAtomicWait64,
}

impl Builtin {
    pub const ALL: [Builtin; 13] = [
        Builtin::MemoryGrow,
        Builtin::MemoryFill,
        Builtin::MemoryCopy,
        Builtin::MemoryInit,
        Builtin::DataDrop,
        Builtin::TableGrow,
        Builtin::TableFill,
        Builtin::TableCopy,
        Builtin::TableInit,
        Builtin::ElemDrop,
        Builtin::MemoryAtomicNotify,
        Builtin::MemoryAtomicWait32,
        Builtin::MemoryAtomicWait64,
    ];

    /// Position in the builtin table.
    pub fn index(self) -> u32 {
        Builtin::ALL.iter().position(|b| *b == self).unwrap() as u32
    }

    /// The native signature (platform C ABI) of the builtin.
    pub fn signature(self, call_conv: CallConv) -> Signature {
        use types::{I32, I64};
        let (params, results): (&[_], &[_]) = match self {
            Builtin::MemoryGrow => (&[I32, I64], &[I64]),
            Builtin::MemoryFill => (&[I32, I64, I32, I64], &[I32]),
            Builtin::MemoryCopy => (&[I32, I64, I32, I64, I64], &[I32]),
            Builtin::MemoryInit => (&[I32, I32, I64, I32, I32], &[I32]),
            Builtin::DataDrop => (&[I32], &[]),
            Builtin::TableGrow => (&[I32, I64, I64], &[I64]),
            Builtin::TableFill => (&[I32, I64, I64, I64], &[I32]),
            Builtin::TableCopy => (&[I32, I32, I64, I64, I64], &[I32]),
            Builtin::TableInit => (&[I32, I32, I64, I32, I32], &[I32]),
            Builtin::ElemDrop => (&[I32], &[]),
            Builtin::MemoryAtomicNotify => (&[I32, I64, I32], &[I32]),
            Builtin::MemoryAtomicWait32 => (&[I32, I64, I32, I64], &[I32]),
            Builtin::MemoryAtomicWait64 => (&[I32, I64, I64, I64], &[I32]),
        };
        let mut sig = Signature::new(call_conv);
        sig.params.push(AbiParam::new(I64));
        sig.params.extend(params.iter().map(|t| AbiParam::new(*t)));
        sig.returns
            .extend(results.iter().map(|t| AbiParam::new(*t)));
        sig
    }
}
