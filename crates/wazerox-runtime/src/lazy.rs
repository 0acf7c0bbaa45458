//! Lazy compilation's resolution point (docs/lazy-compilation.md).
//!
//! In a lazily compiled module, the function reference (`VMFuncRef`) of a defined
//! function starts with a null code address. Every path that calls through a
//! function reference checks for null and then asks [`resolve`]: compiled code
//! through the `LazyCompile` builtin (direct calls and `call_indirect`), the API
//! before a host call or before copying the reference into an importing instance.
//! `resolve` asks the instance's [`LazyFunctions`] (the API crate, which owns the
//! compiler) for the code, which compiles the function at most once per module,
//! and stores the address into the reference so later calls skip the builtin.

use crate::instance::Instance;
use crate::vmcontext::VMFuncRef;
use std::sync::atomic::{AtomicPtr, Ordering};
use wazerox_environ::FuncIndex;
use wazerox_environ::vmoffsets::VMFUNCREF_SIZE;

/// A module's code, compiled function by function on demand.
pub trait LazyFunctions: Send + Sync {
    /// The address of defined function `defined`'s code (Wasm calling convention),
    /// compiled first if no thread has compiled it yet. Concurrent callers for the
    /// same function get the same address from one compilation. The code stays
    /// mapped for as long as `self` lives.
    fn code(&self, defined: u32) -> Result<*const u8, String>;
}

/// The code address of the function `func_ref` refers to, compiling it if its
/// code address is still null, and storing that address into `func_ref`.
///
/// # Safety
/// `func_ref` points at a live function reference: a host function's, or one in
/// a live instance's VMContext (its own function, or its copy of an import).
pub unsafe fn resolve(func_ref: *const VMFuncRef) -> Result<*const u8, String> {
    // SAFETY: per the contract the reference is live; its code address may be
    // written concurrently by another thread resolving it (a shared module's
    // references are per instance, but an instance's references may be resolved
    // by the embedder on another thread holding the same store in turn), so it is
    // read and written atomically.
    let code = unsafe { (*wasm_call(func_ref)).load(Ordering::Acquire) };
    if !code.is_null() {
        return Ok(code.cast_const());
    }
    // SAFETY: a null code address only occurs in a defined function's reference of
    // a lazily compiled instance (host functions and resolved imports always have
    // code), whose `vmctx` field is that instance's VMContext.
    let instance = unsafe { Instance::from_vmctx((*func_ref).vmctx) };
    let index = instance
        .func_index_of_ref(func_ref)
        .ok_or("function reference with no code outside its instance")?;
    let module = instance.module();
    let defined = index
        .0
        .checked_sub(module.num_imported_functions)
        .ok_or("imported function reference with no code")?;
    let lazy = instance
        .lazy_functions()
        .ok_or("function reference with no code in an eagerly compiled instance")?;
    let code = lazy.code(defined)?;
    // SAFETY: as above; the store publishes an address whose code is mapped
    // executable for as long as the instance (which holds `lazy`) lives.
    unsafe { (*wasm_call(func_ref)).store(code.cast_mut(), Ordering::Release) };
    Ok(code)
}

/// The code address field of `func_ref`, as an atomic.
fn wasm_call(func_ref: *const VMFuncRef) -> *const AtomicPtr<u8> {
    // `wasm_call` is the first field, pointer-sized and pointer-aligned
    // (`VMFuncRef` is `repr(C)`), exactly the layout of `AtomicPtr<u8>`.
    func_ref.cast()
}

/// The builtin compiled code calls when a function reference's code address is
/// null (see `Builtin::LazyCompile`).
pub(crate) unsafe extern "C" fn lazy_compile(_vmctx: *mut u8, func_ref: *const VMFuncRef) -> usize {
    // SAFETY: compiled code passes a function reference it just loaded a null
    // code address from: in its own VMContext (direct calls) or from a table
    // (`call_indirect`), live while the caller runs.
    let body = || unsafe { resolve(func_ref) };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    match unsafe { crate::builtins::catching(body) } {
        Ok(code) => code as usize,
        // SAFETY: called by compiled code; nothing in this frame needs dropping.
        Err(message) => unsafe {
            crate::traphandlers::raise_host_error(
                format!("lazy compilation failed: {message}").into(),
            )
        },
    }
}

/// The function index of a reference into `instance`'s own function references.
pub(crate) fn func_index_in(
    vmctx: *mut u8,
    first_func_ref: u32,
    num_functions: usize,
    func_ref: *const VMFuncRef,
) -> Option<FuncIndex> {
    let offset = (func_ref as usize).checked_sub(vmctx as usize + first_func_ref as usize)?;
    let size = VMFUNCREF_SIZE as usize;
    let index = offset / size;
    (offset % size == 0 && index < num_functions).then_some(FuncIndex(index as u32))
}
