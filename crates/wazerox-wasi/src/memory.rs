//! Guest memory seen by a WASI call: every pointer is bounds-checked and an access
//! out of range answers `FAULT` (never a host panic, never a trap).

use crate::errno::{self, Errno};

type Result<T, E = Errno> = std::result::Result<T, E>;

pub(crate) struct GuestMemory<'a>(pub &'a mut [u8]);

impl GuestMemory<'_> {
    pub fn slice(&self, ptr: i32, len: u32) -> Result<&[u8]> {
        let start = ptr as u32 as usize;
        let end = start.checked_add(len as usize).ok_or(errno::FAULT)?;
        self.0.get(start..end).ok_or(errno::FAULT)
    }
    pub fn slice_mut(&mut self, ptr: i32, len: u32) -> Result<&mut [u8]> {
        let start = ptr as u32 as usize;
        let end = start.checked_add(len as usize).ok_or(errno::FAULT)?;
        self.0.get_mut(start..end).ok_or(errno::FAULT)
    }
    pub fn read<const N: usize>(&self, ptr: i32) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.slice(ptr, N as u32)?);
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
        self.slice_mut(ptr, bytes.len() as u32)?
            .copy_from_slice(bytes);
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
        String::from_utf8(self.slice(ptr, len as u32)?.to_vec()).map_err(|_| errno::ILSEQ)
    }
    /// An `iovec`/`ciovec` array of `count` entries at `ptr`, the array and every
    /// buffer checked in range now (so a faulting call has no side effect). The
    /// entries stay in guest memory and are read one at a time: host memory does
    /// not grow with their number.
    pub fn iovecs(&self, ptr: i32, count: i32) -> Result<IoVecs> {
        let count = count as u32;
        self.slice(ptr, count.checked_mul(8).ok_or(errno::FAULT)?)?;
        let iovs = IoVecs {
            ptr,
            count,
            next: 0,
            budget: MAX_IO_BYTES,
        };
        for i in 0..count {
            let (buf, len) = iovs.entry(self, i)?;
            self.slice(buf, len)?;
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
        mem.slice(buf, len)?;
        self.budget -= len as usize;
        Ok(Some((buf, len)))
    }
}
