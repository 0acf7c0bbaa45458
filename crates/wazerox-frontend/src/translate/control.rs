//! Structured control flow, calls, locals and parametric operators.

use super::FuncTranslation;
use super::environ::readonly;
use super::exceptions::Callee;
use super::stack::FrameKind;
use crate::signatures::ir_type;
use crate::trap::CraneliftTrapCode;
use cranelift_codegen::ir::{self, BlockArg, BlockCall, InstBuilder, JumpTableData, types};
use wasmparser::{BlockType, Operator};
use wazerox_environ::parse::WasmError;
use wazerox_environ::types::{FuncIndex, TableIndex, TypeIndex, ValType};
use wazerox_environ::vmoffsets::{self, VMOffsets};
use wazerox_environ::{Builtin, TrapCode};

fn block_args(values: &[ir::Value]) -> Vec<BlockArg> {
    values.iter().map(|v| BlockArg::Value(*v)).collect()
}

/// How a call leaves its caller.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    /// `call*`: the caller's frame stays; the results are pushed on its stack.
    Call,
    /// `return_call*`: the callee replaces the caller's frame (Cranelift's
    /// `return_call` under the `tail` convention) and returns to the caller's caller.
    Tail,
}

impl FuncTranslation<'_, '_> {
    pub(crate) fn block_signature(&self, ty: BlockType) -> (Vec<ValType>, Vec<ValType>) {
        match ty {
            BlockType::Empty => (vec![], vec![]),
            BlockType::Type(t) => (vec![], vec![wazerox_environ::parse::val_type(t)]),
            BlockType::FuncType(index) => {
                let f = &self.env.module.types[index as usize];
                (f.params().to_vec(), f.results().to_vec())
            }
        }
    }

    pub(crate) fn block_with_params(&mut self, tys: &[ValType]) -> ir::Block {
        let block = self.builder.create_block();
        for t in tys {
            self.builder.append_block_param(block, ir_type(*t));
        }
        block
    }

    fn jump(&mut self, target: ir::Block, args: &[ir::Value]) {
        let args = block_args(args);
        self.builder.ins().jump(target, &args);
    }

    /// Operators seen while the current position is unreachable: only nesting
    /// matters until the `else`/`end` that makes code reachable again.
    pub(crate) fn translate_unreachable_operator(
        &mut self,
        op: &Operator<'_>,
    ) -> Result<(), WasmError> {
        match op {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::TryTable { .. }
            | Operator::Try { .. } => {
                self.unreachable_depth += 1;
            }
            Operator::Else if self.unreachable_depth == 0 => self.translate_else(),
            Operator::Catch { .. } | Operator::CatchAll | Operator::Delegate { .. }
                if self.unreachable_depth == 0 =>
            {
                self.translate_exception(op)?;
            }
            Operator::End if self.unreachable_depth == 0 => self.translate_end(),
            Operator::End | Operator::Delegate { .. } => self.unreachable_depth -= 1,
            _ => {}
        }
        Ok(())
    }

    fn translate_else(&mut self) {
        let reachable = self.reachable;
        let frame = self.control.top_mut();
        let FrameKind::If {
            else_block,
            ref mut else_seen,
        } = frame.kind
        else {
            unreachable!("validated: else without if")
        };
        *else_seen = true;
        let destination = frame.destination;
        let num_results = frame.num_results;
        let stack_height = frame.stack_height;
        if reachable {
            frame.exit_reachable = true;
            let results = self.popn(num_results);
            self.jump(destination, &results);
        }
        self.stack.truncate(stack_height);
        self.builder.switch_to_block(else_block);
        let params = self.builder.block_params(else_block).to_vec();
        self.stack.extend(params);
        self.reachable = true;
    }

    pub(crate) fn translate_end(&mut self) {
        let reachable = self.reachable;
        let mut frame = self.control.pop();
        if reachable {
            let results = self.popn(frame.num_results);
            self.jump(frame.destination, &results);
            frame.exit_reachable = true;
        }
        match frame.kind {
            FrameKind::If {
                else_block,
                else_seen: false,
            } => {
                // No else arm: the false path carries the params straight to the end.
                self.builder.switch_to_block(else_block);
                let params = self.builder.block_params(else_block).to_vec();
                self.jump(frame.destination, &params);
                frame.exit_reachable = true;
            }
            FrameKind::Loop { header } => self.builder.seal_block(header),
            FrameKind::TryTable {
                landing,
                ref catches,
            } => self.end_try_table(landing, catches),
            FrameKind::LegacyTry { landing, catching } => self.end_legacy_try(landing, catching),
            _ => {}
        }
        self.stack.truncate(frame.stack_height);
        self.builder.switch_to_block(frame.destination);
        self.builder.seal_block(frame.destination);
        let results = self.builder.block_params(frame.destination).to_vec();
        self.stack.extend(results);
        self.reachable = frame.exit_reachable;
    }

    /// The block a branch of `depth` jumps to and the values it carries (the top of
    /// the operand stack); marks the target's exit as reachable.
    fn branch_target(&mut self, depth: u32) -> (ir::Block, Vec<BlockArg>) {
        let frame = self.control.frame_mut(depth);
        frame.exit_reachable |= !matches!(frame.kind, FrameKind::Loop { .. });
        let (target, arity) = frame.branch_target();
        (target, block_args(&self.stack[self.stack.len() - arity..]))
    }

    fn branch_call(&mut self, depth: u32) -> BlockCall {
        let (target, args) = self.branch_target(depth);
        BlockCall::new(target, args, &mut self.builder.func.dfg.value_lists)
    }

    pub(crate) fn translate_control(&mut self, op: &Operator<'_>) -> Result<bool, WasmError> {
        match op {
            Operator::Nop => {}
            Operator::Unreachable => {
                self.builder
                    .ins()
                    .trap(TrapCode::UnreachableCodeReached.to_cranelift());
                self.reachable = false;
            }
            Operator::Block { blockty } => {
                let (params, results) = self.block_signature(*blockty);
                let destination = self.block_with_params(&results);
                let height = self.stack.len() - params.len();
                self.control
                    .push_block(destination, params.len(), results.len(), height);
            }
            Operator::Loop { blockty } => {
                let (params, results) = self.block_signature(*blockty);
                let header = self.block_with_params(&params);
                let destination = self.block_with_params(&results);
                let args = self.popn(params.len());
                self.jump(header, &args);
                self.builder.switch_to_block(header);
                self.interruption_check();
                let height = self.stack.len();
                self.stack
                    .extend(self.builder.block_params(header).to_vec());
                self.control.push(
                    FrameKind::Loop { header },
                    destination,
                    params.len(),
                    results.len(),
                    height,
                );
            }
            Operator::If { blockty } => {
                let (params, results) = self.block_signature(*blockty);
                let condition = self.pop1();
                let then_block = self.block_with_params(&params);
                let else_block = self.block_with_params(&params);
                let destination = self.block_with_params(&results);
                let args = block_args(&self.popn(params.len()));
                self.builder
                    .ins()
                    .brif(condition, then_block, &args, else_block, &args);
                self.builder.seal_block(then_block);
                self.builder.seal_block(else_block);
                self.builder.switch_to_block(then_block);
                let height = self.stack.len();
                self.stack
                    .extend(self.builder.block_params(then_block).to_vec());
                self.control.push(
                    FrameKind::If {
                        else_block,
                        else_seen: false,
                    },
                    destination,
                    params.len(),
                    results.len(),
                    height,
                );
            }
            Operator::Else => self.translate_else(),
            Operator::End => self.translate_end(),
            Operator::Br { relative_depth } => {
                let (target, args) = self.branch_target(*relative_depth);
                self.builder.ins().jump(target, &args);
                self.reachable = false;
            }
            Operator::BrIf { relative_depth } => {
                let condition = self.pop1();
                let next = self.builder.create_block();
                let (target, args) = self.branch_target(*relative_depth);
                self.builder.ins().brif(condition, target, &args, next, &[]);
                self.builder.seal_block(next);
                self.builder.switch_to_block(next);
            }
            Operator::BrTable { targets } => {
                let index = self.pop1();
                let mut table = Vec::with_capacity(targets.len() as usize);
                for depth in targets.targets() {
                    let depth = depth.map_err(|e| {
                        WasmError::from_reader(wazerox_environ::parse::WasmErrorKind::Decode, e)
                    })?;
                    table.push(self.branch_call(depth));
                }
                let default = self.branch_call(targets.default());
                let jt = self
                    .builder
                    .create_jump_table(JumpTableData::new(default, &table));
                self.builder.ins().br_table(index, jt);
                self.reachable = false;
            }
            Operator::Return => {
                let num_results = self
                    .control
                    .frame_mut(self.control.len() as u32 - 1)
                    .num_results;
                let results = self.popn(num_results);
                self.builder.ins().return_(&results);
                self.reachable = false;
            }
            Operator::Call { function_index } => {
                self.translate_call(FuncIndex(*function_index), CallKind::Call)
            }
            Operator::CallIndirect {
                type_index,
                table_index,
            } => self.translate_call_indirect(
                TypeIndex(*type_index),
                TableIndex(*table_index),
                CallKind::Call,
            ),
            Operator::ReturnCall { function_index } => {
                self.translate_call(FuncIndex(*function_index), CallKind::Tail)
            }
            Operator::ReturnCallIndirect {
                type_index,
                table_index,
            } => self.translate_call_indirect(
                TypeIndex(*type_index),
                TableIndex(*table_index),
                CallKind::Tail,
            ),
            Operator::CallRef { type_index } => {
                self.translate_call_ref(TypeIndex(*type_index), CallKind::Call)
            }
            Operator::ReturnCallRef { type_index } => {
                self.translate_call_ref(TypeIndex(*type_index), CallKind::Tail)
            }
            Operator::BrOnNull { relative_depth } => {
                // The reference stays on the stack when not null; the branch
                // carries the values below it.
                let reference = self.pop1();
                let next = self.builder.create_block();
                let (target, args) = self.branch_target(*relative_depth);
                self.builder.ins().brif(reference, next, &[], target, &args);
                self.builder.seal_block(next);
                self.builder.switch_to_block(next);
                self.push1(reference);
            }
            Operator::BrOnNonNull { relative_depth } => {
                // The branch carries the reference (the target's last value); a
                // null one is dropped and execution falls through.
                let reference = *self.stack.last().expect("validated");
                let next = self.builder.create_block();
                let (target, args) = self.branch_target(*relative_depth);
                self.builder.ins().brif(reference, target, &args, next, &[]);
                self.builder.seal_block(next);
                self.builder.switch_to_block(next);
                self.pop1();
            }
            Operator::BrOnCast {
                relative_depth,
                to_ref_type,
                ..
            }
            | Operator::BrOnCastFail {
                relative_depth,
                to_ref_type,
                ..
            } => {
                // The reference stays on the stack on both paths (validation
                // types it as the target type on the branch of `br_on_cast`
                // and on the fall-through of `br_on_cast_fail`).
                let reference = *self.stack.last().expect("validated");
                let target_type = wazerox_environ::parse::ref_type(*to_ref_type);
                let matches = self.ref_test(reference, target_type);
                let next = self.builder.create_block();
                let (target, args) = self.branch_target(*relative_depth);
                if matches!(op, Operator::BrOnCast { .. }) {
                    self.builder.ins().brif(matches, target, &args, next, &[]);
                } else {
                    self.builder.ins().brif(matches, next, &[], target, &args);
                }
                self.builder.seal_block(next);
                self.builder.switch_to_block(next);
            }
            Operator::Drop => {
                self.pop1();
            }
            Operator::Select | Operator::TypedSelect { .. } => {
                let (a, b, c) = self.pop3();
                let v = self.builder.ins().select(c, a, b);
                self.push1(v);
            }
            Operator::LocalGet { local_index } => {
                let v = self.builder.use_var(self.locals[*local_index as usize].0);
                self.push1(v);
            }
            Operator::LocalSet { local_index } => {
                let v = self.pop1();
                self.builder
                    .def_var(self.locals[*local_index as usize].0, v);
            }
            Operator::LocalTee { local_index } => {
                let v = *self.stack.last().expect("validated");
                self.builder
                    .def_var(self.locals[*local_index as usize].0, v);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Calls `code` (a function of type `sig` under the Wasm convention) with
    /// `args` (`callee_vmctx, caller_vmctx, params…`): an ordinary call whose results
    /// go on the stack, or a tail call that ends this function.
    fn finish_indirect_call(
        &mut self,
        kind: CallKind,
        sig: ir::SigRef,
        code: ir::Value,
        args: &[ir::Value],
    ) {
        match kind {
            CallKind::Call => {
                let results = self.emit_wasm_call(Callee::Indirect(sig, code), args);
                self.stack.extend(results);
            }
            CallKind::Tail => {
                self.builder.ins().return_call_indirect(sig, code, args);
                self.reachable = false;
            }
        }
    }

    fn translate_call(&mut self, func: FuncIndex, kind: CallKind) {
        let num_params = self.env.module.func_type(func).params().len();
        let params = self.popn(num_params);
        let vmctx = self.env.vmctx();
        if self.env.module.is_imported_function(func) {
            // Imports are called through the copy of their VMFuncRef in our VMContext.
            let func_ref = self.env.offsets.func_ref(func);
            let code = self.builder.ins().load(
                types::I64,
                readonly(),
                vmctx,
                (func_ref + vmoffsets::VMFUNCREF_WASM_CALL) as i32,
            );
            let callee_vmctx = self.builder.ins().load(
                types::I64,
                readonly(),
                vmctx,
                (func_ref + vmoffsets::VMFUNCREF_VMCTX) as i32,
            );
            let sig = self
                .env
                .signature(&mut self.builder, self.env.module.functions[func.index()]);
            let mut args = vec![callee_vmctx, vmctx];
            args.extend(params);
            self.finish_indirect_call(kind, sig, code, &args);
        } else if self.env.config.lazy_calls {
            // Lazy compilation: the callee lives in its own code image (or is not
            // compiled yet: then the reference holds its stub), found through our
            // VMContext's reference to it (docs/lazy-compilation.md).
            // Not `readonly`: the resolution stores the code address there.
            let code = self.builder.ins().load(
                types::I64,
                super::environ::trusted(),
                vmctx,
                (self.env.offsets.func_ref(func) + vmoffsets::VMFUNCREF_WASM_CALL) as i32,
            );
            let sig = self
                .env
                .signature(&mut self.builder, self.env.module.functions[func.index()]);
            let mut args = vec![vmctx, vmctx];
            args.extend(params);
            self.finish_indirect_call(kind, sig, code, &args);
        } else {
            let callee = self.env.direct_callee(&mut self.builder, func);
            let mut args = vec![vmctx, vmctx];
            args.extend(params);
            match kind {
                CallKind::Call => {
                    let may_throw = self.env.module.may_throw(func);
                    let results = self.emit_wasm_call(Callee::Direct(callee, may_throw), &args);
                    self.stack.extend(results);
                }
                CallKind::Tail => {
                    self.builder.ins().return_call(callee, &args);
                    self.reachable = false;
                }
            }
        }
    }

    /// `call_ref`/`return_call_ref`: the popped reference is a `*const VMFuncRef`
    /// whose type validation already proved to be `ty` (or a subtype), so only
    /// null needs a check.
    fn translate_call_ref(&mut self, ty: TypeIndex, kind: CallKind) {
        let num_params = self.env.module.types[ty.index()].params().len();
        let func_ref = self.pop1();
        let params = self.popn(num_params);
        self.builder
            .ins()
            .trapz(func_ref, TrapCode::NullReference.to_cranelift());
        self.call_func_ref(ty, func_ref, params, kind);
    }

    /// Calls through a non-null `VMFuncRef` of type `ty`.
    fn call_func_ref(
        &mut self,
        ty: TypeIndex,
        func_ref: ir::Value,
        params: Vec<ir::Value>,
        kind: CallKind,
    ) {
        let code = self.builder.ins().load(
            types::I64,
            super::environ::trusted(),
            func_ref,
            vmoffsets::VMFUNCREF_WASM_CALL as i32,
        );
        let callee_vmctx = self.builder.ins().load(
            types::I64,
            super::environ::trusted(),
            func_ref,
            vmoffsets::VMFUNCREF_VMCTX as i32,
        );
        let sig = self.env.signature(&mut self.builder, ty);
        let mut args = vec![callee_vmctx, self.env.vmctx()];
        args.extend(params);
        self.finish_indirect_call(kind, sig, code, &args);
    }

    fn translate_call_indirect(&mut self, ty: TypeIndex, table: TableIndex, kind: CallKind) {
        let num_params = self.env.module.types[ty.index()].params().len();
        let index = self.pop1();
        let params = self.popn(num_params);
        let func_ref = self.table_element_address(table, index);
        let func_ref = self
            .builder
            .ins()
            .load(types::I64, super::environ::trusted(), func_ref, 0);
        self.builder
            .ins()
            .trapz(func_ref, TrapCode::IndirectCallToNull.to_cranelift());
        let type_ids = self
            .env
            .load_vmctx_ptr(&mut self.builder, VMOffsets::TYPE_IDS);
        let expected = self
            .builder
            .ins()
            .load(types::I32, readonly(), type_ids, (ty.0 * 4) as i32);
        let actual = self.builder.ins().load(
            types::I32,
            super::environ::trusted(),
            func_ref,
            vmoffsets::VMFUNCREF_TYPE_ID as i32,
        );
        let mismatch = self
            .builder
            .ins()
            .icmp(ir::condcodes::IntCC::NotEqual, expected, actual);
        let may_have_subtypes = self
            .env
            .module
            .subtypes
            .get(ty.index())
            .is_some_and(|s| !s.is_final);
        if may_have_subtypes {
            // A declared subtype (GC) has another id: ask the engine's registry.
            let slow = self.builder.create_block();
            let checked = self.builder.create_block();
            self.builder.ins().brif(mismatch, slow, &[], checked, &[]);
            self.builder.seal_block(slow);
            self.builder.switch_to_block(slow);
            self.call_failing_builtin(
                Builtin::IsSubtype,
                &[actual, expected],
                TrapCode::BadSignature,
            );
            self.builder.ins().jump(checked, &[]);
            self.builder.seal_block(checked);
            self.builder.switch_to_block(checked);
        } else {
            self.builder
                .ins()
                .trapnz(mismatch, TrapCode::BadSignature.to_cranelift());
        }
        self.call_func_ref(ty, func_ref, params, kind);
    }
}
