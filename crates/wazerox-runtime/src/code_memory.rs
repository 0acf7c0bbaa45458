//! Executable memory for compiled code: written once, then made read+execute.

use crate::mmap::{Mmap, page_size};

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
    /// final address, then makes the pages read+execute (never writable again).
    pub fn new(
        code: &[u8],
        patch: impl FnOnce(&mut [u8]) -> Result<(), String>,
    ) -> Result<CodeMemory, String> {
        let size = code.len().max(1).next_multiple_of(page_size());
        let mut mmap =
            Mmap::accessible(size).map_err(|e| format!("cannot map code memory: {e}"))?;
        // SAFETY: the mapping is `size >= code.len()` bytes of fresh read-write memory.
        let text = unsafe { std::slice::from_raw_parts_mut(mmap.as_mut_ptr(), code.len()) };
        text.copy_from_slice(code);
        patch(text)?;
        mmap.make_executable(0, size)
            .map_err(|e| format!("cannot make code executable: {e}"))?;
        flush_instruction_cache(mmap.as_ptr(), code.len());
        Ok(CodeMemory {
            mmap,
            len: code.len(),
        })
    }

    pub fn text(&self) -> &[u8] {
        // SAFETY: the first `len` bytes are mapped readable and never change.
        unsafe { std::slice::from_raw_parts(self.mmap.as_ptr(), self.len) }
    }

    pub fn base(&self) -> usize {
        self.mmap.as_ptr() as usize
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn contains(&self, pc: usize) -> bool {
        pc >= self.base() && pc < self.base() + self.len
    }
}

/// x86-64 keeps instruction caches coherent with data writes; AArch64 does not, so
/// freshly written code must be flushed before it runs.
#[cfg(target_arch = "aarch64")]
fn flush_instruction_cache(start: *const u8, len: usize) {
    unsafe extern "C" {
        // Provided by compiler-builtins/libgcc on every AArch64 Linux target.
        fn __clear_cache(start: *mut libc::c_void, end: *mut libc::c_void);
    }
    // SAFETY: the range is our own freshly written code mapping.
    unsafe { __clear_cache(start as *mut _, start.add(len) as *mut _) };
}

#[cfg(not(target_arch = "aarch64"))]
fn flush_instruction_cache(_start: *const u8, _len: usize) {}
