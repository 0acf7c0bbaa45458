//! Trampolines between the host's calling convention and Wasm's.
//!
//! - *array → Wasm* (host calls Wasm): `extern "C" fn(code, callee_vmctx,
//!   caller_vmctx, values)` loads each argument from a 16-byte slot of `values`,
//!   calls `code` with the Wasm convention, and writes the results back to `values`.
//!   One per function type, so the host needs no per-signature Rust code.
//! - *Wasm → host* (Wasm calls an imported host function): has the Wasm signature;
//!   spills the arguments into a stack array and calls the host callback stored at the
//!   start of the host function's context (its "vmctx"). A failed callback (error
//!   or panic, already recorded by the runtime) makes the trampoline trap with
//!   `HostError`, so no host frame is ever unwound by a jump. A callback that
//!   returns 2 threw a Wasm exception (its address in the first value slot): the
//!   trampoline calls the `Throw` builtin (through the caller's VMContext), which
//!   unwinds to a handler in the Wasm callers, after the host frames returned.

use crate::Compiler;
use cranelift_codegen::ir::{
    self, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, UserFuncName, types,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use target_lexicon::Architecture;
use wazerox_environ::{Builtin, FuncType, SignatureTrampolinesCode, TrapCode, VMOffsets};
use wazerox_frontend::signatures::{
    array_call_signature, builtin_signature, host_callback_signature, ir_type, wasm_signature,
};
use wazerox_frontend::trap::CraneliftTrapCode;

/// Size of one value slot in the arrays trampolines exchange with the host.
const SLOT: u32 = 16;

fn slot_flags() -> MemFlagsData {
    MemFlagsData::trusted().with_endianness(ir::Endianness::Little)
}

/// Lays out the two trampolines of one type in one code image.
pub(crate) fn link_signature_trampolines(
    array_call: crate::CompiledFunction,
    wasm_to_host: crate::CompiledFunction,
) -> SignatureTrampolinesCode {
    let mut code = array_call.code;
    let mut traps: Vec<(u32, TrapCode)> = array_call.traps;
    code.resize(code.len().next_multiple_of(16), 0);
    let second = code.len() as u32;
    code.extend_from_slice(&wasm_to_host.code);
    traps.extend(wasm_to_host.traps.iter().map(|&(o, c)| (o + second, c)));
    SignatureTrampolinesCode {
        code,
        array_call: 0,
        wasm_to_host: second,
        traps,
    }
}

pub(crate) fn array_to_wasm(compiler: &Compiler, ty: &FuncType) -> ir::Function {
    let call_conv = compiler.isa().default_call_conv();
    let mut func =
        ir::Function::with_name_signature(UserFuncName::default(), array_call_signature(call_conv));
    let mut context = FunctionBuilderContext::new();
    let mut builder = FunctionBuilder::new(&mut func, &mut context);
    let block = builder.create_block();
    builder.append_block_params_for_function_params(block);
    builder.switch_to_block(block);
    builder.seal_block(block);
    let [code, callee_vmctx, caller_vmctx, values] = builder.block_params(block)[..] else {
        unreachable!("array call signature has four params")
    };
    let mut args = vec![callee_vmctx, caller_vmctx];
    for (i, param) in ty.params().iter().enumerate() {
        let v = builder.ins().load(
            ir_type(*param),
            slot_flags(),
            values,
            (i as u32 * SLOT) as i32,
        );
        args.push(v);
    }
    let sig = builder.import_signature(wasm_signature(ty));
    let call = builder.ins().call_indirect(sig, code, &args);
    let results = builder.inst_results(call).to_vec();
    for (i, result) in results.into_iter().enumerate() {
        builder
            .ins()
            .store(slot_flags(), result, values, (i as u32 * SLOT) as i32);
    }
    builder.ins().return_(&[]);
    builder.finalize(compiler.isa().frontend_config());
    func
}

/// How the trampoline calls the host (the address at offset 0 of the host context),
/// and the exit frame it reports for checkpoints.
///
/// x86-64 with checkpoints: the callback is called directly, with a calling
/// convention under which the call clobbers every register (Cranelift's `winch`
/// convention: System V argument registers, nothing callee-saved). That makes the
/// trampoline's prologue save all callee-saved registers — the Wasm caller's state —
/// in its own frame, and keep nothing in registers across the call. A restore can then
/// resume right after the call with the saved stack bytes, the trampoline's frame
/// pointer and stack pointer alone: its epilogue reloads the callee-saved registers.
/// The trampoline passes that stack pointer (the return address sits just below it)
/// and frame pointer to the callback. The Rust callback preserves more registers than
/// the convention asks, which is allowed.
///
/// Without checkpoints (and on AArch64, where the runtime's assembly shim at offset 0
/// saves the registers and supplies the exit record itself) it is a plain call.
fn host_call_exit_frame(
    compiler: &Compiler,
    builder: &mut FunctionBuilder,
) -> (CallConv, ir::Value, ir::Value) {
    let call_conv = compiler.isa().default_call_conv();
    let direct_exit_frame =
        compiler.config.checkpoints && compiler.isa().triple().architecture == Architecture::X86_64;
    if direct_exit_frame {
        let sp = builder.ins().get_stack_pointer(types::I64);
        let fp = builder.ins().get_frame_pointer(types::I64);
        (CallConv::Winch, sp, fp)
    } else {
        let zero = builder.ins().iconst(types::I64, 0);
        (call_conv, zero, zero)
    }
}

pub(crate) fn wasm_to_host(compiler: &Compiler, ty: &FuncType) -> ir::Function {
    let mut func = ir::Function::with_name_signature(UserFuncName::default(), wasm_signature(ty));
    let mut context = FunctionBuilderContext::new();
    let mut builder = FunctionBuilder::new(&mut func, &mut context);
    let block = builder.create_block();
    builder.append_block_params_for_function_params(block);
    builder.switch_to_block(block);
    builder.seal_block(block);
    let params = builder.block_params(block).to_vec();
    let (host_ctx, caller_vmctx, wasm_args) = (params[0], params[1], &params[2..]);
    let slots = ty.params().len().max(ty.results().len()).max(1) as u32;
    let slot = builder.create_sized_stack_slot(StackSlotData::new(
        StackSlotKind::ExplicitSlot,
        slots * SLOT,
        4,
    ));
    let values = builder.ins().stack_addr(types::I64, slot, 0);
    for (i, arg) in wasm_args.iter().enumerate() {
        builder
            .ins()
            .store(slot_flags(), *arg, values, (i as u32 * SLOT) as i32);
    }
    let entry = builder
        .ins()
        .load(types::I64, MemFlagsData::trusted(), host_ctx, 0);
    let len = builder.ins().iconst(types::I64, i64::from(slots));
    let (callee_conv, exit_sp, exit_fp) = host_call_exit_frame(compiler, &mut builder);
    let sig = builder.import_signature(host_callback_signature(callee_conv));
    let call = builder.ins().call_indirect(
        sig,
        entry,
        &[host_ctx, caller_vmctx, values, len, exit_sp, exit_fp],
    );
    let ok = builder.inst_results(call)[0];
    let threw = builder.ins().icmp_imm_u(ir::condcodes::IntCC::Equal, ok, 2);
    let throw_block = builder.create_block();
    let returned = builder.create_block();
    builder.ins().brif(threw, throw_block, &[], returned, &[]);
    builder.seal_block(throw_block);
    builder.seal_block(returned);
    builder.switch_to_block(throw_block);
    let exn = builder.ins().load(types::I64, slot_flags(), values, 0);
    let table = builder.ins().load(
        types::I64,
        MemFlagsData::trusted(),
        caller_vmctx,
        VMOffsets::BUILTINS as i32,
    );
    let throw = builder.ins().load(
        types::I64,
        MemFlagsData::trusted(),
        table,
        (Builtin::Throw.index() * 8) as i32,
    );
    let throw_sig = builder.import_signature(builtin_signature(
        Builtin::Throw,
        compiler.isa().default_call_conv(),
    ));
    builder
        .ins()
        .call_indirect(throw_sig, throw, &[caller_vmctx, exn]);
    builder
        .ins()
        .trap(TrapCode::UnreachableCodeReached.to_cranelift());
    builder.switch_to_block(returned);
    builder.ins().trapz(ok, TrapCode::HostError.to_cranelift());
    let mut results = Vec::with_capacity(ty.results().len());
    for (i, result) in ty.results().iter().enumerate() {
        let v = builder.ins().load(
            ir_type(*result),
            slot_flags(),
            values,
            (i as u32 * SLOT) as i32,
        );
        results.push(v);
    }
    builder.ins().return_(&results);
    builder.finalize(compiler.isa().frontend_config());
    func
}
