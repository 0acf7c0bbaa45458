//! The one place that decides where every VMContext field lives.
//!
//! The translator emits loads at these offsets and the runtime writes the fields at
//! the same offsets, so the layout is stated once. All offsets are from the start of
//! an instance's VMContext, which is 16-byte aligned.
//!
//! ```text
//!   0  magic (u32) + padding
//!   8  *const VMStoreContext     stack limit, fuel, epoch
//!  16  *const builtin table      runtime functions compiled code calls
//!  24  *const u32                canonical type id per module type index
//!  32  *mut Instance             opaque to compiled code; host calls find their instance
//!  40  [*mut VMMemoryDefinition; memories]
//!      [*mut VMTableDefinition;  tables]
//!      [*mut VMGlobalDefinition; globals]   imported ones point into the exporter
//!      [*const VMTag; tags]                 a tag's identity; imported ones the exporter's
//!      [VMFuncRef; functions]               24 bytes each: code, vmctx, type id
//!      (align 16) [VMGlobalDefinition; defined globals]   16 bytes each
//! ```

use crate::module_info::ModuleInfo;
use crate::types::{FuncIndex, GlobalIndex, MemoryIndex, TableIndex, TagIndex};

/// Magic number at the start of every VMContext, to catch stray pointers in debug checks.
pub const VMCONTEXT_MAGIC: u32 = u32::from_le_bytes(*b"wzrx");

/// Size of a `VMFuncRef`.
pub const VMFUNCREF_SIZE: u32 = 24;
/// Offsets inside a `VMFuncRef`.
pub const VMFUNCREF_WASM_CALL: u32 = 0;
pub const VMFUNCREF_VMCTX: u32 = 8;
pub const VMFUNCREF_TYPE_ID: u32 = 16;

/// Offsets inside `VMMemoryDefinition`.
pub const VMMEMORY_BASE: u32 = 0;
pub const VMMEMORY_CURRENT_LENGTH: u32 = 8;

/// Offsets inside `VMTableDefinition`.
pub const VMTABLE_BASE: u32 = 0;
pub const VMTABLE_CURRENT_ELEMENTS: u32 = 8;
/// Set (non-zero) by every write of an element since the table was last filled
/// from its image: a pooled table that was not written needs no refill.
pub const VMTABLE_WRITTEN: u32 = 16;

/// Offsets inside `VMStoreContext`.
pub const VMSTORE_STACK_LIMIT: u32 = 0;
pub const VMSTORE_FUEL_CONSUMED: u32 = 8;
pub const VMSTORE_EPOCH_DEADLINE: u32 = 16;
pub const VMSTORE_EPOCH: u32 = 32;

/// Offsets inside an exception object (`VMExnRef` points at its start): the
/// thrown tag's identity (`*const VMTag`), then the payload in 16-byte slots.
pub const VMEXN_TAG: u32 = 0;
/// A byte of the header set (to 1) once the object may be referenced from
/// somewhere the exception collector does not scan: a global, a table, a GC
/// object, the host (docs/runtime.md, "Exception objects").
pub const VMEXN_ESCAPED: u32 = 8;
pub const VMEXN_VALUES: u32 = 16;
pub const VMEXN_SLOT: u32 = 16;

/// Size of a global's storage.
pub const VMGLOBAL_SIZE: u32 = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VMOffsets {
    pub num_memories: u32,
    pub num_tables: u32,
    pub num_globals: u32,
    pub num_functions: u32,
    pub num_defined_globals: u32,
    pub num_tags: u32,
    memories: u32,
    memory_bases: u32,
    tables: u32,
    globals: u32,
    tags: u32,
    func_refs: u32,
    defined_globals: u32,
    size: u32,
}

impl VMOffsets {
    pub const MAGIC: u32 = 0;
    pub const STORE_CONTEXT: u32 = 8;
    pub const BUILTINS: u32 = 16;
    pub const TYPE_IDS: u32 = 24;
    pub const INSTANCE: u32 = 32;
    const HEADER_SIZE: u32 = 40;

    pub fn new(module: &ModuleInfo) -> Self {
        let num_memories = module.memories.len() as u32;
        let num_tables = module.tables.len() as u32;
        let num_globals = module.globals.len() as u32;
        let num_functions = module.functions.len() as u32;
        let num_defined_globals = module.num_defined_globals();
        let memories = Self::HEADER_SIZE;
        let memory_bases = memories + 8 * num_memories;
        let tables = memory_bases + 8 * num_memories;
        let globals = tables + 8 * num_tables;
        let num_tags = module.tags.len() as u32;
        let tags = globals + 8 * num_globals;
        let func_refs = tags + 8 * num_tags;
        let defined_globals = (func_refs + VMFUNCREF_SIZE * num_functions).next_multiple_of(16);
        let size = defined_globals + VMGLOBAL_SIZE * num_defined_globals;
        VMOffsets {
            num_memories,
            num_tables,
            num_globals,
            num_functions,
            num_defined_globals,
            num_tags,
            memories,
            memory_bases,
            tables,
            globals,
            tags,
            func_refs,
            defined_globals,
            size,
        }
    }

    /// Total size of the VMContext in bytes.
    pub fn size(&self) -> u32 {
        self.size
    }
    /// Slot holding the pointer to memory `index`'s definition.
    pub fn memory_pointer(&self, index: MemoryIndex) -> u32 {
        debug_assert!(index.0 < self.num_memories);
        self.memories + 8 * index.0
    }
    /// Slot holding a copy of memory `index`'s base address. Memories never move,
    /// so the copy never goes stale; compiled code reads it with one load instead of
    /// two (through the definition), which small hot functions notice.
    pub fn memory_base(&self, index: MemoryIndex) -> u32 {
        debug_assert!(index.0 < self.num_memories);
        self.memory_bases + 8 * index.0
    }
    /// Slot holding the pointer to table `index`'s definition.
    pub fn table_pointer(&self, index: TableIndex) -> u32 {
        debug_assert!(index.0 < self.num_tables);
        self.tables + 8 * index.0
    }
    /// Slot holding the pointer to global `index`'s storage.
    pub fn global_pointer(&self, index: GlobalIndex) -> u32 {
        debug_assert!(index.0 < self.num_globals);
        self.globals + 8 * index.0
    }
    /// Slot holding tag `index`'s identity (`*const VMTag`).
    pub fn tag_pointer(&self, index: TagIndex) -> u32 {
        debug_assert!(index.0 < self.num_tags);
        self.tags + 8 * index.0
    }
    /// The `VMFuncRef` of function `index` (for imports: a copy of the exporter's).
    pub fn func_ref(&self, index: FuncIndex) -> u32 {
        debug_assert!(index.0 < self.num_functions);
        self.func_refs + VMFUNCREF_SIZE * index.0
    }
    /// Storage of the `n`th defined global.
    pub fn defined_global(&self, defined_index: u32) -> u32 {
        debug_assert!(defined_index < self.num_defined_globals);
        self.defined_globals + VMGLOBAL_SIZE * defined_index
    }
}
