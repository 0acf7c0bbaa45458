//! Functions: calling Wasm from the host and the host from Wasm.
//!
//! Host → Wasm: arguments are written into an array of 16-byte [`ValRaw`] slots and
//! the engine's per-type *array call* trampoline calls the function, inside
//! `catch_traps`. Wasm → host: the function's `VMFuncRef` points at the per-type
//! *Wasm→host* trampoline, with a [`HostFuncContext`] as its vmctx; the trampoline
//! spills the arguments and calls `HostFuncContext::callback`, a monomorphic
//! `extern "C"` function generated for the closure's type, which decodes the
//! arguments, runs the closure, and reports failure so the trampoline traps.

use crate::error::{Error, FrameInfo, Trap};
use crate::store::{AsContext, AsContextMut, FuncData, StoreContextMut, StoreInner, StoreOpaque};
use crate::values::{ExternRef, Val};
use std::any::Any;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use wazerox_environ::{ConcreteType, FuncType, HeapType, RefKind, RefType, ValType};
use wazerox_runtime::checkpoint::ExitFrame;
use wazerox_runtime::traphandlers::{self, TrapReason};
use wazerox_runtime::vmcontext::{VMFuncRef, VMStoreContext, ValRaw};

mod dynamic;
pub(crate) use dynamic::dynamic_template;

/// A function: exported by an instance or defined by the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Func {
    pub(crate) store: u64,
    pub(crate) index: usize,
}

/// Signature of [`HostFuncContext::callback`]: `(context, caller_vmctx, values,
/// len, exit_sp, exit_fp)`; the last two are the exit frame checkpoints need
/// (see `wazerox_runtime::checkpoint::ExitFrame`).
pub(crate) type HostCallback =
    unsafe extern "C" fn(*mut HostFuncContext, *mut u8, *mut ValRaw, usize, usize, usize) -> u8;

/// The "vmctx" of a host function. The Wasm→host trampoline calls the address at
/// offset 0: the callback itself, or on some architectures a runtime shim that
/// records the exit state checkpoints need and then calls `callback`, at offset 8.
#[repr(C)]
pub(crate) struct HostFuncContext {
    entry: usize,
    callback: HostCallback,
    func_ref: VMFuncRef,
    store_context: *const VMStoreContext,
    ty: FuncType,
    closure: Arc<dyn Any + Send + Sync>,
}

/// A host function not yet placed in a store (what `Linker` keeps).
#[derive(Clone)]
pub(crate) struct HostFuncTemplate {
    pub ty: FuncType,
    pub(crate) callback: HostCallback,
    pub(crate) closure: Arc<dyn Any + Send + Sync>,
}

impl HostFuncContext {
    pub(crate) fn result_types(&self) -> &[ValType] {
        self.ty.results()
    }
}

impl HostFuncTemplate {
    pub(crate) fn into_func(self, store: &mut StoreOpaque) -> Result<Func, Error> {
        let type_id = store.engine().type_id(&self.ty);
        let trampolines = store.engine().trampolines(type_id)?;
        let mut context = Box::new(HostFuncContext {
            entry: wazerox_runtime::checkpoint::host_entry_address(
                store.engine().config().checkpoints,
                self.callback as usize,
            ),
            callback: self.callback,
            func_ref: VMFuncRef::NULL,
            store_context: &*store.vm_store_context,
            ty: self.ty.clone(),
            closure: self.closure,
        });
        let context_ptr: *mut HostFuncContext = &mut *context;
        context.func_ref = VMFuncRef {
            wasm_call: trampolines.wasm_to_host as *const u8,
            vmctx: context_ptr.cast(),
            type_id,
            _padding: 0,
        };
        let func_ref: *const VMFuncRef = &context.func_ref;
        store.host_funcs.push(context);
        Ok(Func::register(
            store,
            func_ref,
            type_id,
            self.ty,
            trampolines.array_call,
        ))
    }
}

impl Func {
    pub(crate) fn register(
        store: &mut StoreOpaque,
        func_ref: *const VMFuncRef,
        type_id: u32,
        ty: FuncType,
        array_call: usize,
    ) -> Func {
        if let Some(&index) = store.func_handles.get(&(func_ref as usize)) {
            return Func {
                store: store.id,
                index,
            };
        }
        store.funcs.push(FuncData {
            func_ref,
            type_id,
            ty,
            array_call,
        });
        let index = store.funcs.len() - 1;
        store.func_handles.insert(func_ref as usize, index);
        Func {
            store: store.id,
            index,
        }
    }

    /// The `Func` for a raw funcref found in a table or global (null → `None`).
    pub(crate) fn from_raw(store: &mut StoreOpaque, raw: usize) -> Result<Option<Func>, Error> {
        if raw == 0 {
            return Ok(None);
        }
        if let Some(&index) = store.func_handles.get(&raw) {
            return Ok(Some(Func {
                store: store.id,
                index,
            }));
        }
        // SAFETY: non-null funcref values only ever point at live VMFuncRefs of this
        // store (instance VMContexts or host function contexts).
        let type_id = unsafe { (*(raw as *const VMFuncRef)).type_id };
        let ty = store.engine().type_of(type_id);
        let array_call = store.engine().trampolines(type_id)?.array_call;
        Ok(Some(Func::register(
            store,
            raw as *const VMFuncRef,
            type_id,
            ty,
            array_call,
        )))
    }

    pub(crate) fn to_raw(self, store: &StoreOpaque) -> usize {
        store.funcs[self.index].func_ref as usize
    }

    pub(crate) fn type_id(self, store: &StoreOpaque) -> u32 {
        store.funcs[self.index].type_id
    }

    /// A host function from a closure taking Wasm-typed arguments (optionally with a
    /// leading [`Caller`]) and returning Wasm-typed results or `Result<_, Error>`.
    pub fn wrap<T: 'static, Params, Results>(
        mut store: impl AsContextMut<Data = T>,
        func: impl IntoFunc<T, Params, Results>,
    ) -> Func {
        let template = func.into_template();
        template
            .into_func(store.as_context_mut().opaque_mut())
            .expect("trampolines for a host function type compile")
    }

    /// A host function with a signature chosen at run time.
    pub fn new<T: 'static>(
        mut store: impl AsContextMut<Data = T>,
        ty: FuncType,
        func: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync + 'static,
    ) -> Func {
        dynamic_template::<T, _>(ty, func)
            .into_func(store.as_context_mut().opaque_mut())
            .expect("trampolines for a host function type compile")
    }

    /// The function's type. Panics if used with another store.
    pub fn ty(&self, store: impl AsContext) -> FuncType {
        let ctx = store.as_context();
        ctx.opaque().assert_owns(self.store, "function");
        ctx.opaque().funcs[self.index].ty.clone()
    }

    /// The most precise reference type of this function: `(ref $t)` for its type
    /// `$t` as the engine identifies it (see [`wazerox_environ::ConcreteType`]).
    /// Typed globals, tables and parameters (`(ref $t)`, `(ref null $t)`) are built
    /// from it. Panics if used with another store.
    pub fn ref_ty(&self, store: impl AsContext) -> RefType {
        let ctx = store.as_context();
        ctx.opaque().assert_owns(self.store, "function");
        let id = ctx.opaque().funcs[self.index].type_id;
        RefType::new(false, HeapType::Concrete(ConcreteType::Engine(id)))
    }

    /// Calls the function with dynamically typed values. Up to 16 values travel
    /// in a stack array (more take a `Vec`); the type is read in place, not
    /// cloned.
    pub fn call<T>(
        &self,
        mut store: impl AsContextMut<Data = T>,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<(), Error> {
        let mut ctx = store.as_context_mut();
        let opaque = ctx.opaque_mut();
        opaque.assert_owns(self.store, "function");
        let ty = &opaque.funcs[self.index].ty;
        if params.len() != ty.params().len() || results.len() != ty.results().len() {
            return Err(Error::usage(format!(
                "wrong number of arguments or results for function of type {ty}"
            )));
        }
        let slots = ty.params().len().max(ty.results().len());
        let mut on_stack = [ValRaw::default(); MAX_TYPED_VALUES];
        let mut on_heap = Vec::new();
        let values: &mut [ValRaw] = if slots <= MAX_TYPED_VALUES {
            &mut on_stack[..slots]
        } else {
            on_heap.resize(slots, ValRaw::default());
            &mut on_heap
        };
        for ((value, expected), slot) in params.iter().zip(ty.params()).zip(values.iter_mut()) {
            if !value.matches_ty(opaque, *expected) {
                return Err(Error::usage(format!(
                    "argument of type {} where {expected} was expected",
                    value.ty()
                )));
            }
            *slot = val_to_raw(opaque, value)?;
        }
        invoke(ctx.0, *self, values)?;
        let opaque = ctx.opaque_mut();
        for (i, (result, raw)) in results.iter_mut().zip(values.iter()).enumerate() {
            let ty = opaque.funcs[self.index].ty.results()[i];
            *result = val_from_raw(opaque, ty, raw)?;
        }
        Ok(())
    }

    /// A statically typed view of this function; checks the type once.
    pub fn typed<Params: WasmParams, Results: WasmResults>(
        &self,
        store: impl AsContext,
    ) -> Result<TypedFunc<Params, Results>, Error> {
        let ctx = store.as_context();
        let opaque = ctx.opaque();
        opaque.assert_owns(self.store, "function");
        let ty = &opaque.funcs[self.index].ty;
        if ty.params() != Params::valtypes().as_slice()
            || ty.results() != Results::valtypes().as_slice()
        {
            return Err(Error::usage(format!(
                "function has type {ty}, not the requested ({:?}) -> ({:?})",
                Params::valtypes(),
                Results::valtypes()
            )));
        }
        Ok(TypedFunc {
            func: *self,
            _marker: PhantomData,
        })
    }
}

pub(crate) fn val_to_raw(store: &StoreOpaque, value: &Val) -> Result<ValRaw, Error> {
    Ok(match value {
        Val::I32(v) => ValRaw::i32(*v),
        Val::I64(v) => ValRaw::i64(*v),
        Val::F32(v) => ValRaw::f32(*v),
        Val::F64(v) => ValRaw::f64(*v),
        Val::V128(v) => ValRaw::u128(*v),
        Val::FuncRef(None) | Val::ExternRef(None) | Val::ExnRef(None) | Val::AnyRef(None) => {
            ValRaw::ptr(0)
        }
        Val::AnyRef(Some(a)) => {
            store.check(a.store)?;
            ValRaw::ptr(a.to_word() as usize)
        }
        Val::FuncRef(Some(f)) => {
            store.check(f.store)?;
            ValRaw::ptr(f.to_raw(store))
        }
        Val::ExternRef(Some(e)) => {
            store.check(e.store)?;
            ValRaw::ptr(e.to_raw())
        }
        Val::ExnRef(Some(e)) => {
            store.check(e.store)?;
            ValRaw::ptr(e.to_raw())
        }
    })
}

pub(crate) fn val_from_raw(
    store: &mut StoreOpaque,
    ty: ValType,
    raw: &ValRaw,
) -> Result<Val, Error> {
    Ok(match ty {
        ValType::I32 => Val::I32(raw.get_i32()),
        ValType::I64 => Val::I64(raw.get_i64()),
        ValType::F32 => Val::F32(raw.get_f32()),
        ValType::F64 => Val::F64(raw.get_f64()),
        ValType::V128 => Val::V128(raw.get_u128()),
        ValType::Ref(r) => match r.kind() {
            RefKind::Func => Val::FuncRef(Func::from_raw(store, raw.get_ptr())?),
            RefKind::Extern => Val::ExternRef(ExternRef::from_raw_rooted(store, raw.get_ptr())),
            RefKind::Exn => Val::ExnRef(crate::ExnRef::from_raw(store, raw.get_ptr())),
            RefKind::Any => Val::AnyRef(crate::AnyRef::from_word(store, raw.get_ptr() as u64)),
        },
    })
}

/// Calls `func` with arguments (and then results) in `values`, catching traps.
pub(crate) fn invoke<T>(
    store: &mut StoreInner<T>,
    func: Func,
    values: &mut [ValRaw],
) -> Result<(), Error> {
    crate::async_call::refuse_sync_call(&store.opaque)?;
    let data = &store.opaque.funcs[func.index];
    let func_ref = data.func_ref;
    let array_call = data.array_call;
    store.opaque.maybe_collect_garbage();
    let max_stack = store.opaque.engine.config().max_wasm_stack;
    let store_id = store.opaque.id;
    let store_ptr: *mut StoreInner<T> = store;
    let vm_store: *const VMStoreContext = &*store.opaque.vm_store_context;
    // Collections inside the call (GC at allocations, exception objects in
    // `ExnNew`) need to know whether the running activation holds every Wasm
    // frame of the store (docs/gc.md); nested calls come through here again.
    // SAFETY: the store's context, used by this thread only.
    unsafe { *(*vm_store).wasm_calls.get() += 1 };
    // SAFETY: `array_call` is the engine's trampoline for the function's type, so
    // the `values` array (sized for params and results by the callers) matches
    // what it reads and writes; `func_ref` is live for the store's life. Host
    // functions reach the store again through `store`, set right here from our
    // exclusive borrow, which we do not use until the call returns.
    let result = unsafe {
        *(*vm_store).store.get() = store_ptr.cast();
        let call: unsafe extern "C" fn(*const u8, *mut u8, *mut u8, *mut ValRaw) =
            std::mem::transmute(array_call);
        let func_ref = *func_ref;
        let values = values.as_mut_ptr();
        // `move`: the closure holds the copied words, not references to them.
        traphandlers::catch_traps(vm_store, max_stack, move || {
            call(
                func_ref.wasm_call,
                func_ref.vmctx,
                std::ptr::null_mut(),
                values,
            )
        })
    };
    // SAFETY: the call is over: the context is the store's, and `store_ptr`
    // is our exclusive borrow again.
    unsafe {
        let calls = (*vm_store).wasm_calls.get();
        *calls -= 1;
        if *calls == 0 {
            (*store_ptr).opaque.snapshot_taken = false;
        }
    }
    result.map_err(|reason| trap_to_error(reason, store_id))
}

fn frame_info(frame: &wazerox_runtime::traphandlers::BacktraceFrame) -> FrameInfo {
    let module = &frame.module;
    let body_start = module.function_body_offset(frame.func_index);
    let symbols = match (&module.source_map, frame.wasm_offset) {
        (Some(map), Some(offset)) => map
            .locate(offset)
            .into_iter()
            .map(|l| crate::FrameSymbol {
                file: l.file,
                line: l.line,
                column: l.column,
            })
            .collect(),
        _ => Vec::new(),
    };
    FrameInfo {
        module_name: module.module_name.clone(),
        func_index: frame.func_index,
        func_name: module.func_name(frame.func_index).map(str::to_string),
        module_offset: frame.wasm_offset.map(|o| o as usize),
        func_offset: frame
            .wasm_offset
            .zip(body_start)
            .and_then(|(offset, start)| offset.checked_sub(start))
            .map(|o| o as usize),
        symbols,
    }
}

pub(crate) fn trap_to_error(reason: TrapReason, store: u64) -> Error {
    match reason {
        TrapReason::Wasm {
            code, backtrace, ..
        } => {
            let frames = backtrace.frames.iter().map(frame_info).collect();
            Trap::new(code, frames).into()
        }
        TrapReason::Host(error) => Error::from_boxed(error),
        TrapReason::Panic(payload) => std::panic::resume_unwind(payload),
        TrapReason::Exception(raw) => Error::throw(crate::ExnRef::pinned(store, raw)),
    }
}

/// A function with a statically known signature: no type checks or allocation
/// per call.
pub struct TypedFunc<Params, Results> {
    func: Func,
    _marker: PhantomData<fn(Params) -> Results>,
}

impl<P, R> Clone for TypedFunc<P, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P, R> Copy for TypedFunc<P, R> {}

/// Most values any typed call (and `Func::call` without allocating) passes in
/// either direction.
const MAX_TYPED_VALUES: usize = 16;

impl<Params: WasmParams, Results: WasmResults> TypedFunc<Params, Results> {
    /// Calls the function with `params`; a trap or host error ends the call with an `Error`.
    pub fn call<T>(
        &self,
        mut store: impl AsContextMut<Data = T>,
        params: Params,
    ) -> Result<Results, Error> {
        let mut ctx = store.as_context_mut();
        ctx.opaque().assert_owns(self.func.store, "function");
        // The common small signatures use a small array: zeroing 16 slots costs
        // more than the rest of the argument passing.
        if Params::COUNT <= 2 && Results::COUNT <= 2 {
            let mut values = [ValRaw::default(); 2];
            params.store(ctx.opaque(), &mut values)?;
            invoke(ctx.0, self.func, &mut values)?;
            return Ok(Results::load(ctx.opaque_mut(), &values));
        }
        let mut values = [ValRaw::default(); MAX_TYPED_VALUES];
        params.store(ctx.opaque(), &mut values)?;
        invoke(ctx.0, self.func, &mut values)?;
        Ok(Results::load(ctx.opaque_mut(), &values))
    }

    /// The untyped function.
    pub fn func(&self) -> Func {
        self.func
    }
}

/// A Rust type that is a Wasm value type.
pub trait WasmTy: Sized + 'static {
    /// The Wasm type of values of this Rust type.
    fn valtype() -> ValType;
    #[doc(hidden)]
    fn store(self, store: &StoreOpaque, slot: &mut ValRaw) -> Result<(), Error>;
    #[doc(hidden)]
    fn load(store: &mut StoreOpaque, slot: &ValRaw) -> Self;
}

macro_rules! wasm_ty {
    ($($t:ty => $vt:ident, $to:expr, $from:expr;)*) => {$(
        impl WasmTy for $t {
            fn valtype() -> ValType {
                ValType::$vt
            }
            fn store(self, _: &StoreOpaque, slot: &mut ValRaw) -> Result<(), Error> {
                *slot = $to(self);
                Ok(())
            }
            fn load(_: &mut StoreOpaque, slot: &ValRaw) -> Self {
                $from(slot)
            }
        }
    )*};
}

wasm_ty! {
    i32 => I32, ValRaw::i32, |s: &ValRaw| s.get_i32();
    u32 => I32, |v: u32| ValRaw::i32(v as i32), |s: &ValRaw| s.get_i32() as u32;
    i64 => I64, ValRaw::i64, |s: &ValRaw| s.get_i64();
    u64 => I64, |v: u64| ValRaw::i64(v as i64), |s: &ValRaw| s.get_i64() as u64;
    f32 => F32, |v: f32| ValRaw::f32(v.to_bits()), |s: &ValRaw| f32::from_bits(s.get_f32());
    f64 => F64, |v: f64| ValRaw::f64(v.to_bits()), |s: &ValRaw| f64::from_bits(s.get_f64());
    u128 => V128, ValRaw::u128, |s: &ValRaw| s.get_u128();
}

impl WasmTy for Option<Func> {
    fn valtype() -> ValType {
        ValType::FUNCREF
    }
    fn store(self, store: &StoreOpaque, slot: &mut ValRaw) -> Result<(), Error> {
        *slot = val_to_raw(store, &Val::FuncRef(self))?;
        Ok(())
    }
    fn load(store: &mut StoreOpaque, slot: &ValRaw) -> Self {
        Func::from_raw(store, slot.get_ptr()).ok().flatten()
    }
}

impl WasmTy for Option<ExternRef> {
    fn valtype() -> ValType {
        ValType::EXTERNREF
    }
    fn store(self, store: &StoreOpaque, slot: &mut ValRaw) -> Result<(), Error> {
        *slot = val_to_raw(store, &Val::ExternRef(self))?;
        Ok(())
    }
    fn load(store: &mut StoreOpaque, slot: &ValRaw) -> Self {
        ExternRef::from_raw_rooted(store, slot.get_ptr())
    }
}

impl WasmTy for Option<crate::AnyRef> {
    fn valtype() -> ValType {
        ValType::ANYREF
    }
    fn store(self, store: &StoreOpaque, slot: &mut ValRaw) -> Result<(), Error> {
        *slot = val_to_raw(store, &Val::AnyRef(self))?;
        Ok(())
    }
    fn load(store: &mut StoreOpaque, slot: &ValRaw) -> Self {
        crate::AnyRef::from_word(store, slot.get_ptr() as u64)
    }
}

/// `(ref any)`: a typed function's signature must say non-null for it to be
/// used, so Wasm never passes null where it is loaded.
impl WasmTy for crate::AnyRef {
    fn valtype() -> ValType {
        ValType::Ref(RefType::new(false, HeapType::Any))
    }
    fn store(self, store: &StoreOpaque, slot: &mut ValRaw) -> Result<(), Error> {
        *slot = val_to_raw(store, &Val::AnyRef(Some(self)))?;
        Ok(())
    }
    fn load(store: &mut StoreOpaque, slot: &ValRaw) -> Self {
        crate::AnyRef::from_word(store, slot.get_ptr() as u64)
            .expect("validated: a `(ref any)` value is not null")
    }
}

/// Parameters of a typed call: `()`, one [`WasmTy`], or a tuple of them.
pub trait WasmParams: Sized + 'static {
    /// Number of values.
    const COUNT: usize;
    /// The Wasm types of the values, in order.
    fn valtypes() -> Vec<ValType>;
    #[doc(hidden)]
    fn store(self, store: &StoreOpaque, slots: &mut [ValRaw]) -> Result<(), Error>;
    #[doc(hidden)]
    fn load_params(store: &mut StoreOpaque, slots: &[ValRaw]) -> Self;
}

/// Results of a typed call: `()`, one [`WasmTy`], or a tuple of them.
pub trait WasmResults: Sized + 'static {
    /// Number of values.
    const COUNT: usize;
    /// The Wasm types of the values, in order.
    fn valtypes() -> Vec<ValType>;
    #[doc(hidden)]
    fn load(store: &mut StoreOpaque, slots: &[ValRaw]) -> Self;
    #[doc(hidden)]
    fn store_results(self, store: &StoreOpaque, slots: &mut [ValRaw]) -> Result<(), Error>;
}

impl<T: WasmTy> WasmParams for T {
    const COUNT: usize = 1;
    fn valtypes() -> Vec<ValType> {
        vec![T::valtype()]
    }
    fn store(self, store: &StoreOpaque, slots: &mut [ValRaw]) -> Result<(), Error> {
        WasmTy::store(self, store, &mut slots[0])
    }
    fn load_params(store: &mut StoreOpaque, slots: &[ValRaw]) -> Self {
        T::load(store, &slots[0])
    }
}

impl<T: WasmTy> WasmResults for T {
    const COUNT: usize = 1;
    fn valtypes() -> Vec<ValType> {
        vec![T::valtype()]
    }
    fn load(store: &mut StoreOpaque, slots: &[ValRaw]) -> Self {
        T::load(store, &slots[0])
    }
    fn store_results(self, store: &StoreOpaque, slots: &mut [ValRaw]) -> Result<(), Error> {
        WasmTy::store(self, store, &mut slots[0])
    }
}

macro_rules! tuples {
    ($( ($($t:ident $n:tt),*) )*) => {$(
        impl<$($t: WasmTy),*> WasmParams for ($($t,)*) {
            const COUNT: usize = <[&str]>::len(&[$(stringify!($t)),*]);
            fn valtypes() -> Vec<ValType> {
                vec![$($t::valtype()),*]
            }
            #[allow(unused_variables)]
            fn store(self, store: &StoreOpaque, slots: &mut [ValRaw]) -> Result<(), Error> {
                $( WasmTy::store(self.$n, store, &mut slots[$n])?; )*
                Ok(())
            }
            #[allow(unused_variables, clippy::unused_unit)]
            fn load_params(store: &mut StoreOpaque, slots: &[ValRaw]) -> Self {
                ($($t::load(store, &slots[$n]),)*)
            }
        }
        impl<$($t: WasmTy),*> WasmResults for ($($t,)*) {
            const COUNT: usize = <[&str]>::len(&[$(stringify!($t)),*]);
            fn valtypes() -> Vec<ValType> {
                vec![$($t::valtype()),*]
            }
            #[allow(unused_variables, clippy::unused_unit)]
            fn load(store: &mut StoreOpaque, slots: &[ValRaw]) -> Self {
                ($($t::load(store, &slots[$n]),)*)
            }
            #[allow(unused_variables)]
            fn store_results(self, store: &StoreOpaque, slots: &mut [ValRaw]) -> Result<(), Error> {
                $( WasmTy::store(self.$n, store, &mut slots[$n])?; )*
                Ok(())
            }
        }
    )*};
}

tuples! {
    ()
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11)
}

/// What a host closure may return: results, or `Result<results, Error>`.
pub trait WasmRet: 'static {
    /// The results the closure returns on success.
    type Results: WasmResults;
    #[doc(hidden)]
    fn into_result(self) -> Result<Self::Results, Error>;
}

impl<R: WasmResults> WasmRet for R {
    type Results = R;
    fn into_result(self) -> Result<R, Error> {
        Ok(self)
    }
}

impl<R: WasmResults> WasmRet for Result<R, Error> {
    type Results = R;
    fn into_result(self) -> Result<R, Error> {
        self
    }
}

/// Host closures may return `anyhow::Result` (`anyhow` feature).
#[cfg(feature = "anyhow")]
impl<R: WasmResults> WasmRet for Result<R, anyhow::Error> {
    type Results = R;
    fn into_result(self) -> Result<R, Error> {
        self.map_err(Error::from_anyhow)
    }
}

/// Access to the store (and the calling instance's exports) from a host function.
pub struct Caller<'a, T> {
    pub(crate) store: &'a mut StoreInner<T>,
    pub(crate) caller_vmctx: *mut u8,
    /// Where the host call left Wasm (for snapshots); 0 if not called from Wasm.
    pub(crate) exit: HostExit,
}

/// The state of a Wasm→host call that a snapshot needs.
#[derive(Clone, Copy)]
pub(crate) struct HostExit {
    pub frame: ExitFrame,
    pub values: *mut ValRaw,
    pub context: *const HostFuncContext,
}

impl<T> Caller<'_, T> {
    /// The store's host data.
    pub fn data(&self) -> &T {
        &self.store.data
    }
    /// The store's host data, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.store.data
    }
    /// The engine of the calling store.
    pub fn engine(&self) -> &crate::Engine {
        &self.store.opaque.engine
    }

    /// Captures the Wasm execution state at this host call, so that a later
    /// [`Snapshot::restore`](crate::Snapshot::restore) (while the current call into Wasm is still running, on
    /// this thread) makes this host call return again, with other results.
    pub fn snapshot(&mut self) -> Result<crate::Snapshot, Error> {
        crate::checkpoint::take(self)
    }

    /// Every export of the instance that called this host function, in declaration
    /// order (empty when the caller is the host).
    pub fn exports(&mut self) -> Vec<(String, crate::Extern)> {
        match self
            .store
            .opaque
            .instance_by_vmctx
            .get(&(self.caller_vmctx as usize))
        {
            Some(&index) => crate::instance::exports_by_index(&mut self.store.opaque, index),
            None => Vec::new(),
        }
    }

    /// An export of the instance that called this host function (e.g. its `memory`).
    pub fn get_export(&mut self, name: &str) -> Option<crate::Extern> {
        let index = *self
            .store
            .opaque
            .instance_by_vmctx
            .get(&(self.caller_vmctx as usize))?;
        crate::instance::export_by_index(&mut self.store.opaque, index, name)
    }
}

// SAFETY: besides the store (whose data is `Send`), a `Caller` holds addresses
// of the calling instance's VMContext and of the host call's exit state (its
// value array and trampoline frame, on the stack of the running Wasm call). They
// belong to the exclusively borrowed store or to this host call's own Wasm
// frames, which stay put while it runs — also when an async call's fiber, with
// the future holding this `Caller`, resumes on another thread (docs/async.md).
unsafe impl<T: Send> Send for Caller<'_, T> {}

impl<T> AsContext for Caller<'_, T> {
    type Data = T;
    fn as_context(&self) -> crate::StoreContext<'_, T> {
        crate::StoreContext(self.store)
    }
}

impl<T> AsContextMut for Caller<'_, T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut(self.store)
    }
}

/// Runs a host closure for the Wasm→host trampoline and turns its outcome into the
/// runtime's protocol: 1 = results written; 0 = failed, with the error or panic
/// parked for `catch_traps`; 2 = a Wasm exception of this store to throw into the
/// Wasm caller (its address in the first value slot). A restore request for this very activation is carried
/// out here, after the closure and everything it owned are gone.
///
/// # Safety
/// `context` is a live `HostFuncContext` whose store has data type `T`; `values`
/// and `frame` are what the trampoline (and shim) passed.
pub(crate) unsafe fn enter_host<T>(
    context: *mut HostFuncContext,
    caller_vmctx: *mut u8,
    values: *mut ValRaw,
    frame: ExitFrame,
    body: impl FnOnce(Caller<'_, T>, &Arc<dyn Any + Send + Sync>) -> Result<(), Error>,
) -> u8 {
    // SAFETY: per the contract; the store pointer was set from the exclusive
    // borrow held by the host→Wasm call that is running us.
    let store_ptr = unsafe {
        (*(*context).store_context)
            .store
            .get()
            .read()
            .cast::<StoreInner<T>>()
    };
    let outcome = {
        // SAFETY: as above. The context (and the closure in it) lives as long as
        // the store, so it is borrowed, not cloned: no atomic traffic per call.
        let (store, closure) = unsafe { (&mut *store_ptr, &(*context).closure) };
        let exit = HostExit {
            frame,
            values,
            context,
        };
        catch_unwind(AssertUnwindSafe(|| {
            body(
                Caller {
                    store,
                    caller_vmctx,
                    exit,
                },
                closure,
            )
        }))
    };
    match outcome {
        Ok(Ok(())) => 1,
        // SAFETY: as above; the closure's borrow of the store has ended.
        Ok(Err(error)) => unsafe {
            host_error(&mut (*store_ptr).opaque, caller_vmctx, values, error)
        },
        Err(panic) => {
            traphandlers::set_pending_panic(panic);
            0
        }
    }
}

/// [`enter_host`]'s answer for a host call that returned an error, out of line so
/// that the successful call's path stays small (fewer registers to save).
///
/// # Safety
/// `values` is the trampoline's slot array (at least one slot); every Rust value
/// of the host call has been dropped.
#[cold]
#[inline(never)]
unsafe fn host_error(
    store: &mut StoreOpaque,
    caller_vmctx: *mut u8,
    values: *mut ValRaw,
    error: Error,
) -> u8 {
    if let Some(exn) = error.as_exception()
        && exn.store == store.id
        && !caller_vmctx.is_null()
    {
        // SAFETY: the trampoline passed `values` with at least one slot.
        unsafe { *values = ValRaw::ptr(exn.raw) };
        return 2;
    }
    match crate::checkpoint::resolve_request(store, error) {
        crate::checkpoint::Resolution::Propagate(error) => {
            traphandlers::set_pending_host_error(error.into_boxed());
            0
        }
        // SAFETY: every Rust value of this host call has been dropped; the
        // snapshot belongs to this thread's innermost activation (checked by
        // `resolve_request`), whose Wasm frames are below us.
        crate::checkpoint::Resolution::Restore(snapshot, results) => unsafe {
            wazerox_runtime::checkpoint::restore(snapshot, results)
        },
    }
}

/// A Rust closure usable as a host function.
pub trait IntoFunc<T, Params, Results>: Send + Sync + 'static {
    #[doc(hidden)]
    fn into_template(self) -> HostFuncTemplateBox;
}

/// Opaque wrapper so `HostFuncTemplate` stays crate-private.
#[doc(hidden)]
pub struct HostFuncTemplateBox(pub(crate) HostFuncTemplate);

impl HostFuncTemplateBox {
    fn into_func(self, store: &mut StoreOpaque) -> Result<Func, Error> {
        self.0.into_func(store)
    }
}

macro_rules! into_func {
    ($( ($($a:ident $n:tt),*) )*) => {$(
        impl<T: 'static, F, $($a: WasmTy,)* R: WasmRet> IntoFunc<T, (Caller<'static, T>, $($a,)*), R> for F
        where
            F: Fn(Caller<'_, T>, $($a),*) -> R + Send + Sync + 'static,
        {
            fn into_template(self) -> HostFuncTemplateBox {
                #[allow(unused_variables, unused_mut, non_snake_case)]
                unsafe extern "C" fn callback<T: 'static, F, $($a: WasmTy,)* R: WasmRet>(
                    context: *mut HostFuncContext,
                    caller_vmctx: *mut u8,
                    values: *mut ValRaw,
                    len: usize,
                    exit_sp: usize,
                    exit_fp: usize,
                ) -> u8
                where
                    F: Fn(Caller<'_, T>, $($a),*) -> R + Send + Sync + 'static,
                {
                    // SAFETY: the trampoline passes an array of `len` slots, sized
                    // for this function's params and results.
                    let slots = unsafe { std::slice::from_raw_parts_mut(values, len) };
                    // SAFETY: this callback is only installed for closures of type F
                    // in stores with data T.
                    unsafe {
                        let frame = ExitFrame { sp: exit_sp, fp: exit_fp };
                        enter_host::<T>(context, caller_vmctx, values, frame, |mut caller, closure| {
                            let values = slots;
                            // SAFETY: this callback is only ever installed together with a
                            // closure of type F (see below), so the data pointer is an F; the
                            // cast avoids `Any`'s virtual `type_id` call on every host call.
                            let f = &*(&**closure as *const (dyn Any + Send + Sync)).cast::<F>();
                            $( let $a = <$a as WasmTy>::load(&mut caller.store.opaque, &values[$n]); )*
                            let results = f(Caller { store: &mut *caller.store, caller_vmctx, exit: caller.exit }, $($a),*).into_result()?;
                            results.store_results(&caller.store.opaque, values)
                        })
                    }
                }
                let ty = FuncType::new(vec![$($a::valtype()),*], R::Results::valtypes());
                HostFuncTemplateBox(HostFuncTemplate {
                    ty,
                    callback: callback::<T, F, $($a,)* R>,
                    closure: Arc::new(self),
                })
            }
        }

        impl<T: 'static, F, $($a: WasmTy,)* R: WasmRet> IntoFunc<T, ($($a,)*), R> for F
        where
            F: Fn($($a),*) -> R + Send + Sync + 'static,
        {
            #[allow(non_snake_case)]
            fn into_template(self) -> HostFuncTemplateBox {
                let with_caller = move |_: Caller<'_, T>, $($a: $a),*| -> R { self($($a),*) };
                <_ as IntoFunc<T, (Caller<'static, T>, $($a,)*), R>>::into_template(with_caller)
            }
        }
    )*};
}

into_func! {
    ()
    (A1 0)
    (A1 0, A2 1)
    (A1 0, A2 1, A3 2)
    (A1 0, A2 1, A3 2, A4 3)
    (A1 0, A2 1, A3 2, A4 3, A5 4)
    (A1 0, A2 1, A3 2, A4 3, A5 4, A6 5)
    (A1 0, A2 1, A3 2, A4 3, A5 4, A6 5, A7 6)
    (A1 0, A2 1, A3 2, A4 3, A5 4, A6 5, A7 6, A8 7)
    (A1 0, A2 1, A3 2, A4 3, A5 4, A6 5, A7 6, A8 7, A9 8)
    (A1 0, A2 1, A3 2, A4 3, A5 4, A6 5, A7 6, A8 7, A9 8, A10 9)
}

pub(crate) fn template_into_func(
    template: HostFuncTemplateBox,
    store: &mut StoreOpaque,
) -> Result<Func, Error> {
    template.into_func(store)
}
