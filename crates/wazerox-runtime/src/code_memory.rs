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

use crate::mmap::{Mmap, page_size};

/// An immutable, executable copy of compiled code.
pub struct CodeMemory {
    mmap: Mmap,
    len: usize,
}

impl std::fmt::Debug for CodeMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CodeMemory({:#x}, {} bytes)", self.base(), self.len)
    }
}

impl CodeMemory {
    /// Copies `code` into fresh pages, lets `patch` apply relocations that need the
    /// final address (it gets the code at that address, still writable), then makes
    /// the pages read+execute (never writable again).
    pub fn new(
        code: &[u8],
        patch: impl FnOnce(&mut [u8]) -> Result<(), String>,
    ) -> Result<CodeMemory, String> {
        let size = code
            .len()
            .max(1)
            .checked_next_multiple_of(page_size())
            .ok_or("code too large")?;
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
            mmap,
            len: code.len(),
        })
    }

    /// The code bytes (readable, not writable).
    pub fn text(&self) -> &[u8] {
        // SAFETY: the first `len` bytes are mapped readable and never change.
        unsafe { std::slice::from_raw_parts(self.mmap.as_ptr(), self.len) }
    }

    /// Address of the first code byte.
    pub fn base(&self) -> usize {
        self.mmap.as_ptr() as usize
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
