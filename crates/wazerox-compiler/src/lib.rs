//! Drives Cranelift: ISA selection, parallel compilation of function bodies,
//! trampolines, linking into one position-independent code image, and trap tables.
//!
//! The output, [`CompiledModule`], is plain data (bytes and tables). The runtime maps
//! it into executable memory and patches the few absolute relocations (calls to
//! libcalls) that need final addresses; everything else is PC-relative, which is what
//! makes a compiled module relocatable and serializable.

mod link;
mod trampolines;

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::{self, ExternalName};
use cranelift_codegen::isa::{self, OwnedTargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::{Context, FinalizedMachExceptionHandler, FinalizedRelocTarget};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use wasmparser::{FuncToValidate, FuncValidatorAllocations, ValidatorResources};
use wazerox_environ::{
    ExceptionHandler, FuncIndex, FuncType, FunctionBodyData, ModuleInfo, ModuleTranslation,
    SignatureTrampolinesCode, StackMap, TranslationConfig, TrapCode, VMOffsets, WasmError,
    WasmErrorKind,
};
use wazerox_frontend::FuncTranslator;
use wazerox_frontend::translate::{RelaxedSimdLowering, TranslationInputs};
use wazerox_frontend::trap::trap_code_from_cranelift;

pub use link::{CompiledFunctionImage, CompiledModule};

/// Compiler settings that affect generated code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CompilerConfig {
    /// Cranelift `opt_level`: "none", "speed" or "speed_and_size".
    pub opt_level: String,
    /// Run Cranelift's IR verifier (slow; for debugging the translator).
    pub verify: bool,
    /// Threads used to compile function bodies; 0 = one per available core.
    pub threads: usize,
    /// Generate code for the architecture's baseline (x86_64: SSE2 only) instead of
    /// the host's CPU features: for artifacts meant for older machines, and to test
    /// the fallbacks (libcalls) Cranelift uses where an instruction is missing.
    pub baseline_cpu: bool,
    /// Whether host calls must be restorable (stack checkpoints): Wasm→host
    /// trampolines then keep every callee-saved register in their own frame and
    /// tell the host where that frame is.
    pub checkpoints: bool,
}

impl Default for CompilerConfig {
    fn default() -> Self {
        CompilerConfig {
            opt_level: "speed".to_string(),
            verify: cfg!(debug_assertions),
            threads: 0,
            baseline_cpu: false,
            checkpoints: true,
        }
    }
}

/// A function body validated ahead of its lazy compilation.
pub struct LazyBody {
    /// The body's bytes in the module binary.
    pub range: std::ops::Range<usize>,
    /// The validator to translate it with (translation validates again, operator
    /// by operator, as it always does).
    pub validator: FuncToValidate<ValidatorResources>,
}

/// A Cranelift code generator for the host CPU.
pub struct Compiler {
    isa: OwnedTargetIsa,
    /// The cheap first tier of lazy compilation: the same target and flags with
    /// `opt_level=none` and the single-pass register allocator.
    fast_isa: OwnedTargetIsa,
    config: CompilerConfig,
}

/// Which code generator compiles a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The engine's configured optimization level (`CompilerConfig::opt_level`).
    Optimized,
    /// Cranelift without optimization and with its single-pass register
    /// allocator: several times cheaper to compile, slower code.
    Fast,
}

/// A function's machine code before linking.
pub(crate) struct CompiledFunction {
    pub code: Vec<u8>,
    pub alignment: u32,
    /// Call relocations: (offset in `code`, kind, callee function index, addend).
    pub calls: Vec<(u32, cranelift_codegen::binemit::Reloc, u32, i64)>,
    /// Relocations against runtime libcalls.
    pub libcalls: Vec<(u32, cranelift_codegen::binemit::Reloc, String, i64)>,
    pub traps: Vec<(u32, TrapCode)>,
    /// `(code offset, Wasm offset)` where the Wasm instruction changes.
    pub address_map: Vec<(u32, u32)>,
    /// Landing blocks of `try_call` sites.
    pub handlers: Vec<ExceptionHandler>,
    /// GC references live across each call site that has any.
    pub stack_maps: Vec<StackMap>,
}

fn compile_error(message: impl Into<String>) -> WasmError {
    WasmError {
        kind: WasmErrorKind::Unsupported,
        message: message.into(),
        offset: None,
    }
}

impl Compiler {
    /// A compiler for the host, with the CPU features it has (SSE4.1, AVX, …).
    pub fn new(config: CompilerConfig) -> Result<Compiler, String> {
        let mut flags = settings::builder();
        let set = |flags: &mut settings::Builder, name: &str, value: &str| {
            flags
                .set(name, value)
                .map_err(|e| format!("cranelift setting {name}={value}: {e}"))
        };
        set(&mut flags, "opt_level", &config.opt_level)?;
        set(
            &mut flags,
            "enable_verifier",
            if config.verify { "true" } else { "false" },
        )?;
        // Backtraces and checkpoint/restore walk frames by frame pointer.
        set(&mut flags, "preserve_frame_pointers", "true")?;
        // The stack-limit check in every prologue replaces stack probes.
        set(&mut flags, "enable_probestack", "false")?;
        set(&mut flags, "is_pic", "false")?;
        set(&mut flags, "unwind_info", "false")?;
        // Multi-value functions may return more values than there are return
        // registers; Cranelift then returns the rest through a hidden pointer.
        set(&mut flags, "enable_multi_ret_implicit_sret", "true")?;
        let isa_builder = || {
            if config.baseline_cpu {
                isa::lookup(target_lexicon::Triple::host()).map_err(|e| format!("host ISA: {e}"))
            } else {
                cranelift_native::builder().map_err(|e| format!("host ISA: {e}"))
            }
        };
        let isa = isa_builder()?
            .finish(settings::Flags::new(flags.clone()))
            .map_err(|e| format!("host ISA: {e}"))?;
        set(&mut flags, "opt_level", "none")?;
        set(&mut flags, "regalloc_algorithm", "single_pass")?;
        let fast_isa = isa_builder()?
            .finish(settings::Flags::new(flags))
            .map_err(|e| format!("host ISA: {e}"))?;
        Ok(Compiler {
            isa,
            fast_isa,
            config,
        })
    }

    pub fn isa(&self) -> &dyn isa::TargetIsa {
        &*self.isa
    }

    /// A fingerprint of everything that determines the generated code: Cranelift's
    /// version, the target, its flags and CPU features. Artifacts record it.
    pub fn fingerprint(&self) -> String {
        format!(
            "cranelift-0.135/{}/{}/{:?}",
            self.isa.triple(),
            self.isa.flags(),
            self.isa
                .isa_flags()
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
        )
    }

    /// The target architecture, as `std::env::consts::ARCH` names it.
    pub fn architecture(&self) -> String {
        self.isa.triple().architecture.to_string()
    }

    /// The CPU features generated code may use: Cranelift's ISA flags that name a
    /// feature (`has_*`) and are on. A runtime without a compiler checks these
    /// against its CPU before running precompiled code.
    pub fn cpu_features(&self) -> Vec<String> {
        self.isa
            .isa_flags()
            .iter()
            .filter(|v| v.name.starts_with("has_") && v.as_bool() == Some(true))
            .map(|v| v.name.to_string())
            .collect()
    }

    fn threads(&self, work: usize) -> usize {
        let cores = match self.config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        cores.min(work).max(1)
    }

    /// Validates and compiles every function body, in parallel, then links the
    /// module together with one host→Wasm trampoline per function type.
    pub fn compile_module(
        &self,
        translation: ModuleTranslation<'_>,
        translation_config: &TranslationConfig,
    ) -> Result<CompiledModule, WasmError> {
        let ModuleTranslation { info, bodies } = translation;
        let offsets = VMOffsets::new(&info);
        let inputs = TranslationInputs {
            module: &info,
            offsets: &offsets,
            config: translation_config,
            frontend_config: self.isa.frontend_config(),
            relaxed_simd: RelaxedSimdLowering::for_isa(
                &*self.isa,
                translation_config.relaxed_simd_deterministic,
            ),
        };
        let functions = self.parallel_try_map(
            bodies,
            || (FuncTranslator::new(), Context::new()),
            |(translator, context), i, body| {
                let func = info.defined_to_func_index(i as u32);
                translator
                    .translate(&inputs, func, body)
                    .and_then(|f| self.compile_function(context, f))
            },
        )?;
        link::link(info, functions)
    }

    /// Validates every function body, in parallel, without compiling any: the
    /// first step of lazy compilation (docs/lazy-compilation.md), which rejects an
    /// invalid module as a whole before running any of it. Returns, per defined
    /// function, a fresh validator for its later translation and its body's byte
    /// range in the binary.
    pub fn validate_bodies(
        &self,
        bodies: Vec<FunctionBodyData<'_>>,
    ) -> Result<Vec<LazyBody>, WasmError> {
        self.parallel_try_map(
            bodies,
            FuncValidatorAllocations::default,
            |allocations, _, body| {
                let later = FuncToValidate {
                    resources: body.validator.resources.clone(),
                    index: body.validator.index,
                    ty: body.validator.ty,
                    features: body.validator.features,
                };
                let mut validator = body.validator.into_validator(std::mem::take(allocations));
                let result = validator
                    .validate(&body.body)
                    .map(|()| LazyBody {
                        range: body.body.range(),
                        validator: later,
                    })
                    .map_err(|e| WasmError::from_reader(WasmErrorKind::Validation, e));
                *allocations = validator.into_allocations();
                result
            },
        )
    }

    /// Runs `job` on every item, in parallel on [`Compiler::threads`] threads,
    /// each thread with its own `state` (translator, validator allocations); the
    /// results come back in item order. The first error stops the remaining
    /// items: the module is rejected anyway.
    fn parallel_try_map<T: Send, R: Send, S>(
        &self,
        items: Vec<T>,
        state: impl Fn() -> S + Sync,
        job: impl Fn(&mut S, usize, T) -> Result<R, WasmError> + Sync,
    ) -> Result<Vec<R>, WasmError> {
        let count = items.len();
        let work: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
        let results: Vec<Mutex<Option<Result<R, WasmError>>>> =
            (0..count).map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..self.threads(count) {
                scope.spawn(|| {
                    let mut state = state();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            break;
                        }
                        let item = work[i]
                            .lock()
                            .unwrap()
                            .take()
                            .expect("each item taken once");
                        let result = job(&mut state, i, item);
                        let failed = result.is_err();
                        *results[i].lock().unwrap() = Some(result);
                        if failed {
                            next.store(count, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        let mut done = Vec::with_capacity(count);
        for result in results {
            match result.into_inner().unwrap() {
                Some(Ok(r)) => done.push(r),
                Some(Err(e)) => return Err(e),
                // Not run because another item failed first; that error wins.
                None => continue,
            }
        }
        Ok(done)
    }

    /// Compiles one defined function on its own, for lazy compilation, by `tier`:
    /// `config` must have `lazy_calls` set, so the code reaches other functions
    /// only through their function references and needs no linking.
    pub fn compile_function_lazily(
        &self,
        info: &ModuleInfo,
        offsets: &VMOffsets,
        config: &TranslationConfig,
        func: FuncIndex,
        body: FunctionBodyData<'_>,
        tier: Tier,
    ) -> Result<CompiledFunctionImage, WasmError> {
        debug_assert!(config.lazy_calls);
        let inputs = TranslationInputs {
            module: info,
            offsets,
            config,
            frontend_config: self.isa.frontend_config(),
            relaxed_simd: RelaxedSimdLowering::for_isa(
                &*self.isa,
                config.relaxed_simd_deterministic,
            ),
        };
        let mut translator = FuncTranslator::new();
        let mut context = Context::new();
        let function = translator.translate(&inputs, func, body)?;
        let isa = match tier {
            Tier::Optimized => &*self.isa,
            Tier::Fast => &*self.fast_isa,
        };
        link::function_image(self.compile_function_for(isa, &mut context, function)?)
    }

    /// Compiles both trampolines of function type `ty` into one code image:
    /// host→Wasm (array call) and Wasm→host.
    pub fn compile_signature_trampolines(
        &self,
        ty: &FuncType,
    ) -> Result<SignatureTrampolinesCode, WasmError> {
        let mut context = Context::new();
        let array_call =
            self.compile_function(&mut context, trampolines::array_to_wasm(self, ty))?;
        let wasm_to_host =
            self.compile_function(&mut context, trampolines::wasm_to_host(self, ty))?;
        Ok(trampolines::link_signature_trampolines(
            array_call,
            wasm_to_host,
        ))
    }

    pub(crate) fn compile_function(
        &self,
        context: &mut Context,
        func: ir::Function,
    ) -> Result<CompiledFunction, WasmError> {
        self.compile_function_for(&*self.isa, context, func)
    }

    fn compile_function_for(
        &self,
        isa: &dyn isa::TargetIsa,
        context: &mut Context,
        func: ir::Function,
    ) -> Result<CompiledFunction, WasmError> {
        context.clear();
        context.func = func;
        let names = context.func.params.user_named_funcs().clone();
        let compiled = context
            .compile(isa, &mut ControlPlane::default())
            .map_err(|e| compile_error(format!("code generation failed: {:?}", e.inner)))?;
        let mut calls = Vec::new();
        let mut libcalls = Vec::new();
        for reloc in compiled.buffer.relocs() {
            match &reloc.target {
                FinalizedRelocTarget::ExternalName(ExternalName::User(name)) => {
                    let name = &names[*name];
                    calls.push((reloc.offset, reloc.kind, name.index, reloc.addend));
                }
                FinalizedRelocTarget::ExternalName(ExternalName::LibCall(libcall)) => {
                    libcalls.push((reloc.offset, reloc.kind, libcall.to_string(), reloc.addend));
                }
                other => {
                    return Err(compile_error(format!(
                        "unexpected relocation target {other:?}"
                    )));
                }
            }
        }
        let traps = compiled
            .buffer
            .traps()
            .iter()
            .map(|t| {
                let code =
                    trap_code_from_cranelift(t.code).unwrap_or(TrapCode::UnreachableCodeReached);
                (t.offset, code)
            })
            .collect();
        let mut address_map: Vec<(u32, u32)> = Vec::new();
        for srcloc in compiled.buffer.get_srclocs_sorted() {
            if srcloc.start == srcloc.end {
                continue;
            }
            // Code of no Wasm instruction (prologue, spills) maps to `u32::MAX`.
            let wasm = srcloc.loc.bits();
            if address_map.last().is_none_or(|&(_, last)| last != wasm) {
                address_map.push((srcloc.start, wasm));
            }
        }
        let mut handlers = Vec::new();
        for site in compiled.buffer.call_sites() {
            // The translator gives every `try_call` exactly one catch-all entry.
            let landing = site.exception_handlers.iter().find_map(|h| match h {
                FinalizedMachExceptionHandler::Default(offset) => Some(*offset),
                _ => None,
            });
            if let Some(handler) = landing {
                let sp_to_fp = site.frame_offset.ok_or_else(|| {
                    compile_error("code generation failed: try_call without a frame offset")
                })?;
                handlers.push(ExceptionHandler {
                    return_address: site.ret_addr,
                    handler,
                    sp_to_fp,
                });
            }
        }
        let mut stack_maps = Vec::new();
        for (return_address, frame_size, map) in compiled.buffer.user_stack_maps() {
            let mut slots = Vec::new();
            for (ty, offset) in map.entries() {
                // The translator declares only any-hierarchy words (`I64`).
                if ty != ir::types::I64 {
                    return Err(compile_error(format!(
                        "code generation failed: stack map entry of type {ty}"
                    )));
                }
                slots.push(offset);
            }
            slots.sort_unstable();
            stack_maps.push(StackMap {
                return_address: *return_address,
                frame_size: *frame_size,
                slots,
            });
        }
        Ok(CompiledFunction {
            handlers,
            stack_maps,
            code: compiled.code_buffer().to_vec(),
            address_map,
            // The ISA's preferred alignment (32 bytes on x86-64), not just the
            // minimum: where a hot loop falls relative to fetch blocks measurably
            // changes its speed.
            alignment: compiled
                .buffer
                .alignment
                .max(isa.function_alignment().preferred),
            calls,
            libcalls,
            traps,
        })
    }
}
