//! `Module`: a compiled module, immutable and shareable across stores and threads.

use crate::artifact::{self, ArtifactExtras, ArtifactParts};
#[cfg(feature = "cranelift")]
use crate::cache;
use crate::codegen::CodegenTarget;
use crate::engine::{Engine, SignatureTrampolines};
use crate::error::{Error, ErrorKind};
use crate::values::ExternType;
use std::sync::{Arc, OnceLock};
use wazerox_environ::{FuncIndex, ModuleInfo};
use wazerox_runtime::code_memory::CodeMemory;
use wazerox_runtime::code_registry::{self, FunctionRange, ModuleCode};
use wazerox_runtime::memory_image::{self, MemoryImage};
use wazerox_runtime::table_image::TableImage;

pub(crate) struct ModuleInner {
    pub engine: Engine,
    pub info: Arc<ModuleInfo>,
    /// Keeps the code mapped and registered for as long as the module lives
    /// (none for a lazily compiled module: see `lazy`).
    pub _code: Option<Arc<ModuleCode>>,
    /// Address of each defined function's code (empty when compiled lazily).
    pub function_addresses: Vec<usize>,
    /// The functions compiled so far, when the module is compiled lazily.
    #[cfg(feature = "cranelift")]
    pub lazy: Option<Arc<crate::lazy::LazyCode>>,
    /// Engine-wide type id of each type index.
    pub type_ids: Arc<[u32]>,
    /// What `serialize` writes (the code as compiled, before relocation).
    pub parts: ArtifactParts,
    /// The target the code was generated for, which `serialize` records.
    pub codegen: CodegenTarget,
    /// The trampolines of each type index, which `serialize` also records.
    pub trampolines: Vec<Arc<SignatureTrampolines>>,
    /// Initial contents of each defined memory, laid out on first instantiation.
    pub memory_images: OnceLock<Vec<Option<Arc<MemoryImage>>>>,
    /// Initial contents of each defined funcref table, laid out likewise.
    pub table_images: OnceLock<Vec<Option<Arc<TableImage>>>>,
}

/// A compiled WebAssembly module. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Module(pub(crate) Arc<ModuleInner>);

/// An import a module declares.
#[derive(Debug, Clone)]
pub struct ImportType {
    module: String,
    name: String,
    ty: ExternType,
}

impl ImportType {
    /// The module name the import is from.
    pub fn module(&self) -> &str {
        &self.module
    }
    /// The imported item's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The imported item's type.
    pub fn ty(&self) -> ExternType {
        self.ty.clone()
    }
}

/// An export a module declares.
#[derive(Debug, Clone)]
pub struct ExportType {
    name: String,
    ty: ExternType,
}

impl ExportType {
    /// The export's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The exported item's type.
    pub fn ty(&self) -> ExternType {
        self.ty.clone()
    }
}

fn text_to_binary(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, Error> {
    #[cfg(feature = "wat")]
    {
        wat::parse_bytes(bytes).map_err(|e| Error::with_kind(ErrorKind::Decode, e.to_string()))
    }
    #[cfg(not(feature = "wat"))]
    {
        Ok(std::borrow::Cow::Borrowed(bytes))
    }
}

impl Module {
    /// Compiles a module from its binary or (with the `wat` feature) text format.
    pub fn new(engine: &Engine, bytes: impl AsRef<[u8]>) -> Result<Module, Error> {
        let binary = text_to_binary(bytes.as_ref())?;
        Module::from_binary(engine, &binary)
    }

    /// Compiles a module from a file (binary or text).
    pub fn from_file(engine: &Engine, path: impl AsRef<std::path::Path>) -> Result<Module, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| {
            Error::with_kind(ErrorKind::Usage, format!("reading {}: {e}", path.display()))
        })?;
        Module::new(engine, bytes)
    }

    /// Compiles a module from its binary format (or loads it from the engine's
    /// cache directory, see [`crate::Config::cache_dir`]). A build without the
    /// `cranelift` feature has no compiler: it can only load artifacts
    /// ([`Module::deserialize`]) and says so here.
    pub fn from_binary(engine: &Engine, binary: &[u8]) -> Result<Module, Error> {
        #[cfg(feature = "cranelift")]
        {
            Module::compile_cached(engine, binary)
        }
        #[cfg(not(feature = "cranelift"))]
        {
            let _ = (engine, binary);
            Err(Error::with_kind(
                ErrorKind::Unsupported,
                "this build of wazerox has no compiler (the `cranelift` feature is off); \
                 load a precompiled artifact with Module::deserialize instead",
            ))
        }
    }

    #[cfg(feature = "cranelift")]
    fn compile_cached(engine: &Engine, binary: &[u8]) -> Result<Module, Error> {
        let lazy = engine.config().compilation_strategy.is_lazy();
        let Some(dir) = &engine.config().cache_dir else {
            return if lazy {
                Module::compile_lazily(engine, binary)
            } else {
                Module::compile(engine, binary)
            };
        };
        let path = cache::entry_path(dir, engine, binary);
        if let Some((parts, extras)) = cache::load(&path, engine, binary)
            && let Ok(module) = Module::from_checked_parts(engine, parts, extras)
        {
            return Ok(module);
        }
        if lazy {
            // Writing an entry would compile every function, which is what lazy
            // compilation avoids; an eager compilation writes it.
            return Module::compile_lazily(engine, binary);
        }
        let module = Module::compile(engine, binary)?;
        cache::store(&path, &module.serialize());
        Ok(module)
    }

    #[cfg(feature = "cranelift")]
    fn compile(engine: &Engine, binary: &[u8]) -> Result<Module, Error> {
        let (info, parts) = Module::compile_parts(engine, binary)?;
        let type_ids = engine.register_module_types(&info);
        let trampolines = engine.trampolines_of(&type_ids)?;
        Module::from_parts(engine, info, parts, engine.codegen_target(), trampolines)
    }

    /// Validates the module and compiles nothing yet: each function is compiled
    /// on its first call (docs/lazy-compilation.md).
    #[cfg(feature = "cranelift")]
    fn compile_lazily(engine: &Engine, binary: &[u8]) -> Result<Module, Error> {
        let translation = wazerox_environ::parse(binary, engine.config().features)?;
        let bodies = engine.compiler()?.validate_bodies(translation.bodies)?;
        let mut info = translation.info;
        let type_ids: Arc<[u32]> = engine.register_module_types(&info).into();
        let trampolines = engine.trampolines_of(&type_ids)?;
        // The translator reads module-relative types; the runtime compares engine ids.
        let translation_info = Arc::new(info.clone());
        info.to_engine_form(&type_ids);
        let source_map = if engine.backtrace_details() {
            crate::debug::DwarfSourceMap::new(&info, binary)
                .map(|map| Arc::new(map) as Arc<dyn wazerox_runtime::code_registry::SourceMap>)
        } else {
            None
        };
        let info = Arc::new(info);
        let lazy =
            crate::lazy::LazyCode::new(engine, translation_info, binary.into(), bodies, source_map);
        Ok(Module(Arc::new(ModuleInner {
            engine: engine.clone(),
            info,
            _code: None,
            function_addresses: Vec::new(),
            lazy: Some(lazy),
            type_ids,
            parts: ArtifactParts::default(),
            codegen: engine.codegen_target(),
            trampolines,
            memory_images: OnceLock::new(),
            table_images: OnceLock::new(),
        })))
    }

    /// Compiles every function of `binary` into one code image.
    #[cfg(feature = "cranelift")]
    fn compile_parts(engine: &Engine, binary: &[u8]) -> Result<(ModuleInfo, ArtifactParts), Error> {
        let config = engine.config();
        let translation = wazerox_environ::parse(binary, config.features)?;
        let compiled = engine
            .compiler()?
            .compile_module(translation, &config.translation)?;
        let parts = ArtifactParts {
            wasm: binary.to_vec(),
            code: compiled.code,
            functions: compiled.functions,
            traps: compiled.traps,
            handlers: compiled.handlers,
            stack_maps: compiled.stack_maps,
            libcalls: compiled.libcall_relocations,
            address_map: compiled.address_map,
        };
        Ok((compiled.info, parts))
    }

    /// A compiled artifact of this module (see [`Module::deserialize`]), to skip
    /// compilation next time.
    ///
    /// # Panics
    /// A lazily compiled module compiles all its functions first; if one of them
    /// fails to compile (which its first call would report as an error), this
    /// panics: use [`Module::try_serialize`] to get the error instead.
    pub fn serialize(&self) -> Vec<u8> {
        match self.try_serialize() {
            Ok(artifact) => artifact,
            Err(e) => panic!("serializing a lazily compiled module: {e}"),
        }
    }

    /// [`Module::serialize`], with the error of a lazily compiled module whose
    /// remaining functions fail to compile. An eagerly compiled module never fails.
    pub fn try_serialize(&self) -> Result<Vec<u8>, Error> {
        #[cfg(feature = "cranelift")]
        if let Some(lazy) = &self.0.lazy {
            // The artifact holds one code image of every function, as an eager
            // compilation makes it; the lazily compiled images are not reused.
            let (_, parts) = Module::compile_parts(&self.0.engine, lazy.wasm())?;
            return Ok(self.artifact(&parts));
        }
        Ok(self.artifact(&self.0.parts))
    }

    fn artifact(&self, parts: &ArtifactParts) -> Vec<u8> {
        let extras = ArtifactExtras {
            codegen: self.0.codegen.clone(),
            trampolines: self
                .0
                .trampolines
                .iter()
                .enumerate()
                .map(|(index, t)| (index as u32, (*t.code).clone()))
                .collect(),
        };
        artifact::write(&self.0.engine, parts, &extras)
    }

    /// Loads an artifact written by [`Module::serialize`] with an engine of the same
    /// configuration on the same CPU and the same wazerox build (anything else is a
    /// clean error, as is a truncated or modified artifact).
    ///
    /// # Safety
    /// The artifact's machine code runs as is, with the rights of the host process:
    /// loading one trusts it exactly like loading a native library. Only load
    /// artifacts you (or a party you trust) wrote. The checksum detects corruption,
    /// not malice; the build id refuses artifacts of other wazerox builds, not
    /// forged ones.
    pub unsafe fn deserialize(engine: &Engine, artifact: &[u8]) -> Result<Module, Error> {
        let (parts, extras) = artifact::read(engine, artifact)?;
        Module::from_checked_parts(engine, parts, extras)
    }

    /// A module from artifact parts whose checksum and fingerprint were checked;
    /// the caller vouches for where the code came from.
    fn from_checked_parts(
        engine: &Engine,
        parts: ArtifactParts,
        extras: ArtifactExtras,
    ) -> Result<Module, Error> {
        let corrupt = |what: &str| {
            Error::with_kind(
                ErrorKind::Decode,
                format!("invalid compiled artifact: {what}"),
            )
        };
        let translation = wazerox_environ::parse_validated(&parts.wasm, engine.config().features)?;
        let info = translation.info;
        if parts.functions.len() != info.num_defined_functions() as usize {
            return Err(corrupt("function count"));
        }
        // Every type index has its trampolines, in order: a build without a
        // compiler could not make them.
        if extras.trampolines.len() != info.types.len()
            || extras
                .trampolines
                .iter()
                .enumerate()
                .any(|(index, (type_index, _))| *type_index as usize != index)
        {
            return Err(corrupt("trampolines"));
        }
        let type_ids = engine.register_module_types(&info);
        let compiled = type_ids
            .iter()
            .zip(extras.trampolines)
            .map(|(id, (_, code))| (*id, code))
            .collect();
        engine.map_trampolines(compiled)?;
        let trampolines = engine.cached_trampolines(&type_ids)?;
        Module::from_parts(engine, info, parts, extras.codegen, trampolines)
    }

    /// [`Module::deserialize`] from a file.
    ///
    /// # Safety
    /// As for [`Module::deserialize`].
    pub unsafe fn deserialize_file(
        engine: &Engine,
        path: impl AsRef<std::path::Path>,
    ) -> Result<Module, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| {
            Error::with_kind(ErrorKind::Usage, format!("reading {}: {e}", path.display()))
        })?;
        // SAFETY: forwarded contract.
        unsafe { Module::deserialize(engine, &bytes) }
    }

    /// Whether `bytes` look like a compiled artifact rather than a Wasm module.
    pub fn is_artifact(bytes: &[u8]) -> bool {
        bytes.starts_with(b"WZRXCWSM")
    }

    fn from_parts(
        engine: &Engine,
        mut info: ModuleInfo,
        parts: ArtifactParts,
        codegen: CodegenTarget,
        trampolines: Vec<Arc<SignatureTrampolines>>,
    ) -> Result<Module, Error> {
        let code = CodeMemory::new(&parts.code, |text| {
            for reloc in &parts.libcalls {
                let Some(address) = wazerox_runtime::libcalls::address(&reloc.libcall) else {
                    return Err(format!("unknown libcall {}", reloc.libcall));
                };
                let value = (address as i64 + reloc.addend) as u64;
                let at = reloc.offset as usize;
                text[at..at + 8].copy_from_slice(&value.to_le_bytes());
            }
            Ok(())
        })
        .map_err(|e| Error::with_kind(ErrorKind::Unsupported, e))?;
        let base = code.base();
        let functions = parts
            .functions
            .iter()
            .enumerate()
            .map(|(i, &(start, end))| FunctionRange {
                start,
                end,
                func_index: info.defined_to_func_index(i as u32).0,
            })
            .collect();
        let function_addresses = parts
            .functions
            .iter()
            .map(|&(start, _)| base + start as usize)
            .collect();
        let type_ids: Arc<[u32]> = engine.register_module_types(&info).into();
        info.to_engine_form(&type_ids);
        let source_map = if engine.backtrace_details() {
            crate::debug::DwarfSourceMap::new(&info, &parts.wasm)
                .map(|map| Arc::new(map) as Arc<dyn wazerox_runtime::code_registry::SourceMap>)
        } else {
            None
        };
        let module_code = Arc::new(
            ModuleCode::new(
                code,
                functions,
                parts.traps.clone(),
                info.module_name.clone(),
                info.function_names.clone(),
            )
            .with_address_map(parts.address_map.clone())
            .with_debug_info(info.function_body_offsets.clone(), source_map)
            .with_handlers(parts.handlers.clone())
            .with_stack_maps(parts.stack_maps.clone()),
        );
        code_registry::register(&module_code);
        let module_name = info.module_name.as_deref().unwrap_or("<module>");
        crate::profiling::register(
            engine,
            parts
                .functions
                .iter()
                .enumerate()
                .map(|(i, &(start, end))| {
                    let index = info.defined_to_func_index(i as u32).0;
                    let name = match info.function_names.get(&index) {
                        Some(name) => format!("wasm[{module_name}]::{name}"),
                        None => format!("wasm[{module_name}]::function[{index}]"),
                    };
                    (name, base + start as usize, (end - start) as usize)
                }),
        );
        Ok(Module(Arc::new(ModuleInner {
            engine: engine.clone(),
            info: Arc::new(info),
            _code: Some(module_code),
            function_addresses,
            #[cfg(feature = "cranelift")]
            lazy: None,
            type_ids,
            parts,
            codegen,
            trampolines,
            memory_images: OnceLock::new(),
            table_images: OnceLock::new(),
        })))
    }

    /// Checks that `bytes` is a valid module binary without compiling it.
    pub fn validate(engine: &Engine, bytes: &[u8]) -> Result<(), Error> {
        let translation = wazerox_environ::parse(bytes, engine.config().features)?;
        for body in translation.bodies {
            let mut validator = body
                .validator
                .into_validator(wasmparser::FuncValidatorAllocations::default());
            validator.validate(&body.body).map_err(|e| {
                Error::with_kind(ErrorKind::Validation, format!("invalid module: {e}"))
            })?;
        }
        Ok(())
    }

    /// The engine the module was compiled for.
    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }

    /// The module's name from its name section.
    pub fn name(&self) -> Option<&str> {
        self.0.info.module_name.as_deref()
    }

    /// The module's imports, in order.
    pub fn imports(&self) -> impl ExactSizeIterator<Item = ImportType> + '_ {
        let info = &self.0.info;
        info.imports.iter().map(move |i| ImportType {
            module: i.module.clone(),
            name: i.name.clone(),
            ty: ExternType::from_entity(info.import_type(i)),
        })
    }

    /// The module's exports, in order.
    pub fn exports(&self) -> impl ExactSizeIterator<Item = ExportType> + '_ {
        let info = &self.0.info;
        info.exports.iter().map(move |e| ExportType {
            name: e.name.clone(),
            ty: ExternType::from_entity(info.export_type(e)),
        })
    }

    pub(crate) fn info(&self) -> &Arc<ModuleInfo> {
        &self.0.info
    }

    /// The memory images (see `wazerox_runtime::memory_image`), built by the first
    /// instantiation; concurrent first instantiations build it once.
    pub(crate) fn memory_images(&self) -> &[Option<Arc<MemoryImage>>] {
        self.0
            .memory_images
            .get_or_init(|| memory_image::memory_images(&self.0.info))
    }

    /// The table images (see `wazerox_runtime::table_image`), built like the
    /// memory images.
    pub(crate) fn table_images(&self) -> &[Option<Arc<TableImage>>] {
        self.0
            .table_images
            .get_or_init(|| wazerox_runtime::table_image::table_images(&self.0.info))
    }

    /// The code address each defined function's reference starts with in a new
    /// instance: null for a function not compiled yet.
    pub(crate) fn function_code(&self) -> Vec<*const u8> {
        #[cfg(feature = "cranelift")]
        if let Some(lazy) = &self.0.lazy {
            return lazy.current_addresses();
        }
        self.0
            .function_addresses
            .iter()
            .map(|a| *a as *const u8)
            .collect()
    }

    /// What compiles the functions of a lazily compiled module on demand.
    pub(crate) fn lazy_functions(&self) -> Option<Arc<dyn wazerox_runtime::lazy::LazyFunctions>> {
        #[cfg(feature = "cranelift")]
        if let Some(lazy) = &self.0.lazy {
            return Some(lazy.clone());
        }
        None
    }

    /// How many functions of a lazily compiled module have been compiled so far;
    /// `None` for a module compiled eagerly (all of them are).
    pub fn lazily_compiled_functions(&self) -> Option<usize> {
        #[cfg(feature = "cranelift")]
        if let Some(lazy) = &self.0.lazy {
            return Some(lazy.compiled_count());
        }
        None
    }

    pub(crate) fn type_id_of_func(&self, func: FuncIndex) -> u32 {
        self.0.type_ids[self.0.info.functions[func.index()].index()]
    }
}
