//! Installing the process-wide signal handlers, forwarding foreign faults, the
//! per-thread alternate signal stack, and the thread's stack bounds.

use super::{arch, current_activation};
use crate::code_registry;
use crate::mmap::{Mmap, page_size};
use std::sync::OnceLock;

const SIGNALS: [libc::c_int; 4] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];

/// The handlers that were installed before ours, in `SIGNALS` order; recorded
/// before ours are installed, so the handler always finds them.
static PREVIOUS: OnceLock<[libc::sigaction; 4]> = OnceLock::new();

/// Installs the trap handlers (once per process).
pub fn init_traps() {
    PREVIOUS.get_or_init(|| {
        // SAFETY: querying sigactions writes into our zeroed structs, and installing
        // ours uses the SA_SIGINFO signature `handler` has.
        unsafe {
            let mut previous: [libc::sigaction; 4] = std::mem::zeroed();
            for (i, signal) in SIGNALS.iter().enumerate() {
                libc::sigaction(*signal, std::ptr::null(), &mut previous[i]);
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
            libc::sigemptyset(&mut action.sa_mask);
            for signal in SIGNALS {
                if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                    panic!("cannot install the handler for signal {signal}");
                }
            }
            previous
        }
    });
}

unsafe extern "C" fn handler(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    let activation = current_activation();
    // SAFETY: the kernel passes a valid ucontext to SA_SIGINFO handlers.
    let (pc, fp) = unsafe { arch::context_pc_fp(context) };
    if activation.is_null() || !code_registry::is_jit_code(pc) {
        // SAFETY: forwarding the same arguments the kernel gave us.
        unsafe { forward(signal, info, context) };
        return;
    }
    let fault_address = match signal {
        // SAFETY: SIGSEGV/SIGBUS siginfo carries the faulting address.
        libc::SIGSEGV | libc::SIGBUS => Some(unsafe { (*info).si_addr() } as usize),
        _ => None,
    };
    // SAFETY: the activation is this thread's innermost one, alive on a frame below
    // the faulting JIT code, and we resume into its jump buffer, never into the
    // faulting code.
    unsafe {
        let buf = (*activation).record_trap(pc, fp, fault_address, signal);
        arch::resume_in_unwind(context, buf);
    }
}

/// Hands a fault that is not ours to whoever handled the signal before us.
///
/// # Safety
/// Called from our signal handler with its arguments.
unsafe fn forward(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let Some(i) = SIGNALS.iter().position(|s| *s == signal) else {
        return;
    };
    let Some(previous) = PREVIOUS.get().map(|p| &p[i]) else {
        return;
    };
    let target = previous.sa_sigaction;
    if target == libc::SIG_DFL || target == libc::SIG_IGN {
        // Put the default action back and return: the faulting instruction runs
        // again and the fault now takes its default course (usually termination).
        // SAFETY: restoring a previously valid sigaction.
        unsafe { libc::sigaction(signal, previous, std::ptr::null_mut()) };
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with this signature.
        unsafe {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(target);
            f(signal, info, context);
        }
    } else {
        // SAFETY: the previous handler was installed with the one-argument signature.
        unsafe {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(target);
            f(signal);
        }
    }
}

/// Size our handler's alternate stack needs (it takes a lock and searches a map).
const ALTERNATE_STACK_SIZE: usize = 64 * 1024;

/// An alternate signal stack owned by this thread, removed when the thread ends.
pub(crate) struct AlternateStack {
    mmap: Mmap,
}

impl AlternateStack {
    /// Installs a stack for signal handlers unless the thread already has one that
    /// is large enough (Rust's runtime installs a small one on some threads).
    pub(crate) fn install_if_needed() -> Option<AlternateStack> {
        // SAFETY: querying the current alternate stack has no preconditions.
        unsafe {
            let mut current: libc::stack_t = std::mem::zeroed();
            if libc::sigaltstack(std::ptr::null(), &mut current) == 0
                && current.ss_flags & libc::SS_DISABLE == 0
                && current.ss_size >= ALTERNATE_STACK_SIZE
            {
                return None;
            }
        }
        let page = page_size();
        let mut mmap = Mmap::reserve(ALTERNATE_STACK_SIZE + page).ok()?;
        // The lowest page stays inaccessible as a guard.
        mmap.make_accessible(page, ALTERNATE_STACK_SIZE).ok()?;
        let stack = libc::stack_t {
            // SAFETY: `page` is within the mapping.
            ss_sp: unsafe { mmap.as_mut_ptr().add(page) }.cast(),
            ss_flags: 0,
            ss_size: ALTERNATE_STACK_SIZE,
        };
        // SAFETY: the stack memory stays mapped until `drop` disables it.
        if unsafe { libc::sigaltstack(&stack, std::ptr::null_mut()) } != 0 {
            return None;
        }
        Some(AlternateStack { mmap })
    }
}

impl Drop for AlternateStack {
    fn drop(&mut self) {
        let disable = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: switching the alternate stack off before its memory is unmapped
        // (when `self.mmap` drops right after).
        unsafe { libc::sigaltstack(&disable, std::ptr::null_mut()) };
        let _ = &self.mmap;
    }
}

/// Margin kept free above the thread's stack bottom for host code called from Wasm
/// and for signal handling, beyond the Wasm stack limit.
const STACK_MARGIN: usize = 128 * 1024;

/// The lowest address Wasm code of this thread may use.
pub(crate) fn thread_stack_floor() -> usize {
    // SAFETY: pthread_getattr_np fills `attr` for the calling thread; we destroy it.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return 0;
        }
        let mut address: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let ok = libc::pthread_attr_getstack(&attr, &mut address, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        if ok {
            address as usize + STACK_MARGIN
        } else {
            0
        }
    }
}
