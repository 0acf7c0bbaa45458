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

use crate::types::ValType;

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
    /// `(vmctx, tag: i32) -> i64` a new exception object of tag `tag` (payload
    /// zeroed; compiled code stores it), owned by the store.
    ExnNew,
    /// `(vmctx, exn: i64)`; never returns: unwinds Wasm frames to the nearest
    /// handler, or ends the activation with the exception. The table entry is an
    /// assembly stub that adds the caller's return address and frame pointer.
    Throw,
    /// `(vmctx, actual: i32, expected: i32) -> i32` failed: 0 when engine type
    /// `actual` is `expected` or declares it as a (transitive) supertype. The slow
    /// path of `call_indirect` to a non-final type (GC's declared subtyping).
    IsSubtype,
    /// `(vmctx) -> i32` failed. Called when an epoch check finds the deadline
    /// reached: moves the deadline on (after yielding, in an async call) when the
    /// store asks for that, else fails (trap `Interrupt`).
    EpochDeadline,
    /// `(vmctx) -> i32` failed. Called when a fuel check finds the fuel spent:
    /// refills from the store's reserve (after yielding, in an async call with a
    /// fuel yield interval), else fails (trap `OutOfFuel`).
    FuelExhausted,
    /// `(vmctx, value: i64, test: i32, ty: i32) -> i32` 1 when the non-null
    /// reference `value` has the type `test` names (`gc::TEST_*`: any struct,
    /// any array, or defined type `ty` of the module or a subtype), else 0.
    RefTest,
    /// `(vmctx, ty: i32, length: i32) -> i64` a zeroed object of the module's
    /// struct or array type `ty` (`length` elements for an array) in the store's
    /// GC heap, or 0 when the heap's cap forbids it (trap `GcHeapExhausted`).
    GcAlloc,
    /// `(vmctx, dst: i64, dst_index: i32, src: i64, src_index: i32, len: i32,
    /// element_size: i32) -> i32` failed: `array.copy` between non-null arrays
    /// (overlap-correct); fails (trap `ArrayOutOfBounds`) when a range is outside
    /// its array.
    ArrayCopy,
    /// `(vmctx, ty: i32, data: i32, offset: i32, len: i32) -> i64` a new array of
    /// the module's type `ty` holding `len` elements read from data segment
    /// `data` at byte `offset`. Traps itself: `MemoryOutOfBounds` past the
    /// segment, `GcHeapExhausted` past the heap's cap.
    ArrayNewData,
    /// `(vmctx, ty: i32, elem: i32, offset: i32, len: i32) -> i64` as
    /// `ArrayNewData` from element segment `elem` (`TableOutOfBounds` past it).
    ArrayNewElem,
    /// `(vmctx, ty: i32, array: i64, dst: i32, data: i32, src: i32, len: i32)`:
    /// `array.init_data` into a non-null array; traps itself
    /// (`ArrayOutOfBounds`, then `MemoryOutOfBounds`).
    ArrayInitData,
    /// `(vmctx, ty: i32, array: i64, dst: i32, elem: i32, src: i32, len: i32)`:
    /// `array.init_elem` (`ArrayOutOfBounds`, then `TableOutOfBounds`).
    ArrayInitElem,
}

impl Builtin {
    pub const ALL: [Builtin; 25] = [
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
        Builtin::ExnNew,
        Builtin::Throw,
        Builtin::IsSubtype,
        Builtin::EpochDeadline,
        Builtin::FuelExhausted,
        Builtin::RefTest,
        Builtin::GcAlloc,
        Builtin::ArrayCopy,
        Builtin::ArrayNewData,
        Builtin::ArrayNewElem,
        Builtin::ArrayInitData,
        Builtin::ArrayInitElem,
    ];

    /// Position in the builtin table.
    pub fn index(self) -> u32 {
        Builtin::ALL.iter().position(|b| *b == self).unwrap() as u32
    }

    /// Parameter and result types after the leading `vmctx` pointer, in the
    /// platform's C calling convention (the translator builds the signature from
    /// them; the runtime's `extern "C"` functions must match).
    pub fn params_and_results(self) -> (&'static [ValType], &'static [ValType]) {
        use ValType::{I32, I64};
        match self {
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
            Builtin::ExnNew => (&[I32], &[I64]),
            Builtin::Throw => (&[I64], &[]),
            Builtin::IsSubtype => (&[I32, I32], &[I32]),
            Builtin::EpochDeadline | Builtin::FuelExhausted => (&[], &[I32]),
            Builtin::RefTest => (&[I64, I32, I32], &[I32]),
            Builtin::GcAlloc => (&[I32, I32], &[I64]),
            Builtin::ArrayCopy => (&[I64, I32, I64, I32, I32, I32], &[I32]),
            Builtin::ArrayNewData | Builtin::ArrayNewElem => (&[I32, I32, I32, I32], &[I64]),
            Builtin::ArrayInitData | Builtin::ArrayInitElem => {
                (&[I32, I64, I32, I32, I32, I32], &[])
            }
        }
    }
}
