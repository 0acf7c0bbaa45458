//! Catching traps: signal handlers, the per-thread chain of activations, and
//! backtraces.
//!
//! # Mechanism
//! A host→Wasm call runs inside [`catch_traps`], which pushes an `Activation` (on
//! its own stack frame) onto a thread-local chain and calls the Wasm entry through
//! `wazerox_catch_call`, a few lines of assembly per architecture that save the
//! callee-saved registers and the stack pointer in the activation's jump buffer.
//! When compiled code faults (an access in a guard region, a trap instruction, a
//! hardware division fault), the signal handler checks that this thread has an
//! activation and that the PC is registered JIT code, records the PC, the fault
//! address and the frames of the frame-pointer chain in the activation, and edits
//! the signal context so that *returning* from the handler lands in
//! `wazerox_unwind_to(jmp_buf)`, which restores the saved registers and makes
//! `wazerox_catch_call` return 1. The handler never jumps out itself: `sigreturn`
//! restores the signal mask and the alternate-stack state as usual. `catch_traps`
//! then looks the trap code up in the code registry and returns a [`TrapReason`].
//!
//! # Invariants of unwinding
//! The jump discards every frame between `wazerox_catch_call` and the fault
//! without running destructors. Those frames are only: the non-generic callback
//! shim and the closure given to `catch_traps` (which, by contract, own nothing
//! that needs dropping across the call into compiled code), Cranelift trampolines,
//! and JIT frames. Host functions called from Wasm never let a trap or a Rust unwind
//! cross them: they catch panics, park the error or panic payload in the activation
//! ([`set_pending_host_error`], [`set_pending_panic`]), return a failure status,
//! and the trampoline traps with `HostError` *after* they returned. A panic in the
//! closure itself is caught in the shim and resumed once the activation is popped.
//!
//! # Async-signal safety
//! The handler only: reads a const-initialized thread-local `Cell` (no lazy
//! initialization, no destructor registration), reads the previous sigactions from
//! a `OnceLock` (an atomic load), takes the code registry's read lock (a futex that
//! no thread holds while it can fault, see `code_registry`), walks the stack into a
//! buffer allocated when the thread first entered Wasm, and stores into the
//! activation, which the interrupted thread does not touch while JIT code runs. No
//! allocation, no `std::io`, no formatting.
//!
//! # Faults of compiled code are classified by address
//! A SIGSEGV/SIGBUS of JIT code is a Wasm trap only if its address lies in the
//! reservation (accessible part + guard region) of a linear memory of the running
//! activation's store — every instance registers its memories' reservations in
//! its store's `VMStoreContext` — or just below the thread's stack floor (the Wasm
//! stack guard: `StackOverflow`). Anything else is a bug of ours (translator,
//! runtime, corrupted artifact): the handler writes "wazerox: fatal: … not a Wasm
//! trap" with the PC and the address to stderr and aborts, rather than let a guest
//! see it as an out-of-bounds access.
//!
//! # Faults that are not ours
//! A signal on a thread with no activation, a signal sent by `kill`/`raise`, or a
//! fault at a PC outside JIT code (host code, including host functions called from
//! Wasm) goes to the handler installed before ours: its `sa_sigaction`/`sa_handler`
//! is called; if it was `SIG_DFL`, the default action is restored and the fault
//! re-executes into it (a sent signal is raised again); if it was `SIG_IGN`, a sent
//! signal is ignored and a fault gets the default action (the kernel would never let
//! a synchronous fault be ignored either). The host sees every fault it caused.
//!
//! # Stack limit and signal stacks
//! The outermost activation of a store on a thread sets the store's stack limit
//! (checked by every compiled function's prologue) to `max_wasm_stack` below the
//! entry, but never lower than the thread's stack bottom plus a margin for host
//! calls, and puts the previous limit back when it ends, normally or by a trap.
//! Nested activations (Wasm → host → Wasm) on the same thread keep the outer limit.
//! "Outermost" means no activation of the store is on *this thread's* chain: a
//! `Caller` is `Send`, so a host function may hand the store to another thread
//! while its own Wasm frames wait; that thread's Wasm gets a limit in its own stack
//! (the first thread's would be meaningless there), and the first thread's limit is
//! back when the call returns. Every thread that enters
//! Wasm gets an alternate signal stack (unless it has a large enough one), so the
//! handler has room even when the trap is a stack overflow.

#[cfg_attr(target_arch = "x86_64", path = "traphandlers/x86_64.rs")]
#[cfg_attr(target_arch = "aarch64", path = "traphandlers/aarch64.rs")]
mod arch;
mod backtrace;
mod signals;
#[cfg(all(test, target_arch = "x86_64"))]
mod tests;
#[cfg(all(test, target_arch = "aarch64"))]
mod tests_aarch64;

use crate::code_registry;
use crate::vmcontext::VMStoreContext;
use backtrace::{MAX_BACKTRACE_FRAMES, capture_frames, symbolize};
use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use wazerox_environ::TrapCode;

pub use backtrace::{Backtrace, BacktraceFrame};
pub use signals::init_traps;

/// Why a call into Wasm did not return normally.
pub enum TrapReason {
    /// Compiled code trapped.
    Wasm {
        code: TrapCode,
        /// Address of the trapping instruction.
        pc: usize,
        /// The faulting data address, for traps raised by memory faults.
        fault_address: Option<usize>,
        backtrace: Backtrace,
    },
    /// A host function returned an error.
    Host(Box<dyn std::error::Error + Send + Sync>),
    /// A host function panicked; the caller should resume the unwind.
    Panic(Box<dyn Any + Send>),
    /// A Wasm exception (the address of an exception object of the store) left
    /// the activation uncaught.
    Exception(usize),
}

impl std::fmt::Debug for TrapReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrapReason::Wasm {
                code,
                pc,
                fault_address,
                backtrace,
            } => {
                write!(f, "Wasm trap {code:?} at {pc:#x}")?;
                if let Some(address) = fault_address {
                    write!(f, " accessing {address:#x}")?;
                }
                write!(f, " ({} Wasm frames)", backtrace.frames.len())
            }
            TrapReason::Host(e) => write!(f, "host error: {e}"),
            TrapReason::Panic(_) => write!(f, "host panic"),
            TrapReason::Exception(exn) => write!(f, "uncaught exception {exn:#x}"),
        }
    }
}

/// What the signal handler found.
#[derive(Clone, Copy, Default)]
struct TrapRecord {
    pc: usize,
    fault_address: Option<usize>,
    signal: i32,
    /// Number of PCs written to the activation's frame buffer.
    frames: usize,
    /// Set by [`raise_trap`]: the code, not looked up at `pc`.
    code: Option<TrapCode>,
}

enum Pending {
    Error(Box<dyn std::error::Error + Send + Sync>),
    Panic(Box<dyn Any + Send>),
    Exception(usize),
}

/// One host→Wasm entry on this thread; lives on `catch_traps`'s stack frame.
pub(crate) struct Activation {
    /// Process-wide unique id: snapshots name the activation they belong to.
    id: u64,
    /// The store the activation runs in.
    store: *const VMStoreContext,
    /// This thread's lowest usable stack address (0 if unknown): a fault just below
    /// it is the Wasm stack overflowing.
    stack_floor: usize,
    jmp_buf: UnsafeCell<arch::JmpBuf>,
    /// The running thread's buffer for the PCs of a trap's frames
    /// (`MAX_BACKTRACE_FRAMES` words), written by the handler and read right after
    /// the trap. A `Cell` (like `previous`): an activation on a fiber is relinked
    /// to the resuming thread's buffer and chain (`switch_in`).
    frames: Cell<*mut usize>,
    previous: Cell<*const Activation>,
    trap: UnsafeCell<TrapRecord>,
    /// Set only right before a trap that reports it, and taken by `catch_traps`
    /// then: not dropped, so a call that returns normally pays for no drop glue.
    pending: ManuallyDrop<RefCell<Option<Pending>>>,
}

thread_local! {
    /// This thread's innermost activation. Const-initialized and without
    /// destructor: the signal handler reads it.
    static ACTIVATION: Cell<*const Activation> = const { Cell::new(std::ptr::null()) };
}

/// Threads that have entered Wasm get a number once; activation ids are
/// `thread number << 40 | per-thread counter`, unique process-wide without an atomic
/// read-modify-write on every call into Wasm.
static NEXT_THREAD_NUMBER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn new_thread_number() -> u64 {
    NEXT_THREAD_NUMBER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) << 40
}

/// Id, store and entry stack pointer of this thread's innermost activation.
pub(crate) fn innermost_activation() -> Option<(u64, *const VMStoreContext, usize)> {
    let activation = current_activation();
    if activation.is_null() {
        return None;
    }
    // SAFETY: activations on the chain live on frames of this thread's stack that
    // are still running (each is popped before its frame returns).
    let a = unsafe { &*activation };
    Some((a.id, a.store, arch::saved_stack_pointer(a.jmp_buf.get())))
}

/// The highest entry stack pointer of `store`'s activations on this thread, if
/// all `calls` live calls of the store are among them and run on the stack of
/// the innermost activation (so `[current sp, top)` holds every Wasm frame of
/// the store); `None` otherwise, or if that stack's floor is unknown.
pub(crate) fn store_stack_top(store: *const VMStoreContext, calls: usize) -> Option<usize> {
    let mut activation = current_activation();
    if activation.is_null() {
        return None;
    }
    // SAFETY: as in `innermost_activation`.
    let floor = unsafe { (*activation).stack_floor };
    if floor == 0 {
        return None;
    }
    let (mut found, mut top) = (0, 0);
    while !activation.is_null() {
        // SAFETY: as in `innermost_activation`.
        let a = unsafe { &*activation };
        if a.store == store {
            if a.stack_floor != floor {
                return None;
            }
            found += 1;
            top = top.max(arch::saved_stack_pointer(a.jmp_buf.get()));
        }
        activation = a.previous.get();
    }
    (found == calls && found > 0).then_some(top)
}

/// Whether the activation `id` is still running on this thread.
pub(crate) fn activation_is_live(id: u64) -> bool {
    let mut activation = current_activation();
    while !activation.is_null() {
        // SAFETY: as in `innermost_activation`.
        let a = unsafe { &*activation };
        if a.id == id {
            return true;
        }
        activation = a.previous.get();
    }
    false
}

/// Whether an activation of `store` runs on the stack whose floor is `floor`
/// (the thread's own stack or one fiber's): the chain may continue into other
/// stacks (a fiber resumed from a host call), whose limits mean nothing here.
#[inline]
fn store_is_active_on_this_stack(
    mut activation: *const Activation,
    store: *const VMStoreContext,
    floor: usize,
) -> bool {
    while !activation.is_null() {
        // SAFETY: as in `innermost_activation`.
        let a = unsafe { &*activation };
        if a.store == store && a.stack_floor == floor {
            return true;
        }
        activation = a.previous.get();
    }
    false
}

/// The innermost activation of this thread (null if none). Async-signal-safe.
/// Never inlined: code on a fiber may change threads at a suspension, and a
/// thread-local address computed before one must not be reused after it.
#[inline(never)]
fn current_activation() -> *const Activation {
    ACTIVATION.with(|a| a.get())
}

/// [`current_activation`] for `catch_traps` before it calls into Wasm: nothing
/// can have switched stacks since its frame began, so inlining is safe there.
#[inline(always)]
fn current_activation_on_entry() -> *const Activation {
    ACTIVATION.with(|a| a.get())
}

#[inline(never)]
fn set_current_activation(activation: *const Activation) {
    ACTIVATION.with(|a| a.set(activation));
}

/// Moves a fiber's activations onto this thread, before the switch onto the
/// fiber: `innermost` (its innermost activation when it was suspended) down to
/// the one linked to `link` are linked to this thread's chain and backtrace
/// buffer instead, and become the chain. Also readies this thread for traps
/// (alternate signal stack). Returns this thread's previous chain, for
/// [`switch_out`].
///
/// # Safety
/// `innermost`..`link` is the chain of a suspended fiber (or `innermost ==
/// link` when it has none), whose frames stay live; no other thread uses it.
pub(crate) unsafe fn switch_in(
    innermost: *const Activation,
    link: *const Activation,
) -> *const Activation {
    init_traps();
    let frames = THREAD_STATE
        // SAFETY: as in `enter_thread`.
        .try_with(|s| unsafe { (*s.frames.get()).as_mut_ptr() })
        .ok();
    let outer = current_activation();
    let mut activation = innermost;
    while activation != link && !activation.is_null() {
        // SAFETY: per the contract, a live activation of the fiber.
        let a = unsafe { &*activation };
        if let Some(frames) = frames {
            a.frames.set(frames);
        }
        if a.previous.get() == link {
            a.previous.set(outer);
            break;
        }
        activation = a.previous.get();
    }
    if innermost != link {
        set_current_activation(innermost);
    }
    outer
}

/// The other half of [`switch_in`], after the fiber suspended or returned:
/// makes `outer` this thread's chain again and returns the fiber's innermost
/// activation (`outer` itself when the fiber has none).
///
/// # Safety
/// `outer` is what the matching `switch_in` returned.
pub(crate) unsafe fn switch_out(outer: *const Activation) -> *const Activation {
    let innermost = current_activation();
    set_current_activation(outer);
    innermost
}

impl Activation {
    /// Called by the signal handler: remembers the fault and the frames, and
    /// returns the jump buffer the handler should resume into.
    ///
    /// # Safety
    /// `self` is this thread's innermost activation, `fp` the frame pointer at `pc`,
    /// and the handler will not return into the faulting code.
    unsafe fn record_trap(
        &self,
        pc: usize,
        fp: usize,
        fault_address: Option<usize>,
        signal: i32,
        code: Option<TrapCode>,
    ) -> *mut arch::JmpBuf {
        let entry_sp = arch::saved_stack_pointer(self.jmp_buf.get());
        // SAFETY: only this thread touches its activation, and the interrupted code
        // (JIT code) holds no reference into it; the trapped frames are intact
        // because the handler runs on the alternate signal stack (or below them).
        unsafe {
            let frames = capture_frames(pc, fp, entry_sp, self.frames.get());
            *self.trap.get() = TrapRecord {
                pc,
                fault_address,
                signal,
                frames,
                code,
            };
        }
        self.jmp_buf.get()
    }
}

/// Parks `err` in this thread's innermost activation; the Wasm→host trampoline then
/// traps with `HostError` and [`catch_traps`] returns [`TrapReason::Host`].
///
/// # Panics
/// Outside any activation (host glue must only call it from a host call).
pub fn set_pending_host_error(err: Box<dyn std::error::Error + Send + Sync>) {
    set_pending(Pending::Error(err));
}

/// Like [`set_pending_host_error`] for a caught panic: [`catch_traps`] returns
/// [`TrapReason::Panic`].
pub fn set_pending_panic(payload: Box<dyn Any + Send>) {
    set_pending(Pending::Panic(payload));
}

/// Ends the innermost Wasm activation of this thread with `err`, as if a host
/// function had returned it: [`catch_traps`] returns [`TrapReason::Host`]. For
/// builtins whose failure is the embedder's error (a resource limiter refusing
/// growth with an error), not a Wasm trap code.
///
/// # Safety
/// Called from a builtin invoked by compiled code of the innermost activation, with
/// no Rust frame between it and the compiled code holding anything that needs
/// dropping: those frames are discarded, not unwound.
pub unsafe fn raise_host_error(err: Box<dyn std::error::Error + Send + Sync>) -> ! {
    set_pending(Pending::Error(err));
    let activation = current_activation();
    // SAFETY: `set_pending` checked that the activation exists; it lives on a frame
    // of this thread below us; its record is only otherwise written by the signal
    // handler of a trap of this thread, which cannot be running now.
    unsafe {
        *(*activation).trap.get() = TrapRecord::default();
        arch::wazerox_unwind_to((*activation).jmp_buf.get())
    }
}

/// Like [`raise_host_error`] for a panic caught in a builtin (embedder code it
/// reached, such as a resource limiter, panicked): [`catch_traps`] returns
/// [`TrapReason::Panic`] and the embedder's call resumes the unwind.
///
/// # Safety
/// As for [`raise_host_error`].
pub unsafe fn raise_panic(payload: Box<dyn Any + Send>) -> ! {
    set_pending(Pending::Panic(payload));
    let activation = current_activation();
    // SAFETY: as in `raise_host_error`.
    unsafe {
        *(*activation).trap.get() = TrapRecord::default();
        arch::wazerox_unwind_to((*activation).jmp_buf.get())
    }
}

/// Ends the innermost activation with the uncaught exception `exn`:
/// [`catch_traps`] returns [`TrapReason::Exception`].
///
/// # Safety
/// As for [`raise_host_error`].
pub(crate) unsafe fn raise_exception(exn: usize) -> ! {
    set_pending(Pending::Exception(exn));
    let activation = current_activation();
    // SAFETY: as in `raise_host_error`.
    unsafe {
        *(*activation).trap.get() = TrapRecord::default();
        arch::wazerox_unwind_to((*activation).jmp_buf.get())
    }
}

fn set_pending(pending: Pending) {
    let activation = current_activation();
    assert!(
        !activation.is_null(),
        "host call outside of any Wasm activation"
    );
    // SAFETY: the activation lives on a frame of this thread's stack that is still
    // running, and only this thread accesses it.
    unsafe { *(*activation).pending.borrow_mut() = Some(pending) };
}

/// Ends the innermost activation with a trap of `code`, from a builtin that compiled
/// code called (a wait cut short because its store was interrupted, a wait or notify
/// on a cell out of bounds or misaligned). The trap has
/// no backtrace: builtins are host code, whose frames may lack frame pointers.
///
/// # Safety
/// Called on a thread running compiled code of the innermost activation, from a
/// builtin that compiled code called directly, with nothing live that needs dropping
/// in this frame or the builtin's: the jump discards both, like the JIT frames.
pub unsafe fn raise_trap(code: TrapCode) -> ! {
    let activation = current_activation();
    if activation.is_null() {
        // Unreachable by the contract; an `extern "C"` caller cannot unwind.
        std::process::abort();
    }
    // SAFETY: the activation lives on a frame of this thread's stack below which we
    // run; only this thread accesses it; the jump buffer was filled by
    // `wazerox_catch_call`, whose frame is still live.
    unsafe {
        *(*activation).trap.get() = TrapRecord {
            code: Some(code),
            ..TrapRecord::default()
        };
        arch::wazerox_unwind_to((*activation).jmp_buf.get())
    }
}

pub(crate) use arch::FRAME_POINTER_ALIGN;
pub(crate) use signals::STACK_MARGIN;

/// Per-thread facts `catch_traps` needs, computed when the thread first enters Wasm.
struct ThreadState {
    frames: UnsafeCell<Box<[usize]>>,
    /// Next activation id of this thread (see `NEXT_THREAD_NUMBER`).
    next_activation: Cell<u64>,
    /// Lowest usable stack address (bottom plus a margin for host code).
    stack_floor: usize,
    _alternate_stack: Option<signals::AlternateStack>,
}

thread_local! {
    static THREAD_STATE: ThreadState = ThreadState {
        frames: UnsafeCell::new(vec![0; MAX_BACKTRACE_FRAMES].into_boxed_slice()),
        next_activation: Cell::new(new_thread_number()),
        stack_floor: signals::thread_stack_floor(),
        _alternate_stack: signals::AlternateStack::install_if_needed(),
    };
}

/// What one entry takes from the thread state.
struct Entry {
    id: u64,
    stack_floor: usize,
    frames: *mut usize,
    /// Owns `frames` when the thread state is gone (a thread-local destructor
    /// calling into Wasm at thread exit); such an entry has no alternate stack of
    /// its own, which only matters for overflows of the real stack's guard page,
    /// something the Wasm stack limit prevents.
    _own_frames: Option<Box<[usize]>>,
}

#[inline]
fn enter_thread() -> Entry {
    THREAD_STATE
        .try_with(|s| {
            let id = s.next_activation.get() + 1;
            s.next_activation.set(id);
            Entry {
                id,
                // On a fiber, its stack is the one Wasm grows into.
                stack_floor: crate::fiber::current_floor().unwrap_or(s.stack_floor),
                // SAFETY: the buffer is written only by the signal handler for a trap
                // of this thread's innermost activation and read right after it,
                // never both at once; the pointer does not outlive the thread.
                frames: unsafe { (*s.frames.get()).as_mut_ptr() },
                _own_frames: None,
            }
        })
        .unwrap_or_else(|_| {
            let mut frames = vec![0; MAX_BACKTRACE_FRAMES].into_boxed_slice();
            Entry {
                id: new_thread_number() | 1,
                stack_floor: crate::fiber::current_floor()
                    .unwrap_or_else(signals::thread_stack_floor),
                frames: frames.as_mut_ptr(),
                _own_frames: Some(frames),
            }
        })
}

/// The closure and, if it panicked, the payload; handed to the callback shim.
struct Call<'a, F> {
    closure: &'a mut F,
    panic: Option<Box<dyn Any + Send>>,
}

extern "C" fn call_closure<F: FnMut()>(data: *mut u8) {
    // SAFETY: `data` is the `Call<F>` that `catch_traps` passed, alive on its frame
    // and not otherwise accessed until this returns.
    let call = unsafe { &mut *data.cast::<Call<'_, F>>() };
    // The closure is called in place, through a reference: moving it out of a
    // struct just written field by field would read it back with wider loads than
    // the stores that wrote it, which the CPU cannot forward (a stall on every
    // call into Wasm).
    let closure = &mut *call.closure;
    // An unwind must not cross the assembly frame (and an `extern "C"` function
    // would abort): catch it here and resume it in `catch_traps`.
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(closure)) {
        call.panic = Some(payload);
    }
}

/// Runs `f` (which calls into JIT code via a function pointer) catching traps.
///
/// # Safety
/// `store` is valid for the whole call, and only this thread uses it meanwhile.
/// Between this frame and JIT code there are no Rust frames with pending
/// destructors except `f`'s own, which must have none live across the call into
/// compiled code: a trap discards those frames without unwinding them.
pub unsafe fn catch_traps<F: FnMut()>(
    store: *const VMStoreContext,
    max_wasm_stack: usize,
    mut f: F,
) -> Result<(), TrapReason> {
    // Cheap once done (an atomic load); makes a forgotten call a non-issue.
    init_traps();
    let entry = enter_thread();
    // SAFETY: `store` is valid per the contract.
    let stack_limit = unsafe { (*store).stack_limit.get() };
    // The limit belongs to the thread running the store's code: the outermost
    // activation of this store *on this thread* sets it and puts back the previous
    // one (another thread's, if that thread is suspended in a host call whose
    // `Caller` was sent here; `usize::MAX` otherwise). Nested activations on the
    // same thread keep the outer limit.
    let previous = current_activation_on_entry();
    let outermost = !store_is_active_on_this_stack(previous, store, entry.stack_floor);
    // SAFETY: only this thread uses the store now, and no compiled code of this
    // store is running between here and the call below.
    let previous_limit = unsafe { *stack_limit };
    if outermost {
        // The address of a local is this frame's stack pointer, near enough.
        let here = &entry as *const Entry as usize;
        // SAFETY: as above.
        unsafe { *stack_limit = here.saturating_sub(max_wasm_stack).max(entry.stack_floor) };
    }
    let activation = Activation {
        id: entry.id,
        store,
        stack_floor: entry.stack_floor,
        jmp_buf: UnsafeCell::new(arch::JmpBuf::default()),
        frames: Cell::new(entry.frames),
        previous: Cell::new(previous),
        trap: UnsafeCell::new(TrapRecord::default()),
        pending: ManuallyDrop::new(RefCell::new(None)),
    };
    ACTIVATION.with(|a| a.set(&activation));
    let mut call = Call {
        closure: &mut f,
        panic: None,
    };
    // SAFETY: the jump buffer and `call` outlive the call; `call_closure::<F>`
    // matches the data pointer's type; per our contract, nothing that a trap
    // skips needs dropping.
    let trapped = unsafe {
        arch::wazerox_catch_call(
            activation.jmp_buf.get(),
            call_closure::<F>,
            (&mut call as *mut Call<'_, F>).cast(),
        )
    };
    // The chain may have moved threads meanwhile (a fiber resumed elsewhere):
    // `previous` is the current thread's, as `switch_in` relinked it.
    set_current_activation(activation.previous.get());
    if outermost {
        // SAFETY: as above; the compiled code that read the limit has finished.
        unsafe { *stack_limit = previous_limit };
    }
    // `pending` is not dropped with the activation: whatever a path leaves in
    // it is taken here (and dropped, if that path does not report it).
    let pending = activation.pending.take();
    if let Some(payload) = call.panic {
        drop(pending);
        panic::resume_unwind(payload);
    }
    if trapped == 0 {
        if let Some(unreported) = pending {
            drop_cold(unreported);
        }
        return Ok(());
    }
    // SAFETY: the handler finished writing the record before we resumed.
    let record = unsafe { *activation.trap.get() };
    let code = trap_code(&record);
    // A pending error is set only right before a trap that reports it: the host
    // trampoline's `HostError` trap, or `raise_host_error` (which records no PC).
    if code == TrapCode::HostError || record.pc == 0 {
        match pending {
            Some(Pending::Error(e)) => return Err(TrapReason::Host(e)),
            Some(Pending::Panic(p)) => return Err(TrapReason::Panic(p)),
            Some(Pending::Exception(exn)) => return Err(TrapReason::Exception(exn)),
            None => {}
        }
    }
    // SAFETY: the handler wrote `record.frames` PCs into the buffer, and no other
    // trap of this thread can overwrite them before we are done with them.
    let pcs = unsafe { std::slice::from_raw_parts(activation.frames.get(), record.frames) };
    Err(TrapReason::Wasm {
        code,
        pc: record.pc,
        fault_address: record.fault_address,
        backtrace: symbolize(pcs),
    })
}

#[cold]
fn drop_cold(pending: Pending) {
    drop(pending);
}

/// The recorded trap code at the trap's PC, or the one its signal implies: a
/// hardware division fault is a division by zero, an unrecorded invalid
/// instruction an `unreachable`, and a memory fault an out-of-bounds access (the
/// handler already checked that its address lies in a linear memory of the store,
/// or set `StackOverflow` for the stack guard, and aborted for anything else).
fn trap_code(record: &TrapRecord) -> TrapCode {
    if let Some(code) = record.code {
        return code;
    }
    let recorded =
        code_registry::lookup(record.pc).and_then(|(code, offset)| code.trap_code_at(offset));
    recorded.unwrap_or(match record.signal {
        libc::SIGFPE => TrapCode::IntegerDivisionByZero,
        libc::SIGILL => TrapCode::UnreachableCodeReached,
        _ => TrapCode::MemoryOutOfBounds,
    })
}
