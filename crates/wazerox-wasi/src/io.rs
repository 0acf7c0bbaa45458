//! Reading and writing descriptors. Regular files are read and written directly;
//! streams (stdin, sockets) wait for readiness with `poll(2)` next to the context's
//! cancellation pipe, so a blocked call can be cancelled from another thread, and a
//! guest-set `NONBLOCK` flag is honoured without touching the host descriptor.

use crate::ctx::{FdEntry, FdKind, Input, Output};
use crate::errno::{self, Failure};
use crate::memory::GuestMemory;
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
    iovs: &[(i32, u32)],
) -> Result<usize> {
    match &entry.kind {
        FdKind::File(file) => {
            let mut total = 0;
            for &(buf, len) in iovs {
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
            let Some(&(buf, len)) = iovs.iter().find(|(_, len)| *len > 0) else {
                return Ok(0);
            };
            mem.fill(buf, len, |out| read_stream(ctx, entry, out, false))
        }
    }
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

/// `fd_write`: writes the ciovecs in order. Streams are written completely (or as
/// much as is accepted without waiting, when non-blocking).
pub(crate) fn write_vectored(
    ctx: &WasiCtx,
    entry: &FdEntry,
    mem: &GuestMemory<'_>,
    iovs: &[(i32, u32)],
) -> Result<usize> {
    match &entry.kind {
        FdKind::File(file) => {
            let mut total = 0;
            for &(buf, len) in iovs {
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
            let data = match iovs {
                [(buf, len)] => mem.slice(*buf, *len)?,
                _ => std::borrow::Cow::Owned(mem.gather(iovs)?),
            };
            write_stream(ctx, entry, &data)
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
