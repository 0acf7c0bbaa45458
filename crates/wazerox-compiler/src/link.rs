//! Linking: lays out compiled functions and trampolines in one code image, resolves
//! calls between them (PC-relative, so the image can be mapped anywhere), and
//! merges the trap tables.

use crate::CompiledFunction;
use cranelift_codegen::binemit::Reloc;
use wazerox_environ::{
    ExceptionHandler, LibcallRelocation, ModuleInfo, StackMap, TrapCode, WasmError, WasmErrorKind,
};

/// A linked module: code image plus the tables the runtime needs.
#[derive(Debug, Clone)]
pub struct CompiledModule {
    pub info: ModuleInfo,
    pub code: Vec<u8>,
    /// `(start, end)` offsets of each defined function, in definition order.
    pub functions: Vec<(u32, u32)>,
    /// Trap sites, sorted by offset.
    pub traps: Vec<(u32, TrapCode)>,
    /// `try_call` sites, sorted by return address.
    pub handlers: Vec<ExceptionHandler>,
    /// GC roots of call sites, sorted by return address.
    pub stack_maps: Vec<StackMap>,
    pub libcall_relocations: Vec<LibcallRelocation>,
    /// `(code offset, Wasm offset in the binary)` at each change of Wasm
    /// instruction, sorted by code offset.
    pub address_map: Vec<(u32, u32)>,
}

/// One lazily compiled function's code and tables, offsets relative to its first
/// byte (docs/lazy-compilation.md). It calls other functions only through their
/// function references, so it has no call relocations.
#[derive(Debug, Clone)]
pub struct CompiledFunctionImage {
    pub code: Vec<u8>,
    /// Trap sites, sorted by offset.
    pub traps: Vec<(u32, TrapCode)>,
    /// `try_call` sites, sorted by return address.
    pub handlers: Vec<ExceptionHandler>,
    /// GC roots of call sites, sorted by return address.
    pub stack_maps: Vec<StackMap>,
    pub libcall_relocations: Vec<LibcallRelocation>,
    /// `(code offset, Wasm offset in the binary)`, sorted by code offset.
    pub address_map: Vec<(u32, u32)>,
}

/// The image of a function compiled on its own.
pub(crate) fn function_image(f: CompiledFunction) -> Result<CompiledFunctionImage, WasmError> {
    if let Some((_, _, callee, _)) = f.calls.first() {
        return Err(link_error(format!(
            "lazily compiled code calls function {callee} directly"
        )));
    }
    let mut libcall_relocations = Vec::with_capacity(f.libcalls.len());
    for (offset, kind, libcall, addend) in f.libcalls {
        if kind != Reloc::Abs8 {
            return Err(link_error(format!(
                "unsupported libcall relocation {kind:?}"
            )));
        }
        libcall_relocations.push(LibcallRelocation {
            offset,
            libcall,
            addend,
        });
    }
    let mut traps = f.traps;
    traps.sort_by_key(|t| t.0);
    let mut handlers = f.handlers;
    handlers.sort_by_key(|h| h.return_address);
    let mut stack_maps = f.stack_maps;
    stack_maps.sort_by_key(|m| m.return_address);
    Ok(CompiledFunctionImage {
        code: f.code,
        traps,
        handlers,
        stack_maps,
        libcall_relocations,
        address_map: f.address_map,
    })
}

fn link_error(message: String) -> WasmError {
    WasmError {
        kind: WasmErrorKind::Unsupported,
        message,
        offset: None,
    }
}

pub(crate) fn link(
    info: ModuleInfo,
    functions: Vec<CompiledFunction>,
) -> Result<CompiledModule, WasmError> {
    let mut code = Vec::new();
    let mut placed = Vec::with_capacity(functions.len());
    for f in &functions {
        let align = f.alignment.max(16) as usize;
        code.resize(code.len().next_multiple_of(align), 0);
        let start = code.len() as u32;
        code.extend_from_slice(&f.code);
        placed.push((start, code.len() as u32));
    }
    let num_functions = functions.len();
    let mut traps = Vec::new();
    let mut handlers = Vec::new();
    let mut stack_maps = Vec::new();
    let mut libcall_relocations = Vec::new();
    let mut address_map = Vec::new();
    for (f, &(start, _)) in functions.iter().zip(&placed) {
        for &(offset, kind, callee, addend) in &f.calls {
            let defined = callee
                .checked_sub(info.num_imported_functions)
                .filter(|d| (*d as usize) < num_functions)
                .ok_or_else(|| link_error(format!("call to unknown function {callee}")))?;
            let target = i64::from(placed[defined as usize].0);
            let site = i64::from(start + offset);
            patch_call(&mut code, kind, site, target + addend)?;
        }
        for (offset, kind, libcall, addend) in &f.libcalls {
            if *kind != Reloc::Abs8 {
                return Err(link_error(format!(
                    "unsupported libcall relocation {kind:?}"
                )));
            }
            libcall_relocations.push(LibcallRelocation {
                offset: start + offset,
                libcall: libcall.clone(),
                addend: *addend,
            });
        }
        traps.extend(f.traps.iter().map(|&(offset, code)| (start + offset, code)));
        address_map.extend(
            f.address_map
                .iter()
                .map(|&(offset, wasm)| (start + offset, wasm)),
        );
        handlers.extend(f.handlers.iter().map(|h| ExceptionHandler {
            return_address: start + h.return_address,
            handler: start + h.handler,
            sp_to_fp: h.sp_to_fp,
        }));
        stack_maps.extend(f.stack_maps.iter().map(|m| StackMap {
            return_address: start + m.return_address,
            ..m.clone()
        }));
    }
    traps.sort_by_key(|t| t.0);
    handlers.sort_by_key(|h| h.return_address);
    stack_maps.sort_by_key(|m| m.return_address);
    Ok(CompiledModule {
        info,
        code,
        functions: placed,
        traps,
        handlers,
        stack_maps,
        libcall_relocations,
        address_map,
    })
}

/// Writes a PC-relative call displacement at `site` so the call reaches `target`.
fn patch_call(code: &mut [u8], kind: Reloc, site: i64, target: i64) -> Result<(), WasmError> {
    let at = site as usize;
    match kind {
        Reloc::X86CallPCRel4 | Reloc::X86PCRel4 => {
            let delta = i32::try_from(target - site)
                .map_err(|_| link_error("code image larger than 2 GiB".into()))?;
            code[at..at + 4].copy_from_slice(&delta.to_le_bytes());
        }
        Reloc::Arm64Call => {
            let delta = (target - site) >> 2;
            if !(-(1 << 25)..(1 << 25)).contains(&delta) {
                return Err(link_error("code image larger than 128 MiB".into()));
            }
            let insn = u32::from_le_bytes(code[at..at + 4].try_into().unwrap());
            let insn = (insn & 0xfc00_0000) | (delta as u32 & 0x03ff_ffff);
            code[at..at + 4].copy_from_slice(&insn.to_le_bytes());
        }
        other => return Err(link_error(format!("unsupported call relocation {other:?}"))),
    }
    Ok(())
}
