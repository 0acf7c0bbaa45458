//! Trap codes: the reasons Wasm execution can stop abnormally.
//!
//! These are plain data shared by every layer: the translator attaches them to
//! trapping instructions, the compiler records them per code offset, the runtime's
//! signal handler and backtraces read them back, and the public API shows them.

use std::fmt;

/// Why Wasm execution trapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TrapCode {
    /// The native stack limit for Wasm was reached (deep or infinite recursion).
    StackOverflow = 1,
    /// A load or store outside the bounds of a linear memory.
    MemoryOutOfBounds,
    /// A memory access with a misaligned address where alignment is required (atomics).
    HeapMisaligned,
    /// An access outside the bounds of a table.
    TableOutOfBounds,
    /// `call_indirect` through a null table element.
    IndirectCallToNull,
    /// `call_indirect` whose callee has a different type than expected.
    BadSignature,
    /// Signed integer overflow (`i32.div_s` of `INT_MIN` by `-1`).
    IntegerOverflow,
    /// Integer division or remainder by zero.
    IntegerDivisionByZero,
    /// A float-to-int conversion of NaN or a value out of the integer's range.
    BadConversionToInteger,
    /// The `unreachable` instruction was executed.
    UnreachableCodeReached,
    /// A null reference was dereferenced.
    NullReference,
    /// Fuel ran out.
    OutOfFuel,
    /// The epoch deadline was reached.
    Interrupt,
    /// `memory.atomic.wait` on a memory that is not shared.
    AtomicWaitNonSharedMemory,
    /// A host function (or a runtime builtin) failed; the error travels separately.
    HostError,
    /// `ref.cast` of a value that does not have the target type (GC).
    CastFailure,
    /// An array access (`array.get/set/fill/copy/init_*`, `array.new_data/elem`)
    /// outside the array or the segment.
    ArrayOutOfBounds,
    /// An allocation would take the store's GC heap past its cap
    /// (`Config::gc_heap_limit`, docs/gc.md).
    GcHeapExhausted,
}

impl TrapCode {
    /// Every trap code, for table-driven conversions.
    pub const ALL: [TrapCode; 18] = [
        TrapCode::StackOverflow,
        TrapCode::MemoryOutOfBounds,
        TrapCode::HeapMisaligned,
        TrapCode::TableOutOfBounds,
        TrapCode::IndirectCallToNull,
        TrapCode::BadSignature,
        TrapCode::IntegerOverflow,
        TrapCode::IntegerDivisionByZero,
        TrapCode::BadConversionToInteger,
        TrapCode::UnreachableCodeReached,
        TrapCode::NullReference,
        TrapCode::OutOfFuel,
        TrapCode::Interrupt,
        TrapCode::AtomicWaitNonSharedMemory,
        TrapCode::HostError,
        TrapCode::CastFailure,
        TrapCode::ArrayOutOfBounds,
        TrapCode::GcHeapExhausted,
    ];

    /// The stable byte used in trap tables and serialized artifacts.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The inverse of [`TrapCode::as_u8`].
    pub fn from_u8(byte: u8) -> Option<TrapCode> {
        TrapCode::ALL.iter().copied().find(|t| *t as u8 == byte)
    }

    /// The message the spec testsuite uses for this trap.
    pub fn message(self) -> &'static str {
        match self {
            TrapCode::StackOverflow => "call stack exhausted",
            TrapCode::MemoryOutOfBounds => "out of bounds memory access",
            TrapCode::HeapMisaligned => "unaligned atomic",
            TrapCode::TableOutOfBounds => "out of bounds table access",
            TrapCode::IndirectCallToNull => "uninitialized element",
            TrapCode::BadSignature => "indirect call type mismatch",
            TrapCode::IntegerOverflow => "integer overflow",
            TrapCode::IntegerDivisionByZero => "integer divide by zero",
            TrapCode::BadConversionToInteger => "invalid conversion to integer",
            TrapCode::UnreachableCodeReached => "unreachable",
            TrapCode::NullReference => "null reference",
            TrapCode::OutOfFuel => "all fuel consumed",
            TrapCode::Interrupt => "interrupt: epoch deadline reached",
            TrapCode::AtomicWaitNonSharedMemory => "atomic wait on non-shared memory",
            TrapCode::HostError => "host function error",
            TrapCode::CastFailure => "cast failure",
            TrapCode::ArrayOutOfBounds => "out of bounds array access",
            TrapCode::GcHeapExhausted => "GC heap exhausted",
        }
    }
}

impl fmt::Display for TrapCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip() {
        for code in TrapCode::ALL {
            assert_eq!(TrapCode::from_u8(code.as_u8()), Some(code));
        }
    }
}
