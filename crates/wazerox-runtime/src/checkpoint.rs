//! Stack checkpoint/restore: longjmp semantics for host functions.
//!
//! Every Wasm→host call reports an [`ExitFrame`] to the Rust callback: the lowest
//! address of everything the host call's Wasm side needs to continue (the
//! trampoline's frame with the array holding the call's results, the Wasm frames,
//! up to the activation's entry), with the callee-saved registers of the Wasm caller
//! stored inside that range. How depends on the architecture (one small module
//! each): on x86-64 the Cranelift trampoline itself saves them and reports its frame;
//! on AArch64 an assembly shim between trampoline and callback saves them in an exit
//! record.
//!
//! [`StackSnapshot::capture`] copies the bytes from the exit frame up to the
//! activation's entry. [`restore`] copies them back to the same addresses — frames
//! that returned since come back to life — and resumes the trampoline as if the
//! callback had just returned success, after writing the new results into the
//! trampoline's result array. The saved buffer is only ever copied from, so a
//! snapshot can be restored any number of times.
//!
//! Safety of the jump: the restore routine runs only after every Rust frame of the
//! host call that requested it has returned or been dropped (the request travels
//! as an error, see the API), and only for the innermost live activation of the
//! current thread, so the bytes it overwrites belong to frames that are dead or
//! being revived. It copies with `rep movsb`/a register loop, using no stack, so it
//! may overwrite the very frame it was called from.

use crate::traphandlers;
use crate::vmcontext::{VMStoreContext, ValRaw};
use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::thread::ThreadId;

/// The native stack a snapshot's frames live on: a thread's own, or a fiber's
/// (an async call, which may move between threads; docs/async.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StackId {
    Thread(ThreadId),
    Fiber(u64),
}

impl StackId {
    fn current() -> StackId {
        match crate::fiber::current_fiber_id() {
            Some(id) => StackId::Fiber(id),
            None => StackId::Thread(std::thread::current().id()),
        }
    }
}

#[cfg_attr(target_arch = "x86_64", path = "checkpoint/x86_64.rs")]
#[cfg_attr(target_arch = "aarch64", path = "checkpoint/aarch64.rs")]
mod arch;

pub use arch::host_entry_address;

/// Where a Wasm→host call left its Wasm side: the last two arguments the host
/// callback receives. `sp` is the lowest address of the Wasm side's stack (0 when
/// checkpoints are off); `fp` is the trampoline's frame pointer where the
/// architecture needs it to resume.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExitFrame {
    pub sp: usize,
    pub fp: usize,
}

/// Saved native stack of one activation, from a host call's exit frame up to the
/// activation's entry.
pub struct StackSnapshot {
    bytes: Box<[u8]>,
    /// Address the bytes are restored to (the exit stack pointer).
    base: usize,
    resume: arch::ResumePoint,
    /// The host call's result array (inside the saved region).
    results: *mut ValRaw,
    activation: u64,
    store: *const VMStoreContext,
    stack: StackId,
}

// SAFETY: the raw pointers are addresses, only dereferenced by `restore` on the
// stack (thread or fiber) that took the snapshot (checked), while its activation
// is live (checked).
unsafe impl Send for StackSnapshot {}
// SAFETY: as above; the bytes are immutable after capture.
unsafe impl Sync for StackSnapshot {}

impl fmt::Debug for StackSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackSnapshot")
            .field("bytes", &self.bytes.len())
            .field("activation", &self.activation)
            .finish()
    }
}

/// Why a snapshot cannot be taken or restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointError {
    /// No Wasm activation on this thread (snapshot outside a host call).
    NoActivation,
    /// The activation the snapshot belongs to has ended.
    Stale,
    /// The snapshot was taken on another thread, or on another fiber (another
    /// async call), or on a fiber while this is a thread's own stack or the
    /// reverse: its frames are on another native stack.
    OtherThread,
    /// The snapshot belongs to another store.
    OtherStore,
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckpointError::NoActivation => "snapshot outside of a Wasm→host call",
            CheckpointError::Stale => {
                "stale snapshot: the Wasm activation it was taken in has ended"
            }
            CheckpointError::OtherThread => {
                "snapshot taken on another thread or fiber (another call's native stack)"
            }
            CheckpointError::OtherStore => "snapshot taken in another store",
        })
    }
}

impl std::error::Error for CheckpointError {}

impl StackSnapshot {
    /// Copies the current activation's stack from the exit frame up to its entry.
    ///
    /// # Safety
    /// `exit` is the exit frame passed to the running host callback, and `results`
    /// the result array passed with it.
    pub unsafe fn capture(
        exit: ExitFrame,
        results: *mut ValRaw,
    ) -> Result<StackSnapshot, CheckpointError> {
        let (activation, store, entry_sp) =
            traphandlers::innermost_activation().ok_or(CheckpointError::NoActivation)?;
        if exit.sp == 0 || exit.sp >= entry_sp {
            return Err(CheckpointError::NoActivation);
        }
        // The copy may hold exception references the collector cannot see.
        // SAFETY: `store` is the innermost activation's, run by this thread.
        unsafe { (*store).exceptions.freeze() };
        // SAFETY: per the contract, the callback that received `exit` is running.
        let resume = unsafe { arch::resume_point(exit) }.ok_or(CheckpointError::NoActivation)?;
        // SAFETY: `[exit.sp, entry_sp)` is live stack of this thread: the host
        // call's trampoline (and shim) and the Wasm frames of the innermost activation.
        let bytes = unsafe { std::slice::from_raw_parts(exit.sp as *const u8, entry_sp - exit.sp) }
            .to_vec()
            .into_boxed_slice();
        Ok(StackSnapshot {
            bytes,
            base: exit.sp,
            resume,
            results,
            activation,
            store,
            stack: StackId::current(),
        })
    }

    /// Bytes of native stack saved.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn activation(&self) -> u64 {
        self.activation
    }

    /// Whether a restore may be requested now, from this thread and `store`.
    pub fn check_restorable(&self, store: *const VMStoreContext) -> Result<(), CheckpointError> {
        if self.store != store {
            return Err(CheckpointError::OtherStore);
        }
        self.check_thread_and_liveness()
    }

    /// The checks that need no store: same thread, activation still running.
    pub fn check_thread_and_liveness(&self) -> Result<(), CheckpointError> {
        if self.stack != StackId::current() {
            return Err(CheckpointError::OtherThread);
        }
        if !traphandlers::activation_is_live(self.activation) {
            return Err(CheckpointError::Stale);
        }
        Ok(())
    }

    /// Whether the snapshot belongs to this thread's innermost activation, i.e.
    /// whether [`restore`] may run now (otherwise the request must first unwind
    /// the inner activations).
    pub fn owned_by_innermost_activation(&self) -> bool {
        traphandlers::innermost_activation().is_some_and(|(id, _, _)| id == self.activation)
            && self.stack == StackId::current()
    }
}

struct PendingRestore {
    snapshot: Arc<StackSnapshot>,
    results: Vec<ValRaw>,
}

thread_local! {
    static PENDING: RefCell<Option<PendingRestore>> = const { RefCell::new(None) };
}

/// Restores `snapshot` and resumes its host call returning `results`.
///
/// # Safety
/// `snapshot.owned_by_innermost_activation()` holds, `results` match the host
/// call's result types, and the caller owns nothing that needs dropping: every Rust
/// frame between here and the activation's Wasm frames is abandoned.
pub unsafe fn restore(snapshot: Arc<StackSnapshot>, results: Vec<ValRaw>) -> ! {
    debug_assert!(snapshot.owned_by_innermost_activation());
    let (src, dst, len) = (snapshot.bytes.as_ptr(), snapshot.base, snapshot.bytes.len());
    let resume = snapshot.resume;
    // The snapshot stays alive (and is dropped) through the thread-local, which the
    // resumed code takes back in `wazerox_restore_finished`.
    PENDING.with(|p| *p.borrow_mut() = Some(PendingRestore { snapshot, results }));
    // SAFETY: per the contract; `src` stays valid because PENDING holds the Arc.
    unsafe { arch::jump_to_snapshot(src, dst, len, resume) }
}

/// Called by the restore routine right after the copy, below the revived stack:
/// writes the results into the trampoline's array and releases the snapshot.
#[unsafe(no_mangle)]
extern "C" fn wazerox_restore_finished() {
    let pending = PENDING.with(|p| p.borrow_mut().take());
    if let Some(PendingRestore { snapshot, results }) = pending {
        for (i, value) in results.into_iter().enumerate() {
            // SAFETY: the array lies in the revived trampoline frame and has a slot
            // for every result (the API checked the count and types).
            unsafe { snapshot.results.add(i).write(value) };
        }
    }
}
