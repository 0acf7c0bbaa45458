//! `Module`: a compiled module, immutable and shareable across stores and threads.

use crate::engine::Engine;
use crate::error::{Error, ErrorKind};
use crate::values::ExternType;
use std::sync::Arc;
use wazerox_frontend::{FuncIndex, ModuleInfo};
use wazerox_runtime::code_memory::CodeMemory;
use wazerox_runtime::code_registry::{self, FunctionRange, ModuleCode};

pub(crate) struct ModuleInner {
    pub engine: Engine,
    pub info: Arc<ModuleInfo>,
    /// Keeps the code mapped and registered for as long as the module lives.
    pub _code: Arc<ModuleCode>,
    /// Address of each defined function's code.
    pub function_addresses: Vec<usize>,
    /// Engine-wide type id of each type index.
    pub type_ids: Arc<[u32]>,
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
    pub fn module(&self) -> &str {
        &self.module
    }
    pub fn name(&self) -> &str {
        &self.name
    }
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
    pub fn name(&self) -> &str {
        &self.name
    }
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

    /// Compiles a module from its binary format.
    pub fn from_binary(engine: &Engine, binary: &[u8]) -> Result<Module, Error> {
        let config = engine.config();
        let translation = wazerox_frontend::parse(binary, config.features)?;
        let compiled = engine
            .0
            .compiler
            .compile_module(translation, &config.translation)?;
        let mut unresolved = None;
        let code = CodeMemory::new(&compiled.code, |text| {
            let base = text.as_ptr() as usize;
            for reloc in &compiled.libcall_relocations {
                let Some(address) = wazerox_runtime::libcalls::address(&reloc.libcall) else {
                    unresolved = Some(reloc.libcall.clone());
                    return Err(format!("unknown libcall {}", reloc.libcall));
                };
                let value = (address as i64 + reloc.addend) as u64;
                let at = reloc.offset as usize;
                debug_assert!(base != 0);
                text[at..at + 8].copy_from_slice(&value.to_le_bytes());
            }
            Ok(())
        })
        .map_err(|e| Error::with_kind(ErrorKind::Unsupported, e))?;
        let info = compiled.info;
        let base = code.base();
        let functions = compiled
            .functions
            .iter()
            .enumerate()
            .map(|(i, &(start, end))| FunctionRange {
                start,
                end,
                func_index: info.defined_to_func_index(i as u32).0,
            })
            .collect();
        let function_addresses = compiled
            .functions
            .iter()
            .map(|&(start, _)| base + start as usize)
            .collect();
        let type_ids: Arc<[u32]> = info.types.iter().map(|t| engine.type_id(t)).collect();
        let module_code = Arc::new(ModuleCode::new(
            code,
            functions,
            compiled.traps,
            info.module_name.clone(),
            info.function_names.clone(),
        ));
        code_registry::register(&module_code);
        Ok(Module(Arc::new(ModuleInner {
            engine: engine.clone(),
            info: Arc::new(info),
            _code: module_code,
            function_addresses,
            type_ids,
        })))
    }

    /// Checks that `bytes` is a valid module binary without compiling it.
    pub fn validate(engine: &Engine, bytes: &[u8]) -> Result<(), Error> {
        let translation = wazerox_frontend::parse(bytes, engine.config().features)?;
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

    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }

    /// The module's name from its name section.
    pub fn name(&self) -> Option<&str> {
        self.0.info.module_name.as_deref()
    }

    pub fn imports(&self) -> impl ExactSizeIterator<Item = ImportType> + '_ {
        let info = &self.0.info;
        info.imports.iter().map(move |i| ImportType {
            module: i.module.clone(),
            name: i.name.clone(),
            ty: ExternType::from_entity(info.import_type(i)),
        })
    }

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

    pub(crate) fn type_id_of_func(&self, func: FuncIndex) -> u32 {
        self.0.type_ids[self.0.info.functions[func.index()].index()]
    }
}
