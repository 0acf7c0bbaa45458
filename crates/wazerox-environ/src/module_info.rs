//! `ModuleInfo`: everything a module declares, in wazerox's own types.
//!
//! It is plain data: the runtime instantiates from it and the API reports imports and
//! exports from it, without either knowing about wasmparser.

use crate::types::*;
use std::collections::HashMap;

/// A constant expression (global initialisers, segment offsets, element items).
/// Kept as a tiny stack program so extended-const works without special cases.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstExpr {
    pub ops: Vec<ConstOp>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConstOp {
    I32Const(i32),
    I64Const(i64),
    F32Const(u32),
    F64Const(u64),
    V128Const(u128),
    RefNull(ValType),
    RefFunc(FuncIndex),
    GlobalGet(GlobalIndex),
    /// `ref.i31` (GC): the i32 on top becomes an i31 word (docs/gc.md).
    RefI31,
    /// `any.convert_extern`: an externref becomes an any word.
    AnyConvertExtern,
    /// `extern.convert_any`: an any word becomes an externref.
    ExternConvertAny,
    I32Add,
    I32Sub,
    I32Mul,
    I64Add,
    I64Sub,
    I64Mul,
    /// `struct.new $t` (GC): a struct of the module's type `$t` from the
    /// values on top, allocated in the store's heap at instantiation.
    StructNew(TypeIndex),
    /// `struct.new_default $t`.
    StructNewDefault(TypeIndex),
    /// `array.new $t`: the length on top, the element value below it.
    ArrayNew(TypeIndex),
    /// `array.new_default $t`: the length on top.
    ArrayNewDefault(TypeIndex),
    /// `array.new_fixed $t n`: the `n` elements on top.
    ArrayNewFixed(TypeIndex, u32),
}

impl ConstExpr {
    pub fn single(op: ConstOp) -> Self {
        ConstExpr { ops: vec![op] }
    }

    /// Whether evaluating it allocates GC objects (so it must be evaluated
    /// exactly once, and can fail when the heap is full).
    pub fn allocates(&self) -> bool {
        self.ops.iter().any(|op| {
            matches!(
                op,
                ConstOp::StructNew(_)
                    | ConstOp::StructNewDefault(_)
                    | ConstOp::ArrayNew(_)
                    | ConstOp::ArrayNewDefault(_)
                    | ConstOp::ArrayNewFixed(..)
            )
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImportKind {
    Function(TypeIndex),
    Table(TableType),
    Memory(MemoryType),
    Global(GlobalType),
    /// An exception tag of function type `TypeIndex` (params: payload, no results).
    Tag(TypeIndex),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    pub module: String,
    pub name: String,
    pub kind: ImportKind,
    /// Index of the imported entity in its own index space.
    pub index: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    Function,
    Table,
    Memory,
    Global,
    Tag,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub name: String,
    pub kind: ExportKind,
    pub index: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    pub ty: GlobalType,
    /// `None` for imported globals.
    pub init: Option<ConstExpr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub ty: TableType,
    /// Initial value of every element for defined tables (`ref.null` unless the
    /// function-references table initialiser says otherwise).
    pub init: Option<ConstExpr>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ElementMode {
    Active {
        table: TableIndex,
        offset: ConstExpr,
    },
    Passive,
    Declared,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ElementSegment {
    pub mode: ElementMode,
    pub element: ValType,
    pub items: Vec<ConstExpr>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DataMode {
    Active {
        memory: MemoryIndex,
        offset: ConstExpr,
    },
    Passive,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DataSegment {
    pub mode: DataMode,
    pub bytes: Vec<u8>,
}

/// Everything a module declares.
#[derive(Debug, Clone, Default)]
pub struct ModuleInfo {
    /// The type section; concrete types in it are module-relative.
    pub types: Vec<FuncType>,
    /// Per type: finality and declared supertype.
    pub subtypes: Vec<SubtypeInfo>,
    /// Per type: its struct or array type (GC), `None` for a function type. The
    /// `types` entry of a struct or array type is an empty signature.
    pub gc_types: Vec<Option<GcType>>,
    /// The recursion groups, as ranges of `types` (a type outside any `rec` is a
    /// group of one).
    pub rec_groups: Vec<std::ops::Range<u32>>,
    /// Type of every function, imports first.
    pub functions: Vec<TypeIndex>,
    pub num_imported_functions: u32,
    pub tables: Vec<Table>,
    pub num_imported_tables: u32,
    pub memories: Vec<MemoryType>,
    pub num_imported_memories: u32,
    pub globals: Vec<Global>,
    pub num_imported_globals: u32,
    /// Type of every tag, imports first.
    pub tags: Vec<TypeIndex>,
    pub num_imported_tags: u32,
    pub imports: Vec<Import>,
    pub exports: Vec<Export>,
    pub start: Option<FuncIndex>,
    pub elements: Vec<ElementSegment>,
    pub data: Vec<DataSegment>,
    /// From the name section; used in backtraces.
    pub module_name: Option<String>,
    pub function_names: HashMap<u32, String>,
    /// Where each defined function's body starts in the binary, for backtraces'
    /// offsets within a function.
    pub function_body_offsets: Vec<u32>,
    /// Where the code section's contents start in the binary: DWARF addresses of
    /// a Wasm module count from there.
    pub code_section_offset: u32,
    /// Byte ranges in the binary of the `.debug_*` custom sections (DWARF), by name.
    pub debug_sections: Vec<(String, std::ops::Range<usize>)>,
    /// Per defined function: whether it may throw an exception (computed by
    /// `parse`; empty when not computed, which counts as "may throw").
    pub may_throw: Vec<bool>,
}

impl ModuleInfo {
    /// Rewrites every concrete type from module-relative to engine ids
    /// (`engine_ids[type index]`), as the engine registered the type section:
    /// after compilation, a module's types are compared with other modules'.
    pub fn to_engine_form(&mut self, engine_ids: &[u32]) {
        let map = |c: ConcreteType| match c {
            ConcreteType::Module(t) => ConcreteType::Engine(engine_ids[t.index()]),
            other => other,
        };
        for sub in &mut self.subtypes {
            sub.supertype = sub.supertype.map(map);
        }
        self.map_heap_types(&|h| h.map_concrete(map));
    }

    /// Gives module-relative references to struct and array types their kind
    /// (`HeapType::ConcreteStruct`/`ConcreteArray`; the parser reads every
    /// defined type as `Concrete` first, since a recursion group may refer to
    /// members not read yet).
    pub fn classify_concrete_types(&mut self) {
        let kinds: Vec<Option<bool>> = self
            .gc_types
            .iter()
            .map(|t| t.as_ref().map(|t| matches!(t, GcType::Array(_))))
            .collect();
        self.map_heap_types(&|h| match h {
            HeapType::Concrete(ConcreteType::Module(t)) => match kinds.get(t.index()) {
                Some(Some(false)) => HeapType::ConcreteStruct(ConcreteType::Module(t)),
                Some(Some(true)) => HeapType::ConcreteArray(ConcreteType::Module(t)),
                _ => h,
            },
            other => other,
        });
    }

    /// Rewrites every heap type the module mentions (types, imports, tables,
    /// globals, element segments, `ref.null` in constant expressions).
    fn map_heap_types(&mut self, map: &dyn Fn(HeapType) -> HeapType) {
        let val = |t: &mut ValType| *t = t.map_heap(map);
        for ty in &mut self.types {
            *ty = ty.map_heap(map);
        }
        for ty in self.gc_types.iter_mut().flatten() {
            *ty = ty.map_heap(map);
        }
        for table in &mut self.tables {
            val(&mut table.ty.element);
        }
        for global in &mut self.globals {
            val(&mut global.ty.content);
        }
        for import in &mut self.imports {
            match &mut import.kind {
                ImportKind::Table(t) => val(&mut t.element),
                ImportKind::Global(g) => val(&mut g.content),
                _ => {}
            }
        }
        for element in &mut self.elements {
            val(&mut element.element);
        }
        let exprs = self
            .globals
            .iter_mut()
            .filter_map(|g| g.init.as_mut())
            .chain(self.tables.iter_mut().filter_map(|t| t.init.as_mut()))
            .chain(self.elements.iter_mut().flat_map(|e| e.items.iter_mut()));
        for expr in exprs {
            for op in &mut expr.ops {
                if let ConstOp::RefNull(t) = op {
                    val(t);
                }
            }
        }
    }

    /// Whether type `ty` is a function type (not a struct or array type).
    pub fn is_func_type(&self, ty: TypeIndex) -> bool {
        self.gc_types.get(ty.index()).is_none_or(Option::is_none)
    }
    pub fn func_type(&self, func: FuncIndex) -> &FuncType {
        &self.types[self.functions[func.index()].index()]
    }
    pub fn is_imported_function(&self, func: FuncIndex) -> bool {
        func.0 < self.num_imported_functions
    }
    pub fn is_imported_memory(&self, memory: MemoryIndex) -> bool {
        memory.0 < self.num_imported_memories
    }
    pub fn is_imported_table(&self, table: TableIndex) -> bool {
        table.0 < self.num_imported_tables
    }
    pub fn is_imported_global(&self, global: GlobalIndex) -> bool {
        global.0 < self.num_imported_globals
    }
    pub fn is_imported_tag(&self, tag: TagIndex) -> bool {
        tag.0 < self.num_imported_tags
    }
    /// The payload types of `tag`'s exceptions.
    pub fn tag_type(&self, tag: TagIndex) -> &FuncType {
        &self.types[self.tags[tag.index()].index()]
    }
    /// Whether a call of `func` may throw: imports always may.
    pub fn may_throw(&self, func: FuncIndex) -> bool {
        func.0
            .checked_sub(self.num_imported_functions)
            .and_then(|d| self.may_throw.get(d as usize).copied())
            .unwrap_or(true)
    }
    pub fn num_defined_functions(&self) -> u32 {
        self.functions.len() as u32 - self.num_imported_functions
    }
    pub fn num_defined_globals(&self) -> u32 {
        self.globals.len() as u32 - self.num_imported_globals
    }
    /// The function index of the `n`th function with a body.
    pub fn defined_to_func_index(&self, defined: u32) -> FuncIndex {
        FuncIndex(defined + self.num_imported_functions)
    }
    pub fn export(&self, name: &str) -> Option<&Export> {
        self.exports.iter().find(|e| e.name == name)
    }
    /// The type of the entity an import refers to, resolved against `types`.
    pub fn import_type(&self, import: &Import) -> EntityType {
        match &import.kind {
            ImportKind::Function(ty) => EntityType::Function(self.types[ty.index()].clone()),
            ImportKind::Table(t) => EntityType::Table(*t),
            ImportKind::Memory(m) => EntityType::Memory(*m),
            ImportKind::Global(g) => EntityType::Global(*g),
            ImportKind::Tag(ty) => EntityType::Tag(self.types[ty.index()].clone()),
        }
    }
    /// The type of an exported entity.
    pub fn export_type(&self, export: &Export) -> EntityType {
        let i = export.index as usize;
        match export.kind {
            ExportKind::Function => {
                EntityType::Function(self.func_type(FuncIndex(export.index)).clone())
            }
            ExportKind::Table => EntityType::Table(self.tables[i].ty),
            ExportKind::Memory => EntityType::Memory(self.memories[i]),
            ExportKind::Global => EntityType::Global(self.globals[i].ty),
            ExportKind::Tag => EntityType::Tag(self.tag_type(TagIndex(export.index)).clone()),
        }
    }
}
