//! The function environment: how translated code reaches the VMContext, other
//! functions, signatures and runtime builtins. Caches per-function imports of
//! signatures and callees so each is declared once.

use super::TranslationInputs;
use crate::signatures::{builtin_signature, wasm_signature};
use crate::trap::CraneliftTrapCode;
use cranelift_codegen::ir::{
    self, ExtFuncData, ExternalName, InstBuilder, MemFlagsData, UserExternalName, types,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::FunctionBuilder;
use std::collections::HashMap;
use wazerox_environ::TranslationConfig;
use wazerox_environ::builtins::Builtin;
use wazerox_environ::module_info::ModuleInfo;
use wazerox_environ::types::{FuncIndex, MemoryIndex, TypeIndex};
use wazerox_environ::vmoffsets::{self, VMOffsets};

/// Flags for loads of VMContext fields that never change while an instance lives.
pub(crate) fn readonly() -> MemFlagsData {
    MemFlagsData::trusted().with_readonly().with_can_move()
}

/// Flags for loads and stores of runtime-owned fields that may change.
pub(crate) fn trusted() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// A memory as seen from one function: values defined in the entry block.
#[derive(Clone, Copy)]
pub(crate) struct HeapValues {
    /// `*mut VMMemoryDefinition`.
    pub definition: ir::Value,
    /// Start of the memory (never moves).
    pub base: ir::Value,
}

pub(crate) struct FuncEnvironment<'a> {
    pub module: &'a ModuleInfo,
    pub offsets: &'a VMOffsets,
    pub config: &'a TranslationConfig,
    pub frontend_config: TargetFrontendConfig,
    pub relaxed_simd: super::RelaxedSimdLowering,
    vmctx: Option<ir::Value>,
    heaps: Vec<HeapValues>,
    signatures: HashMap<TypeIndex, ir::SigRef>,
    direct_callees: HashMap<FuncIndex, ir::FuncRef>,
    builtins: HashMap<u32, ir::SigRef>,
}

impl<'a> FuncEnvironment<'a> {
    pub fn new(inputs: &TranslationInputs<'a>) -> Self {
        FuncEnvironment {
            module: inputs.module,
            offsets: inputs.offsets,
            config: inputs.config,
            frontend_config: inputs.frontend_config,
            relaxed_simd: inputs.relaxed_simd,
            vmctx: None,
            heaps: Vec::new(),
            signatures: HashMap::new(),
            direct_callees: HashMap::new(),
            builtins: HashMap::new(),
        }
    }

    pub fn pointer_type(&self) -> ir::Type {
        self.frontend_config.pointer_type()
    }

    pub fn native_call_conv(&self) -> CallConv {
        self.frontend_config.default_call_conv
    }

    /// Records the vmctx parameter, installs the stack-limit check, and loads the
    /// bases of the memories (they never move, so one load per function suffices).
    pub fn declare_vmctx(&mut self, builder: &mut FunctionBuilder<'_>, entry: ir::Block) {
        let vmctx = builder.block_params(entry)[0];
        self.vmctx = Some(vmctx);

        let vmctx_gv = builder.create_global_value(ir::GlobalValueData::VMContext);
        let flags = builder.func.dfg.mem_flags.insert(readonly()).unwrap();
        let store_gv = builder.create_global_value(ir::GlobalValueData::Load {
            base: vmctx_gv,
            offset: (VMOffsets::STORE_CONTEXT as i32).into(),
            global_type: self.pointer_type(),
            flags,
        });
        let limit_flags = builder.func.dfg.mem_flags.insert(trusted()).unwrap();
        let limit_gv = builder.create_global_value(ir::GlobalValueData::Load {
            base: store_gv,
            offset: (vmoffsets::VMSTORE_STACK_LIMIT as i32).into(),
            global_type: self.pointer_type(),
            flags: limit_flags,
        });
        builder.func.stack_limit = Some(limit_gv);

        for index in 0..self.module.memories.len() as u32 {
            let definition =
                self.load_vmctx_ptr(builder, self.offsets.memory_pointer(MemoryIndex(index)));
            let base = self.load_vmctx_ptr(builder, self.offsets.memory_base(MemoryIndex(index)));
            self.heaps.push(HeapValues { definition, base });
        }
    }

    pub fn vmctx(&self) -> ir::Value {
        self.vmctx.expect("vmctx declared at function entry")
    }

    pub fn heap(&self, index: MemoryIndex) -> HeapValues {
        self.heaps[index.index()]
    }

    /// Loads a pointer-sized VMContext field that is fixed for the instance's life.
    pub fn load_vmctx_ptr(&self, builder: &mut FunctionBuilder<'_>, offset: u32) -> ir::Value {
        builder
            .ins()
            .load(self.pointer_type(), readonly(), self.vmctx(), offset as i32)
    }

    /// The Cranelift signature for Wasm type `index`, declared once per function.
    pub fn signature(&mut self, builder: &mut FunctionBuilder<'_>, index: TypeIndex) -> ir::SigRef {
        if let Some(sig) = self.signatures.get(&index) {
            return *sig;
        }
        let sig = builder.import_signature(wasm_signature(&self.module.types[index.index()]));
        self.signatures.insert(index, sig);
        sig
    }

    /// A direct callee in the same module (relocated to a PC-relative call).
    pub fn direct_callee(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        func: FuncIndex,
    ) -> ir::FuncRef {
        if let Some(f) = self.direct_callees.get(&func) {
            return *f;
        }
        let signature = self.signature(builder, self.module.functions[func.index()]);
        let name = builder
            .func
            .declare_imported_user_function(UserExternalName::new(0, func.0));
        let f = builder.import_function(ExtFuncData {
            name: ExternalName::User(name),
            signature,
            colocated: true,
            patchable: false,
        });
        self.direct_callees.insert(func, f);
        f
    }

    /// Calls a runtime builtin through the table in the VMContext.
    pub fn call_builtin(
        &mut self,
        builder: &mut FunctionBuilder<'_>,
        builtin: Builtin,
        args: &[ir::Value],
    ) -> Option<ir::Value> {
        let index = builtin.index();
        let sig = match self.builtins.get(&index) {
            Some(sig) => *sig,
            None => {
                let sig =
                    builder.import_signature(builtin_signature(builtin, self.native_call_conv()));
                self.builtins.insert(index, sig);
                sig
            }
        };
        let table = self.load_vmctx_ptr(builder, VMOffsets::BUILTINS);
        let callee = builder
            .ins()
            .load(self.pointer_type(), readonly(), table, (index * 8) as i32);
        let mut call_args = Vec::with_capacity(args.len() + 1);
        call_args.push(self.vmctx());
        call_args.extend_from_slice(args);
        let call = builder.ins().call_indirect(sig, callee, &call_args);
        builder.inst_results(call).first().copied()
    }

    /// Traps with `code` when `failed` (an i32 returned by a builtin) is non-zero.
    pub fn trap_if_failed(
        &self,
        builder: &mut FunctionBuilder<'_>,
        failed: ir::Value,
        code: wazerox_environ::TrapCode,
    ) {
        builder.ins().trapnz(failed, code.to_cranelift());
    }

    /// Widens an i32 index operand to the pointer type.
    pub fn index_to_pointer(&self, builder: &mut FunctionBuilder<'_>, v: ir::Value) -> ir::Value {
        match builder.func.dfg.value_type(v) {
            types::I64 => v,
            _ => builder.ins().uextend(types::I64, v),
        }
    }
}
