//! A pool of linear memories reused across instances.
//!
//! Creating a memory costs an `mmap` of its whole reservation (6 GiB of address
//! space by default), an `mprotect`, and on drop an `munmap`; with many short-lived
//! instances the kernel's work on those address-space changes dominates
//! instantiation. A pooled memory keeps its reservation: released, its pages are
//! given back with `madvise(MADV_DONTNEED)` (zero pages again, or the image's
//! contents where a module's memory image is mapped), and the next instance only
//! adjusts the accessible size. A slot that last held the same module's image
//! needs no `mmap` at all, so slots are preferably reused by the same module.
//!
//! Decisions:
//! - Slots are reserved lazily, up to `max_slots`; a pool that is never full costs
//!   only what it used. Asking for a slot when all are in use is an error (never a
//!   wait, never a crash): the embedder sized the pool.
//! - Every slot reserves what the engine's [`MemoryStyle`] reserves, whatever the
//!   per-slot size limit, because compiled code elides bounds checks on the
//!   assumption of the full reservation plus guard. The limit only caps growth.
//! - Only unshared memories are pooled; shared memories are created per process, not
//!   per request, and outlive any one instance.
//! - VMContexts and tables are pooled by [`crate::instance_pool::InstancePool`],
//!   which owns this pool.

use crate::memory::{LinearMemory, MemoryError, MemoryStyle};
use crate::memory_image::MemoryImage;
use std::sync::{Arc, Mutex};
use wazerox_environ::MemoryType;

/// How many released slots are searched for one that holds the wanted image.
const AFFINITY_SEARCH: usize = 16;

/// A pool of memory slots shared by the stores of one engine.
#[derive(Debug)]
pub struct MemoryPool {
    style: MemoryStyle,
    max_slots: usize,
    limit_bytes: u64,
    state: Mutex<PoolState>,
}

#[derive(Debug, Default)]
struct PoolState {
    /// Released slots, most recently released last.
    #[allow(clippy::vec_box)]
    free: Vec<Box<LinearMemory>>,
    /// Slots reserved so far (in use or free).
    reserved: usize,
}

/// Why a pooled memory could not be handed out.
#[derive(Debug)]
pub enum PoolError {
    /// Every slot is in use.
    Exhausted { slots: usize },
    /// The memory's minimum is above the pool's per-slot limit.
    TooLarge {
        minimum_pages: u64,
        limit_pages: u64,
    },
    /// The kernel refused a reservation or protection change.
    Memory(MemoryError),
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoolError::Exhausted { slots } => write!(
                f,
                "pooling allocator exhausted: all {slots} memory slots are in use"
            ),
            PoolError::TooLarge {
                minimum_pages,
                limit_pages,
            } => write!(
                f,
                "memory minimum of {minimum_pages} pages exceeds the pooling allocator's \
                 limit of {limit_pages} pages per memory"
            ),
            PoolError::Memory(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PoolError {}

impl MemoryPool {
    /// A pool of at most `max_slots` memories of at most `max_bytes` each.
    pub fn new(max_slots: usize, max_bytes: u64, style: MemoryStyle) -> MemoryPool {
        MemoryPool {
            limit_bytes: max_bytes,
            style,
            max_slots,
            state: Mutex::new(PoolState::default()),
        }
    }

    /// A memory of type `ty` (with `image` installed) from a free or new slot.
    pub fn allocate(
        self: &Arc<Self>,
        ty: &MemoryType,
        image: Option<&Arc<MemoryImage>>,
    ) -> Result<PooledMemory, PoolError> {
        let limit_pages = (self.limit_bytes.min(self.style.reservation_bytes) >> ty.page_size_log2)
            .min(ty.max_pages_of_index_type());
        if ty.minimum > limit_pages {
            return Err(PoolError::TooLarge {
                minimum_pages: ty.minimum,
                limit_pages,
            });
        }
        let mut memory = self.take_slot(image)?;
        if let Err(e) = memory.reuse(ty, image) {
            // The slot's state is unknown now; give its reservation back entirely.
            drop(memory);
            self.lock().reserved -= 1;
            return Err(PoolError::Memory(e));
        }
        Ok(PooledMemory {
            memory: Some(memory),
            pool: self.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take_slot(&self, image: Option<&Arc<MemoryImage>>) -> Result<Box<LinearMemory>, PoolError> {
        let mut state = self.lock();
        let free = &mut state.free;
        if !free.is_empty() {
            let matching = image.and_then(|image| {
                free.iter()
                    .rev()
                    .take(AFFINITY_SEARCH)
                    .position(|m| m.image().is_some_and(|i| Arc::ptr_eq(i, image)))
                    .map(|from_end| free.len() - 1 - from_end)
            });
            let index = matching.unwrap_or(free.len() - 1);
            return Ok(free.swap_remove(index));
        }
        if state.reserved >= self.max_slots {
            return Err(PoolError::Exhausted {
                slots: self.max_slots,
            });
        }
        state.reserved += 1;
        drop(state);
        match LinearMemory::for_pool(self.limit_bytes, &self.style) {
            Ok(memory) => Ok(Box::new(memory)),
            Err(e) => {
                self.lock().reserved -= 1;
                Err(PoolError::Memory(e))
            }
        }
    }

    fn give_back(&self, mut memory: Box<LinearMemory>) {
        let reusable = memory.release().is_ok();
        let mut state = self.lock();
        if reusable {
            state.free.push(memory);
        } else {
            // Its pages may still hold the last instance's data: never hand it out
            // again; dropping it unmaps everything.
            state.reserved -= 1;
            drop(state);
            drop(memory);
        }
    }

    /// Slots currently reserved (in use or free).
    pub fn reserved_slots(&self) -> usize {
        self.lock().reserved
    }
}

/// A memory borrowed from a [`MemoryPool`], returned (reset) when dropped.
#[derive(Debug)]
pub struct PooledMemory {
    memory: Option<Box<LinearMemory>>,
    pool: Arc<MemoryPool>,
}

impl PooledMemory {
    /// The memory; its address is stable until this is dropped.
    pub fn memory_mut(&mut self) -> &mut LinearMemory {
        self.memory.as_mut().expect("present until dropped")
    }
}

impl Drop for PooledMemory {
    fn drop(&mut self) {
        if let Some(memory) = self.memory.take() {
            self.pool.give_back(memory);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory_image::COPY_THRESHOLD;

    use crate::memory::WASM_PAGE_SIZE;

    const PAGE: usize = WASM_PAGE_SIZE as usize;

    fn ty(minimum: u64, maximum: Option<u64>) -> MemoryType {
        MemoryType::new(minimum, maximum)
    }

    fn image(fill: u8) -> Arc<MemoryImage> {
        Arc::new(MemoryImage::new(0, vec![fill; 2 * COPY_THRESHOLD]))
    }

    #[test]
    fn released_memories_are_reused_and_reset() {
        let pool = Arc::new(MemoryPool::new(2, 4 << 20, MemoryStyle::default()));
        let mut a = pool.allocate(&ty(2, None), None).unwrap();
        let base = a.memory_mut().data().as_ptr();
        a.memory_mut().data_mut()[PAGE + 3] = 9;
        assert_eq!(a.memory_mut().grow(1), Some(2));
        drop(a);
        let mut b = pool.allocate(&ty(1, Some(1)), None).unwrap();
        let m = b.memory_mut();
        assert_eq!(m.data().as_ptr(), base, "the slot was reused");
        assert_eq!(m.size_pages(), 1);
        assert!(m.data().iter().all(|b| *b == 0));
        assert_eq!(m.grow(1), None, "the new maximum applies");
        assert_eq!(pool.reserved_slots(), 1);
    }

    #[test]
    fn images_survive_reuse_and_are_replaced_by_other_images() {
        let pool = Arc::new(MemoryPool::new(1, 4 << 20, MemoryStyle::default()));
        let (sevens, nines) = (image(7), image(9));
        let mut a = pool.allocate(&ty(1, None), Some(&sevens)).unwrap();
        assert_eq!(a.memory_mut().data()[5], 7);
        a.memory_mut().data_mut()[5] = 1;
        drop(a);
        let mut b = pool.allocate(&ty(1, None), Some(&sevens)).unwrap();
        assert_eq!(b.memory_mut().data()[5], 7, "the private copy was dropped");
        drop(b);
        let mut c = pool.allocate(&ty(1, None), Some(&nines)).unwrap();
        assert_eq!(c.memory_mut().data()[5], 9);
        drop(c);
        let mut d = pool.allocate(&ty(2, None), None).unwrap();
        assert!(d.memory_mut().data().iter().all(|b| *b == 0));
    }

    /// Release drops only the pages written (`crate::pagemap`): the image's pages
    /// and zero pages that were only read stay, written ones on either side of
    /// the image's end are undone, over several reuses.
    #[test]
    fn reuse_undoes_writes_and_keeps_what_was_only_read() {
        let pool = Arc::new(MemoryPool::new(1, 4 << 20, MemoryStyle::default()));
        let sevens = image(7);
        let image_len = 2 * COPY_THRESHOLD;
        for round in 0..3u8 {
            let mut m = pool.allocate(&ty(1, None), Some(&sevens)).unwrap();
            let data = m.memory_mut().data_mut();
            assert!(data[..image_len].iter().all(|b| *b == 7), "round {round}");
            assert!(data[image_len..].iter().all(|b| *b == 0), "round {round}");
            // Writes in the image (first page and a middle one) and past it.
            data[round as usize] = 100 + round;
            data[image_len / 2] = 1;
            data[image_len + 4096 * round as usize] = 2;
            let last = data.len() - 1;
            data[last] = 3;
        }
    }

    #[test]
    fn a_full_pool_and_oversized_memories_are_errors() {
        let pool = Arc::new(MemoryPool::new(
            1,
            2 * WASM_PAGE_SIZE,
            MemoryStyle::default(),
        ));
        let held = pool.allocate(&ty(1, None), None).unwrap();
        let e = pool.allocate(&ty(1, None), None).unwrap_err();
        assert!(matches!(e, PoolError::Exhausted { slots: 1 }), "{e}");
        drop(held);
        let e = pool.allocate(&ty(3, None), None).unwrap_err();
        assert!(e.to_string().contains("limit of 2 pages"), "{e}");
        let mut m = pool.allocate(&ty(2, None), None).unwrap();
        assert_eq!(
            m.memory_mut().grow(1),
            None,
            "growth stops at the slot limit"
        );
    }

    /// A multi-memory module: each defined memory gets its own image and its own
    /// slot, and a slot goes back to the memory whose image it holds.
    #[test]
    fn each_memory_of_a_module_gets_its_own_image_and_slot() {
        use crate::memory_image::memory_images;
        use wazerox_environ::{ConstExpr, ConstOp, DataMode, DataSegment, MemoryIndex, ModuleInfo};
        let segment = |memory: u32, fill: u8| DataSegment {
            mode: DataMode::Active {
                memory: MemoryIndex(memory),
                offset: ConstExpr::single(ConstOp::I32Const(PAGE as i32)),
            },
            bytes: vec![fill; 2 * COPY_THRESHOLD],
        };
        let info = ModuleInfo {
            memories: vec![ty(2, None), ty(3, None)],
            data: vec![segment(0, 0xa), segment(1, 0xb)],
            ..ModuleInfo::default()
        };
        let images = memory_images(&info);
        let images: Vec<_> = images.iter().map(|i| i.clone().unwrap()).collect();
        assert!(images.iter().all(|i| i.is_mapped()), "both copy-on-write");
        let pool = Arc::new(MemoryPool::new(2, 4 << 20, MemoryStyle::default()));
        let mut first_bases = Vec::new();
        for round in 0..3 {
            let mut memories: Vec<_> = info
                .memories
                .iter()
                .zip(&images)
                .map(|(t, image)| pool.allocate(t, Some(image)).unwrap())
                .collect();
            let bases: Vec<_> = memories
                .iter_mut()
                .map(|m| m.memory_mut().data().as_ptr())
                .collect();
            for (m, fill) in memories.iter_mut().zip([0xa, 0xb]) {
                let m = m.memory_mut();
                assert_eq!(m.image().map(|i| i.len()), Some(2 * COPY_THRESHOLD));
                assert_eq!(m.data()[PAGE], fill, "round {round}");
                assert_eq!(m.data()[PAGE - 1], 0);
                m.data_mut()[PAGE] = 0xff;
            }
            if round == 0 {
                first_bases = bases;
            } else {
                assert_eq!(bases, first_bases, "each memory got its image's slot back");
            }
        }
        assert_eq!(pool.reserved_slots(), 2);
    }
}
