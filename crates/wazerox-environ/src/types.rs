//! Wasm types as the rest of wazerox sees them, independent of wasmparser's
//! representation so the runtime and the API never depend on the parser.

use std::fmt;

/// A Wasm value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValType {
    I32,
    I64,
    F32,
    F64,
    V128,
    /// A reference: `funcref`, `externref`, `exnref`, or a typed reference
    /// (`(ref $t)`, `(ref null func)`, …) of the function-references proposal.
    Ref(RefType),
}

impl ValType {
    /// `funcref`, i.e. `(ref null func)`.
    pub const FUNCREF: ValType = ValType::Ref(RefType::FUNCREF);
    /// `externref`, i.e. `(ref null extern)`.
    pub const EXTERNREF: ValType = ValType::Ref(RefType::EXTERNREF);
    /// `exnref`, i.e. `(ref null exn)`.
    pub const EXNREF: ValType = ValType::Ref(RefType::EXNREF);
    /// `anyref`, i.e. `(ref null any)`.
    pub const ANYREF: ValType = ValType::Ref(RefType::ANYREF);

    pub fn is_ref(self) -> bool {
        matches!(self, ValType::Ref(_))
    }

    /// The reference type, if this is one.
    pub fn as_ref(self) -> Option<RefType> {
        match self {
            ValType::Ref(r) => Some(r),
            _ => None,
        }
    }

    /// Whether a value of this type may be used where `other` is expected
    /// (`self <: other`). Concrete types must be in the engine's form
    /// ([`ConcreteType::Engine`]); `supertype` gives a type's declared supertype.
    pub fn is_subtype_of(self, other: ValType, supertype: &dyn Fn(u32) -> Option<u32>) -> bool {
        match (self, other) {
            (ValType::Ref(a), ValType::Ref(b)) => a.is_subtype_of(b, supertype),
            (a, b) => a == b,
        }
    }

    /// This type with module-relative concrete types replaced by `map`'s result.
    pub fn map_concrete(self, map: impl FnOnce(ConcreteType) -> ConcreteType) -> ValType {
        match self {
            ValType::Ref(RefType { nullable, heap }) => ValType::Ref(RefType {
                nullable,
                heap: heap.map_concrete(map),
            }),
            other => other,
        }
    }

    /// This type with its heap type (if a reference) rewritten by `map`.
    pub fn map_heap(self, map: &dyn Fn(HeapType) -> HeapType) -> ValType {
        match self {
            ValType::Ref(RefType { nullable, heap }) => ValType::Ref(RefType {
                nullable,
                heap: map(heap),
            }),
            other => other,
        }
    }
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValType::I32 => f.write_str("i32"),
            ValType::I64 => f.write_str("i64"),
            ValType::F32 => f.write_str("f32"),
            ValType::F64 => f.write_str("f64"),
            ValType::V128 => f.write_str("v128"),
            ValType::Ref(r) => write!(f, "{r}"),
        }
    }
}

/// A reference type: a heap type and whether null is a value of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RefType {
    pub nullable: bool,
    pub heap: HeapType,
}

impl RefType {
    pub const FUNCREF: RefType = RefType::new(true, HeapType::Func);
    pub const EXTERNREF: RefType = RefType::new(true, HeapType::Extern);
    pub const EXNREF: RefType = RefType::new(true, HeapType::Exn);
    pub const ANYREF: RefType = RefType::new(true, HeapType::Any);

    pub const fn new(nullable: bool, heap: HeapType) -> Self {
        RefType { nullable, heap }
    }

    /// How values of this type are represented: every type of a hierarchy shares
    /// its top's representation.
    pub fn kind(self) -> RefKind {
        self.heap.kind()
    }

    /// `self <: other`: null only where null is allowed, and a heap subtype.
    pub fn is_subtype_of(self, other: RefType, supertype: &dyn Fn(u32) -> Option<u32>) -> bool {
        (!self.nullable || other.nullable) && self.heap.is_subtype_of(other.heap, supertype)
    }
}

impl fmt::Display for RefType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.nullable, self.heap) {
            (true, HeapType::Func) => f.write_str("funcref"),
            (true, HeapType::Extern) => f.write_str("externref"),
            (true, HeapType::Exn) => f.write_str("exnref"),
            (true, HeapType::Any) => f.write_str("anyref"),
            (true, heap) => write!(f, "(ref null {heap})"),
            (false, heap) => write!(f, "(ref {heap})"),
        }
    }
}

/// The three reference hierarchies wazerox implements, which are also the three
/// representations of references in compiled code and tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefKind {
    /// A `*const VMFuncRef` (0 = null).
    Func,
    /// A store-local externref handle (0 = null).
    Extern,
    /// A `*const` exception object (0 = null).
    Exn,
    /// A tagged word of the GC proposal's any hierarchy (docs/gc.md): 0 null,
    /// low bit 1 an `i31`, low bits `10` an internalized externref, otherwise
    /// a pointer to a GC object.
    Any,
}

/// What a reference points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeapType {
    /// Any function.
    Func,
    /// No function: the bottom of the function hierarchy (only null).
    NoFunc,
    Extern,
    /// The bottom of the extern hierarchy.
    NoExtern,
    Exn,
    /// The bottom of the exception hierarchy.
    NoExn,
    /// The top of the GC hierarchy: `i31`s, structs, arrays, internalized
    /// externrefs.
    Any,
    /// Values comparable with `ref.eq`: `i31`s, structs and arrays.
    Eq,
    /// Unboxed 31-bit integers.
    I31,
    /// Any struct.
    Struct,
    /// Any array.
    Array,
    /// The bottom of the any hierarchy (only null).
    None,
    /// A defined function type.
    Concrete(ConcreteType),
    /// A defined struct type (GC).
    ConcreteStruct(ConcreteType),
    /// A defined array type (GC).
    ConcreteArray(ConcreteType),
}

impl HeapType {
    pub fn kind(self) -> RefKind {
        match self {
            HeapType::Func | HeapType::NoFunc | HeapType::Concrete(_) => RefKind::Func,
            HeapType::Extern | HeapType::NoExtern => RefKind::Extern,
            HeapType::Exn | HeapType::NoExn => RefKind::Exn,
            HeapType::Any
            | HeapType::Eq
            | HeapType::I31
            | HeapType::Struct
            | HeapType::Array
            | HeapType::None
            | HeapType::ConcreteStruct(_)
            | HeapType::ConcreteArray(_) => RefKind::Any,
        }
    }

    /// The defined type this is, if it is one.
    pub fn concrete(self) -> Option<ConcreteType> {
        match self {
            HeapType::Concrete(c) | HeapType::ConcreteStruct(c) | HeapType::ConcreteArray(c) => {
                Some(c)
            }
            _ => None,
        }
    }

    /// This heap type with its defined type (if any) rewritten by `map`.
    pub fn map_concrete(self, map: impl FnOnce(ConcreteType) -> ConcreteType) -> HeapType {
        match self {
            HeapType::Concrete(c) => HeapType::Concrete(map(c)),
            HeapType::ConcreteStruct(c) => HeapType::ConcreteStruct(map(c)),
            HeapType::ConcreteArray(c) => HeapType::ConcreteArray(map(c)),
            other => other,
        }
    }

    fn is_bottom(self) -> bool {
        matches!(
            self,
            HeapType::NoFunc | HeapType::NoExtern | HeapType::NoExn | HeapType::None
        )
    }

    fn is_top(self) -> bool {
        matches!(
            self,
            HeapType::Func | HeapType::Extern | HeapType::Exn | HeapType::Any
        )
    }

    /// `self <: other` within one hierarchy: bottom below everything, top above
    /// everything, and a concrete type below its declared supertypes.
    pub fn is_subtype_of(self, other: HeapType, supertype: &dyn Fn(u32) -> Option<u32>) -> bool {
        if self == other {
            return true;
        }
        if self.kind() != other.kind() {
            return false;
        }
        if self.is_bottom() || other.is_top() {
            return true;
        }
        match (self, other) {
            (
                HeapType::I31
                | HeapType::Struct
                | HeapType::Array
                | HeapType::ConcreteStruct(_)
                | HeapType::ConcreteArray(_),
                HeapType::Eq,
            ) => true,
            (HeapType::ConcreteStruct(_), HeapType::Struct) => true,
            (HeapType::ConcreteArray(_), HeapType::Array) => true,
            (
                HeapType::Concrete(ConcreteType::Engine(mut a))
                | HeapType::ConcreteStruct(ConcreteType::Engine(mut a))
                | HeapType::ConcreteArray(ConcreteType::Engine(mut a)),
                HeapType::Concrete(ConcreteType::Engine(b))
                | HeapType::ConcreteStruct(ConcreteType::Engine(b))
                | HeapType::ConcreteArray(ConcreteType::Engine(b)),
            ) => {
                while let Some(parent) = supertype(a) {
                    if parent == b {
                        return true;
                    }
                    a = parent;
                }
                false
            }
            _ => false,
        }
    }
}

impl fmt::Display for HeapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeapType::Func => f.write_str("func"),
            HeapType::NoFunc => f.write_str("nofunc"),
            HeapType::Extern => f.write_str("extern"),
            HeapType::NoExtern => f.write_str("noextern"),
            HeapType::Exn => f.write_str("exn"),
            HeapType::NoExn => f.write_str("noexn"),
            HeapType::Any => f.write_str("any"),
            HeapType::Eq => f.write_str("eq"),
            HeapType::I31 => f.write_str("i31"),
            HeapType::Struct => f.write_str("struct"),
            HeapType::Array => f.write_str("array"),
            HeapType::None => f.write_str("none"),
            HeapType::Concrete(c) | HeapType::ConcreteStruct(c) | HeapType::ConcreteArray(c) => {
                match c {
                    ConcreteType::Module(t) => write!(f, "{}", t.0),
                    ConcreteType::Engine(id) => write!(f, "<type {id}>"),
                    ConcreteType::RecGroup(i) => write!(f, "<rec {i}>"),
                }
            }
        }
    }
}

/// Which defined type a concrete heap type means, in one of three frames of
/// reference: a module's type section (as parsed), the engine's registry of
/// canonical types (what crosses module boundaries: links, the API), or a
/// position in the recursion group being canonicalized (only inside the
/// registry's keys, so that two structurally equal groups compare equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConcreteType {
    Module(TypeIndex),
    Engine(u32),
    RecGroup(u32),
}

/// A function signature.
///
/// Its reference types are in one frame of reference (see [`ConcreteType`]):
/// module-relative in a [`crate::ModuleInfo`], engine-relative once registered.
/// Type identity (iso-recursive, with recursion groups and declared supertypes)
/// is the engine registry's business; equality here is structural.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FuncType {
    params: Box<[ValType]>,
    results: Box<[ValType]>,
}

impl FuncType {
    pub fn new(
        params: impl IntoIterator<Item = ValType>,
        results: impl IntoIterator<Item = ValType>,
    ) -> Self {
        FuncType {
            params: params.into_iter().collect(),
            results: results.into_iter().collect(),
        }
    }
    pub fn params(&self) -> &[ValType] {
        &self.params
    }
    pub fn results(&self) -> &[ValType] {
        &self.results
    }
    /// This type with every concrete type rewritten by `map`.
    pub fn map_concrete(&self, map: &dyn Fn(ConcreteType) -> ConcreteType) -> FuncType {
        FuncType {
            params: self.params.iter().map(|t| t.map_concrete(map)).collect(),
            results: self.results.iter().map(|t| t.map_concrete(map)).collect(),
        }
    }
    /// This type with every heap type rewritten by `map`.
    pub fn map_heap(&self, map: &dyn Fn(HeapType) -> HeapType) -> FuncType {
        FuncType {
            params: self.params.iter().map(|t| t.map_heap(map)).collect(),
            results: self.results.iter().map(|t| t.map_heap(map)).collect(),
        }
    }
}

impl fmt::Display for FuncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(func")?;
        if !self.params.is_empty() {
            write!(f, " (param")?;
            for p in self.params.iter() {
                write!(f, " {p}")?;
            }
            write!(f, ")")?;
        }
        if !self.results.is_empty() {
            write!(f, " (result")?;
            for r in self.results.iter() {
                write!(f, " {r}")?;
            }
            write!(f, ")")?;
        }
        write!(f, ")")
    }
}

/// What a struct field or an array element stores: a packed integer or a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageType {
    I8,
    I16,
    Val(ValType),
}

impl StorageType {
    /// Bytes the field takes in an object (also its alignment).
    pub fn size(self) -> u32 {
        match self {
            StorageType::I8 => 1,
            StorageType::I16 => 2,
            StorageType::Val(ValType::I32 | ValType::F32) => 4,
            StorageType::Val(ValType::V128) => 16,
            StorageType::Val(_) => 8,
        }
    }

    /// The type a value of the field has on the operand stack.
    pub fn unpacked(self) -> ValType {
        match self {
            StorageType::I8 | StorageType::I16 => ValType::I32,
            StorageType::Val(v) => v,
        }
    }
}

/// A struct field or array element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldType {
    pub storage: StorageType,
    pub mutable: bool,
}

impl FieldType {
    fn map_concrete(self, map: &dyn Fn(ConcreteType) -> ConcreteType) -> FieldType {
        let storage = match self.storage {
            StorageType::Val(v) => StorageType::Val(v.map_concrete(map)),
            packed => packed,
        };
        FieldType { storage, ..self }
    }
    fn map_heap(self, map: &dyn Fn(HeapType) -> HeapType) -> FieldType {
        let storage = match self.storage {
            StorageType::Val(v) => StorageType::Val(v.map_heap(map)),
            packed => packed,
        };
        FieldType { storage, ..self }
    }
}

/// A struct or array type (GC proposal); function types are [`FuncType`]s.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GcType {
    Struct(Box<[FieldType]>),
    Array(FieldType),
}

impl GcType {
    /// This type with every concrete type rewritten by `map`.
    pub fn map_concrete(&self, map: &dyn Fn(ConcreteType) -> ConcreteType) -> GcType {
        match self {
            GcType::Struct(fields) => {
                GcType::Struct(fields.iter().map(|f| f.map_concrete(map)).collect())
            }
            GcType::Array(element) => GcType::Array(element.map_concrete(map)),
        }
    }
    /// This type with every heap type rewritten by `map`.
    pub fn map_heap(&self, map: &dyn Fn(HeapType) -> HeapType) -> GcType {
        match self {
            GcType::Struct(fields) => {
                GcType::Struct(fields.iter().map(|f| f.map_heap(map)).collect())
            }
            GcType::Array(element) => GcType::Array(element.map_heap(map)),
        }
    }
}

/// How a defined type takes part in subtyping (GC proposal): whether it may have
/// subtypes, and its declared supertype (module-relative in a `ModuleInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubtypeInfo {
    pub is_final: bool,
    pub supertype: Option<ConcreteType>,
}

impl Default for SubtypeInfo {
    /// A plain `(type (func ...))`: final, no supertype.
    fn default() -> Self {
        SubtypeInfo {
            is_final: true,
            supertype: None,
        }
    }
}

/// Limits and element type of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableType {
    pub element: ValType,
    pub minimum: u64,
    pub maximum: Option<u64>,
    /// Indexed by `i64` (the memory64 proposal's table64) rather than `i32`.
    pub table64: bool,
}

impl TableType {
    /// The type of this table's indices, sizes and lengths.
    pub fn index_type(&self) -> ValType {
        if self.table64 {
            ValType::I64
        } else {
            ValType::I32
        }
    }
}

/// Limits of a linear memory, in pages of `1 << page_size_log2` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemoryType {
    pub minimum: u64,
    pub maximum: Option<u64>,
    pub shared: bool,
    /// Addressed by `i64` (memory64) rather than `i32`.
    pub memory64: bool,
    /// 16 for the usual 64 KiB pages; 0 for the custom-page-sizes proposal's
    /// one-byte pages (the only two sizes Wasm allows).
    pub page_size_log2: u8,
}

/// The log2 of the default Wasm page size (64 KiB).
pub const DEFAULT_PAGE_SIZE_LOG2: u8 = 16;

impl MemoryType {
    /// A 32-bit, unshared memory of 64 KiB pages.
    pub fn new(minimum: u64, maximum: Option<u64>) -> Self {
        MemoryType {
            minimum,
            maximum,
            shared: false,
            memory64: false,
            page_size_log2: DEFAULT_PAGE_SIZE_LOG2,
        }
    }
    /// Bytes per page.
    pub fn page_size(&self) -> u64 {
        1 << self.page_size_log2
    }
    /// The type of this memory's addresses, sizes and lengths.
    pub fn index_type(&self) -> ValType {
        if self.memory64 {
            ValType::I64
        } else {
            ValType::I32
        }
    }
    /// The most pages the index type can address: 4 GiB for 32-bit memories
    /// (2^32 - 1 bytes with one-byte pages, so that `memory.size` fits an `i32`),
    /// 2^64 bytes for 64-bit ones.
    pub fn max_pages_of_index_type(&self) -> u64 {
        if self.memory64 {
            u64::MAX >> self.page_size_log2
        } else {
            ((1u64 << 32) >> self.page_size_log2).min(u64::from(u32::MAX))
        }
    }
}

/// Type and mutability of a global.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GlobalType {
    pub content: ValType,
    pub mutable: bool,
}

/// The type of anything that can be imported or exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityType {
    Function(FuncType),
    Table(TableType),
    Memory(MemoryType),
    Global(GlobalType),
    /// An exception tag: the types of the values its exceptions carry (`params`).
    Tag(FuncType),
}

macro_rules! index_newtype {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);
        impl $name {
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    )*};
}

index_newtype! {
    /// Index into a module's function space (imports first).
    FuncIndex;
    /// Index into a module's type section.
    TypeIndex;
    /// Index into a module's table space (imports first).
    TableIndex;
    /// Index into a module's memory space (imports first).
    MemoryIndex;
    /// Index into a module's global space (imports first).
    GlobalIndex;
    /// Index of an element segment.
    ElemIndex;
    /// Index of a data segment.
    DataIndex;
    /// Index into a module's tag space (imports first).
    TagIndex;
}
