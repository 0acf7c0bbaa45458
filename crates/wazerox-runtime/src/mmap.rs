//! Anonymous memory mappings with page-granular protection changes.
//!
//! Linear memories reserve address space with `PROT_NONE` and make a prefix
//! accessible as they grow; code memory is written, then made read+execute.

use std::io;
use std::sync::OnceLock;

/// The system page size.
pub fn page_size() -> usize {
    static PAGE_SIZE: OnceLock<usize> = OnceLock::new();
    *PAGE_SIZE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size).unwrap_or(4096)
    })
}

/// An owned anonymous mapping, unmapped on drop.
#[derive(Debug)]
pub struct Mmap {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; access to its bytes is
// governed by the owners' borrows (`&`/`&mut`) like any heap allocation.
unsafe impl Send for Mmap {}
// SAFETY: as above; shared references only read.
unsafe impl Sync for Mmap {}

impl Mmap {
    fn map(len: usize, prot: libc::c_int) -> io::Result<Mmap> {
        if len == 0 {
            return Ok(Mmap {
                ptr: std::ptr::NonNull::dangling().as_ptr(),
                len: 0,
            });
        }
        // SAFETY: an anonymous private mapping at an address of the kernel's choice
        // touches no existing memory.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap {
            ptr: ptr.cast(),
            len,
        })
    }

    /// Reserves `len` bytes of address space, inaccessible until made accessible.
    pub fn reserve(len: usize) -> io::Result<Mmap> {
        Self::map(len, libc::PROT_NONE)
    }

    /// Maps `len` bytes of zeroed, read-write memory.
    pub fn accessible(len: usize) -> io::Result<Mmap> {
        Self::map(len, libc::PROT_READ | libc::PROT_WRITE)
    }

    fn protect(&self, start: usize, len: usize, prot: libc::c_int) -> io::Result<()> {
        let page = page_size();
        assert!(
            start.is_multiple_of(page),
            "protection changes start on a page boundary"
        );
        assert!(
            start.checked_add(len).is_some_and(|end| end <= self.len),
            "range within the mapping"
        );
        if len == 0 {
            return Ok(());
        }
        // SAFETY: the range lies within our own mapping (checked above).
        let r = unsafe { libc::mprotect(self.ptr.add(start).cast(), len, prot) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Makes `start..start+len` readable and writable. Takes `&self`: protection
    /// changes do not move or free memory, so concurrent readers stay valid
    /// (shared memories grow while other threads run).
    pub fn make_accessible(&self, start: usize, len: usize) -> io::Result<()> {
        self.protect(start, len, libc::PROT_READ | libc::PROT_WRITE)
    }

    /// Makes `start..start+len` readable and executable (and no longer writable).
    pub fn make_executable(&mut self, start: usize, len: usize) -> io::Result<()> {
        self.protect(start, len, libc::PROT_READ | libc::PROT_EXEC)
    }

    /// Makes `start..start+len` inaccessible.
    pub fn make_inaccessible(&mut self, start: usize, len: usize) -> io::Result<()> {
        self.protect(start, len, libc::PROT_NONE)
    }

    /// Gives the pages of `start..start+len` back to the kernel; they read as zero
    /// afterwards and keep their protection.
    pub fn decommit(&mut self, start: usize, len: usize) -> io::Result<()> {
        assert!(
            start.checked_add(len).is_some_and(|end| end <= self.len),
            "range within the mapping"
        );
        if len == 0 {
            return Ok(());
        }
        // SAFETY: the range lies within our own mapping.
        let r = unsafe { libc::madvise(self.ptr.add(start).cast(), len, libc::MADV_DONTNEED) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: we own the mapping and nothing refers to it any more.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_then_make_accessible() {
        let page = page_size();
        let mut m = Mmap::reserve(16 * page).unwrap();
        m.make_accessible(0, 2 * page).unwrap();
        // SAFETY: the first two pages were just made read-write.
        unsafe {
            m.as_mut_ptr().write(7);
            assert_eq!(m.as_ptr().add(2 * page - 1).read(), 0);
        }
        m.decommit(0, page).unwrap();
        // SAFETY: still accessible; decommitted pages read as zero.
        unsafe { assert_eq!(m.as_ptr().read(), 0) };
    }
}
