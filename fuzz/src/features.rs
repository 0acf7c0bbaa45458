//! Which WebAssembly features a module uses, for the campaign records of
//! docs/fuzzing.md (`wazerox-fuzz features GENERATOR`): a feature the generator
//! rarely emits is a feature the campaign barely tested.

use wasmparser::{Operator, OperatorsReader, Parser, Payload, TypeRef};

/// The features `wasm` uses, each named once, in the order first met.
pub fn features(wasm: &[u8]) -> Result<Vec<&'static str>, String> {
    let mut found = Vec::new();
    let mut add = |name: &'static str| {
        if !found.contains(&name) {
            found.push(name);
        }
    };
    let mut memories = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| e.to_string())? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    match import.map_err(|e| e.to_string())?.ty {
                        TypeRef::Func(_) => add("host import"),
                        TypeRef::Memory(m) => {
                            memories += 1;
                            memory_features(&m, &mut add);
                        }
                        _ => {}
                    }
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    memories += 1;
                    memory_features(&memory.map_err(|e| e.to_string())?, &mut add);
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    if table.map_err(|e| e.to_string())?.ty.table64 {
                        add("table64");
                    }
                }
            }
            Payload::TagSection(reader) if reader.count() > 0 => add("tag"),
            Payload::GlobalSection(reader) => {
                for global in reader {
                    let global = global.map_err(|e| e.to_string())?;
                    const_expr(global.init_expr.get_operators_reader(), &mut add)?;
                }
            }
            Payload::ElementSection(reader) => {
                for element in reader {
                    let element = element.map_err(|e| e.to_string())?;
                    if let wasmparser::ElementKind::Active { offset_expr, .. } = element.kind {
                        const_expr(offset_expr.get_operators_reader(), &mut add)?;
                    }
                }
            }
            Payload::DataSection(reader) => {
                for data in reader {
                    let data = data.map_err(|e| e.to_string())?;
                    if let wasmparser::DataKind::Active { offset_expr, .. } = data.kind {
                        const_expr(offset_expr.get_operators_reader(), &mut add)?;
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut reader = body.get_operators_reader().map_err(|e| e.to_string())?;
                while !reader.eof() {
                    if let Some(name) = operator_feature(&reader.read().map_err(|e| e.to_string())?)
                    {
                        add(name);
                    }
                }
            }
            _ => {}
        }
    }
    if memories > 1 {
        add("multi-memory");
    }
    Ok(found)
}

fn memory_features(memory: &wasmparser::MemoryType, add: &mut impl FnMut(&'static str)) {
    if memory.memory64 {
        add("memory64");
    }
    if memory.page_size_log2 == Some(0) {
        add("one-byte pages");
    }
}

/// Extended constant expressions: arithmetic in a constant expression.
fn const_expr(
    mut reader: OperatorsReader<'_>,
    add: &mut impl FnMut(&'static str),
) -> Result<(), String> {
    while !reader.eof() {
        match reader.read().map_err(|e| e.to_string())? {
            Operator::I32Add
            | Operator::I32Sub
            | Operator::I32Mul
            | Operator::I64Add
            | Operator::I64Sub
            | Operator::I64Mul => add("extended-const"),
            _ => {}
        }
    }
    Ok(())
}

/// The feature an operator belongs to, among those the campaigns track.
fn operator_feature(op: &Operator<'_>) -> Option<&'static str> {
    Some(match op {
        Operator::ReturnCall { .. } | Operator::ReturnCallIndirect { .. } => "return_call",
        Operator::I64Add128
        | Operator::I64Sub128
        | Operator::I64MulWideS
        | Operator::I64MulWideU => "wide-arithmetic",
        Operator::F32x4RelaxedMin
        | Operator::F32x4RelaxedMax
        | Operator::F32x4RelaxedMadd
        | Operator::F32x4RelaxedNmadd
        | Operator::F64x2RelaxedMin
        | Operator::F64x2RelaxedMax
        | Operator::F64x2RelaxedMadd
        | Operator::F64x2RelaxedNmadd
        | Operator::I8x16RelaxedSwizzle
        | Operator::I32x4RelaxedTruncF32x4S
        | Operator::I32x4RelaxedTruncF32x4U
        | Operator::I32x4RelaxedTruncF64x2SZero
        | Operator::I32x4RelaxedTruncF64x2UZero
        | Operator::I8x16RelaxedLaneselect
        | Operator::I16x8RelaxedLaneselect
        | Operator::I32x4RelaxedLaneselect
        | Operator::I64x2RelaxedLaneselect
        | Operator::I16x8RelaxedQ15mulrS
        | Operator::I16x8RelaxedDotI8x16I7x16S
        | Operator::I32x4RelaxedDotI8x16I7x16AddS => "relaxed-simd",
        Operator::Throw { .. } => "throw",
        Operator::ThrowRef => "throw_ref",
        Operator::TryTable { .. } => "try_table",
        Operator::StructNew { .. }
        | Operator::StructNewDefault { .. }
        | Operator::StructGet { .. }
        | Operator::StructGetS { .. }
        | Operator::StructGetU { .. }
        | Operator::StructSet { .. } => "struct",
        Operator::ArrayNew { .. }
        | Operator::ArrayNewDefault { .. }
        | Operator::ArrayNewFixed { .. }
        | Operator::ArrayNewData { .. }
        | Operator::ArrayNewElem { .. }
        | Operator::ArrayGet { .. }
        | Operator::ArrayGetS { .. }
        | Operator::ArrayGetU { .. }
        | Operator::ArraySet { .. }
        | Operator::ArrayLen
        | Operator::ArrayFill { .. }
        | Operator::ArrayCopy { .. }
        | Operator::ArrayInitData { .. }
        | Operator::ArrayInitElem { .. } => "array",
        Operator::RefI31 | Operator::I31GetS | Operator::I31GetU => "i31",
        Operator::RefTestNonNull { .. }
        | Operator::RefTestNullable { .. }
        | Operator::RefCastNonNull { .. }
        | Operator::RefCastNullable { .. }
        | Operator::BrOnCast { .. }
        | Operator::BrOnCastFail { .. } => "cast",
        Operator::CallRef { .. } | Operator::ReturnCallRef { .. } => "call_ref",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_of_a_module() {
        let wasm = wat::parse_str(
            r#"(module
              (import "host" "nop" (func))
              (memory 1 1)
              (memory i64 1 1)
              (memory 1 1 (pagesize 1))
              (table i64 1 1 funcref)
              (tag $t)
              (global i32 (i32.add (i32.const 1) (i32.const 2)))
              (func (param v128) (result v128)
                (block (try_table (catch_all 0) (throw $t)))
                (return_call 1 (f32x4.relaxed_max (local.get 0) (local.get 0)))))"#,
        )
        .unwrap();
        assert_eq!(
            features(&wasm).unwrap(),
            [
                "host import",
                "table64",
                "memory64",
                "one-byte pages",
                "tag",
                "extended-const",
                "try_table",
                "throw",
                "relaxed-simd",
                "return_call",
                "multi-memory"
            ]
        );
    }
}
