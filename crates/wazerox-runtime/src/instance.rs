//! Instances: a VMContext plus the memories and tables an instance defines, and the
//! instantiation steps of the spec (globals, tables, element and data segments).
//!
//! An `Instance` is boxed and never moves: its VMContext points back at it (so
//! builtins called from compiled code can find it) and other instances may hold
//! pointers into it (imported memories, tables, globals, function references). The
//! store that owns it keeps it alive for as long as any instance could use those
//! pointers, i.e. until the store is dropped.

use crate::exceptions::VMTag;
use crate::instance_pool::{InstancePool, PoolLimitError, PooledTable};
use crate::lazy::{LazyFunctions, LazyStubs};
use crate::memory::{LinearMemory, MemoryStyle};
use crate::memory_image::MemoryImage;
use crate::pooling::PooledMemory;
use crate::table::Table;
use crate::table_image::TableImage;
use crate::vmcontext::{VMFuncRef, VMGlobalDefinition, VMStoreContext, ValRaw};
use std::alloc::Layout;
use std::sync::Arc;
use wazerox_environ::gc;
use wazerox_environ::vmoffsets::VMCONTEXT_MAGIC;
use wazerox_environ::{
    ConstExpr, ConstOp, DataMode, ElementMode, FuncIndex, GlobalIndex, MemoryIndex, ModuleInfo,
    TableIndex, TagIndex, TrapCode, VMOffsets, ValType,
};

/// What an instance imports, already resolved and type-checked by the caller.
#[derive(Default)]
pub struct Imports {
    pub functions: Vec<VMFuncRef>,
    pub tables: Vec<*mut Table>,
    pub memories: Vec<*mut LinearMemory>,
    pub globals: Vec<*mut VMGlobalDefinition>,
    pub tags: Vec<*const VMTag>,
}

/// Why instantiation failed after the instance was allocated.
#[derive(Debug)]
pub enum InstantiationError {
    /// A resource (memory reservation, table) could not be created.
    Resource(String),
    /// A limit of the pooling allocator was reached.
    Pool(PoolLimitError),
    /// A segment did not fit; per the spec this is a trap during instantiation.
    Trap(TrapCode),
}

impl std::fmt::Display for InstantiationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InstantiationError::Resource(m) => f.write_str(m),
            InstantiationError::Pool(e) => e.fmt(f),
            InstantiationError::Trap(code) => write!(f, "trap during instantiation: {code}"),
        }
    }
}

impl std::error::Error for InstantiationError {}

/// A growth an embedder may refuse (see [`GrowthHook`]); sizes in bytes for
/// memories, in elements for tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Growth {
    Memory {
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    },
    Table {
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    },
}

/// Consulted before `memory.grow`/`table.grow` executed by Wasm grow anything, with
/// the embedder's store pointer (`VMStoreContext::store`, set on every entry into
/// Wasm). `Ok(false)` makes the instruction return -1; `Err` ends the call with
/// that error.
pub type GrowthHook = unsafe fn(
    store: *mut u8,
    growth: Growth,
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>>;

/// A zeroed, 16-byte aligned VMContext allocation; with the pooling allocator it
/// counts as one of the pool's instances and goes back to it when dropped.
struct VMContextAllocation {
    ptr: *mut u8,
    layout: Layout,
    pool: Option<Arc<InstancePool>>,
}

impl VMContextAllocation {
    fn new(size: usize, pool: Option<&Arc<InstancePool>>) -> Result<Self, PoolLimitError> {
        let layout = Layout::from_size_align(size.max(16), 16).expect("valid vmctx layout");
        let ptr = match pool {
            Some(pool) => pool.allocate_instance(layout)?,
            None => {
                // SAFETY: the layout has a non-zero size.
                let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
                if ptr.is_null() {
                    std::alloc::handle_alloc_error(layout);
                }
                ptr
            }
        };
        Ok(VMContextAllocation {
            ptr,
            layout,
            pool: pool.cloned(),
        })
    }
}

impl Drop for VMContextAllocation {
    fn drop(&mut self) {
        match &self.pool {
            // SAFETY: allocated by the pool with this layout; the instance that
            // used it is being dropped.
            Some(pool) => unsafe { pool.release_instance(self.ptr, self.layout) },
            // SAFETY: allocated in `new` with this layout.
            None => unsafe { std::alloc::dealloc(self.ptr, self.layout) },
        }
    }
}

/// A table an instance defines, boxed or pooled: VMContexts hold its address.
enum OwnedTable {
    OnDemand(#[allow(dead_code)] Box<Table>),
    /// Returned to its pool when the instance is dropped.
    Pooled(#[allow(dead_code)] PooledTable),
}

/// A memory an instance defines. Every kind is boxed: VMContexts hold their
/// addresses, which must survive the Vec growing.
enum OwnedMemory {
    OnDemand(#[allow(dead_code)] Box<LinearMemory>),
    /// A shared memory: other stores and threads may hold it too (once exported),
    /// so no `&mut LinearMemory` to it is ever made.
    Shared(Arc<LinearMemory>),
    /// Returned to its pool when the instance is dropped.
    Pooled(#[allow(dead_code)] PooledMemory),
}

/// The engine's subtyping of function types by canonical id, which only the
/// engine's type registry (in the API crate) knows.
pub trait TypeHierarchy: Send + Sync {
    /// Whether `sub` is `sup` or declares it as a (transitive) supertype.
    fn is_subtype(&self, sub: u32, sup: u32) -> bool;
}

pub struct Instance {
    module: Arc<ModuleInfo>,
    /// For `call_indirect` to non-final types (`Builtin::IsSubtype`).
    types: Arc<dyn TypeHierarchy>,
    offsets: VMOffsets,
    vmctx: VMContextAllocation,
    /// Canonical type ids per module type index; the VMContext points at them.
    _type_ids: Arc<[u32]>,
    memories: Vec<*mut LinearMemory>,
    _owned_memories: Vec<OwnedMemory>,
    tables: Vec<*mut Table>,
    _owned_tables: Vec<OwnedTable>,
    /// Per table index: whether an image already holds its active segments.
    imaged_tables: Vec<bool>,
    dropped_data: Vec<bool>,
    dropped_elements: Vec<bool>,
    /// Passive element segments whose items allocate GC objects, evaluated
    /// once at instantiation (`None` for the others, evaluated when used, and
    /// once dropped); a collection's roots (docs/gc.md).
    gc_elements: Vec<Option<Vec<usize>>>,
    /// Per memory index: whether an image already holds its active segments.
    imaged: Vec<bool>,
    store_context: *const VMStoreContext,
    /// Every tag's identity, imports first.
    tags: Vec<*const VMTag>,
    #[allow(clippy::vec_box)]
    _owned_tags: Vec<Box<VMTag>>,
    growth_hook: Option<GrowthHook>,
    /// The module's code, when it is compiled lazily (see `crate::lazy`).
    lazy_functions: Option<Arc<dyn LazyFunctions>>,
    /// The stubs the references of functions not compiled yet point at.
    _lazy_stubs: Option<LazyStubs>,
}

// SAFETY: the raw pointers refer to memories, tables and globals owned by this
// instance or by other instances/host objects of the same store, which moves between
// threads as a whole; an instance is only used by the thread holding its store.
unsafe impl Send for Instance {}
// SAFETY: shared access does not mutate through the pointers.
unsafe impl Sync for Instance {}

impl Instance {
    /// Allocates the instance and its defined memories and tables and fills in the
    /// VMContext. A defined memory with an image (`images`, by defined memory index,
    /// from [`crate::memory_image::memory_images`]) starts with it; the remaining
    /// segments are applied by [`Instance::initialize`]. A null entry of
    /// `defined_function_code` is a function not compiled yet (see `crate::lazy`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        module: Arc<ModuleInfo>,
        types: Arc<dyn TypeHierarchy>,
        type_ids: Arc<[u32]>,
        defined_function_code: &[*const u8],
        imports: Imports,
        store: *const VMStoreContext,
        memory_style: &MemoryStyle,
        images: &[Option<Arc<MemoryImage>>],
        table_images: &[Option<Arc<TableImage>>],
        pool: Option<&Arc<InstancePool>>,
    ) -> Result<Box<Instance>, InstantiationError> {
        let offsets = VMOffsets::new(&module);
        if let Some(pool) = pool {
            pool.check_module(&module)
                .map_err(InstantiationError::Pool)?;
        }
        let vmctx = VMContextAllocation::new(offsets.size() as usize, pool)
            .map_err(InstantiationError::Pool)?;
        let mut owned_memories = Vec::new();
        let mut memories = imports.memories.clone();
        let mut imaged = vec![false; module.memories.len()];
        let defined_memories = &module.memories[module.num_imported_memories as usize..];
        for (defined, ty) in defined_memories.iter().enumerate() {
            let resource = |e: &dyn std::fmt::Display| InstantiationError::Resource(e.to_string());
            let image = images.get(defined).and_then(Option::as_ref);
            let (memory, owned): (*mut LinearMemory, OwnedMemory) = match pool {
                Some(pool) if !ty.shared => {
                    let mut pooled = pool.memories().allocate(ty, image).map_err(|e| match e {
                        crate::pooling::PoolError::Exhausted { slots } => {
                            InstantiationError::Pool(PoolLimitError::Exhausted {
                                resource: "memory",
                                limit: slots,
                            })
                        }
                        e => resource(&e),
                    })?;
                    (pooled.memory_mut(), OwnedMemory::Pooled(pooled))
                }
                _ => {
                    let mut memory = Box::new(
                        LinearMemory::for_type(ty, memory_style).map_err(|e| resource(&e))?,
                    );
                    if let Some(image) = image {
                        memory.install_image(image).map_err(|e| resource(&e))?;
                    }
                    if ty.shared {
                        let memory: Arc<LinearMemory> = Arc::from(memory);
                        (Arc::as_ptr(&memory).cast_mut(), OwnedMemory::Shared(memory))
                    } else {
                        (&mut *memory, OwnedMemory::OnDemand(memory))
                    }
                }
            };
            imaged[memories.len()] = image.is_some();
            memories.push(memory);
            owned_memories.push(owned);
        }
        let mut owned_tables = Vec::new();
        let mut tables = imports.tables.clone();
        let mut imaged_tables = vec![false; module.tables.len()];
        let defined_tables = &module.tables[module.num_imported_tables as usize..];
        for (defined, desc) in defined_tables.iter().enumerate() {
            let image = table_images
                .get(defined)
                .and_then(Option::as_ref)
                .map(|image| (image, vmctx.ptr as usize));
            imaged_tables[tables.len()] = image.is_some();
            let (table, owned): (*mut Table, OwnedTable) = match pool {
                Some(pool) => {
                    let mut pooled = pool
                        .allocate_table(desc.ty, 0, image)
                        .map_err(InstantiationError::Pool)?;
                    (pooled.table_mut(), OwnedTable::Pooled(pooled))
                }
                None => {
                    let mut table = Box::new(
                        Table::with_limit(desc.ty, 0, crate::table::MAX_TABLE_ELEMENTS, image)
                            .map_err(|e| InstantiationError::Resource(e.to_string()))?,
                    );
                    (&mut *table, OwnedTable::OnDemand(table))
                }
            };
            tables.push(table);
            owned_tables.push(owned);
        }
        let mut owned_tags = Vec::new();
        let mut tags = imports.tags.clone();
        for ty in &module.tags[module.num_imported_tags as usize..] {
            let tag = Box::new(VMTag {
                ty: module.types[ty.index()].clone(),
                type_id: type_ids[ty.index()],
            });
            tags.push(&*tag as *const VMTag);
            owned_tags.push(tag);
        }
        let mut instance = Box::new(Instance {
            tags,
            _owned_tags: owned_tags,
            vmctx,
            offsets,
            _type_ids: type_ids.clone(),
            memories,
            _owned_memories: owned_memories,
            tables,
            _owned_tables: owned_tables,
            imaged_tables,
            dropped_data: vec![false; module.data.len()],
            dropped_elements: vec![false; module.elements.len()],
            gc_elements: vec![None; module.elements.len()],
            imaged,
            store_context: store,
            growth_hook: None,
            lazy_functions: None,
            _lazy_stubs: None,
            module,
            types,
        });
        let self_ptr: *mut Instance = &mut *instance;
        let vmctx = instance.vmctx.ptr;
        let offsets = &instance.offsets;
        // SAFETY: every write below is within the VMContext allocation, whose size
        // `VMOffsets` computed from the same module, at offsets aligned for the
        // written type (VMOffsets keeps pointer slots 8-aligned and globals 16-aligned).
        unsafe {
            let write_ptr = |offset: u32, value: usize| {
                vmctx.add(offset as usize).cast::<usize>().write(value);
            };
            vmctx.cast::<u32>().write(VMCONTEXT_MAGIC);
            write_ptr(VMOffsets::STORE_CONTEXT, store as usize);
            write_ptr(VMOffsets::BUILTINS, crate::builtins::table_address());
            write_ptr(VMOffsets::TYPE_IDS, type_ids.as_ptr() as usize);
            write_ptr(VMOffsets::INSTANCE, self_ptr as usize);
            for (i, memory) in instance.memories.iter().enumerate() {
                let definition = (**memory).vmmemory();
                write_ptr(
                    offsets.memory_pointer(MemoryIndex(i as u32)),
                    definition as usize,
                );
                // A memory's base never changes (see `VMMemoryDefinition`).
                write_ptr(
                    offsets.memory_base(MemoryIndex(i as u32)),
                    (*definition).base as usize,
                );
            }
            for (i, table) in instance.tables.iter().enumerate() {
                write_ptr(
                    offsets.table_pointer(TableIndex(i as u32)),
                    (**table).vmtable() as usize,
                );
            }
            for (i, tag) in instance.tags.iter().enumerate() {
                write_ptr(offsets.tag_pointer(TagIndex(i as u32)), *tag as usize);
            }
            let module = &instance.module;
            for i in 0..module.globals.len() as u32 {
                let pointer = if module.is_imported_global(GlobalIndex(i)) {
                    imports.globals[i as usize] as usize
                } else {
                    let defined = i - module.num_imported_globals;
                    vmctx.add(offsets.defined_global(defined) as usize) as usize
                };
                write_ptr(offsets.global_pointer(GlobalIndex(i)), pointer);
            }
            for i in 0..module.functions.len() as u32 {
                let func_ref = if module.is_imported_function(FuncIndex(i)) {
                    imports.functions[i as usize]
                } else {
                    let defined = (i - module.num_imported_functions) as usize;
                    VMFuncRef {
                        wasm_call: defined_function_code[defined],
                        vmctx,
                        type_id: type_ids[module.functions[i as usize].index()],
                        _padding: 0,
                    }
                };
                vmctx
                    .add(offsets.func_ref(FuncIndex(i)) as usize)
                    .cast::<VMFuncRef>()
                    .write(func_ref);
            }
        }
        Ok(instance)
    }

    /// Evaluates global initialisers, initialises tables, and applies active
    /// element and data segments in order (a segment out of bounds traps, leaving
    /// earlier segments' effects in place, as the spec says).
    pub fn initialize(&mut self) -> Result<(), InstantiationError> {
        let module = self.module.clone();
        for (i, global) in module.globals.iter().enumerate() {
            if let Some(init) = &global.init {
                let value = self.try_eval_const(init)?;
                // SAFETY: `global_pointer` of a defined global points into our VMContext.
                unsafe {
                    self.global_ptr(GlobalIndex(i as u32))
                        .write(VMGlobalDefinition { bytes: value.bytes })
                };
            }
        }
        for (i, table) in module
            .tables
            .iter()
            .enumerate()
            .skip(module.num_imported_tables as usize)
        {
            if self.imaged_tables[i] {
                continue;
            }
            if let Some(init) = &table.init {
                let value = self.try_eval_const(init)?.get_ptr();
                let table = self.table_mut(TableIndex(i as u32));
                let size = table.size();
                table.fill(0, value, size);
            }
        }
        for (i, segment) in module.elements.iter().enumerate() {
            match &segment.mode {
                ElementMode::Active { table, .. } if self.imaged_tables[table.index()] => {
                    // Its image holds it (and no segment of an imaged table traps).
                    self.dropped_elements[i] = true;
                }
                ElementMode::Active { table, offset } => {
                    let offset = self.eval_offset(offset, module.tables[table.index()].ty.table64);
                    let values = self.eval_items(&segment.items)?;
                    if !self.table_mut(*table).init(offset, &values) {
                        return Err(InstantiationError::Trap(TrapCode::TableOutOfBounds));
                    }
                    self.dropped_elements[i] = true;
                }
                ElementMode::Declared => self.dropped_elements[i] = true,
                ElementMode::Passive if segment.items.iter().any(ConstExpr::allocates) => {
                    self.gc_elements[i] = Some(self.eval_items(&segment.items)?);
                }
                ElementMode::Passive => {}
            }
        }
        for (i, segment) in module.data.iter().enumerate() {
            if let DataMode::Active { memory, offset } = &segment.mode {
                if self.imaged[memory.index()] {
                    // Its image holds it (and no segment of an imaged memory traps).
                    self.dropped_data[i] = true;
                    continue;
                }
                let offset = self.eval_offset(offset, module.memories[memory.index()].memory64);
                // SAFETY: memories outlive the instance; raw copies, because a shared
                // memory's bytes may be written by other threads meanwhile.
                let copied =
                    unsafe { copy_into_memory(self.memory_ptr(*memory), offset, &segment.bytes) };
                if !copied {
                    return Err(InstantiationError::Trap(TrapCode::MemoryOutOfBounds));
                }
                self.dropped_data[i] = true;
            }
        }
        Ok(())
    }

    /// A segment's offset: an `i64` for 64-bit memories and tables, else an `i32`.
    fn eval_offset(&self, offset: &ConstExpr, is_64: bool) -> u64 {
        let value = self.eval_const(offset);
        if is_64 {
            value.get_i64() as u64
        } else {
            u64::from(value.get_i32() as u32)
        }
    }

    /// Makes Wasm's `memory.grow`/`table.grow` ask `hook` first.
    /// Makes this instance compile its module's functions on demand: `lazy`
    /// provides the code of defined functions whose references were created with
    /// a null code address, which now get a stub that compiles the function on
    /// its first call (see `crate::lazy`). Called before any code of the
    /// instance runs.
    pub fn set_lazy_functions(&mut self, lazy: Arc<dyn LazyFunctions>) -> Result<(), String> {
        let vmctx = self.vmctx.ptr;
        let uncompiled: Vec<*mut VMFuncRef> = (self.module.num_imported_functions
            ..self.module.functions.len() as u32)
            .map(|i| {
                // SAFETY: `func_ref(i)` is within the VMContext allocation.
                unsafe { vmctx.add(self.offsets.func_ref(FuncIndex(i)) as usize) }
                    .cast::<VMFuncRef>()
            })
            // SAFETY: `new` wrote every reference; no code of the instance runs yet.
            .filter(|func_ref| unsafe { (**func_ref).wasm_call.is_null() })
            .collect();
        self.lazy_functions = Some(lazy);
        if uncompiled.is_empty() {
            return Ok(());
        }
        let refs: Vec<*const VMFuncRef> = uncompiled.iter().map(|r| r.cast_const()).collect();
        let stubs = LazyStubs::new(&refs)?;
        for (i, func_ref) in uncompiled.into_iter().enumerate() {
            // SAFETY: as above; the stub lives as long as the instance.
            unsafe { (*func_ref).wasm_call = stubs.stub(i) };
        }
        self._lazy_stubs = Some(stubs);
        Ok(())
    }

    pub(crate) fn lazy_functions(&self) -> Option<&Arc<dyn LazyFunctions>> {
        self.lazy_functions.as_ref()
    }

    /// The index of the function `func_ref` is this instance's reference of, if
    /// it points at one of the function references in our VMContext.
    pub fn func_index_of_ref(&self, func_ref: *const VMFuncRef) -> Option<FuncIndex> {
        crate::lazy::func_index_in(
            self.vmctx.ptr,
            self.offsets.func_ref(FuncIndex(0)),
            self.module.functions.len(),
            func_ref,
        )
    }

    pub fn set_growth_hook(&mut self, hook: GrowthHook) {
        self.growth_hook = Some(hook);
    }

    fn ask_growth_hook(
        &self,
        growth: Growth,
    ) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
        let Some(hook) = self.growth_hook else {
            return Ok(true);
        };
        // SAFETY: the store context outlives its instances; Wasm is running (we are
        // called from a builtin), so the entry set `store` to the live store.
        unsafe {
            let store = *(*self.store_context).store.get();
            hook(store, growth)
        }
    }

    /// `memory.grow` from Wasm: the old size in pages, `None` if refused (by the
    /// memory's limits or the growth hook), or the hook's error.
    pub fn grow_memory(
        &mut self,
        index: MemoryIndex,
        delta_pages: u64,
    ) -> Result<Option<u64>, Box<dyn std::error::Error + Send + Sync>> {
        // SAFETY: memories outlive their instances; growth takes `&self` (shared
        // memories grow under their own lock).
        let memory = unsafe { &*self.memory_ptr(index) };
        if self.growth_hook.is_none() {
            return Ok(memory.grow(delta_pages));
        }
        let maximum = memory.maximum_pages().map(|m| {
            m.checked_shl(memory.page_size_log2().into())
                .unwrap_or(u64::MAX) as usize
        });
        // Asked under the memory's growth lock: threads growing one shared memory
        // are each judged against the size the others left.
        memory.grow_checked(delta_pages, |current, desired| {
            self.ask_growth_hook(Growth::Memory {
                current: current as usize,
                desired: desired as usize,
                maximum,
            })
        })
    }

    /// `table.grow` from Wasm, like [`Instance::grow_memory`].
    pub fn grow_table(
        &mut self,
        index: TableIndex,
        delta: u64,
        init: usize,
    ) -> Result<Option<u64>, Box<dyn std::error::Error + Send + Sync>> {
        if delta != 0 && self.growth_hook.is_some() {
            let table = self.table_mut(index);
            let current = table.size();
            let Some(desired) = current
                .checked_add(delta)
                .filter(|d| *d <= crate::table::MAX_TABLE_ELEMENTS)
            else {
                return Ok(None);
            };
            let growth = Growth::Table {
                current: current as usize,
                desired: desired as usize,
                maximum: table.maximum().map(|m| m as usize),
            };
            if !self.ask_growth_hook(growth)? {
                return Ok(None);
            }
        }
        Ok(self.table_mut(index).grow(delta, init))
    }

    /// The evaluated items of an element segment.
    fn eval_items(&self, items: &[ConstExpr]) -> Result<Vec<usize>, InstantiationError> {
        items
            .iter()
            .map(|e| Ok(self.try_eval_const(e)?.get_ptr()))
            .collect()
    }

    /// Evaluates a constant expression in this instance's context; one that
    /// allocates GC objects (`ConstExpr::allocates`) fails with a trap when the
    /// store's heap is full.
    pub fn try_eval_const(&self, expr: &ConstExpr) -> Result<ValRaw, InstantiationError> {
        // Element segments of large tables are thousands of single `ref.func`s:
        // one operation needs no stack (and no allocation).
        if let [op] = expr.ops.as_slice() {
            return Ok(ValRaw::u128(self.eval_const_op(op, &mut Vec::new())?));
        }
        let mut stack: Vec<u128> = Vec::with_capacity(2);
        for op in &expr.ops {
            let value = self.eval_const_op(op, &mut stack)?;
            stack.push(value);
        }
        Ok(ValRaw::u128(stack.pop().unwrap_or(0)))
    }

    /// Evaluates a constant expression that does not allocate (an offset, an
    /// element item of a segment without allocating items).
    pub fn eval_const(&self, expr: &ConstExpr) -> ValRaw {
        debug_assert!(!expr.allocates());
        self.try_eval_const(expr)
            .unwrap_or_else(|_| unreachable!("only allocation fails"))
    }

    /// The value `op` pushes, popping its operands from `stack`.
    fn eval_const_op(
        &self,
        op: &ConstOp,
        stack: &mut Vec<u128>,
    ) -> Result<u128, InstantiationError> {
        if let Some(object) = crate::gc_array::eval_const_alloc(self, op, stack) {
            return object
                .map(u128::from)
                .ok_or(InstantiationError::Trap(TrapCode::GcHeapExhausted));
        }
        Ok(match *op {
            ConstOp::I32Const(v) => v as u32 as u128,
            ConstOp::I64Const(v) => v as u64 as u128,
            ConstOp::F32Const(bits) => bits as u128,
            ConstOp::F64Const(bits) => bits as u128,
            ConstOp::V128Const(v) => v,
            ConstOp::RefNull(_) => 0,
            ConstOp::RefFunc(f) => self.func_ref(f) as usize as u128,
            ConstOp::GlobalGet(g) => {
                // SAFETY: global pointers in the VMContext are valid for the store's life.
                let bytes = unsafe { (*self.global_ptr(g)).bytes };
                u128::from_le_bytes(bytes)
            }
            ConstOp::RefI31 => {
                let v = stack.pop().expect("validated") as u32 as i32;
                u128::from(wazerox_environ::gc::i31_word(v))
            }
            ConstOp::AnyConvertExtern => {
                let e = stack.pop().expect("validated") as u64;
                u128::from(wazerox_environ::gc::any_from_extern(e))
            }
            ConstOp::ExternConvertAny => {
                let a = stack.pop().expect("validated") as u64;
                u128::from(wazerox_environ::gc::extern_from_any(a))
            }
            ConstOp::I32Add | ConstOp::I32Sub | ConstOp::I32Mul => {
                let b = stack.pop().expect("validated") as u32;
                let a = stack.pop().expect("validated") as u32;
                (match op {
                    ConstOp::I32Add => a.wrapping_add(b),
                    ConstOp::I32Sub => a.wrapping_sub(b),
                    _ => a.wrapping_mul(b),
                }) as u128
            }
            ConstOp::I64Add | ConstOp::I64Sub | ConstOp::I64Mul => {
                let b = stack.pop().expect("validated") as u64;
                let a = stack.pop().expect("validated") as u64;
                (match op {
                    ConstOp::I64Add => a.wrapping_add(b),
                    ConstOp::I64Sub => a.wrapping_sub(b),
                    _ => a.wrapping_mul(b),
                }) as u128
            }
            ConstOp::StructNew(_)
            | ConstOp::StructNewDefault(_)
            | ConstOp::ArrayNew(_)
            | ConstOp::ArrayNewDefault(_)
            | ConstOp::ArrayNewFixed(..) => unreachable!("evaluated by eval_const_alloc"),
        })
    }

    /// The any-hierarchy words held by passive element segments evaluated at
    /// instantiation (roots of a collection).
    /// An externref segment's externalized objects count too
    /// (`gc::traced_word`).
    pub fn gc_element_words(&self) -> impl Iterator<Item = u64> + '_ {
        self.gc_elements
            .iter()
            .zip(&self.module.elements)
            .filter_map(|(items, segment)| {
                Some((items.as_ref()?, crate::gc::traced_kind(segment.element)?))
            })
            .flat_map(|(items, kind)| items.iter().map(move |w| gc::traced_word(kind, *w as u64)))
    }

    pub fn module(&self) -> &Arc<ModuleInfo> {
        &self.module
    }

    pub fn vmctx(&self) -> *mut u8 {
        self.vmctx.ptr
    }

    /// The engine-wide id of the module's type `ty`.
    pub fn type_id(&self, ty: wazerox_environ::TypeIndex) -> u32 {
        self._type_ids[ty.index()]
    }

    /// The engine's subtyping of function types.
    pub fn types(&self) -> &dyn TypeHierarchy {
        &*self.types
    }

    /// The instance whose VMContext is `vmctx`.
    ///
    /// # Safety
    /// `vmctx` must be the VMContext of a live instance.
    pub unsafe fn from_vmctx<'a>(vmctx: *mut u8) -> &'a mut Instance {
        // SAFETY: per the contract, the INSTANCE slot holds the owning instance.
        unsafe {
            let instance = vmctx
                .add(VMOffsets::INSTANCE as usize)
                .cast::<*mut Instance>()
                .read();
            &mut *instance
        }
    }

    pub fn func_ref(&self, index: FuncIndex) -> *const VMFuncRef {
        // SAFETY: the offset is within the VMContext.
        unsafe {
            self.vmctx
                .ptr
                .add(self.offsets.func_ref(index) as usize)
                .cast()
        }
    }

    /// Tag `index`'s identity.
    pub fn tag_ptr(&self, index: TagIndex) -> *const VMTag {
        self.tags[index.index()]
    }

    /// The store context this instance runs in.
    pub fn store_context(&self) -> *const VMStoreContext {
        self.store_context
    }

    pub fn global_ptr(&self, index: GlobalIndex) -> *mut VMGlobalDefinition {
        // SAFETY: the slot was written in `new` and is pointer-aligned.
        unsafe {
            self.vmctx
                .ptr
                .add(self.offsets.global_pointer(index) as usize)
                .cast::<*mut VMGlobalDefinition>()
                .read()
        }
    }

    pub fn memory_ptr(&self, index: MemoryIndex) -> *mut LinearMemory {
        self.memories[index.index()]
    }

    /// The defined shared memory `index`, for exporting it to other stores (`None`
    /// for unshared and imported memories).
    pub fn defined_shared_memory(&self, index: MemoryIndex) -> Option<Arc<LinearMemory>> {
        let defined = index
            .index()
            .checked_sub(self.module.num_imported_memories as usize)?;
        match self._owned_memories.get(defined)? {
            OwnedMemory::Shared(memory) => Some(memory.clone()),
            _ => None,
        }
    }

    pub fn table_ptr(&self, index: TableIndex) -> *mut Table {
        self.tables[index.index()]
    }

    pub fn table_mut(&mut self, index: TableIndex) -> &mut Table {
        // SAFETY: tables outlive the instance (owned by it or by its store), and
        // `&mut self` means no other borrow through this instance exists.
        unsafe { &mut *self.tables[index.index()] }
    }

    pub fn data_segment(&self, index: u32) -> &[u8] {
        if self.dropped_data[index as usize] {
            &[]
        } else {
            &self.module.data[index as usize].bytes
        }
    }

    pub fn drop_data(&mut self, index: u32) {
        self.dropped_data[index as usize] = true;
    }

    /// The evaluated items of an element segment (empty once dropped).
    pub fn element_segment(&self, index: u32) -> Vec<usize> {
        if self.dropped_elements[index as usize] {
            return Vec::new();
        }
        if let Some(items) = &self.gc_elements[index as usize] {
            return items.clone();
        }
        self.module.elements[index as usize]
            .items
            .iter()
            .map(|e| self.eval_const(e).get_ptr())
            .collect()
    }

    pub fn drop_element(&mut self, index: u32) {
        self.dropped_elements[index as usize] = true;
        self.gc_elements[index as usize] = None;
    }

    /// Element type of table `index`.
    pub fn table_element_type(&self, index: TableIndex) -> ValType {
        self.module.tables[index.index()].ty.element
    }
}

/// Copies `bytes` to offset `offset` of `memory` if they fit (`false` if not),
/// through raw pointers: the memory may be shared, its bytes written by other
/// threads at the same time, so no Rust reference to them is made.
///
/// # Safety
/// `memory` points to a live memory.
pub(crate) unsafe fn copy_into_memory(
    memory: *const LinearMemory,
    offset: u64,
    bytes: &[u8],
) -> bool {
    // SAFETY: per the contract; the range is inside the accessible prefix, which
    // never shrinks, and `bytes` (module or host data) cannot overlap Wasm memory.
    unsafe {
        let Some(r) = crate::table::range(offset, bytes.len() as u64, (*memory).byte_size()) else {
            return false;
        };
        let base = (*(*memory).vmmemory()).base;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(r.start), r.len());
    }
    true
}
