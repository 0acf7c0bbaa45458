//! Sandboxed path resolution.
//!
//! A guest path is resolved component by component, starting from the directory
//! descriptor of a preopen (or a directory the guest opened under one), with
//! `openat(…, O_NOFOLLOW | O_DIRECTORY)`. Symbolic links are read and their targets
//! spliced into the remaining path by us, never by the kernel; `..` pops the stack of
//! directories we opened and may not pop the starting one. So absolute paths,
//! `..` past the root, and symlinks pointing outside (absolute, or relative and
//! climbing out, at any depth, dangling or looping) cannot reach a host path outside
//! the preopen: they fail with `NOTCAPABLE` (escapes) or `LOOP`/`NOENT`.

use crate::errno::{self, Errno};
use crate::sys;
use std::collections::VecDeque;
use std::fs::File;

/// Symbolic links followed while resolving one path.
const MAX_SYMLINKS: usize = 40;

/// Components (from the path and the symlink targets spliced into it) one
/// resolution goes through at most; beyond, `NAMETOOLONG`. A path within
/// `PATH_MAX` has at most 2048; this bounds the work of one call (each component
/// is a system call) whatever the links hold.
pub(crate) const MAX_COMPONENTS: usize = 4096;

/// The directory that contains a path's last component, and that component.
pub struct Resolved {
    pub dir: File,
    /// A single name (never containing `/`); `.` when the path named the starting
    /// directory itself or ended in `..`.
    pub name: String,
    /// The path ended with `/` or `/.`: its target must be a directory.
    pub must_be_dir: bool,
    /// How many directories `dir` is below the starting directory.
    pub depth: usize,
}

fn is_symlink(dir: &File, name: &str) -> bool {
    sys::fstatat(dir, name, false).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
}

/// Splices a symlink's target in front of the components still to resolve.
fn push_link(queue: &mut VecDeque<String>, target: &[u8]) -> Result<(), Errno> {
    let target = std::str::from_utf8(target).map_err(|_| errno::ILSEQ)?;
    if target.starts_with('/') {
        return Err(errno::NOTCAPABLE);
    }
    for component in target.split('/').rev() {
        if !component.is_empty() && component != "." {
            queue.push_front(component.to_string());
        }
    }
    Ok(())
}

/// Resolves `path` under `root`. With `follow_final` (or a trailing slash, as POSIX
/// has it), a final symlink is followed too, within the sandbox.
pub fn resolve(root: &File, path: &str, follow_final: bool) -> Result<Resolved, Errno> {
    if path.is_empty() {
        return Err(errno::NOENT);
    }
    if path.len() > crate::memory::MAX_PATH_BYTES {
        return Err(errno::NAMETOOLONG);
    }
    if path.starts_with('/') {
        return Err(errno::NOTCAPABLE);
    }
    if path.contains('\0') {
        return Err(errno::ILSEQ);
    }
    let must_be_dir = path.ends_with('/') || path.ends_with("/.") || path == ".";
    let follow_final = follow_final || must_be_dir;
    let mut queue: VecDeque<String> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect();
    let mut stack: Vec<File> = vec![root.try_clone()?];
    let mut links = 0;
    let mut follow = |queue: &mut VecDeque<String>, dir: &File, name: &str| {
        links += 1;
        if links > MAX_SYMLINKS {
            return Err(errno::LOOP);
        }
        push_link(queue, &sys::readlinkat(dir, name)?)
    };
    let mut components = 0;
    while let Some(component) = queue.pop_front() {
        components += 1;
        if components > MAX_COMPONENTS {
            return Err(errno::NAMETOOLONG);
        }
        if component == ".." {
            if stack.len() == 1 {
                return Err(errno::NOTCAPABLE);
            }
            stack.pop();
            continue;
        }
        let top = stack.last().expect("the root stays on the stack");
        if queue.is_empty() {
            if follow_final && is_symlink(top, &component) {
                follow(&mut queue, top, &component)?;
                continue;
            }
            let dir = stack.pop().expect("non-empty");
            return Ok(Resolved {
                dir,
                name: component,
                must_be_dir,
                depth: stack.len(),
            });
        }
        match sys::openat(
            top,
            &component,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        ) {
            Ok(dir) => stack.push(dir),
            Err(e)
                if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR))
                    && is_symlink(top, &component) =>
            {
                follow(&mut queue, top, &component)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    // `.` or ended on `..`: the directory itself.
    let dir = stack.pop().expect("non-empty");
    Ok(Resolved {
        dir,
        name: ".".to_string(),
        must_be_dir: true,
        depth: stack.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    /// `root/inside/{sub/, file, links…}` next to `root/secret`; returns the root and
    /// the opened `inside`.
    fn tree(name: &str) -> (PathBuf, File) {
        let root = std::env::temp_dir().join(format!("wazerox-path-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("inside/sub")).unwrap();
        std::fs::write(root.join("inside/file"), "f").unwrap();
        std::fs::write(root.join("secret"), "s").unwrap();
        let inside = root.join("inside");
        symlink("sub", inside.join("to-sub")).unwrap();
        symlink("../secret", inside.join("up")).unwrap();
        symlink("/etc", inside.join("abs")).unwrap();
        symlink("self", inside.join("self")).unwrap();
        let dir = File::open(&inside).unwrap();
        (root, dir)
    }

    fn resolved(dir: &File, path: &str, follow: bool) -> Result<(String, bool), Errno> {
        resolve(dir, path, follow).map(|r| (r.name, r.must_be_dir))
    }

    #[test]
    fn names_and_trailing_slashes() {
        let (root, dir) = tree("names");
        assert_eq!(resolved(&dir, "file", false), Ok(("file".into(), false)));
        assert_eq!(resolved(&dir, "sub/", false), Ok(("sub".into(), true)));
        assert_eq!(resolved(&dir, "sub/.", false), Ok(("sub".into(), true)));
        assert_eq!(resolved(&dir, ".", false), Ok((".".into(), true)));
        assert_eq!(resolved(&dir, "sub/..", false), Ok((".".into(), true)));
        assert_eq!(resolved(&dir, "./sub//x", false), Ok(("x".into(), false)));
        assert_eq!(resolved(&dir, "", false), Err(errno::NOENT));
        assert_eq!(resolved(&dir, "file/x", false), Err(errno::NOTDIR));
        assert_eq!(resolved(&dir, "missing/x", false), Err(errno::NOENT));
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn symlinks_are_followed_inside_only() {
        let (root, dir) = tree("links");
        // A final link stays unless followed; a trailing slash follows it.
        assert_eq!(
            resolved(&dir, "to-sub", false),
            Ok(("to-sub".into(), false))
        );
        assert_eq!(resolved(&dir, "to-sub", true), Ok(("sub".into(), false)));
        assert_eq!(resolved(&dir, "to-sub/", false), Ok(("sub".into(), true)));
        assert_eq!(resolved(&dir, "to-sub/x", false), Ok(("x".into(), false)));
        assert_eq!(resolved(&dir, "up", false), Ok(("up".into(), false)));
        for escape in [
            "up",
            "abs",
            "abs/passwd",
            "up/x",
            "..",
            "../inside/file",
            "/etc",
        ] {
            assert_eq!(
                resolved(&dir, escape, true),
                Err(errno::NOTCAPABLE),
                "{escape}"
            );
        }
        assert_eq!(resolved(&dir, "self", true), Err(errno::LOOP));
        assert_eq!(resolved(&dir, "self/x", false), Err(errno::LOOP));
        let _ = std::fs::remove_dir_all(root);
    }
}
