//! Telling native profilers where compiled Wasm functions are.
//!
//! `perf` cannot symbolize JIT code on its own. Two formats it understands:
//! - a *perf map* (`/tmp/perf-PID.map`): one text line per function, `START SIZE
//!   NAME` in hex; `perf report` reads it directly.
//! - a *jitdump* (`/tmp/jit-PID.dump`): a binary log of code loads with the code
//!   bytes, which `perf inject --jit` turns into ELF images (so `perf annotate` can
//!   show instructions). perf finds the file because the process maps it
//!   executable: the mmap event in the recording names it.
//!
//! Both files are process-wide, opened on first use and appended to under a lock;
//! records are written when code is mapped, before it can run.

use std::fs::File;
use std::io::{self, Write};
use std::sync::Mutex;

/// One compiled function as a profiler should name it.
pub struct CodeRecord<'a> {
    pub name: &'a str,
    pub address: usize,
    pub size: usize,
}

static PERF_MAP: Mutex<Option<File>> = Mutex::new(None);
static JIT_DUMP: Mutex<Option<JitDump>> = Mutex::new(None);

/// Appends `records` to this process's perf map (emptied on its first use).
pub fn write_perf_map(records: &[CodeRecord<'_>]) -> io::Result<()> {
    let mut file = PERF_MAP.lock().unwrap_or_else(|e| e.into_inner());
    if file.is_none() {
        let path = perf_map_path();
        // Truncated on the first write of the process: a map left in /tmp by an
        // earlier process that had the same PID describes none of our code (seen:
        // a test found its functions twice, at two sets of addresses).
        *file = Some(
            File::options()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?,
        );
    }
    let file = file.as_mut().expect("opened above");
    let mut text = String::new();
    for r in records {
        // perf splits on the first two spaces; the name may contain more.
        text.push_str(&format!(
            "{:x} {:x} {}\n",
            r.address,
            r.size,
            sanitize(r.name)
        ));
    }
    file.write_all(text.as_bytes())
}

/// Where this process's perf map is.
pub fn perf_map_path() -> String {
    format!("/tmp/perf-{}.map", std::process::id())
}

/// Where this process's jitdump is.
pub fn jitdump_path() -> String {
    format!("/tmp/jit-{}.dump", std::process::id())
}

/// Names go on one line: control characters (a guest chooses names) become `?`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

struct JitDump {
    file: File,
    next_index: u64,
    /// The executable mapping of the file's first page that tells perf about it;
    /// kept for the life of the process.
    _marker: crate::mmap::Mmap,
}

const JITDUMP_MAGIC: u32 = 0x4A69_5444;
const JITDUMP_VERSION: u32 = 1;
const JIT_CODE_LOAD: u32 = 0;

#[cfg(target_arch = "x86_64")]
const ELF_MACHINE: u32 = 62;
#[cfg(target_arch = "aarch64")]
const ELF_MACHINE: u32 = 183;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ELF_MACHINE: u32 = 0;

fn monotonic_ns() -> u64 {
    // perf orders jitdump records against its samples with CLOCK_MONOTONIC.
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn thread_id() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// Appends a code-load record (with the code bytes) for each of `records` to this
/// process's jitdump.
///
/// # Safety
/// Each record's `address..address + size` must be readable code.
pub unsafe fn write_jitdump(records: &[CodeRecord<'_>]) -> io::Result<()> {
    let mut dump = JIT_DUMP.lock().unwrap_or_else(|e| e.into_inner());
    if dump.is_none() {
        *dump = Some(JitDump::create()?);
    }
    let dump = dump.as_mut().expect("created above");
    let pid = std::process::id();
    let tid = thread_id();
    let mut out = Vec::new();
    for r in records {
        let name = sanitize(r.name);
        let total = 16 + 4 + 4 + 8 * 4 + name.len() + 1 + r.size;
        out.extend_from_slice(&JIT_CODE_LOAD.to_le_bytes());
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&monotonic_ns().to_le_bytes());
        out.extend_from_slice(&pid.to_le_bytes());
        out.extend_from_slice(&tid.to_le_bytes());
        out.extend_from_slice(&(r.address as u64).to_le_bytes()); // vma
        out.extend_from_slice(&(r.address as u64).to_le_bytes()); // code address
        out.extend_from_slice(&(r.size as u64).to_le_bytes());
        out.extend_from_slice(&dump.next_index.to_le_bytes());
        dump.next_index += 1;
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        // SAFETY: the caller guarantees the range is readable code.
        let code = unsafe { std::slice::from_raw_parts(r.address as *const u8, r.size) };
        out.extend_from_slice(code);
    }
    dump.file.write_all(&out)
}

impl JitDump {
    fn create() -> io::Result<JitDump> {
        let path = jitdump_path();
        let mut file = File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
        let mut header = Vec::with_capacity(40);
        header.extend_from_slice(&JITDUMP_MAGIC.to_le_bytes());
        header.extend_from_slice(&JITDUMP_VERSION.to_le_bytes());
        header.extend_from_slice(&40u32.to_le_bytes()); // header size
        header.extend_from_slice(&ELF_MACHINE.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes()); // padding
        header.extend_from_slice(&std::process::id().to_le_bytes());
        header.extend_from_slice(&monotonic_ns().to_le_bytes());
        header.extend_from_slice(&0u64.to_le_bytes()); // flags
        file.write_all(&header)?;
        let marker = crate::mmap::Mmap::map_file_executable(&file)?;
        Ok(JitDump {
            file,
            next_index: 0,
            _marker: marker,
        })
    }
}
