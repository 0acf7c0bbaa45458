//! A decode-only pass: reads every section, item and operator of a binary without
//! validating it, so that malformed binaries are told apart from invalid ones (the
//! spec testsuite's `assert_malformed` vs `assert_invalid`). It also checks the
//! few structural rules that the binary format itself states (section order,
//! matching function/code and data-count/data counts).

use crate::parse::{WasmError, WasmErrorKind};
use wasmparser::{BinaryReaderError, Parser, Payload};

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

pub(crate) fn decode_only(bytes: &[u8]) -> Result<(), WasmError> {
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
                for import in r.into_imports() {
                    import.map_err(malformed)?;
                }
            }
            Payload::FunctionSection(r) => {
                function_count = Some(r.count());
                for f in r {
                    f.map_err(malformed)?;
                }
            }
            Payload::TableSection(r) => {
                for t in r {
                    let t = t.map_err(malformed)?;
                    if let wasmparser::TableInit::Expr(e) = t.init {
                        read_expr(&e)?;
                    }
                }
            }
            Payload::MemorySection(r) => {
                for m in r {
                    m.map_err(malformed)?;
                }
            }
            Payload::TagSection(r) => {
                for t in r {
                    t.map_err(malformed)?;
                }
            }
            Payload::GlobalSection(r) => {
                for g in r {
                    read_expr(&g.map_err(malformed)?.init_expr)?;
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
                while !ops.eof() {
                    ops.read().map_err(malformed)?;
                }
                ops.finish().map_err(malformed)?;
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
    Ok(())
}

fn read_expr(expr: &wasmparser::ConstExpr<'_>) -> Result<(), WasmError> {
    let mut ops = expr.get_operators_reader();
    while !ops.eof() {
        ops.read().map_err(malformed)?;
    }
    ops.finish().map_err(malformed)
}
