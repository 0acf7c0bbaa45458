//! The four preview1 clocks, read from the host's clocks of the same meaning.

use crate::errno::{self, Errno};
use crate::sys;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClockId {
    Realtime,
    Monotonic,
    ProcessCputime,
    ThreadCputime,
}

impl ClockId {
    pub fn from_wasi(id: i32) -> Result<ClockId, Errno> {
        Ok(match id {
            0 => ClockId::Realtime,
            1 => ClockId::Monotonic,
            2 => ClockId::ProcessCputime,
            3 => ClockId::ThreadCputime,
            _ => return Err(errno::INVAL),
        })
    }
    fn host(self) -> libc::clockid_t {
        match self {
            ClockId::Realtime => libc::CLOCK_REALTIME,
            ClockId::Monotonic => libc::CLOCK_MONOTONIC,
            ClockId::ProcessCputime => libc::CLOCK_PROCESS_CPUTIME_ID,
            ClockId::ThreadCputime => libc::CLOCK_THREAD_CPUTIME_ID,
        }
    }
}

/// The clock's time in nanoseconds (realtime: since the Unix epoch; monotonic: since
/// an unspecified point, the same one `std::time::Instant` uses on Linux).
pub(crate) fn now(clock: ClockId) -> Result<u64, Errno> {
    Ok(sys::clock_time(clock.host())?)
}

pub(crate) fn resolution(clock: ClockId) -> Result<u64, Errno> {
    Ok(sys::clock_resolution(clock.host())?.max(1))
}
