//! The process-wide registry of compiled code ranges.
//!
//! The signal handler asks it whether a faulting PC is JIT code, and trap handling
//! and backtraces map PCs to functions and trap codes. The registry holds `Weak`
//! references: registering never keeps code alive, and dropping a `ModuleCode`
//! unregisters it before its pages are unmapped.
//!
//! The handler takes the registry's read lock ([`is_jit_code`]). That is acceptable
//! in a signal handler because:
//! - no thread faults while holding the write lock (writers only insert into or
//!   remove from a map), so a writer on another thread only delays us briefly;
//! - a fault on the very thread that holds the write lock would deadlock, so each
//!   writer marks its thread for the duration, and the handler answers "not JIT
//!   code" there without touching the lock (the PC is in registry code anyway);
//! - on Linux the std `RwLock` is a futex: taking it for reading allocates nothing
//!   and the wait is a plain system call.

use crate::code_memory::CodeMemory;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, RwLockWriteGuard, Weak};
use wazerox_environ::{ExceptionHandler, StackMap, TrapCode};

/// A compiled function's place in its code image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionRange {
    /// Offset of the function's first byte in the code.
    pub start: u32,
    /// Offset just past the function's last byte.
    pub end: u32,
    /// The function's index in its module (imports counted).
    pub func_index: u32,
}

/// A source position a Wasm instruction was compiled from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLocation {
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

/// Maps Wasm offsets (in the module binary) to source positions. The API
/// implements it from a module's DWARF; the runtime only carries it along with the
/// code, so backtraces can ask.
pub trait SourceMap: Send + Sync + std::fmt::Debug {
    /// The source positions of the instruction at `wasm_offset`, innermost inlined
    /// frame first; empty when unknown.
    fn locate(&self, wasm_offset: u32) -> Vec<SourceLocation>;
}

/// Compiled code plus what is needed to interpret PCs inside it.
#[derive(Debug)]
pub struct ModuleCode {
    pub code: CodeMemory,
    /// Sorted by `start`.
    pub functions: Vec<FunctionRange>,
    /// Trap sites, sorted by offset.
    pub traps: Vec<(u32, TrapCode)>,
    /// `try_call` sites and their landing blocks, sorted by return address.
    pub handlers: Vec<ExceptionHandler>,
    /// GC roots of call sites, sorted by return address (docs/gc.md).
    pub stack_maps: Vec<StackMap>,
    pub module_name: Option<String>,
    pub func_names: HashMap<u32, String>,
    /// `(code offset, Wasm offset)` where the Wasm instruction changes, sorted;
    /// `u32::MAX` for code of no instruction (see [`ModuleCode::with_address_map`]).
    pub address_map: Vec<(u32, u32)>,
    /// Where each defined function's body starts in the module binary.
    pub function_body_offsets: Vec<u32>,
    /// Source positions of Wasm offsets, when the module has debug info and the
    /// engine asked for them.
    pub source_map: Option<Arc<dyn SourceMap>>,
}

impl ModuleCode {
    /// Bundles code with its tables; sorts the tables so lookups can binary-search.
    pub fn new(
        code: CodeMemory,
        mut functions: Vec<FunctionRange>,
        mut traps: Vec<(u32, TrapCode)>,
        module_name: Option<String>,
        func_names: HashMap<u32, String>,
    ) -> ModuleCode {
        functions.sort_by_key(|f| f.start);
        traps.sort_by_key(|t| t.0);
        debug_assert!(
            functions
                .iter()
                .all(|f| f.start <= f.end && f.end as usize <= code.len()),
            "function ranges lie within the code"
        );
        ModuleCode {
            code,
            functions,
            traps,
            handlers: Vec::new(),
            stack_maps: Vec::new(),
            module_name,
            func_names,
            address_map: Vec::new(),
            function_body_offsets: Vec::new(),
            source_map: None,
        }
    }

    /// Adds where each defined function's body starts in the binary (backtraces
    /// report offsets within functions from it) and, optionally, a source map.
    pub fn with_debug_info(
        mut self,
        function_body_offsets: Vec<u32>,
        source_map: Option<Arc<dyn SourceMap>>,
    ) -> ModuleCode {
        self.function_body_offsets = function_body_offsets;
        self.source_map = source_map;
        self
    }

    /// The start of the body of `func_index` in the binary, if it is defined here.
    pub fn function_body_offset(&self, func_index: u32) -> Option<u32> {
        let first_defined = self.functions.iter().map(|f| f.func_index).min()?;
        let defined = func_index.checked_sub(first_defined)?;
        self.function_body_offsets.get(defined as usize).copied()
    }

    /// Adds the map from code offsets to the Wasm instructions they were compiled
    /// from, which backtraces use to report Wasm offsets.
    pub fn with_address_map(mut self, address_map: Vec<(u32, u32)>) -> ModuleCode {
        debug_assert!(address_map.windows(2).all(|w| w[0].0 <= w[1].0));
        self.address_map = address_map;
        self
    }

    /// The offset in the module binary of the Wasm instruction whose code contains
    /// `offset`, if it lies in a function and belongs to an instruction.
    pub fn wasm_offset_at(&self, offset: u32) -> Option<u32> {
        let function = self.function_at(offset)?;
        let i = self.address_map.partition_point(|e| e.0 <= offset);
        let &(start, wasm) = self.address_map.get(i.checked_sub(1)?)?;
        (start >= function.start && wasm != u32::MAX).then_some(wasm)
    }

    /// Adds the `try_call` sites of the code (before it is registered).
    pub fn with_handlers(mut self, mut handlers: Vec<ExceptionHandler>) -> ModuleCode {
        handlers.sort_by_key(|h| h.return_address);
        debug_assert!(
            handlers
                .iter()
                .all(|h| h.return_address as usize <= self.code.len()
                    && (h.handler as usize) < self.code.len()),
            "handler sites lie within the code"
        );
        self.handlers = handlers;
        self
    }

    /// Adds the stack maps of the code's call sites (before it is registered).
    pub fn with_stack_maps(mut self, mut stack_maps: Vec<StackMap>) -> ModuleCode {
        stack_maps.sort_by_key(|m| m.return_address);
        debug_assert!(
            stack_maps
                .iter()
                .all(|m| m.return_address as usize <= self.code.len()),
            "stack map sites lie within the code"
        );
        self.stack_maps = stack_maps;
        self
    }

    /// The stack map of the call whose return address is `offset`: `None` when
    /// no GC reference is live across that call.
    pub fn stack_map_at(&self, offset: u32) -> Option<&StackMap> {
        self.stack_maps
            .binary_search_by_key(&offset, |m| m.return_address)
            .ok()
            .map(|i| &self.stack_maps[i])
    }

    /// The landing block of the `try_call` whose return address is `offset`.
    pub fn handler_at(&self, offset: u32) -> Option<&ExceptionHandler> {
        self.handlers
            .binary_search_by_key(&offset, |h| h.return_address)
            .ok()
            .map(|i| &self.handlers[i])
    }

    /// The trap code recorded for the instruction at exactly `offset`.
    pub fn trap_code_at(&self, offset: u32) -> Option<TrapCode> {
        self.traps
            .binary_search_by_key(&offset, |t| t.0)
            .ok()
            .map(|i| self.traps[i].1)
    }

    /// The function whose code contains `offset` (none for trampolines and padding).
    pub fn function_at(&self, offset: u32) -> Option<&FunctionRange> {
        let i = self.functions.partition_point(|f| f.start <= offset);
        let f = self.functions.get(i.checked_sub(1)?)?;
        (offset < f.end).then_some(f)
    }

    /// The name section's name of `func_index`, if any.
    pub fn func_name(&self, func_index: u32) -> Option<&str> {
        self.func_names.get(&func_index).map(String::as_str)
    }
}

impl Drop for ModuleCode {
    fn drop(&mut self) {
        unregister(self.code.base());
    }
}

/// Start address → (end address, code).
type Registry = BTreeMap<usize, (usize, Weak<ModuleCode>)>;

static REGISTRY: RwLock<Registry> = RwLock::new(BTreeMap::new());

thread_local! {
    /// Whether this thread holds the registry's write lock. Const-initialized and
    /// without destructor, so the signal handler can read it.
    static WRITING: Cell<bool> = const { Cell::new(false) };
}

/// The write lock, with this thread marked as a writer for as long as it is held.
struct WriteGuard {
    registry: Option<RwLockWriteGuard<'static, Registry>>,
}

impl WriteGuard {
    fn lock() -> WriteGuard {
        WRITING.with(|w| w.set(true));
        WriteGuard {
            registry: Some(REGISTRY.write().unwrap_or_else(|e| e.into_inner())),
        }
    }

    fn registry(&mut self) -> &mut Registry {
        self.registry.as_mut().expect("held until drop")
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        // Release the lock before clearing the mark, never the other way round.
        drop(self.registry.take());
        WRITING.with(|w| w.set(false));
    }
}

/// Makes `code`'s range known to trap handling.
pub fn register(code: &Arc<ModuleCode>) {
    let start = code.code.base();
    let end = start + code.code.len();
    WriteGuard::lock()
        .registry()
        .insert(start, (end, Arc::downgrade(code)));
}

/// Forgets the range starting at `start`.
pub fn unregister(start: usize) {
    // The removed `Weak` drops after the lock is released; dropping a `Weak` never
    // runs `ModuleCode`'s destructor anyway.
    let _removed = WriteGuard::lock().registry().remove(&start);
}

fn find(registry: &Registry, pc: usize) -> Option<(usize, &Weak<ModuleCode>)> {
    let (start, (end, code)) = registry.range(..=pc).next_back()?;
    (pc < *end).then_some((*start, code))
}

/// The code containing `pc` and `pc`'s offset in it.
pub fn lookup(pc: usize) -> Option<(Arc<ModuleCode>, u32)> {
    let registry = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    let (start, code) = find(&registry, pc)?;
    // Code is at most 4 GiB (its tables use u32 offsets).
    Some((code.upgrade()?, (pc - start) as u32))
}

/// Whether `pc` lies in registered compiled code. Used by the signal handler: it
/// allocates nothing and never blocks on its own thread (see the module docs).
pub fn is_jit_code(pc: usize) -> bool {
    if WRITING.with(Cell::get) {
        return false;
    }
    let registry = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    find(&registry, pc).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(len: usize, functions: Vec<FunctionRange>) -> Arc<ModuleCode> {
        let code = CodeMemory::new(&vec![0xCC; len], |_| Ok(())).unwrap();
        Arc::new(ModuleCode::new(
            code,
            functions,
            vec![
                (7, TrapCode::IntegerOverflow),
                (3, TrapCode::HeapMisaligned),
            ],
            Some("m".into()),
            HashMap::from([(1, "f".to_string())]),
        ))
    }

    #[test]
    fn tables_answer_by_offset() {
        let m = module(
            32,
            vec![
                FunctionRange {
                    start: 16,
                    end: 30,
                    func_index: 2,
                },
                FunctionRange {
                    start: 4,
                    end: 10,
                    func_index: 1,
                },
            ],
        );
        assert_eq!(m.trap_code_at(3), Some(TrapCode::HeapMisaligned));
        assert_eq!(m.trap_code_at(7), Some(TrapCode::IntegerOverflow));
        assert_eq!(m.trap_code_at(4), None);
        assert_eq!(m.function_at(3), None);
        assert_eq!(m.function_at(4).map(|f| f.func_index), Some(1));
        assert_eq!(m.function_at(9).map(|f| f.func_index), Some(1));
        assert_eq!(m.function_at(10), None, "end is exclusive");
        assert_eq!(m.function_at(29).map(|f| f.func_index), Some(2));
        assert_eq!(m.function_at(31), None);
        assert_eq!(m.func_name(1), Some("f"));
        assert_eq!(m.func_name(2), None);
    }

    #[test]
    fn registered_code_is_found_until_dropped() {
        let m = module(100, Vec::new());
        let base = m.code.base();
        assert!(!is_jit_code(base));
        register(&m);
        assert!(is_jit_code(base));
        assert!(is_jit_code(base + 99));
        assert!(!is_jit_code(base + 100));
        assert!(!is_jit_code(base - 1));
        let (found, offset) = lookup(base + 42).unwrap();
        assert!(Arc::ptr_eq(&found, &m));
        assert_eq!(offset, 42);
        drop(found);
        drop(m);
        assert!(!is_jit_code(base), "dropping the code unregisters it");
        assert!(lookup(base).is_none());
    }

    #[test]
    fn the_registry_does_not_keep_code_alive() {
        let m = module(8, Vec::new());
        register(&m);
        let weak = Arc::downgrade(&m);
        drop(m);
        assert!(weak.upgrade().is_none());
    }
}
