//! `memory.atomic.wait` / `memory.atomic.notify`: a futex-style parking table keyed
//! by address.
//!
//! Waiters queue per address in FIFO order; `notify` wakes the oldest ones first and
//! returns exactly how many it woke. The value comparison in `wait` and the enqueue
//! happen under the same lock `notify` takes, so a notify that follows a store cannot
//! slip between a waiter's check and its sleep: no lost wake-ups. The table is split
//! into shards by address so unrelated addresses do not contend.
//!
//! Interruption: each store has a [`WaitCancel`]. Once cancelled (by another thread
//! ending the program), the store's current wait and every later one end with
//! [`WaitResult::Interrupted`]. A parked waiter publishes itself in its store's
//! `WaitCancel` (under the shard lock, after enqueueing) and then reads the flag; the
//! canceller sets the flag and then reads the published waiter. With both sides
//! sequentially consistent, either the waiter sees the flag before sleeping or the
//! canceller sees the waiter and wakes it under the shard lock, so a cancel is never
//! lost. Lock order: a shard, then a `WaitCancel`'s slot; the canceller never holds
//! the slot while taking a shard.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Result of a wait, as `memory.atomic.wait` returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitResult {
    Woken = 0,
    NotEqual = 1,
    TimedOut = 2,
    /// The store's waits were cancelled ([`WaitCancel::cancel`]); not a Wasm result:
    /// the caller traps.
    Interrupted = 3,
}

struct Waiter {
    woken: AtomicBool,
    condvar: Condvar,
}

/// The waits of one store as other threads see them: a sticky cancel flag and the
/// wait the store is parked in now, if any.
#[derive(Default)]
pub struct WaitCancel {
    cancelled: AtomicBool,
    parked: Mutex<Option<(usize, Arc<Waiter>)>>,
}

impl std::fmt::Debug for WaitCancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WaitCancel(cancelled: {})", self.is_cancelled())
    }
}

impl WaitCancel {
    /// Ends the current wait of the store, and every later one, with `Interrupted`.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let parked = self
            .parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some((key, waiter)) = parked {
            // Under the shard lock: the waiter is either before its flag check (and
            // will see the flag) or asleep on the condvar (and gets this wake-up).
            let _guard = shard(key);
            waiter.condvar.notify_one();
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    fn publish(&self, parked: Option<(usize, Arc<Waiter>)>) {
        *self.parked.lock().unwrap_or_else(|e| e.into_inner()) = parked;
    }
}

type Queues = HashMap<usize, VecDeque<Arc<Waiter>>>;

const SHARDS: usize = 64;

static TABLE: [Mutex<Option<Queues>>; SHARDS] = [const { Mutex::new(None) }; SHARDS];

fn shard(address: usize) -> MutexGuard<'static, Option<Queues>> {
    let index = (address >> 2) % SHARDS;
    TABLE[index].lock().unwrap_or_else(|e| e.into_inner())
}

/// The value a wait compares against.
#[derive(Debug, Clone, Copy)]
pub enum Expected {
    U32(u32),
    U64(u64),
}

impl Expected {
    /// The width of the waited-on cell in bytes.
    pub fn size(self) -> u64 {
        match self {
            Expected::U32(_) => 4,
            Expected::U64(_) => 8,
        }
    }
}

/// Blocks while `*address == expected`, until notified, until `timeout` (None =
/// forever) passes, or until `cancel` is cancelled.
///
/// # Safety
/// `address` is valid, naturally aligned shared memory for the access width.
pub unsafe fn wait(
    address: *const u8,
    expected: Expected,
    timeout: Option<Duration>,
    cancel: &WaitCancel,
) -> WaitResult {
    let key = address as usize;
    let deadline = timeout.map(|t| Instant::now() + t);
    if cancel.is_cancelled() {
        return WaitResult::Interrupted;
    }
    let mut guard = shard(key);
    // SAFETY: per the contract; the memory is only accessed atomically here.
    let equal = unsafe {
        match expected {
            Expected::U32(v) => {
                AtomicU32::from_ptr(address.cast_mut().cast()).load(Ordering::SeqCst) == v
            }
            Expected::U64(v) => {
                AtomicU64::from_ptr(address.cast_mut().cast()).load(Ordering::SeqCst) == v
            }
        }
    };
    if !equal {
        return WaitResult::NotEqual;
    }
    let waiter = Arc::new(Waiter {
        woken: false.into(),
        condvar: Condvar::new(),
    });
    guard
        .get_or_insert_with(HashMap::new)
        .entry(key)
        .or_default()
        .push_back(waiter.clone());
    cancel.publish(Some((key, waiter.clone())));
    let result = loop {
        if waiter.woken.load(Ordering::Relaxed) {
            break WaitResult::Woken;
        }
        if cancel.is_cancelled() {
            leave_queue(&mut guard, key, &waiter);
            break WaitResult::Interrupted;
        }
        match deadline {
            None => {
                guard = waiter
                    .condvar
                    .wait(guard)
                    .unwrap_or_else(|e| e.into_inner())
            }
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    // (Not woken: checked at the top of the loop, under the lock.)
                    leave_queue(&mut guard, key, &waiter);
                    break WaitResult::TimedOut;
                }
                guard = waiter
                    .condvar
                    .wait_timeout(guard, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    };
    cancel.publish(None);
    result
}

/// Removes a waiter that stops waiting without being notified from its queue.
fn leave_queue(guard: &mut Option<Queues>, key: usize, waiter: &Arc<Waiter>) {
    if let Some(queues) = guard.as_mut()
        && let Some(queue) = queues.get_mut(&key)
    {
        queue.retain(|w| !Arc::ptr_eq(w, waiter));
        if queue.is_empty() {
            queues.remove(&key);
        }
    }
}

/// Wakes up to `count` waiters on `address`, oldest first; returns how many woke.
pub fn notify(address: *const u8, count: u32) -> u32 {
    let key = address as usize;
    let mut guard = shard(key);
    let Some(queues) = guard.as_mut() else {
        return 0;
    };
    let Some(queue) = queues.get_mut(&key) else {
        return 0;
    };
    let mut woken = 0;
    while woken < count {
        let Some(waiter) = queue.pop_front() else {
            break;
        };
        waiter.woken.store(true, Ordering::Relaxed);
        waiter.condvar.notify_one();
        woken += 1;
    }
    if queue.is_empty() {
        queues.remove(&key);
    }
    woken
}

/// Number of threads waiting on `address` (for tests and diagnostics).
pub fn waiters(address: *const u8) -> usize {
    shard(address as usize)
        .as_ref()
        .and_then(|q| q.get(&(address as usize)))
        .map_or(0, VecDeque::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_equal_and_timeout() {
        let cell = AtomicU32::new(5);
        let p = cell.as_ptr() as *const u8;
        // SAFETY: `cell` is a live, aligned u32.
        unsafe {
            let cancel = WaitCancel::default();
            assert_eq!(
                wait(p, Expected::U32(4), None, &cancel),
                WaitResult::NotEqual
            );
            assert_eq!(
                wait(
                    p,
                    Expected::U32(5),
                    Some(Duration::from_millis(10)),
                    &cancel
                ),
                WaitResult::TimedOut
            );
        }
        assert_eq!(waiters(p), 0);
        assert_eq!(notify(p, 10), 0);
    }

    #[test]
    fn notify_wakes_exact_counts_in_fifo_order() {
        let cell = Arc::new(AtomicU32::new(0));
        let order = Arc::new(Mutex::new(Vec::new()));
        let p = cell.as_ptr() as usize;
        let mut threads = Vec::new();
        for i in 0..4 {
            let (cell, order) = (cell.clone(), order.clone());
            threads.push(std::thread::spawn(move || {
                let cancel = WaitCancel::default();
                // SAFETY: the cell outlives the threads (joined below).
                let r =
                    unsafe { wait(cell.as_ptr() as *const u8, Expected::U32(0), None, &cancel) };
                order.lock().unwrap().push(i);
                r
            }));
            while waiters(p as *const u8) < i + 1 {
                std::thread::yield_now();
            }
        }
        assert_eq!(notify(p as *const u8, 3), 3);
        while order.lock().unwrap().len() < 3 {
            std::thread::yield_now();
        }
        assert_eq!(notify(p as *const u8, 5), 1);
        for t in threads {
            assert_eq!(t.join().unwrap(), WaitResult::Woken);
        }
        let mut first_three = order.lock().unwrap()[..3].to_vec();
        first_three.sort();
        assert_eq!(first_three, [0, 1, 2], "the oldest waiters woke first");
    }

    #[test]
    fn cancel_ends_a_parked_wait_and_every_later_one() {
        let cell = Arc::new(AtomicU32::new(0));
        let cancel = Arc::new(WaitCancel::default());
        let p = cell.as_ptr() as usize;
        let waiter = {
            let (cell, cancel) = (cell.clone(), cancel.clone());
            std::thread::spawn(move || {
                // SAFETY: the cell outlives the thread (joined below).
                unsafe { wait(cell.as_ptr() as *const u8, Expected::U32(0), None, &cancel) }
            })
        };
        while waiters(p as *const u8) == 0 {
            std::thread::yield_now();
        }
        cancel.cancel();
        assert_eq!(waiter.join().unwrap(), WaitResult::Interrupted);
        assert_eq!(
            waiters(p as *const u8),
            0,
            "the cancelled waiter left its queue"
        );
        assert_eq!(notify(p as *const u8, 1), 0);
        // SAFETY: `cell` is a live, aligned u32.
        let later = unsafe { wait(p as *const u8, Expected::U32(0), None, &cancel) };
        assert_eq!(later, WaitResult::Interrupted);
    }

    #[test]
    fn cancel_racing_with_parking_is_never_lost() {
        for _ in 0..200 {
            let cell = Arc::new(AtomicU32::new(0));
            let cancel = Arc::new(WaitCancel::default());
            let waiter = {
                let (cell, cancel) = (cell.clone(), cancel.clone());
                std::thread::spawn(move || {
                    // SAFETY: the cell outlives the thread (joined below).
                    unsafe { wait(cell.as_ptr() as *const u8, Expected::U32(0), None, &cancel) }
                })
            };
            cancel.cancel();
            assert_eq!(waiter.join().unwrap(), WaitResult::Interrupted);
        }
    }
}
