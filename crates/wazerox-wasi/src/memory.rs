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
    /// A UTF-8 string (paths, symlink targets); invalid UTF-8 is `ILSEQ`.
    pub fn string(&self, ptr: i32, len: i32) -> Result<String> {
        String::from_utf8(self.slice(ptr, len as u32)?.into_owned()).map_err(|_| errno::ILSEQ)
    }
    /// The `(buf, len)` pairs of an `iovec`/`ciovec` array, each checked in range.
    pub fn iovecs(&self, ptr: i32, count: i32) -> Result<Vec<(i32, u32)>> {
        let count = count as u32;
        self.range(ptr, count.checked_mul(8).ok_or(errno::FAULT)?)?;
        (0..count)
            .map(|i| {
                let at = ptr.wrapping_add((i * 8) as i32);
                let (buf, len) = (self.u32(at)? as i32, self.u32(at.wrapping_add(4))?);
                self.range(buf, len)?;
                Ok((buf, len))
            })
            .collect()
    }
    /// The bytes of a `ciovec` array, concatenated.
    pub fn gather(&self, iovs: &[(i32, u32)]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(iovs.iter().map(|&(_, len)| len as usize).sum());
        for &(buf, len) in iovs {
            out.extend_from_slice(&self.slice(buf, len)?);
        }
        Ok(out)
    }
    /// Spreads `data` over an `iovec` array, in order.
    pub fn scatter(&mut self, iovs: &[(i32, u32)], mut data: &[u8]) -> Result<()> {
        for &(buf, len) in iovs {
            if data.is_empty() {
                break;
            }
            let n = data.len().min(len as usize);
            self.write(buf, &data[..n])?;
            data = &data[n..];
        }
        Ok(())
    }
}
