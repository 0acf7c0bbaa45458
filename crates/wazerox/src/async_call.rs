//! Async calls (`Config::async_support`, docs/async.md): Wasm runs on a fiber
//! (a stack of its own, `wazerox_runtime::fiber`), so a host future that is not
//! ready suspends the whole call and the call's future returns `Pending`.
//!
//! Everything that enters Wasm here does so through [`on_fiber`]: the call is
//! the ordinary synchronous one, run on a fiber. An async host function blocks
//! *the fiber* on its future (`fiber::block_on`), never the thread. Epoch
//! deadlines and fuel can be made to yield (the `EpochDeadline`/`FuelExhausted`
//! builtins suspend the fiber after waking its task).
//!
//! Dropping a call's future while the call is suspended cancels it: the fiber
//! is resumed once more, every await on it fails (an async host function's
//! future is dropped and the host function returns a `Cancelled` error, an
//! epoch or fuel yield traps), so the Wasm frames end like any failed call and
//! the fiber's stack goes back to the pool. The store stays usable.

use crate::error::{Error, ErrorKind};
use crate::func::{
    Caller, Func, HostFuncContext, HostFuncTemplate, TypedFunc, WasmParams, WasmResults, WasmRet,
    enter_host,
};
use crate::instance::Instance;
use crate::linker::{InstancePre, Linker};
use crate::module::Module;
use crate::store::{AsContextMut, Store, StoreContextMut, StoreInner, StoreOpaque};
use crate::values::Val;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use wazerox_environ::FuncType;
use wazerox_runtime::checkpoint::ExitFrame;
use wazerox_runtime::fiber::{self, AwaitError, Fiber};
use wazerox_runtime::vmcontext::ValRaw;

pub use wazerox_runtime::fiber::Cancelled;

/// The error of a synchronous call into Wasm in an async engine, made outside
/// any async call (inside one, e.g. from a host function, it runs on the call's
/// fiber and may await like the rest of it).
// Inlined, the error built out of line: every call into Wasm asks.
#[inline]
pub(crate) fn refuse_sync_call(store: &StoreOpaque) -> Result<(), Error> {
    if store.engine.config().async_support && !fiber::on_fiber() {
        return Err(sync_call_refused());
    }
    Ok(())
}

#[cold]
#[inline(never)]
fn sync_call_refused() -> Error {
    Error::usage(
        "must use `call_async` / `instantiate_async` when async support is enabled \
         on the config (Config::async_support)",
    )
}

fn require_async(store: &StoreOpaque, what: &str) -> Result<(), Error> {
    if !store.engine.config().async_support {
        return Err(Error::usage(format!(
            "cannot use `{what}` without enabling async support on the config \
             (Config::async_support(true))"
        )));
    }
    Ok(())
}

/// A store pointer handed to a fiber.
struct StorePtr<T>(*mut StoreInner<T>);

// SAFETY: the pointer comes from an exclusive borrow of a store whose data is
// `Send` (bounds of `on_fiber`), held by the future for as long as the fiber
// can run; the fiber runs on one thread at a time.
unsafe impl<T: Send> Send for StorePtr<T> {}

/// The future of a call running on a fiber.
struct FiberFuture<'a, R> {
    fiber: Fiber<'a, R>,
}

impl<R> Future for FiberFuture<'_, R> {
    type Output = R;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        self.get_mut().fiber.resume(cx)
    }
}

/// Runs `f` with the store on a fiber, resolving when it returns.
async fn on_fiber<'a, T: Send, R: Send + 'a>(
    store: &'a mut StoreInner<T>,
    f: impl FnOnce(&mut StoreInner<T>) -> Result<R, Error> + Send + 'a,
) -> Result<R, Error> {
    let pool = store.opaque.engine.0.fiber_stacks.clone();
    let ptr = StorePtr(store as *mut StoreInner<T>);
    // SAFETY: the store is borrowed exclusively for `'a`, which the fiber's
    // future (a local of this async fn) does not outlive; `f`'s borrows live for
    // `'a` too. A leaked future leaves the fiber's frames never resumed: its
    // stack is leaked, nothing else (docs/async.md).
    let fiber = unsafe {
        Fiber::new(pool, move || {
            let ptr = ptr;
            // SAFETY: the pointer is the exclusive borrow above; nothing else
            // uses the store while the fiber runs (the borrow is held).
            f(&mut *ptr.0)
        })
    }
    .map_err(|e| {
        let exhausted = e
            .get_ref()
            .is_some_and(|e| e.is::<wazerox_runtime::fiber::StacksExhausted>());
        let kind = if exhausted {
            ErrorKind::PoolExhausted
        } else {
            ErrorKind::Instantiation
        };
        Error::with_kind(
            kind,
            format!("cannot allocate the stack of an async call: {e}"),
        )
    })?;
    FiberFuture { fiber }.await
}

impl Func {
    /// Calls the function asynchronously (needs `Config::async_support`): the
    /// returned future runs the call on a stack of its own and is `Pending`
    /// whenever an async host function awaits, or an epoch deadline or fuel
    /// interval yields. Dropping it before it completes cancels the call (see
    /// docs/async.md); the store stays usable.
    pub async fn call_async<T: Send>(
        &self,
        mut store: impl AsContextMut<Data = T> + Send,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<(), Error> {
        let ctx = store.as_context_mut();
        require_async(&ctx.0.opaque, "call_async")?;
        let func = *self;
        on_fiber(ctx.0, move |store| {
            func.call(StoreContextMut(store), params, results)
        })
        .await
    }

    /// A host function returning a future (needs `Config::async_support`, or
    /// panics): Wasm calling it is suspended, with its whole async call, until
    /// the future is ready. Called outside an async call, it fails.
    pub fn wrap_async<T, P, R, F>(mut store: impl AsContextMut<Data = T>, func: F) -> Func
    where
        T: 'static,
        P: WasmParams,
        R: WasmRet,
        F: for<'a> Fn(Caller<'a, T>, P) -> Box<dyn Future<Output = R> + Send + 'a>
            + Send
            + Sync
            + 'static,
    {
        let mut ctx = store.as_context_mut();
        assert!(
            ctx.0.opaque.engine.config().async_support,
            "cannot use `wrap_async` without enabling async support on the config"
        );
        async_template::<T, P, R, F>(func)
            .into_func(ctx.opaque_mut())
            .expect("trampolines for a host function type compile")
    }
}

impl<Params, Results> TypedFunc<Params, Results>
where
    Params: WasmParams + Send,
    Results: WasmResults + Send,
{
    /// [`TypedFunc::call`] as an async call (see [`Func::call_async`]).
    pub async fn call_async<T: Send>(
        &self,
        mut store: impl AsContextMut<Data = T> + Send,
        params: Params,
    ) -> Result<Results, Error> {
        let ctx = store.as_context_mut();
        require_async(&ctx.0.opaque, "call_async")?;
        let func = *self;
        on_fiber(ctx.0, move |store| {
            func.call(StoreContextMut(store), params)
        })
        .await
    }
}

impl<T: Send + 'static> Linker<T> {
    /// Defines an async host function (see [`Func::wrap_async`]); fails if the
    /// engine has no async support.
    pub fn func_wrap_async<P, R, F>(
        &mut self,
        module: &str,
        name: &str,
        func: F,
    ) -> Result<&mut Self, Error>
    where
        P: WasmParams,
        R: WasmRet,
        F: for<'a> Fn(Caller<'a, T>, P) -> Box<dyn Future<Output = R> + Send + 'a>
            + Send
            + Sync
            + 'static,
    {
        if !self.engine().config().async_support {
            return Err(Error::usage(
                "cannot use `func_wrap_async` without enabling async support on the config",
            ));
        }
        Ok(self.insert_host_func(module, name, async_template::<T, P, R, F>(func)))
    }

    /// [`Linker::instantiate`] as an async call: the start function (if any) may
    /// call async host functions.
    pub async fn instantiate_async(
        &self,
        mut store: impl AsContextMut<Data = T> + Send,
        module: &Module,
    ) -> Result<Instance, Error> {
        let ctx = store.as_context_mut();
        require_async(&ctx.0.opaque, "instantiate_async")?;
        on_fiber(ctx.0, move |store| {
            self.instantiate(StoreContextMut(store), module)
        })
        .await
    }
}

impl<T: Send + 'static> InstancePre<T> {
    /// [`InstancePre::instantiate`] as an async call.
    pub async fn instantiate_async(
        &self,
        mut store: impl AsContextMut<Data = T> + Send,
    ) -> Result<Instance, Error> {
        let ctx = store.as_context_mut();
        require_async(&ctx.0.opaque, "instantiate_async")?;
        on_fiber(ctx.0, move |store| self.instantiate(StoreContextMut(store))).await
    }
}

impl<T> Store<T> {
    /// Makes reaching the epoch deadline yield instead of trap: the async call
    /// running the store's code returns `Pending` (after waking its task, so the
    /// executor polls it again soon) and, when resumed, continues with the
    /// deadline `delta` ticks past the epoch then current. Also sets that
    /// deadline now. Needs `Config::epoch_interruption`; an interrupted store
    /// still traps. Panics if the engine has no async support (without fibers
    /// there is nothing to yield, and a spinning guest could never be stopped).
    pub fn epoch_deadline_async_yield_and_update(&mut self, delta: u64) {
        assert!(
            self.engine().is_async(),
            "cannot use `epoch_deadline_async_yield_and_update` without enabling async \
             support on the config"
        );
        // SAFETY: no code of this store runs while we hold `&mut self`.
        unsafe { *self.inner.opaque.vm_store_context.epoch_yield.get() = Some(delta) };
        self.set_epoch_deadline(delta);
    }

    /// Makes reaching the epoch deadline trap with `Interrupt` (the default),
    /// undoing [`Store::epoch_deadline_async_yield_and_update`].
    pub fn epoch_deadline_trap(&mut self) {
        // SAFETY: as above.
        unsafe { *self.inner.opaque.vm_store_context.epoch_yield.get() = None };
    }

    /// With `Some(n)`, an async call yields to the executor each time the
    /// store's code has consumed `n` more units of fuel (it still traps with
    /// `OutOfFuel` once all of the store's fuel is spent); `None` never yields.
    /// Needs `Config::consume_fuel` and `Config::async_support`.
    pub fn fuel_async_yield_interval(&mut self, interval: Option<u64>) -> Result<(), Error> {
        let config = self.engine().config();
        if !config.translation.consume_fuel {
            return Err(Error::usage("fuel is not enabled in this engine's Config"));
        }
        require_async(&self.inner.opaque, "fuel_async_yield_interval")?;
        if interval == Some(0) {
            return Err(Error::usage("a fuel yield interval must be at least 1"));
        }
        // SAFETY: no code of this store runs while we hold `&mut self`.
        unsafe {
            self.inner
                .opaque
                .vm_store_context
                .set_fuel_yield_interval(interval.unwrap_or(0))
        };
        Ok(())
    }
}

type AsyncClosure<T, P, R> =
    dyn for<'a> Fn(Caller<'a, T>, P) -> Box<dyn Future<Output = R> + Send + 'a> + Send + Sync;

/// The template of an async host function: its callback blocks the running
/// fiber on the closure's future.
fn async_template<T, P, R, F>(func: F) -> HostFuncTemplate
where
    T: 'static,
    P: WasmParams,
    R: WasmRet,
    F: for<'a> Fn(Caller<'a, T>, P) -> Box<dyn Future<Output = R> + Send + 'a>
        + Send
        + Sync
        + 'static,
{
    unsafe extern "C" fn callback<T: 'static, P: WasmParams, R: WasmRet>(
        context: *mut HostFuncContext,
        caller_vmctx: *mut u8,
        values: *mut ValRaw,
        len: usize,
        exit_sp: usize,
        exit_fp: usize,
    ) -> u8 {
        let frame = ExitFrame {
            sp: exit_sp,
            fp: exit_fp,
        };
        // SAFETY: the trampoline passes `len` slots sized for this function's
        // params and results; the context's closure is a `Box<AsyncClosure>` of
        // these types in a store with data T (installed below).
        unsafe {
            let slots = std::slice::from_raw_parts_mut(values, len);
            enter_host::<T>(context, caller_vmctx, values, frame, |caller, closure| {
                let f = closure
                    .downcast_ref::<Box<AsyncClosure<T, P, R>>>()
                    .expect("async host closure");
                let Caller { store, exit, .. } = caller;
                let params = P::load_params(&mut store.opaque, slots);
                let output = {
                    let future = f(
                        Caller {
                            store: &mut *store,
                            caller_vmctx,
                            exit,
                        },
                        params,
                    );
                    fiber::block_on(Pin::from(future).as_mut())
                };
                let results = match output {
                    Ok(output) => output.into_result()?,
                    Err(AwaitError::Cancelled) => return Err(Error::new(Cancelled)),
                    Err(AwaitError::NotOnFiber) => {
                        return Err(Error::usage(
                            "async host function called outside of an async call \
                             (use `call_async` / `instantiate_async`)",
                        ));
                    }
                };
                results.store_results(&store.opaque, slots)
            })
        }
    }
    let ty = FuncType::new(P::valtypes(), R::Results::valtypes());
    let closure: Box<AsyncClosure<T, P, R>> = Box::new(func);
    HostFuncTemplate {
        ty,
        callback: callback::<T, P, R>,
        closure: Arc::new(closure),
    }
}
