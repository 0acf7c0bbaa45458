//! Stopping a store's Wasm code from another thread: [`InterruptHandle`].

use crate::engine::Engine;
use crate::func::Caller;
use crate::store::Store;
use wazerox_runtime::vmcontext::StoreInterrupter;

/// Stops the Wasm code of one store, from any thread. `Send + Sync`, cheap to clone,
/// and harmless to use after the store is gone.
///
/// After [`interrupt`](Self::interrupt):
/// - running code traps with [`TrapCode::Interrupt`](crate::TrapCode::Interrupt) at
///   its next function entry or loop header, when the engine compiles those checks
///   ([`Config::epoch_interruption`](crate::Config::epoch_interruption)); without
///   them, code runs on until it returns, waits or calls the host;
/// - a `memory.atomic.wait` that is parked, or starts later, traps with `Interrupt`
///   instead of returning;
/// - it is for good: later calls trap at their first check, and
///   [`Store::set_epoch_deadline`] no longer moves the deadline.
///
/// Host functions are not interrupted (they are the embedder's code); blocking WASI
/// calls have their own cancellation (`wazerox_wasi::WasiCtx::cancel`).
///
/// Design: the store's epoch deadline is an atomic that compiled code re-reads at
/// every check; interrupting sets it to 0, which every epoch has reached. So one
/// store stops without advancing the engine's epoch for all the others.
#[derive(Clone)]
pub struct InterruptHandle {
    interrupter: StoreInterrupter,
    stops_running_code: bool,
    engine: Engine,
}

impl InterruptHandle {
    /// Stops the store's running code at its next epoch check (an `Interrupt` trap) and ends its waits, from any thread; later calls trap too.
    pub fn interrupt(&self) {
        self.interrupter.interrupt();
    }

    /// Whether [`interrupt`](Self::interrupt) was called.
    pub fn is_interrupted(&self) -> bool {
        self.interrupter.is_interrupted()
    }

    /// Whether [`interrupt`](Self::interrupt) also stops running code, not only
    /// waits: the store's engine compiles epoch checks.
    pub fn stops_running_code(&self) -> bool {
        self.stops_running_code
    }

    /// Whether the store's code would trap with `Interrupt` at its next epoch
    /// check: it was interrupted, or (with epoch checks compiled in) the engine's
    /// epoch has reached the store's deadline
    /// ([`Store::set_epoch_deadline`]). For host functions that wait: they should
    /// stop waiting then and return [`Error::interrupt`](crate::Error::interrupt).
    pub fn deadline_reached(&self) -> bool {
        self.is_interrupted()
            || (self.stops_running_code
                && self.engine.current_epoch() >= self.interrupter.epoch_deadline())
    }

    /// Whether the store has a deadline that [`deadline_reached`](Self::deadline_reached)
    /// may report: an epoch deadline is set (with epoch checks compiled in), or the
    /// store was interrupted. A waiting host function only needs to look at the
    /// deadline from time to time when this holds.
    pub fn has_deadline(&self) -> bool {
        self.is_interrupted()
            || (self.stops_running_code && self.interrupter.epoch_deadline() != u64::MAX)
    }
}

impl std::fmt::Debug for InterruptHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterruptHandle")
            .field("interrupted", &self.is_interrupted())
            .field("stops_running_code", &self.stops_running_code)
            .finish()
    }
}

impl<T> Store<T> {
    /// A handle that stops this store's Wasm code from another thread.
    pub fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle {
            interrupter: StoreInterrupter::new(&self.inner.opaque.vm_store_context),
            stops_running_code: self.engine().config().translation.epoch_interruption,
            engine: self.engine().clone(),
        }
    }
}

impl<T> Caller<'_, T> {
    /// The [`InterruptHandle`] of the calling store: a host function that waits
    /// can end its wait when the store's deadline is reached.
    pub fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle {
            interrupter: StoreInterrupter::new(&self.store.opaque.vm_store_context),
            stops_running_code: self.engine().config().translation.epoch_interruption,
            engine: self.engine().clone(),
        }
    }
}
