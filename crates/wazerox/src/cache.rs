//! The code cache directory (`Config::cache_dir`).
//!
//! An entry is a compiled artifact (see `artifact.rs`) named by a hash of the
//! engine fingerprint and the module's bytes. Decisions:
//! - The name only finds the entry; what makes it the right one is the artifact
//!   itself: its checksum, its fingerprint (checked by `artifact::read`), and the
//!   embedded Wasm binary, compared byte for byte with the one being compiled, so a
//!   hash collision or a renamed file can never run another module's code.
//! - Writes go to a unique temporary file in the same directory, renamed over the
//!   entry: readers see the old entry, the new one, or none, never half of one,
//!   even with several processes compiling the same module at once.
//! - The cache is an optimisation: any failure to read or write it falls back to
//!   compiling, silently.

use crate::artifact::{self, ArtifactExtras, ArtifactParts};
use crate::engine::Engine;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Two independent 64-bit FNV-1a variants (different offset bases): 128 bits of
/// name, so distinct modules practically never share an entry file.
fn hash128(parts: &[&[u8]]) -> u128 {
    let mut a = 0xcbf2_9ce4_8422_2325u64;
    let mut b = 0x6c62_272e_07bb_0142u64;
    for part in parts {
        for byte in part.iter().chain(&(part.len() as u64).to_le_bytes()) {
            a = (a ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
            b = (b ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3 ^ 0x2_0000);
        }
    }
    (u128::from(a) << 64) | u128::from(b)
}

/// Where the artifact of `wasm` compiled by `engine` lives in `dir`.
pub(crate) fn entry_path(dir: &Path, engine: &Engine, wasm: &[u8]) -> PathBuf {
    let fingerprint = artifact::engine_fingerprint(engine);
    let codegen = engine.codegen_target().settings;
    let key = hash128(&[fingerprint.as_bytes(), codegen.as_bytes(), wasm]);
    dir.join(format!("{key:032x}.cwasm"))
}

/// The cached parts of `wasm`, if a valid entry for this engine exists.
pub(crate) fn load(
    path: &Path,
    engine: &Engine,
    wasm: &[u8],
) -> Option<(ArtifactParts, ArtifactExtras)> {
    let bytes = std::fs::read(path).ok()?;
    let (parts, extras) = artifact::read(engine, &bytes).ok()?;
    (parts.wasm == wasm).then_some((parts, extras))
}

/// Stores `artifact` as the entry at `path`, atomically; failures are ignored.
pub(crate) fn store(path: &Path, artifact: &[u8]) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = path.with_extension(format!(
        "tmp.{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    if std::fs::write(&tmp, artifact).is_err() || std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use crate::{Config, Engine, Instance, Module, Store};
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};

    const ANSWER: &str = r#"(module (func (export "answer") (result i32) i32.const 42))"#;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wazerox-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        paths
    }

    fn answer(engine: &Engine, module: &Module) -> i32 {
        let mut store = Store::new(engine, ());
        let instance = Instance::new(&mut store, module, &[]).unwrap();
        let f = instance
            .get_typed_func::<(), i32>(&mut store, "answer")
            .unwrap();
        f.call(&mut store, ()).unwrap()
    }

    fn cached_engine(dir: &Path) -> Engine {
        let mut config = Config::new();
        config.cache_dir(dir);
        Engine::new(&config).unwrap()
    }

    #[test]
    fn a_second_compilation_loads_the_entry_the_first_wrote() {
        let dir = temp_dir("hit");
        let engine = cached_engine(&dir);
        let module = Module::new(&engine, ANSWER).unwrap();
        assert_eq!(answer(&engine, &module), 42);
        let written = entries(&dir);
        assert_eq!(
            written.len(),
            1,
            "one entry, no temporary files: {written:?}"
        );
        let inode = std::fs::metadata(&written[0]).unwrap().ino();
        // Another engine with the same settings finds it and does not rewrite it.
        let engine = cached_engine(&dir);
        let module = Module::new(&engine, ANSWER).unwrap();
        assert_eq!(answer(&engine, &module), 42);
        assert_eq!(entries(&dir), written);
        assert_eq!(std::fs::metadata(&written[0]).unwrap().ino(), inode);
        // Other settings are another entry.
        let mut config = Config::new();
        config.cache_dir(&dir).consume_fuel(true);
        let fueled = Engine::new(&config).unwrap();
        Module::new(&fueled, ANSWER).unwrap();
        assert_eq!(entries(&dir).len(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn corrupt_or_foreign_entries_are_recompiled_never_run() {
        let dir = temp_dir("corrupt");
        let engine = cached_engine(&dir);
        Module::new(&engine, ANSWER).unwrap();
        let entry = entries(&dir).pop().unwrap();
        let good = std::fs::read(&entry).unwrap();

        // A flipped byte in the code: the checksum rejects it.
        let mut corrupt = good.clone();
        let middle = corrupt.len() / 2;
        corrupt[middle] ^= 0xff;
        std::fs::write(&entry, &corrupt).unwrap();
        let module = Module::new(&engine, ANSWER).unwrap();
        assert_eq!(answer(&engine, &module), 42);
        assert_eq!(std::fs::read(&entry).unwrap(), good, "rewritten");

        // Truncated.
        std::fs::write(&entry, &good[..good.len() - 20]).unwrap();
        assert_eq!(answer(&engine, &Module::new(&engine, ANSWER).unwrap()), 42);
        assert_eq!(std::fs::read(&entry).unwrap(), good);

        // A valid artifact of another module under this module's name.
        let plain = Engine::new(&Config::new()).unwrap();
        let foreign = Module::new(
            &plain,
            r#"(module (func (export "answer") (result i32) i32.const 7))"#,
        )
        .unwrap()
        .serialize();
        std::fs::write(&entry, &foreign).unwrap();
        assert_eq!(answer(&engine, &Module::new(&engine, ANSWER).unwrap()), 42);
        assert_eq!(std::fs::read(&entry).unwrap(), good);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
