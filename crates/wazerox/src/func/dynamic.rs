//! Host functions with a signature chosen at run time (`Func::new`,
//! `Linker::func_new`): the closure sees `&[Val]` parameters and fills a
//! `&mut [Val]` of results.
//!
//! The callback is monomorphic in the closure's type, so the closure is called
//! directly (no `dyn` dispatch). What a call needs to know about the signature
//! is computed once, when the function is defined: for an all-number signature
//! of at most [`STACK_VALUES`] parameters and results, the `Val`s are built in a
//! stack array straight from the raw slots and read back with one tag check
//! each, and nothing is dropped (numbers own nothing). Other signatures take
//! the general path through the store's reusable `dynamic_values` buffer.

use super::{
    Caller, HostCallback, HostFuncContext, HostFuncTemplate, enter_host, val_from_raw, val_to_raw,
};
use crate::error::{Error, ErrorKind};
use crate::store::StoreOpaque;
use crate::values::Val;
use std::any::Any;
use std::mem::MaybeUninit;
use std::sync::Arc;
use wazerox_environ::{FuncType, ValType};
use wazerox_runtime::checkpoint::ExitFrame;
use wazerox_runtime::vmcontext::ValRaw;

/// Largest number-only signature (parameters plus results) whose values are
/// built on the stack.
const STACK_VALUES: usize = 16;

/// A numeric value type, as the fast path dispatches on it.
#[derive(Clone, Copy)]
enum NumKind {
    I32,
    I64,
    F32,
    F64,
}

impl NumKind {
    fn of(ty: ValType) -> Option<NumKind> {
        match ty {
            ValType::I32 => Some(NumKind::I32),
            ValType::I64 => Some(NumKind::I64),
            ValType::F32 => Some(NumKind::F32),
            ValType::F64 => Some(NumKind::F64),
            ValType::V128 | ValType::Ref(_) => None,
        }
    }

    #[inline(always)]
    fn load(self, raw: &ValRaw) -> Val {
        match self {
            NumKind::I32 => Val::I32(raw.get_i32()),
            NumKind::I64 => Val::I64(raw.get_i64()),
            NumKind::F32 => Val::F32(raw.get_f32()),
            NumKind::F64 => Val::F64(raw.get_f64()),
        }
    }

    #[inline(always)]
    fn zero(self) -> Val {
        match self {
            NumKind::I32 => Val::I32(0),
            NumKind::I64 => Val::I64(0),
            NumKind::F32 => Val::F32(0),
            NumKind::F64 => Val::F64(0),
        }
    }

    /// The raw slot for `value` if it is of this kind.
    #[inline(always)]
    fn store(self, value: &Val) -> Option<ValRaw> {
        match (self, value) {
            (NumKind::I32, Val::I32(v)) => Some(ValRaw::i32(*v)),
            (NumKind::I64, Val::I64(v)) => Some(ValRaw::i64(*v)),
            (NumKind::F32, Val::F32(v)) => Some(ValRaw::f32(*v)),
            (NumKind::F64, Val::F64(v)) => Some(ValRaw::f64(*v)),
            _ => None,
        }
    }
}

/// A dynamic host function as its context holds it: the closure and what its
/// calls need to know about the signature, computed once.
struct DynamicHost<F> {
    /// Parameter kinds then result kinds, when the signature has only numbers
    /// and at most [`STACK_VALUES`] of them (`numeric`); unused otherwise.
    kinds: [NumKind; STACK_VALUES],
    numeric: bool,
    params: usize,
    results: usize,
    func: F,
}

impl<F> DynamicHost<F> {
    /// The closure, from the context's type-erased pointer.
    ///
    /// # Safety
    /// `closure` was created by [`dynamic_template`] for closure type F.
    #[inline(always)]
    unsafe fn from_context(closure: &Arc<dyn Any + Send + Sync>) -> &DynamicHost<F> {
        // SAFETY: per the contract; the cast skips `Any`'s virtual `type_id` call.
        unsafe { &*(&**closure as *const (dyn Any + Send + Sync)).cast::<DynamicHost<F>>() }
    }
}

/// The callback for an all-number signature of exactly `P` parameters and `R`
/// results, chosen when the function is defined (see [`callback_for`]).
unsafe extern "C" fn fixed_callback<T: 'static, F, const P: usize, const R: usize>(
    context: *mut HostFuncContext,
    caller_vmctx: *mut u8,
    values: *mut ValRaw,
    len: usize,
    exit_sp: usize,
    exit_fp: usize,
) -> u8
where
    F: Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync + 'static,
{
    // SAFETY: the trampoline passes `len` slots; this callback is only installed
    // (by `callback_for`) with a `DynamicHost<F>` of P number parameters and R
    // number results, in a store with data T.
    unsafe {
        let slots = std::slice::from_raw_parts_mut(values, len);
        let frame = ExitFrame {
            sp: exit_sp,
            fp: exit_fp,
        };
        enter_host::<T>(context, caller_vmctx, values, frame, |caller, closure| {
            let host = DynamicHost::<F>::from_context(closure);
            call_fixed::<T, F, P, R>(&host.func, &host.kinds, caller, slots)
        })
    }
}

/// The general callback: any signature, dispatching on it per call.
unsafe extern "C" fn general_callback<T: 'static, F>(
    context: *mut HostFuncContext,
    caller_vmctx: *mut u8,
    values: *mut ValRaw,
    len: usize,
    exit_sp: usize,
    exit_fp: usize,
) -> u8
where
    F: Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync + 'static,
{
    // SAFETY: the trampoline passes `len` slots; this callback is only installed
    // with a `DynamicHost<F>` closure in a store with data T. The context lives
    // (boxed, unmoved) as long as the store, so its type is borrowed for the
    // call, not cloned.
    unsafe {
        let slots = std::slice::from_raw_parts_mut(values, len);
        let ty: &FuncType = &(*context).ty;
        let frame = ExitFrame {
            sp: exit_sp,
            fp: exit_fp,
        };
        enter_host::<T>(context, caller_vmctx, values, frame, |caller, closure| {
            let host = DynamicHost::<F>::from_context(closure);
            if host.numeric {
                let kinds = &host.kinds[..host.params + host.results];
                call_numeric(&host.func, kinds, host.params, caller, slots)
            } else {
                call_general(&host.func, ty, caller, slots)
            }
        })
    }
}

/// The callback for a signature: a fixed-arity one for the common small
/// all-number signatures (each a separate instantiation, so its loops unroll
/// and its values sit in registers or two small arrays), else the general one.
fn callback_for<T: 'static, F>(numeric: bool, params: usize, results: usize) -> HostCallback
where
    F: Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync + 'static,
{
    macro_rules! fixed {
        ($(($p:literal, $r:literal))*) => {
            match (params, results) {
                $(($p, $r) if numeric => fixed_callback::<T, F, $p, $r>,)*
                _ => general_callback::<T, F>,
            }
        };
    }
    fixed! {
        (0, 0) (1, 0) (2, 0) (3, 0) (4, 0)
        (0, 1) (1, 1) (2, 1) (3, 1) (4, 1)
    }
}

pub(crate) fn dynamic_template<T: 'static, F>(ty: FuncType, func: F) -> HostFuncTemplate
where
    F: Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync + 'static,
{
    let (params, results) = (ty.params().len(), ty.results().len());
    let mut kinds = [NumKind::I32; STACK_VALUES];
    let numeric = params + results <= STACK_VALUES
        && ty
            .params()
            .iter()
            .chain(ty.results())
            .zip(kinds.iter_mut())
            .all(|(t, kind)| NumKind::of(*t).map(|k| *kind = k).is_some());
    HostFuncTemplate {
        callback: callback_for::<T, F>(numeric, params, results),
        ty,
        closure: Arc::new(DynamicHost {
            kinds,
            numeric,
            params,
            results,
            func,
        }),
    }
}

/// The fixed-arity path: `P` parameters and `R` results, all numbers.
#[inline(always)]
fn call_fixed<T, F, const P: usize, const R: usize>(
    f: &F,
    kinds: &[NumKind; STACK_VALUES],
    caller: Caller<'_, T>,
    slots: &mut [ValRaw],
) -> Result<(), Error>
where
    F: Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<(), Error>,
{
    // The trampoline passes max(P, R) slots; one check here spares one per value.
    assert!(slots.len() >= P && slots.len() >= R);
    let params: [Val; P] = std::array::from_fn(|i| kinds[i].load(&slots[i]));
    let mut results: [Val; R] = std::array::from_fn(|i| kinds[P + i].zero());
    f(caller, &params, &mut results)?;
    for (i, value) in results.iter().enumerate() {
        match kinds[P + i].store(value) {
            Some(raw) => slots[i] = raw,
            // `results` drops whatever the closure stored.
            None => return Err(wrong_result(value, ValType::from(kinds[P + i]))),
        }
    }
    // Every value is a number (parameters cannot be replaced through `&[Val]`,
    // results were just checked): nothing to drop.
    std::mem::forget(params);
    std::mem::forget(results);
    Ok(())
}

/// Drops the first `len` values of a stack array when a call ends early (error
/// return or unwinding panic), in case the closure stored references among its
/// results; forgotten on success, when every value is a number.
struct InitializedValues {
    first: *mut Val,
    len: usize,
}

impl Drop for InitializedValues {
    fn drop(&mut self) {
        // SAFETY: `first..first + len` are initialized `Val`s of a stack array
        // that outlives this guard, and no slice over them is used after it.
        unsafe { std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(self.first, self.len)) }
    }
}

/// The fast path: an all-number signature, values on the stack.
#[inline(always)]
fn call_numeric<T, F>(
    f: &F,
    kinds: &[NumKind],
    params: usize,
    caller: Caller<'_, T>,
    slots: &mut [ValRaw],
) -> Result<(), Error>
where
    F: Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<(), Error>,
{
    let mut storage = [const { MaybeUninit::<Val>::uninit() }; STACK_VALUES];
    let (param_kinds, result_kinds) = kinds.split_at(params);
    for ((cell, kind), raw) in storage.iter_mut().zip(param_kinds).zip(slots.iter()) {
        cell.write(kind.load(raw));
    }
    for (cell, kind) in storage[params..].iter_mut().zip(result_kinds) {
        cell.write(kind.zero());
    }
    let first = storage.as_mut_ptr().cast::<Val>();
    let guard = InitializedValues {
        first,
        len: kinds.len(),
    };
    // SAFETY: the first `kinds.len()` (≤ STACK_VALUES, checked when the function
    // was defined) cells were just written.
    let values = unsafe { std::slice::from_raw_parts_mut(first, kinds.len()) };
    let (param_values, result_values) = values.split_at_mut(params);
    f(caller, param_values, result_values)?;
    for ((value, kind), slot) in result_values.iter().zip(result_kinds).zip(slots.iter_mut()) {
        match kind.store(value) {
            Some(raw) => *slot = raw,
            // The guard drops whatever the closure stored.
            None => return Err(wrong_result(value, ValType::from(*kind))),
        }
    }
    // Every value is a number again: nothing to drop.
    std::mem::forget(guard);
    Ok(())
}

impl From<NumKind> for ValType {
    fn from(kind: NumKind) -> ValType {
        match kind {
            NumKind::I32 => ValType::I32,
            NumKind::I64 => ValType::I64,
            NumKind::F32 => ValType::F32,
            NumKind::F64 => ValType::F64,
        }
    }
}

#[cold]
fn wrong_result(value: &Val, expected: ValType) -> Error {
    Error::with_kind(
        ErrorKind::Host,
        format!(
            "host function returned {} where {expected} was expected",
            value.ty()
        ),
    )
}

/// A dynamic host function's result in its slot, after the type check.
fn checked_result_to_raw(
    store: &StoreOpaque,
    value: &Val,
    expected: ValType,
) -> Result<ValRaw, Error> {
    if !value.matches_ty(store, expected) {
        return Err(wrong_result(value, expected));
    }
    val_to_raw(store, value)
}

/// The general path (references, vectors, long signatures): parameters and
/// results live in the store's reusable `dynamic_values` buffer (taken out for
/// the call, so a nested host call gets its own and nothing aliases), so a call
/// allocates nothing once the buffer has grown to the largest signature used.
fn call_general<T, F>(
    f: &F,
    ty: &FuncType,
    caller: Caller<'_, T>,
    slots: &mut [ValRaw],
) -> Result<(), Error>
where
    F: Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<(), Error>,
{
    let Caller {
        store,
        caller_vmctx,
        exit,
    } = caller;
    let mut buffer = std::mem::take(&mut store.opaque.dynamic_values);
    let outcome = (|| {
        for (t, raw) in ty.params().iter().zip(slots.iter()) {
            buffer.push(match NumKind::of(*t) {
                Some(kind) => kind.load(raw),
                None => val_from_raw(&mut store.opaque, *t, raw)?,
            });
        }
        buffer.extend(ty.results().iter().map(|t| Val::default_for(*t)));
        let (params, results) = buffer.split_at_mut(ty.params().len());
        f(
            Caller {
                store: &mut *store,
                caller_vmctx,
                exit,
            },
            params,
            results,
        )?;
        for ((value, expected), slot) in results.iter().zip(ty.results()).zip(slots.iter_mut()) {
            *slot = checked_result_to_raw(&store.opaque, value, *expected)?;
        }
        Ok(())
    })();
    buffer.clear();
    store.opaque.dynamic_values = buffer;
    outcome
}
