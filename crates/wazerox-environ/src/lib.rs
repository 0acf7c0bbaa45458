//! What the wazerox translator and VM share, free of Cranelift.
//!
//! - [`parse`] decodes and validates a module into [`ModuleInfo`] (plain data: types,
//!   imports, exports, segments, names) plus its function bodies, which the
//!   translator (`wazerox-frontend`) turns into code.
//! - [`VMOffsets`] states the VMContext layout once, for translator and runtime.
//! - [`compiled`] describes generated code as plain data (code bytes, trap and
//!   relocation tables, trampolines), which artifacts store.
//! - [`TrapCode`], [`Builtin`] and [`TranslationConfig`] are the contracts between
//!   generated code and the runtime: why code trapped, which runtime functions it
//!   calls, and the settings both must agree on.
//!
//! Nothing here generates code, maps memory or handles signals: a runtime-only build
//! (loading precompiled artifacts) links this crate and not Cranelift.

pub mod builtins;
pub mod compiled;
mod decode;
pub mod gc;
pub mod module_info;
pub mod parse;
mod throws;
pub mod trap;
pub mod tunables;
pub mod types;
pub mod vmoffsets;

pub use builtins::Builtin;
pub use compiled::{ExceptionHandler, LibcallRelocation, SignatureTrampolinesCode, StackMap};
pub use module_info::*;
pub use parse::{
    FunctionBodyData, ModuleTranslation, WasmError, WasmErrorKind, parse, parse_validated,
};
pub use trap::TrapCode;
pub use tunables::{DEFAULT_GUARD_BYTES, DEFAULT_MEMORY_RESERVATION, TranslationConfig};
pub use types::*;
pub use vmoffsets::VMOffsets;
pub use wasmparser::WasmFeatures;
