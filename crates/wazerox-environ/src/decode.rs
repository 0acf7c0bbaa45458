//! A decode-only pass: reads every section, item and operator of a binary without
//! validating it, so that malformed binaries are told apart from invalid ones (the
//! spec testsuite's `assert_malformed` vs `assert_invalid`). It also checks the
//! few structural rules that the binary format itself states (section order,
//! matching function/code and data-count/data counts).

use crate::parse::{WasmError, WasmErrorKind};
use wasmparser::{BinaryReaderError, Operator, Parser, Payload, WasmFeatures};

fn malformed(e: BinaryReaderError) -> WasmError {
    WasmError::from_reader(WasmErrorKind::Decode, e)
}

fn malformed_at(message: &str, offset: usize) -> WasmError {
    WasmError {
        kind: WasmErrorKind::Decode,
        message: message.to_string(),
        offset: Some(offset),
    }
}

/// Section ids in the order the binary format requires (custom sections aside).
fn section_order(payload: &Payload<'_>) -> Option<u8> {
    Some(match payload {
        Payload::TypeSection(_) => 1,
        Payload::ImportSection(_) => 2,
        Payload::FunctionSection(_) => 3,
        Payload::TableSection(_) => 4,
        Payload::MemorySection(_) => 5,
        Payload::TagSection(_) => 6,
        Payload::GlobalSection(_) => 7,
        Payload::ExportSection(_) => 8,
        Payload::StartSection { .. } => 9,
        Payload::ElementSection(_) => 10,
        Payload::DataCountSection { .. } => 11,
        Payload::CodeSectionStart { .. } => 12,
        Payload::DataSection(_) => 13,
        _ => return None,
    })
}

/// A global type's flags byte is 0 (const) or 1 (var); wasmparser also reads bit 1
/// as "shared", which only the shared-everything-threads proposal allows. Without
/// it the byte is malformed, as the spec's decoder says.
fn check_global_type(
    ty: &wasmparser::GlobalType,
    features: WasmFeatures,
    offset: usize,
) -> Result<(), WasmError> {
    if ty.shared && !features.contains(WasmFeatures::SHARED_EVERYTHING_THREADS) {
        return Err(malformed_at("malformed mutability", offset));
    }
    Ok(())
}

/// Returns, per defined function, whether it may throw (see `throws.rs`).
pub(crate) fn decode_only(bytes: &[u8], features: WasmFeatures) -> Result<Vec<bool>, WasmError> {
    let mut throws = crate::throws::ThrowScan::default();
    let mut imported_functions = 0u32;
    let mut last_section = 0u8;
    let mut function_count: Option<u32> = None;
    let mut code_count: Option<u32> = None;
    let mut data_count: Option<u32> = None;
    let mut data_segments: Option<u32> = None;
    let mut end_offset = 0;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(malformed)?;
        if let Some(order) = section_order(&payload) {
            let offset = payload.as_section().map(|(_, r)| r.start).unwrap_or(0);
            if order <= last_section {
                return Err(malformed_at("section out of order or duplicated", offset));
            }
            last_section = order;
        }
        match payload {
            Payload::TypeSection(r) => {
                for group in r {
                    group.map_err(malformed)?;
                }
            }
            Payload::ImportSection(r) => {
                for import in r.into_imports_with_offsets() {
                    let (offset, import) = import.map_err(malformed)?;
                    if let wasmparser::TypeRef::Global(ty) = import.ty {
                        check_global_type(&ty, features, offset)?;
                    }
                    if matches!(
                        import.ty,
                        wasmparser::TypeRef::Func(_) | wasmparser::TypeRef::FuncExact(_)
                    ) {
                        imported_functions += 1;
                    }
                }
            }
            Payload::FunctionSection(r) => {
                function_count = Some(r.count());
                for f in r {
                    f.map_err(malformed)?;
                }
            }
            Payload::TableSection(r) => {
                if !features.contains(WasmFeatures::MEMORY64) {
                    check_limits_section(bytes, r.range().start, LimitsOf::Table)?;
                }
                for t in r {
                    let t = t.map_err(malformed)?;
                    if let wasmparser::TableInit::Expr(e) = t.init {
                        read_expr(&e)?;
                    }
                }
            }
            Payload::MemorySection(r) => {
                let range = r.range();
                for m in r {
                    m.map_err(malformed)?;
                }
                if !features.contains(WasmFeatures::MEMORY64) {
                    check_limits_section(bytes, range.start, LimitsOf::Memory)?;
                }
            }
            Payload::TagSection(r) => {
                for t in r {
                    t.map_err(malformed)?;
                }
            }
            Payload::GlobalSection(r) => {
                for g in r.into_iter_with_offsets() {
                    let (offset, g) = g.map_err(malformed)?;
                    check_global_type(&g.ty, features, offset)?;
                    read_expr(&g.init_expr)?;
                }
            }
            Payload::ExportSection(r) => {
                for e in r {
                    e.map_err(malformed)?;
                }
            }
            Payload::ElementSection(r) => {
                for e in r {
                    let e = e.map_err(malformed)?;
                    if let wasmparser::ElementKind::Active { offset_expr, .. } = &e.kind {
                        read_expr(offset_expr)?;
                    }
                    match e.items {
                        wasmparser::ElementItems::Functions(fs) => {
                            for f in fs {
                                f.map_err(malformed)?;
                            }
                        }
                        wasmparser::ElementItems::Expressions(_, es) => {
                            for e in es {
                                read_expr(&e.map_err(malformed)?)?;
                            }
                        }
                    }
                }
            }
            Payload::DataCountSection { count, .. } => data_count = Some(count),
            Payload::DataSection(r) => {
                data_segments = Some(r.count());
                for d in r {
                    let d = d.map_err(malformed)?;
                    if let wasmparser::DataKind::Active { offset_expr, .. } = &d.kind {
                        read_expr(offset_expr)?;
                    }
                }
            }
            Payload::CodeSectionStart { count, .. } => code_count = Some(count),
            Payload::CodeSectionEntry(body) => {
                let mut locals = body.get_locals_reader().map_err(malformed)?;
                let mut total: u64 = 0;
                for _ in 0..locals.get_count() {
                    let (n, _) = locals.read().map_err(malformed)?;
                    total += u64::from(n);
                    if total > 50_000 {
                        return Err(malformed_at("too many locals", locals.original_position()));
                    }
                }
                let mut ops = body.get_operators_reader().map_err(malformed)?;
                throws.begin_function();
                while !ops.eof() {
                    let offset = ops.original_position();
                    let op = ops.read().map_err(malformed)?;
                    check_operator_encoding(bytes, offset, &op, features, data_count.is_some())?;
                    throws.observe(&op);
                }
                ops.finish().map_err(malformed)?;
            }
            Payload::UnknownSection { id, range, .. } => {
                return Err(malformed_at(
                    &format!("malformed section id {id}"),
                    range.start,
                ));
            }
            Payload::End(offset) => end_offset = offset,
            _ => {}
        }
    }
    if function_count.unwrap_or(0) != code_count.unwrap_or(0) {
        return Err(malformed_at(
            "function and code section have inconsistent lengths",
            end_offset,
        ));
    }
    if let (Some(declared), Some(actual)) = (data_count, data_segments)
        && declared != actual
    {
        return Err(malformed_at(
            "data count and data section have inconsistent lengths",
            end_offset,
        ));
    }
    if let (Some(declared), None) = (data_count, data_segments)
        && declared != 0
    {
        return Err(malformed_at(
            "data count and data section have inconsistent lengths",
            end_offset,
        ));
    }
    Ok(throws.finish(imported_functions))
}

fn read_expr(expr: &wasmparser::ConstExpr<'_>) -> Result<(), WasmError> {
    let mut ops = expr.get_operators_reader();
    while !ops.eof() {
        ops.read().map_err(malformed)?;
    }
    ops.finish().map_err(malformed)
}

/// Reads an unsigned LEB128 of at most 32 bits, strictly: at most 5 bytes, and the
/// unused bits of the 5th byte zero (the binary format's `u32`).
fn read_u32_strict(bytes: &[u8], mut pos: usize) -> Result<(u32, usize), WasmError> {
    let start = pos;
    let mut result: u64 = 0;
    for i in 0..5 {
        let byte = *bytes
            .get(pos)
            .ok_or_else(|| malformed_at("unexpected end", pos))?;
        pos += 1;
        result |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if i == 4 && byte & 0x70 != 0 {
                return Err(malformed_at("integer too large", start));
            }
            return Ok((result as u32, pos));
        }
    }
    Err(malformed_at("integer representation too long", start))
}

#[derive(Clone, Copy, PartialEq)]
enum LimitsOf {
    Memory,
    Table,
}

/// Without memory64, limits of memories and tables are `u32`s; wasmparser reads
/// them as `u64`s for every module, so overlong or too-large encodings are caught
/// here, where the spec places them: as malformed binaries.
fn check_limits_section(bytes: &[u8], start: usize, of: LimitsOf) -> Result<(), WasmError> {
    let (count, mut pos) = read_u32_strict(bytes, start)?;
    for _ in 0..count {
        if of == LimitsOf::Table {
            // Only plain `funcref`/`externref` tables have the simple layout.
            match bytes.get(pos) {
                Some(0x70 | 0x6f) => pos += 1,
                _ => return Ok(()),
            }
        }
        let flags = *bytes
            .get(pos)
            .ok_or_else(|| malformed_at("unexpected end", pos))?;
        pos += 1;
        let (_, next) = read_u32_strict(bytes, pos)?;
        pos = next;
        if flags & 1 != 0 {
            let (_, next) = read_u32_strict(bytes, pos)?;
            pos = next;
        }
    }
    Ok(())
}

/// Encoding rules of Wasm 2.0 that wasmparser relaxes because later proposals
/// reuse the bits: memarg flags (multi-memory), `u32` offsets (memory64), and the
/// reserved zero bytes of memory instructions (multi-memory).
fn check_operator_encoding(
    bytes: &[u8],
    offset: usize,
    op: &Operator<'_>,
    features: WasmFeatures,
    has_data_count: bool,
) -> Result<(), WasmError> {
    let multi_memory = features.contains(WasmFeatures::MULTI_MEMORY);
    let zero_byte = |pos: usize| -> Result<(), WasmError> {
        if multi_memory || bytes.get(pos) == Some(&0) {
            Ok(())
        } else {
            Err(malformed_at("zero byte expected", pos))
        }
    };
    let opcode = bytes.get(offset).copied().unwrap_or(0);
    match op {
        Operator::MemorySize { .. } | Operator::MemoryGrow { .. } => zero_byte(offset + 1)?,
        Operator::MemoryInit { .. } | Operator::DataDrop { .. } if !has_data_count => {
            return Err(malformed_at("data count section required", offset));
        }
        Operator::MemoryInit { .. } | Operator::MemoryCopy { .. } | Operator::MemoryFill { .. } => {
            let (_, mut pos) = read_u32_strict(bytes, offset + 1)?;
            if matches!(op, Operator::MemoryInit { .. }) {
                pos = read_u32_strict(bytes, pos)?.1;
            }
            zero_byte(pos)?;
            if matches!(op, Operator::MemoryCopy { .. }) {
                zero_byte(pos + 1)?;
            }
        }
        _ if (0x28..=0x3e).contains(&opcode) => {
            let (flags, mut pos) = read_u32_strict(bytes, offset + 1)?;
            if multi_memory {
                // 3.0: bit 6 announces a memory index; any alignment exponent
                // below 64 decodes (validation rejects one above natural).
                if flags >= 0x80 {
                    return Err(malformed_at("malformed memop flags", offset + 1));
                }
                if flags & 0x40 != 0 {
                    pos = read_u32_strict(bytes, pos)?.1;
                }
            } else if flags >= 32 {
                // 2.0: the alignment exponent of a `u32` access space.
                return Err(malformed_at("malformed memop flags", offset + 1));
            }
            if !features.contains(WasmFeatures::MEMORY64) {
                read_u32_strict(bytes, pos)?;
            }
        }
        _ => {}
    }
    Ok(())
}
