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
    /// A UTF-8 string (paths, symlink targets); invalid UTF-8 is `ILSEQ`.
    pub fn string(&self, ptr: i32, len: i32) -> Result<String> {
        String::from_utf8(self.slice(ptr, len as u32)?.to_vec()).map_err(|_| errno::ILSEQ)
    }
    /// The `(buf, len)` pairs of an `iovec`/`ciovec` array, each checked in range.
    pub fn iovecs(&self, ptr: i32, count: i32) -> Result<Vec<(i32, u32)>> {
        let count = count as u32;
        self.slice(ptr, count.checked_mul(8).ok_or(errno::FAULT)?)?;
        (0..count)
            .map(|i| {
                let at = ptr.wrapping_add((i * 8) as i32);
                let (buf, len) = (self.u32(at)? as i32, self.u32(at.wrapping_add(4))?);
                self.slice(buf, len)?;
                Ok((buf, len))
            })
            .collect()
    }
    /// The bytes of a `ciovec` array, concatenated.
    pub fn gather(&self, iovs: &[(i32, u32)]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(iovs.iter().map(|&(_, len)| len as usize).sum());
        for &(buf, len) in iovs {
            out.extend_from_slice(self.slice(buf, len)?);
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
