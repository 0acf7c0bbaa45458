//! The resource-limit oracle of the instantiate target (issue 21): every case runs
//! under a tiny memory/table limit, a fuel budget and a wall-clock timeout (a
//! watchdog interrupts the store), and the case *fails* if the host's peak resident
//! memory grew by more than [`CASE_RSS_LIMIT`] or the case took longer than
//! [`case_wall_limit`]. The bugs this catches are the host paying for what the
//! guest asked: a 1 GiB memory image for a 71-byte module, a host buffer sized by
//! guest-controlled counts, a table far beyond the memory limit, a call that does
//! not stop at its deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use wazerox::InterruptHandle;

/// `--max-memory` of a case, in bytes: 12 pages, below the generator's 16-page
/// maximum, so refused growth is exercised too. Tables get the same byte budget.
pub const MEMORY_LIMIT: usize = 12 * 65536;

/// After this, the watchdog interrupts the case's store (its running code, its
/// waits, and every later call trap with `Interrupt`).
pub const CASE_TIMEOUT: Duration = Duration::from_millis(500);

/// How much the host's peak RSS may grow during one case. A case's honest cost is
/// a few MiB (compiling ≤ 40 small functions, ≤ 1 MiB of memory and its image,
/// ≤ 1,000-element tables); the bugs above cost hundreds of MiB and more. Generous,
/// because other tests of the same process allocate meanwhile.
pub const CASE_RSS_LIMIT: u64 = 128 << 20;

/// How long one case may take in all (compilation included): the timeout plus a
/// slack for a loaded machine. `WAZEROX_FUZZ_WALL_LIMIT_MS` overrides it (e.g. under
/// a sanitizer).
pub fn case_wall_limit() -> Duration {
    static LIMIT: OnceLock<Duration> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var("WAZEROX_FUZZ_WALL_LIMIT_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map_or(CASE_TIMEOUT + Duration::from_secs(5), Duration::from_millis)
    })
}

/// Kibibytes of a `/proc/self/status` field (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim_start_matches(':')
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Measures how much a case raised the process's peak resident memory.
pub struct RssProbe {
    baseline_kib: u64,
    /// Whether the peak ("high water mark") was reset to the baseline at the start
    /// (`/proc/self/clear_refs`); if not, only the final RSS is compared.
    peak_reset: bool,
}

impl RssProbe {
    /// `None` where `/proc` is not available (the check is then skipped).
    pub fn start() -> Option<RssProbe> {
        let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        Some(RssProbe {
            baseline_kib: status_kib("VmRSS")?,
            peak_reset,
        })
    }

    /// Bytes by which the peak (or current) RSS exceeds the start's.
    pub fn growth(&self) -> u64 {
        let field = if self.peak_reset { "VmHWM" } else { "VmRSS" };
        status_kib(field).map_or(0, |kib| kib.saturating_sub(self.baseline_kib) * 1024)
    }
}

/// One thread for the whole process interrupts stores whose deadline passed.
struct Watchdog {
    cases: Mutex<Vec<(u64, Instant, InterruptHandle)>>,
    next_id: AtomicU64,
}

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<&'static Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        let watchdog: &'static Watchdog = Box::leak(Box::new(Watchdog {
            cases: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
        }));
        std::thread::Builder::new()
            .name("wazerox-fuzz-watchdog".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(10));
                    let now = Instant::now();
                    let mut cases = watchdog.cases.lock().unwrap_or_else(|e| e.into_inner());
                    cases.retain(|(_, deadline, handle)| {
                        if *deadline <= now {
                            handle.interrupt();
                            false
                        } else {
                            true
                        }
                    });
                }
            })
            .expect("spawn the watchdog thread");
        watchdog
    })
}

/// A case's deadline; dropping it (the case ended) disarms it.
pub struct Deadline(u64);

impl Deadline {
    /// Interrupts `handle`'s store after `timeout`.
    pub fn arm(handle: InterruptHandle, timeout: Duration) -> Deadline {
        let watchdog = watchdog();
        let id = watchdog.next_id.fetch_add(1, Ordering::Relaxed);
        watchdog
            .cases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, Instant::now() + timeout, handle));
        Deadline(id)
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        watchdog()
            .cases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, _, _)| *id != self.0);
    }
}

/// Fails a case that exceeded its host-memory or wall-time budget.
pub fn check_case(probe: Option<&RssProbe>, started: Instant) -> Result<(), String> {
    if let Some(probe) = probe {
        let growth = probe.growth();
        if growth > CASE_RSS_LIMIT {
            return Err(format!(
                "host peak RSS grew by {} MiB in one case (limit {} MiB under a {} KiB \
                 memory limit)",
                growth >> 20,
                CASE_RSS_LIMIT >> 20,
                MEMORY_LIMIT >> 10
            ));
        }
    }
    let elapsed = started.elapsed();
    if elapsed > case_wall_limit() {
        return Err(format!(
            "case took {elapsed:?} (limit {:?}, timeout {CASE_TIMEOUT:?})",
            case_wall_limit()
        ));
    }
    Ok(())
}

/// Unit tests that measure the process's memory, or allocate a lot of it, take
/// this lock so that they do not see each other's allocations.
#[cfg(test)]
pub(crate) fn measuring_alone() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe sees a real allocation, so the oracle can fail a case.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_rss_probe_sees_an_allocation() {
        let _alone = measuring_alone();
        let probe = RssProbe::start().expect("/proc/self/status on Linux");
        let mut big = vec![0u8; (CASE_RSS_LIMIT + (32 << 20)) as usize];
        for page in big.chunks_mut(4096) {
            page[0] = 1;
        }
        std::hint::black_box(&big);
        assert!(probe.growth() > CASE_RSS_LIMIT, "growth {}", probe.growth());
        assert!(check_case(Some(&probe), Instant::now()).is_err());
        drop(big);
    }

    #[test]
    fn the_wall_clock_check_fails_slow_cases() {
        let started = Instant::now()
            .checked_sub(case_wall_limit() + Duration::from_millis(1))
            .expect("the machine has been up for longer than the limit");
        assert!(check_case(None, started).unwrap_err().contains("case took"));
        assert!(check_case(None, Instant::now()).is_ok());
    }
}
