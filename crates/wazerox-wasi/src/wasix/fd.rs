//! WASIX descriptor calls: `fd_dup`, `fd_dup2`, `fd_pipe`.
//!
//! A duplicate is the same table entry under a second number, so both share what
//! POSIX says dup'ed descriptors share — the file offset and the status flags —
//! and the rights; closing one leaves the other open. `fd_dup2(fd, min, cloexec,
//! ret)` is `fcntl(F_DUPFD)`: the lowest free number ≥ `min` (`cloexec` has no
//! meaning without `exec`). `fd_pipe(ret_read, ret_write)` makes a host pipe: the
//! first descriptor reads, the second writes; reads wait (cancellably) like stdin
//! reads, end of file once every write end is closed.

use super::signal::finish;
use crate::ctx::{FdEntry, FdKind, Input, Output};
use crate::errno::{self, Failure};
use crate::fd::Ret;
use crate::memory::GuestMemory;
use crate::{WasiCtx, rights};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use wazerox::{Caller, Error, Linker};

/// Descriptor numbers a guest may ask for (as `RLIMIT_NOFILE` would bound them).
const MAX_FD: u32 = 1 << 20;

/// Puts `entry` under the lowest free number ≥ `min`.
fn insert_from(ctx: &WasiCtx, min: u32, entry: Arc<FdEntry>) -> Result<u32, Failure> {
    let mut fds = ctx.fds.write().unwrap();
    let fd = (min..MAX_FD)
        .find(|n| !fds.contains_key(n))
        .ok_or(errno::MFILE)?;
    fds.insert(fd, entry);
    Ok(fd)
}

fn dup(ctx: &WasiCtx, mem: &mut GuestMemory<'_>, fd: i32, min: u32, ret: i32) -> Ret {
    if min >= MAX_FD {
        return Err(errno::INVAL.into());
    }
    mem.slice(ret, 4)?;
    let entry = ctx.fd(fd)?;
    let new = insert_from(ctx, min, entry)?;
    Ok(mem.put_u32(ret, new)?)
}

fn pipe(ctx: &WasiCtx, mem: &mut GuestMemory<'_>, ret_read: i32, ret_write: i32) -> Ret {
    mem.slice(ret_read, 4)?;
    mem.slice(ret_write, 4)?;
    let (reader, writer) = std::io::pipe()?;
    let reader = File::from(OwnedFd::from(reader));
    let writer = File::from(OwnedFd::from(writer));
    let read_end = FdEntry::new(FdKind::Stdin(Input::File(reader)), rights::STDIN, 0, false);
    let write_end = FdEntry::new(
        FdKind::Stdout(Output::File(writer)),
        rights::STDOUT,
        0,
        false,
    );
    let read_fd = ctx.insert(read_end)?;
    let write_fd = match ctx.insert(write_end) {
        Ok(fd) => fd,
        Err(e) => {
            ctx.fds.write().unwrap().remove(&read_fd);
            return Err(e.into());
        }
    };
    mem.put_u32(ret_read, read_fd)?;
    Ok(mem.put_u32(ret_write, write_fd)?)
}

pub(super) fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: impl Fn(&T) -> &Arc<WasiCtx> + Send + Sync + Copy + 'static,
) -> Result<(), Error> {
    const MODULE: &str = "wasix_32v1";
    linker.func_wrap(
        MODULE,
        "fd_dup",
        move |mut caller: Caller<'_, T>, fd: i32, ret: i32| -> Result<i32, Error> {
            let result =
                crate::preview1::with(&mut caller, get, |ctx, mem| dup(ctx, mem, fd, 0, ret));
            finish(&mut caller, get, result)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_dup2",
        move |mut caller: Caller<'_, T>,
              fd: i32,
              min: i32,
              _cloexec: i32,
              ret: i32|
              -> Result<i32, Error> {
            let result = crate::preview1::with(&mut caller, get, |ctx, mem| {
                dup(ctx, mem, fd, min as u32, ret)
            });
            finish(&mut caller, get, result)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_pipe",
        move |mut caller: Caller<'_, T>, ret_read: i32, ret_write: i32| -> Result<i32, Error> {
            let result = crate::preview1::with(&mut caller, get, |ctx, mem| {
                pipe(ctx, mem, ret_read, ret_write)
            });
            finish(&mut caller, get, result)
        },
    )?;
    Ok(())
}
