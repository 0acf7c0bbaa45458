//! Executable memory for compiled code: written once, then made read+execute.
//!
//! The code is copied into fresh read-write pages, the caller patches the absolute
//! relocations (which need the final address), and the pages become read+execute for
//! good: code memory is never writable and executable at the same time (W^X).
//!
//! On AArch64 the instruction cache is not coherent with data writes, so the new
//! code is cleaned from the data cache and invalidated in the instruction cache with
//! a short `dc cvau` / `ic ivau` loop written here rather than by calling
//! `__clear_cache`: which runtime library provides that symbol (libgcc, compiler-rt,
//! or none) depends on the toolchain and C library, while the loop depends on
//! nothing and honours the CPU's `CTR_EL0` hints that make either step unnecessary.
//! Other threads may later run the code on other cores; on Linux a `membarrier`
//! "sync core" makes every core of the process discard instructions it may have
//! fetched from a reused address (the loop's `isb` only covers the current core).
//!
//! Code compiled one function at a time (lazy compilation) comes from a
//! [`CodeArena`] instead of a mapping of its own: Linux limits a process to
//! `vm.max_map_count` mappings (65,530 by default), fewer than the functions a big
//! program calls. The arena hands out fresh page-aligned pieces of large
//! reservations; each piece is made writable, written and made executable on its
//! own (the same W^X as above: no page is writable once executable, and no page
//! that may be executing is written), and adjacent executable pieces merge into
//! one kernel mapping.

use crate::mmap::{Mmap, page_size};
use std::sync::{Arc, Mutex};

/// An immutable, executable copy of compiled code.
pub struct CodeMemory {
    /// What keeps the pages mapped.
    _pages: Pages,
    base: usize,
    len: usize,
}

#[allow(dead_code)] // held only to keep the pages mapped
enum Pages {
    Own(Mmap),
    /// A piece of an arena's chunk, unmapped with the chunk.
    Shared(Arc<Mmap>),
}

impl std::fmt::Debug for CodeMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CodeMemory({:#x}, {} bytes)", self.base(), self.len)
    }
}

/// Bytes of whole pages that hold `code` (at least one page).
fn code_pages_size(code: &[u8]) -> Result<usize, String> {
    code.len()
        .max(1)
        .checked_next_multiple_of(page_size())
        .ok_or_else(|| "code too large".to_string())
}

impl CodeMemory {
    /// Copies `code` into fresh pages, lets `patch` apply relocations that need the
    /// final address (it gets the code at that address, still writable), then makes
    /// the pages read+execute (never writable again).
    pub fn new(
        code: &[u8],
        patch: impl FnOnce(&mut [u8]) -> Result<(), String>,
    ) -> Result<CodeMemory, String> {
        let size = code_pages_size(code)?;
        let mut mmap =
            Mmap::accessible(size).map_err(|e| format!("cannot map code memory: {e}"))?;
        // SAFETY: the mapping is `size >= code.len()` bytes of fresh read-write
        // memory owned by `mmap`, which outlives the slice.
        let text = unsafe { std::slice::from_raw_parts_mut(mmap.as_mut_ptr(), code.len()) };
        text.copy_from_slice(code);
        patch(text)?;
        mmap.make_executable(0, mmap.len())
            .map_err(|e| format!("cannot make code executable: {e}"))?;
        icache::flush(mmap.as_ptr(), code.len());
        Ok(CodeMemory {
            base: mmap.as_ptr() as usize,
            _pages: Pages::Own(mmap),
            len: code.len(),
        })
    }

    /// The code bytes (readable, not writable).
    pub fn text(&self) -> &[u8] {
        // SAFETY: the first `len` bytes are mapped readable and never change.
        unsafe { std::slice::from_raw_parts(self.base as *const u8, self.len) }
    }

    /// Address of the first code byte.
    pub fn base(&self) -> usize {
        self.base
    }

    /// Code bytes (not rounded to pages).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `pc` points into the code.
    pub fn contains(&self, pc: usize) -> bool {
        pc.checked_sub(self.base())
            .is_some_and(|offset| offset < self.len)
    }
}

/// Reserved address space per arena chunk: inaccessible (and costing no memory)
/// until used.
const CHUNK_SIZE: usize = 64 << 20;

/// Executable memory for many separately compiled pieces of code, carved from
/// large reservations (see the module docs).
#[derive(Default)]
pub struct CodeArena {
    /// The chunk being filled and the offset of its first unused page.
    current: Mutex<Option<(Arc<Mmap>, usize)>>,
}

impl CodeArena {
    pub fn new() -> CodeArena {
        CodeArena::default()
    }

    /// Like [`CodeMemory::new`], in fresh pages of this arena. The pieces keep
    /// their chunk mapped for as long as any of them lives.
    pub fn allocate(
        &self,
        code: &[u8],
        patch: impl FnOnce(&mut [u8]) -> Result<(), String>,
    ) -> Result<CodeMemory, String> {
        let size = code_pages_size(code)?;
        let (chunk, start) = {
            let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
            match &mut *current {
                Some((chunk, next)) if chunk.len() - *next >= size => {
                    let start = *next;
                    *next += size;
                    (chunk.clone(), start)
                }
                _ => {
                    let chunk = Arc::new(
                        Mmap::reserve(size.max(CHUNK_SIZE))
                            .map_err(|e| format!("cannot reserve code memory: {e}"))?,
                    );
                    *current = Some((chunk.clone(), size));
                    (chunk, 0)
                }
            }
        };
        // From here the pages `start..start + size` are ours alone: no other
        // piece overlaps them, and nothing executes them before we return.
        chunk
            .make_accessible(start, size)
            .map_err(|e| format!("cannot map code memory: {e}"))?;
        // SAFETY: the range lies in the chunk (handed out above), is read-write now
        // and is written by no one else; `chunk` outlives the slice.
        let text = unsafe {
            std::slice::from_raw_parts_mut(chunk.as_ptr().add(start).cast_mut(), code.len())
        };
        text.copy_from_slice(code);
        patch(text)?;
        chunk
            .make_range_executable(start, size)
            .map_err(|e| format!("cannot make code executable: {e}"))?;
        let base = chunk.as_ptr() as usize + start;
        icache::flush(base as *const u8, code.len());
        Ok(CodeMemory {
            _pages: Pages::Shared(chunk),
            base,
            len: code.len(),
        })
    }
}

#[cfg(target_arch = "aarch64")]
mod icache {
    use std::arch::asm;

    /// Makes `len` freshly written bytes at `start` visible to instruction fetch.
    pub(super) fn flush(start: *const u8, len: usize) {
        let ctr: u64;
        // SAFETY: CTR_EL0 is readable at EL0 on Linux (the kernel enables or
        // emulates the access); reading it has no side effects.
        unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
        let begin = start as usize;
        let end = begin + len;
        // CTR_EL0.IDC: cleaning the data cache to the point of unification is not
        // required for instruction-to-data coherence.
        if ctr & (1 << 28) == 0 {
            let line = 4usize << ((ctr >> 16) & 0xf);
            let mut address = begin & !(line - 1);
            while address < end {
                // SAFETY: `address` is in our readable code mapping; `dc cvau` only
                // writes dirty lines back, it changes no memory contents.
                unsafe { asm!("dc cvau, {}", in(reg) address, options(nostack, preserves_flags)) };
                address += line;
            }
        }
        // SAFETY: a barrier has no memory-safety preconditions.
        unsafe { asm!("dsb ish", options(nostack, preserves_flags)) };
        // CTR_EL0.DIC: instruction cache invalidation is not required.
        if ctr & (1 << 29) == 0 {
            let line = 4usize << (ctr & 0xf);
            let mut address = begin & !(line - 1);
            while address < end {
                // SAFETY: as for `dc cvau`; invalidating instruction cache lines
                // only forces a refetch.
                unsafe { asm!("ic ivau, {}", in(reg) address, options(nostack, preserves_flags)) };
                address += line;
            }
            // SAFETY: as above.
            unsafe { asm!("dsb ish", options(nostack, preserves_flags)) };
        }
        // SAFETY: as above.
        unsafe { asm!("isb", options(nostack, preserves_flags)) };
        sync_other_cores();
    }

    /// `membarrier` commands (linux/membarrier.h); not all libc versions name them.
    const MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: libc::c_long = 1 << 5;
    const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: libc::c_long = 1 << 6;

    /// Runs a context-synchronizing event on every core running this process, so no
    /// core executes stale instructions prefetched from an address reused for new
    /// code. Best effort: kernels before 4.16 lack the command, and there the
    /// synchronization that hands the code to another thread (a lock, a syscall)
    /// is what serializes it in practice.
    fn sync_other_cores() {
        static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let registered = *REGISTERED.get_or_init(|| {
            // SAFETY: membarrier registration has no memory-safety preconditions.
            unsafe {
                libc::syscall(
                    libc::SYS_membarrier,
                    MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
                    0,
                ) == 0
            }
        });
        if registered {
            // SAFETY: as above.
            unsafe {
                libc::syscall(
                    libc::SYS_membarrier,
                    MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE,
                    0,
                )
            };
        }
    }
}

/// x86-64 keeps instruction fetch coherent with data writes (self-modifying code
/// detection), and the `mprotect` call that made the code executable serializes
/// this core; other cores synchronize when the code's address reaches them.
#[cfg(not(target_arch = "aarch64"))]
mod icache {
    pub(super) fn flush(_start: *const u8, _len: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_sees_the_final_address_and_the_code_is_read_only() {
        let mut seen = 0;
        let code = CodeMemory::new(&[1, 2, 3, 4], |text| {
            seen = text.as_ptr() as usize;
            text[0] = 9;
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, code.base());
        assert_eq!(code.text(), &[9, 2, 3, 4]);
        assert_eq!(code.len(), 4);
        assert!(code.contains(code.base() + 3));
        assert!(!code.contains(code.base() + 4));
        assert!(!code.contains(code.base().wrapping_sub(1)));
    }

    #[test]
    fn a_failing_patch_is_reported() {
        let error = CodeMemory::new(&[0; 8], |_| Err("bad relocation".into())).unwrap_err();
        assert_eq!(error, "bad relocation");
    }

    #[test]
    fn empty_code_is_allowed() {
        let code = CodeMemory::new(&[], |_| Ok(())).unwrap();
        assert!(code.is_empty());
        assert!(!code.contains(code.base()));
    }

    #[test]
    fn arena_pieces_are_separate_pages_of_one_mapping() {
        let arena = CodeArena::new();
        let pieces: Vec<CodeMemory> = (0..64u8)
            .map(|i| {
                arena
                    .allocate(&[i; 100], |text| {
                        text[0] = i.wrapping_add(1);
                        Ok(())
                    })
                    .unwrap()
            })
            .collect();
        for (i, piece) in pieces.iter().enumerate() {
            assert_eq!(piece.len(), 100);
            assert_eq!(piece.text()[0], i as u8 + 1);
            assert!(piece.text()[1..].iter().all(|b| *b == i as u8));
            assert_eq!(piece.base() % page_size(), 0);
        }
        let first = pieces[0].base();
        let last = pieces[63].base();
        assert_eq!(
            last - first,
            63 * page_size(),
            "consecutive pages of a chunk"
        );
        // A piece bigger than a chunk gets a chunk of its own.
        let big = arena
            .allocate(&vec![7; CHUNK_SIZE + 1], |_| Ok(()))
            .unwrap();
        assert_eq!(big.len(), CHUNK_SIZE + 1);
        drop(pieces);
        assert_eq!(big.text()[CHUNK_SIZE], 7);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn copied_code_runs() {
        // mov eax, 42; ret
        let code = CodeMemory::new(&[0xB8, 42, 0, 0, 0, 0xC3], |_| Ok(())).unwrap();
        // SAFETY: the bytes are a complete function with the C ABI returning a u32.
        let f: extern "C" fn() -> u32 = unsafe { std::mem::transmute(code.base()) };
        assert_eq!(f(), 42);
    }
}
