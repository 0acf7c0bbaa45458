//! How wazerox's trap codes appear in Cranelift IR.
//!
//! `TrapCode` itself is plain data in `wazerox-environ`; only this mapping knows
//! Cranelift. The compiler reads it back when it records trap sites.

use cranelift_codegen::ir;
use wazerox_environ::TrapCode;

/// Conversion of a [`TrapCode`] to the code the translator attaches to trapping
/// instructions.
pub trait CraneliftTrapCode {
    /// The Cranelift trap code for this trap.
    fn to_cranelift(self) -> ir::TrapCode;
}

impl CraneliftTrapCode for TrapCode {
    fn to_cranelift(self) -> ir::TrapCode {
        match self {
            TrapCode::StackOverflow => ir::TrapCode::STACK_OVERFLOW,
            TrapCode::MemoryOutOfBounds => ir::TrapCode::HEAP_OUT_OF_BOUNDS,
            TrapCode::IntegerOverflow => ir::TrapCode::INTEGER_OVERFLOW,
            TrapCode::IntegerDivisionByZero => ir::TrapCode::INTEGER_DIVISION_BY_ZERO,
            TrapCode::BadConversionToInteger => ir::TrapCode::BAD_CONVERSION_TO_INTEGER,
            // User codes are our own discriminants, which are all non-zero.
            other => ir::TrapCode::unwrap_user(other.as_u8()),
        }
    }
}

/// The inverse of [`CraneliftTrapCode::to_cranelift`].
pub fn trap_code_from_cranelift(code: ir::TrapCode) -> Option<TrapCode> {
    TrapCode::ALL
        .iter()
        .copied()
        .find(|t| t.to_cranelift() == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cranelift_codes_round_trip() {
        for code in TrapCode::ALL {
            assert_eq!(trap_code_from_cranelift(code.to_cranelift()), Some(code));
        }
    }
}
