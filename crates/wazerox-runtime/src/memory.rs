//! Linear memories that never move.
//!
//! A memory reserves `reservation + guard` bytes of address space up front (4 GiB +
//! 2 GiB by default) and keeps only its current size read-write. Growing changes
//! protections; the base address never changes, so compiled code may keep it in a
//! register and needs no bounds check for accesses whose static offset fits in the
//! guard region.

use crate::mmap::{Mmap, page_size};
use crate::vmcontext::VMMemoryDefinition;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes in a Wasm page.
pub const WASM_PAGE_SIZE: u64 = 65536;
/// Pages addressable by a 32-bit memory.
pub const MAX_PAGES_32: u64 = 65536;

/// How much address space memories reserve.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemoryStyle {
    /// Address space reserved for the memory's contents (4 GiB: the whole 32-bit range).
    pub reservation_bytes: u64,
    /// Inaccessible address space after the reservation.
    pub guard_bytes: u64,
}

impl Default for MemoryStyle {
    fn default() -> Self {
        MemoryStyle {
            reservation_bytes: 4 << 30,
            guard_bytes: 2 << 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryError(String);

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MemoryError {}

pub struct LinearMemory {
    mmap: Mmap,
    /// Whether threads share this memory (`memory.atomic.wait` needs it).
    shared: bool,
    /// Serializes growth: concurrent `memory.grow` on a shared memory must each see
    /// the size the other left.
    grow_lock: Mutex<()>,
    minimum_pages: u64,
    maximum_pages: Option<u64>,
    /// Largest size the reservation allows, in pages.
    reservable_pages: u64,
    definition: Box<VMMemoryDefinition>,
}

// SAFETY: the definition's base points into `mmap`, owned by the same struct.
unsafe impl Send for LinearMemory {}
// SAFETY: shared references only read.
unsafe impl Sync for LinearMemory {}

impl fmt::Debug for LinearMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinearMemory")
            .field("pages", &self.size_pages())
            .field("maximum_pages", &self.maximum_pages)
            .finish()
    }
}

impl LinearMemory {
    pub fn new(
        minimum_pages: u64,
        maximum_pages: Option<u64>,
        style: &MemoryStyle,
    ) -> Result<LinearMemory, MemoryError> {
        Self::with_sharing(minimum_pages, maximum_pages, false, style)
    }

    /// A memory that may be shared between threads. Like every memory it is reserved
    /// up front and never moves, so other threads keep valid base pointers while it
    /// grows.
    pub fn with_sharing(
        minimum_pages: u64,
        maximum_pages: Option<u64>,
        shared: bool,
        style: &MemoryStyle,
    ) -> Result<LinearMemory, MemoryError> {
        let reservable_pages = (style.reservation_bytes / WASM_PAGE_SIZE).min(MAX_PAGES_32);
        if minimum_pages > reservable_pages {
            return Err(MemoryError(format!(
                "memory minimum of {minimum_pages} pages exceeds the limit of {reservable_pages} pages"
            )));
        }
        let total = style
            .reservation_bytes
            .checked_add(style.guard_bytes)
            .and_then(|t| usize::try_from(t).ok())
            .ok_or_else(|| MemoryError("memory reservation too large".into()))?;
        let mmap = Mmap::reserve(total)
            .map_err(|e| MemoryError(format!("cannot reserve memory address space: {e}")))?;
        let initial = (minimum_pages * WASM_PAGE_SIZE) as usize;
        mmap.make_accessible(0, initial)
            .map_err(|e| MemoryError(format!("cannot commit memory: {e}")))?;
        let definition = Box::new(VMMemoryDefinition {
            base: mmap.as_ptr().cast_mut(),
            current_length: AtomicUsize::new(initial),
        });
        Ok(LinearMemory {
            mmap,
            shared,
            grow_lock: Mutex::new(()),
            minimum_pages,
            maximum_pages,
            reservable_pages,
            definition,
        })
    }

    pub fn byte_size(&self) -> u64 {
        self.definition.current_length.load(Ordering::Acquire) as u64
    }

    pub fn size_pages(&self) -> u64 {
        self.byte_size() / WASM_PAGE_SIZE
    }

    pub fn is_shared(&self) -> bool {
        self.shared
    }

    pub fn minimum_pages(&self) -> u64 {
        self.minimum_pages
    }

    pub fn maximum_pages(&self) -> Option<u64> {
        self.maximum_pages
    }

    /// Grows by `delta_pages`; returns the old size in pages, or `None` if the
    /// maximum (declared, 4 GiB, or the reservation) would be exceeded.
    pub fn grow(&self, delta_pages: u64) -> Option<u64> {
        let _growing = self.grow_lock.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.size_pages();
        let new = old.checked_add(delta_pages)?;
        if new > self.maximum_pages.unwrap_or(MAX_PAGES_32) || new > self.reservable_pages {
            return None;
        }
        if delta_pages == 0 {
            return Some(old);
        }
        let start = (old * WASM_PAGE_SIZE) as usize;
        let len = (delta_pages * WASM_PAGE_SIZE) as usize;
        debug_assert!(start.is_multiple_of(page_size()));
        self.mmap.make_accessible(start, len).ok()?;
        self.definition
            .current_length
            .store((new * WASM_PAGE_SIZE) as usize, Ordering::Release);
        Some(old)
    }

    pub fn data(&self) -> &[u8] {
        // SAFETY: the first `byte_size` bytes are mapped read-write and owned by us.
        unsafe { std::slice::from_raw_parts(self.mmap.as_ptr(), self.byte_size() as usize) }
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `data`, with exclusive access through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.mmap.as_mut_ptr(), self.byte_size() as usize) }
    }

    /// The definition compiled code reads; its address is stable.
    pub fn vmmemory(&self) -> *mut VMMemoryDefinition {
        &*self.definition as *const VMMemoryDefinition as *mut VMMemoryDefinition
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_within_maximum_and_never_moves() {
        let mut m = LinearMemory::new(1, Some(3), &MemoryStyle::default()).unwrap();
        assert!(!m.is_shared());
        let base = m.data().as_ptr();
        m.data_mut()[65535] = 9;
        assert_eq!(m.grow(1), Some(1));
        assert_eq!(m.grow(2), None);
        assert_eq!(m.grow(0), Some(2));
        assert_eq!(m.size_pages(), 2);
        assert_eq!(m.data().as_ptr(), base);
        assert_eq!(m.data()[65535], 9);
        assert_eq!(m.data()[65536 * 2 - 1], 0);
    }

    #[test]
    fn limits() {
        assert!(LinearMemory::new(65537, None, &MemoryStyle::default()).is_err());
        let m = LinearMemory::new(0, None, &MemoryStyle::default()).unwrap();
        assert_eq!(m.data().len(), 0);
        assert_eq!(m.grow(65537), None);
        assert_eq!(m.grow(1), Some(0));
    }
}
