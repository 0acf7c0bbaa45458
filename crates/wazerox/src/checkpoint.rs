//! Snapshots of Wasm execution state for host functions (longjmp semantics).
//!
//! `caller.snapshot()` captures the state at the current host call; later, while
//! that call into Wasm is still running on the same thread, a host function returns
//! `Err(snapshot.restore(&results).into())` and the snapshotted host call returns
//! again with `results`. The request travels as an ordinary error: host frames it
//! passes through (e.g. `?` in a host function that called back into Wasm) run
//! their destructors, inner activations unwind like traps, and the activation that
//! owns the snapshot performs the restore. A host function that swallows the error
//! cancels the restore. The mechanism and its invariants are in
//! `docs/checkpoint.md`.

use crate::error::{Error, ErrorKind};
use crate::func::{Caller, val_to_raw};
use crate::store::StoreOpaque;
use crate::values::Val;
use std::sync::Arc;
use wazerox_environ::ValType;
use wazerox_runtime::checkpoint::{CheckpointError, StackSnapshot};
use wazerox_runtime::vmcontext::ValRaw;

/// The Wasm execution state at one host call. Cheap to clone; restorable any
/// number of times while its activation runs.
#[derive(Clone)]
pub struct Snapshot(Arc<SnapshotInner>);

struct SnapshotInner {
    stack: Arc<StackSnapshot>,
    store: u64,
    results: Vec<ValType>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("stack_bytes", &self.0.stack.len())
            .field("results", &self.0.results)
            .finish()
    }
}

/// A request to restore a snapshot; it only takes effect when returned from a host
/// function as its error (`return Err(snapshot.restore(&results).into())`).
#[must_use = "a restore happens only when returned as a host function's error"]
pub struct Restore(Result<RestoreRequest, Error>);

pub(crate) struct RestoreRequest {
    snapshot: Snapshot,
    results: Vec<Val>,
}

impl From<Restore> for Error {
    fn from(restore: Restore) -> Error {
        match restore.0 {
            Ok(request) => Error::restore(request),
            Err(error) => error,
        }
    }
}

fn checkpoint_error(e: CheckpointError) -> Error {
    Error::usage(format!("cannot restore: {e}"))
}

impl Snapshot {
    /// Asks to resume the snapshotted host call, returning `results` to its caller.
    /// Checked now, before anything unwinds: the snapshot's call into Wasm must
    /// still be running on this thread, and `results` must have the host
    /// function's result types.
    pub fn restore(&self, results: &[Val]) -> Restore {
        let inner = &self.0;
        let types: Vec<ValType> = results.iter().map(Val::ty).collect();
        if types != inner.results {
            return Restore(Err(Error::usage(format!(
                "cannot restore: results {types:?} do not match the host function's results {:?}",
                inner.results
            ))));
        }
        if let Err(e) = inner.stack.check_thread_and_liveness() {
            return Restore(Err(checkpoint_error(e)));
        }
        Restore(Ok(RestoreRequest {
            snapshot: self.clone(),
            results: results.to_vec(),
        }))
    }

    /// Bytes of native stack the snapshot holds.
    pub fn stack_bytes(&self) -> usize {
        self.0.stack.len()
    }

    /// Whether the snapshot can never be restored again: it was taken on this
    /// thread, by a call into Wasm that has since returned. (Snapshots of other
    /// threads are never reported stale: only their own thread can tell.)
    pub fn is_stale(&self) -> bool {
        matches!(
            self.0.stack.check_thread_and_liveness(),
            Err(CheckpointError::Stale)
        )
    }
}

pub(crate) fn take<T>(caller: &mut Caller<'_, T>) -> Result<Snapshot, Error> {
    let exit = caller.exit;
    if !caller.store.opaque.engine.config().checkpoints {
        return Err(Error::usage(
            "snapshots are disabled in this engine's Config",
        ));
    }
    if exit.frame.sp == 0 || exit.context.is_null() {
        return Err(Error::usage("snapshot outside of a Wasm→host call"));
    }
    // SAFETY: `exit` is what the shim and trampoline passed to the running host
    // callback whose `Caller` this is.
    let stack =
        unsafe { StackSnapshot::capture(exit.frame, exit.values) }.map_err(checkpoint_error)?;
    // The saved frames hold GC references no stack walk sees (docs/gc.md).
    caller.store.opaque.snapshot_taken = true;
    // SAFETY: the host function context lives as long as its store.
    let results = unsafe { (*exit.context).result_types().to_vec() };
    Ok(Snapshot(Arc::new(SnapshotInner {
        stack: Arc::new(stack),
        store: caller.store.opaque.id,
        results,
    })))
}

/// What a host call does with the error its closure returned.
pub(crate) enum Resolution {
    /// Fail the host call with this error (it travels to the caller of Wasm).
    Propagate(Error),
    /// Restore this snapshot of the innermost activation with these results.
    Restore(Arc<StackSnapshot>, Vec<ValRaw>),
}

pub(crate) fn resolve_request(store: &mut StoreOpaque, error: Error) -> Resolution {
    let request = match error.into_restore_request() {
        Ok(request) => request,
        Err(error) => return Resolution::Propagate(error),
    };
    let inner = &request.snapshot.0;
    if inner.store != store.id {
        return Resolution::Propagate(checkpoint_error(CheckpointError::OtherStore));
    }
    if let Err(e) = inner.stack.check_restorable(&*store.vm_store_context) {
        return Resolution::Propagate(checkpoint_error(e));
    }
    if !inner.stack.owned_by_innermost_activation() {
        return Resolution::Propagate(Error::restore(request));
    }
    let mut raw = Vec::with_capacity(request.results.len());
    for value in &request.results {
        match val_to_raw(store, value) {
            Ok(v) => raw.push(v),
            Err(e) => return Resolution::Propagate(e),
        }
    }
    Resolution::Restore(inner.stack.clone(), raw)
}

impl Error {
    pub(crate) fn restore(request: RestoreRequest) -> Error {
        Error::from_restore(ErrorKind::Restore, Box::new(request))
    }
}
