//! WASIX `stack_checkpoint` / `stack_restore` (module `wasix_32v1`) on top of the
//! runtime's native snapshots (`Caller::snapshot`, `Snapshot::restore`).
//!
//! `stack_checkpoint(snapshot_ptr, ret_val_ptr) -> errno` takes a snapshot, saves
//! the calling instance's exported mutable globals (`__stack_pointer`, `__tls_base`,
//! …: WASIX toolchains export them for this purpose; globals that are not exported
//! cannot be reached and are not restored), writes WASIX's 24-byte record at `snapshot_ptr` — `u64 user` (the
//! `ret_val` pointer) then a 16-byte unguessable token — writes 0 at `ret_val_ptr`
//! and returns 0. `stack_restore(snapshot_ptr, val)` looks the token up (unknown,
//! or stale → a trap with a clear message, never a jump), puts the globals
//! back, writes `val` at the recorded `ret_val`, and makes the checkpoint call return
//! 0 again. The C shadow stack in linear memory is not restored (C does not need it).
//!
//! The table is bounded: a checkpoint into the same record address replaces the
//! previous one (Lua checkpoints once per `pcall`, into a `jmp_buf` that is reused);
//! beyond [`MAX_SNAPSHOTS`] snapshots or [`MAX_SNAPSHOT_BYTES`] bytes (each holds
//! a copy of the native stack of its call), snapshots of this thread whose call
//! into Wasm has returned are dropped (they can never be restored), and if that
//! is not enough `stack_checkpoint` fails with `NOMEM`.
//!
//! The other WASIX families live in submodules: `futex`, `thread` (spawn, join,
//! exit, sleep, ids), `signal` (callback, thread signals, interval timer), `fd`
//! (dup, pipe), `proc` (cwd, process ids). `docs/wasi.md` lists which WASIX calls
//! exist.

use crate::WasiCtx;
use crate::errno::{self, Errno};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use wazerox::{Caller, Error, Extern, Global, Linker, Snapshot, Val};

mod fd;
mod futex;
mod proc;
pub mod signal;
pub mod thread;

pub use proc::WasixState;
pub use thread::{MAIN_TID, ThreadExit};

/// Snapshots one program keeps at most.
pub const MAX_SNAPSHOTS: usize = 4096;

/// Bytes the snapshots of one program hold at most (native stack copies, plus
/// `ENTRY_BYTES` each).
pub const MAX_SNAPSHOT_BYTES: usize = 64 << 20;

/// What a snapshot costs besides its stack copy: the record, the saved globals.
const ENTRY_BYTES: usize = 256;

#[derive(Clone)]
struct Entry {
    snapshot: Snapshot,
    globals: Vec<(Global, Val)>,
    ret_val: u32,
    record: u32,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.snapshot.stack_bytes() + ENTRY_BYTES + 32 * self.globals.len()
    }
}

/// The WASIX snapshot table of one program.
#[derive(Default)]
pub struct SnapshotTable {
    inner: Mutex<TableInner>,
}

#[derive(Default)]
struct TableInner {
    entries: HashMap<[u8; 16], Entry>,
    by_record: HashMap<u32, [u8; 16]>,
    /// Sum of the entries' `bytes()`.
    bytes: usize,
    counter: u64,
    keys: Option<std::collections::hash_map::RandomState>,
}

impl TableInner {
    fn remove(&mut self, token: &[u8; 16]) {
        if let Some(e) = self.entries.remove(token) {
            self.bytes -= e.bytes();
            if self.by_record.get(&e.record) == Some(token) {
                self.by_record.remove(&e.record);
            }
        }
    }

    /// Whether `entry` fits, counting the space of the one it replaces as free.
    fn fits(&self, entry: &Entry) -> bool {
        let replaced = self
            .by_record
            .get(&entry.record)
            .and_then(|t| self.entries.get(t));
        let (count, bytes) = match replaced {
            Some(old) => (self.entries.len() - 1, self.bytes - old.bytes()),
            None => (self.entries.len(), self.bytes),
        };
        count < MAX_SNAPSHOTS && bytes + entry.bytes() <= MAX_SNAPSHOT_BYTES
    }
}

impl SnapshotTable {
    /// Number of snapshots held.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().entries.len()
    }

    /// Whether no snapshot is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the snapshots hold (see [`MAX_SNAPSHOT_BYTES`]).
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap().bytes
    }

    fn insert(&self, entry: Entry) -> Result<[u8; 16], Errno> {
        let mut t = self.inner.lock().unwrap();
        if !t.fits(&entry) {
            let stale: Vec<[u8; 16]> = t
                .entries
                .iter()
                .filter(|(_, e)| e.snapshot.is_stale())
                .map(|(token, _)| *token)
                .collect();
            for token in &stale {
                t.remove(token);
            }
            if !t.fits(&entry) {
                return Err(errno::NOMEM);
            }
        }
        t.counter += 1;
        let counter = t.counter;
        let keys = t.keys.get_or_insert_with(Default::default);
        let mut hasher = keys.build_hasher();
        hasher.write_u64(counter);
        let mut token = [0u8; 16];
        token[..8].copy_from_slice(&counter.to_le_bytes());
        token[8..].copy_from_slice(&hasher.finish().to_le_bytes());
        if let Some(old) = t.by_record.get(&entry.record).copied() {
            t.remove(&old);
        }
        t.bytes += entry.bytes();
        t.by_record.insert(entry.record, token);
        t.entries.insert(token, entry);
        Ok(token)
    }

    fn get(&self, token: &[u8; 16]) -> Option<Entry> {
        self.inner.lock().unwrap().entries.get(token).cloned()
    }
}

fn memory<T>(caller: &mut Caller<'_, T>) -> Result<crate::memory::ExportedMemory, Error> {
    crate::memory::ExportedMemory::of(caller)
        .ok_or_else(|| Error::msg("wasix: the module exports no memory"))
}

/// Defines every `wasix_32v1` function we have: `stack_checkpoint` and
/// `stack_restore` (here) and the families of the submodules.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: impl Fn(&T) -> &Arc<WasiCtx> + Send + Sync + Copy + 'static,
) -> Result<(), Error> {
    futex::add_to_linker(linker, get)?;
    thread::add_to_linker(linker, get)?;
    signal::add_to_linker(linker, get)?;
    fd::add_to_linker(linker, get)?;
    proc::add_to_linker(linker, get)?;
    linker.func_wrap(
        "wasix_32v1",
        "stack_checkpoint",
        move |mut caller: Caller<'_, T>, record: i32, ret_val: i32| -> Result<i32, Error> {
            let memory = memory(&mut caller)?;
            let size = memory.data_size(&caller);
            let fits = |ptr: i32, len: usize| {
                (ptr as u32 as usize)
                    .checked_add(len)
                    .is_some_and(|e| e <= size)
            };
            if !fits(record, 24) || !fits(ret_val, 8) {
                return Ok(crate::errno::FAULT.0 as i32);
            }
            let snapshot = caller.snapshot()?;
            let mut globals = Vec::new();
            for (_, export) in caller.exports() {
                if let Extern::Global(g) = export
                    && g.ty(&caller).mutability() == wazerox::Mutability::Var
                {
                    let value = g.get(&mut caller);
                    globals.push((g, value));
                }
            }
            let ctx = get(caller.data()).clone();
            let token = match ctx.snapshots.insert(Entry {
                snapshot,
                globals,
                ret_val: ret_val as u32,
                record: record as u32,
            }) {
                Ok(token) => token,
                Err(errno) => return Ok(errno.0 as i32),
            };
            let mut bytes = [0u8; 24];
            bytes[..8].copy_from_slice(&u64::from(ret_val as u32).to_le_bytes());
            bytes[8..].copy_from_slice(&token);
            memory.write(&mut caller, record as u32 as usize, &bytes)?;
            memory.write(&mut caller, ret_val as u32 as usize, &0u64.to_le_bytes())?;
            Ok(0)
        },
    )?;
    linker.func_wrap(
        "wasix_32v1",
        "stack_restore",
        move |mut caller: Caller<'_, T>, record: i32, value: i64| -> Result<(), Error> {
            let memory = memory(&mut caller)?;
            let mut bytes = [0u8; 24];
            memory
                .read(&caller, record as u32 as usize, &mut bytes)
                .map_err(|_| Error::msg("wasix stack_restore: snapshot record out of bounds"))?;
            let token: [u8; 16] = bytes[8..].try_into().unwrap();
            let ctx = get(caller.data()).clone();
            let entry = ctx.snapshots.get(&token).ok_or_else(|| {
                Error::msg("wasix stack_restore: unknown, forged or evicted snapshot")
            })?;
            let restore = entry.snapshot.restore(&[Val::I32(0)]);
            for (global, saved) in entry.globals {
                global.set(&mut caller, saved)?;
            }
            memory.write(&mut caller, entry.ret_val as usize, &value.to_le_bytes())?;
            Err(restore.into())
        },
    )?;
    Ok(())
}
