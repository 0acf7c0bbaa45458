//! WASIX `stack_checkpoint` / `stack_restore` (module `wasix_32v1`) on top of the
//! runtime's native snapshots (`Caller::snapshot`, `Snapshot::restore`).
//!
//! `stack_checkpoint(snapshot_ptr, ret_val_ptr) -> errno` takes a snapshot, saves
//! the calling instance's exported mutable globals (`__stack_pointer`, `__tls_base`,
//! …: WASIX toolchains export them for this purpose; globals that are not exported
//! cannot be reached and are not restored), writes WASIX's 24-byte record at `snapshot_ptr` — `u64 user` (the
//! `ret_val` pointer) then a 16-byte unguessable token — writes 0 at `ret_val_ptr`
//! and returns 0. `stack_restore(snapshot_ptr, val)` looks the token up (unknown,
//! evicted or stale → a trap with a clear message, never a jump), puts the globals
//! back, writes `val` at the recorded `ret_val`, and makes the checkpoint call return
//! 0 again. The C shadow stack in linear memory is not restored (C does not need it).
//!
//! The table is bounded: a checkpoint into the same record address replaces the
//! previous one (Lua checkpoints once per `pcall`, into a `jmp_buf` that is reused),
//! and at most [`MAX_SNAPSHOTS`] are kept (oldest evicted first).

use crate::WasiCtx;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use wazerox::{Caller, Error, Extern, Global, Linker, Snapshot, Val};

/// Snapshots one program keeps at most.
pub const MAX_SNAPSHOTS: usize = 4096;

#[derive(Clone)]
struct Entry {
    snapshot: Snapshot,
    globals: Vec<(Global, Val)>,
    ret_val: u32,
    record: u32,
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
    order: VecDeque<[u8; 16]>,
    counter: u64,
    keys: Option<std::collections::hash_map::RandomState>,
}

impl SnapshotTable {
    /// Number of snapshots held.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&self, entry: Entry) -> [u8; 16] {
        let mut t = self.inner.lock().unwrap();
        t.counter += 1;
        let counter = t.counter;
        let keys = t.keys.get_or_insert_with(Default::default);
        let mut hasher = keys.build_hasher();
        hasher.write_u64(counter);
        let mut token = [0u8; 16];
        token[..8].copy_from_slice(&counter.to_le_bytes());
        token[8..].copy_from_slice(&hasher.finish().to_le_bytes());
        if let Some(old) = t.by_record.insert(entry.record, token) {
            t.entries.remove(&old);
        }
        t.entries.insert(token, entry);
        t.order.push_back(token);
        while t.entries.len() > MAX_SNAPSHOTS {
            let Some(oldest) = t.order.pop_front() else {
                break;
            };
            if let Some(e) = t.entries.remove(&oldest) {
                t.by_record.remove(&e.record);
            }
        }
        // Keep the order queue from growing with replaced tokens.
        if t.order.len() > 2 * MAX_SNAPSHOTS {
            let TableInner { order, entries, .. } = &mut *t;
            order.retain(|k| entries.contains_key(k));
        }
        token
    }

    fn get(&self, token: &[u8; 16]) -> Option<Entry> {
        self.inner.lock().unwrap().entries.get(token).cloned()
    }
}

fn memory<T>(caller: &mut Caller<'_, T>) -> Result<crate::memory::ExportedMemory, Error> {
    crate::memory::ExportedMemory::of(caller)
        .ok_or_else(|| Error::msg("wasix: the module exports no memory"))
}

/// Defines `wasix_32v1.stack_checkpoint` and `stack_restore`.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: impl Fn(&T) -> &Arc<WasiCtx> + Send + Sync + Copy + 'static,
) -> Result<(), Error> {
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
            let token = ctx.snapshots.insert(Entry {
                snapshot,
                globals,
                ret_val: ret_val as u32,
                record: record as u32,
            });
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
