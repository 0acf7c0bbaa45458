//! Catching traps: signal handlers, the per-thread chain of activations, and
//! backtraces.
//!
//! A host→Wasm call runs inside [`catch_traps`], which saves the callee-saved
//! registers in a jump buffer (in `wazerox_catch_call`, a few lines of assembly per
//! architecture) and pushes an [`Activation`] on a thread-local chain. When compiled
//! code faults (out-of-bounds access in a guard region, `ud2`-style trap
//! instructions, division faults), the signal handler checks that the PC is JIT code
//! and that this thread has an activation, records PC and frame pointer, and edits
//! the signal context so that returning from the handler lands in
//! `wazerox_unwind_to`, which restores the saved registers and makes
//! `wazerox_catch_call` return 1. The handler never jumps itself: `sigreturn`
//! restores the signal mask as usual.
//!
//! Invariants that make the jump sound: between `wazerox_catch_call` and the fault
//! there are only JIT frames, Cranelift trampolines, and the non-generic closure
//! shim, none of which owns anything that needs dropping. Host functions called from
//! Wasm never let a trap or unwind cross them: they report failure (with the error
//! or panic parked in the activation) and the trampoline traps *after* they
//! returned.
//!
//! What runs in the signal handler: a thread-local read (a const-initialised `Cell`,
//! no lazy initialisation), a read lock on the code registry (see `code_registry`),
//! and plain stores into the activation. Faults outside JIT code, or on threads with
//! no activation, go to the previously installed handler, so the host still sees the
//! faults it caused.

#[cfg_attr(target_arch = "x86_64", path = "traphandlers/x86_64.rs")]
#[cfg_attr(target_arch = "aarch64", path = "traphandlers/aarch64.rs")]
mod arch;
mod signals;

use crate::code_registry::{self, ModuleCode};
use crate::vmcontext::VMStoreContext;
use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::sync::Arc;
use wazerox_frontend::TrapCode;

pub use signals::init_traps;

/// Why a call into Wasm did not return normally.
pub enum TrapReason {
    /// Compiled code trapped.
    Wasm {
        code: TrapCode,
        pc: usize,
        fault_address: Option<usize>,
        backtrace: Backtrace,
    },
    /// A host function returned an error.
    Host(Box<dyn std::error::Error + Send + Sync>),
    /// A host function panicked; the caller should resume the unwind.
    Panic(Box<dyn Any + Send>),
}

impl std::fmt::Debug for TrapReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrapReason::Wasm { code, pc, .. } => write!(f, "Wasm trap {code:?} at {pc:#x}"),
            TrapReason::Host(e) => write!(f, "host error: {e}"),
            TrapReason::Panic(_) => write!(f, "host panic"),
        }
    }
}

/// Wasm frames of a trap, innermost first.
#[derive(Debug, Default)]
pub struct Backtrace {
    pub frames: Vec<BacktraceFrame>,
}

#[derive(Debug)]
pub struct BacktraceFrame {
    pub module: Arc<ModuleCode>,
    pub func_index: u32,
    /// Offset of the PC from the start of the function's code.
    pub func_offset: u32,
}

/// What the signal handler found.
#[derive(Clone, Copy, Default)]
struct TrapRecord {
    pc: usize,
    fault_address: Option<usize>,
    signal: i32,
    /// Number of PCs written to the activation's frame buffer.
    frames: usize,
}

enum Pending {
    Error(Box<dyn std::error::Error + Send + Sync>),
    Panic(Box<dyn Any + Send>),
}

/// Most frames a backtrace records (the innermost ones).
const MAX_BACKTRACE_FRAMES: usize = 1024;

/// One host→Wasm entry on this thread; lives on `catch_traps`'s stack frame.
pub(crate) struct Activation {
    /// Process-wide unique id: snapshots name the activation they belong to.
    pub(crate) id: u64,
    /// The store the activation runs in.
    pub(crate) store: *const VMStoreContext,
    jmp_buf: UnsafeCell<arch::JmpBuf>,
    /// The thread's buffer for the PCs of a trap's frames. The handler must copy
    /// them there: once it resumes, the trapped frames' stack is reused.
    frames: *mut usize,
    previous: *const Activation,
    trap: UnsafeCell<TrapRecord>,
    pending: RefCell<Option<Pending>>,
}

thread_local! {
    static ACTIVATION: Cell<*const Activation> = const { Cell::new(std::ptr::null()) };
}

/// Threads that have entered Wasm get a number once; activation ids are
/// `thread number << 40 | per-thread counter`, unique process-wide without an atomic
/// read-modify-write on every call into Wasm.
static NEXT_THREAD_NUMBER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Id, store and entry stack pointer of this thread's innermost activation.
pub(crate) fn innermost_activation() -> Option<(u64, *const VMStoreContext, usize)> {
    let activation = current_activation();
    if activation.is_null() {
        return None;
    }
    // SAFETY: activations on the chain live on frames below us on this stack.
    let a = unsafe { &*activation };
    Some((a.id, a.store, arch::saved_stack_pointer(a.jmp_buf.get())))
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
        activation = a.previous;
    }
    false
}

/// The innermost activation of this thread (null if none). Signal-safe.
pub(crate) fn current_activation() -> *const Activation {
    ACTIVATION.with(|a| a.get())
}

impl Activation {
    /// Called by the signal handler: remembers the fault and returns the jump
    /// buffer the handler should resume into.
    ///
    /// # Safety
    /// `self` is this thread's innermost activation and the handler will not return
    /// into the faulting code.
    pub(crate) unsafe fn record_trap(
        &self,
        pc: usize,
        fp: usize,
        fault_address: Option<usize>,
        signal: i32,
    ) -> *mut arch::JmpBuf {
        let entry_sp = arch::saved_stack_pointer(self.jmp_buf.get());
        // SAFETY: only this thread touches its activation, and the interrupted code
        // (JIT code) holds no reference into it; the frames are still intact
        // because we run on the alternate signal stack.
        unsafe {
            let frames = capture_frames(pc, fp, entry_sp, self.frames);
            *self.trap.get() = TrapRecord {
                pc,
                fault_address,
                signal,
                frames,
            };
        }
        self.jmp_buf.get()
    }
}

/// Parks `err` in the innermost activation; the Wasm→host trampoline then traps
/// with `HostError` and [`catch_traps`] returns [`TrapReason::Host`].
pub fn set_pending_host_error(err: Box<dyn std::error::Error + Send + Sync>) {
    set_pending(Pending::Error(err));
}

/// Like [`set_pending_host_error`] for a caught panic.
pub fn set_pending_panic(payload: Box<dyn Any + Send>) {
    set_pending(Pending::Panic(payload));
}

fn set_pending(pending: Pending) {
    let activation = current_activation();
    assert!(
        !activation.is_null(),
        "host call outside of any Wasm activation"
    );
    // SAFETY: the activation lives on a frame below us on this thread's stack.
    unsafe { *(*activation).pending.borrow_mut() = Some(pending) };
}

/// Per-thread facts `catch_traps` needs once.
struct ThreadState {
    frames: UnsafeCell<Box<[usize]>>,
    /// Next activation id of this thread (see `NEXT_THREAD_NUMBER`).
    next_activation: Cell<u64>,
    /// Lowest usable stack address (with a safety margin for host code and the
    /// signal handler when it does not run on the alternate stack).
    stack_floor: usize,
    _alternate_stack: Option<signals::AlternateStack>,
}

thread_local! {
    static THREAD_STATE: ThreadState = ThreadState {
        frames: UnsafeCell::new(vec![0; MAX_BACKTRACE_FRAMES].into_boxed_slice()),
        next_activation: Cell::new(
            NEXT_THREAD_NUMBER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) << 40,
        ),
        stack_floor: signals::thread_stack_floor(),
        _alternate_stack: signals::AlternateStack::install_if_needed(),
    };
}

extern "C" fn call_closure<F: FnOnce()>(data: *mut u8) {
    // SAFETY: `data` is the `Option<F>` that `catch_traps` passed, alive on its frame.
    let closure = unsafe { &mut *data.cast::<Option<F>>() };
    (closure.take().expect("called once"))();
}

/// Runs `f`, which calls into compiled code, catching its traps.
///
/// # Safety
/// `store` must be valid for the whole call. `f` must not own values that need
/// dropping across the call into compiled code (they would be skipped by a trap).
pub unsafe fn catch_traps<F: FnOnce()>(
    store: *const VMStoreContext,
    max_wasm_stack: usize,
    f: F,
) -> Result<(), TrapReason> {
    // SAFETY: the frame buffer is only written by the signal handler of a trap in
    // this thread's innermost activation, and read after that trap, never both.
    let (stack_floor, frames, id) = THREAD_STATE.with(|s| {
        let id = s.next_activation.get() + 1;
        s.next_activation.set(id);
        (s.stack_floor, unsafe { (*s.frames.get()).as_mut_ptr() }, id)
    });
    // SAFETY: `store` is valid per the contract; only this thread uses it now.
    let stack_limit = unsafe { &*(*store).stack_limit.get() };
    let outermost = *stack_limit == usize::MAX;
    if outermost {
        let here = &stack_floor as *const usize as usize;
        let limit = here.saturating_sub(max_wasm_stack).max(stack_floor);
        // SAFETY: as above.
        unsafe { *(*store).stack_limit.get() = limit };
    }
    let activation = Activation {
        id,
        store,
        jmp_buf: UnsafeCell::new(arch::JmpBuf::default()),
        frames,
        previous: current_activation(),
        trap: UnsafeCell::new(TrapRecord::default()),
        pending: RefCell::new(None),
    };
    ACTIVATION.with(|a| a.set(&activation));
    let mut closure = Some(f);
    // SAFETY: the jump buffer and closure outlive the call; `call_closure::<F>`
    // matches the data pointer's type.
    let trapped = unsafe {
        arch::wazerox_catch_call(
            activation.jmp_buf.get(),
            call_closure::<F>,
            (&mut closure as *mut Option<F>).cast(),
        )
    };
    ACTIVATION.with(|a| a.set(activation.previous));
    if outermost {
        // SAFETY: as above.
        unsafe { *(*store).stack_limit.get() = usize::MAX };
    }
    if trapped == 0 {
        return Ok(());
    }
    // SAFETY: the handler finished writing the record before we resumed.
    let record = unsafe { *activation.trap.get() };
    let code = trap_code(&record);
    if code == TrapCode::HostError {
        match activation.pending.borrow_mut().take() {
            Some(Pending::Error(e)) => return Err(TrapReason::Host(e)),
            Some(Pending::Panic(p)) => return Err(TrapReason::Panic(p)),
            None => {}
        }
    }
    Err(TrapReason::Wasm {
        code,
        pc: record.pc,
        fault_address: record.fault_address,
        // SAFETY: the frames between the fault and the entry are still on the stack
        // (we jumped over them, nothing overwrote them), and the walk stays below
        // `entry_sp`.
        // SAFETY: the handler wrote `record.frames` entries into the buffer.
        backtrace: symbolize(unsafe {
            std::slice::from_raw_parts(activation.frames, record.frames)
        }),
    })
}

fn trap_code(record: &TrapRecord) -> TrapCode {
    let recorded =
        code_registry::lookup(record.pc).and_then(|(code, offset)| code.trap_code_at(offset));
    recorded.unwrap_or(match record.signal {
        libc::SIGFPE => TrapCode::IntegerDivisionByZero,
        libc::SIGILL => TrapCode::UnreachableCodeReached,
        _ => TrapCode::MemoryOutOfBounds,
    })
}

/// Copies the PCs of the frame-pointer chain, from a trap up to the activation's
/// entry, into `buffer` (at most `MAX_BACKTRACE_FRAMES`). Runs in the signal
/// handler: no allocation, no locks.
///
/// # Safety
/// `fp` is the frame pointer at `pc` on this thread's stack, below `entry_sp`;
/// `buffer` holds `MAX_BACKTRACE_FRAMES` words.
unsafe fn capture_frames(pc: usize, fp: usize, entry_sp: usize, buffer: *mut usize) -> usize {
    let (mut pc, mut fp) = (pc, fp);
    let mut count = 0;
    while count < MAX_BACKTRACE_FRAMES {
        // SAFETY: `count` is within the buffer.
        unsafe { buffer.add(count).write(pc) };
        count += 1;
        if fp == 0 || fp % std::mem::align_of::<usize>() != 0 || fp >= entry_sp {
            break;
        }
        // SAFETY: `fp` lies between the faulting frame and the entry on this
        // thread's stack (checked above), so both words are readable.
        let (next_fp, return_address) =
            unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if next_fp <= fp {
            break;
        }
        // A return address points after the call; the call itself is one byte back.
        pc = return_address - 1;
        fp = next_fp;
    }
    count
}

/// Maps captured PCs to Wasm functions; PCs outside Wasm functions (trampolines)
/// are dropped.
fn symbolize(pcs: &[usize]) -> Backtrace {
    let frames = pcs
        .iter()
        .filter_map(|&pc| {
            let (module, offset) = code_registry::lookup(pc)?;
            let function = *module.function_at(offset)?;
            Some(BacktraceFrame {
                func_index: function.func_index,
                func_offset: offset - function.start,
                module,
            })
        })
        .collect();
    Backtrace { frames }
}
