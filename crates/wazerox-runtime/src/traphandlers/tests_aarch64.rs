//! Trap handling against hand-assembled AArch64 code blobs: the same behaviours as
//! the x86-64 tests, fewer variations (the shared, architecture-neutral logic is
//! covered there).

use super::*;
use crate::code_memory::CodeMemory;
use crate::code_registry::{FunctionRange, ModuleCode};
use crate::memory::{LinearMemory, MemoryStyle};
use std::collections::HashMap;
use std::sync::Arc;

const MAX_STACK: usize = 512 * 1024;

const RET: u32 = 0xd65f03c0;
const UDF: u32 = 0x00000000; // udf #0
const LDR_X0_X0: u32 = 0xf9400000; // ldr x0, [x0]
const PUSH_FRAME: u32 = 0xa9bf7bfd; // stp x29, x30, [sp, #-16]!
const SET_FP: u32 = 0x910003fd; // mov x29, sp
const BLR_X0: u32 = 0xd63f0000;
const POP_FRAME: u32 = 0xa8c17bfd; // ldp x29, x30, [sp], #16

fn module(
    words: &[u32],
    functions: &[(u32, u32, u32)],
    traps: &[(u32, TrapCode)],
) -> Arc<ModuleCode> {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let code = CodeMemory::new(&bytes, |_| Ok(())).unwrap();
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
        None,
        HashMap::new(),
    ));
    code_registry::register(&module);
    module
}

fn call1(address: usize, argument: usize) {
    // SAFETY: every blob called this way is a complete C-ABI function taking one
    // word, or traps.
    let f: extern "C" fn(usize) = unsafe { std::mem::transmute(address) };
    f(argument);
}

fn run(store: &VMStoreContext, f: impl FnMut()) -> Result<(), TrapReason> {
    // SAFETY: `store` is borrowed for the call; the closures own nothing that needs
    // dropping across their call into a blob.
    unsafe { catch_traps(store, MAX_STACK, f) }
}

fn wasm_trap(result: Result<(), TrapReason>) -> (TrapCode, Vec<(u32, u32)>, Option<usize>) {
    match result {
        Err(TrapReason::Wasm {
            code,
            backtrace,
            fault_address,
            ..
        }) => (
            code,
            backtrace
                .frames
                .iter()
                .map(|f| (f.func_index, f.func_offset))
                .collect(),
            fault_address,
        ),
        other => panic!("expected a Wasm trap, got {other:?}"),
    }
}

#[test]
fn traps_backtraces_and_normal_returns() {
    let store = VMStoreContext::new();
    let ret = module(&[RET], &[(0, 4, 0)], &[]);
    assert!(run(&store, || call1(ret.code.base(), 0)).is_ok());
    let udf = module(
        &[UDF],
        &[(0, 4, 1)],
        &[(0, TrapCode::UnreachableCodeReached)],
    );
    for _ in 0..10_000 {
        let (code, frames, _) = wasm_trap(run(&store, || call1(udf.code.base(), 0)));
        assert_eq!(
            (code, frames),
            (TrapCode::UnreachableCodeReached, vec![(1, 0)])
        );
    }
    // Caller (func 3) calls x0 = callee (func 4), which traps at offset 8.
    let caller = module(
        &[PUSH_FRAME, SET_FP, BLR_X0, POP_FRAME, RET],
        &[(0, 20, 3)],
        &[],
    );
    let callee = module(
        &[PUSH_FRAME, SET_FP, UDF],
        &[(0, 12, 4)],
        &[(8, TrapCode::IntegerOverflow)],
    );
    let (code, frames, _) = wasm_trap(run(&store, || {
        call1(caller.code.base(), callee.code.base())
    }));
    assert_eq!(code, TrapCode::IntegerOverflow);
    assert_eq!(frames, [(4, 8), (3, 11)]);
    // SAFETY: nothing else uses the store.
    assert_eq!(unsafe { *store.stack_limit.get() }, usize::MAX);
    assert!(innermost_activation().is_none());
}

#[test]
fn guard_region_accesses_trap() {
    let memory = LinearMemory::new(1, None, &MemoryStyle::default()).unwrap();
    let base = memory.data().as_ptr() as usize;
    let store = VMStoreContext::new();
    // SAFETY: no code of the store runs; the memory outlives the calls below.
    unsafe { store.add_memory_reservation(memory.reservation()) };
    let load = module(
        &[LDR_X0_X0, RET],
        &[(0, 8, 2)],
        &[(0, TrapCode::MemoryOutOfBounds)],
    );
    assert!(run(&store, || call1(load.code.base(), base + 65528)).is_ok());
    let address = base + (4 << 30) + 100;
    let (code, frames, fault) = wasm_trap(run(&store, || call1(load.code.base(), address)));
    assert_eq!((code, fault), (TrapCode::MemoryOutOfBounds, Some(address)));
    assert_eq!(frames, [(2, 0)]);
}

#[test]
fn deep_recursion_hits_the_stack_limit() {
    // f(x0 = &stack_limit): push frame; if sp < *x0 { udf } else { bl f }.
    let code = [
        PUSH_FRAME, SET_FP, 0xf9400009, // ldr x9, [x0]
        0x910003ea, // mov x10, sp
        0xeb09015f, // cmp x10, x9
        0x54000083, // b.lo 36
        0x97fffffa, // bl 0
        POP_FRAME, RET, UDF,
    ];
    let m = module(&code, &[(0, 40, 6)], &[(36, TrapCode::StackOverflow)]);
    let store = VMStoreContext::new();
    let limit = store.stack_limit.get() as usize;
    let (code, frames, _) = wasm_trap(run(&store, || call1(m.code.base(), limit)));
    assert_eq!(code, TrapCode::StackOverflow);
    assert_eq!(frames.len(), MAX_BACKTRACE_FRAMES);
    assert_eq!(frames[..2], [(6, 36), (6, 27)]);
}

extern "C" fn host_failing(_: usize) {
    set_pending_host_error(Box::new(std::io::Error::other("host says no")));
}

thread_local! {
    static INNER_CODE: Cell<usize> = const { Cell::new(0) };
}

extern "C" fn host_reentering_wasm(_: usize) {
    let store = VMStoreContext::new();
    let inner = INNER_CODE.with(Cell::get);
    let (code, ..) = wasm_trap(run(&store, || call1(inner, 0)));
    assert_eq!(code, TrapCode::UnreachableCodeReached);
}

#[test]
fn host_errors_and_nested_activations() {
    // Calls the host function in x0, then traps with the code at offset 12.
    let calling = module(
        &[PUSH_FRAME, SET_FP, BLR_X0, UDF],
        &[(0, 16, 5)],
        &[(12, TrapCode::HostError)],
    );
    let store = VMStoreContext::new();
    match run(&store, || {
        call1(calling.code.base(), host_failing as *const () as usize)
    }) {
        Err(TrapReason::Host(e)) => assert_eq!(e.to_string(), "host says no"),
        other => panic!("expected a host error, got {other:?}"),
    }
    let udf = module(
        &[UDF],
        &[(0, 4, 1)],
        &[(0, TrapCode::UnreachableCodeReached)],
    );
    INNER_CODE.with(|c| c.set(udf.code.base()));
    let returning = module(&[PUSH_FRAME, SET_FP, BLR_X0, POP_FRAME, RET], &[], &[]);
    let host = host_reentering_wasm as *const () as usize;
    assert!(run(&store, || call1(returning.code.base(), host)).is_ok());
}
