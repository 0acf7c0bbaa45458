//! Resource limits per store: a [`ResourceLimiter`] consulted before memories and
//! tables grow (from Wasm or the host) and when instances, memories and tables are
//! created, installed with [`Store::limiter`](crate::Store::limiter).
//!
//! A refused growth is not an error for Wasm: `memory.grow`/`table.grow` return -1
//! as when a declared maximum is reached. A limiter that returns `Err` instead ends
//! the running call with that error (like a host function's error). At
//! instantiation a memory or table whose initial size is refused makes
//! instantiation fail with an `Instantiation` error.

use crate::error::{Error, ErrorKind};
use crate::store::StoreInner;
use wazerox_runtime::instance::Growth;

/// Decides whether a store's memories and tables may grow and how many instances,
/// memories and tables it may hold.
pub trait ResourceLimiter: Send + Sync {
    /// A memory grows from `current` to `desired` bytes (`maximum` is its declared
    /// maximum, if any). Also asked with `current == 0` for a new memory's initial
    /// size. `Ok(false)` refuses; `Err` refuses and ends the running call.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, Error>;

    /// Like [`ResourceLimiter::memory_growing`], in elements, for tables.
    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool, Error>;

    /// Most instances the store may hold.
    fn instances(&self) -> usize {
        DEFAULT_COUNT_LIMIT
    }

    /// Most memories the store may hold (defined by instances or created by the host).
    fn memories(&self) -> usize {
        DEFAULT_COUNT_LIMIT
    }

    /// Most tables the store may hold.
    fn tables(&self) -> usize {
        DEFAULT_COUNT_LIMIT
    }
}

/// The count limits of a limiter that does not choose its own.
pub const DEFAULT_COUNT_LIMIT: usize = 10_000;

/// Host bytes one table element occupies (a reference is a pointer), for turning a
/// byte budget into [`StoreLimitsBuilder::table_elements`].
pub const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

/// A ready-made [`ResourceLimiter`] with fixed limits; build with
/// [`StoreLimitsBuilder`]. Without limits set it refuses nothing.
#[derive(Debug, Clone)]
pub struct StoreLimits {
    memory_size: Option<usize>,
    table_elements: Option<usize>,
    instances: usize,
    memories: usize,
    tables: usize,
    trap_on_grow_failure: bool,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            memory_size: None,
            table_elements: None,
            instances: DEFAULT_COUNT_LIMIT,
            memories: DEFAULT_COUNT_LIMIT,
            tables: DEFAULT_COUNT_LIMIT,
            trap_on_grow_failure: false,
        }
    }
}

impl StoreLimits {
    fn refuse(&self, what: &str, desired: usize, limit: usize) -> Result<bool, Error> {
        if self.trap_on_grow_failure {
            Err(Error::with_kind(
                ErrorKind::Host,
                format!("{what} of {desired} exceeds the store's limit of {limit}"),
            ))
        } else {
            Ok(false)
        }
    }
}

impl ResourceLimiter for StoreLimits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, Error> {
        match self.memory_size {
            Some(limit) if desired > limit => self.refuse("memory size (bytes)", desired, limit),
            _ => Ok(true),
        }
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, Error> {
        match self.table_elements {
            Some(limit) if desired > limit => self.refuse("table size (elements)", desired, limit),
            _ => Ok(true),
        }
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn memories(&self) -> usize {
        self.memories
    }

    fn tables(&self) -> usize {
        self.tables
    }
}

/// Builds [`StoreLimits`].
#[derive(Debug, Clone, Default)]
pub struct StoreLimitsBuilder(StoreLimits);

impl StoreLimitsBuilder {
    /// Limits that allow everything (build them up with the methods below).
    pub fn new() -> Self {
        Self::default()
    }

    /// Largest size in bytes of any one memory of the store.
    pub fn memory_size(mut self, bytes: usize) -> Self {
        self.0.memory_size = Some(bytes);
        self
    }

    /// Largest number of elements of any one table of the store.
    pub fn table_elements(mut self, elements: usize) -> Self {
        self.0.table_elements = Some(elements);
        self
    }

    /// Largest host memory in bytes of any one table of the store: the same limit
    /// as [`StoreLimitsBuilder::table_elements`], counted in bytes
    /// ([`TABLE_ELEMENT_BYTES`] per element) so that one byte budget can cover
    /// memories and tables alike (`wazerox run --max-memory`).
    pub fn table_bytes(self, bytes: usize) -> Self {
        self.table_elements(bytes / TABLE_ELEMENT_BYTES)
    }

    /// Most instances the store may create.
    pub fn instances(mut self, count: usize) -> Self {
        self.0.instances = count;
        self
    }

    /// Most memories the store may create.
    pub fn memories(mut self, count: usize) -> Self {
        self.0.memories = count;
        self
    }

    /// Most tables the store may create.
    pub fn tables(mut self, count: usize) -> Self {
        self.0.tables = count;
        self
    }

    /// Whether growth beyond the limits ends the running call with an error
    /// instead of returning -1 to Wasm (default: -1).
    pub fn trap_on_grow_failure(mut self, trap: bool) -> Self {
        self.0.trap_on_grow_failure = trap;
        self
    }

    /// The limits, for [`Store::set_limiter`](crate::Store::set_limiter).
    pub fn build(self) -> StoreLimits {
        self.0
    }
}

/// The limiter a store holds: found in its data, or owned by the store.
pub(crate) enum StoreLimiter<T> {
    InData(Box<dyn FnMut(&mut T) -> &mut (dyn ResourceLimiter) + Send + Sync + 'static>),
    Owned(Box<dyn ResourceLimiter>),
}

impl<T> StoreInner<T> {
    fn limiter_mut(&mut self) -> Option<&mut dyn ResourceLimiter> {
        match self.limiter.as_mut()? {
            StoreLimiter::InData(find) => Some(find(&mut self.data)),
            StoreLimiter::Owned(limiter) => Some(&mut **limiter),
        }
    }
}

impl<T> StoreInner<T> {
    /// Asks the store's limiter (if any) about `growth`.
    pub(crate) fn growing(&mut self, growth: Growth) -> Result<bool, Error> {
        let Some(limiter) = self.limiter_mut() else {
            return Ok(true);
        };
        match growth {
            Growth::Memory {
                current,
                desired,
                maximum,
            } => limiter.memory_growing(current, desired, maximum),
            Growth::Table {
                current,
                desired,
                maximum,
            } => limiter.table_growing(current, desired, maximum),
        }
    }

    /// Checks that the store may hold `instances`, `memories` and `tables` more
    /// objects than it does.
    pub(crate) fn check_counts(
        &mut self,
        instances: usize,
        memories: usize,
        tables: usize,
    ) -> Result<(), Error> {
        let (instances_now, memories_now, tables_now) = (
            self.opaque.instances.len(),
            self.opaque.memory_count,
            self.opaque.table_count,
        );
        let Some(limiter) = self.limiter_mut() else {
            return Ok(());
        };
        let checks = [
            ("instances", instances_now, instances, limiter.instances()),
            ("memories", memories_now, memories, limiter.memories()),
            ("tables", tables_now, tables, limiter.tables()),
        ];
        for (what, have, adding, limit) in checks {
            if adding > 0 && have.saturating_add(adding) > limit {
                return Err(Error::with_kind(
                    ErrorKind::Instantiation,
                    format!("the store's limit of {limit} {what} would be exceeded"),
                ));
            }
        }
        Ok(())
    }
}

/// The runtime's growth hook for stores with data `T`.
///
/// # Safety
/// `store` is the `StoreInner<T>` pointer the running call stored in the store's
/// `VMStoreContext`, from an exclusive borrow it does not use until Wasm returns.
pub(crate) unsafe fn growth_hook<T>(
    store: *mut u8,
    growth: Growth,
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    // SAFETY: per the contract, like a host function rebuilding its `Caller`.
    let store = unsafe { &mut *store.cast::<StoreInner<T>>() };
    store.growing(growth).map_err(Error::into_boxed)
}
