//! The `#[repr(C)]` structures that compiled code reads and writes directly.
//!
//! Their field offsets are part of the contract with the translator: the frontend's
//! `VMOffsets` states them once, and the tests at the bottom of this file pin that the
//! Rust layout agrees.

use crate::parking::WaitCancel;
use std::cell::UnsafeCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Per-store state that compiled code consults: the stack limit (checked in every
/// function prologue), fuel and the epoch deadline. One per `Store`, in an `Arc` so its address is stable and a
/// [`StoreInterrupter`] can outlive the store.
#[repr(C)]
#[derive(Debug)]
pub struct VMStoreContext {
    /// Lowest address the Wasm stack may grow to; Cranelift's prologue check traps
    /// with `StackOverflow` below it. `usize::MAX` until the first entry sets it.
    pub stack_limit: UnsafeCell<usize>,
    /// Fuel consumed so far, counted upwards towards zero (negative = fuel left).
    pub fuel_consumed: UnsafeCell<i64>,
    /// The epoch at which running code must stop. Atomic because another thread
    /// may force it to 0 ([`VMStoreContext::interrupt`]); compiled code reads it
    /// with a plain load after an atomic load of the epoch, which Cranelift never
    /// moves loads across, so every check sees a fresh value.
    pub epoch_deadline: AtomicU64,
    /// The embedding API's store (opaque to the runtime), so host functions called
    /// from Wasm can find their store again.
    pub store: UnsafeCell<*mut u8>,
    /// The engine's epoch counter, read by epoch checks in compiled code.
    pub epoch: UnsafeCell<*const std::sync::atomic::AtomicU64>,
    // Fields below are not read by compiled code (not in `VMOffsets`).
    /// The store's `memory.atomic.wait`s, cancelled by [`VMStoreContext::interrupt`].
    pub waits: WaitCancel,
    /// Address ranges (reservation + guard) of every linear memory an instance of
    /// the store can access: a memory fault in compiled code is a Wasm trap only
    /// inside one of them. Written only by the thread that holds the store, while
    /// none of its code runs ([`VMStoreContext::add_memory_reservation`]); read by
    /// the signal handler of a thread running the store's code.
    memory_reservations: UnsafeCell<Vec<std::ops::Range<usize>>>,
    /// Calls into Wasm of this store that have not returned (nested ones and
    /// suspended async ones included), counted by the embedding layer: GC and
    /// exception collections need to know whether they see every Wasm frame.
    pub wasm_calls: UnsafeCell<usize>,
    /// The store's exception objects (see `exceptions`).
    pub exceptions: crate::exceptions::ExceptionHeap,
    /// The store's GC objects (docs/gc.md).
    pub gc: crate::gc::GcHeap,
    /// How a collection inside a call finds the roots the embedding API holds
    /// (`None`: no collection inside calls). Written by the thread holding the
    /// store while none of its code runs.
    pub gc_roots_hook: UnsafeCell<Option<crate::gc::GcRootsHook>>,
    /// What reaching the epoch deadline does: `None` traps; `Some(delta)` yields
    /// (in an async call) and moves the deadline `delta` ticks past the current
    /// epoch. Written by the thread holding the store while none of its code runs.
    pub epoch_yield: UnsafeCell<Option<u64>>,
    /// Fuel not yet handed to `fuel_consumed`: with a yield interval, compiled code
    /// sees at most one interval at a time, and the `FuelExhausted` builtin refills
    /// it from here (yielding first in an async call).
    fuel_reserve: UnsafeCell<u64>,
    /// The fuel yield interval (0: none, all the fuel is handed out at once).
    fuel_yield_interval: UnsafeCell<u64>,
}

impl VMStoreContext {
    pub fn new() -> Self {
        VMStoreContext {
            stack_limit: UnsafeCell::new(usize::MAX),
            fuel_consumed: UnsafeCell::new(0),
            epoch_deadline: AtomicU64::new(u64::MAX),
            store: UnsafeCell::new(std::ptr::null_mut()),
            epoch: UnsafeCell::new(std::ptr::null()),
            waits: WaitCancel::default(),
            memory_reservations: UnsafeCell::new(Vec::new()),
            wasm_calls: UnsafeCell::new(0),
            exceptions: Default::default(),
            gc: Default::default(),
            gc_roots_hook: UnsafeCell::new(None),
            epoch_yield: UnsafeCell::new(None),
            fuel_reserve: UnsafeCell::new(0),
            fuel_yield_interval: UnsafeCell::new(0),
        }
    }

    /// Fuel left: the reserve plus what compiled code has not consumed yet.
    ///
    /// # Safety
    /// Called by the thread holding the store, while none of its code runs or from
    /// a builtin of its running code (the only writers).
    pub unsafe fn fuel_left(&self) -> u64 {
        // SAFETY: per the contract.
        let (consumed, reserve) = unsafe { (*self.fuel_consumed.get(), *self.fuel_reserve.get()) };
        if consumed <= 0 {
            reserve.saturating_add(consumed.unsigned_abs())
        } else {
            reserve.saturating_sub(consumed as u64)
        }
    }

    /// Sets the fuel left to `fuel`, handing compiled code at most one yield
    /// interval of it.
    ///
    /// # Safety
    /// As for [`fuel_left`](Self::fuel_left).
    pub unsafe fn set_fuel(&self, fuel: u64) {
        // SAFETY: per the contract.
        unsafe {
            let interval = match *self.fuel_yield_interval.get() {
                0 => i64::MAX as u64,
                n => n.min(i64::MAX as u64),
            };
            let active = fuel.min(interval);
            *self.fuel_reserve.get() = fuel - active;
            *self.fuel_consumed.get() = -(active as i64);
        }
    }

    /// Sets the fuel yield interval (`0`: none), keeping the fuel left.
    ///
    /// # Safety
    /// As for [`fuel_left`](Self::fuel_left).
    pub unsafe fn set_fuel_yield_interval(&self, interval: u64) {
        // SAFETY: per the contract.
        unsafe {
            let left = self.fuel_left();
            *self.fuel_yield_interval.get() = interval;
            self.set_fuel(left);
        }
    }

    /// Whether compiled code consumed more than the reserve can cover.
    ///
    /// # Safety
    /// As for [`fuel_left`](Self::fuel_left).
    pub(crate) unsafe fn fuel_overspent(&self) -> bool {
        // SAFETY: per the contract.
        let (consumed, reserve) = unsafe { (*self.fuel_consumed.get(), *self.fuel_reserve.get()) };
        consumed > 0 && consumed as u64 > reserve
    }

    /// The yield interval, if any.
    ///
    /// # Safety
    /// As for [`fuel_left`](Self::fuel_left).
    pub(crate) unsafe fn fuel_yield_interval(&self) -> u64 {
        // SAFETY: per the contract.
        unsafe { *self.fuel_yield_interval.get() }
    }

    /// Records that the store's code may access `range` (a memory's reservation).
    ///
    /// # Safety
    /// Called by the thread holding the store, while no code of the store executes
    /// (it may be suspended in a host call; the signal handler reads the list only
    /// for a fault of executing code), and the memory outlives the store's
    /// instances.
    pub unsafe fn add_memory_reservation(&self, range: std::ops::Range<usize>) {
        // SAFETY: per the contract, nothing else reads or writes the list now.
        let ranges = unsafe { &mut *self.memory_reservations.get() };
        if !ranges.contains(&range) {
            ranges.push(range);
        }
    }

    /// Whether `address` lies in a memory reservation of the store. Async-signal
    /// safe (no allocation, no lock).
    ///
    /// # Safety
    /// Called on the thread running the store's code (the only one that may write
    /// the list, which it does not do while its code runs).
    pub(crate) unsafe fn is_memory_address(&self, address: usize) -> bool {
        // SAFETY: per the contract.
        let ranges = unsafe { &*self.memory_reservations.get() };
        ranges.iter().any(|r| r.contains(&address))
    }

    /// Stops the store's code for good, from any thread: the epoch deadline becomes
    /// 0, so the next epoch check (function entry, loop header) traps with
    /// `Interrupt`, and waits end with a trap. Sticky: later deadlines are ignored.
    pub fn interrupt(&self) {
        // The flag first: `set_epoch_deadline` re-checks it after its store.
        self.waits.cancel();
        self.epoch_deadline.store(0, Ordering::SeqCst);
    }

    pub fn is_interrupted(&self) -> bool {
        self.waits.is_cancelled()
    }

    /// Sets the epoch deadline, unless the store was interrupted. Whatever the
    /// interleaving with [`interrupt`](Self::interrupt) (both sequentially
    /// consistent), an interrupted store ends with deadline 0.
    pub fn set_epoch_deadline(&self, deadline: u64) {
        self.epoch_deadline.store(deadline, Ordering::SeqCst);
        if self.is_interrupted() {
            self.epoch_deadline.store(0, Ordering::SeqCst);
        }
    }
}

// SAFETY: the `UnsafeCell` fields are only accessed, through `unsafe` code whose
// contract says so, by the thread running the owning store (which moves between
// threads only with the store). What other threads may touch — `epoch_deadline`
// and `waits`, through `interrupt` — is atomic or locked.
unsafe impl Send for VMStoreContext {}
// SAFETY: as above.
unsafe impl Sync for VMStoreContext {}

/// Interrupts one store's code from another thread ([`VMStoreContext::interrupt`]).
/// Keeps the store context alive, so it stays valid after the store is dropped.
#[derive(Clone)]
pub struct StoreInterrupter(Arc<VMStoreContext>);

impl StoreInterrupter {
    pub fn new(context: &Arc<VMStoreContext>) -> StoreInterrupter {
        StoreInterrupter(context.clone())
    }
    pub fn interrupt(&self) {
        self.0.interrupt();
    }
    pub fn is_interrupted(&self) -> bool {
        self.0.is_interrupted()
    }
    /// The store's epoch deadline now: `u64::MAX` when none was set, 0 once
    /// interrupted.
    pub fn epoch_deadline(&self) -> u64 {
        self.0.epoch_deadline.load(Ordering::SeqCst)
    }
}

impl Default for VMStoreContext {
    fn default() -> Self {
        Self::new()
    }
}

/// A linear memory as compiled code sees it. Owned by the memory object, which never
/// moves it; every VMContext that uses the memory holds a pointer to it.
#[repr(C)]
#[derive(Debug)]
pub struct VMMemoryDefinition {
    /// Start of the memory; never changes for the memory's lifetime.
    pub base: *mut u8,
    /// Accessible bytes. Read by explicit bounds checks and `memory.size`.
    pub current_length: std::sync::atomic::AtomicUsize,
}

/// A table as compiled code sees it. Elements are pointer-sized: a `*const VMFuncRef`
/// for funcref tables, an externref handle for externref tables; 0 is null.
#[repr(C)]
#[derive(Debug)]
pub struct VMTableDefinition {
    pub base: *mut usize,
    pub current_elements: usize,
    /// Non-zero once any element was written since the table was filled
    /// (compiled `table.set` stores 1 here; the runtime's table operations set
    /// it too). A pooled table reused by the same module is refilled only then.
    pub written: usize,
}

/// A function reference: everything needed to call a function from compiled code.
/// Tables and `ref.func` hand out pointers to these; imported functions are called
/// through a copy kept in the importing instance's VMContext.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VMFuncRef {
    /// Native code with the Wasm calling convention `(callee_vmctx, caller_vmctx, params…)`.
    pub wasm_call: *const u8,
    /// The callee's VMContext (an instance's, or a host function's context).
    pub vmctx: *mut u8,
    /// Engine-wide canonical id of the function's type, compared by `call_indirect`.
    pub type_id: u32,
    pub _padding: u32,
}

impl VMFuncRef {
    pub const NULL: VMFuncRef = VMFuncRef {
        wasm_call: std::ptr::null(),
        vmctx: std::ptr::null_mut(),
        type_id: u32::MAX,
        _padding: 0,
    };
}

/// Storage of one global: 16 bytes so every value type (including v128) fits.
#[repr(C, align(16))]
#[derive(Debug, Clone, Copy, Default)]
pub struct VMGlobalDefinition {
    pub bytes: [u8; 16],
}

/// A raw value crossing the host boundary: every Wasm value fits in 16 bytes.
/// Trampolines spill arguments and results into arrays of these.
#[repr(C, align(16))]
#[derive(Clone, Copy, Default)]
pub struct ValRaw {
    pub bytes: [u8; 16],
}

impl ValRaw {
    pub fn i32(v: i32) -> Self {
        Self::u128(v as u32 as u128)
    }
    pub fn i64(v: i64) -> Self {
        Self::u128(v as u64 as u128)
    }
    pub fn f32(bits: u32) -> Self {
        Self::u128(bits as u128)
    }
    pub fn f64(bits: u64) -> Self {
        Self::u128(bits as u128)
    }
    pub fn u128(v: u128) -> Self {
        ValRaw {
            bytes: v.to_le_bytes(),
        }
    }
    pub fn ptr(v: usize) -> Self {
        Self::u128(v as u128)
    }
    // The narrow getters read only their own bytes: the trampolines write a result
    // with a store of its width, and a wider load right after it could not be
    // forwarded from that store (a stall on every call).
    pub fn get_i32(&self) -> i32 {
        self.get_f32() as i32
    }
    pub fn get_i64(&self) -> i64 {
        self.get_f64() as i64
    }
    pub fn get_f32(&self) -> u32 {
        u32::from_le_bytes([self.bytes[0], self.bytes[1], self.bytes[2], self.bytes[3]])
    }
    pub fn get_f64(&self) -> u64 {
        let mut low = [0; 8];
        low.copy_from_slice(&self.bytes[..8]);
        u64::from_le_bytes(low)
    }
    pub fn get_u128(&self) -> u128 {
        u128::from_le_bytes(self.bytes)
    }
    pub fn get_ptr(&self) -> usize {
        self.get_f64() as usize
    }
}

impl std::fmt::Debug for ValRaw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValRaw({:#x})", self.get_u128())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;
    use wazerox_environ::vmoffsets as o;

    #[test]
    fn layout_matches_vmoffsets() {
        assert_eq!(
            offset_of!(VMStoreContext, stack_limit),
            o::VMSTORE_STACK_LIMIT as usize
        );
        assert_eq!(
            offset_of!(VMStoreContext, fuel_consumed),
            o::VMSTORE_FUEL_CONSUMED as usize
        );
        assert_eq!(
            offset_of!(VMStoreContext, epoch_deadline),
            o::VMSTORE_EPOCH_DEADLINE as usize
        );
        assert_eq!(offset_of!(VMStoreContext, epoch), o::VMSTORE_EPOCH as usize);
        assert_eq!(
            offset_of!(VMMemoryDefinition, current_length),
            o::VMMEMORY_CURRENT_LENGTH as usize
        );
        assert_eq!(
            offset_of!(VMTableDefinition, current_elements),
            o::VMTABLE_CURRENT_ELEMENTS as usize
        );
        assert_eq!(
            offset_of!(VMTableDefinition, written),
            o::VMTABLE_WRITTEN as usize
        );
        assert_eq!(offset_of!(VMFuncRef, vmctx), o::VMFUNCREF_VMCTX as usize);
        assert_eq!(
            offset_of!(VMFuncRef, type_id),
            o::VMFUNCREF_TYPE_ID as usize
        );
        assert_eq!(std::mem::size_of::<VMFuncRef>(), o::VMFUNCREF_SIZE as usize);
    }
}
