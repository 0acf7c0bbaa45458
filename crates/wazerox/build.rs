//! Derives `WAZEROX_BUILD_ID`, which every compiled artifact carries and
//! `Module::deserialize` compares (see `src/artifact.rs`).
//!
//! An artifact's machine code bakes in the VMContext layout (`VMOffsets`), the
//! builtin table order, trap codes, trampoline ABIs and Cranelift's code generation.
//! All of these are defined by the sources of the crates hashed here, the
//! Cranelift version pinned in `Cargo.lock`, and the compiler that built them
//! (`rustc -vV`). Hashing exactly those inputs changes the id whenever the layout
//! *can* change, without a hand-maintained version number someone forgets to bump.
//! It is conservative: an edit that leaves the layout alone also retires old
//! artifacts, which only costs a recompilation.

use std::hash::Hasher;
use std::path::{Path, PathBuf};

/// The crates whose sources define what compiled code assumes about the VM.
const LAYOUT_CRATES: &[&str] = &[
    "wazerox",
    "wazerox-environ",
    "wazerox-frontend",
    "wazerox-compiler",
    "wazerox-runtime",
];

/// 64-bit FNV-1a: stable across Rust versions and platforms (unlike
/// `DefaultHasher`, whose algorithm is unspecified).
struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let crates_dir = manifest.parent().expect("crates/wazerox has a parent");
    let mut hasher = Fnv(0xcbf2_9ce4_8422_2325);
    hasher.write(env!("CARGO_PKG_VERSION").as_bytes());
    let mut inputs = Vec::new();
    for name in LAYOUT_CRATES {
        let dir = crates_dir.join(name);
        if dir.exists() {
            // Outside the workspace (a packaged crate) the siblings are absent;
            // the id then covers this crate, the version and the compiler.
            println!("cargo:rerun-if-changed={}", dir.join("src").display());
            println!(
                "cargo:rerun-if-changed={}",
                dir.join("Cargo.toml").display()
            );
            files_under(&dir.join("src"), &mut inputs);
            inputs.push(dir.join("Cargo.toml"));
        }
    }
    let lock = crates_dir.join("../Cargo.lock");
    if lock.exists() {
        println!("cargo:rerun-if-changed={}", lock.display());
        inputs.push(lock);
    }
    inputs.sort();
    for path in &inputs {
        let relative = path.strip_prefix(crates_dir).unwrap_or(path);
        hasher.write(relative.to_string_lossy().as_bytes());
        hasher.write(&std::fs::read(path).unwrap_or_default());
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if let Ok(out) = std::process::Command::new(rustc).arg("-vV").output() {
        hasher.write(&out.stdout);
    }
    println!("cargo:rustc-env=WAZEROX_BUILD_ID={:016x}", hasher.finish());
}
