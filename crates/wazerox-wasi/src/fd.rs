//! The `fd_*` functions: operations on an open descriptor.

use crate::ctx::{FdEntry, FdKind, Input, Output, fdflags};
use crate::errno::{self, Errno, Failure};
use crate::memory::GuestMemory;
use crate::{WasiCtx, io, rights, sys};
use std::fs::{File, Metadata};
use std::io::{IsTerminal, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};

pub(crate) type Ret = Result<(), Failure>;

/// WASI `filetype` values.
pub(crate) mod filetype {
    pub const UNKNOWN: u8 = 0;
    pub const BLOCK_DEVICE: u8 = 1;
    pub const CHARACTER_DEVICE: u8 = 2;
    pub const DIRECTORY: u8 = 3;
    pub const REGULAR_FILE: u8 = 4;
    pub const SOCKET_STREAM: u8 = 6;
    pub const SYMBOLIC_LINK: u8 = 7;
}

pub(crate) fn filetype_of_mode(mode: u32) -> u8 {
    match mode & libc::S_IFMT {
        libc::S_IFBLK => filetype::BLOCK_DEVICE,
        libc::S_IFCHR => filetype::CHARACTER_DEVICE,
        libc::S_IFDIR => filetype::DIRECTORY,
        libc::S_IFREG => filetype::REGULAR_FILE,
        libc::S_IFSOCK => filetype::SOCKET_STREAM,
        libc::S_IFLNK => filetype::SYMBOLIC_LINK,
        // FIFOs have no WASI file type.
        _ => filetype::UNKNOWN,
    }
}

pub(crate) fn filetype_of_dirent(t: std::fs::FileType) -> u8 {
    if t.is_dir() {
        filetype::DIRECTORY
    } else if t.is_file() {
        filetype::REGULAR_FILE
    } else if t.is_symlink() {
        filetype::SYMBOLIC_LINK
    } else if t.is_char_device() {
        filetype::CHARACTER_DEVICE
    } else if t.is_block_device() {
        filetype::BLOCK_DEVICE
    } else if t.is_socket() {
        filetype::SOCKET_STREAM
    } else {
        filetype::UNKNOWN
    }
}

/// The host file behind stdio backed by a host descriptor (for `fstat`).
fn stdio_host_file(kind: &FdKind) -> Option<std::mem::ManuallyDrop<File>> {
    match kind {
        FdKind::Stdin(Input::Inherit) => Some(sys::borrow_stdio(0)),
        FdKind::Stdout(Output::Inherit(fd)) => Some(sys::borrow_stdio(*fd)),
        _ => None,
    }
}

fn filetype_of(entry: &FdEntry) -> Result<u8, Errno> {
    Ok(match &entry.kind {
        FdKind::File(f) | FdKind::Stdin(Input::File(f)) | FdKind::Stdout(Output::File(f)) => {
            filetype_of_mode(f.metadata()?.mode())
        }
        FdKind::Stdin(Input::Bytes(_)) | FdKind::Stdout(Output::Pipe(_)) => filetype::UNKNOWN,
        FdKind::Stdin(Input::Inherit) | FdKind::Stdout(Output::Inherit(_)) => {
            let host = stdio_host_file(&entry.kind).expect("inherited stdio");
            // wasi-libc's `isatty` is "character device without seek rights": only a
            // terminal may look like one, or output to /dev/null would be
            // line-buffered.
            match filetype_of_mode(host.metadata()?.mode()) {
                _ if host.is_terminal() => filetype::CHARACTER_DEVICE,
                filetype::CHARACTER_DEVICE => filetype::UNKNOWN,
                other => other,
            }
        }
        FdKind::Dir { .. } => filetype::DIRECTORY,
        FdKind::Listener(_) | FdKind::Stream(_) => filetype::SOCKET_STREAM,
    })
}

fn nanos(seconds: i64, nanoseconds: i64) -> u64 {
    (seconds as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(nanoseconds as u64)
}

/// A WASI `filestat` (64 bytes).
pub(crate) struct Filestat {
    pub dev: u64,
    pub ino: u64,
    pub filetype: u8,
    pub nlink: u64,
    pub size: u64,
    pub atim: u64,
    pub mtim: u64,
    pub ctim: u64,
}

impl Filestat {
    pub fn from_metadata(m: &Metadata) -> Filestat {
        Filestat {
            dev: m.dev(),
            ino: m.ino(),
            filetype: filetype_of_mode(m.mode()),
            nlink: m.nlink(),
            size: m.size(),
            atim: nanos(m.atime(), m.atime_nsec()),
            mtim: nanos(m.mtime(), m.mtime_nsec()),
            ctim: nanos(m.ctime(), m.ctime_nsec()),
        }
    }
    pub fn from_stat(st: &libc::stat) -> Filestat {
        Filestat {
            dev: st.st_dev,
            ino: st.st_ino,
            filetype: filetype_of_mode(st.st_mode),
            nlink: st.st_nlink,
            size: st.st_size as u64,
            atim: nanos(st.st_atime, st.st_atime_nsec),
            mtim: nanos(st.st_mtime, st.st_mtime_nsec),
            ctim: nanos(st.st_ctime, st.st_ctime_nsec),
        }
    }
    pub fn write(&self, mem: &mut GuestMemory<'_>, ptr: i32) -> Result<(), Errno> {
        let mut buf = [0u8; 64];
        buf[0..8].copy_from_slice(&self.dev.to_le_bytes());
        buf[8..16].copy_from_slice(&self.ino.to_le_bytes());
        buf[16] = self.filetype;
        buf[24..32].copy_from_slice(&self.nlink.to_le_bytes());
        buf[32..40].copy_from_slice(&self.size.to_le_bytes());
        buf[40..48].copy_from_slice(&self.atim.to_le_bytes());
        buf[48..56].copy_from_slice(&self.mtim.to_le_bytes());
        buf[56..64].copy_from_slice(&self.ctim.to_le_bytes());
        mem.write(ptr, &buf)
    }
}

/// The host file of a regular file or directory descriptor.
fn file_or_dir(entry: &FdEntry) -> Result<&File, Errno> {
    match &entry.kind {
        FdKind::File(f) | FdKind::Dir { dir: f, .. } => Ok(f),
        _ => Err(errno::BADF),
    }
}

/// The host file of a regular file; other descriptors cannot seek (`SPIPE`) or are
/// directories (`ISDIR`).
fn regular_file(entry: &FdEntry) -> Result<&File, Errno> {
    match &entry.kind {
        FdKind::File(f) => Ok(f),
        FdKind::Dir { .. } => Err(errno::ISDIR),
        _ => Err(errno::SPIPE),
    }
}

pub(crate) fn advise(ctx: &WasiCtx, fd: i32, offset: i64, len: i64, advice: i32) -> Ret {
    let entry = ctx.fd(fd)?;
    entry.require(rights::FD_ADVISE)?;
    let advice = match advice {
        0 => libc::POSIX_FADV_NORMAL,
        1 => libc::POSIX_FADV_SEQUENTIAL,
        2 => libc::POSIX_FADV_RANDOM,
        3 => libc::POSIX_FADV_WILLNEED,
        4 => libc::POSIX_FADV_DONTNEED,
        5 => libc::POSIX_FADV_NOREUSE,
        _ => return Err(errno::INVAL.into()),
    };
    if offset < 0 || len < 0 {
        return Err(errno::INVAL.into());
    }
    let file = match &entry.kind {
        FdKind::File(f) => f,
        FdKind::Dir { .. } => return Err(errno::BADF.into()),
        _ => return Err(errno::SPIPE.into()),
    };
    sys::fadvise(file, offset as u64, len as u64, advice)?;
    Ok(())
}

pub(crate) fn allocate(ctx: &WasiCtx, fd: i32, offset: i64, len: i64) -> Ret {
    let entry = ctx.fd(fd)?;
    entry.require_change(rights::FD_ALLOCATE)?;
    if offset < 0 || len <= 0 {
        return Err(errno::INVAL.into());
    }
    let file = match &entry.kind {
        FdKind::File(f) => f,
        FdKind::Dir { .. } => return Err(errno::BADF.into()),
        _ => return Err(errno::SPIPE.into()),
    };
    sys::fallocate(file, offset as u64, len as u64)?;
    Ok(())
}

pub(crate) fn close(ctx: &WasiCtx, fd: i32) -> Ret {
    let removed = ctx.fds.write().unwrap().remove(&(fd as u32));
    // The host descriptor closes when the last call using it returns.
    removed.map(drop).ok_or(errno::BADF.into())
}

fn sync(ctx: &WasiCtx, fd: i32, right: u64, data_only: bool) -> Ret {
    let entry = ctx.fd(fd)?;
    entry.require(right)?;
    match &entry.kind {
        FdKind::File(f) | FdKind::Dir { dir: f, .. } => {
            if data_only {
                f.sync_data()?
            } else {
                f.sync_all()?
            }
        }
        FdKind::Stdout(Output::File(f)) => f.sync_all()?,
        // Nothing buffered on our side.
        FdKind::Stdout(_) => {}
        _ => return Err(errno::INVAL.into()),
    }
    Ok(())
}

pub(crate) fn datasync(ctx: &WasiCtx, fd: i32) -> Ret {
    sync(ctx, fd, rights::FD_DATASYNC, true)
}

pub(crate) fn sync_all(ctx: &WasiCtx, fd: i32) -> Ret {
    sync(ctx, fd, rights::FD_SYNC, false)
}

pub(crate) fn fdstat_get(ctx: &WasiCtx, mem: &mut GuestMemory<'_>, fd: i32, out: i32) -> Ret {
    let entry = ctx.fd(fd)?;
    let (base, inheriting) = entry.rights();
    let mut buf = [0u8; 24];
    buf[0] = filetype_of(&entry)?;
    buf[2..4].copy_from_slice(&entry.flags().to_le_bytes());
    buf[8..16].copy_from_slice(&base.to_le_bytes());
    buf[16..24].copy_from_slice(&inheriting.to_le_bytes());
    Ok(mem.write(out, &buf)?)
}

pub(crate) fn fdstat_set_flags(ctx: &WasiCtx, fd: i32, flags: i32) -> Ret {
    let entry = ctx.fd(fd)?;
    entry.require(rights::FD_FDSTAT_SET_FLAGS)?;
    let flags = u16::try_from(flags).map_err(|_| errno::INVAL)?;
    if flags & !0x1f != 0 {
        return Err(errno::INVAL.into());
    }
    let sync_bits = fdflags::DSYNC | fdflags::RSYNC | fdflags::SYNC;
    if (flags ^ entry.flags()) & sync_bits != 0 {
        // Linux cannot change O_SYNC/O_DSYNC on an open descriptor.
        return Err(errno::NOTSUP.into());
    }
    if let FdKind::File(file) = &entry.kind {
        let mut host = sys::status_flags(file)? & !(libc::O_APPEND | libc::O_NONBLOCK);
        if flags & fdflags::APPEND != 0 {
            host |= libc::O_APPEND;
        }
        if flags & fdflags::NONBLOCK != 0 {
            host |= libc::O_NONBLOCK;
        }
        sys::set_status_flags(file, host)?;
    }
    // Streams keep their host descriptors as they are: NONBLOCK is emulated.
    entry.set_flags(flags);
    Ok(())
}

pub(crate) fn fdstat_set_rights(ctx: &WasiCtx, fd: i32, base: i64, inheriting: i64) -> Ret {
    let entry = ctx.fd(fd)?;
    Ok(entry.narrow_rights(base as u64, inheriting as u64)?)
}

pub(crate) fn filestat_get(ctx: &WasiCtx, mem: &mut GuestMemory<'_>, fd: i32, out: i32) -> Ret {
    let entry = ctx.fd(fd)?;
    entry.require(rights::FD_FILESTAT_GET)?;
    let stat = match &entry.kind {
        FdKind::File(f)
        | FdKind::Dir { dir: f, .. }
        | FdKind::Stdin(Input::File(f))
        | FdKind::Stdout(Output::File(f)) => Filestat::from_metadata(&f.metadata()?),
        FdKind::Stdin(Input::Inherit) | FdKind::Stdout(Output::Inherit(_)) => {
            let host = stdio_host_file(&entry.kind).expect("inherited stdio");
            let mut stat = Filestat::from_metadata(&host.metadata()?);
            stat.filetype = filetype_of(&entry)?;
            stat
        }
        FdKind::Listener(l) => Filestat::from_stat(&sys::fstat(l.as_raw_fd())?),
        FdKind::Stream(s) => Filestat::from_stat(&sys::fstat(s.as_raw_fd())?),
        FdKind::Stdin(Input::Bytes(_)) | FdKind::Stdout(Output::Pipe(_)) => Filestat {
            dev: 0,
            ino: 0,
            filetype: filetype::UNKNOWN,
            nlink: 1,
            size: 0,
            atim: 0,
            mtim: 0,
            ctim: 0,
        },
    };
    Ok(stat.write(mem, out)?)
}

pub(crate) fn filestat_set_size(ctx: &WasiCtx, fd: i32, size: i64) -> Ret {
    let entry = ctx.fd(fd)?;
    entry.require_change(rights::FD_FILESTAT_SET_SIZE)?;
    let size = u64::try_from(size).map_err(|_| errno::INVAL)?;
    match &entry.kind {
        FdKind::File(f) => Ok(f.set_len(size)?),
        FdKind::Dir { .. } => Err(errno::ISDIR.into()),
        _ => Err(errno::INVAL.into()),
    }
}

/// `fstflags` into the two timestamps of `utimensat`.
pub(crate) fn times(
    atim: i64,
    mtim: i64,
    flags: i32,
) -> Result<(sys::TimeSpec, sys::TimeSpec), Errno> {
    if flags & !0xf != 0 {
        return Err(errno::INVAL);
    }
    let pick = |value: i64, set: i32, now: i32| -> Result<sys::TimeSpec, Errno> {
        match (flags & set != 0, flags & now != 0) {
            (true, true) => Err(errno::INVAL),
            (true, false) => Ok(Some(Some(value as u64))),
            (false, true) => Ok(Some(None)),
            (false, false) => Ok(None),
        }
    };
    Ok((pick(atim, 1, 2)?, pick(mtim, 4, 8)?))
}

pub(crate) fn filestat_set_times(ctx: &WasiCtx, fd: i32, atim: i64, mtim: i64, flags: i32) -> Ret {
    let entry = ctx.fd(fd)?;
    entry.require_change(rights::FD_FILESTAT_SET_TIMES)?;
    let (a, m) = times(atim, mtim, flags)?;
    sys::futimens(file_or_dir(&entry)?, a, m)?;
    Ok(())
}

pub(crate) fn pread(
    ctx: &WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    iovs: i32,
    count: i32,
    offset: i64,
    out: i32,
) -> Ret {
    mem.slice(out, 4)?;
    let entry = ctx.fd(fd)?;
    let file = regular_file(&entry)?;
    entry.require(rights::FD_READ | rights::FD_SEEK)?;
    let mut at = u64::try_from(offset).map_err(|_| errno::INVAL)?;
    let mut total = 0u32;
    let mut iovs = mem.iovecs(iovs, count)?;
    while let Some((buf, len)) = iovs.next(mem)? {
        let n = mem.fill(buf, len, |out| Ok::<_, Failure>(file.read_at(out, at)?))?;
        total += n as u32;
        at += n as u64;
        if n < len as usize {
            break;
        }
    }
    Ok(mem.put_u32(out, total)?)
}

pub(crate) fn pwrite(
    ctx: &WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    iovs: i32,
    count: i32,
    offset: i64,
    out: i32,
) -> Ret {
    mem.slice(out, 4)?;
    let entry = ctx.fd(fd)?;
    let file = regular_file(&entry)?;
    entry.require(rights::FD_WRITE | rights::FD_SEEK)?;
    let mut at = u64::try_from(offset).map_err(|_| errno::INVAL)?;
    let mut total = 0u32;
    let mut iovs = mem.iovecs(iovs, count)?;
    while let Some((buf, len)) = iovs.next(mem)? {
        let n = file.write_at(&mem.slice(buf, len)?, at)?;
        total += n as u32;
        at += n as u64;
        if n < len as usize {
            break;
        }
    }
    Ok(mem.put_u32(out, total)?)
}

pub(crate) fn read(
    ctx: &WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    iovs: i32,
    count: i32,
    out: i32,
) -> Ret {
    mem.slice(out, 4)?;
    let entry = ctx.fd(fd)?;
    entry.require(rights::FD_READ)?;
    let iovs = mem.iovecs(iovs, count)?;
    let n = io::read_vectored(ctx, &entry, mem, iovs)?;
    Ok(mem.put_u32(out, n as u32)?)
}

pub(crate) fn write(
    ctx: &WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    iovs: i32,
    count: i32,
    out: i32,
) -> Ret {
    mem.slice(out, 4)?;
    let entry = ctx.fd(fd)?;
    entry.require(rights::FD_WRITE)?;
    let iovs = mem.iovecs(iovs, count)?;
    let n = io::write_vectored(ctx, &entry, mem, iovs)?;
    Ok(mem.put_u32(out, n as u32)?)
}

fn preopen_name(entry: &FdEntry) -> Result<&str, Errno> {
    match &entry.kind {
        FdKind::Dir {
            preopen: Some(name),
            ..
        } => Ok(name),
        _ => Err(errno::BADF),
    }
}

pub(crate) fn prestat_get(ctx: &WasiCtx, mem: &mut GuestMemory<'_>, fd: i32, out: i32) -> Ret {
    let entry = ctx.fd(fd)?;
    let name = preopen_name(&entry)?;
    // prestat: tag 0 (directory), then the name's length.
    mem.put_u32(out, 0)?;
    Ok(mem.put_u32(out.wrapping_add(4), name.len() as u32)?)
}

pub(crate) fn prestat_dir_name(
    ctx: &WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    buf: i32,
    len: i32,
) -> Ret {
    let entry = ctx.fd(fd)?;
    let name = preopen_name(&entry)?;
    if (len as u32 as usize) < name.len() {
        return Err(errno::NAMETOOLONG.into());
    }
    Ok(mem.write(buf, name.as_bytes())?)
}

pub(crate) fn renumber(ctx: &WasiCtx, from: i32, to: i32) -> Ret {
    let mut fds = ctx.fds.write().unwrap();
    if !fds.contains_key(&(from as u32)) || !fds.contains_key(&(to as u32)) {
        return Err(errno::BADF.into());
    }
    if from != to {
        let entry = fds.remove(&(from as u32)).expect("checked above");
        fds.insert(to as u32, entry);
    }
    Ok(())
}

pub(crate) fn seek(
    ctx: &WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    offset: i64,
    whence: i32,
    out: i32,
) -> Ret {
    mem.slice(out, 8)?;
    let entry = ctx.fd(fd)?;
    let file = match &entry.kind {
        FdKind::File(f) => f,
        FdKind::Dir { .. } => return Err(errno::BADF.into()),
        _ => return Err(errno::SPIPE.into()),
    };
    // Asking for the position only needs FD_TELL.
    let needed = if offset == 0 && whence == 1 {
        rights::FD_TELL
    } else {
        rights::FD_SEEK
    };
    if entry.require(needed).is_err() {
        entry.require(rights::FD_SEEK)?;
    }
    let position = match whence {
        0 => SeekFrom::Start(u64::try_from(offset).map_err(|_| errno::INVAL)?),
        1 => SeekFrom::Current(offset),
        2 => SeekFrom::End(offset),
        _ => return Err(errno::INVAL.into()),
    };
    Ok(mem.put_u64(out, (&*file).seek(position)?)?)
}

pub(crate) fn tell(ctx: &WasiCtx, mem: &mut GuestMemory<'_>, fd: i32, out: i32) -> Ret {
    let entry = ctx.fd(fd)?;
    let file = match &entry.kind {
        FdKind::File(f) => f,
        FdKind::Dir { .. } => return Err(errno::BADF.into()),
        _ => return Err(errno::SPIPE.into()),
    };
    if entry.require(rights::FD_TELL).is_err() {
        entry.require(rights::FD_SEEK)?;
    }
    Ok(mem.put_u64(out, (&*file).stream_position()?)?)
}

/// `fd_readdir`: entries are listed sorted by name after `.` and `..`; a cookie is
/// the position of the next entry in that list. The last entry written may be cut
/// off at the end of the buffer (the guest then asks again with a larger one).
pub(crate) fn readdir(
    ctx: &WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: i32,
    buf: i32,
    len: i32,
    cookie: i64,
    used: i32,
) -> Ret {
    let entry = ctx.fd(fd)?;
    let FdKind::Dir { dir, .. } = &entry.kind else {
        return Err(errno::NOTDIR.into());
    };
    entry.require(rights::FD_READDIR)?;
    let capacity = len as u32;
    mem.slice(buf, capacity)?;
    mem.slice(used, 4)?;
    let mut entries: Vec<(u64, u8, Vec<u8>)> = Vec::new();
    entries.push((dir.metadata()?.ino(), filetype::DIRECTORY, b".".to_vec()));
    let parent = sys::fstatat(dir, "..", false).map_or(0, |st| st.st_ino);
    entries.push((parent, filetype::DIRECTORY, b"..".to_vec()));
    let mut listed: Vec<(u64, u8, Vec<u8>)> = std::fs::read_dir(sys::fd_path(dir))?
        .filter_map(|e| e.ok())
        .map(|e| {
            use std::os::unix::ffi::OsStrExt;
            use std::os::unix::fs::DirEntryExt;
            let kind = e.file_type().map_or(filetype::UNKNOWN, filetype_of_dirent);
            (e.ino(), kind, e.file_name().as_bytes().to_vec())
        })
        .collect();
    listed.sort_by(|a, b| a.2.cmp(&b.2));
    entries.extend(listed);
    let capacity = capacity as usize;
    let mut out = Vec::with_capacity(capacity.min(64 * 1024));
    let skip = usize::try_from(cookie as u64).unwrap_or(usize::MAX);
    for (i, (ino, kind, name)) in entries.iter().enumerate().skip(skip) {
        if out.len() >= capacity {
            break;
        }
        let mut header = [0u8; 24];
        header[0..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        header[8..16].copy_from_slice(&ino.to_le_bytes());
        header[16..20].copy_from_slice(&(name.len() as u32).to_le_bytes());
        header[20] = *kind;
        out.extend_from_slice(&header);
        out.extend_from_slice(name);
    }
    out.truncate(capacity);
    mem.write(buf, &out)?;
    Ok(mem.put_u32(used, out.len() as u32)?)
}
