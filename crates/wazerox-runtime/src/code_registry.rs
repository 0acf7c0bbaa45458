//! The process-wide registry of compiled code ranges.
//!
//! The signal handler asks it whether a faulting PC is JIT code, and trap handling
//! and backtraces map PCs to functions and trap codes. The registry holds `Weak`
//! references: registering never keeps code alive, and dropping a `ModuleCode`
//! unregisters it.
//!
//! The handler takes the registry's read lock. That is acceptable in a signal
//! handler because no thread faults while holding the write lock (registration only
//! inserts into a map), so the worst case is a short wait for another thread's
//! registration to finish.

use crate::code_memory::CodeMemory;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, Weak};
use wazerox_frontend::TrapCode;

/// A compiled function's place in its code image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionRange {
    pub start: u32,
    pub end: u32,
    /// The function's index in its module (imports counted).
    pub func_index: u32,
}

/// Compiled code plus what is needed to interpret PCs inside it.
#[derive(Debug)]
pub struct ModuleCode {
    pub code: CodeMemory,
    /// Sorted by `start`.
    pub functions: Vec<FunctionRange>,
    /// Trap sites, sorted by offset.
    pub traps: Vec<(u32, TrapCode)>,
    pub module_name: Option<String>,
    pub func_names: HashMap<u32, String>,
}

impl ModuleCode {
    pub fn new(
        code: CodeMemory,
        mut functions: Vec<FunctionRange>,
        mut traps: Vec<(u32, TrapCode)>,
        module_name: Option<String>,
        func_names: HashMap<u32, String>,
    ) -> ModuleCode {
        functions.sort_by_key(|f| f.start);
        traps.sort_by_key(|t| t.0);
        ModuleCode {
            code,
            functions,
            traps,
            module_name,
            func_names,
        }
    }

    pub fn trap_code_at(&self, offset: u32) -> Option<TrapCode> {
        self.traps
            .binary_search_by_key(&offset, |t| t.0)
            .ok()
            .map(|i| self.traps[i].1)
    }

    pub fn function_at(&self, offset: u32) -> Option<&FunctionRange> {
        let i = self.functions.partition_point(|f| f.start <= offset);
        let f = self.functions.get(i.checked_sub(1)?)?;
        (offset < f.end).then_some(f)
    }

    pub fn func_name(&self, func_index: u32) -> Option<&str> {
        self.func_names.get(&func_index).map(String::as_str)
    }
}

impl Drop for ModuleCode {
    fn drop(&mut self) {
        unregister(self.code.base());
    }
}

type Registry = BTreeMap<usize, (usize, Weak<ModuleCode>)>;

static REGISTRY: RwLock<Registry> = RwLock::new(BTreeMap::new());

/// Makes `code`'s range known to trap handling.
pub fn register(code: &Arc<ModuleCode>) {
    let start = code.code.base();
    let end = start + code.code.len();
    REGISTRY
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(start, (end, Arc::downgrade(code)));
}

/// Forgets the range starting at `start`.
pub fn unregister(start: usize) {
    REGISTRY
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&start);
}

fn find(registry: &Registry, pc: usize) -> Option<(&usize, &(usize, Weak<ModuleCode>))> {
    let (start, entry) = registry.range(..=pc).next_back()?;
    (pc < entry.0).then_some((start, entry))
}

/// The code containing `pc` and `pc`'s offset in it.
pub fn lookup(pc: usize) -> Option<(Arc<ModuleCode>, u32)> {
    let registry = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    let (start, (_, code)) = find(&registry, pc)?;
    Some((code.upgrade()?, (pc - start) as u32))
}

/// Whether `pc` lies in registered compiled code (for the signal handler).
pub fn is_jit_code(pc: usize) -> bool {
    let registry = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    find(&registry, pc).is_some()
}
