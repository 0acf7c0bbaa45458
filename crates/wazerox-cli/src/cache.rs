//! `-C cache=y`: where the compiled-code cache lives, and whether it is safe to
//! use.
//!
//! The cache itself is the library's (`Config::cache_dir`): entries are artifacts
//! named by a hash of the engine's settings (build id included) and the module's
//! bytes, and each is checked on load — checksum, build id, engine fingerprint, and
//! the embedded Wasm binary compared byte for byte with the one being run — so a
//! corrupt, truncated, foreign or renamed entry is recompiled, never run. Those
//! checks detect accidents, not malice: an entry is machine code that runs as is,
//! so whoever can write to the directory can run code in every later `wazerox
//! run`. The directory must therefore be ours alone: it is created with mode 0700,
//! and one that belongs to another user or that others may write to is not used
//! (a warning says so and the run compiles as if the cache were off).

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::PathBuf;

/// `$XDG_CACHE_HOME/wazerox`, else `$HOME/.cache/wazerox`; `None` when neither
/// variable is set to an absolute path.
pub fn default_dir() -> Option<PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    absolute("XDG_CACHE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".cache")))
        .map(|base| base.join("wazerox"))
}

/// The cache directory to give `Config::cache_dir`, created if missing; `Err`
/// says why none can be used safely.
pub fn usable_dir() -> Result<PathBuf, String> {
    let dir = default_dir().ok_or("neither XDG_CACHE_HOME nor HOME is set")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    // `symlink_metadata`: a symbolic link planted in place of the directory is
    // refused rather than followed.
    let meta =
        std::fs::symlink_metadata(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if meta.uid() != uid {
        return Err(format!("{} belongs to another user", dir.display()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by other users (mode {:o})",
            dir.display(),
            meta.mode() & 0o777
        ));
    }
    Ok(dir)
}
