//! The array builtins (docs/gc.md): `array.copy` and the array forms that read
//! data and element segments. Compiled code has checked the arrays for null;
//! these check every range before touching a byte. Also the GC operators of
//! constant expressions (`struct.new*`, `array.new*`), evaluated at
//! instantiation.

use crate::builtins::catching;
use crate::instance::Instance;
use crate::table::range;
use wazerox_environ::TrapCode;
use wazerox_environ::gc::{GcLayout, HEADER_LENGTH, HEADER_SIZE};
use wazerox_environ::module_info::ConstOp;
use wazerox_environ::types::{GcType, TypeIndex};

/// The length of array `object`.
///
/// # Safety
/// `object` is a live array of the store's heap.
unsafe fn length(object: u64) -> u32 {
    // SAFETY: per the contract, the header is readable.
    unsafe {
        (object as usize as *const u8)
            .add(HEADER_LENGTH as usize)
            .cast::<u32>()
            .read()
    }
}

/// The length of array `object`, for the host API.
///
/// # Safety
/// `object` is a live array of a store's heap (rooted by the caller).
pub unsafe fn array_length(object: u64) -> u32 {
    // SAFETY: forwarded.
    unsafe { length(object) }
}

/// The `size` bytes (at most 16) at byte `offset` of object `object`, as the
/// low bytes of a `u128`: a field or element, for the host API.
///
/// # Safety
/// `object` is a live object of a store's heap (rooted by the caller) and
/// `offset + size` is inside it.
pub unsafe fn read_slot(object: u64, offset: u64, size: usize) -> u128 {
    let mut bytes = [0u8; 16];
    // SAFETY: per the contract; `size <= 16` bytes into a local.
    unsafe {
        std::ptr::copy_nonoverlapping(
            (object as usize as *const u8).add(offset as usize),
            bytes.as_mut_ptr(),
            size.min(16),
        )
    };
    u128::from_le_bytes(bytes)
}

/// Writes the low `size` bytes of `value` at byte `offset` of `object`.
///
/// # Safety
/// As for [`read_slot`].
pub unsafe fn write_slot(object: u64, offset: u64, size: usize, value: u128) {
    let bytes = value.to_le_bytes();
    // SAFETY: per the contract; at most 16 bytes from a local.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            (object as usize as *mut u8).add(offset as usize),
            size.min(16),
        )
    };
}

/// The address of element `index` of `object`.
///
/// # Safety
/// `object` is a live array whose elements are `element_size` bytes and
/// `index <= length(object)`.
unsafe fn element(object: u64, index: u64, element_size: u64) -> *mut u8 {
    // SAFETY: per the contract, inside the object (or one past its last element).
    unsafe {
        (object as usize as *mut u8).add((HEADER_SIZE as u64 + index * element_size) as usize)
    }
}

/// The element size of the module's array type `ty`.
fn element_size(instance: &Instance, ty: u32) -> u64 {
    match &instance.module().gc_types[ty as usize] {
        Some(GcType::Array(element)) => u64::from(element.storage.size()),
        _ => unreachable!("validated: an array type"),
    }
}

/// A new zeroed object of the module's type `ty` (`length` elements for an
/// array), or `None` past the heap's cap. Not a safepoint: it never collects.
fn allocate(instance: &Instance, ty: u32, length: u32) -> Option<u64> {
    let type_id = instance.type_id(TypeIndex(ty));
    // SAFETY: the store context outlives its instances' code.
    let heap = unsafe { &(*instance.store_context()).gc };
    // SAFETY: a builtin of the store's running code, the heap's only user now.
    unsafe {
        let layout = heap.layout(type_id, || {
            GcLayout::new(
                instance.module().gc_types[ty as usize]
                    .as_ref()
                    .expect("validated: a struct or array type"),
            )
        });
        heap.allocate(type_id, &layout, length)
    }
}

/// Ends the Wasm call with `code` when `result` is an error.
///
/// # Safety
/// Called by a builtin that compiled code called directly, after `catching`
/// returned (nothing in the builtin's frame needs dropping).
unsafe fn or_trap<T>(result: Result<T, TrapCode>) -> T {
    match result {
        Ok(value) => value,
        // SAFETY: per the contract.
        Err(code) => unsafe { crate::traphandlers::raise_trap(code) },
    }
}

/// The `ArrayCopy` builtin.
pub(crate) unsafe extern "C" fn array_copy(
    _vmctx: *mut u8,
    dst: u64,
    dst_index: u32,
    src: u64,
    src_index: u32,
    len: u32,
    element_size: u32,
) -> u32 {
    let body = || {
        let size = u64::from(element_size);
        // SAFETY: compiled code passes two non-null arrays of its store.
        let (dst_len, src_len) = unsafe { (length(dst), length(src)) };
        let len = u64::from(len);
        if range(u64::from(dst_index), len, u64::from(dst_len)).is_none()
            || range(u64::from(src_index), len, u64::from(src_len)).is_none()
        {
            return 1;
        }
        // SAFETY: both ranges are inside their arrays (checked above), whose
        // elements are `size` bytes (validation: the source's element type
        // matches the destination's); `copy` allows the overlap of an array
        // copied onto itself.
        unsafe {
            std::ptr::copy(
                element(src, u64::from(src_index), size),
                element(dst, u64::from(dst_index), size),
                (len * size) as usize,
            );
        }
        0
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { catching(body) }
}

/// The `ArrayNewData` builtin.
pub(crate) unsafe extern "C" fn array_new_data(
    vmctx: *mut u8,
    ty: u32,
    data: u32,
    offset: u32,
    len: u32,
) -> u64 {
    let body = || {
        // SAFETY: called by compiled code with its own VMContext.
        let instance = unsafe { Instance::from_vmctx(vmctx) };
        let size = element_size(instance, ty);
        let segment = instance.data_segment(data);
        let bytes = range(
            u64::from(offset),
            u64::from(len) * size,
            segment.len() as u64,
        )
        .ok_or(TrapCode::MemoryOutOfBounds)?;
        let object = allocate(instance, ty, len).ok_or(TrapCode::GcHeapExhausted)?;
        let segment = &instance.data_segment(data)[bytes];
        // SAFETY: the new array holds exactly `len * size` bytes of elements;
        // the segment's bytes are the module's, distinct from the heap.
        unsafe {
            std::ptr::copy_nonoverlapping(segment.as_ptr(), element(object, 0, size), segment.len())
        };
        Ok(object)
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { or_trap(catching(body)) }
}

/// The `ArrayNewElem` builtin.
pub(crate) unsafe extern "C" fn array_new_elem(
    vmctx: *mut u8,
    ty: u32,
    elem: u32,
    offset: u32,
    len: u32,
) -> u64 {
    let body = || {
        // SAFETY: called by compiled code with its own VMContext.
        let instance = unsafe { Instance::from_vmctx(vmctx) };
        let items = instance.element_segment(elem);
        let s = range(u64::from(offset), u64::from(len), items.len() as u64)
            .ok_or(TrapCode::TableOutOfBounds)?;
        let object = allocate(instance, ty, len).ok_or(TrapCode::GcHeapExhausted)?;
        write_words(object, 0, &items[s]);
        Ok(object)
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { or_trap(catching(body)) }
}

/// Writes reference words into an array of references from element `dst` on
/// (the range checked by the caller).
fn write_words(object: u64, dst: u64, words: &[usize]) {
    for (i, word) in words.iter().enumerate() {
        // SAFETY: the caller checked `dst + words.len() <= length(object)`;
        // reference elements are 8 bytes (validation: the segment's element
        // type is a reference type, a subtype of the array's).
        unsafe {
            element(object, dst + i as u64, 8)
                .cast::<u64>()
                .write(*word as u64)
        };
    }
}

/// The `ArrayInitData` builtin.
pub(crate) unsafe extern "C" fn array_init_data(
    vmctx: *mut u8,
    ty: u32,
    array: u64,
    dst: u32,
    data: u32,
    src: u32,
    len: u32,
) {
    let body = || {
        // SAFETY: called by compiled code with its own VMContext.
        let instance = unsafe { Instance::from_vmctx(vmctx) };
        let size = element_size(instance, ty);
        // SAFETY: compiled code passes a non-null array of its store.
        let array_len = unsafe { length(array) };
        range(u64::from(dst), u64::from(len), u64::from(array_len))
            .ok_or(TrapCode::ArrayOutOfBounds)?;
        let segment = instance.data_segment(data);
        let bytes = range(u64::from(src), u64::from(len) * size, segment.len() as u64)
            .ok_or(TrapCode::MemoryOutOfBounds)?;
        let segment = &segment[bytes];
        // SAFETY: `dst + len` elements fit the array (checked); the segment is
        // the module's, distinct from the heap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                segment.as_ptr(),
                element(array, u64::from(dst), size),
                segment.len(),
            )
        };
        Ok(())
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { or_trap(catching(body)) }
}

/// The `ArrayInitElem` builtin.
pub(crate) unsafe extern "C" fn array_init_elem(
    vmctx: *mut u8,
    _ty: u32,
    array: u64,
    dst: u32,
    elem: u32,
    src: u32,
    len: u32,
) {
    let body = || {
        // SAFETY: called by compiled code with its own VMContext.
        let instance = unsafe { Instance::from_vmctx(vmctx) };
        // SAFETY: compiled code passes a non-null array of its store.
        let array_len = unsafe { length(array) };
        range(u64::from(dst), u64::from(len), u64::from(array_len))
            .ok_or(TrapCode::ArrayOutOfBounds)?;
        let items = instance.element_segment(elem);
        let s = range(u64::from(src), u64::from(len), items.len() as u64)
            .ok_or(TrapCode::TableOutOfBounds)?;
        write_words(array, u64::from(dst), &items[s]);
        Ok(())
    };
    // SAFETY: called by compiled code; `body` owns everything of this call.
    unsafe { or_trap(catching(body)) }
}

/// Evaluates `op` when it is a GC operator of a constant expression, popping
/// its operands from `stack`: `Some(Some(object))`, `Some(None)` when the heap
/// is full, `None` for the other operators.
pub(crate) fn eval_const_alloc(
    instance: &Instance,
    op: &ConstOp,
    stack: &mut Vec<u128>,
) -> Option<Option<u64>> {
    let (ty, length, values) = match *op {
        ConstOp::StructNew(ty) => {
            let Some(GcType::Struct(fields)) = &instance.module().gc_types[ty.index()] else {
                unreachable!("validated: a struct type")
            };
            let values = stack.split_off(stack.len() - fields.len());
            (ty, 0, values)
        }
        ConstOp::StructNewDefault(ty) => (ty, 0, Vec::new()),
        ConstOp::ArrayNew(ty) => {
            let length = stack.pop().expect("validated") as u32;
            let value = stack.pop().expect("validated");
            (ty, length, vec![value])
        }
        ConstOp::ArrayNewDefault(ty) => (ty, stack.pop().expect("validated") as u32, Vec::new()),
        ConstOp::ArrayNewFixed(ty, n) => {
            let values = stack.split_off(stack.len() - n as usize);
            (ty, n, values)
        }
        _ => return None,
    };
    let Some(object) = allocate(instance, ty.0, length) else {
        return Some(None);
    };
    let gc_type = instance.module().gc_types[ty.index()]
        .as_ref()
        .expect("validated: a struct or array type");
    match (gc_type, op) {
        (GcType::Struct(fields), _) => {
            let layout = GcLayout::new(gc_type);
            for ((field, offset), value) in fields.iter().zip(&layout.field_offsets).zip(&values) {
                // SAFETY: a field of the new struct.
                unsafe {
                    write_slot(
                        object,
                        u64::from(*offset),
                        field.storage.size() as usize,
                        *value,
                    )
                };
            }
        }
        (GcType::Array(element), ConstOp::ArrayNew(_)) => {
            let size = u64::from(element.storage.size());
            for i in 0..u64::from(length) {
                let offset = u64::from(HEADER_SIZE) + i * size;
                // SAFETY: element `i < length` of the new array.
                unsafe { write_slot(object, offset, size as usize, values[0]) };
            }
        }
        (GcType::Array(element), _) => {
            let size = u64::from(element.storage.size());
            for (i, value) in values.iter().enumerate() {
                let offset = u64::from(HEADER_SIZE) + i as u64 * size;
                // SAFETY: element `i < length` of the new array.
                unsafe { write_slot(object, offset, size as usize, *value) };
            }
        }
    }
    Some(Some(object))
}
