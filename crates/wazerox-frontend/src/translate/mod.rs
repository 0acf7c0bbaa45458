//! Translation of one function body to Cranelift IR.
//!
//! [`FuncTranslator::translate`] validates each operator with wasmparser's function
//! validator and then emits IR for it. The work is split by operator family:
//! `control` (blocks, branches, calls), `numeric` (integer and float arithmetic,
//! conversions), `memory` (loads, stores, bulk memory), `reference` (globals, tables,
//! references); `environ` holds the VMContext accessors they share and `stack` the
//! control-frame bookkeeping.

mod atomics;
mod control;
mod environ;
mod exceptions;
mod gc;
mod gc_array;
mod interrupt;
mod memory;
mod numeric;
mod reference;
mod roots;
mod simd;
mod stack;

pub use simd::RelaxedSimdLowering;

use crate::signatures::{ir_type, wasm_signature};
use cranelift_codegen::ir::{self, InstBuilder, UserFuncName};
use cranelift_codegen::isa::TargetFrontendConfig;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use environ::FuncEnvironment;
use stack::ControlStack;
use wasmparser::{FuncValidator, FuncValidatorAllocations, ValidatorResources};
use wazerox_environ::TranslationConfig;
use wazerox_environ::module_info::ModuleInfo;
use wazerox_environ::parse::{FunctionBodyData, WasmError, WasmErrorKind};
use wazerox_environ::types::{FuncIndex, ValType};
use wazerox_environ::vmoffsets::VMOffsets;

/// Reusable state for translating many functions on one thread.
#[derive(Default)]
pub struct FuncTranslator {
    builder_context: FunctionBuilderContext,
    allocations: Option<FuncValidatorAllocations>,
}

/// What a translation of one body borrows.
pub struct TranslationInputs<'a> {
    pub module: &'a ModuleInfo,
    pub offsets: &'a VMOffsets,
    pub config: &'a TranslationConfig,
    pub frontend_config: TargetFrontendConfig,
    /// The instructions relaxed SIMD operators become (see [`RelaxedSimdLowering`]).
    pub relaxed_simd: RelaxedSimdLowering,
}

impl FuncTranslator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates and translates the body of `func`.
    pub fn translate(
        &mut self,
        inputs: &TranslationInputs<'_>,
        func: FuncIndex,
        body: FunctionBodyData<'_>,
    ) -> Result<ir::Function, WasmError> {
        let module = inputs.module;
        let ty = module.func_type(func).clone();
        let mut function =
            ir::Function::with_name_signature(UserFuncName::user(0, func.0), wasm_signature(&ty));
        let mut validator = body
            .validator
            .into_validator(self.allocations.take().unwrap_or_default());
        let builder = FunctionBuilder::new(&mut function, &mut self.builder_context);
        let mut t = FuncTranslation {
            builder,
            env: FuncEnvironment::new(inputs),
            control: ControlStack::default(),
            stack: Vec::new(),
            locals: Vec::new(),
            reachable: true,
            unreachable_depth: 0,
            fuel_pending: 0,
            pending_delegate: None,
            examined: roots::ExaminedValues::default(),
        };
        let result = t.translate_body(&mut validator, &body.body, &ty);
        self.allocations = Some(validator.into_allocations());
        result?;
        t.builder.finalize(inputs.frontend_config);
        Ok(function)
    }
}

/// The state of one function's translation. Family modules add `impl` blocks.
pub(crate) struct FuncTranslation<'a, 'f> {
    pub(crate) builder: FunctionBuilder<'f>,
    pub(crate) env: FuncEnvironment<'a>,
    pub(crate) control: ControlStack,
    /// The Wasm operand stack.
    pub(crate) stack: Vec<ir::Value>,
    pub(crate) locals: Vec<(Variable, ValType)>,
    /// False after an unconditional branch until the next reachable label.
    pub(crate) reachable: bool,
    /// Blocks opened while unreachable, whose `end`s must be skipped.
    pub(crate) unreachable_depth: u32,
    /// Operators translated since fuel was last charged.
    pub(crate) fuel_pending: i64,
    /// Set by `delegate` for the `end` it performs: how many handler scopes
    /// protect the delegate's target (see `exceptions.rs`).
    pub(crate) pending_delegate: Option<usize>,
    /// Operand-stack values already typed for stack maps (`roots.rs`).
    pub(crate) examined: roots::ExaminedValues,
}

fn invalid(e: wasmparser::BinaryReaderError) -> WasmError {
    WasmError::from_reader(WasmErrorKind::Validation, e)
}

impl FuncTranslation<'_, '_> {
    fn translate_body(
        &mut self,
        validator: &mut FuncValidator<ValidatorResources>,
        body: &wasmparser::FunctionBody<'_>,
        ty: &wazerox_environ::types::FuncType,
    ) -> Result<(), WasmError> {
        let entry = self.builder.create_block();
        self.builder.append_block_params_for_function_params(entry);
        self.builder.switch_to_block(entry);
        self.builder.seal_block(entry);
        self.env.declare_vmctx(&mut self.builder, entry);

        // Parameters become the first locals.
        let params: Vec<ir::Value> = self.builder.block_params(entry)[2..].to_vec();
        for (value, param_ty) in params.into_iter().zip(ty.params()) {
            let var = self.builder.declare_var(ir_type(*param_ty));
            if param_ty.as_ref().is_some_and(|r| {
                matches!(
                    r.kind(),
                    wazerox_environ::RefKind::Any | wazerox_environ::RefKind::Extern
                )
            }) {
                self.builder.declare_var_needs_stack_map(var);
            }
            self.builder.def_var(var, value);
            self.locals.push((var, *param_ty));
        }
        let mut locals = body.get_locals_reader().map_err(invalid)?;
        for _ in 0..locals.get_count() {
            let offset = locals.original_position();
            let (count, local_ty) = locals.read().map_err(invalid)?;
            validator
                .define_locals(offset, count, local_ty)
                .map_err(invalid)?;
            let is_gc_ref = roots::is_gc_ref(validator.resources(), local_ty)?;
            let local_ty = wazerox_environ::parse::checked_val_type(local_ty)?;
            for _ in 0..count {
                let var = self.builder.declare_var(ir_type(local_ty));
                if is_gc_ref {
                    self.builder.declare_var_needs_stack_map(var);
                }
                let zero = self.zero_value(local_ty);
                self.builder.def_var(var, zero);
                self.locals.push((var, local_ty));
            }
        }

        // The function body is an implicit block whose exit returns.
        let exit = self.builder.create_block();
        for result in ty.results() {
            self.builder.append_block_param(exit, ir_type(*result));
        }
        self.control.push_block(exit, 0, ty.results().len(), 0);
        self.interruption_check();

        let mut ops = body.get_operators_reader().map_err(invalid)?;
        while !ops.eof() {
            let offset = ops.original_position();
            let op = ops.read().map_err(invalid)?;
            validator.op(offset, &op).map_err(invalid)?;
            self.builder.set_srcloc(ir::SourceLoc::new(offset as u32));
            self.translate_operator(&op)?;
            if self.reachable {
                self.declare_stack_roots(validator)?;
            }
        }
        ops.finish().map_err(invalid)?;

        // The final `end` left the exit block's params on the stack if reachable.
        if self.reachable {
            let results = std::mem::take(&mut self.stack);
            self.builder.ins().return_(&results);
        }
        Ok(())
    }

    fn translate_operator(&mut self, op: &wasmparser::Operator<'_>) -> Result<(), WasmError> {
        if !self.reachable {
            return self.translate_unreachable_operator(op);
        }
        if self.env.config.consume_fuel {
            self.fuel_pending += 1;
            if crate::translate::interrupt::ends_fuel_region(op) {
                self.fuel_flush();
            }
        }
        if self.translate_control(op)? {
            return Ok(());
        }
        if self.translate_exception(op)? {
            return Ok(());
        }
        if self.translate_numeric(op) {
            return Ok(());
        }
        if self.translate_memory(op)? {
            return Ok(());
        }
        if self.translate_reference(op)? {
            return Ok(());
        }
        if self.translate_gc(op)? {
            return Ok(());
        }
        if self.translate_gc_array(op)? {
            return Ok(());
        }
        if self.translate_atomic(op)? {
            return Ok(());
        }
        if self.translate_simd(op)? {
            return Ok(());
        }
        Err(WasmError::unsupported(format!("operator {op:?}")))
    }

    pub(crate) fn zero_value(&mut self, ty: ValType) -> ir::Value {
        let ins = self.builder.ins();
        match ty {
            ValType::I32 => ins.iconst(ir::types::I32, 0),
            ValType::I64 | ValType::Ref(_) => ins.iconst(ir::types::I64, 0),
            ValType::F32 => ins.f32const(0.0),
            ValType::F64 => ins.f64const(0.0),
            ValType::V128 => {
                let c = self.builder.func.dfg.constants.insert(vec![0u8; 16].into());
                self.builder.ins().vconst(ir::types::I8X16, c)
            }
        }
    }

    pub(crate) fn pop1(&mut self) -> ir::Value {
        self.stack
            .pop()
            .expect("validated: operand stack underflow")
    }

    pub(crate) fn pop2(&mut self) -> (ir::Value, ir::Value) {
        let b = self.pop1();
        let a = self.pop1();
        (a, b)
    }

    pub(crate) fn pop3(&mut self) -> (ir::Value, ir::Value, ir::Value) {
        let c = self.pop1();
        let (a, b) = self.pop2();
        (a, b, c)
    }

    pub(crate) fn popn(&mut self, n: usize) -> Vec<ir::Value> {
        let at = self.stack.len() - n;
        self.stack.split_off(at)
    }

    pub(crate) fn push1(&mut self, v: ir::Value) {
        self.stack.push(v);
    }
}
