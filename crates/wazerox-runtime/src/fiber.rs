//! Fibers: Wasm calls that run on a stack of their own, so that a host future
//! which is not ready can suspend the whole Wasm call and hand `Pending` back to
//! the async executor (docs/async.md).
//!
//! The stack switch itself is `corosensei`'s (x86-64 and AArch64 assembly with
//! unwind info, maintained and audited elsewhere); this module owns what the
//! switch means for *our* per-thread state, which must follow the fiber, since
//! a resumed fiber may run on another executor thread than the one it left:
//!
//! - the chain of activations (`traphandlers`): the fiber's activations are
//!   unlinked from the thread's chain when it suspends and relinked to the
//!   resuming thread's chain (and to that thread's backtrace buffer) when it
//!   resumes (`traphandlers::switch_in` / `traphandlers::switch_out`);
//! - the stack floor the signal handler uses to recognise a stack overflow and
//!   the stack limit: an activation on a fiber takes the fiber's floor
//!   (`current_floor`), so its limit and its guard page are the fiber's;
//! - the alternate signal stack: every thread that resumes a fiber gets one
//!   before the switch (`switch_in`);
//! - the current fiber itself (`CURRENT`), read through `#[inline(never)]`
//!   accessors: code running on a fiber may move threads at any suspension, and
//!   a thread-local address computed before one must not be reused after it.
//!
//! A fiber always runs to completion before its stack is reused or freed:
//! dropping a suspended [`Fiber`] resumes it with a cancellation, which
//! [`block_on`] and [`yield_now`] report to whatever awaited (a host future, an
//! epoch or fuel yield); the Wasm call then ends with an error and the fiber's
//! function returns. Nothing is ever unwound by force or leaked.

use crate::traphandlers::{self, Activation};
use corosensei::stack::{DefaultStack, Stack};
use corosensei::{Coroutine, CoroutineResult, Yielder};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// What a suspended fiber is resumed with.
enum Resume {
    /// Continue: the executor polls the call again.
    Poll,
    /// The call was dropped: everything awaiting must give up.
    Cancel,
}

/// A fiber's cancellation reaching code that awaited on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the async call into Wasm was cancelled (its future was dropped)")
    }
}

impl std::error::Error for Cancelled {}

/// State of one fiber, shared between its resumer and the code on its stack
/// through `CURRENT`. Boxed, so its address is stable.
struct FiberState {
    yielder: Cell<*const Yielder<Resume, ()>>,
    /// The `Context` of the poll that is running the fiber now.
    poll_cx: Cell<*mut Context<'static>>,
    cancelled: Cell<bool>,
    /// Lowest address Wasm code on this fiber may use (usable bottom + margin).
    floor: usize,
    /// Process-wide unique id (snapshots name the stack they belong to).
    id: u64,
    /// While suspended: the fiber's innermost activation, and the activation of
    /// the resuming thread its outermost one was linked to.
    suspended_innermost: Cell<*const Activation>,
    link: Cell<*const Activation>,
}

thread_local! {
    /// The fiber running on this thread (null on the thread's own stack).
    static CURRENT: Cell<*const FiberState> = const { Cell::new(std::ptr::null()) };
}

static NEXT_FIBER_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

#[inline(never)]
fn current() -> *const FiberState {
    CURRENT.with(|c| c.get())
}

#[inline(never)]
fn replace_current(state: *const FiberState) -> *const FiberState {
    CURRENT.with(|c| c.replace(state))
}

/// The stack floor of the fiber running on this thread, if any. Inlined (unlike
/// `current`): its callers read it before any switch their frame could see, so
/// a cached thread-local address cannot go stale in between.
#[inline]
pub(crate) fn current_floor() -> Option<usize> {
    let state = CURRENT.with(|c| c.get());
    // SAFETY: a non-null `CURRENT` is the state of a fiber being resumed on this
    // thread, boxed in its `Fiber`, which outlives the resume.
    (!state.is_null()).then(|| unsafe { (*state).floor })
}

/// Which native stack the caller runs on: a fiber's id, or `None` for the
/// thread's own stack.
#[inline(never)]
pub fn current_fiber_id() -> Option<u64> {
    let state = current();
    // SAFETY: as in `current_floor`.
    (!state.is_null()).then(|| unsafe { (*state).id })
}

/// Whether the caller runs on a fiber (inside an async call).
pub fn on_fiber() -> bool {
    !current().is_null()
}

/// Why [`block_on`] could not wait for a future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwaitError {
    /// Not on a fiber: the Wasm call was not made with an async call.
    NotOnFiber,
    /// The fiber's call was cancelled (its future dropped).
    Cancelled,
}

/// Polls `future` with the context of the poll running the current fiber,
/// suspending the fiber (the async call returns `Pending`) each time it is not
/// ready, until it is, or until the call is cancelled.
pub fn block_on<F: Future + ?Sized>(mut future: Pin<&mut F>) -> Result<F::Output, AwaitError> {
    loop {
        let state = current();
        if state.is_null() {
            return Err(AwaitError::NotOnFiber);
        }
        // SAFETY: the state is live while its fiber runs (see `current_floor`).
        let state = unsafe { &*state };
        if state.cancelled.get() {
            return Err(AwaitError::Cancelled);
        }
        // SAFETY: not cancelled, so the resume running us set `poll_cx` from a
        // `&mut Context` it borrows for the whole resume.
        let cx = unsafe { &mut *state.poll_cx.get() };
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Ok(output);
        }
        suspend(state).map_err(|Cancelled| AwaitError::Cancelled)?;
    }
}

/// Lets the executor run other tasks when on a fiber: wakes the running task at
/// once and suspends. A no-op off fibers. `Err` when the call was cancelled.
pub fn yield_now() -> Result<(), Cancelled> {
    let state = current();
    if state.is_null() {
        return Ok(());
    }
    // SAFETY: as in `block_on`.
    let state = unsafe { &*state };
    if state.cancelled.get() {
        return Err(Cancelled);
    }
    // SAFETY: as in `block_on`.
    unsafe { (*state.poll_cx.get()).waker().wake_by_ref() };
    suspend(state)
}

/// Suspends the fiber of `state`, running on this thread: its `Fiber::resume`
/// returns `Pending`. Returns when the fiber is resumed, or `Err(Cancelled)` if
/// it was cancelled (then without suspending again).
#[inline(never)]
fn suspend(state: &FiberState) -> Result<(), Cancelled> {
    if state.cancelled.get() {
        return Err(Cancelled);
    }
    // SAFETY: the yielder was set when the fiber started and lives on the fiber's
    // stack (the frame of its entry closure) until the fiber returns.
    match unsafe { (*state.yielder.get()).suspend(()) } {
        Resume::Poll => Ok(()),
        Resume::Cancel => Err(Cancelled),
    }
}

/// Extra stack beyond `max_wasm_stack` each fiber gets: room for the host code
/// that runs on it (host functions, the futures they poll) and the margin below
/// the Wasm stack limit the signal handling keeps.
pub const HOST_HEADROOM: usize = 512 * 1024;

/// The stacks of an engine's fibers, kept for reuse. A stack is a private,
/// anonymous `mmap` with an inaccessible guard page below it.
pub struct StackPool {
    size: usize,
    free: Mutex<Vec<DefaultStack>>,
    /// Stacks held by fibers, and how many may be (the pooling allocator's
    /// `total_stacks`; `None`: no limit). A leaked suspended fiber keeps its count.
    in_use: Mutex<usize>,
    limit: Option<usize>,
}

/// The error inside the `io::Error` of [`Fiber::new`] when every stack the
/// pool may hand out is in use.
#[derive(Debug)]
pub struct StacksExhausted {
    pub limit: usize,
}

impl std::fmt::Display for StacksExhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pooling allocator exhausted: all {} stack slots are in use",
            self.limit
        )
    }
}

impl std::error::Error for StacksExhausted {}

/// Most stacks a pool keeps; more are unmapped when their fibers end.
const MAX_POOLED_STACKS: usize = 256;

impl StackPool {
    /// A pool of stacks of `wasm_stack + HOST_HEADROOM` bytes, at most `limit`
    /// of them in use at once.
    pub fn new(wasm_stack: usize, limit: Option<usize>) -> StackPool {
        StackPool {
            size: wasm_stack.saturating_add(HOST_HEADROOM),
            free: Mutex::new(Vec::new()),
            in_use: Mutex::new(0),
            limit,
        }
    }

    /// Stacks held by fibers now.
    pub fn in_use(&self) -> usize {
        *self.in_use.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fiber's stack is gone (returned or unmapped).
    fn release(&self) {
        *self.in_use.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
    }

    /// Usable bytes of each stack.
    pub fn stack_size(&self) -> usize {
        self.size
    }

    /// Stacks waiting for reuse.
    pub fn pooled(&self) -> usize {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn take(&self) -> std::io::Result<DefaultStack> {
        {
            let mut in_use = self.in_use.lock().unwrap_or_else(|e| e.into_inner());
            if self.limit.is_some_and(|limit| *in_use >= limit) {
                return Err(std::io::Error::other(StacksExhausted {
                    limit: self.limit.unwrap_or(0),
                }));
            }
            *in_use += 1;
        }
        let reused = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match reused {
            Some(stack) => Ok(stack),
            None => DefaultStack::new(self.size).inspect_err(|_| self.release()),
        }
    }

    fn give_back(&self, stack: DefaultStack) {
        self.release();
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < MAX_POOLED_STACKS {
            free.push(stack);
        }
    }
}

type Body<R> = Coroutine<Resume, (), R, DefaultStack>;

/// A function running on a stack of its own, resumed by polls.
pub struct Fiber<'a, R> {
    coroutine: Option<Body<R>>,
    state: Box<FiberState>,
    pool: Arc<StackPool>,
    _borrows: std::marker::PhantomData<&'a mut ()>,
}

// SAFETY: what the fiber's stack holds while suspended is Wasm frames (plain
// data), our trap-catching frames (raw pointers to the store and activations,
// which follow the fiber: `switch_in` relinks them to the resuming thread), and
// the frames of host code, which only suspends inside futures the API requires
// to be `Send`, with a `Send` store; the function itself is `Send` (`new`). Per-thread state is never cached across a
// suspension (see the module docs); the fiber runs on one thread at a time.
unsafe impl<R: Send> Send for Fiber<'_, R> {}

impl<'a, R> Fiber<'a, R> {
    /// A fiber that will run `f` on a stack from `pool` when first resumed.
    ///
    /// # Safety
    /// Everything `f` borrows lives as long as `'a`, and the fiber is not leaked
    /// (`mem::forget`) while suspended: its frames would then never end.
    pub unsafe fn new(
        pool: Arc<StackPool>,
        f: impl FnOnce() -> R + Send + 'a,
    ) -> std::io::Result<Self> {
        let stack = pool.take()?;
        let usable_bottom = stack.limit().get() + crate::mmap::page_size();
        let state = Box::new(FiberState {
            yielder: Cell::new(std::ptr::null()),
            poll_cx: Cell::new(std::ptr::null_mut()),
            cancelled: Cell::new(false),
            floor: usable_bottom + traphandlers::STACK_MARGIN,
            id: NEXT_FIBER_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            suspended_innermost: Cell::new(std::ptr::null()),
            link: Cell::new(std::ptr::null()),
        });
        let state_ptr: *const FiberState = &*state;
        // SAFETY: the state is boxed in the `Fiber`, which outlives the coroutine
        // (dropped first, see `Drop`); `f`'s borrows live for `'a` per our contract.
        let coroutine = unsafe {
            Coroutine::with_stack_unchecked(stack, move |yielder: &Yielder<Resume, ()>, _| {
                (*state_ptr).yielder.set(yielder);
                f()
            })
        };
        Ok(Fiber {
            coroutine: Some(coroutine),
            state,
            pool,
            _borrows: std::marker::PhantomData,
        })
    }

    /// Runs the fiber until it suspends (`Pending`) or returns (`Ready`). Panics
    /// of the fiber's function propagate here. Panics if the fiber already
    /// returned.
    pub fn resume(&mut self, cx: &mut Context<'_>) -> Poll<R> {
        self.state
            .poll_cx
            .set((cx as *mut Context<'_>).cast::<Context<'static>>());
        let result = self.switch(Resume::Poll);
        self.state.poll_cx.set(std::ptr::null_mut());
        match result {
            CoroutineResult::Yield(()) => Poll::Pending,
            CoroutineResult::Return(value) => {
                self.recycle();
                Poll::Ready(value)
            }
        }
    }

    /// Whether the fiber's function has returned.
    pub fn is_done(&self) -> bool {
        self.coroutine.as_ref().is_none_or(|c| c.done())
    }

    /// One switch onto the fiber and back, with the per-thread state moved
    /// along (see the module docs).
    fn switch(&mut self, input: Resume) -> CoroutineResult<(), R> {
        struct Restore<'s> {
            state: &'s FiberState,
            previous: *const FiberState,
            outer: *const Activation,
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                // Also on a panic out of the fiber: its activations are all gone
                // then (each is popped before its frame unwinds).
                // SAFETY: `outer` is this thread's chain as it was before the
                // switch; the fiber's activations are unlinked from it.
                let innermost = unsafe { traphandlers::switch_out(self.outer) };
                self.state.suspended_innermost.set(innermost);
                self.state.link.set(self.outer);
                replace_current(self.previous);
            }
        }
        let coroutine = self.coroutine.as_mut().expect("resumed a finished fiber");
        let state: &FiberState = &self.state;
        // SAFETY: the fiber's saved chain is `suspended_innermost` down to the
        // activation before `link`; no other thread runs it (we hold `&mut self`).
        let outer =
            unsafe { traphandlers::switch_in(state.suspended_innermost.get(), state.link.get()) };
        let _restore = Restore {
            state,
            previous: replace_current(state),
            outer,
        };
        coroutine.resume(input)
    }

    /// Returns a finished fiber's stack to the pool.
    fn recycle(&mut self) {
        if let Some(coroutine) = self.coroutine.take() {
            if coroutine.done() {
                self.pool.give_back(coroutine.into_stack());
            } else {
                drop(coroutine);
                self.pool.release();
            }
        }
    }

    /// Ends a suspended fiber: resumes it with a cancellation until its function
    /// returns (every `suspend` it reaches fails with [`Cancelled`]). Returns the
    /// function's result, or `None` if it had not started (it never will).
    pub fn cancel(&mut self) -> Option<R> {
        self.state.cancelled.set(true);
        let coroutine = self.coroutine.as_ref()?;
        if coroutine.done() {
            return None;
        }
        if !coroutine.started() {
            // Dropping an unstarted coroutine drops its closure (and unmaps
            // its stack), nothing else.
            self.coroutine = None;
            self.pool.release();
            return None;
        }
        loop {
            if let CoroutineResult::Return(value) = self.switch(Resume::Cancel) {
                self.recycle();
                return Some(value);
            }
        }
    }
}

impl<R> Drop for Fiber<'_, R> {
    fn drop(&mut self) {
        if !self.is_done() {
            self.cancel();
        }
        self.recycle();
    }
}
