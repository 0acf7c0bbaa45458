//! WASIX futexes: `futex_wait`, `futex_wake`, `futex_wake_all`, on the runtime's
//! parking table through `Memory::atomic_wait32`/`atomic_notify` — the table
//! `memory.atomic.wait32/notify` use, so a futex wait is woken by a Wasm notify and
//! a Wasm wait by `futex_wake`.
//!
//! `futex_wait(addr, expected, timeout, ret_woken)`: `timeout` points at an
//! `option<timestamp>` (tag byte, then a u64 of relative nanoseconds at offset 8);
//! `ret_woken` gets 1 unless the wait timed out (a value that already differed
//! counts as woken: the caller re-reads it). A misaligned address is `INVAL`, one
//! out of bounds `FAULT`. An interrupted program ends the wait with a trap, as for
//! `memory.atomic.wait32`.

use super::signal::finish;
use crate::WasiCtx;
use crate::errno::{self, Errno};
use crate::memory::ExportedMemory;
use std::sync::Arc;
use std::time::Duration;
use wazerox::{Caller, Error, Linker, WaitResult};

/// The program's memory: a WASIX program with threads shares it (`SharedMemory`).
fn memory<T>(caller: &mut Caller<'_, T>) -> Result<ExportedMemory, Error> {
    ExportedMemory::of(caller)
        .ok_or_else(|| Error::msg("wasix: the module exports no memory named `memory`"))
}

fn errno(e: Errno) -> Result<i32, Error> {
    Ok(e.0 as i32)
}

/// Checks a futex word's address: aligned and in bounds.
fn check<T>(caller: &mut Caller<'_, T>, memory: &ExportedMemory, addr: i32) -> Result<(), Errno> {
    let addr = addr as u32 as usize;
    if !addr.is_multiple_of(4) {
        return Err(errno::INVAL);
    }
    if addr + 4 > memory.data_size(&*caller) {
        return Err(errno::FAULT);
    }
    Ok(())
}

fn put_bool<T>(
    caller: &mut Caller<'_, T>,
    memory: &ExportedMemory,
    ptr: i32,
    value: bool,
) -> Result<(), Errno> {
    memory
        .write(&mut *caller, ptr as u32 as usize, &[value as u8])
        .map_err(|_| errno::FAULT)
}

fn wait<T>(
    caller: &mut Caller<'_, T>,
    addr: i32,
    expected: i32,
    timeout_ptr: i32,
    ret_woken: i32,
) -> Result<i32, Error> {
    let memory = memory(caller)?;
    if let Err(e) = check(caller, &memory, addr) {
        return errno(e);
    }
    let mut option = [0u8; 16];
    if memory
        .read(&*caller, timeout_ptr as u32 as usize, &mut option)
        .is_err()
        || memory.data_size(&*caller) <= ret_woken as u32 as usize
    {
        return errno(errno::FAULT);
    }
    let timeout = match option[0] {
        0 => None,
        1 => Some(Duration::from_nanos(u64::from_le_bytes(
            option[8..].try_into().unwrap(),
        ))),
        _ => return errno(errno::INVAL),
    };
    let offset = addr as u32 as u64;
    let result = match &memory {
        ExportedMemory::Unshared(m) => {
            m.atomic_wait32(&mut *caller, offset, expected as u32, timeout)?
        }
        ExportedMemory::Shared(m) => {
            m.atomic_wait32_in(&mut *caller, offset, expected as u32, timeout)?
        }
    };
    let woken = result != WaitResult::TimedOut;
    Ok(put_bool(caller, &memory, ret_woken, woken)
        .err()
        .unwrap_or(errno::SUCCESS)
        .0 as i32)
}

fn wake<T>(
    caller: &mut Caller<'_, T>,
    addr: i32,
    count: u32,
    ret_woken: i32,
) -> Result<i32, Error> {
    let memory = memory(caller)?;
    if let Err(e) = check(caller, &memory, addr) {
        return errno(e);
    }
    if memory.data_size(&*caller) <= ret_woken as u32 as usize {
        return errno(errno::FAULT);
    }
    let offset = addr as u32 as u64;
    let woken = match &memory {
        ExportedMemory::Unshared(m) => m.atomic_notify(&mut *caller, offset, count)?,
        ExportedMemory::Shared(m) => m.atomic_notify(offset, count)?,
    };
    Ok(put_bool(caller, &memory, ret_woken, woken > 0)
        .err()
        .unwrap_or(errno::SUCCESS)
        .0 as i32)
}

pub(super) fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: impl Fn(&T) -> &Arc<WasiCtx> + Send + Sync + Copy + 'static,
) -> Result<(), Error> {
    const MODULE: &str = "wasix_32v1";
    linker.func_wrap(
        MODULE,
        "futex_wait",
        move |mut caller: Caller<'_, T>, addr: i32, expected: i32, timeout: i32, ret: i32| {
            let result = wait(&mut caller, addr, expected, timeout, ret);
            finish(&mut caller, get, result)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "futex_wake",
        move |mut caller: Caller<'_, T>, addr: i32, ret: i32| {
            let result = wake(&mut caller, addr, 1, ret);
            finish(&mut caller, get, result)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "futex_wake_all",
        move |mut caller: Caller<'_, T>, addr: i32, ret: i32| {
            let result = wake(&mut caller, addr, u32::MAX, ret);
            finish(&mut caller, get, result)
        },
    )?;
    Ok(())
}
