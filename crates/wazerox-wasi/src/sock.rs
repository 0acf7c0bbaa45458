//! `sock_accept`, `sock_recv`, `sock_send`, `sock_shutdown` on the listening sockets
//! an embedder preopened ([`WasiCtxBuilder::preopened_socket`]) and the connections
//! accepted from them. Other descriptors are `NOTSOCK`; unknown ones `BADF`.
//!
//! [`WasiCtxBuilder::preopened_socket`]: crate::WasiCtxBuilder::preopened_socket

use crate::ctx::{FdEntry, FdKind, fdflags};
use crate::errno::{self, Errno, Failure};
use crate::fd::Ret;
use crate::memory::GuestMemory;
use crate::{WasiCtx, io, rights};
use std::io::ErrorKind;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::sync::Arc;

/// `riflags`.
const RECV_PEEK: u16 = 1;
const RECV_WAITALL: u16 = 2;

/// `sdflags`.
const SHUT_RD: i32 = 1;
const SHUT_WR: i32 = 2;

fn socket(ctx: &WasiCtx, fd: i32, needed: u64) -> Result<Arc<FdEntry>, Errno> {
    let entry = ctx.fd(fd)?;
    if !matches!(entry.kind, FdKind::Listener(_) | FdKind::Stream(_)) {
        return Err(errno::NOTSOCK);
    }
    entry.require(needed)?;
    Ok(entry)
}

pub(crate) fn accept(
    ctx: &WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    flags: i32,
    out: i32,
) -> Ret {
    mem.slice(out, 4)?;
    let entry = socket(ctx, fd, rights::SOCK_ACCEPT)?;
    let flags = u16::try_from(flags).map_err(|_| errno::INVAL)?;
    if flags & !fdflags::NONBLOCK != 0 {
        return Err(errno::INVAL.into());
    }
    let FdKind::Listener(listener) = &entry.kind else {
        return Err(errno::INVAL.into());
    };
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                ctx.wait_ready(listener.as_raw_fd(), false, entry.nonblocking())?
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    };
    // Host side non-blocking always; the guest's NONBLOCK is emulated.
    stream.set_nonblocking(true)?;
    let new = FdEntry::new(FdKind::Stream(stream), rights::SOCKET, 0, false);
    new.set_flags(flags);
    Ok(mem.put_u32(out, ctx.insert(new)?)?)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn recv(
    ctx: &WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    iovs: i32,
    count: i32,
    flags: i32,
    out_len: i32,
    out_flags: i32,
) -> Ret {
    mem.slice(out_len, 4)?;
    mem.slice(out_flags, 2)?;
    let entry = socket(ctx, fd, rights::FD_READ)?;
    if matches!(entry.kind, FdKind::Listener(_)) {
        return Err(errno::NOTCONN.into());
    }
    let flags = u16::try_from(flags).map_err(|_| errno::INVAL)?;
    if flags & !(RECV_PEEK | RECV_WAITALL) != 0 {
        return Err(errno::INVAL.into());
    }
    // Straight into guest memory: the first non-empty buffer, or with WAITALL
    // every buffer in turn until full (or end of stream).
    let mut iovs = mem.iovecs(iovs, count)?;
    let waitall = flags & RECV_WAITALL != 0 && flags & RECV_PEEK == 0;
    let mut filled = 0;
    while let Some((buf, len)) = io::first_non_empty(&mut iovs, mem)? {
        let mut at = 0;
        while at < len as usize {
            let peek = flags & RECV_PEEK != 0;
            let rest = buf.wrapping_add(at as i32);
            let read = mem.fill(rest, len - at as u32, |into| {
                io::read_stream(ctx, &entry, into, peek)
            });
            let n = match read {
                Ok(n) => n,
                // Keep what arrived before a non-blocking socket ran dry.
                Err(Failure::Errno(errno::AGAIN)) if filled > 0 => 0,
                Err(e) => return Err(e),
            };
            at += n;
            filled += n;
            if n == 0 || !waitall {
                break;
            }
        }
        if at < len as usize || !waitall {
            break;
        }
    }
    mem.put_u32(out_len, filled as u32)?;
    // roflags: data is never truncated on a stream socket.
    Ok(mem.write(out_flags, &0u16.to_le_bytes())?)
}

pub(crate) fn send(
    ctx: &WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    iovs: i32,
    count: i32,
    flags: i32,
    out_len: i32,
) -> Ret {
    mem.slice(out_len, 4)?;
    let entry = socket(ctx, fd, rights::FD_WRITE)?;
    if matches!(entry.kind, FdKind::Listener(_)) {
        return Err(errno::NOTCONN.into());
    }
    // No siflags are defined.
    if flags != 0 {
        return Err(errno::INVAL.into());
    }
    let iovs = mem.iovecs(iovs, count)?;
    let n = io::write_vectored(ctx, &entry, mem, iovs)?;
    Ok(mem.put_u32(out_len, n as u32)?)
}

pub(crate) fn shutdown(ctx: &WasiCtx, fd: i32, how: i32) -> Ret {
    let entry = socket(ctx, fd, rights::SOCK_SHUTDOWN)?;
    let FdKind::Stream(stream) = &entry.kind else {
        return Err(errno::NOTCONN.into());
    };
    let how = match how {
        SHUT_RD => Shutdown::Read,
        SHUT_WR => Shutdown::Write,
        3 => Shutdown::Both,
        _ => return Err(errno::INVAL.into()),
    };
    Ok(stream.shutdown(how)?)
}
