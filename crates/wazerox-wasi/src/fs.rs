//! The `path_*` functions: operations on a path under a directory descriptor.
//!
//! Every path is resolved inside the sandbox by [`path::resolve`] to a directory
//! descriptor and a single final name; the host is then asked with the `*at` system
//! calls on exactly that pair, never with a path string that it would resolve itself.

use crate::ctx::{FdEntry, FdKind, fdflags};
use crate::errno::{self, Errno};
use crate::fd::{Filestat, Ret, times};
use crate::memory::GuestMemory;
use crate::path::{self, Resolved};
use crate::{WasiCtx, rights, sys};
use std::sync::Arc;

/// `lookupflags::symlink_follow`.
const SYMLINK_FOLLOW: i32 = 1;

/// WASI `oflags`.
mod oflags {
    pub const CREAT: u16 = 1;
    pub const DIRECTORY: u16 = 2;
    pub const EXCL: u16 = 4;
    pub const TRUNC: u16 = 8;
}

/// A directory descriptor holding `needed`; changes (`change`) also need it not to be
/// under a read-only preopen.
fn directory(ctx: &WasiCtx, fd: i32, needed: u64, change: bool) -> Result<Arc<FdEntry>, Errno> {
    let entry = ctx.fd(fd)?;
    if !matches!(entry.kind, FdKind::Dir { .. }) {
        return Err(errno::NOTDIR);
    }
    if change {
        entry.require_change(needed)?;
    } else {
        entry.require(needed)?;
    }
    Ok(entry)
}

fn resolve(
    mem: &GuestMemory<'_>,
    entry: &FdEntry,
    ptr: i32,
    len: i32,
    follow: bool,
) -> Result<Resolved, Errno> {
    let FdKind::Dir { dir, .. } = &entry.kind else {
        return Err(errno::NOTDIR);
    };
    path::resolve(dir, &mem.path(ptr, len)?, follow)
}

fn is_dir(r: &Resolved) -> Result<bool, Errno> {
    let st = sys::fstatat(&r.dir, &r.name, false)?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn open(
    ctx: &WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    lookup: i32,
    path_ptr: i32,
    path_len: i32,
    oflags: i32,
    base: i64,
    inheriting: i64,
    fdflags: i32,
    out: i32,
) -> Ret {
    mem.slice(out, 4)?;
    let oflags = u16::try_from(oflags).map_err(|_| errno::INVAL)?;
    let fdflags = u16::try_from(fdflags).map_err(|_| errno::INVAL)?;
    if oflags & !0xf != 0 || fdflags & !0x1f != 0 {
        return Err(errno::INVAL.into());
    }
    let mut needed = rights::PATH_OPEN;
    if oflags & oflags::CREAT != 0 {
        needed |= rights::PATH_CREATE_FILE;
    }
    if oflags & oflags::TRUNC != 0 {
        needed |= rights::PATH_FILESTAT_SET_SIZE;
    }
    let parent = directory(ctx, fd, needed, false)?;
    // A new descriptor gets at most what its directory passes on.
    let (_, passed_on) = parent.rights();
    let base = base as u64 & passed_on;
    let inheriting = inheriting as u64 & passed_on;
    let read = base & rights::READS != 0;
    // Asking for a directory with write rights (some toolchains ask for every right)
    // opens it read-only: a directory is never written. Without `DIRECTORY`, writing
    // one is `ISDIR`, as in POSIX.
    let write = (base & rights::OPENS_FOR_WRITING != 0 && oflags & oflags::DIRECTORY == 0)
        || oflags & oflags::TRUNC != 0;
    if parent.read_only && (write || oflags & (oflags::CREAT | oflags::TRUNC) != 0) {
        return Err(errno::ROFS.into());
    }
    let r = resolve(
        mem,
        &parent,
        path_ptr,
        path_len,
        lookup & SYMLINK_FOLLOW != 0,
    )?;
    let mut flags = libc::O_NOFOLLOW
        | match (read, write) {
            (_, false) => libc::O_RDONLY,
            (false, true) => libc::O_WRONLY,
            (true, true) => libc::O_RDWR,
        };
    for (wasi, host) in [
        (oflags::CREAT, libc::O_CREAT),
        (oflags::DIRECTORY, libc::O_DIRECTORY),
        (oflags::EXCL, libc::O_EXCL),
        (oflags::TRUNC, libc::O_TRUNC),
    ] {
        if oflags & wasi != 0 {
            flags |= host;
        }
    }
    if r.must_be_dir {
        flags |= libc::O_DIRECTORY;
    }
    for (wasi, host) in [
        (fdflags::APPEND, libc::O_APPEND),
        (fdflags::DSYNC, libc::O_DSYNC),
        (fdflags::NONBLOCK, libc::O_NONBLOCK),
        (fdflags::RSYNC, libc::O_RSYNC),
        (fdflags::SYNC, libc::O_SYNC),
    ] {
        if fdflags & wasi != 0 {
            flags |= host;
        }
    }
    let file = sys::openat(&r.dir, &r.name, flags, 0o666)?;
    let not_written = if write {
        0
    } else {
        rights::WRITES & !rights::FD_DATASYNC
    };
    let entry = if file.metadata()?.is_dir() {
        let kind = FdKind::Dir {
            dir: file,
            preopen: None,
        };
        let base = base & rights::DIRECTORY & !not_written;
        FdEntry::new(kind, base, inheriting, parent.read_only)
    } else {
        let base = base & rights::FILE & !not_written;
        FdEntry::new(FdKind::File(file), base, inheriting, parent.read_only)
    };
    entry.set_flags(fdflags);
    Ok(mem.put_u32(out, ctx.insert(entry)?)?)
}

pub(crate) fn create_directory(
    ctx: &WasiCtx,
    mem: &GuestMemory<'_>,
    fd: i32,
    ptr: i32,
    len: i32,
) -> Ret {
    let entry = directory(ctx, fd, rights::PATH_CREATE_DIRECTORY, true)?;
    let r = resolve(mem, &entry, ptr, len, false)?;
    Ok(sys::mkdirat(&r.dir, &r.name)?)
}

pub(crate) fn remove_directory(
    ctx: &WasiCtx,
    mem: &GuestMemory<'_>,
    fd: i32,
    ptr: i32,
    len: i32,
) -> Ret {
    let entry = directory(ctx, fd, rights::PATH_REMOVE_DIRECTORY, true)?;
    let r = resolve(mem, &entry, ptr, len, false)?;
    Ok(sys::unlinkat(&r.dir, &r.name, true)?)
}

pub(crate) fn unlink_file(
    ctx: &WasiCtx,
    mem: &GuestMemory<'_>,
    fd: i32,
    ptr: i32,
    len: i32,
) -> Ret {
    let entry = directory(ctx, fd, rights::PATH_UNLINK_FILE, true)?;
    let r = resolve(mem, &entry, ptr, len, false)?;
    if r.must_be_dir {
        // `file/` names no file; `dir/` names a directory, which this cannot remove.
        return Err(if is_dir(&r)? {
            errno::ISDIR
        } else {
            errno::NOTDIR
        }
        .into());
    }
    Ok(sys::unlinkat(&r.dir, &r.name, false)?)
}

pub(crate) fn filestat_get(
    ctx: &WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    lookup: i32,
    ptr: i32,
    len: i32,
    out: i32,
) -> Ret {
    let entry = directory(ctx, fd, rights::PATH_FILESTAT_GET, false)?;
    let r = resolve(mem, &entry, ptr, len, lookup & SYMLINK_FOLLOW != 0)?;
    let st = sys::fstatat(&r.dir, &r.name, false)?;
    if r.must_be_dir && st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(errno::NOTDIR.into());
    }
    Ok(Filestat::from_stat(&st).write(mem, out)?)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn filestat_set_times(
    ctx: &WasiCtx,
    mem: &GuestMemory<'_>,
    fd: i32,
    lookup: i32,
    ptr: i32,
    len: i32,
    atim: i64,
    mtim: i64,
    flags: i32,
) -> Ret {
    let entry = directory(ctx, fd, rights::PATH_FILESTAT_SET_TIMES, true)?;
    let (a, m) = times(atim, mtim, flags)?;
    let r = resolve(mem, &entry, ptr, len, lookup & SYMLINK_FOLLOW != 0)?;
    Ok(sys::utimensat(&r.dir, &r.name, a, m, false)?)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn rename(
    ctx: &WasiCtx,
    mem: &GuestMemory<'_>,
    fd: i32,
    old_ptr: i32,
    old_len: i32,
    new_fd: i32,
    new_ptr: i32,
    new_len: i32,
) -> Ret {
    let from_entry = directory(ctx, fd, rights::PATH_RENAME_SOURCE, true)?;
    let to_entry = directory(ctx, new_fd, rights::PATH_RENAME_TARGET, true)?;
    let from = resolve(mem, &from_entry, old_ptr, old_len, false)?;
    let to = resolve(mem, &to_entry, new_ptr, new_len, false)?;
    if (from.must_be_dir || to.must_be_dir) && !is_dir(&from)? {
        return Err(errno::NOTDIR.into());
    }
    Ok(sys::renameat(&from.dir, &from.name, &to.dir, &to.name)?)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn link(
    ctx: &WasiCtx,
    mem: &GuestMemory<'_>,
    fd: i32,
    lookup: i32,
    old_ptr: i32,
    old_len: i32,
    new_fd: i32,
    new_ptr: i32,
    new_len: i32,
) -> Ret {
    // The source must be changeable too: a second name for a file under a read-only
    // preopen would let the guest write it through another preopen.
    let from_entry = directory(ctx, fd, rights::PATH_LINK_SOURCE, true)?;
    let to_entry = directory(ctx, new_fd, rights::PATH_LINK_TARGET, true)?;
    let from = resolve(
        mem,
        &from_entry,
        old_ptr,
        old_len,
        lookup & SYMLINK_FOLLOW != 0,
    )?;
    let to = resolve(mem, &to_entry, new_ptr, new_len, false)?;
    if from.must_be_dir || to.must_be_dir {
        // As Linux's linkat: directories cannot be linked; a file named with a
        // trailing slash is not a directory; a new name with a trailing slash for a
        // file cannot be created (NOENT), unless it exists already (EXIST).
        return Err(if is_dir(&from)? {
            errno::PERM
        } else if from.must_be_dir {
            errno::NOTDIR
        } else if sys::fstatat(&to.dir, &to.name, false).is_ok() {
            errno::EXIST
        } else {
            errno::NOENT
        }
        .into());
    }
    Ok(sys::linkat(&from.dir, &from.name, &to.dir, &to.name)?)
}

pub(crate) fn symlink(
    ctx: &WasiCtx,
    mem: &GuestMemory<'_>,
    old_ptr: i32,
    old_len: i32,
    fd: i32,
    new_ptr: i32,
    new_len: i32,
) -> Ret {
    let entry = directory(ctx, fd, rights::PATH_SYMLINK, true)?;
    let target = mem.path(old_ptr, old_len)?;
    // A link out of the sandbox could never be followed by the guest, but it would
    // still lead other host programs outside: refuse it.
    if target.starts_with('/') {
        return Err(errno::NOTCAPABLE.into());
    }
    if target.is_empty() {
        return Err(errno::NOENT.into());
    }
    let r = resolve(mem, &entry, new_ptr, new_len, false)?;
    if r.must_be_dir {
        return Err(errno::NOENT.into());
    }
    if climbs_out(&target, r.depth) {
        return Err(errno::NOTCAPABLE.into());
    }
    Ok(sys::symlinkat(&target, &r.dir, &r.name)?)
}

/// Whether the relative symlink `target`, placed `depth` directories below the
/// directory the guest named it from, climbs above that directory, read as the
/// kernel would read it for another host program: lexically, each name a step
/// down and each `..` a step up. (Names that are themselves symlinks only matter
/// when followed, and the guest's own resolution keeps those inside.)
fn climbs_out(target: &str, depth: usize) -> bool {
    let mut depth = depth;
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." => match depth.checked_sub(1) {
                Some(up) => depth = up,
                None => return true,
            },
            _ => depth += 1,
        }
    }
    false
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn readlink(
    ctx: &WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    ptr: i32,
    len: i32,
    buf: i32,
    buf_len: i32,
    used: i32,
) -> Ret {
    mem.slice(used, 4)?;
    let entry = directory(ctx, fd, rights::PATH_READLINK, false)?;
    let r = resolve(mem, &entry, ptr, len, false)?;
    let target = sys::readlinkat(&r.dir, &r.name)?;
    let n = target.len().min(buf_len as u32 as usize);
    mem.write(buf, &target[..n])?;
    Ok(mem.put_u32(used, n as u32)?)
}
