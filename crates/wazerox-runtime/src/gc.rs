//! GC support of the runtime (docs/gc.md): the `RefTest` builtin.

use crate::builtins::catching;
use crate::instance::Instance;
use crate::vmcontext::VMFuncRef;
use wazerox_environ::gc::{self, FLAG_ARRAY, HEADER_FLAGS, HEADER_TYPE_ID};
use wazerox_environ::types::TypeIndex;

/// The header's type id and flags of object `word`.
///
/// # Safety
/// `word` must be a GC object of a live store (`gc::is_object`).
unsafe fn header(word: u64) -> (u32, u32) {
    let object = word as usize as *const u8;
    // SAFETY: per the contract, the object's 16-byte header is readable.
    unsafe {
        (
            object.add(HEADER_TYPE_ID as usize).cast::<u32>().read(),
            object.add(HEADER_FLAGS as usize).cast::<u32>().read(),
        )
    }
}

/// Whether object `word` is an array (else a struct).
///
/// # Safety
/// `word` must be a live GC object (`gc::is_object`).
pub unsafe fn is_array(word: u64) -> bool {
    // SAFETY: forwarded.
    unsafe { header(word) }.1 & FLAG_ARRAY != 0
}

/// The engine-wide type id of object `word`.
///
/// # Safety
/// `word` must be a live GC object (`gc::is_object`).
pub unsafe fn type_id(word: u64) -> u32 {
    // SAFETY: forwarded.
    unsafe { header(word) }.0
}

/// The `RefTest` builtin (`wazerox_environ::Builtin::RefTest`).
pub(crate) unsafe extern "C" fn ref_test(vmctx: *mut u8, value: u64, test: u32, ty: u32) -> u32 {
    let body = || {
        if value == 0 {
            return 0;
        }
        // SAFETY: called by compiled code with its own VMContext.
        let instance = unsafe { Instance::from_vmctx(vmctx) };
        let actual = match test {
            gc::TEST_STRUCT | gc::TEST_ARRAY => {
                if !gc::is_object(value) {
                    return 0;
                }
                // SAFETY: an any-hierarchy word that is an object (checked above).
                let (_, flags) = unsafe { header(value) };
                let is_array = flags & FLAG_ARRAY != 0;
                return u32::from(is_array == (test == gc::TEST_ARRAY));
            }
            _ if instance.module().is_func_type(TypeIndex(ty)) => {
                // SAFETY: validation typed `value` as a function reference, and
                // function references are live `VMFuncRef`s while the store is.
                unsafe { (*(value as usize as *const VMFuncRef)).type_id }
            }
            _ => {
                if !gc::is_object(value) {
                    return 0;
                }
                // SAFETY: as above.
                unsafe { header(value) }.0
            }
        };
        let expected = instance.type_id(TypeIndex(ty));
        u32::from(actual == expected || instance.types().is_subtype(actual, expected))
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { catching(body) }
}
