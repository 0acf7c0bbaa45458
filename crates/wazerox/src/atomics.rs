//! `memory.atomic.wait32` / `memory.atomic.notify` for host code: the same parking
//! table compiled code uses (`wazerox_runtime::parking`), so a host-side wait is woken
//! by a Wasm `notify` and the other way round. WASIX's `futex_*` calls are built on
//! these.

use crate::{AsContextMut, Error, Memory, SharedMemory, Trap, TrapCode};
use std::time::Duration;
use wazerox_runtime::memory::LinearMemory;
use wazerox_runtime::parking::{self, Expected, WaitCancel};

/// How an [`atomic_wait32`](Memory::atomic_wait32) ended, as `memory.atomic.wait32`
/// reports it (0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitResult {
    /// Woken by a notify.
    Ok,
    /// The value at the address was not the expected one.
    Mismatch,
    /// The timeout passed first.
    TimedOut,
}

/// The address of the aligned `u32` at `offset`, or the trap the Wasm instruction
/// would raise.
fn address(memory: &LinearMemory, offset: u64) -> Result<*const u8, Error> {
    if !offset.is_multiple_of(4) {
        return Err(Trap::new(TrapCode::HeapMisaligned, Vec::new()).into());
    }
    if offset
        .checked_add(4)
        .is_none_or(|end| end > memory.byte_size())
    {
        return Err(Trap::new(TrapCode::MemoryOutOfBounds, Vec::new()).into());
    }
    // SAFETY: the definition lives as long as the memory; `base` never changes (a
    // memory never moves) and `offset + 4` is within the accessible bytes.
    Ok(unsafe { (*memory.vmmemory()).base.add(offset as usize) })
}

fn wait32(
    memory: &LinearMemory,
    offset: u64,
    expected: u32,
    timeout: Option<Duration>,
    cancel: &WaitCancel,
) -> Result<WaitResult, Error> {
    let address = address(memory, offset)?;
    // SAFETY: `address` is an aligned u32 inside the memory's accessible bytes
    // (checked by `address`), which stay mapped while `memory` is borrowed; the
    // parking table reads it only atomically.
    let result = unsafe { parking::wait(address, Expected::U32(expected), timeout, cancel) };
    Ok(match result {
        parking::WaitResult::Woken => WaitResult::Ok,
        parking::WaitResult::NotEqual => WaitResult::Mismatch,
        parking::WaitResult::TimedOut => WaitResult::TimedOut,
        parking::WaitResult::Interrupted => {
            return Err(Trap::new(TrapCode::Interrupt, Vec::new()).into());
        }
    })
}

impl Memory {
    /// Waits, as `memory.atomic.wait32` does, while the `u32` at byte `offset` equals
    /// `expected`: until a notify of that address (from Wasm or the host), until
    /// `timeout` passes (`None`: forever), or until the store is interrupted
    /// ([`InterruptHandle::interrupt`](crate::InterruptHandle::interrupt): an
    /// `Interrupt` trap). A misaligned or out-of-bounds `offset` is the trap the
    /// instruction would raise. On a memory that is not shared nothing else can
    /// change the value, so a wait ends by its timeout.
    pub fn atomic_wait32(
        &self,
        mut store: impl AsContextMut,
        offset: u64,
        expected: u32,
        timeout: Option<Duration>,
    ) -> Result<WaitResult, Error> {
        let ctx = store.as_context_mut();
        let store = ctx.opaque();
        // SAFETY: memories live as long as their store, which `ctx` borrows.
        let memory = unsafe { &*self.ptr(store) };
        wait32(
            memory,
            offset,
            expected,
            timeout,
            &store.vm_store_context.waits,
        )
    }

    /// Wakes up to `count` waiters on the `u32` at byte `offset`, oldest first, as
    /// `memory.atomic.notify` does; returns how many woke.
    pub fn atomic_notify(
        &self,
        mut store: impl AsContextMut,
        offset: u64,
        count: u32,
    ) -> Result<u32, Error> {
        let ctx = store.as_context_mut();
        // SAFETY: as in `atomic_wait32`.
        let memory = unsafe { &*self.ptr(ctx.opaque()) };
        Ok(parking::notify(address(memory, offset)?, count))
    }
}

impl SharedMemory {
    /// As [`Memory::atomic_wait32`]; belonging to no store, the wait can only end by
    /// a notify or its timeout.
    pub fn atomic_wait32(
        &self,
        offset: u64,
        expected: u32,
        timeout: Option<Duration>,
    ) -> Result<WaitResult, Error> {
        wait32(&self.0, offset, expected, timeout, &WaitCancel::default())
    }

    /// As [`SharedMemory::atomic_wait32`], on behalf of code running in `store`:
    /// interrupting that store ends the wait with an `Interrupt` trap, as it ends a
    /// `memory.atomic.wait32` of the store's own code (host functions that wait for
    /// a guest, e.g. WASIX futexes, use this so an ended program never stays parked).
    pub fn atomic_wait32_in(
        &self,
        mut store: impl AsContextMut,
        offset: u64,
        expected: u32,
        timeout: Option<Duration>,
    ) -> Result<WaitResult, Error> {
        let ctx = store.as_context_mut();
        wait32(
            &self.0,
            offset,
            expected,
            timeout,
            &ctx.opaque().vm_store_context.waits,
        )
    }

    /// As [`Memory::atomic_notify`].
    pub fn atomic_notify(&self, offset: u64, count: u32) -> Result<u32, Error> {
        Ok(parking::notify(address(&self.0, offset)?, count))
    }
}
