//! What translator and runtime share about GC values (docs/gc.md): how a word of
//! the any hierarchy is tagged, the object header, and the targets of the
//! `RefTest` builtin.

use crate::types::{GcType, RefKind, StorageType, ValType};

/// Low bit of an `i31` word.
pub const I31_TAG: u64 = 1;
/// Low two bits of an internalized externref (`any.convert_extern`).
pub const EXTERN_TAG: u64 = 2;
/// Mask of the tag bits: a non-null word with none of them set is an object.
pub const TAG_MASK: u64 = 7;
/// Top bit of an externref that is an externalized any word
/// (`extern.convert_any`); extern handles are small indices without it.
pub const EXTERNALIZED_ANY: u64 = 1 << 63;

/// The word of `ref.i31 v`: the low 31 bits of `v`, shifted left, tagged.
pub fn i31_word(v: i32) -> u64 {
    (((v as u32) << 1) | I31_TAG as u32) as u64
}

/// The payload of an `i31` word, sign-extended (`i31.get_s`).
pub fn i31_get_s(word: u64) -> i32 {
    (word as u32 as i32) >> 1
}

/// The payload of an `i31` word, zero-extended (`i31.get_u`).
pub fn i31_get_u(word: u64) -> u32 {
    (word as u32) >> 1
}

/// Whether a non-null word of the any hierarchy is an `i31`.
pub fn is_i31(word: u64) -> bool {
    word & I31_TAG != 0
}

/// Whether a word of the any hierarchy points to a GC object.
pub fn is_object(word: u64) -> bool {
    word != 0 && word & TAG_MASK == 0
}

/// Whether a word of the any hierarchy is an internalized externref.
pub fn is_internalized_extern(word: u64) -> bool {
    word & 3 == EXTERN_TAG
}

/// `any.convert_extern`: the any word of externref `e` (0 stays null; an
/// externalized any word gets its word back).
pub fn any_from_extern(e: u64) -> u64 {
    if e == 0 {
        0
    } else if e & EXTERNALIZED_ANY != 0 {
        e & !EXTERNALIZED_ANY
    } else {
        (e << 2) | EXTERN_TAG
    }
}

/// `extern.convert_any`: the externref of any word `a`, the inverse of
/// [`any_from_extern`].
pub fn extern_from_any(a: u64) -> u64 {
    if a == 0 {
        0
    } else if is_internalized_extern(a) {
        a >> 2
    } else {
        a | EXTERNALIZED_ANY
    }
}

/// The object a reference word of hierarchy `kind` keeps alive, or 0: an
/// any-hierarchy word itself, an externref only when it is an externalized any
/// word (`extern.convert_any`; other extern words are host handles, which may
/// look like aligned addresses and must not be followed).
pub fn traced_word(kind: RefKind, word: u64) -> u64 {
    match kind {
        RefKind::Any => word,
        RefKind::Extern if word & EXTERNALIZED_ANY != 0 => word & !EXTERNALIZED_ANY,
        _ => 0,
    }
}

/// Object header: the engine-wide type id (`u32`).
pub const HEADER_TYPE_ID: u32 = 0;
/// Object header: flags (`u32`, [`FLAG_ARRAY`], [`FLAG_MARK`]).
pub const HEADER_FLAGS: u32 = 4;
/// Object header: an array's length in elements (`u32`).
pub const HEADER_LENGTH: u32 = 8;
/// Size of the header; fields and elements start here.
pub const HEADER_SIZE: u32 = 16;
/// The object is an array (else a struct).
pub const FLAG_ARRAY: u32 = 1;
/// Set on reachable objects during a collection's mark phase.
pub const FLAG_MARK: u32 = 2;

/// `RefTest` builtin target: any struct.
pub const TEST_STRUCT: u32 = 0;
/// `RefTest` builtin target: any array.
pub const TEST_ARRAY: u32 = 1;
/// `RefTest` builtin target: the module's defined type given as the other
/// operand, or one of its subtypes.
pub const TEST_CONCRETE: u32 = 2;

/// Where a struct's fields or an array's elements lie in an object, computed
/// once per type from its definition, so the translator (field offsets) and
/// the collector (which offsets hold references) agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcLayout {
    /// Bytes of a struct object, header included; for arrays, the header.
    pub size: u32,
    /// Offset of each struct field (empty for arrays).
    pub field_offsets: Vec<u32>,
    /// Offsets of a struct's fields that hold any-hierarchy references.
    pub ref_offsets: Vec<u32>,
    /// Offsets of a struct's externref fields (which may hold externalized
    /// objects, see [`traced_word`]).
    pub extern_offsets: Vec<u32>,
    /// An array's element size (0 for structs).
    pub element_size: u32,
    /// Whether an array's elements are any-hierarchy references.
    pub elements_are_refs: bool,
    /// Whether an array's elements are externrefs.
    pub elements_are_externrefs: bool,
    pub is_array: bool,
}

fn holds_ref(storage: StorageType, kind: RefKind) -> bool {
    matches!(storage, StorageType::Val(ValType::Ref(r)) if r.kind() == kind)
}

impl GcLayout {
    pub fn new(ty: &GcType) -> GcLayout {
        match ty {
            GcType::Struct(fields) => {
                let mut offset = HEADER_SIZE;
                let mut field_offsets = Vec::with_capacity(fields.len());
                let mut ref_offsets = Vec::new();
                let mut extern_offsets = Vec::new();
                for field in fields.iter() {
                    let size = field.storage.size();
                    offset = offset.next_multiple_of(size);
                    field_offsets.push(offset);
                    if holds_ref(field.storage, RefKind::Any) {
                        ref_offsets.push(offset);
                    }
                    if holds_ref(field.storage, RefKind::Extern) {
                        extern_offsets.push(offset);
                    }
                    offset += size;
                }
                GcLayout {
                    size: offset.next_multiple_of(8),
                    field_offsets,
                    ref_offsets,
                    extern_offsets,
                    element_size: 0,
                    elements_are_refs: false,
                    elements_are_externrefs: false,
                    is_array: false,
                }
            }
            GcType::Array(element) => GcLayout {
                size: HEADER_SIZE,
                field_offsets: Vec::new(),
                ref_offsets: Vec::new(),
                extern_offsets: Vec::new(),
                element_size: element.storage.size(),
                elements_are_refs: holds_ref(element.storage, RefKind::Any),
                elements_are_externrefs: holds_ref(element.storage, RefKind::Extern),
                is_array: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_fields_are_naturally_aligned_after_the_header() {
        use crate::types::{FieldType, HeapType, RefType};
        let field = |storage| FieldType {
            storage,
            mutable: true,
        };
        let anyref = StorageType::Val(ValType::Ref(RefType::new(true, HeapType::Any)));
        let ty = GcType::Struct(
            vec![
                field(StorageType::I8),
                field(StorageType::Val(ValType::I64)),
                field(StorageType::I16),
                field(anyref),
                field(StorageType::Val(ValType::EXTERNREF)),
            ]
            .into(),
        );
        let layout = GcLayout::new(&ty);
        assert_eq!(layout.field_offsets, [16, 24, 32, 40, 48]);
        assert_eq!(layout.ref_offsets, [40]);
        assert_eq!(layout.extern_offsets, [48]);
        assert_eq!(layout.size, 56);
    }

    #[test]
    fn i31_round_trips_31_bits() {
        for v in [0, 1, -1, 0x3fff_ffff, -0x4000_0000, i32::MAX, i32::MIN] {
            let word = i31_word(v);
            assert!(is_i31(word) && !is_object(word) && !is_internalized_extern(word));
            assert_eq!(i31_get_s(word), (v << 1) >> 1);
            assert_eq!(i31_get_u(word), (v as u32) & 0x7fff_ffff);
        }
    }

    #[test]
    fn extern_conversions_round_trip() {
        for handle in [1u64, 2, 1 << 40] {
            let any = any_from_extern(handle);
            assert!(is_internalized_extern(any) && !is_object(any));
            assert_eq!(extern_from_any(any), handle);
        }
        for any in [i31_word(5), 0x1000, 0x7fff_ffff_fff8] {
            assert_eq!(any_from_extern(extern_from_any(any)), any);
        }
        assert_eq!(any_from_extern(0), 0);
        assert_eq!(extern_from_any(0), 0);
    }
}
