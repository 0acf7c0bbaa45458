//! Installing the process-wide signal handlers, forwarding foreign faults, the
//! per-thread alternate signal stack, and the thread's stack bounds.

use super::{arch, current_activation};
use crate::code_registry;
use crate::mmap::{Mmap, page_size};
use std::sync::OnceLock;
use wazerox_environ::TrapCode;

const SIGNALS: [libc::c_int; 4] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];

/// The handlers that were installed before ours, in `SIGNALS` order. Recorded
/// before ours are installed; the handler reads them with a plain atomic load.
static PREVIOUS: OnceLock<[libc::sigaction; 4]> = OnceLock::new();

/// Installs the trap handlers for SIGSEGV, SIGBUS, SIGILL and SIGFPE, remembering
/// the previous ones for faults that are not ours. Idempotent and process-wide;
/// once done, one atomic load (inlined: every call into Wasm checks it).
#[inline]
pub fn init_traps() {
    if PREVIOUS.get().is_none() {
        install_handlers();
    }
}

#[cold]
fn install_handlers() {
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
            // SA_ONSTACK: a Wasm stack overflow must not need more stack to report.
            // SA_NODEFER: we leave the handler by returning into the unwind routine,
            // never by a jump, so the mask would be restored anyway; not deferring
            // lets a fault inside the handler itself reach the next handler instead
            // of killing the process with a blocked synchronous signal.
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
            libc::sigemptyset(&mut action.sa_mask);
            for signal in SIGNALS {
                if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                    panic!(
                        "cannot install the trap handler for signal {signal}: {}",
                        std::io::Error::last_os_error()
                    );
                }
            }
            previous
        }
    });
}

/// Whether the kernel raised the signal for a fault of the interrupted instruction
/// (as opposed to `kill`, `raise`, `sigqueue`, which carry `si_code <= 0`).
///
/// # Safety
/// `info` is the siginfo passed to an `SA_SIGINFO` handler.
unsafe fn is_fault(info: *const libc::siginfo_t) -> bool {
    // SAFETY: per the contract.
    unsafe { (*info).si_code > 0 }
}

unsafe extern "C" fn handler(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    let activation = current_activation();
    // SAFETY: the kernel passes a valid ucontext to SA_SIGINFO handlers.
    let (pc, fp) = unsafe { arch::context_pc_fp(context) };
    // Ours: a fault (not a sent signal) of JIT code running in an activation.
    // SAFETY: the kernel passes a valid siginfo to SA_SIGINFO handlers.
    let ours = !activation.is_null() && unsafe { is_fault(info) } && code_registry::is_jit_code(pc);
    if !ours {
        // SAFETY: forwarding the same arguments the kernel gave us.
        unsafe { forward(signal, info, context) };
        return;
    }
    let fault_address = match signal {
        // SAFETY: SIGSEGV/SIGBUS siginfo carries the faulting address.
        libc::SIGSEGV | libc::SIGBUS => Some(unsafe { (*info).si_addr() } as usize),
        _ => None,
    };
    let mut code = None;
    if let Some(address) = fault_address {
        // SAFETY: the activation is this thread's innermost one (see below).
        match unsafe { classify_fault(&*activation, address) } {
            Fault::Memory => {}
            Fault::Stack => code = Some(TrapCode::StackOverflow),
            Fault::NotWasm => not_a_wasm_trap(signal, pc, address),
        }
    }
    // SAFETY: the activation is this thread's innermost one, alive on a frame above
    // the faulting JIT code (which it called), and we resume into its jump buffer,
    // never into the faulting code.
    unsafe {
        let buf = (*activation).record_trap(pc, fp, fault_address, signal, code);
        arch::resume_in_unwind(context, buf);
    }
}

/// What a memory fault of compiled code is.
enum Fault {
    /// In a linear memory's reservation (its guard region): an out-of-bounds access.
    Memory,
    /// In the guard below the thread's Wasm stack: a stack overflow.
    Stack,
    /// Anywhere else: compiled code touched memory Wasm cannot name — a bug of ours
    /// (translator, runtime, or a corrupted artifact), never the guest's doing.
    NotWasm,
}

/// How far below the thread's stack floor a fault still counts as the Wasm stack
/// overflowing: the margin kept for host code, plus the kernel's guard pages.
const STACK_GUARD_SPAN: usize = STACK_MARGIN + 1024 * 1024;

/// Classifies a SIGSEGV/SIGBUS of compiled code by its address. Async-signal-safe.
///
/// # Safety
/// `activation` is this thread's innermost activation.
unsafe fn classify_fault(activation: &super::Activation, address: usize) -> Fault {
    // SAFETY: the activation's store is valid while it runs, and only this thread
    // (which runs it) writes its list of reservations.
    if unsafe { (*activation.store).is_memory_address(address) } {
        return Fault::Memory;
    }
    let floor = activation.stack_floor;
    if floor != 0 && address < floor && address >= floor.saturating_sub(STACK_GUARD_SPAN) {
        return Fault::Stack;
    }
    Fault::NotWasm
}

/// Ends the process for a fault that is not a Wasm trap, saying so on stderr:
/// reporting it to the guest as out-of-bounds would hide a bug of the runtime.
/// Async-signal-safe: formats into a stack buffer, `write`, `abort`.
fn not_a_wasm_trap(signal: libc::c_int, pc: usize, address: usize) -> ! {
    let mut buffer = [0u8; 256];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        let n = bytes.len().min(buffer.len() - len);
        buffer[len..len + n].copy_from_slice(&bytes[..n]);
        len += n;
    };
    put(b"wazerox: fatal: ");
    put(if signal == libc::SIGBUS {
        b"SIGBUS"
    } else {
        b"SIGSEGV"
    });
    put(b" in compiled code at pc ");
    put(&hex(pc));
    put(b" accessing ");
    put(&hex(address));
    put(b": not a Wasm trap (outside every linear memory and the Wasm stack guard of the running store); aborting\n");
    // SAFETY: writing a buffer we own to stderr, then aborting; both are
    // async-signal-safe.
    unsafe {
        libc::write(2, buffer.as_ptr().cast(), len);
        libc::abort();
    }
}

/// `0x` and 16 hexadecimal digits.
fn hex(value: usize) -> [u8; 18] {
    let mut out = *b"0x0000000000000000";
    for i in 0..16 {
        let digit = (value >> (4 * (15 - i))) & 0xf;
        out[2 + i] = b"0123456789abcdef"[digit];
    }
    out
}

/// Hands a signal that is not ours to whoever handled it before us.
///
/// # Safety
/// Called from our signal handler with its arguments.
unsafe fn forward(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let Some(i) = SIGNALS.iter().position(|s| *s == signal) else {
        return;
    };
    // Not yet recorded only while another thread is inside `init_traps`; returning
    // re-runs a faulting instruction, which faults again once it has finished.
    let Some(previous) = PREVIOUS.get().map(|p| &p[i]) else {
        return;
    };
    let target = previous.sa_sigaction;
    // SAFETY: the kernel's siginfo.
    let fault = unsafe { is_fault(info) };
    if target == libc::SIG_IGN {
        if fault {
            // An ignored synchronous fault cannot be ignored: with the default
            // action back, the re-executed instruction ends the process as the
            // kernel would have without us.
            // SAFETY: installing the default action has no preconditions.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
        // A sent signal is ignored, as before us; our handler stays for traps.
    } else if target == libc::SIG_DFL {
        // SAFETY: installing the default action has no preconditions; `raise` is
        // async-signal-safe, and with SA_NODEFER the signal is not blocked here.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            if !fault {
                // Nothing re-executes for a sent signal: deliver it again, now to
                // the default action.
                libc::raise(signal);
            }
        }
        // A fault re-executes its instruction on return and takes the default
        // action (termination with a core dump), as it would have without us.
    } else {
        if previous.sa_flags & libc::SA_RESETHAND != 0 {
            // SAFETY: the previous handler asked to run once; honour that.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
        if previous.sa_flags & libc::SA_SIGINFO != 0 {
            // SAFETY: the previous handler was installed with this signature.
            unsafe {
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    std::mem::transmute(target);
                f(signal, info, context);
            }
        } else {
            // SAFETY: the previous handler was installed with the one-argument
            // signature.
            unsafe {
                let f: extern "C" fn(libc::c_int) = std::mem::transmute(target);
                f(signal);
            }
        }
    }
}

/// Usable size of our alternate signal stack. The handler needs little (a
/// thread-local read, a read lock, a map search, a frame walk), but the kernel's
/// signal frame holds the full vector register state (several KiB with AVX-512 or
/// SVE), so 64 KiB leaves a wide margin.
const ALTERNATE_STACK_SIZE: usize = 64 * 1024;

/// An alternate signal stack owned by this thread, removed when the thread ends.
pub(crate) struct AlternateStack {
    mmap: Mmap,
}

impl AlternateStack {
    /// Installs a stack for signal handlers unless the thread already has one that
    /// is large enough (Rust's runtime installs a small one on its threads).
    pub(crate) fn install_if_needed() -> Option<AlternateStack> {
        // SAFETY: querying the current alternate stack only writes `current`.
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
        // The lowest page stays inaccessible: an overflowing handler faults
        // instead of silently writing below the stack.
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
        // SAFETY: querying and disabling the alternate stack of this thread; our
        // memory is unmapped (when `self.mmap` drops) only after it is no longer
        // installed. Another owner's stack, installed after ours, is left alone.
        unsafe {
            let mut current: libc::stack_t = std::mem::zeroed();
            let ours = self.mmap.as_ptr().add(page_size());
            if libc::sigaltstack(std::ptr::null(), &mut current) == 0
                && current.ss_sp.cast::<u8>().cast_const() == ours
                && current.ss_flags & libc::SS_DISABLE == 0
            {
                let disable = libc::stack_t {
                    ss_sp: std::ptr::null_mut(),
                    ss_flags: libc::SS_DISABLE,
                    ss_size: 0,
                };
                libc::sigaltstack(&disable, std::ptr::null_mut());
            }
        }
    }
}

/// Margin kept free above the thread's stack bottom, below the Wasm stack limit,
/// for host functions called from Wasm and for signal handling on threads without
/// an alternate stack.
pub(crate) const STACK_MARGIN: usize = 128 * 1024;

/// The lowest address Wasm code of this thread may use (0 if unknown).
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
            (address as usize).saturating_add(STACK_MARGIN)
        } else {
            0
        }
    }
}
