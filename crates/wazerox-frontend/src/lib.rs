//! WebAssembly → Cranelift IR.
//!
//! [`FuncTranslator`] turns one function body of a module parsed by
//! `wazerox-environ` into a Cranelift `Function`, split by operator family under
//! `translate/`. [`signatures`] gives the native signatures of Wasm functions,
//! trampolines and builtins; [`trap`] maps trap codes to Cranelift's.
//!
//! This crate knows Cranelift IR and the VMContext layout (from `wazerox-environ`);
//! it knows nothing of mmap, signals or instances.

pub mod signatures;
pub mod translate;
pub mod trap;

pub use translate::FuncTranslator;
