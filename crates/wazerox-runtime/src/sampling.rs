//! Sampling one thread's Wasm stack from another thread, for the guest profiler.
//!
//! A sampler thread sends the profiled thread `SIGPROF` (`tgkill`, by kernel
//! thread id) every interval and waits for the handler to copy the PCs of the
//! interrupted frame-pointer chain into a static buffer; it then hands them to a
//! callback (which symbolizes them with the code registry — never in the handler).
//!
//! Decisions:
//! - **Signals, not epoch checks**: a sample lands wherever the code is (in a loop
//!   body, not only at function entries and loop headers), costs nothing when no
//!   profiler runs, and needs no compiled-code support.
//! - **Async-signal safety**: the handler only reads a const thread-local (the
//!   innermost activation, as the trap handler does), the signal context, atomics
//!   and the interrupted thread's stack, and writes the static buffer. No lock, no
//!   allocation: the registry lookup happens on the sampler thread.
//! - **Every stack read is confined to live stack**: between the interrupted stack
//!   pointer and the innermost activation's entry, and only when both lie in the
//!   thread's stack mapping (measured when the profiler starts). Host code built
//!   without frame pointers may leave any value in the frame-pointer register; the
//!   bounds make a bad value end the walk instead of reading unmapped memory, and
//!   PCs that are not Wasm code are dropped when symbolized.
//! - **Only the innermost activation**: a Wasm→host→Wasm nesting shows the inner
//!   Wasm frames (the host frames between carry no frame record we can trust).
//! - **One profiled thread per process, one buffer**: the handler ignores a signal
//!   that was not requested or arrives on another thread, so a stray `SIGPROF`
//!   (or one for a thread id the kernel reused) does nothing. Our handler stays
//!   installed once installed: restoring the default action could let a late
//!   signal kill the process.
//! - `SA_RESTART`: interrupted system calls restart where the kernel allows; the
//!   ones it never restarts (e.g. `poll`) may return `EINTR` to the host code
//!   making them (docs/runtime.md, "Guest profiler").

use crate::traphandlers;
use std::cell::UnsafeCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Most frames one sample records (the innermost ones).
const MAX_FRAMES: usize = 512;

const IDLE: u8 = 0;
const REQUESTED: u8 = 1;
const WRITING: u8 = 2;
const DONE: u8 = 3;

/// The one sample in flight: requested by the sampler thread, written by the
/// handler on the profiled thread.
struct SampleSlot {
    state: AtomicU8,
    /// Kernel thread id of the profiled thread.
    target: AtomicI64,
    /// The profiled thread's stack mapping, `[low, high)`.
    stack_low: AtomicUsize,
    stack_high: AtomicUsize,
    /// PCs written (0: the thread was not running Wasm).
    count: AtomicUsize,
    /// Innermost first; return addresses minus one, as in trap backtraces.
    pcs: UnsafeCell<[usize; MAX_FRAMES]>,
}

// SAFETY: `pcs` is written only by the handler between winning the
// REQUESTED→WRITING exchange and storing DONE (Release), and read only by the
// sampler thread after it loaded DONE (Acquire) and before it stores IDLE or
// REQUESTED again; the state machine makes those accesses exclusive.
unsafe impl Sync for SampleSlot {}

static SLOT: SampleSlot = SampleSlot {
    state: AtomicU8::new(IDLE),
    target: AtomicI64::new(0),
    stack_low: AtomicUsize::new(0),
    stack_high: AtomicUsize::new(0),
    count: AtomicUsize::new(0),
    pcs: UnsafeCell::new([0; MAX_FRAMES]),
};

/// Whether a [`Sampler`] exists (there is one slot).
static RUNNING: AtomicBool = AtomicBool::new(false);

/// A running sampler of the thread that started it; [`Sampler::stop`] (or drop)
/// ends it.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// One sample: when it was taken, and its PCs, innermost first (empty when the
/// thread was not inside a call into Wasm).
pub struct RawSample<'a> {
    pub time: Duration,
    pub pcs: &'a [usize],
}

impl Sampler {
    /// Samples the calling thread every `interval`, calling `on_sample` on the
    /// sampler thread with each sample's PCs. Fails if a sampler already runs in
    /// this process, or if the signal handler or the thread cannot be set up.
    pub fn start(
        interval: Duration,
        mut on_sample: impl FnMut(RawSample<'_>) + Send + 'static,
    ) -> std::io::Result<Sampler> {
        if RUNNING.swap(true, Ordering::AcqRel) {
            return Err(std::io::Error::other(
                "a guest profiler is already running in this process",
            ));
        }
        let started = (|| {
            install_handler()?;
            let (low, high) = current_stack()?;
            SLOT.stack_low.store(low, Ordering::Relaxed);
            SLOT.stack_high.store(high, Ordering::Relaxed);
            // SAFETY: gettid has no preconditions.
            SLOT.target
                .store(unsafe { libc::gettid() } as i64, Ordering::Release);
            let stop = Arc::new(AtomicBool::new(false));
            let stopping = stop.clone();
            let thread = std::thread::Builder::new()
                .name("wazerox-guest-profiler".into())
                .spawn(move || {
                    let start = Instant::now();
                    let mut pcs = Vec::with_capacity(MAX_FRAMES);
                    while !stopping.load(Ordering::Acquire) {
                        std::thread::sleep(interval);
                        if take_sample(&mut pcs) {
                            on_sample(RawSample {
                                time: start.elapsed(),
                                pcs: &pcs,
                            });
                        }
                    }
                })?;
            Ok(Sampler {
                stop,
                thread: Some(thread),
            })
        })();
        if started.is_err() {
            RUNNING.store(false, Ordering::Release);
        }
        started
    }

    /// Stops sampling; every sample was passed to the callback when this returns.
    pub fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.store(true, Ordering::Release);
            let _ = thread.join();
            RUNNING.store(false, Ordering::Release);
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.end();
    }
}

/// Asks the profiled thread for a sample and copies it into `pcs`; false when
/// the thread did not answer (gone, or blocking the signal) within a second.
fn take_sample(pcs: &mut Vec<usize>) -> bool {
    SLOT.state.store(REQUESTED, Ordering::Release);
    let target = SLOT.target.load(Ordering::Acquire);
    // SAFETY: tgkill only sends a signal. By kernel thread id, not pthread_t: a
    // thread that has exited makes it fail with ESRCH rather than be undefined
    // behaviour, and a reused id reaches a thread whose handler ignores it.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            libc::getpid(),
            target as libc::pid_t,
            libc::SIGPROF,
        )
    } == 0;
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match SLOT.state.load(Ordering::Acquire) {
            DONE => break,
            REQUESTED if !sent || Instant::now() > deadline => {
                if SLOT
                    .state
                    .compare_exchange(REQUESTED, IDLE, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return false;
                }
            }
            _ => std::thread::yield_now(),
        }
    }
    let count = SLOT.count.load(Ordering::Relaxed).min(MAX_FRAMES);
    pcs.clear();
    // SAFETY: DONE was loaded with Acquire: the handler finished writing, and
    // nothing writes until the state leaves DONE (see `SampleSlot`).
    let written: &[usize; MAX_FRAMES] = unsafe { &*SLOT.pcs.get() };
    pcs.extend_from_slice(&written[..count]);
    SLOT.state.store(IDLE, Ordering::Release);
    true
}

/// `[low, high)` of the calling thread's stack mapping.
fn current_stack() -> std::io::Result<(usize, usize)> {
    // SAFETY: pthread_getattr_np fills `attr` for the calling thread; we destroy it.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        let r = libc::pthread_getattr_np(libc::pthread_self(), &mut attr);
        if r != 0 {
            return Err(std::io::Error::from_raw_os_error(r));
        }
        let mut address: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let r = libc::pthread_attr_getstack(&attr, &mut address, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        if r != 0 {
            return Err(std::io::Error::from_raw_os_error(r));
        }
        Ok((address as usize, address as usize + size))
    }
}

fn install_handler() -> std::io::Result<()> {
    static INSTALLED: std::sync::OnceLock<Result<(), i32>> = std::sync::OnceLock::new();
    let installed = INSTALLED.get_or_init(|| {
        // SAFETY: the action is zeroed then filled in; `on_sigprof` has the
        // SA_SIGINFO signature.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigprof as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(libc::SIGPROF, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
            }
        }
        Ok(())
    });
    installed.map_err(std::io::Error::from_raw_os_error)
}

/// # Safety
/// Called by the kernel as an `SA_SIGINFO` handler: `context` is a valid
/// `ucontext_t` of the interrupted code on this thread.
unsafe extern "C" fn on_sigprof(
    _signal: libc::c_int,
    _info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: gettid has no preconditions and is async-signal-safe.
    if i64::from(unsafe { libc::gettid() }) != SLOT.target.load(Ordering::Acquire) {
        return;
    }
    if SLOT
        .state
        .compare_exchange(REQUESTED, WRITING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    // SAFETY: per the contract; this thread won the exchange, so it alone writes
    // the buffer until it stores DONE.
    let count = unsafe { capture(context, &mut *SLOT.pcs.get()) };
    SLOT.count.store(count, Ordering::Relaxed);
    SLOT.state.store(DONE, Ordering::Release);
}

/// Copies the interrupted frame-pointer chain's PCs into `pcs`; 0 when the thread
/// is not inside a call into Wasm, only the PC when its stack pointer is not on
/// its stack below the entry (a signal stack, the entry itself).
///
/// # Safety
/// `context` is the signal context of code interrupted on this thread.
unsafe fn capture(context: *mut libc::c_void, pcs: &mut [usize; MAX_FRAMES]) -> usize {
    let Some((_, _, entry_sp)) = traphandlers::innermost_activation() else {
        return 0;
    };
    // SAFETY: per the contract.
    let (pc, mut fp, sp) = unsafe { registers(context) };
    let (low, high) = (
        SLOT.stack_low.load(Ordering::Relaxed),
        SLOT.stack_high.load(Ordering::Relaxed),
    );
    // The interrupted code runs on this thread's stack below the entry (not on a
    // signal stack, not before the entry saved its stack pointer): everything in
    // [sp, entry_sp] and just above is mapped, live stack.
    pcs[0] = pc;
    if !(low <= sp && sp < entry_sp && entry_sp < high) {
        return 1;
    }
    let mut count = 1;
    while count < MAX_FRAMES {
        if fp < sp || fp >= entry_sp || !fp.is_multiple_of(16) {
            break;
        }
        // SAFETY: sp <= fp < entry_sp, 16-aligned: both words of the record lie
        // in the live stack checked above.
        let (next_fp, return_address) =
            unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if next_fp <= fp || return_address == 0 {
            break;
        }
        pcs[count] = return_address - 1;
        count += 1;
        fp = next_fp;
    }
    count
}

/// PC, frame pointer and stack pointer of a signal context.
///
/// # Safety
/// `context` is a valid `ucontext_t`.
#[cfg(target_arch = "x86_64")]
unsafe fn registers(context: *mut libc::c_void) -> (usize, usize, usize) {
    // SAFETY: per the contract.
    let gregs = unsafe { &(*context.cast::<libc::ucontext_t>()).uc_mcontext.gregs };
    (
        gregs[libc::REG_RIP as usize] as usize,
        gregs[libc::REG_RBP as usize] as usize,
        gregs[libc::REG_RSP as usize] as usize,
    )
}

/// PC, frame pointer and stack pointer of a signal context.
///
/// # Safety
/// `context` is a valid `ucontext_t`.
#[cfg(target_arch = "aarch64")]
unsafe fn registers(context: *mut libc::c_void) -> (usize, usize, usize) {
    // SAFETY: per the contract.
    let mcontext = unsafe { &(*context.cast::<libc::ucontext_t>()).uc_mcontext };
    (
        mcontext.pc as usize,
        mcontext.regs[29] as usize,
        mcontext.sp as usize,
    )
}
