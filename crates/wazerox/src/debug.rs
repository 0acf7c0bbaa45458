//! Source positions for backtraces from a module's DWARF (`.debug_*` custom
//! sections, as clang and rustc emit with `-g`).
//!
//! Decisions:
//! - Parsed lazily, on the first backtrace that asks, and only when backtrace
//!   details are on (`Config::wasm_backtrace_details`): most modules never trap, and
//!   DWARF of a big program takes time and memory to index.
//! - Addresses in Wasm DWARF are offsets from the start of the code section's
//!   contents; backtraces know module offsets, so lookups subtract that start.
//! - Only the debug sections are kept (copied out of the binary), not the binary.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use wazerox_environ::ModuleInfo;
use wazerox_runtime::code_registry::{SourceLocation, SourceMap};

type Reader = gimli::EndianArcSlice<gimli::LittleEndian>;

/// When a backtrace resolves source positions from DWARF.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum WasmBacktraceDetails {
    /// Always, for modules with debug info.
    Enable,
    /// Never: frames show function names and Wasm offsets only.
    Disable,
    /// When the environment variable `WAZEROX_BACKTRACE_DETAILS` is `1` (the
    /// default).
    #[default]
    Environment,
}

impl WasmBacktraceDetails {
    pub(crate) fn enabled(self) -> bool {
        match self {
            WasmBacktraceDetails::Enable => true,
            WasmBacktraceDetails::Disable => false,
            WasmBacktraceDetails::Environment => {
                std::env::var_os("WAZEROX_BACKTRACE_DETAILS").is_some_and(|v| v == "1")
            }
        }
    }
}

/// A module's DWARF, indexed on first use.
pub(crate) struct DwarfSourceMap {
    sections: HashMap<String, Arc<[u8]>>,
    code_section_offset: u32,
    context: OnceLock<Option<Mutex<addr2line::Context<Reader>>>>,
}

impl std::fmt::Debug for DwarfSourceMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DwarfSourceMap")
            .field("sections", &self.sections.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl DwarfSourceMap {
    /// The source map of `info`'s module (whose binary is `wasm`), if it has line
    /// information.
    pub(crate) fn new(info: &ModuleInfo, wasm: &[u8]) -> Option<DwarfSourceMap> {
        let sections: HashMap<String, Arc<[u8]>> = info
            .debug_sections
            .iter()
            .filter_map(|(name, range)| Some((name.clone(), Arc::from(wasm.get(range.clone())?))))
            .collect();
        if !sections.contains_key(".debug_line") {
            return None;
        }
        Some(DwarfSourceMap {
            sections,
            code_section_offset: info.code_section_offset,
            context: OnceLock::new(),
        })
    }

    fn context(&self) -> Option<&Mutex<addr2line::Context<Reader>>> {
        self.context
            .get_or_init(|| {
                let dwarf = gimli::Dwarf::load(|id| -> Result<Reader, gimli::Error> {
                    let bytes = self
                        .sections
                        .get(id.name())
                        .cloned()
                        .unwrap_or_else(|| Arc::from(&[][..]));
                    Ok(gimli::EndianArcSlice::new(bytes, gimli::LittleEndian))
                })
                .ok()?;
                addr2line::Context::from_dwarf(dwarf).ok().map(Mutex::new)
            })
            .as_ref()
    }
}

impl SourceMap for DwarfSourceMap {
    fn locate(&self, wasm_offset: u32) -> Vec<SourceLocation> {
        let (Some(context), Some(address)) = (
            self.context(),
            wasm_offset.checked_sub(self.code_section_offset),
        ) else {
            return Vec::new();
        };
        let context = context.lock().unwrap_or_else(|e| e.into_inner());
        let mut locations = Vec::new();
        if let Ok(mut frames) = context.find_frames(u64::from(address)).skip_all_loads() {
            while let Ok(Some(frame)) = frames.next() {
                if let Some(location) = frame.location {
                    locations.push(SourceLocation {
                        file: location.file.map(str::to_string),
                        line: location.line,
                        column: location.column,
                    });
                }
            }
        }
        locations
    }
}
