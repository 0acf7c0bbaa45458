//! Lazy compilation's resolution point (docs/lazy-compilation.md).
//!
//! In a lazily compiled instance, the function reference (`VMFuncRef`) of a
//! defined function not compiled yet holds the address of a small **stub** of
//! its own instead of code. The stub is called exactly as the function would be
//! (every call path — direct calls, `call_indirect`, `call_ref`, imports, host
//! calls — loads the reference's code address and calls it, with no test), so
//! code compiled in any mode, even code that knows nothing of laziness, can call
//! it. The stub puts its reference's address in a scratch register and jumps to
//! one shared trampoline, which saves every argument register of the Wasm calling
//! convention, calls [`stub_resolve`] (which compiles the function through the
//! instance's [`LazyFunctions`], at most once per module, and stores the code
//! address into the reference so later calls skip the stub), restores the
//! arguments and jumps to the code: the function then runs as if called
//! directly, returning straight to the caller.

use crate::code_memory::CodeMemory;
use crate::instance::Instance;
use crate::vmcontext::VMFuncRef;
use std::collections::BTreeMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicPtr, Ordering};
use wazerox_environ::FuncIndex;
use wazerox_environ::vmoffsets::VMFUNCREF_SIZE;

#[cfg_attr(target_arch = "x86_64", path = "lazy/x86_64.rs")]
#[cfg_attr(target_arch = "aarch64", path = "lazy/aarch64.rs")]
mod arch;

/// A module's code, compiled function by function on demand.
pub trait LazyFunctions: Send + Sync {
    /// The address of defined function `defined`'s code (Wasm calling convention),
    /// compiled first if no thread has compiled it yet. Concurrent callers for the
    /// same function get the same address from one compilation. The code stays
    /// mapped for as long as `self` lives.
    fn code(&self, defined: u32) -> Result<*const u8, String>;
}

/// The stubs of one instance's functions that were not compiled when it was
/// created: one `arch::STUB_SIZE`-byte stub per such function, after a header
/// (`arch::HEADER_SIZE` bytes) that holds the trampoline's address.
pub(crate) struct LazyStubs {
    code: CodeMemory,
}

/// Start → end of every live stub image: how [`resolve`] tells a stub address
/// from code (a host function's reference has no instance to ask).
static STUB_IMAGES: RwLock<BTreeMap<usize, usize>> = RwLock::new(BTreeMap::new());

impl LazyStubs {
    /// Stubs for the references at `func_refs` (addresses inside a VMContext);
    /// the stub of `func_refs[i]` is at [`LazyStubs::stub`]`(i)`.
    pub(crate) fn new(func_refs: &[*const VMFuncRef]) -> Result<LazyStubs, String> {
        let mut image = vec![0u8; arch::HEADER_SIZE + func_refs.len() * arch::STUB_SIZE];
        image[..8].copy_from_slice(&(arch::trampoline_address() as u64).to_le_bytes());
        for (i, func_ref) in func_refs.iter().enumerate() {
            let at = arch::HEADER_SIZE + i * arch::STUB_SIZE;
            arch::write_stub(&mut image[at..at + arch::STUB_SIZE], at, *func_ref as u64);
        }
        let code = CodeMemory::new(&image, |_| Ok(()))?;
        STUB_IMAGES
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(code.base(), code.base() + code.len());
        Ok(LazyStubs { code })
    }

    /// The address of the `i`th stub.
    pub(crate) fn stub(&self, i: usize) -> *const u8 {
        (self.code.base() + arch::HEADER_SIZE + i * arch::STUB_SIZE) as *const u8
    }
}

impl Drop for LazyStubs {
    fn drop(&mut self) {
        STUB_IMAGES
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.code.base());
    }
}

/// Whether `code` is a lazy stub's address (the function is not compiled yet).
fn is_stub(code: usize) -> bool {
    let images = STUB_IMAGES.read().unwrap_or_else(|e| e.into_inner());
    images
        .range(..=code)
        .next_back()
        .is_some_and(|(_, end)| code < *end)
}

/// The code address of the function `func_ref` refers to, compiling it (and
/// storing the address into `func_ref`) if it is still a lazy stub. For callers
/// that copy a reference's code address elsewhere (an importing instance), where
/// the stub would keep costing a detour on every call.
///
/// # Safety
/// `func_ref` points at a live function reference: a host function's, or one in
/// a live instance's VMContext (its own function, or its copy of an import).
pub unsafe fn resolve(func_ref: *const VMFuncRef) -> Result<*const u8, String> {
    // SAFETY: per the contract the reference is live; its code address may be
    // written concurrently by another thread resolving it, so it is read
    // atomically.
    let code = unsafe { (*wasm_call(func_ref)).load(Ordering::Acquire) };
    if !is_stub(code as usize) {
        return Ok(code.cast_const());
    }
    // SAFETY: a stub only occurs in a lazily compiled instance's own reference.
    unsafe { compile(func_ref) }
}

/// Compiles the function of `func_ref`, a reference in its own instance's
/// VMContext, and publishes its code address there.
///
/// # Safety
/// `func_ref` is a live instance's own reference of one of its defined functions.
unsafe fn compile(func_ref: *const VMFuncRef) -> Result<*const u8, String> {
    // SAFETY: per the contract, `vmctx` is that instance's VMContext.
    let instance = unsafe { Instance::from_vmctx((*func_ref).vmctx) };
    let index = instance
        .func_index_of_ref(func_ref)
        .ok_or("lazy stub of a reference outside its instance")?;
    let module = instance.module();
    let defined = index
        .0
        .checked_sub(module.num_imported_functions)
        .ok_or("lazy stub of an imported function")?;
    let lazy = instance
        .lazy_functions()
        .ok_or("lazy stub in an eagerly compiled instance")?;
    let code = lazy.code(defined)?;
    // SAFETY: the reference is live; the store publishes an address whose code is
    // mapped executable (and registered) for as long as the instance, which holds
    // `lazy`, lives. Another thread may read the field meanwhile: it sees the stub
    // or the code, both callable.
    unsafe { (*wasm_call(func_ref)).store(code.cast_mut(), Ordering::Release) };
    Ok(code)
}

/// The code address field of `func_ref`, as an atomic.
fn wasm_call(func_ref: *const VMFuncRef) -> *const AtomicPtr<u8> {
    // `wasm_call` is the first field, pointer-sized and pointer-aligned
    // (`VMFuncRef` is `repr(C)`), exactly the layout of `AtomicPtr<u8>`.
    func_ref.cast()
}

/// What the trampoline calls with the stub's reference: the code address to
/// continue at. A compilation failure ends the Wasm call with a host error.
unsafe extern "C" fn stub_resolve(func_ref: *const VMFuncRef) -> usize {
    // SAFETY: stubs exist only for an instance's own references of its defined
    // functions, and live no longer than the instance (see `LazyStubs`).
    let body = || unsafe { compile(func_ref) };
    // SAFETY: called by compiled code (through a stub and the trampoline, whose
    // frame holds only saved registers); `body` owns everything of this call.
    match unsafe { crate::builtins::catching(body) } {
        Ok(code) => code as usize,
        // SAFETY: as above; nothing in this frame needs dropping.
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
