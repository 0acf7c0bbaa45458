//! Which pages of a private mapping a process has written, from the kernel's
//! page map (`/proc/self/pagemap`), so that a pooled memory is reset by dropping
//! only those.
//!
//! Resetting a released pooled memory with one `madvise(MADV_DONTNEED)` over its
//! whole accessible range also drops the pages it only *read*: the pages of its
//! copy-on-write image that a read fault mapped (the kernel maps up to 16 at a
//! time, "fault-around") and the shared zero page. The next instance then faults
//! them in again, and unmapping and remapping file pages (reverse map and memory
//! cgroup accounting, TLB flush) was most of a small plugin request's time.
//! Pages still mapped from the image file, or never touched, already hold what a
//! fresh instance must see; only pages written since (now private anonymous
//! copies, present or swapped out) need dropping.
//!
//! Decisions:
//! - The page map is read, not written, and only for ranges up to
//!   [`MAX_SCANNED_PAGES`]: beyond that reading 8 bytes per page would cost more
//!   than `madvise` walking only the populated page tables. Where the page map
//!   cannot be read (no `/proc`), callers fall back to the whole range.
//! - A page counts as written when it is swapped out, or present and not a file
//!   page. The shared zero page (read, never written) is reported present and not
//!   a file page, so it is dropped too: wasted work, never wrong.
//! - The page map file is opened once per process; a process forked after
//!   that opens its own for each scan (the inherited file describes the
//!   parent's pages, and trusting it could leave a child's writes in place).
//! - One span from the first to the last written page is returned, not a list:
//!   one `madvise` call, and the clean pages between are dropped needlessly but
//!   harmlessly.

use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;

/// The largest range (in pages) whose page map is read; 16 MiB of 4 KiB pages.
pub const MAX_SCANNED_PAGES: usize = 4096;

/// Entries read per `pread`.
const CHUNK: usize = 512;

const PRESENT: u64 = 1 << 63;
const SWAPPED: u64 = 1 << 62;
const FILE_OR_SHARED: u64 = 1 << 61;

/// This process's page map, opened once. `/proc/self` is resolved when the file
/// is opened, so a process forked after that (a pre-forking server that built its
/// engine first) would read its parent's pages: it opens its own for each scan.
fn with_pagemap<R>(scan: impl FnOnce(&File) -> io::Result<R>) -> io::Result<R> {
    fn open() -> io::Result<File> {
        File::open("/proc/self/pagemap")
    }
    static PAGEMAP: OnceLock<(u32, Option<File>)> = OnceLock::new();
    let (opener, file) = PAGEMAP.get_or_init(|| (std::process::id(), open().ok()));
    match file {
        Some(file) if *opener == std::process::id() => scan(file),
        _ => scan(&open()?),
    }
}

/// The span `(first, end)` (byte offsets from `start`, page-aligned) covering
/// every page of `start..start + len` written since it was last dropped;
/// `Ok(None)` if none was. `start` and `len` are page-aligned and
/// `len / page_size <= MAX_SCANNED_PAGES`. An error means the page map could not
/// be read: the caller must assume everything was written.
pub fn written_span(
    start: usize,
    len: usize,
    page_size: usize,
) -> io::Result<Option<(usize, usize)>> {
    let pages = len / page_size;
    if pages > MAX_SCANNED_PAGES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "range too large to scan",
        ));
    }
    with_pagemap(|file| {
        let first_page = start / page_size;
        let mut span: Option<(usize, usize)> = None;
        let mut buffer = [MaybeUninit::<u64>::uninit(); CHUNK];
        let mut done = 0;
        while done < pages {
            let count = (pages - done).min(CHUNK);
            let bytes = count * 8;
            // SAFETY: `buffer` has room for CHUNK ≥ count entries of 8 bytes, and
            // pread writes at most `bytes` into it.
            let read = unsafe {
                libc::pread(
                    file.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    bytes,
                    ((first_page + done) * 8) as libc::off_t,
                )
            };
            if read != bytes as isize {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: the first `count` entries were just written by the kernel.
            let entries =
                unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u64>(), count) };
            // Branch-free so that the scan of a clean range (the common case)
            // vectorizes: non-zero iff swapped, or present (bit 63) without the
            // file bit (bit 61, shifted onto 63).
            let written_bits = |entry: &u64| {
                (entry & SWAPPED) | (entry & !((entry & FILE_OR_SHARED) << 2) & PRESENT)
            };
            if entries
                .iter()
                .fold(0, |any, entry| any | written_bits(entry))
                != 0
            {
                let is_written = |entry: &u64| written_bits(entry) != 0;
                let first = entries.iter().position(is_written).unwrap_or(0);
                let last = entries.iter().rposition(is_written).unwrap_or(first);
                let (first, end) = ((done + first) * page_size, (done + last + 1) * page_size);
                span = Some(span.map_or((first, end), |(earlier, _)| (earlier, end)));
            }
            done += count;
        }
        Ok(span)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmap::{Mmap, page_size};

    #[test]
    fn only_written_pages_are_reported() {
        let page = page_size();
        let mut m = Mmap::accessible(8 * page).unwrap();
        let base = m.as_mut_ptr() as usize;
        assert_eq!(written_span(base, 8 * page, page).unwrap(), None);
        // SAFETY: both offsets are inside the 8 accessible pages just mapped.
        unsafe {
            m.as_mut_ptr().add(2 * page + 5).write(1);
            m.as_mut_ptr().add(5 * page).write(1);
        }
        assert_eq!(
            written_span(base, 8 * page, page).unwrap(),
            Some((2 * page, 6 * page))
        );
        m.decommit(0, 8 * page).unwrap();
        assert_eq!(written_span(base, 8 * page, page).unwrap(), None);
    }
}
