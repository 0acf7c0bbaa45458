//! `add_to_linker`: every `wasi_snapshot_preview1` function, and the small ones
//! (args, environment, clocks, randomness, process) themselves. Descriptor calls
//! live in `fd.rs`, path calls in `fs.rs`, `poll_oneoff` in `poll.rs`, sockets in
//! `sock.rs`.

use crate::clock::{self, ClockId};
use crate::errno::{self, Failure};
use crate::fd::Ret;
use crate::memory::{ExportedMemory, GuestMemory};
use crate::{Cancelled, I32Exit, WasiCtx, fd, fs, poll, sock};
use std::fs::File;
use std::io::Read;
use std::sync::{Arc, OnceLock};
use wazerox::{Caller, Error, Linker};

const MODULE: &str = "wasi_snapshot_preview1";

/// Runs a WASI function body with the program's context and the caller's memory;
/// an errno becomes the function's result, cancellation ends the call.
pub(crate) fn with<T>(
    caller: &mut Caller<'_, T>,
    get: impl Fn(&T) -> &Arc<WasiCtx>,
    body: impl FnOnce(&WasiCtx, &mut GuestMemory<'_>) -> Ret,
) -> Result<i32, Error> {
    // A clone, so the context stays usable while the memory borrows the caller.
    let ctx = get(caller.data()).clone();
    let Some(memory) = ExportedMemory::of(caller) else {
        return Err(Error::msg(
            "a WASI function was called by a module that exports no memory named `memory`",
        ));
    };
    let deadline = caller.interrupt_handle();
    let mut mem = memory.guest(caller);
    let result = crate::ctx::watching_deadline(deadline.clone(), || body(&ctx, &mut mem));
    match result {
        Ok(()) => Ok(0),
        Err(Failure::Errno(e)) => Ok(e.0 as i32),
        // A store stopped by its deadline (`--timeout`, an embedder's epoch
        // deadline) ends as its code would: with the `Interrupt` trap, also when
        // the wait ended because the host cancelled the program at the same time.
        Err(Failure::Cancelled) if deadline.deadline_reached() => Err(Error::interrupt()),
        Err(Failure::Cancelled) => Err(Error::new(Cancelled)),
        Err(Failure::Interrupted) => Err(Error::interrupt()),
    }
}

fn args_sizes_get(ctx: &WasiCtx, mem: &mut GuestMemory<'_>, count: i32, size: i32) -> Ret {
    mem.put_u32(count, ctx.args.len() as u32)?;
    let bytes: usize = ctx.args.iter().map(|a| a.len() + 1).sum();
    Ok(mem.put_u32(size, bytes as u32)?)
}

/// Writes NUL-terminated `strings` at `buf` and pointers to them at `pointers`.
fn put_strings(
    mem: &mut GuestMemory<'_>,
    strings: impl Iterator<Item = Vec<u8>>,
    pointers: i32,
    buf: i32,
) -> Ret {
    let mut at = buf;
    for (i, mut s) in strings.enumerate() {
        s.push(0);
        mem.put_u32(pointers.wrapping_add(4 * i as i32), at as u32)?;
        mem.write(at, &s)?;
        at = at.wrapping_add(s.len() as i32);
    }
    Ok(())
}

fn args_get(ctx: &WasiCtx, mem: &mut GuestMemory<'_>, argv: i32, buf: i32) -> Ret {
    put_strings(
        mem,
        ctx.args.iter().map(|a| a.as_bytes().to_vec()),
        argv,
        buf,
    )
}

fn environ_sizes_get(ctx: &WasiCtx, mem: &mut GuestMemory<'_>, count: i32, size: i32) -> Ret {
    mem.put_u32(count, ctx.env.len() as u32)?;
    let bytes: usize = ctx.env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    Ok(mem.put_u32(size, bytes as u32)?)
}

fn environ_get(ctx: &WasiCtx, mem: &mut GuestMemory<'_>, environ: i32, buf: i32) -> Ret {
    let entries = ctx.env.iter().map(|(k, v)| format!("{k}={v}").into_bytes());
    put_strings(mem, entries, environ, buf)
}

fn clock_res_get(mem: &mut GuestMemory<'_>, id: i32, out: i32) -> Ret {
    let resolution = clock::resolution(ClockId::from_wasi(id)?)?;
    Ok(mem.put_u64(out, resolution)?)
}

fn clock_time_get(mem: &mut GuestMemory<'_>, id: i32, out: i32) -> Ret {
    let now = clock::now(ClockId::from_wasi(id)?)?;
    Ok(mem.put_u64(out, now)?)
}

fn random_get(mem: &mut GuestMemory<'_>, buf: i32, len: i32) -> Ret {
    static URANDOM: OnceLock<std::io::Result<File>> = OnceLock::new();
    let urandom = URANDOM.get_or_init(|| File::open("/dev/urandom"));
    let mut source = urandom.as_ref().map_err(|_| errno::IO)?;
    mem.fill(buf, len as u32, |out| {
        source.read_exact(out)?;
        Ok::<_, Failure>(out.len())
    })?;
    Ok(())
}

/// Defines every `wasi_snapshot_preview1` function in `linker`. `get` finds the
/// program's context in the store's data.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: impl Fn(&T) -> &Arc<WasiCtx> + Send + Sync + Copy + 'static,
) -> Result<(), Error> {
    // `wasi!(name, function, params...)` defines `name` as a call of `function` with
    // the context, the memory and the parameters.
    macro_rules! wasi {
        ($name:literal, $function:expr $(, $arg:ident : $ty:ty)*) => {
            linker.func_wrap(
                MODULE,
                $name,
                move |mut caller: Caller<'_, T>, $($arg: $ty),*| -> Result<i32, Error> {
                    with(&mut caller, get, |ctx, mem| {
                        #[allow(clippy::redundant_closure_call, unused_variables)]
                        ($function)(ctx, mem $(, $arg)*)
                    })
                },
            )?;
        };
    }
    type Mem<'m, 'a> = &'m mut GuestMemory<'a>;

    wasi!("args_get", args_get, argv: i32, buf: i32);
    wasi!("args_sizes_get", args_sizes_get, count: i32, size: i32);
    wasi!("environ_get", environ_get, environ: i32, buf: i32);
    wasi!("environ_sizes_get", environ_sizes_get, count: i32, size: i32);
    wasi!("clock_res_get", |_, mem, id, out| clock_res_get(mem, id, out), id: i32, out: i32);
    wasi!(
        "clock_time_get",
        |_, mem, id, _precision: i64, out| clock_time_get(mem, id, out),
        id: i32, precision: i64, out: i32
    );
    wasi!("random_get", |_, mem, buf, len| random_get(mem, buf, len), buf: i32, len: i32);
    linker.func_wrap(MODULE, "proc_exit", |code: i32| -> Result<(), Error> {
        Err(Error::new(I32Exit(code)))
    })?;
    // Preview1 gives a guest no way to install a signal handler, so raising one
    // could only mean "terminate"; the spec leaves it out of later versions and we
    // do not emulate it.
    wasi!("proc_raise", |_, _: Mem, _signal: i32| Err(errno::NOSYS.into()), signal: i32);
    wasi!("sched_yield", |ctx, _: Mem| poll::sched_yield(ctx));

    wasi!("fd_advise", |ctx, _: Mem, fd, offset, len, advice| fd::advise(ctx, fd, offset, len, advice),
        fd: i32, offset: i64, len: i64, advice: i32);
    wasi!("fd_allocate", |ctx, _: Mem, fd, offset, len| fd::allocate(ctx, fd, offset, len),
        fd: i32, offset: i64, len: i64);
    wasi!("fd_close", |ctx, _: Mem, fd| fd::close(ctx, fd), fd: i32);
    wasi!("fd_datasync", |ctx, _: Mem, fd| fd::datasync(ctx, fd), fd: i32);
    wasi!("fd_fdstat_get", fd::fdstat_get, fd: i32, out: i32);
    wasi!("fd_fdstat_set_flags", |ctx, _: Mem, fd, flags| fd::fdstat_set_flags(ctx, fd, flags),
        fd: i32, flags: i32);
    wasi!("fd_fdstat_set_rights",
        |ctx, _: Mem, fd, base, inheriting| fd::fdstat_set_rights(ctx, fd, base, inheriting),
        fd: i32, base: i64, inheriting: i64);
    wasi!("fd_filestat_get", fd::filestat_get, fd: i32, out: i32);
    wasi!("fd_filestat_set_size", |ctx, _: Mem, fd, size| fd::filestat_set_size(ctx, fd, size),
        fd: i32, size: i64);
    wasi!("fd_filestat_set_times",
        |ctx, _: Mem, fd, atim, mtim, flags| fd::filestat_set_times(ctx, fd, atim, mtim, flags),
        fd: i32, atim: i64, mtim: i64, flags: i32);
    wasi!("fd_pread", fd::pread, fd: i32, iovs: i32, count: i32, offset: i64, out: i32);
    wasi!("fd_prestat_get", fd::prestat_get, fd: i32, out: i32);
    wasi!("fd_prestat_dir_name", fd::prestat_dir_name, fd: i32, buf: i32, len: i32);
    wasi!("fd_pwrite", fd::pwrite, fd: i32, iovs: i32, count: i32, offset: i64, out: i32);
    wasi!("fd_read", fd::read, fd: i32, iovs: i32, count: i32, out: i32);
    wasi!("fd_readdir", fd::readdir, fd: i32, buf: i32, len: i32, cookie: i64, out: i32);
    wasi!("fd_renumber", |ctx, _: Mem, from, to| fd::renumber(ctx, from, to), from: i32, to: i32);
    wasi!("fd_seek", fd::seek, fd: i32, offset: i64, whence: i32, out: i32);
    wasi!("fd_sync", |ctx, _: Mem, fd| fd::sync_all(ctx, fd), fd: i32);
    wasi!("fd_tell", fd::tell, fd: i32, out: i32);
    wasi!("fd_write", fd::write, fd: i32, iovs: i32, count: i32, out: i32);

    wasi!("path_create_directory", |ctx, mem: Mem, fd, ptr, len| fs::create_directory(ctx, mem, fd, ptr, len),
        fd: i32, ptr: i32, len: i32);
    wasi!("path_filestat_get", fs::filestat_get,
        fd: i32, lookup: i32, ptr: i32, len: i32, out: i32);
    wasi!("path_filestat_set_times",
        |ctx, mem: Mem, fd, lookup, ptr, len, atim, mtim, flags| {
            fs::filestat_set_times(ctx, mem, fd, lookup, ptr, len, atim, mtim, flags)
        },
        fd: i32, lookup: i32, ptr: i32, len: i32, atim: i64, mtim: i64, flags: i32);
    wasi!("path_link",
        |ctx, mem: Mem, fd, lookup, old_ptr, old_len, new_fd, new_ptr, new_len| {
            fs::link(ctx, mem, fd, lookup, old_ptr, old_len, new_fd, new_ptr, new_len)
        },
        fd: i32, lookup: i32, old_ptr: i32, old_len: i32, new_fd: i32, new_ptr: i32, new_len: i32);
    wasi!("path_open", fs::open,
        fd: i32, lookup: i32, ptr: i32, len: i32, oflags: i32, base: i64, inheriting: i64,
        fdflags: i32, out: i32);
    wasi!("path_readlink", fs::readlink,
        fd: i32, ptr: i32, len: i32, buf: i32, buf_len: i32, out: i32);
    wasi!("path_remove_directory", |ctx, mem: Mem, fd, ptr, len| fs::remove_directory(ctx, mem, fd, ptr, len),
        fd: i32, ptr: i32, len: i32);
    wasi!("path_rename",
        |ctx, mem: Mem, fd, old_ptr, old_len, new_fd, new_ptr, new_len| {
            fs::rename(ctx, mem, fd, old_ptr, old_len, new_fd, new_ptr, new_len)
        },
        fd: i32, old_ptr: i32, old_len: i32, new_fd: i32, new_ptr: i32, new_len: i32);
    wasi!("path_symlink",
        |ctx, mem: Mem, old_ptr, old_len, fd, new_ptr, new_len| {
            fs::symlink(ctx, mem, old_ptr, old_len, fd, new_ptr, new_len)
        },
        old_ptr: i32, old_len: i32, fd: i32, new_ptr: i32, new_len: i32);
    wasi!("path_unlink_file", |ctx, mem: Mem, fd, ptr, len| fs::unlink_file(ctx, mem, fd, ptr, len),
        fd: i32, ptr: i32, len: i32);

    wasi!("poll_oneoff", poll::poll_oneoff, input: i32, output: i32, count: i32, out: i32);

    wasi!("sock_accept", sock::accept, fd: i32, flags: i32, out: i32);
    wasi!("sock_recv", sock::recv,
        fd: i32, iovs: i32, count: i32, flags: i32, out_len: i32, out_flags: i32);
    wasi!("sock_send", sock::send, fd: i32, iovs: i32, count: i32, flags: i32, out_len: i32);
    wasi!("sock_shutdown", |ctx, _: Mem, fd, how| sock::shutdown(ctx, fd, how), fd: i32, how: i32);
    Ok(())
}
