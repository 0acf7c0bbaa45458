//! Fuel and epoch interruption, emitted only when the config asks for them (so
//! they cost nothing otherwise).
//!
//! - **Fuel**: the store's `fuel_consumed` counts up towards zero (negative = fuel
//!   left). Operators are counted during translation and charged in one add at the
//!   end of each straight-line region (before any branch, call, or block boundary);
//!   function entries and loop headers trap with `OutOfFuel` once it is positive.
//!   An infinite loop therefore always reaches a check.
//! - **Epochs**: function entries and loop headers compare the engine's epoch
//!   counter with the store's deadline and trap with `Interrupt` once it is reached,
//!   so another thread can stop any running code by incrementing the epoch.

use super::FuncTranslation;
use super::environ::{readonly, trusted};
use crate::trap::CraneliftTrapCode;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData};
use wasmparser::Operator;
use wazerox_environ::TrapCode;
use wazerox_environ::vmoffsets::{self, VMOffsets};

/// Operators after which the fuel counted so far is charged: everything that ends a
/// straight-line region.
pub(crate) fn ends_fuel_region(op: &Operator<'_>) -> bool {
    matches!(
        op,
        Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::Else
            | Operator::End
            | Operator::Br { .. }
            | Operator::BrIf { .. }
            | Operator::BrTable { .. }
            | Operator::Return
            | Operator::Call { .. }
            | Operator::CallIndirect { .. }
            | Operator::ReturnCall { .. }
            | Operator::ReturnCallIndirect { .. }
            | Operator::Unreachable
    )
}

impl FuncTranslation<'_, '_> {
    fn store_context(&mut self) -> cranelift_codegen::ir::Value {
        self.env
            .load_vmctx_ptr(&mut self.builder, VMOffsets::STORE_CONTEXT)
    }

    /// Charges the operators counted since the last charge.
    pub(crate) fn fuel_flush(&mut self) {
        if self.fuel_pending == 0 {
            return;
        }
        let store = self.store_context();
        let offset = vmoffsets::VMSTORE_FUEL_CONSUMED as i32;
        let consumed = self.builder.ins().load(I64, trusted(), store, offset);
        let consumed = self.builder.ins().iadd_imm_u(consumed, self.fuel_pending);
        self.builder.ins().store(trusted(), consumed, store, offset);
        self.fuel_pending = 0;
    }

    /// The fuel and epoch checks of function entries and loop headers.
    pub(crate) fn interruption_check(&mut self) {
        let config = *self.env.config;
        if !config.consume_fuel && !config.epoch_interruption {
            return;
        }
        let store = self.store_context();
        if config.consume_fuel {
            let consumed = self.builder.ins().load(
                I64,
                trusted(),
                store,
                vmoffsets::VMSTORE_FUEL_CONSUMED as i32,
            );
            let exhausted = self
                .builder
                .ins()
                .icmp_imm_s(IntCC::SignedGreaterThan, consumed, 0);
            self.builder
                .ins()
                .trapnz(exhausted, TrapCode::OutOfFuel.to_cranelift());
        }
        if config.epoch_interruption {
            let counter =
                self.builder
                    .ins()
                    .load(I64, readonly(), store, vmoffsets::VMSTORE_EPOCH as i32);
            // Another thread increments the counter: an atomic load is never hoisted
            // or merged across iterations (and is a plain load on x86-64).
            let epoch = self
                .builder
                .ins()
                .atomic_load(I64, MemFlagsData::trusted(), counter);
            let deadline = self.builder.ins().load(
                I64,
                trusted(),
                store,
                vmoffsets::VMSTORE_EPOCH_DEADLINE as i32,
            );
            let reached =
                self.builder
                    .ins()
                    .icmp(IntCC::UnsignedGreaterThanOrEqual, epoch, deadline);
            self.builder
                .ins()
                .trapnz(reached, TrapCode::Interrupt.to_cranelift());
        }
    }
}
