//! NaN canonicalization after the relaxed float operators, which wasm-smith's
//! `canonicalize_nans` leaves out.
//!
//! `f32x4/f64x2.relaxed_min`, `relaxed_max`, `relaxed_madd` and `relaxed_nmadd`
//! return a NaN whose bits (sign, payload) the spec leaves open, like every float
//! operator; wasm-smith canonicalizes the result of the non-relaxed ones so that
//! runtimes that pick different NaNs still agree once the bits reach memory, a
//! global or an integer reinterpretation. [`canonicalize`] does the same for the four
//! relaxed ones after generation: it rewrites each function body (wasmparser in,
//! wasm-encoder's reencoder out) so that every such operator is followed by
//!
//! ```wat
//! local.tee $scratch            ;; a fresh v128 local of the function
//! v128.const <canonical NaN in every lane>
//! local.get $scratch
//! local.get $scratch
//! f32x4.eq / f64x2.eq           ;; all-ones where the lane is not a NaN
//! v128.bitselect                ;; the result where not NaN, the canonical NaN elsewhere
//! ```
//!
//! — the sequence wasm-smith emits for the other float operators. The remaining
//! relaxed operators need nothing: their results are integers (or selected bits),
//! and wazerox's deterministic lowering gives exactly wasmi's and wasmtime's
//! deterministic results for them (docs/fuzzing.md).

use wasm_encoder::reencode::{Error, Reencode};
use wasm_encoder::{CodeSection, Function, Instruction, ValType};
use wasmparser::{Operator, Parser, Payload};

/// The canonical NaNs, as wasm-smith's `canonicalize_nans` writes them.
const CANONICAL_F32_NAN: u32 = 0x7fc0_0000;
const CANONICAL_F64_NAN: u64 = 0x7ff8_0000_0000_0000;

/// Lane shapes of the operators canonicalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lanes {
    F32x4,
    F64x2,
}

/// Whether `op` is a relaxed float operator with an open NaN result, and its lanes.
fn relaxed_float(op: &Operator<'_>) -> Option<Lanes> {
    match op {
        Operator::F32x4RelaxedMin
        | Operator::F32x4RelaxedMax
        | Operator::F32x4RelaxedMadd
        | Operator::F32x4RelaxedNmadd => Some(Lanes::F32x4),
        Operator::F64x2RelaxedMin
        | Operator::F64x2RelaxedMax
        | Operator::F64x2RelaxedMadd
        | Operator::F64x2RelaxedNmadd => Some(Lanes::F64x2),
        _ => None,
    }
}

/// `wasm` with a NaN canonicalization after every relaxed float operator (see the
/// module documentation); other sections are re-encoded unchanged. `Err` if `wasm`
/// does not parse.
pub fn canonicalize(wasm: &[u8]) -> Result<Vec<u8>, String> {
    let mut rewriter = Rewriter {
        param_counts: defined_function_param_counts(wasm)?,
        next_function: 0,
    };
    let mut module = wasm_encoder::Module::new();
    rewriter
        .parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| format!("re-encoding: {e}"))?;
    Ok(module.finish())
}

/// The number of parameters of each defined function, in code-section order: the
/// first local index after a function's own locals is its parameter count plus its
/// local count.
fn defined_function_param_counts(wasm: &[u8]) -> Result<Vec<u32>, String> {
    let mut type_params: Vec<u32> = Vec::new();
    let mut counts = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| e.to_string())? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group.map_err(|e| e.to_string())?.into_types() {
                        // Non-function types keep the index space aligned; no
                        // function refers to them.
                        let params = match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => f.params().len() as u32,
                            _ => 0,
                        };
                        type_params.push(params);
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    let ty = ty.map_err(|e| e.to_string())? as usize;
                    let params = type_params
                        .get(ty)
                        .ok_or_else(|| format!("function of unknown type {ty}"))?;
                    counts.push(*params);
                }
            }
            _ => {}
        }
    }
    Ok(counts)
}

struct Rewriter {
    param_counts: Vec<u32>,
    next_function: usize,
}

impl Reencode for Rewriter {
    type Error = String;

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), Error<String>> {
        let params = *self
            .param_counts
            .get(self.next_function)
            .ok_or_else(|| Error::UserError("more bodies than functions".to_string()))?;
        self.next_function += 1;
        let mut locals = Vec::new();
        let mut local_count: u32 = params;
        for entry in func.get_locals_reader()? {
            let (count, ty) = entry?;
            local_count = local_count
                .checked_add(count)
                .ok_or_else(|| Error::UserError("too many locals".to_string()))?;
            locals.push((count, self.val_type(ty)?));
        }
        let scratch = local_count;
        let mut used_scratch = false;
        let mut body = Vec::new();
        let mut reader = func.get_operators_reader()?;
        while !reader.eof() {
            let op = reader.read()?;
            let lanes = relaxed_float(&op);
            body.push(self.instruction(op)?);
            if let Some(lanes) = lanes {
                canonicalize_top(lanes, scratch, &mut body);
                used_scratch = true;
            }
        }
        if used_scratch {
            locals.push((1, ValType::V128));
        }
        let mut function = Function::new(locals);
        for instruction in &body {
            function.instruction(instruction);
        }
        code.function(&function);
        Ok(())
    }
}

/// The canonicalization of the v128 on top of the stack (see the module docs).
fn canonicalize_top(lanes: Lanes, scratch: u32, body: &mut Vec<Instruction<'_>>) {
    let (nan, eq) = match lanes {
        Lanes::F32x4 => {
            let lane = CANONICAL_F32_NAN as u128;
            (
                lane | lane << 32 | lane << 64 | lane << 96,
                Instruction::F32x4Eq,
            )
        }
        Lanes::F64x2 => {
            let lane = CANONICAL_F64_NAN as u128;
            (lane | lane << 64, Instruction::F64x2Eq)
        }
    };
    body.extend([
        Instruction::LocalTee(scratch),
        Instruction::V128Const(nan as i128),
        Instruction::LocalGet(scratch),
        Instruction::LocalGet(scratch),
        eq,
        Instruction::V128Bitselect,
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `module` (text) rewritten in wazerox and returns the v128 result of
    /// export "f".
    fn run_rewritten(module: &str) -> u128 {
        let wasm = canonicalize(&wat::parse_str(module).unwrap()).unwrap();
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&wasm)
            .expect("the rewritten module validates");
        let engine = wazerox::Engine::default();
        let module = wazerox::Module::new(&engine, &wasm).unwrap();
        let mut store = wazerox::Store::new(&engine, ());
        let instance = wazerox::Instance::new(&mut store, &module, &[]).unwrap();
        let f = instance.get_func(&mut store, "f").unwrap();
        let mut results = [wazerox::Val::I32(0)];
        f.call(&mut store, &[], &mut results).unwrap();
        match results[0] {
            wazerox::Val::V128(v) => v,
            ref other => panic!("not a v128: {other:?}"),
        }
    }

    #[test]
    fn relaxed_max_of_a_nan_gives_the_canonical_nan() {
        // A negative NaN with a payload in lane 0, 1.0 elsewhere; the max of lane 0
        // is a NaN whatever the lowering, the other lanes 2.0.
        let v = run_rewritten(
            r#"(module
              (func (export "f") (result v128)
                (local $x v128)
                (f32x4.relaxed_max
                  (v128.const i32x4 0xffc01234 0x3f800000 0x3f800000 0x3f800000)
                  (v128.const f32x4 2 2 2 2))))"#,
        );
        assert_eq!(v as u32, CANONICAL_F32_NAN, "{v:#034x}");
        assert_eq!(
            v >> 32,
            (0x4000_0000u128 << 64) | (0x4000_0000u128 << 32) | 0x4000_0000
        );
    }

    #[test]
    fn every_relaxed_float_operator_is_canonicalized() {
        for (op, operands, lanes) in [
            ("f32x4.relaxed_min", 2, Lanes::F32x4),
            ("f32x4.relaxed_max", 2, Lanes::F32x4),
            ("f32x4.relaxed_madd", 3, Lanes::F32x4),
            ("f32x4.relaxed_nmadd", 3, Lanes::F32x4),
            ("f64x2.relaxed_min", 2, Lanes::F64x2),
            ("f64x2.relaxed_max", 2, Lanes::F64x2),
            ("f64x2.relaxed_madd", 3, Lanes::F64x2),
            ("f64x2.relaxed_nmadd", 3, Lanes::F64x2),
        ] {
            // Every operand all negative NaNs with a payload (0xff.. in every byte).
            let operand = "(v128.const i64x2 -1 -1)";
            let module = format!(
                "(module (func (export \"f\") (param i64) (result v128) ({op} {})))",
                vec![operand; operands].join(" ")
            );
            let wasm = canonicalize(&wat::parse_str(&module).unwrap()).unwrap();
            assert!(
                declares_one_scratch_local(&wasm),
                "{op}: one v128 local added"
            );
            let engine = wazerox::Engine::default();
            let module = wazerox::Module::new(&engine, &wasm).unwrap();
            let mut store = wazerox::Store::new(&engine, ());
            let instance = wazerox::Instance::new(&mut store, &module, &[]).unwrap();
            let f = instance.get_func(&mut store, "f").unwrap();
            let mut results = [wazerox::Val::I32(0)];
            f.call(&mut store, &[wazerox::Val::I64(0)], &mut results)
                .unwrap();
            let wazerox::Val::V128(v) = results[0] else {
                panic!("{op}: not a v128");
            };
            let expected = match lanes {
                Lanes::F32x4 => 0x7fc0_0000_7fc0_0000_7fc0_0000_7fc0_0000u128,
                Lanes::F64x2 => 0x7ff8_0000_0000_0000_7ff8_0000_0000_0000u128,
            };
            assert_eq!(v, expected, "{op}: {v:#034x}");
        }
    }

    /// Whether `wasm` validates and its first function declares exactly one local,
    /// a v128.
    fn declares_one_scratch_local(wasm: &[u8]) -> bool {
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(wasm)
            .expect("the rewritten module validates");
        for payload in Parser::new(0).parse_all(wasm) {
            if let Ok(Payload::CodeSectionEntry(body)) = payload {
                let locals: Vec<_> = body
                    .get_locals_reader()
                    .unwrap()
                    .into_iter()
                    .map(|l| l.unwrap())
                    .collect();
                return locals == [(1, wasmparser::ValType::V128)];
            }
        }
        false
    }

    #[test]
    fn only_the_relaxed_float_operators_are_rewritten() {
        let text = r#"(module
          (memory 1)
          (func (export "g") (param f32) (result v128)
            (local v128)
            (f32x4.relaxed_madd (f32x4.splat (local.get 0)) (local.get 1) (local.get 1))
            drop
            (i8x16.relaxed_swizzle (local.get 1) (local.get 1)))
          (func (export "h") (result i32) (i32.const 7)))"#;
        let wasm = canonicalize(&wat::parse_str(text).unwrap()).unwrap();
        let mut bodies = Vec::new();
        for payload in Parser::new(0).parse_all(&wasm) {
            if let Ok(Payload::CodeSectionEntry(body)) = payload {
                let ops: Vec<String> = body
                    .get_operators_reader()
                    .unwrap()
                    .into_iter()
                    .map(|op| format!("{:?}", op.unwrap()))
                    .collect();
                bodies.push(ops);
            }
        }
        // "g": madd, then the six instructions of the canonicalization on local 2
        // (after the parameter and the declared local); swizzle untouched.
        assert_eq!(bodies[0][4], "F32x4RelaxedMadd");
        assert_eq!(bodies[0][5], "LocalTee { local_index: 2 }");
        assert_eq!(bodies[0][10], "V128Bitselect");
        assert_eq!(bodies[0][11], "Drop");
        assert_eq!(bodies[0][14], "I8x16RelaxedSwizzle");
        assert_eq!(bodies[0].len(), 16);
        // "h" unchanged.
        assert_eq!(bodies[1], ["I32Const { value: 7 }", "End"]);
    }
}
