//! Linear memories that never move.
//!
//! A memory reserves `reservation + guard` bytes of address space up front (4 GiB +
//! 2 GiB by default) with `PROT_NONE`, and keeps only its current size read-write.
//! Growing changes protections; the base address never changes, so compiled code
//! may keep it in a register, other threads (shared memories) never see a stale
//! base, and an access `base + index + offset` with a 32-bit index and a static
//! offset below the guard size lands either in the accessible prefix or in reserved,
//! inaccessible address space, where it faults and becomes a `MemoryOutOfBounds`
//! trap. That is why compiled code needs no explicit bounds checks.
//!
//! Compiled code reads a [`VMMemoryDefinition`] (`base`, `current_length`) that the
//! memory owns at a stable heap address. `grow` publishes the new length with a
//! release store after the pages were made accessible, so a reader that sees the new
//! length (acquire) also sees accessible pages.

use crate::memory_image::MemoryImage;
use crate::mmap::{Mmap, page_size};
use crate::vmcontext::VMMemoryDefinition;
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use wazerox_environ::{MemoryType, TranslationConfig};

/// Bytes in a (default-sized) Wasm page.
pub const WASM_PAGE_SIZE: u64 = 65536;
/// Pages addressable by a 32-bit memory of 64 KiB pages (4 GiB).
pub const MAX_PAGES_32: u64 = 65536;

/// How much address space memories reserve. Built from the [`TranslationConfig`]
/// the code was compiled with ([`MemoryStyle::for_config`]), so the guard compiled
/// code relies on is the guard the mapping has: the sizes are defined once, in
/// `wazerox_environ::tunables`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemoryStyle {
    /// Address space reserved for the memory's contents (4 GiB by default: the
    /// whole 32-bit range). A memory can never grow beyond it.
    pub reservation_bytes: u64,
    /// Inaccessible address space after the reservation; accesses whose static
    /// offset is below it need no bounds check.
    pub guard_bytes: u64,
}

impl MemoryStyle {
    /// The layout code compiled with `config` assumes.
    pub fn for_config(config: &TranslationConfig) -> Self {
        MemoryStyle {
            reservation_bytes: config.memory_reservation,
            guard_bytes: config.guard_bytes,
        }
    }
}

impl Default for MemoryStyle {
    fn default() -> Self {
        Self::for_config(&TranslationConfig::default())
    }
}

/// `bytes` rounded up to whole host pages: protections change per host page, so a
/// memory of one-byte pages has its last host page accessible entirely (its
/// accesses are always checked explicitly, so the slack is never reachable).
fn host_pages(bytes: u64) -> usize {
    (bytes as usize).next_multiple_of(page_size())
}

/// Why a memory could not be created.
#[derive(Debug)]
pub enum MemoryError {
    /// The declared minimum is above what a 32-bit memory or the reservation allows.
    MinimumTooLarge {
        minimum_pages: u64,
        limit_pages: u64,
    },
    /// The declared maximum is below the declared minimum.
    MaximumBelowMinimum {
        minimum_pages: u64,
        maximum_pages: u64,
    },
    /// Pages of a size Wasm does not have (only 1 byte and 64 KiB exist).
    UnsupportedPageSize { log2: u8 },
    /// `reservation + guard` does not fit in this process's address space.
    ReservationTooLarge { bytes: u64 },
    /// The kernel refused the address-space reservation.
    Reserve(std::io::Error),
    /// The kernel refused to make the initial pages accessible.
    Commit(std::io::Error),
    /// The module's memory image could not be mapped or does not fit.
    Image(std::io::Error),
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryError::MinimumTooLarge {
                minimum_pages,
                limit_pages,
            } => write!(
                f,
                "memory minimum of {minimum_pages} pages exceeds the limit of {limit_pages} pages"
            ),
            MemoryError::MaximumBelowMinimum {
                minimum_pages,
                maximum_pages,
            } => write!(
                f,
                "memory maximum of {maximum_pages} pages is below its minimum of {minimum_pages} pages"
            ),
            MemoryError::UnsupportedPageSize { log2 } => write!(
                f,
                "unsupported feature: pages of 2^{log2} bytes (only 1 and 65536 are valid)"
            ),
            MemoryError::ReservationTooLarge { bytes } => {
                write!(f, "memory reservation of {bytes} bytes is too large")
            }
            MemoryError::Reserve(e) => write!(f, "cannot reserve memory address space: {e}"),
            MemoryError::Commit(e) => write!(f, "cannot make memory pages accessible: {e}"),
            MemoryError::Image(e) => write!(f, "cannot map the memory's initial image: {e}"),
        }
    }
}

impl std::error::Error for MemoryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MemoryError::Reserve(e) | MemoryError::Commit(e) | MemoryError::Image(e) => Some(e),
            _ => None,
        }
    }
}

/// A 32-bit Wasm linear memory at a fixed address.
pub struct LinearMemory {
    mmap: Mmap,
    /// Whether threads share this memory (`memory.atomic.wait` needs it).
    shared: bool,
    /// Serializes growth: concurrent `memory.grow` on a shared memory must each see
    /// the size the other left.
    grow_lock: Mutex<()>,
    minimum_pages: u64,
    maximum_pages: Option<u64>,
    /// log2 of the page size (16, or 0 for one-byte pages).
    page_size_log2: u8,
    /// Addressed by `i64` (memory64).
    memory64: bool,
    /// Largest size in bytes the reservation (and, for pooled memories, the
    /// pool's per-slot limit) allows, whatever the page size.
    limit_bytes: u64,
    /// Largest size the reservation and the index type allow, in pages.
    limit_pages: u64,
    /// The image mapped over part of the reservation, if any: a pooled memory keeps
    /// it across reuses, so the next instance of the same module needs no `mmap`.
    image: Option<Arc<MemoryImage>>,
    /// Owned (from `Box::into_raw`, freed in `Drop`). Kept as a raw pointer rather
    /// than a `Box` so that moving the `LinearMemory` never asserts uniqueness over
    /// an allocation that compiled code and VMContexts point into.
    definition: NonNull<VMMemoryDefinition>,
}

// SAFETY: the definition's base points into `mmap`, owned by the same struct, and
// its only mutable field is atomic; the mapping itself is Send + Sync.
unsafe impl Send for LinearMemory {}
// SAFETY: `&self` methods only read, except `grow`, which is serialized by
// `grow_lock` and publishes through an atomic.
unsafe impl Sync for LinearMemory {}

impl fmt::Debug for LinearMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinearMemory")
            .field("pages", &self.size_pages())
            .field("maximum_pages", &self.maximum_pages)
            .field("shared", &self.shared)
            .finish()
    }
}

impl LinearMemory {
    /// A 32-bit memory of `minimum_pages` zeroed 64 KiB pages that may grow up to
    /// `maximum_pages` (or 4 GiB, or the reservation, whichever is smallest).
    pub fn new(
        minimum_pages: u64,
        maximum_pages: Option<u64>,
        style: &MemoryStyle,
    ) -> Result<LinearMemory, MemoryError> {
        Self::with_sharing(minimum_pages, maximum_pages, false, style)
    }

    /// A 32-bit memory of 64 KiB pages that may be shared between threads.
    pub fn with_sharing(
        minimum_pages: u64,
        maximum_pages: Option<u64>,
        shared: bool,
        style: &MemoryStyle,
    ) -> Result<LinearMemory, MemoryError> {
        let ty = MemoryType {
            shared,
            ..MemoryType::new(minimum_pages, maximum_pages)
        };
        Self::for_type(&ty, style)
    }

    /// A memory of type `ty` (any index type and page size), `ty.minimum` pages
    /// accessible. Like every memory it is reserved up front and never moves, so
    /// other threads keep valid base pointers while a shared memory grows.
    pub fn for_type(ty: &MemoryType, style: &MemoryStyle) -> Result<LinearMemory, MemoryError> {
        let mut memory = Self::reserve(style, u64::MAX)?;
        memory.shared = ty.shared;
        memory.reuse(ty, None)?;
        Ok(memory)
    }

    /// An empty, inaccessible memory reservation of `style`, never larger than
    /// `limit_bytes`.
    fn reserve(style: &MemoryStyle, limit_bytes: u64) -> Result<LinearMemory, MemoryError> {
        let total = style
            .reservation_bytes
            .checked_add(style.guard_bytes)
            .filter(|t| *t <= isize::MAX as u64)
            .ok_or(MemoryError::ReservationTooLarge {
                bytes: style.reservation_bytes.saturating_add(style.guard_bytes),
            })?;
        let mmap = Mmap::reserve(total as usize).map_err(MemoryError::Reserve)?;
        let definition = Box::new(VMMemoryDefinition {
            base: mmap.as_ptr().cast_mut(),
            current_length: AtomicUsize::new(0),
        });
        Ok(LinearMemory {
            mmap,
            shared: false,
            grow_lock: Mutex::new(()),
            minimum_pages: 0,
            maximum_pages: Some(0),
            page_size_log2: wazerox_environ::DEFAULT_PAGE_SIZE_LOG2,
            memory64: false,
            limit_bytes: style.reservation_bytes.min(limit_bytes),
            limit_pages: 0,
            image: None,
            definition: NonNull::from(Box::leak(definition)),
        })
    }

    /// An empty, inaccessible memory for a pool: it never grows beyond
    /// `limit_bytes` (nor what `style` reserves) and is readied for each use by
    /// [`LinearMemory::reuse`].
    pub fn for_pool(limit_bytes: u64, style: &MemoryStyle) -> Result<LinearMemory, MemoryError> {
        Self::reserve(style, limit_bytes)
    }

    /// The most pages a memory of type `ty` may have here: the index type's range
    /// and this reservation's (and pool slot's) size, whichever is smaller.
    pub fn limit_pages_for(&self, ty: &MemoryType) -> u64 {
        (self.limit_bytes >> ty.page_size_log2).min(ty.max_pages_of_index_type())
    }

    /// Readies a memory (a new reservation, or a pooled one released by
    /// [`LinearMemory::release`]) for a new instance's memory of type `ty`:
    /// `ty.minimum` pages accessible, the rest inaccessible, and `image` installed
    /// (kept from the previous use when it is the same image).
    pub fn reuse(
        &mut self,
        ty: &MemoryType,
        image: Option<&Arc<MemoryImage>>,
    ) -> Result<(), MemoryError> {
        let (minimum_pages, maximum_pages) = (ty.minimum, ty.maximum);
        if ![0, wazerox_environ::DEFAULT_PAGE_SIZE_LOG2].contains(&ty.page_size_log2) {
            return Err(MemoryError::UnsupportedPageSize {
                log2: ty.page_size_log2,
            });
        }
        let limit_pages = self.limit_pages_for(ty);
        if minimum_pages > limit_pages {
            return Err(MemoryError::MinimumTooLarge {
                minimum_pages,
                limit_pages,
            });
        }
        if let Some(maximum_pages) = maximum_pages.filter(|m| *m < minimum_pages) {
            return Err(MemoryError::MaximumBelowMinimum {
                minimum_pages,
                maximum_pages,
            });
        }
        let same_image = match (&self.image, image) {
            (Some(old), Some(new)) => Arc::ptr_eq(old, new),
            (None, None) => true,
            _ => false,
        };
        let mut accessible = host_pages(self.byte_size());
        if !same_image && let Some(old) = self.image.take() {
            // Back to plain reserved address space: replacing the image's pages with
            // a fresh inaccessible anonymous mapping drops the file mapping.
            self.mmap
                .replace_with_reservation(old.offset(), old.len())
                .map_err(MemoryError::Reserve)?;
            // The hole it leaves in the accessible prefix is simplest closed by
            // starting from nothing.
            self.mmap
                .make_inaccessible(0, accessible)
                .map_err(MemoryError::Commit)?;
            accessible = 0;
        }
        // Below `limit_bytes` (checked above), so the shift cannot overflow.
        let wanted_bytes = minimum_pages << ty.page_size_log2;
        let wanted = host_pages(wanted_bytes);
        if wanted > accessible {
            self.mmap
                .make_accessible(accessible, wanted - accessible)
                .map_err(MemoryError::Commit)?;
        } else if wanted < accessible {
            self.mmap
                .make_inaccessible(wanted, accessible - wanted)
                .map_err(MemoryError::Commit)?;
        }
        self.definition()
            .current_length
            .store(wanted_bytes as usize, Ordering::Release);
        self.minimum_pages = minimum_pages;
        self.maximum_pages = maximum_pages;
        self.page_size_log2 = ty.page_size_log2;
        self.memory64 = ty.memory64;
        self.limit_pages = limit_pages;
        if !same_image && let Some(image) = image {
            self.install_image(image)?;
        }
        Ok(())
    }

    /// The copy-on-write image mapped into this memory, if any.
    pub fn image(&self) -> Option<&Arc<MemoryImage>> {
        self.image.as_ref()
    }

    /// Returns a pooled memory's written pages to the kernel so that its next use
    /// starts from zeros (and from the image's contents where the image is mapped:
    /// dropping private copies of a file mapping reverts them to the file). Pages
    /// only read keep their mapping (see [`crate::pagemap`]), so the next instance
    /// does not fault them in again.
    pub fn release(&mut self) -> Result<(), MemoryError> {
        let accessible = host_pages(self.byte_size());
        let scanned = accessible / crate::mmap::page_size() <= crate::pagemap::MAX_SCANNED_PAGES;
        if scanned {
            self.mmap.decommit_written(0, accessible)
        } else {
            self.mmap.decommit(0, accessible)
        }
        .map_err(MemoryError::Commit)
    }

    fn definition(&self) -> &VMMemoryDefinition {
        // SAFETY: allocated in the constructor and freed only in `drop`.
        unsafe { self.definition.as_ref() }
    }

    /// Accessible bytes.
    pub fn byte_size(&self) -> u64 {
        self.definition().current_length.load(Ordering::Acquire) as u64
    }

    /// Accessible size in pages of this memory's page size.
    pub fn size_pages(&self) -> u64 {
        self.byte_size() >> self.page_size_log2
    }

    /// The memory's type now: its current size as the minimum.
    pub fn ty(&self) -> MemoryType {
        MemoryType {
            minimum: self.size_pages(),
            maximum: self.maximum_pages,
            shared: self.shared,
            memory64: self.memory64,
            page_size_log2: self.page_size_log2,
        }
    }

    /// The most pages this memory may grow to (index type and reservation).
    pub fn limit_pages(&self) -> u64 {
        self.limit_pages
    }

    /// log2 of the page size: 16 (64 KiB pages) or 0 (one-byte pages).
    pub fn page_size_log2(&self) -> u8 {
        self.page_size_log2
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
    /// declared maximum, the index type's range, or the reservation would be
    /// exceeded (or the kernel refused the protection change). `grow(0)` returns
    /// the current size.
    ///
    /// Takes `&self` so that a shared memory can grow while other threads use it;
    /// growth only makes more pages accessible and never invalidates a pointer.
    pub fn grow(&self, delta_pages: u64) -> Option<u64> {
        let unchecked = self.grow_checked(delta_pages, |_, _| {
            Ok::<bool, std::convert::Infallible>(true)
        });
        unchecked.unwrap_or_else(|never| match never {})
    }

    /// Like [`grow`](Self::grow), but first asks `allow(current_bytes,
    /// desired_bytes)` (a resource limiter) under the growth lock, so that
    /// concurrent growers of a shared memory are each judged against the size the
    /// others left: a limit on the memory's size holds exactly. `allow` is not
    /// asked for `delta_pages == 0` or a growth the memory itself refuses.
    pub fn grow_checked<E>(
        &self,
        delta_pages: u64,
        allow: impl FnOnce(u64, u64) -> Result<bool, E>,
    ) -> Result<Option<u64>, E> {
        let _growing = self.grow_lock.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.size_pages();
        let Some(new) = old.checked_add(delta_pages) else {
            return Ok(None);
        };
        if new > self.maximum_pages.unwrap_or(u64::MAX) || new > self.limit_pages {
            return Ok(None);
        }
        if delta_pages == 0 {
            return Ok(Some(old));
        }
        if !allow(old << self.page_size_log2, new << self.page_size_log2)? {
            return Ok(None);
        }
        // Both bounded by `limit_pages`, so within the reservation.
        let start = host_pages(old << self.page_size_log2);
        let end = host_pages(new << self.page_size_log2);
        if end > start && self.mmap.make_accessible(start, end - start).is_err() {
            return Ok(None);
        }
        self.definition()
            .current_length
            .store((new << self.page_size_log2) as usize, Ordering::Release);
        Ok(Some(old))
    }

    /// The accessible bytes of an unshared memory.
    ///
    /// # Panics
    /// For a shared memory: other threads may write its bytes at any time, so they
    /// are never borrowed as a Rust slice, only copied through raw pointers
    /// ([`LinearMemory::vmmemory`]'s base).
    pub fn data(&self) -> &[u8] {
        assert!(
            !self.shared,
            "the bytes of a shared memory are never borrowed"
        );
        // SAFETY: the first `byte_size` bytes are mapped read-write, owned by us,
        // and stay mapped while `self` is borrowed (growth only adds pages).
        unsafe { std::slice::from_raw_parts(self.mmap.as_ptr(), self.byte_size() as usize) }
    }

    /// The accessible bytes of an unshared memory, writable.
    ///
    /// # Panics
    /// For a shared memory, as [`LinearMemory::data`].
    pub fn data_mut(&mut self) -> &mut [u8] {
        assert!(
            !self.shared,
            "the bytes of a shared memory are never borrowed"
        );
        let len = self.byte_size() as usize;
        // SAFETY: as for `data`, with exclusive access through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.mmap.as_mut_ptr(), len) }
    }

    /// Gives the memory `image`'s contents (mapped copy-on-write, or copied) in
    /// place of the zero pages there. Only for a memory no one has seen yet: the
    /// image replaces whatever the pages held.
    pub fn install_image(&mut self, image: &Arc<MemoryImage>) -> Result<(), MemoryError> {
        let end = image.offset().checked_add(image.len());
        if end.is_none_or(|end| end as u64 > self.byte_size()) {
            return Err(MemoryError::Image(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "image extends past the memory's accessible size",
            )));
        }
        // SAFETY: the image's range is page-aligned (images are built that way),
        // inside our reservation and accessible (checked above), and `&mut self`
        // means no one else holds references into it.
        unsafe { image.install(self.mmap.as_mut_ptr()) }.map_err(MemoryError::Image)?;
        if image.is_mapped() {
            self.image = Some(image.clone());
        }
        Ok(())
    }

    /// The addresses of the whole reservation, guard region included: where a
    /// fault of compiled code accessing this memory can land.
    pub fn reservation(&self) -> std::ops::Range<usize> {
        let start = self.mmap.as_ptr() as usize;
        start..start + self.mmap.len()
    }

    /// The definition compiled code reads; its address is stable for the memory's
    /// lifetime. Compiled code may only read `base` and load `current_length`.
    pub fn vmmemory(&self) -> *mut VMMemoryDefinition {
        self.definition.as_ptr()
    }
}

impl Drop for LinearMemory {
    fn drop(&mut self) {
        // SAFETY: allocated by `Box` in the constructor; nothing uses it once the
        // memory is dropped (VMContexts and code that point at it are gone first).
        drop(unsafe { Box::from_raw(self.definition.as_ptr()) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = WASM_PAGE_SIZE as usize;

    #[test]
    fn grows_within_maximum_and_never_moves() {
        let mut m = LinearMemory::new(1, Some(3), &MemoryStyle::default()).unwrap();
        assert!(!m.is_shared());
        assert_eq!((m.minimum_pages(), m.maximum_pages()), (1, Some(3)));
        let base = m.data().as_ptr();
        m.data_mut()[PAGE - 1] = 9;
        assert_eq!(m.grow(1), Some(1));
        assert_eq!(m.size_pages(), 2);
        assert_eq!(m.data().len(), 2 * PAGE);
        assert_eq!(m.data().as_ptr(), base);
        assert_eq!(m.data()[PAGE - 1], 9, "contents survive growth");
        assert!(
            m.data()[PAGE..].iter().all(|b| *b == 0),
            "new pages are zero"
        );
    }

    #[test]
    fn growing_beyond_the_maximum_fails_and_changes_nothing() {
        let m = LinearMemory::new(1, Some(3), &MemoryStyle::default()).unwrap();
        assert_eq!(m.grow(3), None);
        assert_eq!(m.grow(u64::MAX), None);
        assert_eq!(m.size_pages(), 1);
        assert_eq!(m.grow(2), Some(1));
        assert_eq!(m.grow(1), None);
        assert_eq!(m.grow(0), Some(3));
    }

    #[test]
    fn grows_to_four_gib_and_no_further() {
        let mut m = LinearMemory::new(0, None, &MemoryStyle::default()).unwrap();
        assert_eq!(m.grow(MAX_PAGES_32 + 1), None);
        assert_eq!(m.grow(MAX_PAGES_32), Some(0));
        assert_eq!(m.byte_size(), 4 << 30);
        assert_eq!(m.grow(1), None);
        let data = m.data_mut();
        assert_eq!(data.len(), 4 << 30);
        data[(4 << 30) - 1] = 1;
        assert_eq!(m.data()[(4 << 30) - 1], 1);
    }

    #[test]
    fn minimum_limits_are_rejected_with_a_reason() {
        let style = MemoryStyle::default();
        let e = LinearMemory::new(MAX_PAGES_32 + 1, None, &style).unwrap_err();
        assert!(matches!(e, MemoryError::MinimumTooLarge { .. }));
        assert!(e.to_string().contains("65537 pages"), "{e}");
        let e = LinearMemory::new(2, Some(1), &style).unwrap_err();
        assert!(matches!(e, MemoryError::MaximumBelowMinimum { .. }), "{e}");
        assert!(LinearMemory::new(MAX_PAGES_32, None, &style).is_ok());
    }

    #[test]
    fn a_small_reservation_bounds_minimum_and_growth() {
        let style = MemoryStyle {
            reservation_bytes: 16 * WASM_PAGE_SIZE,
            guard_bytes: 0,
        };
        assert!(LinearMemory::new(17, None, &style).is_err());
        let m = LinearMemory::new(15, None, &style).unwrap();
        assert_eq!(m.grow(2), None);
        assert_eq!(m.grow(1), Some(15));
        assert_eq!(m.grow(1), None);
    }

    #[test]
    fn zero_page_memory() {
        let mut m = LinearMemory::new(0, Some(0), &MemoryStyle::default()).unwrap();
        assert_eq!(m.data().len(), 0);
        assert_eq!(m.data_mut().len(), 0);
        assert_eq!(m.grow(0), Some(0));
        assert_eq!(m.grow(1), None);
    }

    #[test]
    fn vmmemory_is_stable_and_tracks_growth() {
        let m = LinearMemory::new(1, None, &MemoryStyle::default()).unwrap();
        let definition = m.vmmemory();
        let base = m.data().as_ptr();
        // Moving the memory must not move its definition.
        let m = Box::new(m);
        assert_eq!(m.vmmemory(), definition);
        m.grow(2).unwrap();
        // SAFETY: the definition lives as long as `m`.
        let (def_base, def_len) = unsafe {
            (
                (*definition).base,
                (*definition).current_length.load(Ordering::Acquire),
            )
        };
        assert_eq!(def_base.cast_const(), base);
        assert_eq!(def_len, 3 * PAGE);
    }

    #[test]
    fn shared_memories_grow_from_many_threads() {
        let m = LinearMemory::with_sharing(0, Some(64), true, &MemoryStyle::default()).unwrap();
        assert!(m.is_shared());
        let mut olds: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| (0..8).map(|_| m.grow(1).unwrap()).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        olds.sort_unstable();
        assert_eq!(
            olds,
            (0..64).collect::<Vec<_>>(),
            "every grow saw a distinct size"
        );
        assert_eq!(m.grow(1), None);
    }

    #[test]
    fn a_size_limit_checked_under_the_growth_lock_holds_across_threads() {
        const LIMIT: u64 = 40 * WASM_PAGE_SIZE;
        let m = LinearMemory::with_sharing(0, Some(1000), true, &MemoryStyle::default()).unwrap();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let within = |_, desired| Ok::<bool, ()>(desired <= LIMIT);
                    while m.grow_checked(1, within).unwrap().is_some() {}
                });
            }
        });
        assert_eq!(m.byte_size(), LIMIT, "grown exactly to the limit");
        let refused = m.grow_checked(1, |current, desired| {
            assert_eq!((current, desired), (LIMIT, LIMIT + WASM_PAGE_SIZE));
            Err("no")
        });
        assert_eq!(refused, Err("no"), "the check's error comes back");
    }
}
