//! Reading and writing descriptors. Regular files are read and written directly;
//! streams (stdin, sockets) wait for readiness with `poll(2)` next to the context's
//! cancellation pipe, so a blocked call can be cancelled from another thread, and a
//! guest-set `NONBLOCK` flag is honoured without touching the host descriptor.

use crate::ctx::{FdEntry, FdKind, Input, Output};
use crate::errno::{self, Failure};
use crate::memory::{GuestMemory, IoVecs};
use crate::{WasiCtx, sys};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;

type Result<T> = std::result::Result<T, Failure>;

/// `fd_read`: fills the iovecs in order; a stream is read once (into the first
/// non-empty iovec), so a read never waits once it has data.
pub(crate) fn read_vectored(
    ctx: &WasiCtx,
    entry: &FdEntry,
    mem: &mut GuestMemory<'_>,
    mut iovs: IoVecs,
) -> Result<usize> {
    match &entry.kind {
        FdKind::File(file) => {
            let mut total = 0;
            while let Some((buf, len)) = iovs.next(mem)? {
                let n = retry(|| mem.fill(buf, len, |out| Ok((&*file).read(out)?)))?;
                total += n;
                if n < len as usize {
                    break;
                }
            }
            Ok(total)
        }
        FdKind::Dir { .. } => Err(errno::ISDIR.into()),
        FdKind::Stdout(_) => Err(errno::BADF.into()),
        FdKind::Listener(_) => Err(errno::NOTCONN.into()),
        FdKind::Stdin(_) | FdKind::Stream(_) => {
            let Some((buf, len)) = first_non_empty(&mut iovs, mem)? else {
                return Ok(0);
            };
            mem.fill(buf, len, |out| read_stream(ctx, entry, out, false))
        }
    }
}

/// The first buffer of `iovs` that can hold a byte.
pub(crate) fn first_non_empty(
    iovs: &mut IoVecs,
    mem: &GuestMemory<'_>,
) -> Result<Option<(i32, u32)>> {
    while let Some((buf, len)) = iovs.next(mem)? {
        if len > 0 {
            return Ok(Some((buf, len)));
        }
    }
    Ok(None)
}

/// One read of a stream into `buf`, waiting (cancellably) until data or end of file
/// unless the descriptor is non-blocking. With `peek`, the data stays queued
/// (sockets only).
pub(crate) fn read_stream(
    ctx: &WasiCtx,
    entry: &FdEntry,
    buf: &mut [u8],
    peek: bool,
) -> Result<usize> {
    let nonblocking = entry.nonblocking();
    match &entry.kind {
        FdKind::Stdin(Input::Bytes(cursor)) => Ok(cursor.lock().unwrap().read(buf)?),
        FdKind::Stdin(Input::Inherit) => {
            ctx.wait_ready(0, false, nonblocking)?;
            retry(|| Ok((&*sys::borrow_stdio(0)).read(buf)?))
        }
        FdKind::Stdin(Input::File(file)) => {
            ctx.wait_ready(file.as_raw_fd(), false, nonblocking)?;
            retry(|| Ok((&*file).read(buf)?))
        }
        FdKind::Stream(stream) => loop {
            let result = if peek {
                stream.peek(buf)
            } else {
                (&*stream).read(buf)
            };
            match result {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    ctx.wait_ready(stream.as_raw_fd(), false, nonblocking)?
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        },
        _ => Err(errno::BADF.into()),
    }
}

/// Small buffers of one `fd_write` to a stream are gathered up to this many bytes
/// into one host write (so a `printf` split over several iovecs stays one write);
/// larger ones are written straight from guest memory. Host memory per call is
/// this, whatever the guest asks for.
const GATHER_BYTES: usize = 64 * 1024;

/// `fd_write` (and `sock_send`): writes the ciovecs in order. Streams are written
/// completely (or as much as is accepted without waiting, when non-blocking).
pub(crate) fn write_vectored(
    ctx: &WasiCtx,
    entry: &FdEntry,
    mem: &GuestMemory<'_>,
    mut iovs: IoVecs,
) -> Result<usize> {
    match &entry.kind {
        FdKind::File(file) => {
            let mut total = 0;
            while let Some((buf, len)) = iovs.next(mem)? {
                let n = retry(|| Ok((&*file).write(&mem.slice(buf, len)?)?))?;
                total += n;
                if n < len as usize {
                    break;
                }
            }
            Ok(total)
        }
        FdKind::Dir { .. } => Err(errno::ISDIR.into()),
        FdKind::Stdin(_) => Err(errno::BADF.into()),
        FdKind::Listener(_) => Err(errno::NOTCONN.into()),
        FdKind::Stdout(_) | FdKind::Stream(_) => {
            let mut gathered: Vec<u8> = Vec::new();
            let mut total = 0;
            // Writes `data`; `Ok(false)` once the stream took less than all of it.
            let put = |data: &[u8], total: &mut usize| -> Result<bool> {
                match write_stream(ctx, entry, data) {
                    Ok(n) => {
                        *total += n;
                        Ok(n == data.len())
                    }
                    // What was written before counts; the next call reports the error.
                    Err(Failure::Errno(_)) if *total > 0 => Ok(false),
                    Err(e) => Err(e),
                }
            };
            while let Some((buf, len)) = iovs.next(mem)? {
                let data = mem.slice(buf, len)?;
                if gathered.len() + data.len() <= GATHER_BYTES {
                    gathered.extend_from_slice(&data);
                    continue;
                }
                if !gathered.is_empty() {
                    if !put(&gathered, &mut total)? {
                        return Ok(total);
                    }
                    gathered.clear();
                }
                if data.len() <= GATHER_BYTES {
                    gathered.extend_from_slice(&data);
                } else if !put(&data, &mut total)? {
                    return Ok(total);
                }
            }
            if !gathered.is_empty() || total == 0 {
                put(&gathered, &mut total)?;
            }
            Ok(total)
        }
    }
}

/// Writes `data` to a stream: all of it when blocking; when non-blocking, what the
/// stream takes now (`AGAIN` if nothing).
pub(crate) fn write_stream(ctx: &WasiCtx, entry: &FdEntry, data: &[u8]) -> Result<usize> {
    let nonblocking = entry.nonblocking();
    let mut done = 0;
    while done < data.len() {
        let (result, fd) = match &entry.kind {
            FdKind::Stdout(Output::Pipe(pipe)) => {
                pipe.append(data);
                return Ok(data.len());
            }
            FdKind::Stdout(Output::Inherit(fd)) => {
                ((&*sys::borrow_stdio(*fd)).write(&data[done..]), *fd)
            }
            FdKind::Stdout(Output::File(file)) => ((&*file).write(&data[done..]), file.as_raw_fd()),
            FdKind::Stream(stream) => ((&*stream).write(&data[done..]), stream.as_raw_fd()),
            _ => return Err(errno::BADF.into()),
        };
        match result {
            Ok(0) => break,
            Ok(n) => {
                done += n;
                if nonblocking {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if nonblocking {
                    break;
                }
                ctx.wait_ready(fd, true, false)?;
            }
            // Report what was written before the error; the next write reports it.
            Err(_) if done > 0 => break,
            Err(e) => return Err(e.into()),
        }
    }
    if done == 0 && !data.is_empty() {
        return Err(errno::AGAIN.into());
    }
    Ok(done)
}

/// Retries a host call interrupted by a signal.
fn retry<T>(mut call: impl FnMut() -> Result<T>) -> Result<T> {
    loop {
        match call() {
            Err(Failure::Errno(errno::INTR)) => continue,
            other => return other,
        }
    }
}
