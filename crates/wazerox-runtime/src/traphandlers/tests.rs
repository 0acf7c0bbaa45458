//! Trap handling against hand-assembled x86-64 code blobs, registered like compiled
//! modules.

use super::*;
use crate::code_memory::CodeMemory;
use crate::code_registry::{FunctionRange, ModuleCode};
use crate::memory::{LinearMemory, MemoryStyle};
use std::collections::HashMap;
use std::sync::Arc;

const MAX_STACK: usize = 512 * 1024;

// Instruction bytes used below.
const PROLOGUE: [u8; 4] = [0x55, 0x48, 0x89, 0xE5]; // push rbp; mov rbp, rsp
const EPILOGUE: [u8; 2] = [0x5D, 0xC3]; // pop rbp; ret
const UD2: [u8; 2] = [0x0F, 0x0B];
const CALL_RDI: [u8; 2] = [0xFF, 0xD7];
const RET: u8 = 0xC3;
const INT3: u8 = 0xCC;

/// Registers `code` as a module with the given functions and trap sites.
fn module(
    code: &[u8],
    functions: &[(u32, u32, u32)],
    traps: &[(u32, TrapCode)],
) -> Arc<ModuleCode> {
    let code = CodeMemory::new(code, |_| Ok(())).unwrap();
    let functions = functions
        .iter()
        .map(|&(start, end, func_index)| FunctionRange {
            start,
            end,
            func_index,
        })
        .collect();
    let module = Arc::new(ModuleCode::new(
        code,
        functions,
        traps.to_vec(),
        Some("blob".into()),
        HashMap::new(),
    ));
    code_registry::register(&module);
    module
}

fn call0(address: usize) {
    // SAFETY: every blob called this way is a complete C-ABI function taking
    // nothing, or traps.
    let f: extern "C" fn() = unsafe { std::mem::transmute(address) };
    f();
}

fn call1(address: usize, argument: usize) {
    // SAFETY: every blob called this way is a complete C-ABI function taking one
    // word, or traps.
    let f: extern "C" fn(usize) = unsafe { std::mem::transmute(address) };
    f(argument);
}

fn run(store: &VMStoreContext, f: impl FnMut()) -> Result<(), TrapReason> {
    // SAFETY: `store` is borrowed for the call; the closures passed here own nothing
    // that needs dropping across their call into a blob.
    unsafe { catch_traps(store, MAX_STACK, f) }
}

fn wasm_trap(result: Result<(), TrapReason>) -> (TrapCode, usize, Option<usize>, Backtrace) {
    match result {
        Err(TrapReason::Wasm {
            code,
            pc,
            fault_address,
            backtrace,
        }) => (code, pc, fault_address, backtrace),
        other => panic!("expected a Wasm trap, got {other:?}"),
    }
}

fn stack_limit(store: &VMStoreContext) -> usize {
    // SAFETY: the test owns the store; nothing writes it concurrently.
    unsafe { *store.stack_limit.get() }
}

fn frames(backtrace: &Backtrace) -> Vec<(u32, u32)> {
    backtrace
        .frames
        .iter()
        .map(|f| (f.func_index, f.func_offset))
        .collect()
}

#[test]
fn code_that_returns_normally_is_ok() {
    let m = module(&[RET], &[(0, 1, 0)], &[]);
    let store = VMStoreContext::new();
    assert!(run(&store, || call0(m.code.base())).is_ok());
    assert_eq!(stack_limit(&store), usize::MAX);
    assert!(innermost_activation().is_none());
}

#[test]
fn recorded_trap_codes_come_back() {
    let m = module(
        &[INT3, UD2[0], UD2[1], INT3, UD2[0], UD2[1]],
        &[(0, 6, 7)],
        &[
            (1, TrapCode::UnreachableCodeReached),
            (4, TrapCode::IntegerOverflow),
        ],
    );
    let store = VMStoreContext::new();
    let (code, pc, fault, backtrace) = wasm_trap(run(&store, || call0(m.code.base() + 1)));
    assert_eq!(code, TrapCode::UnreachableCodeReached);
    assert_eq!(pc, m.code.base() + 1);
    assert_eq!(fault, None);
    assert_eq!(frames(&backtrace), [(7, 1)]);
    assert!(Arc::ptr_eq(&backtrace.frames[0].module, &m));
    let (code, ..) = wasm_trap(run(&store, || call0(m.code.base() + 4)));
    assert_eq!(code, TrapCode::IntegerOverflow);
    assert_eq!(stack_limit(&store), usize::MAX, "restored after a trap");
    assert!(innermost_activation().is_none());
}

#[test]
fn unrecorded_faults_map_by_signal() {
    let m = module(
        &[
            0x48, 0x8B, 0x07, 0x90, 0x90, 0x90, 0x90, 0x90, // 0: mov rax, [rdi]; nops
            0x31, 0xC9, 0xF7, 0xF1, // 8: xor ecx, ecx; div ecx
            0x0F, 0x0B, // 12: ud2
        ],
        &[],
        &[],
    );
    let memory = LinearMemory::new(1, None, &MemoryStyle::default()).unwrap();
    let guard = memory.data().as_ptr() as usize + (4 << 30) + 8;
    let store = VMStoreContext::new();
    // SAFETY: no code of the store runs; the memory outlives the calls below.
    unsafe { store.add_memory_reservation(memory.reservation()) };
    let (code, _, fault, backtrace) = wasm_trap(run(&store, || call1(m.code.base(), guard)));
    assert_eq!(code, TrapCode::MemoryOutOfBounds);
    assert_eq!(fault, Some(guard));
    assert!(backtrace.frames.is_empty(), "no function ranges, no frames");
    let (code, pc, fault, _) = wasm_trap(run(&store, || call0(m.code.base() + 8)));
    assert_eq!(code, TrapCode::IntegerDivisionByZero);
    assert_eq!(pc, m.code.base() + 10);
    assert_eq!(fault, None);
    let (code, ..) = wasm_trap(run(&store, || call0(m.code.base() + 12)));
    assert_eq!(code, TrapCode::UnreachableCodeReached);
}

/// `call rel32` from `from` (offset of the call instruction) to `to`.
fn call_rel32(from: u32, to: u32) -> [u8; 5] {
    let rel = (to as i32 - (from as i32 + 5)).to_le_bytes();
    [0xE8, rel[0], rel[1], rel[2], rel[3]]
}

#[test]
fn backtrace_walks_wasm_frames_and_skips_trampolines() {
    // 0: trampoline (no function range) calling A; 16: A (func 1) calling B;
    // 32: B (func 2), which traps at offset 36.
    let mut code = vec![INT3; 48];
    let mut put = |at: usize, bytes: &[u8]| code[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &PROLOGUE);
    put(4, &call_rel32(4, 16));
    put(9, &EPILOGUE);
    put(16, &PROLOGUE);
    put(20, &call_rel32(20, 32));
    put(25, &EPILOGUE);
    put(32, &PROLOGUE);
    put(36, &UD2);
    let m = module(
        &code,
        &[(16, 32, 1), (32, 48, 2)],
        &[(36, TrapCode::UnreachableCodeReached)],
    );
    let store = VMStoreContext::new();
    let (code, pc, _, backtrace) = wasm_trap(run(&store, || call0(m.code.base())));
    assert_eq!(code, TrapCode::UnreachableCodeReached);
    assert_eq!(pc, m.code.base() + 36);
    // B at its ud2; A at its call (the return address minus one is inside it).
    assert_eq!(frames(&backtrace), [(2, 4), (1, 8)]);
}

#[test]
fn backtrace_crosses_modules() {
    // Caller (func 5): calls the address in rdi. Callee (func 9): traps.
    let mut caller_code = PROLOGUE.to_vec();
    caller_code.extend(CALL_RDI);
    caller_code.extend(EPILOGUE);
    let caller = module(&caller_code, &[(0, 8, 5)], &[]);
    let mut callee_code = PROLOGUE.to_vec();
    callee_code.extend(UD2);
    let callee = module(
        &callee_code,
        &[(0, 6, 9)],
        &[(4, TrapCode::TableOutOfBounds)],
    );
    let store = VMStoreContext::new();
    let (code, _, _, backtrace) = wasm_trap(run(&store, || {
        call1(caller.code.base(), callee.code.base())
    }));
    assert_eq!(code, TrapCode::TableOutOfBounds);
    assert_eq!(frames(&backtrace), [(9, 4), (5, 5)]);
    assert!(Arc::ptr_eq(&backtrace.frames[0].module, &callee));
    assert!(Arc::ptr_eq(&backtrace.frames[1].module, &caller));
}

#[test]
fn the_same_thread_traps_ten_thousand_times() {
    let m = module(&UD2, &[(0, 2, 0)], &[(0, TrapCode::UnreachableCodeReached)]);
    let store = VMStoreContext::new();
    let mut closure_frames = Vec::new();
    for _ in 0..10_000 {
        let mut frame = 0;
        let result = run(&store, || {
            let marker = 0u8;
            frame = std::hint::black_box(&marker) as *const u8 as usize;
            call0(m.code.base());
        });
        assert_eq!(wasm_trap(result).0, TrapCode::UnreachableCodeReached);
        closure_frames.push(frame);
    }
    closure_frames.dedup();
    assert_eq!(closure_frames.len(), 1, "the stack does not creep");
    assert!(innermost_activation().is_none());
    assert_eq!(stack_limit(&store), usize::MAX);
}

#[test]
fn threads_trap_independently() {
    let m = module(&UD2, &[(0, 2, 0)], &[(0, TrapCode::BadSignature)]);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let store = VMStoreContext::new();
                for _ in 0..500 {
                    let (code, ..) = wasm_trap(run(&store, || call0(m.code.base())));
                    assert_eq!(code, TrapCode::BadSignature);
                }
            });
        }
    });
}

/// Calls the host function in rdi, then traps with the code registered at 6 (or
/// returns if `returns`).
fn host_calling_module(returns: bool, trap: TrapCode) -> Arc<ModuleCode> {
    let mut code = PROLOGUE.to_vec();
    code.extend(CALL_RDI);
    code.extend(if returns { EPILOGUE } else { UD2 });
    module(&code, &[(0, 8, 0)], &[(6, trap)])
}

/// What the test's host functions need; set by the test before calling in.
struct HostContext {
    store: *const VMStoreContext,
    inner_store: *const VMStoreContext,
    trapping_code: usize,
    outer_activation: Option<u64>,
    inner_result: Option<Result<(), TrapReason>>,
    limits: Vec<usize>,
}

thread_local! {
    static HOST: RefCell<HostContext> = const {
        RefCell::new(HostContext {
            store: std::ptr::null(),
            inner_store: std::ptr::null(),
            trapping_code: 0,
            outer_activation: None,
            inner_result: None,
            limits: Vec::new(),
        })
    };
}

/// A host function that enters Wasm again (on `inner_store`) and traps there.
extern "C" fn host_reentering_wasm() {
    let (inner_store, trapping_code) = HOST.with_borrow(|h| (h.inner_store, h.trapping_code));
    let outer = innermost_activation().map(|(id, ..)| id);
    let enter = || {
        // SAFETY: `inner_store` is alive on the test's frame.
        let limit = unsafe { *(*inner_store).stack_limit.get() };
        HOST.with_borrow_mut(|h| h.limits.push(limit));
        call0(trapping_code)
    };
    // SAFETY: as above; the closure owns nothing that needs dropping.
    let result = unsafe { catch_traps(inner_store, MAX_STACK, enter) };
    assert_eq!(
        innermost_activation().map(|(id, ..)| id),
        outer,
        "the inner trap leaves the outer activation current"
    );
    HOST.with_borrow_mut(|h| {
        h.outer_activation = outer;
        h.inner_result = Some(result);
    });
}

#[test]
fn nested_activations_trap_independently() {
    let inner = module(&UD2, &[(0, 2, 3)], &[(0, TrapCode::UnreachableCodeReached)]);
    let outer_store = VMStoreContext::new();
    for (returns, inner_on_same_store) in [(true, true), (false, true), (true, false)] {
        let inner_store = VMStoreContext::new();
        let outer = host_calling_module(returns, TrapCode::IntegerOverflow);
        HOST.with_borrow_mut(|h| {
            h.store = &outer_store;
            h.inner_store = if inner_on_same_store {
                &outer_store
            } else {
                &inner_store
            };
            h.trapping_code = inner.code.base();
            h.limits.clear();
        });
        let mut outer_limit = 0;
        let result = run(&outer_store, || {
            outer_limit = stack_limit(&outer_store);
            call1(
                outer.code.base(),
                host_reentering_wasm as *const () as usize,
            )
        });
        let (inner_result, outer_activation, limits) =
            HOST.with_borrow_mut(|h| (h.inner_result.take(), h.outer_activation, h.limits.clone()));
        let (code, _, _, backtrace) = wasm_trap(inner_result.unwrap());
        assert_eq!(code, TrapCode::UnreachableCodeReached);
        assert_eq!(frames(&backtrace), [(3, 0)]);
        assert!(outer_activation.is_some());
        if inner_on_same_store {
            assert_eq!(limits, [outer_limit], "nested entries keep the outer limit");
        } else {
            assert!(limits[0] < outer_limit, "another store gets its own limit");
            assert_eq!(stack_limit(&inner_store), usize::MAX);
        }
        if returns {
            assert!(result.is_ok());
        } else {
            let (code, _, _, backtrace) = wasm_trap(result);
            assert_eq!(code, TrapCode::IntegerOverflow);
            assert_eq!(frames(&backtrace), [(0, 6)]);
        }
        assert_eq!(stack_limit(&outer_store), usize::MAX);
        assert!(innermost_activation().is_none());
    }
}

extern "C" fn host_reading_stack_limit() {
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    HOST.with_borrow_mut(|h| {
        // SAFETY: the store is alive on the test's frame.
        let limit = unsafe { *(*h.store).stack_limit.get() };
        h.limits.push(limit);
        h.limits.push(here);
    });
}

#[test]
fn stack_limit_is_set_below_the_entry_and_restored() {
    let m = host_calling_module(true, TrapCode::UnreachableCodeReached);
    let store = VMStoreContext::new();
    HOST.with_borrow_mut(|h| {
        h.store = &store;
        h.limits.clear();
    });
    let host = host_reading_stack_limit as *const () as usize;
    run(&store, || call1(m.code.base(), host)).unwrap();
    let (limit, here) = HOST.with_borrow(|h| (h.limits[0], h.limits[1]));
    assert!(
        limit < here && here - limit < MAX_STACK,
        "{limit:#x} {here:#x}"
    );
    assert_eq!(stack_limit(&store), usize::MAX);

    // An absurd maximum is clamped to the thread's stack bottom plus a margin.
    HOST.with_borrow_mut(|h| h.limits.clear());
    // SAFETY: as in `run`.
    unsafe { catch_traps(&store, usize::MAX, || call1(m.code.base(), host)) }.unwrap();
    let limit = HOST.with_borrow(|h| h.limits[0]);
    assert_eq!(limit, signals::thread_stack_floor());
    assert!(limit > 0);
}

#[test]
fn deep_recursion_hits_the_stack_limit() {
    // f(rdi = &stack_limit): push rbp; mov rbp, rsp; cmp rsp, [rdi]; jb trap;
    // call f; pop rbp; ret; trap: ud2 — the check Cranelift emits in prologues.
    let code = [
        0x55, 0x48, 0x89, 0xE5, // 0: prologue
        0x48, 0x3B, 0x27, // 4: cmp rsp, [rdi]
        0x72, 0x07, // 7: jb 16
        0xE8, 0xF2, 0xFF, 0xFF, 0xFF, // 9: call 0
        0x5D, 0xC3, // 14: epilogue
        0x0F, 0x0B, // 16: ud2
    ];
    let m = module(&code, &[(0, 18, 4)], &[(16, TrapCode::StackOverflow)]);
    let store = VMStoreContext::new();
    let limit_address = store.stack_limit.get() as usize;
    let (code, pc, _, backtrace) = wasm_trap(run(&store, || call1(m.code.base(), limit_address)));
    assert_eq!(code, TrapCode::StackOverflow);
    assert_eq!(pc, m.code.base() + 16);
    assert_eq!(backtrace.frames.len(), MAX_BACKTRACE_FRAMES, "capped");
    assert_eq!(frames(&backtrace)[..2], [(4, 16), (4, 13)]);
    // The thread is fine afterwards.
    let again = run(&store, || call1(m.code.base(), limit_address));
    assert_eq!(wasm_trap(again).0, TrapCode::StackOverflow);
}

extern "C" fn host_failing() {
    set_pending_host_error(Box::new(std::io::Error::other("host says no")));
}

extern "C" fn host_panicking() {
    set_pending_panic(Box::new("host panicked"));
}

extern "C" fn host_succeeding() {}

#[test]
fn host_errors_and_panics_travel_through_host_error_traps() {
    let m = host_calling_module(false, TrapCode::HostError);
    let store = VMStoreContext::new();
    let via = |host: extern "C" fn()| run(&store, || call1(m.code.base(), host as usize));
    match via(host_failing) {
        Err(TrapReason::Host(e)) => assert_eq!(e.to_string(), "host says no"),
        other => panic!("expected a host error, got {other:?}"),
    }
    match via(host_panicking) {
        Err(TrapReason::Panic(p)) => assert_eq!(p.downcast_ref::<&str>(), Some(&"host panicked")),
        other => panic!("expected a panic, got {other:?}"),
    }
    // Without a parked error the trap is reported as it is.
    let (code, ..) = wasm_trap(via(host_succeeding));
    assert_eq!(code, TrapCode::HostError);
}

#[test]
#[should_panic(expected = "outside of any Wasm activation")]
fn pending_errors_need_an_activation() {
    set_pending_host_error(Box::new(std::io::Error::other("nowhere to go")));
}

#[test]
fn a_panic_in_the_closure_propagates_and_cleans_up() {
    let store = VMStoreContext::new();
    let result = panic::catch_unwind(AssertUnwindSafe(|| run(&store, || panic!("in closure"))));
    let payload = result.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"in closure"));
    assert!(innermost_activation().is_none());
    assert_eq!(stack_limit(&store), usize::MAX);
}

#[test]
fn linear_memory_bounds_are_enforced_by_faults() {
    // mov al, [rdi]; ret — a heap load, with its trap code recorded as Cranelift does.
    let m = module(
        &[0x8A, 0x07, RET],
        &[(0, 3, 0)],
        &[(0, TrapCode::MemoryOutOfBounds)],
    );
    let memory = LinearMemory::new(1, None, &MemoryStyle::default()).unwrap();
    let base = memory.data().as_ptr() as usize;
    let store = VMStoreContext::new();
    // SAFETY: no code of the store runs; the memory outlives the calls below.
    unsafe { store.add_memory_reservation(memory.reservation()) };
    let load = |address: usize| run(&store, || call1(m.code.base(), address));
    assert!(load(base + 65535).is_ok());
    for address in [base + 65536, base + (4 << 30) - 1, base + (4 << 30) + 100] {
        let (code, pc, fault, _) = wasm_trap(load(address));
        assert_eq!(code, TrapCode::MemoryOutOfBounds);
        assert_eq!(pc, m.code.base());
        assert_eq!(fault, Some(address));
    }
    memory.grow(1).unwrap();
    assert!(load(base + 65536).is_ok(), "grown pages are accessible");
}

const CHILD_ENV: &str = "WAZEROX_TRAPHANDLERS_FORWARD_CHILD";

/// A host fault at a non-null address in the first page (a null-pointer field
/// access): not rejected by Rust's debug null checks, still unmapped.
fn host_null_field_read() {
    // SAFETY: deliberately faulting: the child test process dies here.
    unsafe { std::ptr::read_volatile(std::ptr::without_provenance::<u64>(8)) };
}

extern "C" fn host_faulting() {
    host_null_field_read();
}

/// Not a test by itself: the body of the child processes spawned by
/// `host_faults_are_forwarded`; returns at once unless run as such a child.
#[test]
fn forwarded_fault_child() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    // SAFETY: setrlimit only reads the struct; no core file for the expected crash.
    unsafe {
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &none);
    }
    init_traps();
    match mode.as_str() {
        "outside" => host_null_field_read(),
        "in-host-function" => {
            let m = host_calling_module(true, TrapCode::UnreachableCodeReached);
            let store = VMStoreContext::new();
            let _ = run(&store, || {
                call1(m.code.base(), host_faulting as *const () as usize)
            });
        }
        // SAFETY: deliberately executing an invalid instruction in host code.
        "sigill" => unsafe { std::arch::asm!("ud2") },
        // Compiled code (a heap load, with its trap code) reading memory that is no
        // linear memory of its store: another store's memory, then a wild address.
        "not-wasm-other-store" | "not-wasm-wild" => {
            let m = module(
                &[0x8A, 0x07, RET],
                &[(0, 3, 0)],
                &[(0, TrapCode::MemoryOutOfBounds)],
            );
            let theirs = LinearMemory::new(1, None, &MemoryStyle::default()).unwrap();
            let other_store = VMStoreContext::new();
            let store = VMStoreContext::new();
            // SAFETY: no code of either store runs; the memory outlives the calls.
            unsafe { other_store.add_memory_reservation(theirs.reservation()) };
            let address = if mode == "not-wasm-wild" {
                8
            } else {
                theirs.data().as_ptr() as usize + (4 << 30) + 100
            };
            let _ = run(&store, || call1(m.code.base(), address));
            // Reaching here means the fault was reported as a trap.
            std::process::exit(3);
        }
        other => panic!("unknown mode {other}"),
    }
    std::process::exit(0);
}

#[test]
fn host_faults_are_forwarded() {
    use std::os::unix::process::ExitStatusExt;
    use std::time::{Duration, Instant};
    for (mode, signal) in [
        ("outside", libc::SIGSEGV),
        ("in-host-function", libc::SIGSEGV),
        ("sigill", libc::SIGILL),
    ] {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "traphandlers::tests::forwarded_fault_child",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CHILD_ENV, mode)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // A broken forward re-executes the fault forever: fail instead of hanging.
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("{mode}: the child did not die of its fault");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.signal(), Some(signal), "{mode}: {status:?}");
    }
}

/// A memory fault of compiled code outside every linear memory of its store (and
/// outside the Wasm stack guard) is a bug of ours: the process aborts with a
/// message naming the PC and the address, instead of the guest seeing a trap.
#[test]
fn faults_outside_the_stores_memories_abort() {
    use std::os::unix::process::ExitStatusExt;
    for mode in ["not-wasm-other-store", "not-wasm-wild"] {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "traphandlers::tests::forwarded_fault_child",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CHILD_ENV, mode)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.signal(),
            Some(libc::SIGABRT),
            "{mode}: {:?}, stderr: {stderr}",
            output.status
        );
        assert!(
            stderr.contains("wazerox: fatal: SIGSEGV in compiled code at pc 0x")
                && stderr.contains("not a Wasm trap"),
            "{mode}: {stderr}"
        );
    }
}
