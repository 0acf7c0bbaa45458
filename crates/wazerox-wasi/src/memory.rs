//! Guest memory seen by a WASI call: every pointer is bounds-checked and an access
//! out of range answers `FAULT` (never a host panic, never a trap).
//!
//! The program's memory is either an ordinary `Memory` (borrowed as a slice for
//! the call, the store being borrowed exclusively) or a `SharedMemory` (a
//! wasi-threads program), whose bytes other threads write at any time: those are
//! never borrowed, only copied in and out ([`SharedMemory::read`]/`write`). Hence
//! `slice` returns a copy for a shared memory, and reads into guest memory go
//! through [`GuestMemory::fill`], which copies back exactly the bytes produced.

use crate::errno::{self, Errno};
use std::borrow::Cow;
use wazerox::{AsContext, AsContextMut, Caller, Extern, Memory, SharedMemory};

type Result<T, E = Errno> = std::result::Result<T, E>;

/// The memory a module exports as `memory`, shared or not.
pub(crate) enum ExportedMemory {
    Unshared(Memory),
    Shared(SharedMemory),
}

impl ExportedMemory {
    /// The caller's export `memory`, if it is a memory.
    pub fn of<T>(caller: &mut Caller<'_, T>) -> Option<ExportedMemory> {
        match caller.get_export("memory")? {
            Extern::Memory(m) => Some(ExportedMemory::Unshared(m)),
            Extern::SharedMemory(m) => Some(ExportedMemory::Shared(m)),
            _ => None,
        }
    }

    /// A bounds-checked view for one WASI call.
    pub fn guest<'a, T: 'a>(&self, caller: &'a mut Caller<'_, T>) -> GuestMemory<'a> {
        match self {
            ExportedMemory::Unshared(m) => GuestMemory::Unshared(m.data_mut(caller)),
            ExportedMemory::Shared(m) => GuestMemory::Shared(m.clone()),
        }
    }

    pub fn data_size(&self, store: impl AsContext) -> usize {
        match self {
            ExportedMemory::Unshared(m) => m.data_size(store),
            ExportedMemory::Shared(m) => m.data_size(),
        }
    }

    pub fn read(
        &self,
        store: impl AsContext,
        offset: usize,
        buffer: &mut [u8],
    ) -> Result<(), wazerox::Error> {
        match self {
            ExportedMemory::Unshared(m) => m.read(store, offset, buffer),
            ExportedMemory::Shared(m) => m.read(offset, buffer),
        }
    }

    pub fn write(
        &self,
        store: impl AsContextMut,
        offset: usize,
        buffer: &[u8],
    ) -> Result<(), wazerox::Error> {
        match self {
            ExportedMemory::Unshared(m) => m.write(store, offset, buffer),
            ExportedMemory::Shared(m) => m.write(offset, buffer),
        }
    }
}

pub(crate) enum GuestMemory<'a> {
    Unshared(&'a mut [u8]),
    Shared(SharedMemory),
}

impl GuestMemory<'_> {
    fn len(&self) -> usize {
        match self {
            GuestMemory::Unshared(bytes) => bytes.len(),
            GuestMemory::Shared(m) => m.data_size(),
        }
    }

    fn range(&self, ptr: i32, len: u32) -> Result<std::ops::Range<usize>> {
        let start = ptr as u32 as usize;
        let end = start.checked_add(len as usize).ok_or(errno::FAULT)?;
        if end > self.len() {
            return Err(errno::FAULT);
        }
        Ok(start..end)
    }

    /// The bytes at `ptr` (a copy, for a shared memory).
    pub fn slice(&self, ptr: i32, len: u32) -> Result<Cow<'_, [u8]>> {
        let range = self.range(ptr, len)?;
        match self {
            GuestMemory::Unshared(bytes) => Ok(Cow::Borrowed(&bytes[range])),
            GuestMemory::Shared(m) => {
                let mut out = vec![0; range.len()];
                m.read(range.start, &mut out).map_err(|_| errno::FAULT)?;
                Ok(Cow::Owned(out))
            }
        }
    }

    /// Lets `produce` write into the `len` bytes at `ptr` and returns how many it
    /// produced; only those are stored (for a shared memory, `produce` writes a
    /// zeroed buffer that is then copied in).
    pub fn fill<E: From<Errno>>(
        &mut self,
        ptr: i32,
        len: u32,
        produce: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let range = self.range(ptr, len)?;
        match self {
            GuestMemory::Unshared(bytes) => produce(&mut bytes[range]),
            GuestMemory::Shared(m) => {
                let mut buffer = vec![0; range.len()];
                let n = produce(&mut buffer)?.min(buffer.len());
                m.write(range.start, &buffer[..n])
                    .map_err(|_| errno::FAULT)?;
                Ok(n)
            }
        }
    }

    pub fn read<const N: usize>(&self, ptr: i32) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.slice(ptr, N as u32)?);
        Ok(out)
    }
    pub fn u16(&self, ptr: i32) -> Result<u16> {
        Ok(u16::from_le_bytes(self.read(ptr)?))
    }
    pub fn u32(&self, ptr: i32) -> Result<u32> {
        Ok(u32::from_le_bytes(self.read(ptr)?))
    }
    pub fn u64(&self, ptr: i32) -> Result<u64> {
        Ok(u64::from_le_bytes(self.read(ptr)?))
    }
    pub fn write(&mut self, ptr: i32, bytes: &[u8]) -> Result<()> {
        let range = self.range(ptr, bytes.len() as u32)?;
        match self {
            GuestMemory::Unshared(memory) => memory[range].copy_from_slice(bytes),
            GuestMemory::Shared(m) => m.write(range.start, bytes).map_err(|_| errno::FAULT)?,
        }
        Ok(())
    }
    pub fn put_u32(&mut self, ptr: i32, v: u32) -> Result<()> {
        self.write(ptr, &v.to_le_bytes())
    }
    pub fn put_u64(&mut self, ptr: i32, v: u64) -> Result<()> {
        self.write(ptr, &v.to_le_bytes())
    }
    /// A path or symlink target: `NAMETOOLONG` beyond [`MAX_PATH_BYTES`], checked
    /// before anything is copied; invalid UTF-8 is `ILSEQ`.
    pub fn path(&self, ptr: i32, len: i32) -> Result<String> {
        if len as u32 as usize > MAX_PATH_BYTES {
            return Err(errno::NAMETOOLONG);
        }
        String::from_utf8(self.slice(ptr, len as u32)?.into_owned()).map_err(|_| errno::ILSEQ)
    }
    /// An `iovec`/`ciovec` array of `count` entries at `ptr`, the array and every
    /// buffer checked in range now (so a faulting call has no side effect). The
    /// entries stay in guest memory and are read one at a time: host memory does
    /// not grow with their number.
    pub fn iovecs(&self, ptr: i32, count: i32) -> Result<IoVecs> {
        let count = count as u32;
        self.range(ptr, count.checked_mul(8).ok_or(errno::FAULT)?)?;
        let iovs = IoVecs {
            ptr,
            count,
            next: 0,
            budget: MAX_IO_BYTES,
        };
        for i in 0..count {
            let (buf, len) = iovs.entry(self, i)?;
            self.range(buf, len)?;
        }
        Ok(iovs)
    }
}

/// Longest path (or symlink target) a guest may pass, in bytes, like Linux's
/// `PATH_MAX`.
pub(crate) const MAX_PATH_BYTES: usize = 4096;

/// Most bytes one `fd_read`/`fd_write`/`fd_pread`/`fd_pwrite`/`sock_*` call
/// transfers; longer requests are short reads and writes, as Linux caps a single
/// `read`/`write` (`MAX_RW_COUNT`). Keeps the `u32` byte count from wrapping.
pub(crate) const MAX_IO_BYTES: usize = 0x7fff_f000;

/// The `(buf, len)` pairs of a checked `iovec` array, taken in order by
/// [`IoVecs::next`]; lengths are cut so that the call's total stays within
/// [`MAX_IO_BYTES`].
pub(crate) struct IoVecs {
    ptr: i32,
    count: u32,
    next: u32,
    budget: usize,
}

impl IoVecs {
    fn entry(&self, mem: &GuestMemory<'_>, i: u32) -> Result<(i32, u32)> {
        let at = self.ptr.wrapping_add((i * 8) as i32);
        Ok((mem.u32(at)? as i32, mem.u32(at.wrapping_add(4))?))
    }

    /// The next buffer (read from guest memory now, and checked again: another
    /// thread may have changed a shared memory's array), or `None` after the last
    /// one or once the call's byte budget is spent.
    pub fn next(&mut self, mem: &GuestMemory<'_>) -> Result<Option<(i32, u32)>> {
        if self.next >= self.count || self.budget == 0 {
            return Ok(None);
        }
        let (buf, len) = self.entry(mem, self.next)?;
        self.next += 1;
        let len = len.min(self.budget.min(u32::MAX as usize) as u32);
        mem.range(buf, len)?;
        self.budget -= len as usize;
        Ok(Some((buf, len)))
    }
}
