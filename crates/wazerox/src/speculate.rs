//! Background compilation for lazily compiled modules: while the program runs on
//! one core, a worker on another compiles the functions it is likely to call
//! next — the direct callees of every function just compiled, most recent first
//! (docs/lazy-compilation.md, "Background compilation").

use crate::lazy::LazyCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

/// Functions waiting for the worker, as a stack: the callees of the function
/// compiled last are the likeliest to be called next.
pub(crate) struct Speculation {
    pending: Mutex<Vec<u32>>,
    wake: Condvar,
    /// Per defined function: whether it was ever pushed (each is pushed once).
    queued: Vec<AtomicBool>,
    /// Set when the module's code is dropped: the worker ends.
    closed: AtomicBool,
    started: std::sync::Once,
}

impl Speculation {
    pub(crate) fn new(functions: usize) -> Arc<Speculation> {
        Arc::new(Speculation {
            pending: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            queued: (0..functions).map(|_| AtomicBool::new(false)).collect(),
            closed: AtomicBool::new(false),
            started: std::sync::Once::new(),
        })
    }

    /// Queues `callees` (defined indices, in call order) for background
    /// compilation, starting the worker on first use.
    pub(crate) fn push(self: &Arc<Self>, code: &Weak<LazyCode>, callees: &[u32]) {
        let mut fresh: Vec<u32> = callees
            .iter()
            .copied()
            .filter(|&c| {
                self.queued
                    .get(c as usize)
                    .is_some_and(|q| !q.swap(true, Ordering::Relaxed))
            })
            .collect();
        if fresh.is_empty() {
            return;
        }
        // The first callee ends on top of the stack.
        fresh.reverse();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(fresh);
        self.wake.notify_one();
        self.started.call_once(|| {
            let (speculation, code) = (self.clone(), code.clone());
            // A failure to spawn only means no background compilation.
            let _ = std::thread::Builder::new()
                .name("wazerox-lazy-compile".into())
                .spawn(move || speculation.work(code));
        });
    }

    /// Marks `defined` as taken care of (it is being compiled on demand).
    pub(crate) fn mark(&self, defined: u32) {
        if let Some(q) = self.queued.get(defined as usize) {
            q.store(true, Ordering::Relaxed);
        }
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.wake.notify_all();
    }

    fn work(&self, code: Weak<LazyCode>) {
        loop {
            let next = {
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if self.closed.load(Ordering::Relaxed) {
                        return;
                    }
                    if let Some(next) = pending.pop() {
                        break next;
                    }
                    pending = self
                        .wake
                        .wait_timeout(pending, Duration::from_millis(200))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            };
            // The module holds the only strong references: once it is gone,
            // nothing is left to compile for.
            let Some(code) = code.upgrade() else { return };
            code.compile_in_background(next);
        }
    }
}
