//! Native signatures of Wasm functions and of the trampolines around them.

use cranelift_codegen::ir::{AbiParam, ArgumentPurpose, Signature, Type, types};
use cranelift_codegen::isa::CallConv;
use wazerox_environ::{Builtin, FuncType, ValType};

/// Calling convention of every Wasm function. `Tail` lets the callee pop its stack
/// arguments, which `return_call` needs, and returns any number of results.
pub const WASM_CALL_CONV: CallConv = CallConv::Tail;

/// Cranelift type of a Wasm value. References are pointer-sized: a `*const VMFuncRef`
/// for funcref, a store-local handle for externref, a `*const` exception object for
/// exnref.
pub fn ir_type(ty: ValType) -> Type {
    match ty {
        ValType::I32 => types::I32,
        ValType::I64 => types::I64,
        ValType::F32 => types::F32,
        ValType::F64 => types::F64,
        ValType::V128 => types::I8X16,
        ValType::Ref(_) => types::I64,
    }
}

/// `(callee_vmctx, caller_vmctx, params…) -> results…` with the Wasm convention.
/// The callee vmctx is marked as the VMContext so Cranelift's stack-limit check can
/// find the store context through it.
pub fn wasm_signature(ty: &FuncType) -> Signature {
    let mut sig = Signature::new(WASM_CALL_CONV);
    sig.params
        .push(AbiParam::special(types::I64, ArgumentPurpose::VMContext));
    sig.params.push(AbiParam::new(types::I64));
    sig.params
        .extend(ty.params().iter().map(|t| AbiParam::new(ir_type(*t))));
    sig.returns
        .extend(ty.results().iter().map(|t| AbiParam::new(ir_type(*t))));
    sig
}

/// Host → Wasm entry trampoline, one per function type:
/// `extern "C" fn(code, callee_vmctx, caller_vmctx, values: *mut ValRaw)`. It loads the
/// arguments from `values`, calls `code`, and stores the results back into `values`.
pub fn array_call_signature(call_conv: CallConv) -> Signature {
    let mut sig = Signature::new(call_conv);
    for _ in 0..4 {
        sig.params.push(AbiParam::new(types::I64));
    }
    sig
}

/// The Rust side of a Wasm → host call: `extern "C" fn(host_ctx, caller_vmctx,
/// values: *mut ValRaw, len, exit_sp, exit_fp) -> i8` (1 = ok). `exit_sp`/`exit_fp`
/// describe the caller's frame for checkpoints (see the compiler's trampolines).
pub fn host_callback_signature(call_conv: CallConv) -> Signature {
    let mut sig = Signature::new(call_conv);
    for _ in 0..6 {
        sig.params.push(AbiParam::new(types::I64));
    }
    sig.returns.push(AbiParam::new(types::I8));
    sig
}

/// The native signature (platform C ABI) of a runtime builtin: `vmctx` first, then
/// the builtin's own parameters.
pub fn builtin_signature(builtin: Builtin, call_conv: CallConv) -> Signature {
    let (params, results) = builtin.params_and_results();
    let mut sig = Signature::new(call_conv);
    sig.params.push(AbiParam::new(types::I64));
    sig.params
        .extend(params.iter().map(|t| AbiParam::new(ir_type(*t))));
    sig.returns
        .extend(results.iter().map(|t| AbiParam::new(ir_type(*t))));
    sig
}
