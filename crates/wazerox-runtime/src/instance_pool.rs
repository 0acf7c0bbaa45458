//! The pooling allocator's instance side: per-engine limits on live instances
//! and tables, reused VMContext allocations, and reused table slots (kept
//! allocated, reset on reuse from the module's table image), next to the memory
//! slots of [`crate::pooling::MemoryPool`].
//!
//! Decisions:
//! - Limits are wasmtime's (`total_core_instances`, `total_tables`,
//!   `table_elements`, `max_tables_per_module`, `max_memories_per_module`;
//!   `total_memories` lives in the memory pool, `total_stacks` in
//!   [`crate::fiber::StackPool`]). Exceeding one is an error naming it, never a
//!   wait: the embedder sized the pool.
//! - A released VMContext is kept for the next instance of the same size (it is
//!   zeroed when handed out, so nothing of the last instance survives); at most
//!   `total_core_instances` are kept.
//! - A table slot keeps its element storage (up to `table_elements`), so an
//!   instance of the same module allocates nothing for its tables; the next
//!   instance rewrites every element (from the image, or its initial value),
//!   so a guest's `table.set` never outlives its instance.

use crate::memory::MemoryStyle;
use crate::pooling::MemoryPool;
use crate::table::{Table, TableError};
use crate::table_image::TableImage;
use std::alloc::Layout;
use std::sync::{Arc, Mutex};
use wazerox_environ::{ModuleInfo, TableType};

/// Sizes and counts of an engine's pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    pub total_core_instances: usize,
    pub total_memories: usize,
    pub max_memory_size: u64,
    pub total_tables: usize,
    pub table_elements: u64,
    pub max_tables_per_module: usize,
    pub max_memories_per_module: usize,
}

/// Why the pool refused an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolLimitError {
    /// Every slot of `resource` is in use (`limit` of them).
    Exhausted {
        resource: &'static str,
        limit: usize,
    },
    /// The module defines more of `resource` than one instance may have.
    PerModule {
        resource: &'static str,
        count: usize,
        limit: usize,
    },
    /// A table's minimum is above `table_elements`.
    Table(TableError),
}

impl std::fmt::Display for PoolLimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoolLimitError::Exhausted { resource, limit } => write!(
                f,
                "pooling allocator exhausted: all {limit} {resource} slots are in use"
            ),
            PoolLimitError::PerModule {
                resource,
                count,
                limit,
            } => write!(
                f,
                "module defines {count} {resource}, more than the pooling allocator's \
                 limit of {limit} per module"
            ),
            PoolLimitError::Table(e) => write!(f, "pooling allocator: {e}"),
        }
    }
}

impl std::error::Error for PoolLimitError {}

/// The instance and table pools of one engine (and its memory pool).
#[derive(Debug)]
pub struct InstancePool {
    limits: PoolLimits,
    memories: Arc<MemoryPool>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    live_instances: usize,
    /// Released VMContext allocations (zeroed when handed out again).
    free_vmctx: Vec<RawVMContext>,
    #[allow(clippy::vec_box)]
    free_tables: Vec<Box<Table>>,
    /// Table slots in use or free.
    reserved_tables: usize,
}

#[derive(Debug)]
struct RawVMContext {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: a free VMContext allocation is plain memory that no instance uses.
unsafe impl Send for RawVMContext {}

impl Drop for RawVMContext {
    fn drop(&mut self) {
        // SAFETY: allocated by `VMContextAllocation` with this layout, unused now.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

impl InstancePool {
    pub fn new(limits: PoolLimits, style: MemoryStyle) -> InstancePool {
        InstancePool {
            memories: Arc::new(MemoryPool::new(
                limits.total_memories,
                limits.max_memory_size,
                style,
            )),
            limits,
            state: Mutex::new(State::default()),
        }
    }

    pub fn limits(&self) -> &PoolLimits {
        &self.limits
    }

    pub fn memories(&self) -> &Arc<MemoryPool> {
        &self.memories
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks the per-module limits before anything is allocated.
    pub fn check_module(&self, module: &ModuleInfo) -> Result<(), PoolLimitError> {
        let memories = module.memories.len() - module.num_imported_memories as usize;
        let tables = module.tables.len() - module.num_imported_tables as usize;
        let per_module = |resource, count, limit| {
            if count > limit {
                Err(PoolLimitError::PerModule {
                    resource,
                    count,
                    limit,
                })
            } else {
                Ok(())
            }
        };
        per_module("memories", memories, self.limits.max_memories_per_module)?;
        per_module("tables", tables, self.limits.max_tables_per_module)
    }

    /// Counts an instance in and hands out a zeroed VMContext of `layout`.
    pub(crate) fn allocate_instance(&self, layout: Layout) -> Result<*mut u8, PoolLimitError> {
        let mut state = self.lock();
        if state.live_instances >= self.limits.total_core_instances {
            return Err(PoolLimitError::Exhausted {
                resource: "instance",
                limit: self.limits.total_core_instances,
            });
        }
        state.live_instances += 1;
        let reused = state
            .free_vmctx
            .iter()
            .rposition(|v| v.layout == layout)
            .map(|i| state.free_vmctx.swap_remove(i));
        drop(state);
        Ok(match reused {
            Some(raw) => {
                let raw = std::mem::ManuallyDrop::new(raw);
                // SAFETY: the allocation has `layout`'s size and is unused.
                unsafe { raw.ptr.write_bytes(0, layout.size()) };
                raw.ptr
            }
            None => {
                // SAFETY: the layout has a non-zero size (callers round up).
                let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
                if ptr.is_null() {
                    self.lock().live_instances -= 1;
                    std::alloc::handle_alloc_error(layout);
                }
                ptr
            }
        })
    }

    /// Takes back an instance's VMContext (allocated with `layout`).
    ///
    /// # Safety
    /// `ptr` came from [`InstancePool::allocate_instance`] with `layout` and
    /// nothing uses it any more.
    pub(crate) unsafe fn release_instance(&self, ptr: *mut u8, layout: Layout) {
        let raw = RawVMContext { ptr, layout };
        let mut state = self.lock();
        state.live_instances -= 1;
        if state.free_vmctx.len() < self.limits.total_core_instances {
            state.free_vmctx.push(raw);
        } else {
            drop(state);
            drop(raw);
        }
    }

    /// A table slot readied for `ty` (see [`Table::reuse`]).
    pub fn allocate_table(
        self: &Arc<Self>,
        ty: TableType,
        init: usize,
        image: Option<(&Arc<TableImage>, usize)>,
    ) -> Result<PooledTable, PoolLimitError> {
        if ty.minimum > self.limits.table_elements {
            return Err(PoolLimitError::Table(TableError(format!(
                "table minimum of {} elements exceeds the limit of {} elements per table",
                ty.minimum, self.limits.table_elements
            ))));
        }
        let mut state = self.lock();
        let mut table = match state.free_tables.pop() {
            Some(table) => table,
            None => {
                if state.reserved_tables >= self.limits.total_tables {
                    return Err(PoolLimitError::Exhausted {
                        resource: "table",
                        limit: self.limits.total_tables,
                    });
                }
                state.reserved_tables += 1;
                drop(state);
                match Table::with_limit(ty, init, self.limits.table_elements, image) {
                    Ok(table) => {
                        return Ok(PooledTable {
                            table: Some(Box::new(table)),
                            pool: self.clone(),
                        });
                    }
                    Err(e) => {
                        self.lock().reserved_tables -= 1;
                        return Err(PoolLimitError::Table(e));
                    }
                }
            }
        };
        if let Err(e) = table.reuse(ty, init, image) {
            self.lock().free_tables.push(table);
            return Err(PoolLimitError::Table(e));
        }
        Ok(PooledTable {
            table: Some(table),
            pool: self.clone(),
        })
    }

    /// Instances currently alive, and table slots reserved (in use or free).
    pub fn usage(&self) -> (usize, usize) {
        let state = self.lock();
        (state.live_instances, state.reserved_tables)
    }
}

/// A table borrowed from an [`InstancePool`], returned when dropped.
#[derive(Debug)]
pub struct PooledTable {
    table: Option<Box<Table>>,
    pool: Arc<InstancePool>,
}

impl PooledTable {
    /// The table; its address is stable until this is dropped.
    pub fn table_mut(&mut self) -> &mut Table {
        self.table.as_mut().expect("present until dropped")
    }
}

impl Drop for PooledTable {
    fn drop(&mut self) {
        if let Some(table) = self.table.take() {
            self.pool.lock().free_tables.push(table);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wazerox_environ::ValType;

    fn limits() -> PoolLimits {
        PoolLimits {
            total_core_instances: 2,
            total_memories: 1,
            max_memory_size: 1 << 20,
            total_tables: 1,
            table_elements: 100,
            max_tables_per_module: 1,
            max_memories_per_module: 1,
        }
    }

    fn table_type(minimum: u64) -> TableType {
        TableType {
            element: ValType::FUNCREF,
            minimum,
            maximum: None,
            table64: false,
        }
    }

    #[test]
    fn tables_are_reused_reset_and_limited() {
        let pool = Arc::new(InstancePool::new(limits(), MemoryStyle::default()));
        let mut a = pool.allocate_table(table_type(10), 0, None).unwrap();
        let storage = a.table_mut().elements().as_ptr();
        a.table_mut().set(3, 42).unwrap();
        assert_eq!(
            a.table_mut().grow(100, 0),
            None,
            "growth stops at table_elements"
        );
        let e = pool.allocate_table(table_type(1), 0, None).unwrap_err();
        assert!(e.to_string().contains("all 1 table slots"), "{e}");
        drop(a);
        let mut b = pool.allocate_table(table_type(8), 0, None).unwrap();
        assert_eq!(
            b.table_mut().elements().as_ptr(),
            storage,
            "the slot was reused"
        );
        assert!(b.table_mut().elements().iter().all(|e| *e == 0), "reset");
        assert_eq!(b.table_mut().size(), 8);
        let e = pool.allocate_table(table_type(101), 0, None).unwrap_err();
        assert!(e.to_string().contains("limit of 100 elements"), "{e}");
        assert_eq!(pool.usage().1, 1);
    }

    #[test]
    fn instances_are_counted_and_their_vmcontexts_reused_zeroed() {
        let pool = InstancePool::new(limits(), MemoryStyle::default());
        let layout = Layout::from_size_align(64, 16).unwrap();
        let a = pool.allocate_instance(layout).unwrap();
        let b = pool.allocate_instance(layout).unwrap();
        let e = pool.allocate_instance(layout).unwrap_err();
        assert!(e.to_string().contains("all 2 instance slots"), "{e}");
        // SAFETY: 64 bytes were allocated at `a`.
        unsafe { a.write_bytes(0xee, 64) };
        // SAFETY: from `allocate_instance` with this layout, no longer used.
        unsafe { pool.release_instance(a, layout) };
        let c = pool.allocate_instance(layout).unwrap();
        assert_eq!(c, a, "the VMContext was reused");
        // SAFETY: 64 bytes were allocated at `c`.
        assert!(
            unsafe { std::slice::from_raw_parts(c, 64) }
                .iter()
                .all(|b| *b == 0)
        );
        // SAFETY: as above.
        unsafe {
            pool.release_instance(b, layout);
            pool.release_instance(c, layout);
        }
        assert_eq!(pool.usage().0, 0);
    }
}
