//! The `wasi_snapshot_preview1` functions.

use crate::errno::{self, Errno};
use crate::path::{self, Resolved};
use crate::{FdEntry, FdKind, I32Exit, WasiCtx, sys};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wazerox::{Caller, Error, Extern, Linker};

const MODULE: &str = "wasi_snapshot_preview1";

type Result<T, E = Errno> = std::result::Result<T, E>;

/// Guest memory with bounds-checked accessors (out of range = `FAULT`).
struct Mem<'a>(&'a mut [u8]);

impl Mem<'_> {
    fn slice(&self, ptr: i32, len: u32) -> Result<&[u8]> {
        let start = ptr as u32 as usize;
        self.0
            .get(start..start.checked_add(len as usize).ok_or(errno::FAULT)?)
            .ok_or(errno::FAULT)
    }
    fn slice_mut(&mut self, ptr: i32, len: u32) -> Result<&mut [u8]> {
        let start = ptr as u32 as usize;
        let end = start.checked_add(len as usize).ok_or(errno::FAULT)?;
        self.0.get_mut(start..end).ok_or(errno::FAULT)
    }
    fn read<const N: usize>(&self, ptr: i32) -> Result<[u8; N]> {
        Ok(self.slice(ptr, N as u32)?.try_into().unwrap())
    }
    fn u32(&self, ptr: i32) -> Result<u32> {
        Ok(u32::from_le_bytes(self.read(ptr)?))
    }
    fn u64(&self, ptr: i32) -> Result<u64> {
        Ok(u64::from_le_bytes(self.read(ptr)?))
    }
    fn write(&mut self, ptr: i32, bytes: &[u8]) -> Result<()> {
        self.slice_mut(ptr, bytes.len() as u32)?
            .copy_from_slice(bytes);
        Ok(())
    }
    fn put_u8(&mut self, ptr: i32, v: u8) -> Result<()> {
        self.write(ptr, &[v])
    }
    fn put_u32(&mut self, ptr: i32, v: u32) -> Result<()> {
        self.write(ptr, &v.to_le_bytes())
    }
    fn put_u64(&mut self, ptr: i32, v: u64) -> Result<()> {
        self.write(ptr, &v.to_le_bytes())
    }
    fn string(&self, ptr: i32, len: i32) -> Result<String> {
        String::from_utf8(self.slice(ptr, len as u32)?.to_vec()).map_err(|_| errno::ILSEQ)
    }
    /// `(buf, len)` pairs of an iovec array.
    fn iovecs(&self, ptr: i32, count: i32) -> Result<Vec<(i32, u32)>> {
        (0..count as u32)
            .map(|i| {
                let at = ptr.wrapping_add((i * 8) as i32);
                Ok((self.u32(at)? as i32, self.u32(at.wrapping_add(4))?))
            })
            .collect()
    }
}

/// Runs a WASI function body with the context and guest memory, turning its
/// outcome into an errno.
fn with<T>(
    caller: &mut Caller<'_, T>,
    get: impl Fn(&T) -> &Arc<WasiCtx>,
    body: impl FnOnce(&WasiCtx, &mut Mem<'_>) -> Result<()>,
) -> i32 {
    let ctx = get(caller.data()).clone();
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return errno::NOSYS.0 as i32;
    };
    let mut mem = Mem(memory.data_mut(caller));
    match body(&ctx, &mut mem) {
        Ok(()) => 0,
        Err(e) => e.0 as i32,
    }
}

fn filetype(mode: u32) -> u8 {
    match mode & libc::S_IFMT {
        libc::S_IFBLK => 1,
        libc::S_IFCHR => 2,
        libc::S_IFDIR => 3,
        libc::S_IFREG => 4,
        libc::S_IFSOCK => 6,
        libc::S_IFLNK => 7,
        _ => 0,
    }
}

fn write_filestat(mem: &mut Mem<'_>, ptr: i32, st: &std::fs::Metadata) -> Result<()> {
    let mut buf = [0u8; 64];
    buf[0..8].copy_from_slice(&st.dev().to_le_bytes());
    buf[8..16].copy_from_slice(&st.ino().to_le_bytes());
    buf[16] = filetype(st.mode());
    buf[24..32].copy_from_slice(&st.nlink().to_le_bytes());
    buf[32..40].copy_from_slice(&st.size().to_le_bytes());
    let ns = |s: i64, n: i64| {
        (s as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(n as u64)
    };
    buf[40..48].copy_from_slice(&ns(st.atime(), st.atime_nsec()).to_le_bytes());
    buf[48..56].copy_from_slice(&ns(st.mtime(), st.mtime_nsec()).to_le_bytes());
    buf[56..64].copy_from_slice(&ns(st.ctime(), st.ctime_nsec()).to_le_bytes());
    mem.write(ptr, &buf)
}

fn write_stat(mem: &mut Mem<'_>, ptr: i32, st: &libc::stat) -> Result<()> {
    let mut buf = [0u8; 64];
    buf[0..8].copy_from_slice(&(st.st_dev).to_le_bytes());
    buf[8..16].copy_from_slice(&(st.st_ino).to_le_bytes());
    buf[16] = filetype(st.st_mode);
    buf[24..32].copy_from_slice(&(st.st_nlink).to_le_bytes());
    buf[32..40].copy_from_slice(&(st.st_size as u64).to_le_bytes());
    let ns = |s: i64, n: i64| {
        (s as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(n as u64)
    };
    buf[40..48].copy_from_slice(&ns(st.st_atime, st.st_atime_nsec).to_le_bytes());
    buf[48..56].copy_from_slice(&ns(st.st_mtime, st.st_mtime_nsec).to_le_bytes());
    buf[56..64].copy_from_slice(&ns(st.st_ctime, st.st_ctime_nsec).to_le_bytes());
    mem.write(ptr, &buf)
}

fn file_of(entry: &FdEntry) -> Result<&File> {
    match &entry.kind {
        FdKind::File(f) => Ok(f),
        FdKind::Dir { dir, .. } => Ok(dir),
        _ => Err(errno::BADF),
    }
}

fn dir_of(entry: &FdEntry) -> Result<&File> {
    match &entry.kind {
        FdKind::Dir { dir, .. } => Ok(dir),
        _ => Err(errno::NOTDIR),
    }
}

fn writable_dir(entry: &FdEntry) -> Result<&File> {
    let dir = dir_of(entry)?;
    if entry.read_only {
        return Err(errno::ROFS);
    }
    Ok(dir)
}

fn resolve_at(
    ctx: &WasiCtx,
    fd: i32,
    mem: &Mem<'_>,
    ptr: i32,
    len: i32,
    follow: bool,
) -> Result<(Arc<FdEntry>, Resolved)> {
    let entry = ctx.fd(fd)?;
    let path = mem.string(ptr, len)?;
    let resolved = path::resolve(dir_of(&entry)?, &path, follow)?;
    Ok((entry, resolved))
}

/// Resolves a path (not following a final symlink) under a writable directory and
/// applies `change` to its parent and final name.
fn modify_at(
    ctx: &WasiCtx,
    mem: &Mem<'_>,
    fd: i32,
    ptr: i32,
    len: i32,
    change: impl FnOnce(&File, &str) -> std::io::Result<()>,
) -> Result<()> {
    let (entry, r) = resolve_at(ctx, fd, mem, ptr, len, false)?;
    writable_dir(&entry)?;
    change(&r.dir, &r.name)?;
    Ok(())
}

fn timestamp(clock: i32) -> Result<u64> {
    Ok(match clock {
        0 => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| errno::IO)?
            .as_nanos() as u64,
        1 => {
            static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
            ORIGIN
                .get_or_init(std::time::Instant::now)
                .elapsed()
                .as_nanos() as u64
                + 1
        }
        2 => sys::cpu_time(false),
        3 => sys::cpu_time(true),
        _ => return Err(errno::INVAL),
    })
}

fn read_into(entry: &FdEntry, buf: &mut [u8], offset: Option<u64>) -> Result<usize> {
    Ok(match (&entry.kind, offset) {
        (FdKind::Stdin(input), None) => input.read(buf)?,
        (FdKind::File(file), None) => (&*file).read(buf)?,
        (FdKind::File(file), Some(at)) => file.read_at(buf, at)?,
        (FdKind::Dir { .. }, _) => return Err(errno::ISDIR),
        (FdKind::Stdin(_), Some(_)) => return Err(errno::SPIPE),
        (FdKind::Stdout(_), _) => return Err(errno::BADF),
    })
}

fn write_from(entry: &FdEntry, buf: &[u8], offset: Option<u64>) -> Result<usize> {
    Ok(match (&entry.kind, offset) {
        (FdKind::Stdout(output), None) => output.write(buf)?,
        (FdKind::File(file), None) => (&*file).write(buf)?,
        (FdKind::File(file), Some(at)) => file.write_at(buf, at)?,
        (FdKind::Dir { .. }, _) => return Err(errno::ISDIR),
        (FdKind::Stdout(_), Some(_)) => return Err(errno::SPIPE),
        (FdKind::Stdin(_), _) => return Err(errno::BADF),
    })
}

/// Defines every `wasi_snapshot_preview1` function in `linker`. `get` finds the
/// program's context in the store's data.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: impl Fn(&T) -> &Arc<WasiCtx> + Send + Sync + Copy + 'static,
) -> Result<(), Error> {
    macro_rules! wasi {
        ($name:literal, |$ctx:ident, $mem:ident $(, $arg:ident : $ty:ty)*| $body:expr) => {
            linker.func_wrap(MODULE, $name, move |mut caller: Caller<'_, T>, $($arg: $ty),*| -> i32 {
                #[allow(unused_variables, unused_mut)]
                with(&mut caller, get, |$ctx, $mem| $body)
            })?;
        };
    }

    wasi!("args_sizes_get", |ctx, mem, count: i32, size: i32| {
        mem.put_u32(count, ctx.args.len() as u32)?;
        mem.put_u32(size, ctx.args.iter().map(|a| a.len() as u32 + 1).sum())
    });
    wasi!("args_get", |ctx, mem, argv: i32, buf: i32| {
        let mut at = buf;
        for (i, arg) in ctx.args.iter().enumerate() {
            mem.put_u32(argv.wrapping_add(4 * i as i32), at as u32)?;
            mem.write(at, arg.as_bytes())?;
            mem.put_u8(at.wrapping_add(arg.len() as i32), 0)?;
            at = at.wrapping_add(arg.len() as i32 + 1);
        }
        Ok(())
    });
    wasi!("environ_sizes_get", |ctx, mem, count: i32, size: i32| {
        mem.put_u32(count, ctx.env.len() as u32)?;
        mem.put_u32(
            size,
            ctx.env
                .iter()
                .map(|(k, v)| (k.len() + v.len() + 2) as u32)
                .sum(),
        )
    });
    wasi!("environ_get", |ctx, mem, environ: i32, buf: i32| {
        let mut at = buf;
        for (i, (k, v)) in ctx.env.iter().enumerate() {
            let entry = format!("{k}={v}\0");
            mem.put_u32(environ.wrapping_add(4 * i as i32), at as u32)?;
            mem.write(at, entry.as_bytes())?;
            at = at.wrapping_add(entry.len() as i32);
        }
        Ok(())
    });
    wasi!("clock_res_get", |ctx, mem, clock: i32, out: i32| {
        timestamp(clock)?;
        mem.put_u64(out, 1)
    });
    wasi!("clock_time_get", |ctx,
                             mem,
                             clock: i32,
                             _precision: i64,
                             out: i32| {
        mem.put_u64(out, timestamp(clock)?)
    });
    wasi!("random_get", |ctx, mem, buf: i32, len: i32| {
        let out = mem.slice_mut(buf, len as u32)?;
        File::open("/dev/urandom")?.read_exact(out)?;
        Ok(())
    });
    linker.func_wrap(MODULE, "proc_exit", |code: i32| -> Result<(), Error> {
        Err(Error::new(I32Exit(code)))
    })?;
    // Delivering signals to a WASI program has no meaning in preview1 hosts: no
    // handler can be installed by the guest.
    wasi!("proc_raise", |ctx, mem, _signal: i32| Err(errno::NOSYS));
    wasi!("sched_yield", |ctx, mem| {
        std::thread::yield_now();
        Ok(())
    });

    wasi!("fd_write", |ctx,
                       mem,
                       fd: i32,
                       iovs: i32,
                       count: i32,
                       written: i32| {
        let entry = ctx.fd(fd)?;
        let mut total = 0u32;
        for (buf, len) in mem.iovecs(iovs, count)? {
            let data = mem.slice(buf, len)?;
            let mut done = 0;
            while done < data.len() {
                let n = write_from(&entry, &data[done..], None)?;
                if n == 0 {
                    break;
                }
                done += n;
            }
            total += done as u32;
        }
        mem.put_u32(written, total)
    });
    wasi!("fd_pwrite", |ctx,
                        mem,
                        fd: i32,
                        iovs: i32,
                        count: i32,
                        offset: i64,
                        written: i32| {
        let entry = ctx.fd(fd)?;
        let mut total = 0u64;
        for (buf, len) in mem.iovecs(iovs, count)? {
            let n = write_from(&entry, mem.slice(buf, len)?, Some(offset as u64 + total))?;
            total += n as u64;
            if n < len as usize {
                break;
            }
        }
        mem.put_u32(written, total as u32)
    });
    wasi!("fd_read", |ctx,
                      mem,
                      fd: i32,
                      iovs: i32,
                      count: i32,
                      read: i32| {
        let entry = ctx.fd(fd)?;
        let mut total = 0u32;
        for (buf, len) in mem.iovecs(iovs, count)? {
            let n = read_into(&entry, mem.slice_mut(buf, len)?, None)?;
            total += n as u32;
            if n < len as usize {
                break;
            }
        }
        mem.put_u32(read, total)
    });
    wasi!("fd_pread", |ctx,
                       mem,
                       fd: i32,
                       iovs: i32,
                       count: i32,
                       offset: i64,
                       read: i32| {
        let entry = ctx.fd(fd)?;
        let mut total = 0u64;
        for (buf, len) in mem.iovecs(iovs, count)? {
            let n = read_into(
                &entry,
                mem.slice_mut(buf, len)?,
                Some(offset as u64 + total),
            )?;
            total += n as u64;
            if n < len as usize {
                break;
            }
        }
        mem.put_u32(read, total as u32)
    });
    wasi!("fd_close", |ctx, mem, fd: i32| {
        ctx.fds
            .lock()
            .unwrap()
            .remove(&(fd as u32))
            .map(drop)
            .ok_or(errno::BADF)
    });
    wasi!("fd_seek", |ctx,
                      mem,
                      fd: i32,
                      offset: i64,
                      whence: i32,
                      out: i32| {
        let entry = ctx.fd(fd)?;
        let FdKind::File(file) = &entry.kind else {
            return Err(if matches!(entry.kind, FdKind::Dir { .. }) {
                errno::BADF
            } else {
                errno::SPIPE
            });
        };
        let position = match whence {
            0 => SeekFrom::Start(u64::try_from(offset).map_err(|_| errno::INVAL)?),
            1 => SeekFrom::Current(offset),
            2 => SeekFrom::End(offset),
            _ => return Err(errno::INVAL),
        };
        mem.put_u64(out, (&*file).seek(position)?)
    });
    wasi!("fd_tell", |ctx, mem, fd: i32, out: i32| {
        let entry = ctx.fd(fd)?;
        let FdKind::File(file) = &entry.kind else {
            return Err(errno::SPIPE);
        };
        mem.put_u64(out, (&*file).stream_position()?)
    });
    wasi!("fd_fdstat_get", |ctx, mem, fd: i32, out: i32| {
        let entry = ctx.fd(fd)?;
        let filetype = match &entry.kind {
            FdKind::Stdin(_) | FdKind::Stdout(_) => 2,
            FdKind::File(f) => filetype(f.metadata()?.mode()),
            FdKind::Dir { .. } => 3,
        };
        let mut buf = [0u8; 24];
        buf[0] = filetype;
        buf[2..4].copy_from_slice(&entry.flags.lock().unwrap().to_le_bytes());
        buf[8..16].copy_from_slice(&entry.rights_base.lock().unwrap().to_le_bytes());
        buf[16..24].copy_from_slice(&entry.rights_inheriting.lock().unwrap().to_le_bytes());
        mem.write(out, &buf)
    });
    wasi!("fd_fdstat_set_flags", |ctx, mem, fd: i32, flags: i32| {
        let entry = ctx.fd(fd)?;
        if let FdKind::File(file) = &entry.kind {
            let mut host = sys::status_flags(file)? & !(libc::O_APPEND | libc::O_NONBLOCK);
            if flags & 1 != 0 {
                host |= libc::O_APPEND;
            }
            if flags & 4 != 0 {
                host |= libc::O_NONBLOCK;
            }
            sys::set_status_flags(file, host)?;
        }
        *entry.flags.lock().unwrap() = flags as u16;
        Ok(())
    });
    wasi!(
        "fd_fdstat_set_rights",
        |ctx, mem, fd: i32, base: i64, inheriting: i64| {
            let entry = ctx.fd(fd)?;
            let (mut b, mut i) = (
                entry.rights_base.lock().unwrap(),
                entry.rights_inheriting.lock().unwrap(),
            );
            // Rights can only be dropped, never gained.
            if (base as u64) & !*b != 0 || (inheriting as u64) & !*i != 0 {
                return Err(errno::NOTCAPABLE);
            }
            *b = base as u64;
            *i = inheriting as u64;
            Ok(())
        }
    );
    wasi!("fd_filestat_get", |ctx, mem, fd: i32, out: i32| {
        let entry = ctx.fd(fd)?;
        match &entry.kind {
            FdKind::Stdin(_) | FdKind::Stdout(_) => {
                let mut buf = [0u8; 64];
                buf[16] = 2;
                mem.write(out, &buf)
            }
            _ => write_filestat(mem, out, &file_of(&entry)?.metadata()?),
        }
    });
    wasi!("fd_filestat_set_size", |ctx, mem, fd: i32, size: i64| {
        let entry = ctx.fd(fd)?;
        let FdKind::File(file) = &entry.kind else {
            return Err(errno::BADF);
        };
        file.set_len(size as u64)?;
        Ok(())
    });
    wasi!(
        "fd_filestat_set_times",
        |ctx, mem, fd: i32, atim: i64, mtim: i64, flags: i32| {
            let entry = ctx.fd(fd)?;
            let (a, m) = times(atim, mtim, flags)?;
            sys::futimens(file_of(&entry)?, a, m)?;
            Ok(())
        }
    );
    wasi!("fd_advise", |ctx,
                        mem,
                        fd: i32,
                        offset: i64,
                        len: i64,
                        advice: i32| {
        let entry = ctx.fd(fd)?;
        let advice = match advice {
            0 => libc::POSIX_FADV_NORMAL,
            1 => libc::POSIX_FADV_SEQUENTIAL,
            2 => libc::POSIX_FADV_RANDOM,
            3 => libc::POSIX_FADV_WILLNEED,
            4 => libc::POSIX_FADV_DONTNEED,
            5 => libc::POSIX_FADV_NOREUSE,
            _ => return Err(errno::INVAL),
        };
        let FdKind::File(file) = &entry.kind else {
            return Err(errno::BADF);
        };
        sys::fadvise(file, offset as u64, len as u64, advice)?;
        Ok(())
    });
    wasi!("fd_allocate", |ctx, mem, fd: i32, offset: i64, len: i64| {
        let entry = ctx.fd(fd)?;
        let FdKind::File(file) = &entry.kind else {
            return Err(errno::BADF);
        };
        sys::fallocate(file, offset as u64, len as u64)?;
        Ok(())
    });
    wasi!("fd_datasync", |ctx, mem, fd: i32| {
        let entry = ctx.fd(fd)?;
        file_of(&entry)?.sync_data()?;
        Ok(())
    });
    wasi!("fd_sync", |ctx, mem, fd: i32| {
        let entry = ctx.fd(fd)?;
        match &entry.kind {
            FdKind::Stdin(_) | FdKind::Stdout(_) => Ok(()),
            _ => Ok(file_of(&entry)?.sync_all()?),
        }
    });
    wasi!("fd_prestat_get", |ctx, mem, fd: i32, out: i32| {
        let entry = ctx.fd(fd)?;
        let FdKind::Dir {
            preopen: Some(name),
            ..
        } = &entry.kind
        else {
            return Err(errno::BADF);
        };
        mem.put_u32(out, 0)?;
        mem.put_u32(out.wrapping_add(4), name.len() as u32)
    });
    wasi!(
        "fd_prestat_dir_name",
        |ctx, mem, fd: i32, buf: i32, len: i32| {
            let entry = ctx.fd(fd)?;
            let FdKind::Dir {
                preopen: Some(name),
                ..
            } = &entry.kind
            else {
                return Err(errno::BADF);
            };
            if (len as u32 as usize) < name.len() {
                return Err(errno::NAMETOOLONG);
            }
            mem.write(buf, name.as_bytes())
        }
    );
    wasi!("fd_renumber", |ctx, mem, from: i32, to: i32| {
        let mut fds = ctx.fds.lock().unwrap();
        if !fds.contains_key(&(to as u32)) {
            return Err(errno::BADF);
        }
        let entry = fds.remove(&(from as u32)).ok_or(errno::BADF)?;
        fds.insert(to as u32, entry);
        Ok(())
    });
    wasi!("fd_readdir", |ctx,
                         mem,
                         fd: i32,
                         buf: i32,
                         len: i32,
                         cookie: i64,
                         used: i32| {
        let entry = ctx.fd(fd)?;
        let dir = dir_of(&entry)?;
        let mut entries: Vec<(u64, u8, Vec<u8>)> = Vec::new();
        let me = dir.metadata()?;
        entries.push((me.ino(), 3, b".".to_vec()));
        entries.push((me.ino(), 3, b"..".to_vec()));
        let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(dir));
        let mut listed: Vec<(u64, u8, Vec<u8>)> = std::fs::read_dir(proc_path)?
            .filter_map(|e| e.ok())
            .map(|e| {
                use std::os::unix::ffi::OsStrExt;
                use std::os::unix::fs::DirEntryExt;
                let kind = e.file_type().map_or(0, |t| {
                    if t.is_dir() {
                        3
                    } else if t.is_file() {
                        4
                    } else if t.is_symlink() {
                        7
                    } else {
                        0
                    }
                });
                (e.ino(), kind, e.file_name().as_bytes().to_vec())
            })
            .collect();
        listed.sort_by(|a, b| a.2.cmp(&b.2));
        entries.extend(listed);
        let capacity = len as u32 as usize;
        let mut out = Vec::with_capacity(capacity);
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(cookie as usize) {
            let mut header = [0u8; 24];
            header[0..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            header[8..16].copy_from_slice(&ino.to_le_bytes());
            header[16..20].copy_from_slice(&(name.len() as u32).to_le_bytes());
            header[20] = *kind;
            out.extend_from_slice(&header);
            out.extend_from_slice(name);
            if out.len() >= capacity {
                break;
            }
        }
        out.truncate(capacity);
        mem.write(buf, &out)?;
        mem.put_u32(used, out.len() as u32)
    });

    wasi!("path_open", |ctx,
                        mem,
                        fd: i32,
                        lookup: i32,
                        path_ptr: i32,
                        path_len: i32,
                        oflags: i32,
                        base: i64,
                        _inheriting: i64,
                        fdflags: i32,
                        out: i32| {
        let (entry, Resolved { dir, name }) =
            resolve_at(ctx, fd, mem, path_ptr, path_len, lookup & 1 != 0)?;
        let wants_write =
            base as u64 & (1 << 6 | 1 << 22 | 1 << 9 | 1 << 4) != 0 || oflags & (1 | 8) != 0;
        let mut flags = libc::O_NOFOLLOW;
        flags |= if wants_write && !entry.read_only {
            libc::O_RDWR
        } else {
            libc::O_RDONLY
        };
        if wants_write && entry.read_only {
            return Err(errno::ROFS);
        }
        if oflags & 1 != 0 {
            flags |= libc::O_CREAT;
        }
        if oflags & 2 != 0 {
            flags |= libc::O_DIRECTORY;
        }
        if oflags & 4 != 0 {
            flags |= libc::O_EXCL;
        }
        if oflags & 8 != 0 {
            flags |= libc::O_TRUNC;
        }
        if fdflags & 1 != 0 {
            flags |= libc::O_APPEND;
        }
        if fdflags & 4 != 0 {
            flags |= libc::O_NONBLOCK;
        }
        let file = match sys::openat(&dir, &name, flags, 0o666) {
            // A directory cannot be opened for writing; retry read-only.
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {
                sys::openat(&dir, &name, flags & !libc::O_RDWR, 0)?
            }
            other => other?,
        };
        let kind = if file.metadata()?.is_dir() {
            FdKind::Dir {
                dir: file,
                preopen: None,
            }
        } else {
            FdKind::File(file)
        };
        let new = FdEntry::new(kind, entry.read_only);
        *new.flags.lock().unwrap() = fdflags as u16;
        mem.put_u32(out, ctx.insert(new)?)
    });
    wasi!(
        "path_create_directory",
        |ctx, mem, fd: i32, ptr: i32, len: i32| { modify_at(ctx, mem, fd, ptr, len, sys::mkdirat) }
    );
    wasi!(
        "path_remove_directory",
        |ctx, mem, fd: i32, ptr: i32, len: i32| {
            modify_at(ctx, mem, fd, ptr, len, |dir, name| {
                sys::unlinkat(dir, name, true)
            })
        }
    );
    wasi!(
        "path_unlink_file",
        |ctx, mem, fd: i32, ptr: i32, len: i32| {
            modify_at(ctx, mem, fd, ptr, len, |dir, name| {
                sys::unlinkat(dir, name, false)
            })
        }
    );
    wasi!(
        "path_filestat_get",
        |ctx, mem, fd: i32, lookup: i32, ptr: i32, len: i32, out: i32| {
            let (_, r) = resolve_at(ctx, fd, mem, ptr, len, lookup & 1 != 0)?;
            let st = sys::fstatat(&r.dir, &r.name, false)?;
            write_stat(mem, out, &st)
        }
    );
    wasi!(
        "path_filestat_set_times",
        |ctx, mem, fd: i32, lookup: i32, ptr: i32, len: i32, atim: i64, mtim: i64, flags: i32| {
            let (entry, r) = resolve_at(ctx, fd, mem, ptr, len, lookup & 1 != 0)?;
            writable_dir(&entry)?;
            let (a, m) = times(atim, mtim, flags)?;
            sys::utimensat(&r.dir, &r.name, a, m, false)?;
            Ok(())
        }
    );
    wasi!("path_rename", |ctx,
                          mem,
                          fd: i32,
                          old_ptr: i32,
                          old_len: i32,
                          new_fd: i32,
                          new_ptr: i32,
                          new_len: i32| {
        let (from_entry, from) = resolve_at(ctx, fd, mem, old_ptr, old_len, false)?;
        let (to_entry, to) = resolve_at(ctx, new_fd, mem, new_ptr, new_len, false)?;
        writable_dir(&from_entry)?;
        writable_dir(&to_entry)?;
        sys::renameat(&from.dir, &from.name, &to.dir, &to.name)?;
        Ok(())
    });
    wasi!("path_link", |ctx,
                        mem,
                        fd: i32,
                        lookup: i32,
                        old_ptr: i32,
                        old_len: i32,
                        new_fd: i32,
                        new_ptr: i32,
                        new_len: i32| {
        let (from_entry, from) = resolve_at(ctx, fd, mem, old_ptr, old_len, lookup & 1 != 0)?;
        let (to_entry, to) = resolve_at(ctx, new_fd, mem, new_ptr, new_len, false)?;
        writable_dir(&from_entry)?;
        writable_dir(&to_entry)?;
        sys::linkat(&from.dir, &from.name, &to.dir, &to.name)?;
        Ok(())
    });
    wasi!("path_symlink", |ctx,
                           mem,
                           old_ptr: i32,
                           old_len: i32,
                           fd: i32,
                           new_ptr: i32,
                           new_len: i32| {
        let target = mem.string(old_ptr, old_len)?;
        // A link whose target leaves the sandbox could never be followed, but it
        // would still expose a host path to other host programs: refuse it.
        if target.starts_with('/') {
            return Err(errno::NOTCAPABLE);
        }
        let (entry, r) = resolve_at(ctx, fd, mem, new_ptr, new_len, false)?;
        writable_dir(&entry)?;
        sys::symlinkat(&target, &r.dir, &r.name)?;
        Ok(())
    });
    wasi!("path_readlink", |ctx,
                            mem,
                            fd: i32,
                            ptr: i32,
                            len: i32,
                            buf: i32,
                            buf_len: i32,
                            used: i32| {
        let (_, r) = resolve_at(ctx, fd, mem, ptr, len, false)?;
        let target = sys::readlinkat(&r.dir, &r.name)?;
        let n = target.len().min(buf_len as u32 as usize);
        mem.write(buf, &target[..n])?;
        mem.put_u32(used, n as u32)
    });

    wasi!("poll_oneoff", |ctx,
                          mem,
                          input: i32,
                          output: i32,
                          count: i32,
                          events_out: i32| {
        poll_oneoff(ctx, mem, input, output, count, events_out)
    });

    for name in ["sock_accept", "sock_recv", "sock_send", "sock_shutdown"] {
        // No sockets can be preopened yet, so every descriptor is "not a socket"
        // (or not a descriptor at all).
        let arity = match name {
            "sock_accept" => 3,
            "sock_recv" => 6,
            "sock_send" => 5,
            _ => 2,
        };
        let ty =
            wazerox::FuncType::new(vec![wazerox::ValType::I32; arity], [wazerox::ValType::I32]);
        linker.func_new(MODULE, name, ty, move |caller, params, results| {
            let ctx = get(caller.data()).clone();
            let fd = params[0].i32().unwrap_or(-1);
            let code = match ctx.fd(fd) {
                Ok(_) => errno::NOTSOCK,
                Err(e) => e,
            };
            results[0] = wazerox::Val::I32(code.0 as i32);
            Ok(())
        })?;
    }
    Ok(())
}

fn times(atim: i64, mtim: i64, flags: i32) -> Result<(sys::TimeSpec, sys::TimeSpec)> {
    let pick = |value: i64, set: i32, now: i32| -> Result<sys::TimeSpec> {
        match (flags & set != 0, flags & now != 0) {
            (true, true) => Err(errno::INVAL),
            (true, false) => Ok(Some(Some(value as u64))),
            (false, true) => Ok(Some(None)),
            (false, false) => Ok(None),
        }
    };
    Ok((pick(atim, 1, 2)?, pick(mtim, 4, 8)?))
}

fn poll_oneoff(
    ctx: &WasiCtx,
    mem: &mut Mem<'_>,
    input: i32,
    output: i32,
    count: i32,
    events_out: i32,
) -> Result<()> {
    if count <= 0 {
        return Err(errno::INVAL);
    }
    struct Sub {
        userdata: u64,
        tag: u8,
        fd: i32,
        deadline: Option<std::time::Instant>,
    }
    let now = std::time::Instant::now();
    let mut subs = Vec::new();
    for i in 0..count {
        let at = input.wrapping_add(i * 48);
        let userdata = mem.u64(at)?;
        let tag = mem.read::<1>(at.wrapping_add(8))?[0];
        let mut sub = Sub {
            userdata,
            tag,
            fd: -1,
            deadline: None,
        };
        match tag {
            0 => {
                let clock = mem.u32(at.wrapping_add(16))? as i32;
                let timeout = mem.u64(at.wrapping_add(24))?;
                let flags = u16::from_le_bytes(mem.read(at.wrapping_add(40))?);
                let relative = if flags & 1 != 0 {
                    timeout.saturating_sub(timestamp(clock)?)
                } else {
                    timeout
                };
                sub.deadline = Some(now + Duration::from_nanos(relative));
            }
            1 | 2 => sub.fd = mem.u32(at.wrapping_add(16))? as i32,
            _ => return Err(errno::INVAL),
        }
        subs.push(sub);
    }
    // Descriptors: regular files are always ready; stdio backed by the host is
    // polled; in-memory streams are ready.
    let mut ready: Vec<(usize, Errno)> = Vec::new();
    let mut host_fds = Vec::new();
    for (i, sub) in subs.iter().enumerate() {
        if sub.tag == 0 {
            continue;
        }
        match ctx.fd(sub.fd) {
            Err(e) => ready.push((i, e)),
            Ok(entry) => match &entry.kind {
                FdKind::Stdin(crate::Input::Inherit) => host_fds.push((i, 0, false)),
                FdKind::Stdout(crate::Output::Inherit(fd)) => host_fds.push((i, *fd, true)),
                _ => ready.push((i, errno::SUCCESS)),
            },
        }
    }
    if ready.is_empty() {
        let earliest = subs.iter().filter_map(|s| s.deadline).min();
        let timeout_ms = earliest.map_or(-1, |d| {
            let ns = d
                .saturating_duration_since(std::time::Instant::now())
                .as_nanos();
            ns.div_ceil(1_000_000).min(i32::MAX as u128) as i32
        });
        if host_fds.is_empty() {
            if let Some(d) = earliest {
                std::thread::sleep(d.saturating_duration_since(std::time::Instant::now()));
            }
        } else {
            let fds: Vec<(i32, bool)> = host_fds.iter().map(|&(_, fd, w)| (fd, w)).collect();
            let revents = sys::poll(&fds, timeout_ms)?;
            for ((i, _, _), r) in host_fds.iter().zip(revents) {
                if r != 0 {
                    ready.push((*i, errno::SUCCESS));
                }
            }
        }
    }
    let after = std::time::Instant::now();
    let mut written = 0;
    for (i, sub) in subs.iter().enumerate() {
        let fired = match sub.deadline {
            Some(d) => d <= after && ready.is_empty(),
            None => false,
        };
        let fd_event = ready.iter().find(|(j, _)| *j == i);
        if !fired && fd_event.is_none() {
            continue;
        }
        let at = output.wrapping_add(written * 32);
        let mut event = [0u8; 32];
        event[0..8].copy_from_slice(&sub.userdata.to_le_bytes());
        if let Some((_, e)) = fd_event {
            event[8..10].copy_from_slice(&e.0.to_le_bytes());
        }
        event[10] = sub.tag;
        mem.write(at, &event)?;
        written += 1;
    }
    mem.put_u32(events_out, written as u32)
}
