//! Implementations of the builtins compiled code calls (see
//! `wazerox_environ::Builtin` for the contract: order, signatures, and that a
//! non-zero `i32` result means "trap with the builtin's trap code").
//!
//! Each is called from compiled code with the VMContext of the running instance
//! and holds no borrow across calls. None unwinds into compiled code (an unwind
//! across an `extern "C"` boundary aborts the process): every body runs inside
//! [`catching`], which turns a panic — ours, or the embedder's, since
//! `memory.grow`/`table.grow` call the store's resource limiter — into the end of
//! the Wasm call, after which the embedder's call resumes the panic. The wait
//! builtins may end the call with a trap (`raise_trap`) when their store is
//! interrupted, once everything they hold is released.

use crate::instance::Instance;
use crate::table::range;
use crate::vmcontext::VMStoreContext;
use wazerox_environ::{MemoryIndex, TableIndex, TrapCode, VMOffsets};

/// The table whose address every VMContext holds, in `Builtin::ALL` order.
#[repr(C)]
struct BuiltinTable {
    memory_grow: unsafe extern "C" fn(*mut u8, u32, u64) -> u64,
    memory_fill: unsafe extern "C" fn(*mut u8, u32, u64, u32, u64) -> u32,
    memory_copy: unsafe extern "C" fn(*mut u8, u32, u64, u32, u64, u64) -> u32,
    memory_init: unsafe extern "C" fn(*mut u8, u32, u32, u64, u32, u32) -> u32,
    data_drop: unsafe extern "C" fn(*mut u8, u32),
    table_grow: unsafe extern "C" fn(*mut u8, u32, u64, u64) -> u64,
    table_fill: unsafe extern "C" fn(*mut u8, u32, u64, u64, u64) -> u32,
    table_copy: unsafe extern "C" fn(*mut u8, u32, u32, u64, u64, u64) -> u32,
    table_init: unsafe extern "C" fn(*mut u8, u32, u32, u64, u32, u32) -> u32,
    elem_drop: unsafe extern "C" fn(*mut u8, u32),
    memory_atomic_notify: unsafe extern "C" fn(*mut u8, u32, u64, u32) -> u32,
    memory_atomic_wait32: unsafe extern "C" fn(*mut u8, u32, u64, u32, i64) -> u32,
    memory_atomic_wait64: unsafe extern "C" fn(*mut u8, u32, u64, u64, i64) -> u32,
    exn_new: unsafe extern "C" fn(*mut u8, u32) -> u64,
    throw: unsafe extern "C" fn(*mut u8, usize) -> !,
    is_subtype: unsafe extern "C" fn(*mut u8, u32, u32) -> u32,
    epoch_deadline: unsafe extern "C" fn(*mut u8) -> u32,
    fuel_exhausted: unsafe extern "C" fn(*mut u8) -> u32,
    ref_test: unsafe extern "C" fn(*mut u8, u64, u32, u32) -> u32,
    gc_alloc: unsafe extern "C" fn(*mut u8, u32, u32) -> u64,
    array_copy: unsafe extern "C" fn(*mut u8, u64, u32, u64, u32, u32, u32) -> u32,
    array_new_data: unsafe extern "C" fn(*mut u8, u32, u32, u32, u32) -> u64,
    array_new_elem: unsafe extern "C" fn(*mut u8, u32, u32, u32, u32) -> u64,
    array_init_data: unsafe extern "C" fn(*mut u8, u32, u64, u32, u32, u32, u32),
    array_init_elem: unsafe extern "C" fn(*mut u8, u32, u64, u32, u32, u32, u32),
}

static BUILTINS: BuiltinTable = BuiltinTable {
    memory_grow,
    memory_fill,
    memory_copy,
    memory_init,
    data_drop,
    table_grow,
    table_fill,
    table_copy,
    table_init,
    elem_drop,
    memory_atomic_notify,
    memory_atomic_wait32,
    memory_atomic_wait64,
    exn_new: crate::exceptions::exn_new,
    throw: crate::exceptions::wazerox_throw_stub,
    is_subtype,
    epoch_deadline,
    fuel_exhausted,
    ref_test: crate::gc::ref_test,
    gc_alloc: crate::gc::wazerox_gc_alloc_stub,
    array_copy: crate::gc_array::array_copy,
    array_new_data: crate::gc_array::array_new_data,
    array_new_elem: crate::gc_array::array_new_elem,
    array_init_data: crate::gc_array::array_init_data,
    array_init_elem: crate::gc_array::array_init_elem,
};

pub(crate) fn table_address() -> usize {
    &BUILTINS as *const BuiltinTable as usize
}

const FAILED: u32 = 1;
const OK: u32 = 0;

fn status(ok: bool) -> u32 {
    if ok { OK } else { FAILED }
}

/// Runs a builtin's body, catching a panic: the payload is parked in the innermost
/// activation and the Wasm call ends (`raise_panic`), so the unwind resumes in the
/// embedder's call instead of aborting at the `extern "C"` boundary.
///
/// # Safety
/// Called from a builtin invoked by compiled code, with nothing in the builtin's
/// own frame that needs dropping (everything lives in `body`).
#[inline]
pub(crate) unsafe fn catching<R>(body: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(result) => result,
        // SAFETY: per the contract; `body` and its captures are gone, the payload
        // is moved into the activation.
        Err(payload) => unsafe { crate::traphandlers::raise_panic(payload) },
    }
}

/// # Safety
/// Called only by compiled code with the VMContext of a live instance.
unsafe fn instance<'a>(vmctx: *mut u8) -> &'a mut Instance {
    // SAFETY: forwarded from the caller's contract.
    unsafe { Instance::from_vmctx(vmctx) }
}

unsafe extern "C" fn memory_grow(vmctx: *mut u8, memory: u32, delta: u64) -> u64 {
    let body = || {
        // SAFETY: see `instance`.
        let instance = unsafe { instance(vmctx) };
        instance.grow_memory(MemoryIndex(memory), delta)
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    match unsafe { catching(body) } {
        Ok(old) => old.unwrap_or(u64::MAX),
        // SAFETY: called by compiled code; nothing in this frame needs dropping
        // (the error is moved).
        Err(e) => unsafe { crate::traphandlers::raise_host_error(e) },
    }
}

unsafe extern "C" fn memory_fill(
    vmctx: *mut u8,
    memory: u32,
    dst: u64,
    byte: u32,
    len: u64,
) -> u32 {
    let body = || {
        // SAFETY: see `instance`.
        let instance = unsafe { instance(vmctx) };
        let memory = instance.memory_ptr(MemoryIndex(memory));
        // SAFETY: the memory is live; a raw fill, because a shared memory's bytes may
        // be accessed by other threads meanwhile (no slice of them is ever made).
        unsafe {
            let Some(r) = range(dst, len, (*memory).byte_size()) else {
                return FAILED;
            };
            let base = (*(*memory).vmmemory()).base;
            std::ptr::write_bytes(base.add(r.start), byte as u8, r.len());
        }
        OK
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { catching(body) }
}

unsafe extern "C" fn memory_copy(
    vmctx: *mut u8,
    dst_memory: u32,
    dst: u64,
    src_memory: u32,
    src: u64,
    len: u64,
) -> u32 {
    let body = || {
        // SAFETY: see `instance`.
        let instance = unsafe { instance(vmctx) };
        let dst_mem = instance.memory_ptr(MemoryIndex(dst_memory));
        let src_mem = instance.memory_ptr(MemoryIndex(src_memory));
        // SAFETY: both memories are live; raw pointers (not slices) are used because
        // source and destination may be the same memory and may overlap.
        unsafe {
            let dst_len = (*dst_mem).byte_size();
            let src_len = (*src_mem).byte_size();
            let (Some(d), Some(s)) = (range(dst, len, dst_len), range(src, len, src_len)) else {
                return FAILED;
            };
            let dst_base = (*(*dst_mem).vmmemory()).base;
            let src_base = (*(*src_mem).vmmemory()).base;
            std::ptr::copy(src_base.add(s.start), dst_base.add(d.start), d.len());
        }
        OK
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { catching(body) }
}

unsafe extern "C" fn memory_init(
    vmctx: *mut u8,
    memory: u32,
    data: u32,
    dst: u64,
    src: u32,
    len: u32,
) -> u32 {
    let body = || {
        // SAFETY: see `instance`.
        let instance = unsafe { instance(vmctx) };
        let segment_len = instance.data_segment(data).len() as u64;
        let Some(s) = range(u64::from(src), u64::from(len), segment_len) else {
            return FAILED;
        };
        let memory = instance.memory_ptr(MemoryIndex(memory));
        let segment = &instance.data_segment(data)[s];
        // SAFETY: the memory is live and distinct from the module's segment bytes.
        status(unsafe { crate::instance::copy_into_memory(memory, dst, segment) })
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { catching(body) }
}

unsafe extern "C" fn data_drop(vmctx: *mut u8, data: u32) {
    let body = || {
        // SAFETY: see `instance`.
        unsafe { instance(vmctx) }.drop_data(data);
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { catching(body) }
}

unsafe extern "C" fn table_grow(vmctx: *mut u8, table: u32, delta: u64, init: u64) -> u64 {
    let body = || {
        // SAFETY: see `instance`.
        let instance = unsafe { instance(vmctx) };
        instance.grow_table(TableIndex(table), delta, init as usize)
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    match unsafe { catching(body) } {
        Ok(old) => old.unwrap_or(u64::MAX),
        // SAFETY: as in `memory_grow`.
        Err(e) => unsafe { crate::traphandlers::raise_host_error(e) },
    }
}

unsafe extern "C" fn table_fill(vmctx: *mut u8, table: u32, dst: u64, value: u64, len: u64) -> u32 {
    let body = || {
        // SAFETY: see `instance`.
        let instance = unsafe { instance(vmctx) };
        status(
            instance
                .table_mut(TableIndex(table))
                .fill(dst, value as usize, len),
        )
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { catching(body) }
}

unsafe extern "C" fn table_copy(
    vmctx: *mut u8,
    dst_table: u32,
    src_table: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
    let body = || {
        // SAFETY: see `instance`.
        let instance = unsafe { instance(vmctx) };
        let dst_ptr = instance.table_ptr(TableIndex(dst_table));
        let src_ptr = instance.table_ptr(TableIndex(src_table));
        // SAFETY: both tables are live; when they are the same table only one
        // reference is created.
        unsafe {
            if dst_ptr == src_ptr {
                status((*dst_ptr).copy_within(dst, src, len))
            } else {
                status((*dst_ptr).copy_from(&*src_ptr, dst, src, len))
            }
        }
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { catching(body) }
}

unsafe extern "C" fn table_init(
    vmctx: *mut u8,
    table: u32,
    elem: u32,
    dst: u64,
    src: u32,
    len: u32,
) -> u32 {
    let body = || {
        // SAFETY: see `instance`.
        let instance = unsafe { instance(vmctx) };
        let items = instance.element_segment(elem);
        let Some(s) = range(u64::from(src), u64::from(len), items.len() as u64) else {
            return FAILED;
        };
        status(instance.table_mut(TableIndex(table)).init(dst, &items[s]))
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { catching(body) }
}

unsafe extern "C" fn is_subtype(vmctx: *mut u8, actual: u32, expected: u32) -> u32 {
    let body = || {
        // SAFETY: see `instance`.
        let instance = unsafe { instance(vmctx) };
        u32::from(!instance.types().is_subtype(actual, expected))
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { catching(body) }
}

unsafe extern "C" fn elem_drop(vmctx: *mut u8, elem: u32) {
    let body = || {
        // SAFETY: see `instance`.
        unsafe { instance(vmctx) }.drop_element(elem);
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { catching(body) }
}

/// Address of the `size`-byte cell at byte `offset` of memory `memory`, checked
/// here rather than trusted from compiled code: when the guard region covers an
/// access, compiled code emits no bounds check (a plain access would fault into a
/// trap), but these builtins read the cell from Rust, where a fault is a host crash.
/// Out of bounds traps `MemoryOutOfBounds`, a misaligned cell `HeapMisaligned`.
///
/// # Safety
/// As for `instance`; called directly by compiled code (the traps unwind to it),
/// before anything that needs dropping exists in the builtin's frame.
unsafe fn checked_cell(vmctx: *mut u8, memory: u32, offset: u64, size: u64) -> *const u8 {
    // SAFETY: forwarded; the memory is live for the call.
    let (base, length) = unsafe {
        let memory = instance(vmctx).memory_ptr(MemoryIndex(memory));
        ((*(*memory).vmmemory()).base, (*memory).byte_size())
    };
    if !offset.is_multiple_of(size) {
        // SAFETY: nothing in this frame or the caller's needs dropping.
        unsafe { crate::traphandlers::raise_trap(TrapCode::HeapMisaligned) }
    }
    if range(offset, size, length).is_none() {
        // SAFETY: as above.
        unsafe { crate::traphandlers::raise_trap(TrapCode::MemoryOutOfBounds) }
    }
    // SAFETY: `offset + size <= length`, inside the memory's accessible bytes.
    unsafe { base.add(offset as usize) }
}

fn timeout(nanos: i64) -> Option<std::time::Duration> {
    u64::try_from(nanos)
        .ok()
        .map(std::time::Duration::from_nanos)
}

unsafe extern "C" fn memory_atomic_notify(
    vmctx: *mut u8,
    memory: u32,
    address: u64,
    count: u32,
) -> u32 {
    // SAFETY: see `checked_cell`; checked before `catching`, so its trap leaves
    // no Rust frame that needs unwinding.
    let address = unsafe { checked_cell(vmctx, memory, address, 4) };
    let body = || crate::parking::notify(address, count);
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { catching(body) }
}

unsafe extern "C" fn memory_atomic_wait32(
    vmctx: *mut u8,
    memory: u32,
    address: u64,
    expected: u32,
    timeout_ns: i64,
) -> u32 {
    // SAFETY: see `checked_cell`; checked before `catching` (its trap leaves no
    // Rust frame that needs unwinding).
    let cell = unsafe { checked_cell(vmctx, memory, address, 4) };
    let body = || {
        // SAFETY: compiled code checked that the memory is shared; `cell` is in
        // bounds and aligned.
        unsafe {
            wait(
                vmctx,
                cell,
                crate::parking::Expected::U32(expected),
                timeout_ns,
            )
        }
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { finish_wait(catching(body)) }
}

unsafe extern "C" fn memory_atomic_wait64(
    vmctx: *mut u8,
    memory: u32,
    address: u64,
    expected: u64,
    timeout_ns: i64,
) -> u32 {
    // SAFETY: see `checked_cell`; checked before `catching` (its trap leaves no
    // Rust frame that needs unwinding).
    let cell = unsafe { checked_cell(vmctx, memory, address, 8) };
    let body = || {
        // SAFETY: compiled code checked that the memory is shared; `cell` is in
        // bounds and aligned.
        unsafe {
            wait(
                vmctx,
                cell,
                crate::parking::Expected::U64(expected),
                timeout_ns,
            )
        }
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { finish_wait(catching(body)) }
}

/// A wait builtin's result; traps with `Interrupt` if the store was interrupted
/// meanwhile (so the guest never sees a result it did not get).
///
/// # Safety
/// Called by a wait builtin, with nothing left in its frame that needs dropping.
unsafe fn finish_wait(result: crate::parking::WaitResult) -> u32 {
    if result == crate::parking::WaitResult::Interrupted {
        // SAFETY: called by compiled code; nothing in this frame or the builtin's
        // needs dropping (the wait has returned and released everything).
        unsafe { crate::traphandlers::raise_trap(TrapCode::Interrupt) }
    }
    result as u32
}

/// The store context of the instance `vmctx`.
///
/// # Safety
/// As for `instance`: every VMContext holds its store's context, which outlives
/// the running call.
unsafe fn store_context<'a>(vmctx: *mut u8) -> &'a VMStoreContext {
    // SAFETY: per the contract.
    unsafe {
        &**vmctx
            .add(VMOffsets::STORE_CONTEXT as usize)
            .cast::<*const VMStoreContext>()
    }
}

unsafe extern "C" fn epoch_deadline(vmctx: *mut u8) -> u32 {
    let body = || {
        // SAFETY: see `store_context`.
        let store = unsafe { store_context(vmctx) };
        // SAFETY: only this thread, running the store's code, writes the setting.
        let delta = unsafe { *store.epoch_yield.get() };
        let Some(delta) = delta else {
            return FAILED;
        };
        // Interrupted (deadline forced to 0): stop for good, never yield.
        if store.is_interrupted() || crate::fiber::yield_now().is_err() {
            return FAILED;
        }
        // SAFETY: the engine's counter outlives its stores' running code.
        let epoch = unsafe { (**store.epoch.get()).load(std::sync::atomic::Ordering::SeqCst) };
        store.set_epoch_deadline(epoch.saturating_add(delta));
        status(!store.is_interrupted())
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { catching(body) }
}

unsafe extern "C" fn fuel_exhausted(vmctx: *mut u8) -> u32 {
    let body = || {
        // SAFETY: see `store_context`.
        let store = unsafe { store_context(vmctx) };
        // SAFETY: a builtin of the store's running code (see `fuel_left`).
        unsafe {
            // The last region charged more than the reserve holds: out of fuel,
            // as without a reserve.
            if store.fuel_overspent() {
                return FAILED;
            }
            if store.fuel_yield_interval() != 0 && crate::fiber::yield_now().is_err() {
                return FAILED;
            }
            store.set_fuel(store.fuel_left());
        }
        OK
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { catching(body) }
}

/// A wait of the store `vmctx` runs in.
///
/// # Safety
/// As for `checked_cell`, with a shared memory; `cell` comes from it.
unsafe fn wait(
    vmctx: *mut u8,
    cell: *const u8,
    expected: crate::parking::Expected,
    timeout_ns: i64,
) -> crate::parking::WaitResult {
    // SAFETY: forwarded; every VMContext holds its store's context, which outlives
    // the running call.
    unsafe {
        let address = cell;
        let store = *vmctx
            .add(VMOffsets::STORE_CONTEXT as usize)
            .cast::<*const VMStoreContext>();
        crate::parking::wait(address, expected, timeout(timeout_ns), &(*store).waits)
    }
}

#[cfg(test)]
mod tests {
    use wazerox_environ::Builtin;

    #[test]
    fn table_layout_matches_builtin_order() {
        assert_eq!(
            std::mem::size_of::<super::BuiltinTable>(),
            Builtin::ALL.len() * 8
        );
        assert_eq!(Builtin::MemoryGrow.index(), 0);
        assert_eq!(Builtin::ElemDrop.index(), 9);
        assert_eq!(Builtin::MemoryAtomicWait64.index(), 12);
        assert_eq!(Builtin::IsSubtype.index(), 15);
    }
}
