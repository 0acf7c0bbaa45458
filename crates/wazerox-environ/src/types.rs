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
    FuncRef,
    ExternRef,
    /// A reference to an exception object (exception handling, exnref encoding).
    ExnRef,
}

impl ValType {
    pub fn is_ref(self) -> bool {
        matches!(
            self,
            ValType::FuncRef | ValType::ExternRef | ValType::ExnRef
        )
    }
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
            ValType::F32 => "f32",
            ValType::F64 => "f64",
            ValType::V128 => "v128",
            ValType::FuncRef => "funcref",
            ValType::ExternRef => "externref",
            ValType::ExnRef => "exnref",
        })
    }
}

/// A function signature.
///
/// Two types are the same type when they are equal, including `rec_group`: a type
/// declared in a recursion group of several types (GC proposal) is identified by
/// the whole group and its position in it, as the iso-recursive type equivalence
/// says, so `$t1` and `$t2` of `(rec (type $t1 (func)) (type $t2 (func)))` differ.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FuncType {
    params: Box<[ValType]>,
    results: Box<[ValType]>,
    rec_group: Option<(u32, std::sync::Arc<[FuncType]>)>,
}

impl FuncType {
    pub fn new(
        params: impl IntoIterator<Item = ValType>,
        results: impl IntoIterator<Item = ValType>,
    ) -> Self {
        FuncType {
            params: params.into_iter().collect(),
            results: results.into_iter().collect(),
            rec_group: None,
        }
    }
    /// This type as member `index` of the recursion group `group`.
    pub fn in_rec_group(mut self, index: u32, group: std::sync::Arc<[FuncType]>) -> Self {
        self.rec_group = Some((index, group));
        self
    }
    pub fn params(&self) -> &[ValType] {
        &self.params
    }
    pub fn results(&self) -> &[ValType] {
        &self.results
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
