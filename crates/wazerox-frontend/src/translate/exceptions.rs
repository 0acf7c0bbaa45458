//! Exception handling: tags, `throw`, `throw_ref`, `try_table` (the exnref
//! encoding) and the legacy `try`/`catch`/`catch_all`/`delegate`/`rethrow`,
//! translated onto one mechanism.
//!
//! - The body of a `try_table` or `try` is a *handler scope* with a landing block
//!   taking the exception object. Calls made in the scope are Cranelift
//!   `try_call`s whose only exceptional edge (a catch-all entry of the exception
//!   table) goes to that landing block; calls outside any scope are plain calls.
//!   Nothing runs when nothing throws: the cost is in the tables, not the code.
//! - A `throw` inside a scope of the same function is a jump to the landing block;
//!   outside, it calls the `Throw` builtin, which walks the frame-pointer chain to
//!   the nearest call site with a landing block and resumes there.
//! - The landing block dispatches: it compares the exception's tag identity with
//!   each clause's tag (read from the VMContext, so imported tags compare by
//!   identity), loads the payload, and branches to the clause's label. An
//!   exception no clause takes goes on to the enclosing scope's landing block or,
//!   when there is none, to the caller through `Throw`.
//! - Legacy `try` uses the same landing block; each `catch` adds one test of the
//!   dispatch chain, `delegate` forwards to the scope that protects its target
//!   label, `rethrow` throws the exception a `catch` of an enclosing `try` holds.

use super::FuncTranslation;
use super::environ::trusted;
use super::stack::{FrameKind, HandlerScope};
use crate::signatures::ir_type;
use crate::trap::CraneliftTrapCode;
use cranelift_codegen::ir::{
    self, BlockArg, BlockCall, ExceptionTableData, ExceptionTableItem, InstBuilder, types,
};
use wasmparser::{Catch, Operator};
use wazerox_environ::parse::WasmError;
use wazerox_environ::types::TagIndex;
use wazerox_environ::vmoffsets::{VMEXN_ESCAPED, VMEXN_SLOT, VMEXN_TAG, VMEXN_VALUES};
use wazerox_environ::{Builtin, RefKind, TrapCode, ValType};

/// The callee of a call that may be a `try_call`.
pub(crate) enum Callee {
    /// A function of this module, and whether it may throw.
    Direct(ir::FuncRef, bool),
    Indirect(ir::SigRef, ir::Value),
}

impl FuncTranslation<'_, '_> {
    pub(crate) fn translate_exception(&mut self, op: &Operator<'_>) -> Result<bool, WasmError> {
        match op {
            Operator::TryTable { try_table } => {
                let catches = try_table.catches.clone();
                self.open_handler_scope(try_table.ty, |landing| FrameKind::TryTable {
                    landing,
                    catches,
                });
            }
            Operator::Try { blockty } => {
                self.open_handler_scope(*blockty, |landing| FrameKind::LegacyTry {
                    landing,
                    catching: None,
                });
            }
            Operator::Throw { tag_index } => {
                let tag = TagIndex(*tag_index);
                let params = self.env.module.tag_type(tag).params().to_vec();
                let values = self.popn(params.len());
                let tag_arg = self.builder.ins().iconst(types::I32, i64::from(tag.0));
                let exn = self
                    .env
                    .call_builtin(&mut self.builder, Builtin::ExnNew, &[tag_arg])
                    .expect("ExnNew returns the exception");
                // Null: the store's exception objects would pass its cap.
                self.builder
                    .ins()
                    .trapz(exn, TrapCode::GcHeapExhausted.to_cranelift());
                for (i, value) in values.into_iter().enumerate() {
                    let offset = VMEXN_VALUES + VMEXN_SLOT * i as u32;
                    self.builder
                        .ins()
                        .store(trusted(), value, exn, offset as i32);
                }
                self.throw_exception(exn);
            }
            Operator::ThrowRef => {
                let exn = self.pop1();
                self.builder
                    .ins()
                    .trapz(exn, TrapCode::NullReference.to_cranelift());
                self.throw_exception(exn);
            }
            Operator::Catch { tag_index } => self.legacy_catch(Some(TagIndex(*tag_index))),
            Operator::CatchAll => self.legacy_catch(None),
            Operator::Delegate { relative_depth } => self.legacy_delegate(*relative_depth),
            Operator::Rethrow { relative_depth } => {
                let frame = self.control.frame_mut(*relative_depth);
                let FrameKind::LegacyTry {
                    catching: Some((exn, _)),
                    ..
                } = frame.kind
                else {
                    unreachable!("validated: rethrow targets a catch")
                };
                self.throw_exception(exn);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Before `value` (of type `ty`) is stored outside this function's frames:
    /// if it is a non-null exnref, sets the object's escaped byte, so the
    /// runtime's exception collector, which scans only stacks, keeps it
    /// (wazerox_runtime::exceptions).
    pub(crate) fn mark_if_exception_escapes(&mut self, ty: ValType, value: ir::Value) {
        if ty.as_ref().is_none_or(|r| r.kind() != RefKind::Exn) {
            return;
        }
        let mark = self.builder.create_block();
        let done = self.builder.create_block();
        self.builder.ins().brif(value, mark, &[], done, &[]);
        self.builder.switch_to_block(mark);
        self.builder.seal_block(mark);
        let one = self.builder.ins().iconst(types::I8, 1);
        self.builder
            .ins()
            .store(trusted(), one, value, VMEXN_ESCAPED as i32);
        self.builder.ins().jump(done, &[]);
        self.builder.switch_to_block(done);
        self.builder.seal_block(done);
    }

    /// Opens a `try_table`/`try` block: a handler scope plus a control frame.
    fn open_handler_scope(
        &mut self,
        blockty: wasmparser::BlockType,
        kind: impl FnOnce(ir::Block) -> FrameKind,
    ) {
        let (params, results) = self.block_signature(blockty);
        let destination = self.block_with_params(&results);
        let landing = self.builder.create_block();
        self.builder.append_block_param(landing, types::I64);
        let height = self.stack.len() - params.len();
        self.control.handlers.push(HandlerScope { landing });
        self.control.push(
            kind(landing),
            destination,
            params.len(),
            results.len(),
            height,
        );
    }

    /// Throws `exn` (a non-null exception object) from the current position.
    pub(crate) fn throw_exception(&mut self, exn: ir::Value) {
        let scopes = self.control.handlers.len();
        self.throw_to_scope(exn, scopes);
    }

    /// Throws `exn` to the `scopes`th handler scope (0: out of this function).
    fn throw_to_scope(&mut self, exn: ir::Value, scopes: usize) {
        match scopes.checked_sub(1) {
            Some(i) => {
                let landing = self.control.handlers[i].landing;
                self.builder.ins().jump(landing, &[BlockArg::Value(exn)]);
            }
            None => {
                self.env
                    .call_builtin(&mut self.builder, Builtin::Throw, &[exn]);
                // `Throw` never returns.
                self.builder
                    .ins()
                    .trap(TrapCode::UnreachableCodeReached.to_cranelift());
            }
        }
        self.reachable = false;
    }

    /// A Wasm call; inside a handler scope, unless the callee cannot throw (see
    /// `wazerox_environ::throws`), a `try_call` whose exceptions go to the scope's
    /// landing block. Returns the call's results.
    pub(crate) fn emit_wasm_call(&mut self, callee: Callee, args: &[ir::Value]) -> Vec<ir::Value> {
        let handler = match callee {
            Callee::Direct(_, false) => None,
            _ => self.control.innermost_handler(),
        };
        let Some(landing) = handler else {
            let call = match callee {
                Callee::Direct(f, _) => self.builder.ins().call(f, args),
                Callee::Indirect(sig, code) => self.builder.ins().call_indirect(sig, code, args),
            };
            return self.builder.inst_results(call).to_vec();
        };
        let sig = match callee {
            Callee::Direct(f, _) => self.builder.func.dfg.ext_funcs[f].signature,
            Callee::Indirect(sig, _) => sig,
        };
        let returns: Vec<ir::Type> = self.builder.func.dfg.signatures[sig]
            .returns
            .iter()
            .map(|r| r.value_type)
            .collect();
        let normal = self.builder.create_block();
        for ty in &returns {
            self.builder.append_block_param(normal, *ty);
        }
        let dfg = &mut self.builder.func.dfg;
        let normal_args: Vec<BlockArg> = (0..returns.len() as u32)
            .map(BlockArg::TryCallRet)
            .collect();
        let normal_call = BlockCall::new(normal, normal_args, &mut dfg.value_lists);
        let landing_call = BlockCall::new(landing, [BlockArg::TryCallExn(0)], &mut dfg.value_lists);
        let table = dfg.exception_tables.push(ExceptionTableData::new(
            sig,
            normal_call,
            [ExceptionTableItem::Default(landing_call)],
        ));
        match callee {
            Callee::Direct(f, _) => self.builder.ins().try_call(f, args, table),
            Callee::Indirect(_, code) => self.builder.ins().try_call_indirect(code, args, table),
        };
        self.builder.seal_block(normal);
        self.builder.switch_to_block(normal);
        self.builder.block_params(normal).to_vec()
    }

    /// Branches to the frame `depth` levels out with `values` (a catch clause).
    fn branch_with(&mut self, depth: u32, values: &[ir::Value]) {
        let frame = self.control.frame_mut(depth);
        frame.exit_reachable |= !matches!(frame.kind, FrameKind::Loop { .. });
        let (target, _) = frame.branch_target();
        let args: Vec<BlockArg> = values.iter().map(|v| BlockArg::Value(*v)).collect();
        self.builder.ins().jump(target, &args);
    }

    /// Starts the landing block of a scope whose body has ended: returns the
    /// exception object.
    fn enter_landing(&mut self, landing: ir::Block) -> ir::Value {
        self.builder.switch_to_block(landing);
        self.builder.seal_block(landing);
        self.builder.block_params(landing)[0]
    }

    /// Compares `exn`'s tag with `tag` and continues in a new block where they are
    /// equal, with the payload loaded; returns the payload and the block where
    /// the dispatch continues when they differ.
    fn test_tag(&mut self, exn: ir::Value, tag: TagIndex) -> (Vec<ir::Value>, ir::Block) {
        let expected = self
            .env
            .load_vmctx_ptr(&mut self.builder, self.env.offsets.tag_pointer(tag));
        let actual = self
            .builder
            .ins()
            .load(types::I64, trusted(), exn, VMEXN_TAG as i32);
        let equal = self
            .builder
            .ins()
            .icmp(ir::condcodes::IntCC::Equal, expected, actual);
        let matched = self.builder.create_block();
        let next = self.builder.create_block();
        self.builder.ins().brif(equal, matched, &[], next, &[]);
        self.builder.seal_block(matched);
        self.builder.seal_block(next);
        self.builder.switch_to_block(matched);
        let params = self.env.module.tag_type(tag).params().to_vec();
        let payload = params
            .iter()
            .enumerate()
            .map(|(i, ty)| {
                let offset = VMEXN_VALUES + VMEXN_SLOT * i as u32;
                self.builder
                    .ins()
                    .load(ir_type(*ty), trusted(), exn, offset as i32)
            })
            .collect();
        (payload, next)
    }

    /// The end of a `try_table`, after its frame was popped: the landing block's
    /// dispatch over the catch clauses (whose labels count from the frame that
    /// encloses the `try_table`).
    pub(crate) fn end_try_table(&mut self, landing: ir::Block, catches: &[Catch]) {
        self.control.handlers.pop();
        let exn = self.enter_landing(landing);
        for catch in catches {
            match *catch {
                Catch::One { tag, label } | Catch::OneRef { tag, label } => {
                    let (mut payload, next) = self.test_tag(exn, TagIndex(tag));
                    if matches!(catch, Catch::OneRef { .. }) {
                        payload.push(exn);
                    }
                    self.branch_with(label, &payload);
                    self.builder.switch_to_block(next);
                }
                Catch::All { label } => {
                    self.branch_with(label, &[]);
                    return;
                }
                Catch::AllRef { label } => {
                    self.branch_with(label, &[exn]);
                    return;
                }
            }
        }
        self.throw_exception(exn);
    }

    /// A legacy `catch` (`Some(tag)`) or `catch_all` (`None`) of the innermost
    /// `try`: ends the previous arm and adds one test to the dispatch chain.
    fn legacy_catch(&mut self, tag: Option<TagIndex>) {
        let reachable = self.reachable;
        let frame = self.control.top_mut();
        let FrameKind::LegacyTry { landing, catching } = frame.kind else {
            unreachable!("validated: catch inside try")
        };
        let (destination, num_results, height) =
            (frame.destination, frame.num_results, frame.stack_height);
        if reachable {
            frame.exit_reachable = true;
            let results = self.popn(num_results);
            let args: Vec<BlockArg> = results.iter().map(|v| BlockArg::Value(*v)).collect();
            self.builder.ins().jump(destination, &args);
        }
        self.stack.truncate(height);
        let exn = match catching {
            Some((exn, Some(next))) => {
                self.builder.switch_to_block(next);
                exn
            }
            Some((_, None)) => unreachable!("validated: nothing follows catch_all"),
            None => {
                // The body ends: its scope closes, the arms run unprotected by it.
                self.control.handlers.pop();
                let scopes = self.control.handlers.len();
                self.control.top_mut().handlers_inside = scopes;
                self.enter_landing(landing)
            }
        };
        let next = match tag {
            Some(tag) => {
                let (payload, next) = self.test_tag(exn, tag);
                self.stack.extend(payload);
                Some(next)
            }
            None => None,
        };
        if let FrameKind::LegacyTry { catching, .. } = &mut self.control.top_mut().kind {
            *catching = Some((exn, next));
        }
        self.reachable = true;
    }

    /// The end of a legacy `try` (or its `delegate`), after its frame was popped:
    /// an exception no arm took goes on outwards.
    pub(crate) fn end_legacy_try(
        &mut self,
        landing: ir::Block,
        catching: Option<(ir::Value, Option<ir::Block>)>,
    ) {
        match catching {
            None => {
                self.control.handlers.pop();
                let exn = self.enter_landing(landing);
                let scopes = self
                    .pending_delegate
                    .take()
                    .unwrap_or(self.control.handlers.len());
                self.throw_to_scope(exn, scopes);
            }
            Some((exn, Some(next))) => {
                self.builder.switch_to_block(next);
                self.throw_exception(exn);
            }
            Some((_, None)) => {}
        }
    }

    /// `delegate`: ends a `try` body whose exceptions go to the handler scope that
    /// protects the code of the frame `depth` levels out (counted without the
    /// `try` itself).
    fn legacy_delegate(&mut self, depth: u32) {
        // The `try`'s own scope is still open, and its frame still on the stack.
        let target = self.control.frame_mut(depth + 1).handlers_inside;
        self.pending_delegate = Some(target);
        self.translate_end();
    }
}
