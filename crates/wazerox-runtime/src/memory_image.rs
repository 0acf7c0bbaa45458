//! Copy-on-write images of a module's initial memory contents.
//!
//! Instead of copying every active data segment into each new memory, a module lays
//! its segments out once into a page-aligned image; each instantiation then maps the
//! image `MAP_PRIVATE | MAP_FIXED` over the affected pages of the memory's
//! reservation. Pages the instance never writes stay shared with the image (and are
//! never even faulted in if never read); the first write to a page gives the
//! instance its own copy. A megabyte of data then costs one `mmap` instead of a
//! megabyte of copying and page faults.
//!
//! Decisions:
//! - A memory gets an image only if *every* active segment targeting it has a
//!   constant offset (no `global.get`, whose value depends on imports) and lies
//!   within the memory's initial size. Then no segment can trap, so applying them
//!   all before instantiation proceeds is indistinguishable from applying them in
//!   order. Otherwise the memory keeps the per-segment copy path with the spec's
//!   trap semantics (earlier segments stay applied, a failing one traps).
//! - Only non-shared, defined, 32-bit memories get images. A shared memory is
//!   created once and lives on across threads, so instantiation speed matters less,
//!   and keeping its pages plain anonymous memory keeps atomics and waits simple.
//! - The image is backed by a sealed memfd. Without memfd (old kernels, seccomp) or
//!   for images of a few pages, where one copy is cheaper than the `mmap` and the
//!   later copy-on-write faults, the image is kept as bytes and copied instead.
//! - The image only spans the pages between the first and last byte of data, so a
//!   module whose data starts after a megabyte of stack maps nothing there.
//! - The image must be dense: its span may exceed [`SPARSE_IMAGE_SLACK`] only up to
//!   [`SPARSE_IMAGE_FACTOR`] times the bytes of data. Otherwise a 71-byte module
//!   with one byte at 0 and one at 1 GiB made us allocate and write a 1 GiB memfd
//!   (2.9 s, issue 21); such a memory takes the copy path, which writes only the
//!   segments' bytes. The bound is checked before anything is allocated, so an
//!   image never costs more than a small multiple of the module's own size.

use crate::mmap::page_size;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use wazerox_environ::{ConstExpr, ConstOp, DataMode, MemoryIndex, ModuleInfo};

/// Images of at most this many bytes are copied rather than mapped.
pub const COPY_THRESHOLD: usize = 16 * 1024;

/// An image may span this many bytes whatever its data: a C program's data with
/// a stack-sized gap between segments still maps, and a hostile module's image
/// costs at most this much (plus twice its own data).
pub const SPARSE_IMAGE_SLACK: usize = 16 << 20;

/// Beyond [`SPARSE_IMAGE_SLACK`], an image may span at most this many times the
/// bytes of its segments.
pub const SPARSE_IMAGE_FACTOR: usize = 2;

/// Where an image's bytes come from when it is installed.
#[derive(Debug)]
enum ImageSource {
    /// A sealed memfd of exactly `len` bytes, mapped privately.
    Memfd(OwnedFd),
    /// The bytes themselves, copied.
    Bytes(Box<[u8]>),
}

/// The initial contents of one memory: `len` bytes at `offset`, both page-aligned.
#[derive(Debug)]
pub struct MemoryImage {
    offset: usize,
    len: usize,
    source: ImageSource,
}

impl MemoryImage {
    /// An image of `bytes` at `offset` (both page-aligned); mapped from a memfd
    /// when `bytes` is large enough for that to pay and the kernel offers memfds.
    pub fn new(offset: usize, bytes: Vec<u8>) -> MemoryImage {
        debug_assert!(offset.is_multiple_of(page_size()));
        debug_assert!(bytes.len().is_multiple_of(page_size()));
        let len = bytes.len();
        let source = if len > COPY_THRESHOLD {
            match memfd_with(&bytes) {
                Ok(fd) => ImageSource::Memfd(fd),
                Err(_) => ImageSource::Bytes(bytes.into_boxed_slice()),
            }
        } else {
            ImageSource::Bytes(bytes.into_boxed_slice())
        };
        MemoryImage {
            offset,
            len,
            source,
        }
    }

    /// Offset in linear memory of the image's first byte.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes the image covers (a whole number of pages).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether installing maps the image (rather than copying it).
    pub fn is_mapped(&self) -> bool {
        matches!(self.source, ImageSource::Memfd(_))
    }

    /// Puts the image's contents at `base + offset`.
    ///
    /// # Safety
    /// `base + offset .. base + offset + len` is page-aligned, lies within one
    /// mapping owned by the caller (a memory reservation), is currently readable
    /// and writable, and nothing else holds references into it.
    pub(crate) unsafe fn install(&self, base: *mut u8) -> io::Result<()> {
        if self.len == 0 {
            return Ok(());
        }
        // SAFETY: in bounds per the contract.
        let at = unsafe { base.add(self.offset) };
        match &self.source {
            ImageSource::Memfd(fd) => {
                // SAFETY: replaces pages of the caller's own reservation (contract)
                // with a private mapping of our sealed file; MAP_FIXED never touches
                // memory outside the given range.
                let r = unsafe {
                    libc::mmap(
                        at.cast(),
                        self.len,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_FIXED,
                        fd.as_raw_fd(),
                        0,
                    )
                };
                if r == libc::MAP_FAILED {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            }
            ImageSource::Bytes(bytes) => {
                // SAFETY: the range is writable and unaliased (contract); the source
                // is our own allocation, so the two cannot overlap.
                unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), at, bytes.len()) };
                Ok(())
            }
        }
    }
}

/// A sealed memfd holding `bytes`.
fn memfd_with(bytes: &[u8]) -> io::Result<OwnedFd> {
    // SAFETY: the name is a NUL-terminated string; the flags are valid.
    let fd = unsafe {
        libc::memfd_create(
            c"wazerox-memory-image".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    // Sealed so that no one (not even a bug of ours) can change the contents under
    // the instances that map it.
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on our own descriptor.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(OwnedFd::from(file))
}

/// Evaluates a constant offset expression that does not depend on imports.
fn constant_offset(expr: &ConstExpr) -> Option<u32> {
    let mut stack: Vec<u32> = Vec::with_capacity(2);
    for op in &expr.ops {
        let value = match *op {
            ConstOp::I32Const(v) => v as u32,
            ConstOp::I32Add | ConstOp::I32Sub | ConstOp::I32Mul => {
                let b = stack.pop()?;
                let a = stack.pop()?;
                match op {
                    ConstOp::I32Add => a.wrapping_add(b),
                    ConstOp::I32Sub => a.wrapping_sub(b),
                    _ => a.wrapping_mul(b),
                }
            }
            _ => return None,
        };
        stack.push(value);
    }
    match stack.as_slice() {
        [offset] => Some(*offset),
        _ => None,
    }
}

/// The image of each *defined* memory of `module` (`None` where the memory must be
/// initialised segment by segment, or has no data).
pub fn memory_images(module: &ModuleInfo) -> Vec<Option<Arc<MemoryImage>>> {
    let imported = module.num_imported_memories as usize;
    (imported..module.memories.len())
        .map(|i| image_of(module, MemoryIndex(i as u32)).map(Arc::new))
        .collect()
}

fn image_of(module: &ModuleInfo, memory: MemoryIndex) -> Option<MemoryImage> {
    let ty = &module.memories[memory.index()];
    // One-byte pages end inside a host page: an image cannot map them.
    if ty.shared || ty.memory64 || ty.page_size_log2 != wazerox_environ::DEFAULT_PAGE_SIZE_LOG2 {
        return None;
    }
    let initial = ty.minimum.checked_mul(crate::memory::WASM_PAGE_SIZE)?;
    let mut segments = Vec::new();
    for segment in &module.data {
        let DataMode::Active {
            memory: target,
            offset,
        } = &segment.mode
        else {
            continue;
        };
        if *target != memory {
            continue;
        }
        let start = u64::from(constant_offset(offset)?);
        let end = start.checked_add(segment.bytes.len() as u64)?;
        if end > initial {
            return None;
        }
        if end > start {
            segments.push((start as usize, &segment.bytes));
        }
    }
    let page = page_size();
    let first = segments.iter().map(|(s, _)| *s).min()?;
    let last = segments.iter().map(|(s, b)| s + b.len()).max()?;
    let offset = first - first % page;
    let end = last.next_multiple_of(page);
    let data_bytes: usize = segments.iter().map(|(_, b)| b.len()).sum();
    let span = end - offset;
    if span > SPARSE_IMAGE_SLACK && span / SPARSE_IMAGE_FACTOR > data_bytes {
        return None;
    }
    let mut bytes = vec![0u8; end - offset];
    // In declaration order: a later segment overwrites an earlier one, as applying
    // them one by one would.
    for (start, data) in segments {
        bytes[start - offset..start - offset + data.len()].copy_from_slice(data);
    }
    Some(MemoryImage::new(offset, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wazerox_environ::{DataSegment, MemoryType};

    fn module(minimum: u64, segments: &[(ConstExpr, &[u8])]) -> ModuleInfo {
        ModuleInfo {
            memories: vec![MemoryType {
                minimum,
                maximum: None,
                shared: false,
                memory64: false,
                page_size_log2: 16,
            }],
            data: segments
                .iter()
                .map(|(offset, bytes)| DataSegment {
                    mode: DataMode::Active {
                        memory: MemoryIndex(0),
                        offset: offset.clone(),
                    },
                    bytes: bytes.to_vec(),
                })
                .collect(),
            ..ModuleInfo::default()
        }
    }

    fn i32_const(v: i32) -> ConstExpr {
        ConstExpr {
            ops: vec![ConstOp::I32Const(v)],
        }
    }

    #[test]
    fn segments_are_laid_out_in_order_within_their_pages() {
        let page = page_size();
        let offset = 3 * page + 5;
        let m = module(
            1,
            &[
                (i32_const(offset as i32), b"hello"),
                (i32_const(offset as i32 + 1), b"EL"),
            ],
        );
        let images = memory_images(&m);
        let image = images[0].as_ref().unwrap();
        assert_eq!((image.offset(), image.len()), (3 * page, page));
        let mut memory = vec![0u8; 4 * page];
        // SAFETY: the buffer covers the image's range and is ours.
        unsafe { image.install(memory.as_mut_ptr()).unwrap() };
        assert_eq!(&memory[offset..offset + 5], b"hELlo");
        assert!(memory[..offset].iter().all(|b| *b == 0));
    }

    #[test]
    fn segments_that_could_trap_or_depend_on_imports_get_no_image() {
        let past_end = module(1, &[(i32_const(65535), b"ab")]);
        assert!(memory_images(&past_end)[0].is_none());
        let imported_offset = module(
            1,
            &[(
                ConstExpr {
                    ops: vec![ConstOp::GlobalGet(wazerox_environ::GlobalIndex(0))],
                },
                b"ab",
            )],
        );
        assert!(memory_images(&imported_offset)[0].is_none());
        assert!(memory_images(&module(1, &[]))[0].is_none());
    }

    /// Issue 21 item 7: one byte at 0 and one at 1 GiB made a 1 GiB image.
    #[test]
    fn sparse_segments_get_no_image() {
        let m = module(
            16384,
            &[(i32_const(0), b"a"), (i32_const(1073741800), b"b")],
        );
        assert!(memory_images(&m)[0].is_none());
        let slack = SPARSE_IMAGE_SLACK as i32;
        let pages = |bytes: i32| (bytes / 65536) as u64;
        // Sparse but within the slack: still an image.
        let near = module(
            pages(slack),
            &[(i32_const(0), b"a"), (i32_const(slack - 1), b"b")],
        );
        let image = memory_images(&near).pop().unwrap().unwrap();
        assert_eq!((image.offset(), image.len()), (0, SPARSE_IMAGE_SLACK));
        // Beyond the slack, half of the span is data: dense enough.
        let half = vec![1u8; SPARSE_IMAGE_SLACK / 2];
        let at_end = |span: i32| i32_const(span - slack / 2);
        let dense = module(
            pages(2 * slack),
            &[(i32_const(0), &half), (at_end(2 * slack), &half)],
        );
        let image = memory_images(&dense).pop().unwrap().unwrap();
        assert_eq!((image.offset(), image.len()), (0, 2 * SPARSE_IMAGE_SLACK));
        // The same data spread twice as far is too sparse.
        let spread = module(
            pages(4 * slack),
            &[(i32_const(0), &half), (at_end(4 * slack), &half)],
        );
        assert!(memory_images(&spread)[0].is_none());
    }

    #[test]
    fn large_images_are_mapped_and_small_ones_copied() {
        let big = vec![7u8; 4 * COPY_THRESHOLD];
        let m = module(2, &[(i32_const(0), &big), (i32_const(70000), b"x")]);
        let image = memory_images(&m).pop().unwrap().unwrap();
        assert!(image.is_mapped(), "memfd is available on the test machines");
        let small = module(1, &[(i32_const(8), b"x")]);
        assert!(!memory_images(&small)[0].as_ref().unwrap().is_mapped());
    }
}
