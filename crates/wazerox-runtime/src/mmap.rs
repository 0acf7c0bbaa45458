//! Anonymous memory mappings with page-granular protection changes.
//!
//! Linear memories reserve address space with `PROT_NONE` and make a prefix
//! accessible as they grow; code memory is written, then made read+execute; the
//! alternate signal stacks are mappings with an inaccessible guard page.
//!
//! Decisions:
//! - A mapping's length is rounded up to whole pages, so `len()` is exactly what the
//!   kernel mapped and every page-aligned range inside it can change protection.
//! - Ranges passed to the protection calls must be page-aligned and inside the
//!   mapping; a violation is a caller bug and comes back as `InvalidInput` instead of
//!   silently affecting neighbouring pages (the kernel would round the range).
//! - `make_accessible` takes `&self`: a protection change never moves or frees memory,
//!   so readers holding pointers into the mapping stay valid. Shared memories grow
//!   while other threads run Wasm code against them.
//! - Only reservations use `MAP_NORESERVE`: they are address space, not memory. A
//!   read-write mapping is committed memory and should be accounted as such.

use std::io;
use std::sync::OnceLock;

/// The system page size, queried once.
pub fn page_size() -> usize {
    static PAGE_SIZE: OnceLock<usize> = OnceLock::new();
    *PAGE_SIZE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size)
            .ok()
            .filter(|s| *s > 0)
            .unwrap_or(4096)
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
// SAFETY: as above; the only `&self` method with an effect is a protection change,
// which the kernel serializes and which never invalidates pointers.
unsafe impl Sync for Mmap {}

fn invalid_input(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

impl Mmap {
    fn map(len: usize, prot: libc::c_int, flags: libc::c_int) -> io::Result<Mmap> {
        let len = len
            .checked_next_multiple_of(page_size())
            .ok_or_else(|| invalid_input("mapping length overflows"))?;
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
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags,
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

    /// Reserves `len` bytes (rounded up to pages) of address space, inaccessible
    /// until made accessible.
    pub fn reserve(len: usize) -> io::Result<Mmap> {
        Self::map(len, libc::PROT_NONE, libc::MAP_NORESERVE)
    }

    /// Maps `len` bytes (rounded up to pages) of zeroed, read-write memory.
    pub fn accessible(len: usize) -> io::Result<Mmap> {
        Self::map(len, libc::PROT_READ | libc::PROT_WRITE, 0)
    }

    /// Maps the first page of `file` readable and executable (private): how a
    /// process tells `perf` about its jitdump file (see `profiling.rs`).
    pub fn map_file_executable(file: &std::fs::File) -> io::Result<Mmap> {
        use std::os::fd::AsRawFd;
        let len = page_size();
        // SAFETY: a private mapping of an open file at an address of the kernel's
        // choice touches no existing memory; nothing writes through it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
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

    /// Checks that `start..start+len` is a page-aligned range inside the mapping.
    fn check_range(&self, start: usize, len: usize) -> io::Result<()> {
        let page = page_size();
        if !start.is_multiple_of(page) || !len.is_multiple_of(page) {
            return Err(invalid_input("range is not page-aligned"));
        }
        if start.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(invalid_input("range exceeds the mapping"));
        }
        Ok(())
    }

    fn protect(&self, start: usize, len: usize, prot: libc::c_int) -> io::Result<()> {
        self.check_range(start, len)?;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: the range lies within our own mapping (checked above); changing
        // its protection cannot affect memory owned by anyone else.
        let r = unsafe { libc::mprotect(self.ptr.add(start).cast(), len, prot) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Makes `start..start+len` readable and writable.
    pub fn make_accessible(&self, start: usize, len: usize) -> io::Result<()> {
        self.protect(start, len, libc::PROT_READ | libc::PROT_WRITE)
    }

    /// Makes `start..start+len` readable and executable (and no longer writable).
    pub fn make_executable(&mut self, start: usize, len: usize) -> io::Result<()> {
        self.protect(start, len, libc::PROT_READ | libc::PROT_EXEC)
    }

    /// Like [`Mmap::make_executable`], through a shared reference: for a range
    /// that only the caller writes (a fresh part of a shared code chunk, see
    /// `code_memory::CodeArena`).
    pub(crate) fn make_range_executable(&self, start: usize, len: usize) -> io::Result<()> {
        self.protect(start, len, libc::PROT_READ | libc::PROT_EXEC)
    }

    /// Makes `start..start+len` inaccessible.
    pub fn make_inaccessible(&mut self, start: usize, len: usize) -> io::Result<()> {
        self.protect(start, len, libc::PROT_NONE)
    }

    /// Replaces `start..start+len` with fresh inaccessible reserved address space,
    /// dropping whatever was mapped there (e.g. a file mapped over part of a
    /// reservation).
    pub fn replace_with_reservation(&mut self, start: usize, len: usize) -> io::Result<()> {
        self.check_range(start, len)?;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: MAP_FIXED over a range of our own mapping (checked above) replaces
        // only our pages.
        let r = unsafe {
            libc::mmap(
                self.ptr.add(start).cast(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if r == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Gives the pages of `start..start+len` back to the kernel; they read as zero
    /// afterwards and keep their protection.
    pub fn decommit(&mut self, start: usize, len: usize) -> io::Result<()> {
        self.check_range(start, len)?;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: the range lies within our own private anonymous mapping, for which
        // MADV_DONTNEED means "refill with zero pages on next touch".
        let r = unsafe { libc::madvise(self.ptr.add(start).cast(), len, libc::MADV_DONTNEED) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Like [`Mmap::decommit`], but drops only the pages written since they were
    /// last dropped (see [`crate::pagemap`]): pages still mapped from a private
    /// file mapping or never touched are left as they are. Falls back to the
    /// whole range when the kernel's page map cannot tell.
    pub fn decommit_written(&mut self, start: usize, len: usize) -> io::Result<()> {
        self.check_range(start, len)?;
        let address = self.ptr as usize + start;
        match crate::pagemap::written_span(address, len, page_size()) {
            Ok(None) => Ok(()),
            Ok(Some((first, end))) => self.decommit(start + first, end - first),
            Err(_) => self.decommit(start, len),
        }
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr
    }

    /// Mapped bytes (a whole number of pages).
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
            // SAFETY: we own the mapping, and whoever handed out pointers into it
            // (memories, code) drops them before or with us.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_is_a_power_of_two() {
        assert!(page_size().is_power_of_two());
        assert!(page_size() >= 4096);
    }

    #[test]
    fn reserve_then_make_accessible_then_decommit() {
        let page = page_size();
        let mut m = Mmap::reserve(16 * page).unwrap();
        assert_eq!(m.len(), 16 * page);
        m.make_accessible(0, 2 * page).unwrap();
        // SAFETY: the first two pages were just made read-write.
        unsafe {
            m.as_mut_ptr().write(7);
            assert_eq!(m.as_ptr().add(2 * page - 1).read(), 0);
        }
        m.decommit(0, page).unwrap();
        // SAFETY: still accessible; decommitted pages read as zero.
        unsafe { assert_eq!(m.as_ptr().read(), 0) };
        m.make_inaccessible(0, 2 * page).unwrap();
    }

    #[test]
    fn lengths_round_up_to_pages() {
        let m = Mmap::accessible(1).unwrap();
        assert_eq!(m.len(), page_size());
        let empty = Mmap::reserve(0).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn misaligned_or_out_of_range_ranges_are_rejected() {
        let page = page_size();
        let mut m = Mmap::reserve(4 * page).unwrap();
        let kind = |r: io::Result<()>| r.unwrap_err().kind();
        assert_eq!(
            kind(m.make_accessible(1, page)),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(kind(m.make_accessible(0, 1)), io::ErrorKind::InvalidInput);
        assert_eq!(
            kind(m.make_executable(page, 4 * page)),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(m.decommit(usize::MAX - page + 1, page)),
            io::ErrorKind::InvalidInput
        );
        m.make_accessible(4 * page, 0).unwrap();
    }

    #[test]
    fn accessible_memory_is_zeroed_and_writable() {
        let page = page_size();
        let mut m = Mmap::accessible(3 * page).unwrap();
        // SAFETY: the whole mapping is read-write and owned by `m`.
        let bytes = unsafe { std::slice::from_raw_parts_mut(m.as_mut_ptr(), m.len()) };
        assert!(bytes.iter().all(|b| *b == 0));
        bytes.fill(0xAB);
        assert_eq!(bytes[3 * page - 1], 0xAB);
    }
}
