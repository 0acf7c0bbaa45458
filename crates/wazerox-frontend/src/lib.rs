//! WebAssembly → Cranelift IR.
//!
//! - [`parse`] decodes and validates a module into [`ModuleInfo`] (plain data: types,
//!   imports, exports, segments, names) plus its function bodies.
//! - [`VMOffsets`] states the VMContext layout once for translator and runtime.
//! - [`FuncTranslator`] turns one function body into a Cranelift `Function`, split by
//!   operator family under `translate/`.
//!
//! This crate knows Cranelift IR and the VMContext layout; it knows nothing of mmap,
//! signals or instances.

pub mod builtins;
mod decode;
pub mod module_info;
mod parse;
pub mod signatures;
pub mod translate;
pub mod trap;
pub mod types;
pub mod vmoffsets;

pub use builtins::Builtin;
pub use module_info::*;
pub use parse::{
    FunctionBodyData, ModuleTranslation, WasmError, WasmErrorKind, parse, parse_validated,
};
pub use translate::{FuncTranslator, TranslationConfig};
pub use trap::TrapCode;
pub use types::*;
pub use vmoffsets::VMOffsets;
pub use wasmparser::WasmFeatures;
