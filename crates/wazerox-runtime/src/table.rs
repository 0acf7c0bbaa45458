//! Wasm tables: a growable vector of pointer-sized elements.
//!
//! Elements are `*const VMFuncRef` for funcref tables and externref handles for
//! externref tables; 0 is null. Compiled code reads the base and length through the
//! boxed [`VMTableDefinition`], which is updated whenever growth reallocates.

use crate::table_image::TableImage;
use crate::vmcontext::VMTableDefinition;
use std::sync::Arc;
use wazerox_environ::TableType;

/// Upper bound on table elements, whatever the declared maximum: keeps a hostile
/// `table.grow` from exhausting host memory. A pooled table's limit may be lower.
pub const MAX_TABLE_ELEMENTS: u64 = 10_000_000;

#[derive(Debug)]
pub struct Table {
    ty: TableType,
    elements: Vec<usize>,
    definition: Box<VMTableDefinition>,
    /// Most elements the table may ever hold: [`MAX_TABLE_ELEMENTS`], or a
    /// pooling allocator's `table_elements`.
    limit: u64,
    /// The image and VMContext address the elements were last filled from;
    /// with `definition.written` still 0 they hold exactly that image.
    filled_from: Option<(Arc<TableImage>, usize)>,
}

// SAFETY: the raw pointer in `definition` points into `elements`, owned by the same
// struct; moving the table between threads moves both together.
unsafe impl Send for Table {}
// SAFETY: shared references only read; mutation needs `&mut Table`.
unsafe impl Sync for Table {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError(pub String);

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TableError {}

impl Table {
    pub fn new(ty: TableType, init: usize) -> Result<Table, TableError> {
        Self::with_limit(ty, init, MAX_TABLE_ELEMENTS, None)
    }

    /// A table that may never hold more than `limit` elements (a pool's slot),
    /// initialised as [`Table::reuse`] does.
    pub fn with_limit(
        ty: TableType,
        init: usize,
        limit: u64,
        image: Option<(&Arc<TableImage>, usize)>,
    ) -> Result<Table, TableError> {
        let mut table = Table {
            ty,
            elements: Vec::new(),
            definition: Box::new(VMTableDefinition {
                base: std::ptr::null_mut(),
                current_elements: 0,
                written: 0,
            }),
            limit: limit.min(MAX_TABLE_ELEMENTS),
            filled_from: None,
        };
        table.reuse(ty, init, image)?;
        Ok(table)
    }

    /// Readies this table (new, or released by a previous instance) for a table
    /// of type `ty` whose elements are `init`, or `image` written relative to
    /// `vmctx` (see [`crate::table_image`]). Keeps its allocation, so a pooled
    /// table of the same size allocates nothing; and a table last filled from
    /// the same image at the same VMContext address, with no element written
    /// since (compiled `table.set` and every method here mark it), already
    /// holds what it should and is left as it is.
    pub fn reuse(
        &mut self,
        ty: TableType,
        init: usize,
        image: Option<(&Arc<TableImage>, usize)>,
    ) -> Result<(), TableError> {
        if ty.minimum > self.limit {
            return Err(TableError(format!(
                "table minimum of {} elements exceeds the limit of {} elements per table",
                ty.minimum, self.limit
            )));
        }
        let minimum = ty.minimum as usize;
        let unchanged = match (&self.filled_from, image) {
            (Some((last, last_vmctx)), Some((image, vmctx))) => {
                Arc::ptr_eq(last, image)
                    && *last_vmctx == vmctx
                    && self.definition.written == 0
                    && self.elements.len() == minimum
                    && self.ty == ty
            }
            _ => false,
        };
        self.ty = ty;
        if !unchanged {
            self.elements.clear();
            match image {
                Some((image, vmctx)) => {
                    debug_assert_eq!(image.len(), minimum, "an image spans the minimum");
                    image.extend(vmctx, &mut self.elements);
                }
                None => self.elements.resize(minimum, init),
            }
        }
        self.filled_from = image.map(|(image, vmctx)| (image.clone(), vmctx));
        self.sync_definition();
        self.definition.written = 0;
        Ok(())
    }

    pub fn ty(&self) -> TableType {
        TableType {
            minimum: self.elements.len() as u64,
            ..self.ty
        }
    }

    pub fn size(&self) -> u64 {
        self.elements.len() as u64
    }

    pub fn maximum(&self) -> Option<u64> {
        self.ty.maximum
    }

    pub fn vmtable(&mut self) -> *mut VMTableDefinition {
        &mut *self.definition
    }

    fn sync_definition(&mut self) {
        self.definition.base = self.elements.as_mut_ptr();
        self.definition.current_elements = self.elements.len();
    }

    /// Every method that may change an element goes through here first.
    fn elements_mut(&mut self) -> &mut Vec<usize> {
        self.definition.written = 1;
        &mut self.elements
    }

    /// Grows by `delta` elements set to `init`; returns the old size, or `None` if the
    /// maximum (declared or [`MAX_TABLE_ELEMENTS`]) would be exceeded.
    pub fn grow(&mut self, delta: u64, init: usize) -> Option<u64> {
        let old = self.size();
        let new = old.checked_add(delta)?;
        if new > self.ty.maximum.unwrap_or(u64::from(u32::MAX)) || new > self.limit {
            return None;
        }
        self.elements_mut().resize(new as usize, init);
        self.sync_definition();
        Some(old)
    }

    pub fn get(&self, index: u64) -> Option<usize> {
        self.elements.get(usize::try_from(index).ok()?).copied()
    }

    pub fn set(&mut self, index: u64, value: usize) -> Result<(), TableError> {
        let slot = usize::try_from(index)
            .ok()
            .and_then(|i| self.elements_mut().get_mut(i))
            .ok_or_else(|| TableError("out of bounds table access".into()))?;
        *slot = value;
        Ok(())
    }

    /// `table.fill`: false if the range is out of bounds (nothing written).
    pub fn fill(&mut self, dst: u64, value: usize, len: u64) -> bool {
        match range(dst, len, self.size()) {
            Some(r) => {
                self.elements_mut()[r].fill(value);
                true
            }
            None => false,
        }
    }

    /// Writes `values` at `dst`: false if out of bounds (nothing written).
    pub fn init(&mut self, dst: u64, values: &[usize]) -> bool {
        match range(dst, values.len() as u64, self.size()) {
            Some(r) => {
                self.elements_mut()[r].copy_from_slice(values);
                true
            }
            None => false,
        }
    }

    /// `table.copy` within one table (overlap-safe).
    pub fn copy_within(&mut self, dst: u64, src: u64, len: u64) -> bool {
        let size = self.size();
        match (range(dst, len, size), range(src, len, size)) {
            (Some(d), Some(s)) => {
                self.elements_mut().copy_within(s, d.start);
                true
            }
            _ => false,
        }
    }

    /// `table.copy` between two different tables.
    pub fn copy_from(&mut self, src_table: &Table, dst: u64, src: u64, len: u64) -> bool {
        match (
            range(dst, len, self.size()),
            range(src, len, src_table.size()),
        ) {
            (Some(d), Some(s)) => {
                self.elements_mut()[d].copy_from_slice(&src_table.elements[s]);
                true
            }
            _ => false,
        }
    }

    pub fn elements(&self) -> &[usize] {
        &self.elements
    }
}

/// `start..start+len` if it lies within `0..size`.
pub fn range(start: u64, len: u64, size: u64) -> Option<std::ops::Range<usize>> {
    let end = start.checked_add(len)?;
    (end <= size).then_some(start as usize..end as usize)
}
