//! Decoding and validating a module into [`ModuleInfo`] plus its function bodies.
//!
//! Errors are classified by stage, as the spec testsuite distinguishes them: a
//! *malformed* module fails to decode (checked by a decode-only pass first, see
//! `decode.rs`), an *invalid* one decodes but fails validation. Function bodies are
//! validated later, operator by operator, while they are translated (in parallel).

use crate::decode::decode_only;
use crate::module_info::*;
use crate::types::*;
use std::fmt;
use wasmparser::{
    BinaryReaderError, ExternalKind, FuncToValidate, FunctionBody, KnownCustom, Name, Operator,
    Parser, Payload, TypeRef, ValidPayload, Validator, ValidatorResources, WasmFeatures,
};

/// The stage at which a module was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmErrorKind {
    /// The bytes are not a well-formed module binary.
    Decode,
    /// Well-formed but invalid.
    Validation,
    /// Valid, but uses something wazerox does not implement.
    Unsupported,
}

#[derive(Debug, Clone)]
pub struct WasmError {
    pub kind: WasmErrorKind,
    pub message: String,
    /// Byte offset in the binary, when known.
    pub offset: Option<usize>,
}

impl WasmError {
    pub fn unsupported(message: impl Into<String>) -> Self {
        WasmError {
            kind: WasmErrorKind::Unsupported,
            message: format!("unsupported feature: {}", message.into()),
            offset: None,
        }
    }
    /// An error from wasmparser, classified by the stage that found it.
    pub fn from_reader(kind: WasmErrorKind, e: BinaryReaderError) -> Self {
        WasmError {
            kind,
            message: e.message().to_string(),
            offset: Some(e.offset()),
        }
    }
}

impl fmt::Display for WasmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.kind {
            WasmErrorKind::Decode => "malformed module",
            WasmErrorKind::Validation => "invalid module",
            WasmErrorKind::Unsupported => "unsupported module",
        };
        match self.offset {
            Some(offset) => write!(f, "{stage}: {} (at offset {offset:#x})", self.message),
            None => write!(f, "{stage}: {}", self.message),
        }
    }
}

impl std::error::Error for WasmError {}

/// A function body awaiting translation, with its validator.
pub struct FunctionBodyData<'a> {
    pub body: FunctionBody<'a>,
    pub validator: FuncToValidate<ValidatorResources>,
}

/// The result of [`parse`].
pub struct ModuleTranslation<'a> {
    pub info: ModuleInfo,
    /// One per defined function, in order.
    pub bodies: Vec<FunctionBodyData<'a>>,
}

fn validation(e: BinaryReaderError) -> WasmError {
    WasmError::from_reader(WasmErrorKind::Validation, e)
}

/// Reading `ModuleInfo` happens after the decode-only pass succeeded, so a reader
/// error there can only come from validation-level rules.
impl From<BinaryReaderError> for WasmError {
    fn from(e: BinaryReaderError) -> Self {
        validation(e)
    }
}

/// Decodes and validates `bytes` (except function bodies, which are validated
/// during translation).
pub fn parse(bytes: &[u8], features: WasmFeatures) -> Result<ModuleTranslation<'_>, WasmError> {
    let may_throw = decode_only(bytes, features)?;
    let mut translation = parse_validated(bytes, features)?;
    translation.info.may_throw = may_throw;
    Ok(translation)
}

/// Like [`parse`], without the decode-only pass: for bytes that already passed it
/// (e.g. the binary inside a compiled artifact, which only a successful
/// compilation writes).
pub fn parse_validated(
    bytes: &[u8],
    features: WasmFeatures,
) -> Result<ModuleTranslation<'_>, WasmError> {
    let mut validator = Validator::new_with_features(features);
    let mut info = ModuleInfo::default();
    let mut bodies = Vec::new();
    // A module that is both invalid and unsupported is reported invalid: after
    // the first unsupported construct, the rest (bodies included) is only
    // validated.
    let mut unsupported = None;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| WasmError::from_reader(WasmErrorKind::Decode, e))?;
        if let ValidPayload::Func(validator, body) =
            validator.payload(&payload).map_err(validation)?
        {
            if unsupported.is_some() {
                let mut validator = validator.into_validator(Default::default());
                validator.validate(&body).map_err(validation)?;
            } else {
                bodies.push(FunctionBodyData { body, validator });
            }
        }
        if unsupported.is_none() {
            match read_payload(&mut info, payload) {
                Err(e) if e.kind == WasmErrorKind::Unsupported => unsupported = Some(e),
                other => other?,
            }
        }
    }
    match unsupported {
        Some(e) => Err(e),
        None => {
            info.classify_concrete_types();
            // Exception objects are not scanned by the collector (docs/gc.md).
            let gc_payload = info.tags.iter().any(|ty| {
                info.types[ty.index()]
                    .params()
                    .iter()
                    .any(|p| p.as_ref().is_some_and(|r| r.kind() == RefKind::Any))
            });
            if gc_payload {
                return Err(WasmError::unsupported(
                    "GC references in exception payloads",
                ));
            }
            Ok(ModuleTranslation { info, bodies })
        }
    }
}

fn read_payload(info: &mut ModuleInfo, payload: Payload<'_>) -> Result<(), WasmError> {
    match payload {
        Payload::TypeSection(reader) => {
            for group in reader {
                let start = info.types.len() as u32;
                for sub in group?.into_types() {
                    if sub.composite_type.shared || sub.composite_type.descriptor_idx.is_some() {
                        return Err(WasmError::unsupported(
                            "shared composite types and type descriptors",
                        ));
                    }
                    match &sub.composite_type.inner {
                        wasmparser::CompositeInnerType::Func(func) => {
                            let params = func.params().iter().map(|t| checked_val_type(*t));
                            let results = func.results().iter().map(|t| checked_val_type(*t));
                            info.types.push(FuncType::new(
                                params.collect::<Result<Vec<_>, _>>()?,
                                results.collect::<Result<Vec<_>, _>>()?,
                            ));
                            info.gc_types.push(None);
                        }
                        wasmparser::CompositeInnerType::Struct(st) => {
                            let fields = st.fields.iter().map(|f| field_type(*f));
                            info.types.push(FuncType::new([], []));
                            info.gc_types
                                .push(Some(GcType::Struct(fields.collect::<Result<_, _>>()?)));
                        }
                        wasmparser::CompositeInnerType::Array(at) => {
                            info.types.push(FuncType::new([], []));
                            info.gc_types.push(Some(GcType::Array(field_type(at.0)?)));
                        }
                        wasmparser::CompositeInnerType::Cont(_) => {
                            return Err(WasmError::unsupported("stack switching"));
                        }
                    }
                    info.subtypes.push(SubtypeInfo {
                        is_final: sub.is_final,
                        supertype: sub
                            .supertype_idx
                            .and_then(|t| t.as_module_index())
                            .map(|t| ConcreteType::Module(TypeIndex(t))),
                    });
                }
                info.rec_groups.push(start..info.types.len() as u32);
            }
        }
        Payload::ImportSection(reader) => {
            for import in reader.into_imports() {
                let import = import?;
                let (kind, index) = match import.ty {
                    TypeRef::Func(ty) | TypeRef::FuncExact(ty) => {
                        info.functions.push(TypeIndex(ty));
                        info.num_imported_functions += 1;
                        (
                            ImportKind::Function(TypeIndex(ty)),
                            info.functions.len() - 1,
                        )
                    }
                    TypeRef::Table(t) => {
                        let ty = table_type(&t)?;
                        info.tables.push(Table { ty, init: None });
                        info.num_imported_tables += 1;
                        (ImportKind::Table(ty), info.tables.len() - 1)
                    }
                    TypeRef::Memory(m) => {
                        let ty = memory_type(&m);
                        info.memories.push(ty);
                        info.num_imported_memories += 1;
                        (ImportKind::Memory(ty), info.memories.len() - 1)
                    }
                    TypeRef::Global(g) => {
                        let ty = GlobalType {
                            content: checked_val_type(g.content_type)?,
                            mutable: g.mutable,
                        };
                        info.globals.push(Global { ty, init: None });
                        info.num_imported_globals += 1;
                        (ImportKind::Global(ty), info.globals.len() - 1)
                    }
                    TypeRef::Tag(tag) => {
                        let ty = TypeIndex(tag.func_type_idx);
                        info.tags.push(ty);
                        info.num_imported_tags += 1;
                        (ImportKind::Tag(ty), info.tags.len() - 1)
                    }
                };
                info.imports.push(Import {
                    module: import.module.to_string(),
                    name: import.name.to_string(),
                    kind,
                    index: index as u32,
                });
            }
        }
        Payload::FunctionSection(reader) => {
            for ty in reader {
                info.functions.push(TypeIndex(ty?));
            }
        }
        Payload::TableSection(reader) => {
            for table in reader {
                let table = table?;
                let init = match table.init {
                    wasmparser::TableInit::RefNull => None,
                    wasmparser::TableInit::Expr(expr) => Some(const_expr(&expr)?),
                };
                info.tables.push(Table {
                    ty: table_type(&table.ty)?,
                    init,
                });
            }
        }
        Payload::MemorySection(reader) => {
            for memory in reader {
                info.memories.push(memory_type(&memory?));
            }
        }
        Payload::TagSection(reader) => {
            for tag in reader {
                info.tags.push(TypeIndex(tag?.func_type_idx));
            }
        }
        Payload::GlobalSection(reader) => {
            for global in reader {
                let global = global?;
                info.globals.push(Global {
                    ty: GlobalType {
                        content: checked_val_type(global.ty.content_type)?,
                        mutable: global.ty.mutable,
                    },
                    init: Some(const_expr(&global.init_expr)?),
                });
            }
        }
        Payload::ExportSection(reader) => {
            for export in reader {
                let export = export?;
                let kind = match export.kind {
                    ExternalKind::Func | ExternalKind::FuncExact => ExportKind::Function,
                    ExternalKind::Table => ExportKind::Table,
                    ExternalKind::Memory => ExportKind::Memory,
                    ExternalKind::Global => ExportKind::Global,
                    ExternalKind::Tag => ExportKind::Tag,
                };
                info.exports.push(Export {
                    name: export.name.to_string(),
                    kind,
                    index: export.index,
                });
            }
        }
        Payload::StartSection { func, .. } => info.start = Some(FuncIndex(func)),
        Payload::ElementSection(reader) => {
            for element in reader {
                let element = element?;
                let mode = match element.kind {
                    wasmparser::ElementKind::Passive => ElementMode::Passive,
                    wasmparser::ElementKind::Declared => ElementMode::Declared,
                    wasmparser::ElementKind::Active {
                        table_index,
                        offset_expr,
                    } => ElementMode::Active {
                        table: TableIndex(table_index.unwrap_or(0)),
                        offset: const_expr(&offset_expr)?,
                    },
                };
                let (element_type, items) = match element.items {
                    wasmparser::ElementItems::Functions(funcs) => {
                        let mut items = Vec::new();
                        for f in funcs {
                            items.push(ConstExpr::single(ConstOp::RefFunc(FuncIndex(f?))));
                        }
                        (ValType::FUNCREF, items)
                    }
                    wasmparser::ElementItems::Expressions(ty, exprs) => {
                        let mut items = Vec::new();
                        for e in exprs {
                            items.push(const_expr(&e?)?);
                        }
                        (ValType::Ref(checked_ref_type(ty)?), items)
                    }
                };
                info.elements.push(ElementSegment {
                    mode,
                    element: element_type,
                    items,
                });
            }
        }
        Payload::DataSection(reader) => {
            for data in reader {
                let data = data?;
                let mode = match data.kind {
                    wasmparser::DataKind::Passive => DataMode::Passive,
                    wasmparser::DataKind::Active {
                        memory_index,
                        offset_expr,
                    } => DataMode::Active {
                        memory: MemoryIndex(memory_index),
                        offset: const_expr(&offset_expr)?,
                    },
                };
                info.data.push(DataSegment {
                    mode,
                    bytes: data.data.to_vec(),
                });
            }
        }
        Payload::CodeSectionStart { range, .. } => info.code_section_offset = range.start as u32,
        Payload::CodeSectionEntry(body) => {
            info.function_body_offsets.push(body.range().start as u32)
        }
        Payload::CustomSection(reader) if reader.name().starts_with(".debug_") => {
            info.debug_sections.push((
                reader.name().to_string(),
                reader.data_offset()..reader.range().end,
            ));
        }
        Payload::CustomSection(reader) => {
            if let KnownCustom::Name(names) = reader.as_known() {
                // A broken name section must not reject the module (the spec says
                // custom sections are not validated), so errors here are ignored.
                for name in names.into_iter().flatten() {
                    match name {
                        Name::Module { name, .. } => info.module_name = Some(name.to_string()),
                        Name::Function(map) => {
                            for naming in map.into_iter().flatten() {
                                info.function_names
                                    .insert(naming.index, naming.name.to_string());
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A value type as the module declares it (concrete types module-relative).
pub fn val_type(ty: wasmparser::ValType) -> ValType {
    match ty {
        wasmparser::ValType::I32 => ValType::I32,
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::F32,
        wasmparser::ValType::F64 => ValType::F64,
        wasmparser::ValType::V128 => ValType::V128,
        wasmparser::ValType::Ref(r) => ValType::Ref(ref_type(r)),
    }
}

/// A reference type as the module declares it.
pub fn ref_type(r: wasmparser::RefType) -> RefType {
    RefType::new(r.is_nullable(), heap_type(r.heap_type()))
}

/// Like [`val_type`], refusing heap types that wazerox does not implement
/// (shared ones, stack switching's `cont`) as unsupported.
pub fn checked_val_type(ty: wasmparser::ValType) -> Result<ValType, WasmError> {
    if let wasmparser::ValType::Ref(r) = ty {
        checked_ref_type(r)?;
    }
    Ok(val_type(ty))
}

/// Like [`ref_type`], refusing unimplemented heap types.
pub fn checked_ref_type(r: wasmparser::RefType) -> Result<RefType, WasmError> {
    use wasmparser::AbstractHeapType as A;
    if let wasmparser::HeapType::Abstract { ty, shared } = r.heap_type() {
        let implemented = !matches!(ty, A::Cont | A::NoCont);
        if !implemented || shared {
            return Err(WasmError::unsupported(format!(
                "GC heap type {:?}",
                r.heap_type()
            )));
        }
    }
    Ok(ref_type(r))
}

/// A heap type as the module declares it (concrete types module-relative).
pub fn heap_type(h: wasmparser::HeapType) -> HeapType {
    use wasmparser::AbstractHeapType as A;
    match h {
        wasmparser::HeapType::Concrete(index) | wasmparser::HeapType::Exact(index) => {
            HeapType::Concrete(ConcreteType::Module(TypeIndex(
                index.as_module_index().unwrap_or(u32::MAX),
            )))
        }
        wasmparser::HeapType::Abstract { ty, .. } => match ty {
            A::Func => HeapType::Func,
            A::NoFunc => HeapType::NoFunc,
            A::Exn => HeapType::Exn,
            A::NoExn => HeapType::NoExn,
            A::NoExtern => HeapType::NoExtern,
            A::Any => HeapType::Any,
            A::Eq => HeapType::Eq,
            A::I31 => HeapType::I31,
            A::Struct => HeapType::Struct,
            A::Array => HeapType::Array,
            A::None => HeapType::None,
            // Refused by `checked_ref_type` where a module declares types (stack
            // switching); in a body, only null can have these types (their
            // operators are not translated), and null is 0 in every
            // representation.
            A::Extern | A::Cont | A::NoCont => HeapType::Extern,
        },
    }
}

fn field_type(f: wasmparser::FieldType) -> Result<FieldType, WasmError> {
    let storage = match f.element_type {
        wasmparser::StorageType::I8 => StorageType::I8,
        wasmparser::StorageType::I16 => StorageType::I16,
        wasmparser::StorageType::Val(v) => StorageType::Val(checked_val_type(v)?),
    };
    Ok(FieldType {
        storage,
        mutable: f.mutable,
    })
}

fn table_type(t: &wasmparser::TableType) -> Result<TableType, WasmError> {
    Ok(TableType {
        element: ValType::Ref(checked_ref_type(t.element_type)?),
        minimum: t.initial,
        maximum: t.maximum,
        table64: t.table64,
    })
}

fn memory_type(m: &wasmparser::MemoryType) -> MemoryType {
    MemoryType {
        minimum: m.initial,
        maximum: m.maximum,
        shared: m.shared,
        memory64: m.memory64,
        page_size_log2: m.page_size_log2() as u8,
    }
}

fn const_expr(expr: &wasmparser::ConstExpr<'_>) -> Result<ConstExpr, WasmError> {
    let mut ops = Vec::new();
    let mut reader = expr.get_operators_reader();
    while !reader.eof() {
        let op = match reader.read()? {
            Operator::I32Const { value } => ConstOp::I32Const(value),
            Operator::I64Const { value } => ConstOp::I64Const(value),
            Operator::F32Const { value } => ConstOp::F32Const(value.bits()),
            Operator::F64Const { value } => ConstOp::F64Const(value.bits()),
            Operator::V128Const { value } => ConstOp::V128Const(value.i128() as u128),
            Operator::RefNull { hty } => {
                ConstOp::RefNull(ValType::Ref(RefType::new(true, heap_type(hty))))
            }
            Operator::RefFunc { function_index } => ConstOp::RefFunc(FuncIndex(function_index)),
            Operator::GlobalGet { global_index } => ConstOp::GlobalGet(GlobalIndex(global_index)),
            Operator::RefI31 => ConstOp::RefI31,
            Operator::AnyConvertExtern => ConstOp::AnyConvertExtern,
            Operator::ExternConvertAny => ConstOp::ExternConvertAny,
            Operator::I32Add => ConstOp::I32Add,
            Operator::I32Sub => ConstOp::I32Sub,
            Operator::I32Mul => ConstOp::I32Mul,
            Operator::I64Add => ConstOp::I64Add,
            Operator::I64Sub => ConstOp::I64Sub,
            Operator::I64Mul => ConstOp::I64Mul,
            Operator::StructNew { struct_type_index } => {
                ConstOp::StructNew(TypeIndex(struct_type_index))
            }
            Operator::StructNewDefault { struct_type_index } => {
                ConstOp::StructNewDefault(TypeIndex(struct_type_index))
            }
            Operator::ArrayNew { array_type_index } => {
                ConstOp::ArrayNew(TypeIndex(array_type_index))
            }
            Operator::ArrayNewDefault { array_type_index } => {
                ConstOp::ArrayNewDefault(TypeIndex(array_type_index))
            }
            Operator::ArrayNewFixed {
                array_type_index,
                array_size,
            } => ConstOp::ArrayNewFixed(TypeIndex(array_type_index), array_size),
            Operator::End => break,
            other => {
                return Err(WasmError::unsupported(format!(
                    "constant expression operator {other:?}"
                )));
            }
        };
        ops.push(op);
    }
    Ok(ConstExpr { ops })
}
