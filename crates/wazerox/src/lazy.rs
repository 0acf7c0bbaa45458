//! A lazily compiled module's code: each function compiled on its first call into
//! its own code image, in pages of the module's code arena
//! (docs/lazy-compilation.md).

use crate::engine::{CompilationStrategy, Engine};
use crate::speculate::Speculation;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use wasmparser::{BinaryReader, FuncToValidate, FunctionBody, ValidatorResources};
use wazerox_compiler::{LazyBody, Tier};
use wazerox_environ::{FunctionBodyData, ModuleInfo, TranslationConfig, VMOffsets};
use wazerox_runtime::code_memory::CodeArena;
use wazerox_runtime::code_registry::{self, FunctionRange, ModuleCode, SourceMap};
use wazerox_runtime::lazy::LazyFunctions;

/// A compiled function: its code image (mapped and registered for as long as this
/// lives) and the address of its entry.
struct CompiledFunction {
    _code: Arc<ModuleCode>,
    entry: usize,
}

/// The functions of one module, compiled on demand and shared by all its instances.
pub(crate) struct LazyCode {
    engine: Engine,
    info: Arc<ModuleInfo>,
    offsets: VMOffsets,
    translation: TranslationConfig,
    /// Which code generator compiles the functions (`CompilationStrategy::LazyFast`).
    tier: Tier,
    wasm: Arc<[u8]>,
    /// Per defined function: its body's range in `wasm`.
    ranges: Vec<std::ops::Range<usize>>,
    /// Per defined function: the validator its translation takes, taken by the
    /// one compilation of the function.
    validators: Vec<Mutex<Option<FuncToValidate<ValidatorResources>>>>,
    /// Per defined function: the outcome of its one compilation. `OnceLock` makes
    /// concurrent first calls wait for the thread that compiles.
    compiled: Vec<OnceLock<Result<CompiledFunction, String>>>,
    source_map: Option<Arc<dyn SourceMap>>,
    /// Where the compiled functions' code goes: pages of a few large mappings, not
    /// one mapping per function.
    arena: CodeArena,
    /// Background compilation of likely callees, if the engine asks for it.
    speculation: Option<Arc<Speculation>>,
    /// This code itself, for the background worker (which must not keep it alive).
    this: Weak<LazyCode>,
}

impl Drop for LazyCode {
    fn drop(&mut self) {
        if let Some(speculation) = &self.speculation {
            speculation.close();
        }
    }
}

impl LazyCode {
    pub(crate) fn new(
        engine: &Engine,
        info: Arc<ModuleInfo>,
        wasm: Arc<[u8]>,
        bodies: Vec<LazyBody>,
        source_map: Option<Arc<dyn SourceMap>>,
    ) -> Arc<LazyCode> {
        let mut translation = engine.config().translation;
        translation.lazy_calls = true;
        let (ranges, validators) = bodies
            .into_iter()
            .map(|b| (b.range, Mutex::new(Some(b.validator))))
            .unzip();
        let functions = info.num_defined_functions() as usize;
        let speculation = engine
            .config()
            .background_compilation
            .then(|| Speculation::new(functions));
        Arc::new_cyclic(|this| LazyCode {
            speculation,
            this: this.clone(),
            engine: engine.clone(),
            offsets: VMOffsets::new(&info),
            compiled: (0..info.num_defined_functions())
                .map(|_| OnceLock::new())
                .collect(),
            info,
            translation,
            tier: if engine.config().compilation_strategy == CompilationStrategy::LazyFast {
                Tier::Fast
            } else {
                Tier::Optimized
            },
            wasm,
            ranges,
            validators,
            source_map,
            arena: CodeArena::new(),
        })
    }

    /// The binary the module was compiled from.
    pub(crate) fn wasm(&self) -> &[u8] {
        &self.wasm
    }

    /// The entry of each defined function compiled so far, null for the others
    /// (what a new instance's function references start with).
    pub(crate) fn current_addresses(&self) -> Vec<*const u8> {
        self.compiled
            .iter()
            .map(|c| match c.get() {
                Some(Ok(f)) => f.entry as *const u8,
                _ => std::ptr::null(),
            })
            .collect()
    }

    /// How many functions have been compiled (successfully or not).
    pub(crate) fn compiled_count(&self) -> usize {
        self.compiled.iter().filter(|c| c.get().is_some()).count()
    }

    /// Compiles `defined` and, with background compilation, queues its callees.
    fn compile(&self, defined: u32) -> Result<CompiledFunction, String> {
        let compiled = self.compile_function(defined);
        if let (Some(speculation), Ok(_)) = (&self.speculation, &compiled) {
            speculation.push(&self.this, &self.direct_callees(defined));
        }
        compiled
    }

    /// The defined functions `defined` calls directly, in the order of their call
    /// sites (the body was validated, so it decodes).
    fn direct_callees(&self, defined: u32) -> Vec<u32> {
        let range = self.ranges[defined as usize].clone();
        let body = FunctionBody::new(BinaryReader::new(&self.wasm[range.clone()], range.start));
        let imported = self.info.num_imported_functions;
        let mut callees = Vec::new();
        let Ok(mut ops) = body.get_operators_reader() else {
            return callees;
        };
        while !ops.eof() {
            match ops.read() {
                Ok(
                    wasmparser::Operator::Call { function_index }
                    | wasmparser::Operator::ReturnCall { function_index },
                ) if function_index >= imported => callees.push(function_index - imported),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        callees
    }

    /// Compiles `defined` unless it is compiled (or being compiled) already: the
    /// background worker's job.
    pub(crate) fn compile_in_background(&self, defined: u32) {
        if let Some(slot) = self.compiled.get(defined as usize) {
            let _ = slot.get_or_init(|| self.compile(defined));
        }
    }

    fn compile_function(&self, defined: u32) -> Result<CompiledFunction, String> {
        let info = &self.info;
        let func = info.defined_to_func_index(defined);
        let validator = self.validators[defined as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or("function compiled twice")?;
        let range = self.ranges[defined as usize].clone();
        let body = FunctionBody::new(BinaryReader::new(&self.wasm[range.clone()], range.start));
        let compiler = self.engine.compiler().map_err(|e| e.to_string())?;
        let image = compiler
            .compile_function_lazily(
                info,
                &self.offsets,
                &self.translation,
                func,
                FunctionBodyData { body, validator },
                self.tier,
            )
            .map_err(|e| e.to_string())?;
        let code = self.arena.allocate(&image.code, |text| {
            for reloc in &image.libcall_relocations {
                let Some(address) = wazerox_runtime::libcalls::address(&reloc.libcall) else {
                    return Err(format!("unknown libcall {}", reloc.libcall));
                };
                let value = (address as i64 + reloc.addend) as u64;
                let at = reloc.offset as usize;
                text[at..at + 8].copy_from_slice(&value.to_le_bytes());
            }
            Ok(())
        })?;
        let entry = code.base();
        let len = image.code.len() as u32;
        let names: HashMap<u32, String> = info
            .function_names
            .get(&func.0)
            .map(|name| (func.0, name.clone()))
            .into_iter()
            .collect();
        // A one-function image: its first (and only) defined function is `func`,
        // so its body offset is the first entry of `function_body_offsets`.
        let body_offset = info
            .function_body_offsets
            .get(defined as usize)
            .copied()
            .into_iter()
            .collect();
        let module_code = Arc::new(
            ModuleCode::new(
                code,
                vec![FunctionRange {
                    start: 0,
                    end: len,
                    func_index: func.0,
                }],
                image.traps,
                info.module_name.clone(),
                names,
            )
            .with_address_map(image.address_map)
            .with_debug_info(body_offset, self.source_map.clone())
            .with_handlers(image.handlers)
            .with_stack_maps(image.stack_maps),
        );
        code_registry::register(&module_code);
        let module_name = info.module_name.as_deref().unwrap_or("<module>");
        crate::profiling::register(
            &self.engine,
            std::iter::once_with(|| {
                let name = match info.function_names.get(&func.0) {
                    Some(name) => format!("wasm[{module_name}]::{name}"),
                    None => format!("wasm[{module_name}]::function[{}]", func.0),
                };
                (name, entry, len as usize)
            }),
        );
        Ok(CompiledFunction {
            _code: module_code,
            entry,
        })
    }
}

impl LazyFunctions for LazyCode {
    fn code(&self, defined: u32) -> Result<*const u8, String> {
        let slot = self
            .compiled
            .get(defined as usize)
            .ok_or("no such defined function")?;
        match slot.get_or_init(|| {
            if let Some(speculation) = &self.speculation {
                speculation.mark(defined);
            }
            self.compile(defined)
        }) {
            Ok(f) => Ok(f.entry as *const u8),
            Err(e) => Err(e.clone()),
        }
    }
}
