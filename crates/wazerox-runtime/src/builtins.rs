//! Implementations of the builtins compiled code calls (see
//! `wazerox_environ::Builtin` for the contract: order, signatures, and that a
//! non-zero `i32` result means "trap with the builtin's trap code").
//!
//! Each is called from compiled code with the VMContext of the running instance,
//! never unwinds (a panic here would cross an `extern "C"` boundary, so every
//! operation is bounds-checked and infallible), and holds no borrow across calls.
//! The wait builtins alone may end the call with a trap (`raise_trap`) when their
//! store is interrupted, once everything they hold is released.

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
};

pub(crate) fn table_address() -> usize {
    &BUILTINS as *const BuiltinTable as usize
}

const FAILED: u32 = 1;
const OK: u32 = 0;

fn status(ok: bool) -> u32 {
    if ok { OK } else { FAILED }
}

/// # Safety
/// Called only by compiled code with the VMContext of a live instance.
unsafe fn instance<'a>(vmctx: *mut u8) -> &'a mut Instance {
    // SAFETY: forwarded from the caller's contract.
    unsafe { Instance::from_vmctx(vmctx) }
}

unsafe extern "C" fn memory_grow(vmctx: *mut u8, memory: u32, delta: u64) -> u64 {
    // SAFETY: see `instance`.
    let instance = unsafe { instance(vmctx) };
    match instance.grow_memory(MemoryIndex(memory), delta) {
        Ok(old) => old.unwrap_or(u64::MAX),
        // SAFETY: called by compiled code; nothing in this frame needs dropping
        // (`instance` is a reference, the error is moved).
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
    // SAFETY: see `instance`.
    let instance = unsafe { instance(vmctx) };
    let data = instance.memory_mut(MemoryIndex(memory)).data_mut();
    match range(dst, len, data.len() as u64) {
        Some(r) => {
            data[r].fill(byte as u8);
            OK
        }
        None => FAILED,
    }
}

unsafe extern "C" fn memory_copy(
    vmctx: *mut u8,
    dst_memory: u32,
    dst: u64,
    src_memory: u32,
    src: u64,
    len: u64,
) -> u32 {
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
}

unsafe extern "C" fn memory_init(
    vmctx: *mut u8,
    memory: u32,
    data: u32,
    dst: u64,
    src: u32,
    len: u32,
) -> u32 {
    // SAFETY: see `instance`.
    let instance = unsafe { instance(vmctx) };
    let segment_len = instance.data_segment(data).len() as u64;
    let Some(s) = range(u64::from(src), u64::from(len), segment_len) else {
        return FAILED;
    };
    let memory = instance.memory_ptr(MemoryIndex(memory));
    // SAFETY: the memory is live and distinct from the module's segment bytes.
    let bytes = unsafe { (*memory).data_mut() };
    let Some(d) = range(dst, u64::from(len), bytes.len() as u64) else {
        return FAILED;
    };
    bytes[d].copy_from_slice(&instance.data_segment(data)[s]);
    OK
}

unsafe extern "C" fn data_drop(vmctx: *mut u8, data: u32) {
    // SAFETY: see `instance`.
    unsafe { instance(vmctx) }.drop_data(data);
}

unsafe extern "C" fn table_grow(vmctx: *mut u8, table: u32, delta: u64, init: u64) -> u64 {
    // SAFETY: see `instance`.
    let instance = unsafe { instance(vmctx) };
    match instance.grow_table(TableIndex(table), delta, init as usize) {
        Ok(old) => old.unwrap_or(u64::MAX),
        // SAFETY: as in `memory_grow`.
        Err(e) => unsafe { crate::traphandlers::raise_host_error(e) },
    }
}

unsafe extern "C" fn table_fill(vmctx: *mut u8, table: u32, dst: u64, value: u64, len: u64) -> u32 {
    // SAFETY: see `instance`.
    let instance = unsafe { instance(vmctx) };
    status(
        instance
            .table_mut(TableIndex(table))
            .fill(dst, value as usize, len),
    )
}

unsafe extern "C" fn table_copy(
    vmctx: *mut u8,
    dst_table: u32,
    src_table: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
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
}

unsafe extern "C" fn table_init(
    vmctx: *mut u8,
    table: u32,
    elem: u32,
    dst: u64,
    src: u32,
    len: u32,
) -> u32 {
    // SAFETY: see `instance`.
    let instance = unsafe { instance(vmctx) };
    let items = instance.element_segment(elem);
    let Some(s) = range(u64::from(src), u64::from(len), items.len() as u64) else {
        return FAILED;
    };
    status(instance.table_mut(TableIndex(table)).init(dst, &items[s]))
}

unsafe extern "C" fn elem_drop(vmctx: *mut u8, elem: u32) {
    // SAFETY: see `instance`.
    unsafe { instance(vmctx) }.drop_element(elem);
}

/// Address of byte `offset` of memory `memory` (already bounds- and alignment-
/// checked by compiled code).
///
/// # Safety
/// As for `instance`.
unsafe fn memory_address(vmctx: *mut u8, memory: u32, offset: u64) -> *const u8 {
    // SAFETY: forwarded; the memory is live and the offset in bounds.
    unsafe {
        let memory = instance(vmctx).memory_ptr(MemoryIndex(memory));
        (*(*memory).vmmemory()).base.add(offset as usize)
    }
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
    // SAFETY: see `memory_address`.
    let address = unsafe { memory_address(vmctx, memory, address) };
    crate::parking::notify(address, count)
}

unsafe extern "C" fn memory_atomic_wait32(
    vmctx: *mut u8,
    memory: u32,
    address: u64,
    expected: u32,
    timeout_ns: i64,
) -> u32 {
    // SAFETY: compiled code checked bounds, alignment and that the memory is shared.
    unsafe {
        wait(
            vmctx,
            memory,
            address,
            crate::parking::Expected::U32(expected),
            timeout_ns,
        )
    }
}

unsafe extern "C" fn memory_atomic_wait64(
    vmctx: *mut u8,
    memory: u32,
    address: u64,
    expected: u64,
    timeout_ns: i64,
) -> u32 {
    // SAFETY: as for `memory_atomic_wait32`.
    unsafe {
        wait(
            vmctx,
            memory,
            address,
            crate::parking::Expected::U64(expected),
            timeout_ns,
        )
    }
}

/// A wait of the store `vmctx` runs in; traps with `Interrupt` if the store is
/// interrupted meanwhile (so the guest never sees a result it did not get).
///
/// # Safety
/// As for `memory_address`, with a shared memory.
unsafe fn wait(
    vmctx: *mut u8,
    memory: u32,
    address: u64,
    expected: crate::parking::Expected,
    timeout_ns: i64,
) -> u32 {
    // SAFETY: forwarded; every VMContext holds its store's context, which outlives
    // the running call.
    let result = unsafe {
        let address = memory_address(vmctx, memory, address);
        let store = *vmctx
            .add(VMOffsets::STORE_CONTEXT as usize)
            .cast::<*const VMStoreContext>();
        crate::parking::wait(address, expected, timeout(timeout_ns), &(*store).waits)
    };
    if result == crate::parking::WaitResult::Interrupted {
        // SAFETY: called by compiled code; nothing in this frame or the builtin's
        // needs dropping (the wait has returned and released everything).
        unsafe { crate::traphandlers::raise_trap(TrapCode::Interrupt) }
    }
    result as u32
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
    }
}
