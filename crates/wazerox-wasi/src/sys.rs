//! Thin wrappers over the `*at` system calls that sandboxed path resolution needs
//! (std has no `openat`). All `unsafe` of this crate lives here.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `openat(dir, name, flags | O_CLOEXEC, mode)`.
pub fn openat(dir: &File, name: &str, flags: libc::c_int, mode: libc::mode_t) -> io::Result<File> {
    let name = c_name(name)?;
    // SAFETY: `name` is NUL-terminated; the returned descriptor is owned by the File.
    unsafe {
        let fd = check(libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        ))?;
        Ok(File::from_raw_fd(fd))
    }
}

/// The target of the symbolic link `name` in `dir`.
pub fn readlinkat(dir: &File, name: &str) -> io::Result<Vec<u8>> {
    let name = c_name(name)?;
    let mut buffer = vec![0u8; 4096];
    // SAFETY: the buffer is writable for its length.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buffer.truncate(n as usize);
    Ok(buffer)
}

/// `fstatat`, optionally not following a final symbolic link.
pub fn fstatat(dir: &File, name: &str, follow: bool) -> io::Result<libc::stat> {
    let name = c_name(name)?;
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    // SAFETY: `stat` is plain data the kernel fills in.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        check(libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            flags,
        ))?;
        Ok(st)
    }
}

pub fn mkdirat(dir: &File, name: &str) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: plain system call on a NUL-terminated name.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o777) }).map(drop)
}

pub fn unlinkat(dir: &File, name: &str, remove_dir: bool) -> io::Result<()> {
    let name = c_name(name)?;
    let flags = if remove_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: plain system call on a NUL-terminated name.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(drop)
}

pub fn renameat(from_dir: &File, from: &str, to_dir: &File, to: &str) -> io::Result<()> {
    let (from, to) = (c_name(from)?, c_name(to)?);
    // SAFETY: plain system call on NUL-terminated names.
    check(unsafe {
        libc::renameat(
            from_dir.as_raw_fd(),
            from.as_ptr(),
            to_dir.as_raw_fd(),
            to.as_ptr(),
        )
    })
    .map(drop)
}

pub fn symlinkat(target: &str, dir: &File, name: &str) -> io::Result<()> {
    let (target, name) = (c_name(target)?, c_name(name)?);
    // SAFETY: plain system call on NUL-terminated names.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }).map(drop)
}

pub fn linkat(from_dir: &File, from: &str, to_dir: &File, to: &str) -> io::Result<()> {
    let (from, to) = (c_name(from)?, c_name(to)?);
    // SAFETY: plain system call on NUL-terminated names; never follows symlinks.
    check(unsafe {
        libc::linkat(
            from_dir.as_raw_fd(),
            from.as_ptr(),
            to_dir.as_raw_fd(),
            to.as_ptr(),
            0,
        )
    })
    .map(drop)
}

/// A timestamp for `utimensat`/`futimens`: `None` leaves it, `Some(None)` = now.
pub type TimeSpec = Option<Option<u64>>;

fn timespec(t: TimeSpec) -> libc::timespec {
    match t {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(None) => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Some(Some(ns)) => libc::timespec {
            tv_sec: (ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (ns % 1_000_000_000) as libc::c_long,
        },
    }
}

pub fn utimensat(
    dir: &File,
    name: &str,
    atime: TimeSpec,
    mtime: TimeSpec,
    follow: bool,
) -> io::Result<()> {
    let name = c_name(name)?;
    let times = [timespec(atime), timespec(mtime)];
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    // SAFETY: `times` is a two-element array as the call requires.
    check(unsafe { libc::utimensat(dir.as_raw_fd(), name.as_ptr(), times.as_ptr(), flags) })
        .map(drop)
}

pub fn futimens(file: &File, atime: TimeSpec, mtime: TimeSpec) -> io::Result<()> {
    let times = [timespec(atime), timespec(mtime)];
    // SAFETY: as for `utimensat`.
    check(unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) }).map(drop)
}

/// Replaces the descriptor's status flags (O_APPEND, O_NONBLOCK).
pub fn set_status_flags(file: &File, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    check(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags) }).map(drop)
}

pub fn status_flags(file: &File) -> io::Result<libc::c_int> {
    // SAFETY: fcntl on a descriptor we own.
    check(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) })
}

pub fn fallocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: posix_fallocate on a descriptor we own.
    let r = unsafe {
        libc::posix_fallocate(file.as_raw_fd(), offset as libc::off_t, len as libc::off_t)
    };
    if r != 0 {
        Err(io::Error::from_raw_os_error(r))
    } else {
        Ok(())
    }
}

pub fn fadvise(file: &File, offset: u64, len: u64, advice: libc::c_int) -> io::Result<()> {
    // SAFETY: posix_fadvise on a descriptor we own.
    let r = unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            offset as libc::off_t,
            len as libc::off_t,
            advice,
        )
    };
    if r != 0 {
        Err(io::Error::from_raw_os_error(r))
    } else {
        Ok(())
    }
}

/// Waits until one of `fds` is ready (or `timeout_ms` passes; -1 = forever);
/// returns their `revents`.
pub fn poll(fds: &[(i32, bool)], timeout_ms: i32) -> io::Result<Vec<i16>> {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, write)| libc::pollfd {
            fd,
            events: if write { libc::POLLOUT } else { libc::POLLIN },
            revents: 0,
        })
        .collect();
    // SAFETY: the array is valid for its length.
    check(unsafe {
        libc::poll(
            pollfds.as_mut_ptr(),
            pollfds.len() as libc::nfds_t,
            timeout_ms,
        )
    })?;
    Ok(pollfds.iter().map(|p| p.revents).collect())
}

fn timespec_nanos(ts: libc::timespec) -> u64 {
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// A clock's current value, in nanoseconds.
pub fn clock_time(clock: libc::clockid_t) -> io::Result<u64> {
    // SAFETY: the call only fills in the timespec it is given.
    unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        check(libc::clock_gettime(clock, &mut ts))?;
        Ok(timespec_nanos(ts))
    }
}

/// A clock's resolution, in nanoseconds.
pub fn clock_resolution(clock: libc::clockid_t) -> io::Result<u64> {
    // SAFETY: the call only fills in the timespec it is given.
    unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        check(libc::clock_getres(clock, &mut ts))?;
        Ok(timespec_nanos(ts))
    }
}

/// `fstat` of any host descriptor.
pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: `stat` is plain data the kernel fills in; a bad descriptor is EBADF.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        check(libc::fstat(fd, &mut st))?;
        Ok(st)
    }
}

/// How many bytes can be read from `fd` without blocking (sockets, pipes, ttys).
pub fn bytes_readable(fd: RawFd) -> io::Result<u64> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    check(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) })?;
    Ok(n.max(0) as u64)
}

/// A path that names the directory open as `dir` itself, wherever it was moved
/// (Linux's `/proc/self/fd`), for std APIs that only take paths.
pub fn fd_path(dir: &File) -> std::path::PathBuf {
    format!("/proc/self/fd/{}", dir.as_raw_fd()).into()
}

/// Borrows a process-wide descriptor (0, 1, 2) as a `File` without taking ownership.
pub fn borrow_stdio(fd: i32) -> std::mem::ManuallyDrop<File> {
    // SAFETY: stdio descriptors live for the whole process; ManuallyDrop never closes it.
    std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(fd) })
}
