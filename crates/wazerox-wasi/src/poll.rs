//! `poll_oneoff`: clock subscriptions (relative or absolute, realtime or monotonic)
//! and fd read/write readiness, mixed freely.
//!
//! Regular files, directories' absence of readiness and in-memory stdio are decided
//! at once; descriptors backed by host streams (inherited stdio, sockets, files given
//! as stdio) go to one `poll(2)` together with the context's cancellation pipe, whose
//! timeout is the earliest clock deadline (none: wait for a descriptor). When
//! anything is ready at once, nothing waits.

use crate::clock::{self, ClockId};
use crate::ctx::{FdKind, Input, Output};
use crate::errno::{self, Errno, Failure};
use crate::fd::Ret;
use crate::memory::GuestMemory;
use crate::{WasiCtx, rights, sys};
use std::io::Seek;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

const SUBSCRIPTION_SIZE: u32 = 48;
const EVENT_SIZE: u32 = 32;

/// `eventtype`.
const CLOCK: u8 = 0;
const FD_READ: u8 = 1;
const FD_WRITE: u8 = 2;

/// `subclockflags::subscription_clock_abstime`.
const ABSTIME: u16 = 1;

/// `eventrwflags::fd_readwrite_hangup`.
const HANGUP: u16 = 1;

struct Event {
    userdata: u64,
    error: Errno,
    kind: u8,
    nbytes: u64,
    flags: u16,
}

/// When a clock subscription fires, as an `Instant` (`None`: too far to matter).
fn deadline(id: i32, timeout: u64, flags: u16, now: Instant) -> Result<Option<Instant>, Errno> {
    let clock = ClockId::from_wasi(id)?;
    let relative = if flags & ABSTIME != 0 {
        match clock {
            ClockId::Realtime | ClockId::Monotonic => timeout.saturating_sub(clock::now(clock)?),
            // A CPU-time deadline has no relation to wall time that a wait could use.
            ClockId::ProcessCputime | ClockId::ThreadCputime => return Err(errno::NOTSUP),
        }
    } else {
        match clock {
            ClockId::Realtime | ClockId::Monotonic => timeout,
            ClockId::ProcessCputime | ClockId::ThreadCputime => return Err(errno::NOTSUP),
        }
    };
    Ok(now.checked_add(Duration::from_nanos(relative)))
}

pub(crate) fn poll_oneoff(
    ctx: &WasiCtx,
    mem: &mut GuestMemory<'_>,
    input: i32,
    output: i32,
    count: i32,
    events_out: i32,
) -> Ret {
    let count = count as u32;
    if count == 0 {
        return Err(errno::INVAL.into());
    }
    mem.slice(
        input,
        count.checked_mul(SUBSCRIPTION_SIZE).ok_or(errno::FAULT)?,
    )?;
    mem.slice(output, count.checked_mul(EVENT_SIZE).ok_or(errno::FAULT)?)?;

    let now = Instant::now();
    let mut events: Vec<Event> = Vec::new();
    // Clock subscriptions: (userdata, deadline).
    let mut clocks: Vec<(u64, Option<Instant>)> = Vec::new();
    // Host descriptors to poll: (fd, write, userdata).
    let mut host: Vec<(RawFd, bool, u64)> = Vec::new();
    for i in 0..count {
        let at = input.wrapping_add((i * SUBSCRIPTION_SIZE) as i32);
        let userdata = mem.u64(at)?;
        let kind = mem.read::<1>(at.wrapping_add(8))?[0];
        let event = |error: Errno, nbytes: u64| Event {
            userdata,
            error,
            kind,
            nbytes,
            flags: 0,
        };
        match kind {
            CLOCK => {
                let id = mem.u32(at.wrapping_add(16))? as i32;
                let timeout = mem.u64(at.wrapping_add(24))?;
                let flags = mem.u16(at.wrapping_add(40))?;
                match deadline(id, timeout, flags, now) {
                    Ok(d) => clocks.push((userdata, d)),
                    Err(e) => events.push(event(e, 0)),
                }
            }
            FD_READ | FD_WRITE => {
                let write = kind == FD_WRITE;
                let fd = mem.u32(at.wrapping_add(16))? as i32;
                let entry = match ctx.fd(fd) {
                    Ok(entry) => entry,
                    Err(e) => {
                        events.push(event(e, 0));
                        continue;
                    }
                };
                if let Err(e) = entry.require(rights::POLL_FD_READWRITE) {
                    events.push(event(e, 0));
                    continue;
                }
                if let Some(host_fd) = entry.kind.pollable_fd() {
                    host.push((host_fd, write, userdata));
                    continue;
                }
                events.push(match (&entry.kind, write) {
                    (FdKind::File(file), false) => {
                        let size = file.metadata().map_or(0, |m| m.len());
                        let position = (&*file).stream_position().unwrap_or(size);
                        event(errno::SUCCESS, size.saturating_sub(position))
                    }
                    (FdKind::File(_), true) => event(errno::SUCCESS, 0),
                    (FdKind::Stdin(Input::Bytes(cursor)), false) => {
                        let cursor = cursor.lock().unwrap();
                        let left = cursor.get_ref().len() as u64 - cursor.position();
                        event(errno::SUCCESS, left)
                    }
                    (FdKind::Stdout(Output::Pipe(_)), true) => event(errno::SUCCESS, 0),
                    _ => event(errno::BADF, 0),
                });
            }
            _ => return Err(errno::INVAL.into()),
        }
    }

    // Wait for the earliest clock, or not at all when something is ready already.
    let wait_until = if events.is_empty() {
        clocks.iter().filter_map(|&(_, d)| d).min()
    } else {
        Some(now)
    };
    if host.is_empty() && wait_until.is_none() && events.is_empty() {
        // Only clocks too far in the future: wait until cancelled.
        ctx.wait(&[], None)?;
    }
    let fds: Vec<(RawFd, bool)> = host.iter().map(|&(fd, write, _)| (fd, write)).collect();
    let revents = if fds.is_empty() && wait_until.is_none_or(|d| d <= now) {
        Vec::new()
    } else {
        ctx.wait(&fds, wait_until)?
    };
    for (&(fd, write, userdata), &r) in host.iter().zip(&revents) {
        if r == 0 {
            continue;
        }
        let kind = if write { FD_WRITE } else { FD_READ };
        let (error, nbytes) = if r & libc::POLLNVAL != 0 {
            (errno::BADF, 0)
        } else if write {
            (errno::SUCCESS, 0)
        } else {
            (errno::SUCCESS, sys::bytes_readable(fd).unwrap_or(0))
        };
        let flags = if r & libc::POLLHUP != 0 { HANGUP } else { 0 };
        events.push(Event {
            userdata,
            error,
            kind,
            nbytes,
            flags,
        });
    }
    let after = Instant::now();
    for &(userdata, d) in &clocks {
        if d.is_some_and(|d| d <= after) {
            events.push(Event {
                userdata,
                error: errno::SUCCESS,
                kind: CLOCK,
                nbytes: 0,
                flags: 0,
            });
        }
    }
    for (i, e) in events.iter().enumerate() {
        let mut bytes = [0u8; EVENT_SIZE as usize];
        bytes[0..8].copy_from_slice(&e.userdata.to_le_bytes());
        bytes[8..10].copy_from_slice(&e.error.0.to_le_bytes());
        bytes[10] = e.kind;
        bytes[16..24].copy_from_slice(&e.nbytes.to_le_bytes());
        bytes[24..26].copy_from_slice(&e.flags.to_le_bytes());
        mem.write(output.wrapping_add((i as u32 * EVENT_SIZE) as i32), &bytes)?;
    }
    Ok(mem.put_u32(events_out, events.len() as u32)?)
}

/// `sched_yield`, cancellable like every other wait.
pub(crate) fn sched_yield(ctx: &WasiCtx) -> Result<(), Failure> {
    if ctx.is_cancelled() {
        return Err(Failure::Cancelled);
    }
    std::thread::yield_now();
    Ok(())
}
