//! Fuel and epoch interruption, emitted only when the config asks for them (so
//! they cost nothing otherwise).
//!
//! - **Fuel**: the store's `fuel_consumed` counts up towards zero (negative = fuel
//!   left). Operators are counted during translation and charged in one add at the
//!   end of each straight-line region (before any branch, call, or block boundary);
//!   function entries and loop headers call the `FuelExhausted` builtin once it is
//!   positive, which refills from the store's reserve (yielding first in an async
//!   call with a fuel yield interval) or fails: then the code traps with
//!   `OutOfFuel`. An infinite loop therefore always reaches a check.
//! - **Epochs**: function entries and loop headers compare the engine's epoch
//!   counter with the store's deadline and, once it is reached, call the
//!   `EpochDeadline` builtin, which either moves the deadline on (yielding first in
//!   an async call, `epoch_deadline_async_yield_and_update`) or fails: then the
//!   code traps with `Interrupt`. So another thread can stop, or make yield, any
//!   running code by incrementing the epoch.
//!
//! The builtin calls sit in cold blocks: the path taken on every check is still
//! one load, one compare and a not-taken branch.

use super::FuncTranslation;
use super::environ::{readonly, trusted};
use crate::trap::CraneliftTrapCode;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{self, InstBuilder, MemFlagsData};
use wasmparser::Operator;
use wazerox_environ::vmoffsets::{self, VMOffsets};
use wazerox_environ::{Builtin, TrapCode};

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
            self.cold_builtin_check(exhausted, Builtin::FuelExhausted, TrapCode::OutOfFuel);
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
            self.cold_builtin_check(reached, Builtin::EpochDeadline, TrapCode::Interrupt);
        }
    }

    /// When `condition` holds, calls `builtin` (no arguments but the VMContext)
    /// in a cold block and traps with `code` if it fails; continues otherwise.
    fn cold_builtin_check(&mut self, condition: ir::Value, builtin: Builtin, code: TrapCode) {
        let slow = self.builder.create_block();
        let next = self.builder.create_block();
        self.builder.set_cold_block(slow);
        self.builder.ins().brif(condition, slow, &[], next, &[]);
        self.builder.switch_to_block(slow);
        self.builder.seal_block(slow);
        let failed = self
            .env
            .call_builtin(&mut self.builder, builtin, &[])
            .expect("the builtin returns a status");
        self.builder.ins().trapnz(failed, code.to_cranelift());
        self.builder.ins().jump(next, &[]);
        self.builder.switch_to_block(next);
        self.builder.seal_block(next);
    }
}
