//! WASIX process calls: `getcwd`, `chdir`, `proc_id`, `proc_parent`, and the
//! WASIX state a program keeps ([`WasixState`]).
//!
//! The working directory is a guest path, `/` at start. `chdir` resolves its
//! argument against it (lexically: `.` and `..` are folded, `..` stops at `/`) and
//! accepts it only if it names a directory inside a preopen (or is `/` itself):
//! it is what `getcwd` reports and what wasix-libc makes relative paths relative
//! to; host path resolution still starts from preopens only. `getcwd(buf, len)`
//! reads the buffer size at `len`, writes the path's length back there, and the
//! path with a NUL if it fits (`RANGE` otherwise).
//!
//! Every program gets its own process id, from 1000 up (unique in this host
//! process); it has no WASIX parent, so `proc_parent` of its own id is 0, and any
//! other id is `SRCH`.

use super::signal::{Signals, finish};
use crate::ctx::FdKind;
use crate::errno::{self, Failure};
use crate::fd::Ret;
use crate::memory::GuestMemory;
use crate::{WasiCtx, path, sys};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use wazerox::{Caller, Error, Linker};

/// Process id of the next program.
static NEXT_PID: AtomicU32 = AtomicU32::new(1000);

/// What WASIX adds to a program's context.
pub struct WasixState {
    pub(crate) pid: u32,
    pub(crate) cwd: Mutex<String>,
    pub(crate) signals: Signals,
}

impl Default for WasixState {
    fn default() -> Self {
        WasixState {
            pid: NEXT_PID.fetch_add(1, Ordering::Relaxed),
            cwd: Mutex::new("/".to_string()),
            signals: Signals::default(),
        }
    }
}

/// `path` made absolute against `cwd`, with `.`, `..` and repeated `/` folded.
fn absolute(cwd: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let start = if path.starts_with('/') { "" } else { cwd };
    for part in start.split('/').chain(path.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Whether the absolute guest path `dir` is a directory under one of the preopens.
fn is_directory(ctx: &WasiCtx, dir: &str) -> Result<bool, Failure> {
    if dir == "/" {
        return Ok(true);
    }
    let fds = ctx.fds.read().unwrap();
    for entry in fds.values() {
        let FdKind::Dir {
            dir: root,
            preopen: Some(name),
        } = &entry.kind
        else {
            continue;
        };
        let name = absolute("/", name);
        let rest = if dir == name {
            "."
        } else if let Some(rest) = dir.strip_prefix(&name).and_then(|r| r.strip_prefix('/')) {
            rest
        } else if name == "/" {
            &dir[1..]
        } else {
            continue;
        };
        let Ok(resolved) = path::resolve(root, rest, true) else {
            continue;
        };
        if let Ok(st) = sys::fstatat(&resolved.dir, &resolved.name, true) {
            return Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR);
        }
    }
    Ok(false)
}

fn chdir(ctx: &WasiCtx, mem: &mut GuestMemory<'_>, ptr: i32, len: i32) -> Ret {
    let path = mem.path(ptr, len)?;
    if path.is_empty() {
        return Err(errno::NOENT.into());
    }
    let target = absolute(&ctx.wasix.cwd.lock().unwrap(), &path);
    if !is_directory(ctx, &target)? {
        return Err(errno::NOENT.into());
    }
    *ctx.wasix.cwd.lock().unwrap() = target;
    Ok(())
}

fn getcwd(ctx: &WasiCtx, mem: &mut GuestMemory<'_>, buf: i32, len_ptr: i32) -> Ret {
    let size = mem.u32(len_ptr)? as usize;
    let cwd = ctx.wasix.cwd.lock().unwrap().clone();
    mem.put_u32(len_ptr, cwd.len() as u32)?;
    if cwd.len() + 1 > size {
        return Err(errno::RANGE.into());
    }
    mem.write(buf, cwd.as_bytes())?;
    Ok(mem.write(buf.wrapping_add(cwd.len() as i32), &[0])?)
}

pub(super) fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: impl Fn(&T) -> &Arc<WasiCtx> + Send + Sync + Copy + 'static,
) -> Result<(), Error> {
    const MODULE: &str = "wasix_32v1";
    macro_rules! wasix {
        ($name:literal, $body:expr $(, $arg:ident)*) => {
            linker.func_wrap(
                MODULE,
                $name,
                move |mut caller: Caller<'_, T>, $($arg: i32),*| -> Result<i32, Error> {
                    let result = crate::preview1::with(&mut caller, get, |ctx, mem| {
                        #[allow(clippy::redundant_closure_call)]
                        ($body)(ctx, mem $(, $arg)*)
                    });
                    finish(&mut caller, get, result)
                },
            )?;
        };
    }
    wasix!("getcwd", getcwd, buf, len);
    wasix!("chdir", chdir, ptr, len);
    wasix!(
        "proc_id",
        |ctx: &WasiCtx, mem: &mut GuestMemory<'_>, ret| -> Ret {
            Ok(mem.put_u32(ret, ctx.wasix.pid)?)
        },
        ret
    );
    wasix!(
        "proc_parent",
        |ctx: &WasiCtx, mem: &mut GuestMemory<'_>, pid: i32, ret| -> Ret {
            if pid as u32 != ctx.wasix.pid {
                return Err(errno::SRCH.into());
            }
            Ok(mem.put_u32(ret, 0)?)
        },
        pid,
        ret
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::absolute;

    #[test]
    fn paths_fold_against_the_working_directory() {
        assert_eq!(absolute("/", "a/b"), "/a/b");
        assert_eq!(absolute("/a", "../../x/./y/"), "/x/y");
        assert_eq!(absolute("/a/b", "/c//d/.."), "/c");
        assert_eq!(absolute("/a", ".."), "/");
    }
}
