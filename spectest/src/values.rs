//! Converting wast argument syntax to values and matching results against
//! expectations, including NaN patterns.

use wast::core::{HeapType, NanPattern, V128Const, V128Pattern, WastArgCore, WastRetCore};
use wast::{WastArg, WastRet};
use wazerox::{AnyRef, ExternRef, Store, Val};

pub fn arg_to_val(store: &mut Store<()>, arg: &WastArg<'_>) -> Result<Val, String> {
    let WastArg::Core(arg) = arg else {
        return Err("unsupported: component-model argument".into());
    };
    Ok(match arg {
        WastArgCore::I32(v) => Val::I32(*v),
        WastArgCore::I64(v) => Val::I64(*v),
        WastArgCore::F32(v) => Val::F32(v.bits),
        WastArgCore::F64(v) => Val::F64(v.bits),
        WastArgCore::V128(v) => Val::V128(v128_bits(v)),
        WastArgCore::RefNull(HeapType::Abstract { ty, .. }) => match ty {
            wast::core::AbstractHeapType::Func | wast::core::AbstractHeapType::NoFunc => {
                Val::FuncRef(None)
            }
            wast::core::AbstractHeapType::Extern | wast::core::AbstractHeapType::NoExtern => {
                Val::ExternRef(None)
            }
            wast::core::AbstractHeapType::Exn | wast::core::AbstractHeapType::NoExn => {
                Val::ExnRef(None)
            }
            wast::core::AbstractHeapType::Any
            | wast::core::AbstractHeapType::Eq
            | wast::core::AbstractHeapType::I31
            | wast::core::AbstractHeapType::Struct
            | wast::core::AbstractHeapType::Array
            | wast::core::AbstractHeapType::None => Val::AnyRef(None),
            other => return Err(format!("unsupported: ref.null {other:?}")),
        },
        WastArgCore::RefExtern(n) => Val::ExternRef(Some(ExternRef::new(&mut *store, *n))),
        WastArgCore::RefHost(n) => {
            let host = ExternRef::new(&mut *store, *n);
            Val::AnyRef(Some(AnyRef::convert_extern(store, host)))
        }
        other => return Err(format!("unsupported: argument {other:?}")),
    })
}

fn v128_bits(v: &V128Const) -> u128 {
    u128::from_le_bytes(v.to_le_bytes())
}

fn f32_matches(actual: u32, expected: &NanPattern<wast::token::F32>) -> bool {
    match expected {
        NanPattern::CanonicalNan => actual & 0x7fff_ffff == 0x7fc0_0000,
        NanPattern::ArithmeticNan => actual & 0x7fc0_0000 == 0x7fc0_0000,
        NanPattern::Value(v) => actual == v.bits,
    }
}

fn f64_matches(actual: u64, expected: &NanPattern<wast::token::F64>) -> bool {
    match expected {
        NanPattern::CanonicalNan => actual & 0x7fff_ffff_ffff_ffff == 0x7ff8_0000_0000_0000,
        NanPattern::ArithmeticNan => actual & 0x7ff8_0000_0000_0000 == 0x7ff8_0000_0000_0000,
        NanPattern::Value(v) => actual == v.bits,
    }
}

fn v128_matches(actual: u128, expected: &V128Pattern) -> bool {
    let bytes = actual.to_le_bytes();
    let lane = |i: usize, width: usize| -> u64 {
        let mut word = [0u8; 8];
        word[..width].copy_from_slice(&bytes[i * width..(i + 1) * width]);
        u64::from_le_bytes(word)
    };
    match expected {
        V128Pattern::I8x16(v) => (0..16).all(|i| lane(i, 1) as u8 == v[i] as u8),
        V128Pattern::I16x8(v) => (0..8).all(|i| lane(i, 2) as u16 == v[i] as u16),
        V128Pattern::I32x4(v) => (0..4).all(|i| lane(i, 4) as u32 == v[i] as u32),
        V128Pattern::I64x2(v) => (0..2).all(|i| lane(i, 8) == v[i] as u64),
        V128Pattern::F32x4(v) => (0..4).all(|i| f32_matches(lane(i, 4) as u32, &v[i])),
        V128Pattern::F64x2(v) => (0..2).all(|i| f64_matches(lane(i, 8), &v[i])),
    }
}

/// Whether `actual` satisfies `expected`; `Err` for expectations we cannot check.
pub fn matches(store: &Store<()>, actual: &Val, expected: &WastRet<'_>) -> Result<bool, String> {
    let WastRet::Core(expected) = expected else {
        return Err("unsupported: component-model result".into());
    };
    core_matches(store, actual, expected)
}

fn core_matches(
    store: &Store<()>,
    actual: &Val,
    expected: &WastRetCore<'_>,
) -> Result<bool, String> {
    Ok(match (actual, expected) {
        (Val::I32(a), WastRetCore::I32(e)) => a == e,
        (Val::I64(a), WastRetCore::I64(e)) => a == e,
        (Val::F32(a), WastRetCore::F32(e)) => f32_matches(*a, e),
        (Val::F64(a), WastRetCore::F64(e)) => f64_matches(*a, e),
        (Val::V128(a), WastRetCore::V128(e)) => v128_matches(*a, e),
        (Val::FuncRef(f), WastRetCore::RefNull(_)) => f.is_none(),
        (Val::ExternRef(e), WastRetCore::RefNull(_)) => e.is_none(),
        (Val::ExnRef(e), WastRetCore::RefNull(_)) => e.is_none(),
        (Val::AnyRef(a), WastRetCore::RefNull(_)) => a.is_none(),
        (Val::AnyRef(a), WastRetCore::RefAny) => a.is_some(),
        (Val::AnyRef(a), WastRetCore::RefEq) => a
            .as_ref()
            .is_some_and(|a| a.i31_s().is_some() || a.is_struct(store) || a.is_array(store)),
        (Val::AnyRef(a), WastRetCore::RefI31) => a.as_ref().is_some_and(|a| a.i31_s().is_some()),
        (Val::AnyRef(a), WastRetCore::RefStruct) => a.as_ref().is_some_and(|a| a.is_struct(store)),
        (Val::AnyRef(a), WastRetCore::RefArray) => a.as_ref().is_some_and(|a| a.is_array(store)),
        (Val::AnyRef(a), WastRetCore::RefHost(n)) => a.as_ref().is_some_and(|a| {
            a.as_externref(store)
                .and_then(|e| e.data(store))
                .and_then(|d| d.downcast_ref::<u32>())
                .is_some_and(|v| v == n)
        }),
        (Val::FuncRef(f), WastRetCore::RefFunc(_)) => f.is_some(),
        (Val::ExternRef(e), WastRetCore::RefExtern(expected)) => match (e, expected) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(r), Some(n)) => r
                .data(store)
                .and_then(|d| d.downcast_ref::<u32>())
                .is_some_and(|v| v == n),
        },
        (actual, WastRetCore::Either(alternatives)) => {
            for alternative in alternatives {
                if core_matches(store, actual, alternative)? {
                    return Ok(true);
                }
            }
            false
        }
        (
            _,
            WastRetCore::RefAny
            | WastRetCore::RefEq
            | WastRetCore::RefArray
            | WastRetCore::RefStruct
            | WastRetCore::RefI31
            | WastRetCore::RefI31Shared
            | WastRetCore::RefHost(_),
        ) => return Err(format!("unsupported: expected result {expected:?}")),
        _ => false,
    })
}

pub fn describe(value: &Val) -> String {
    match value {
        Val::I32(v) => format!("i32:{v}"),
        Val::I64(v) => format!("i64:{v}"),
        Val::F32(v) => format!("f32:{:?} ({v:#x})", f32::from_bits(*v)),
        Val::F64(v) => format!("f64:{:?} ({v:#x})", f64::from_bits(*v)),
        Val::V128(v) => format!("v128:{v:#034x}"),
        Val::FuncRef(f) => format!("funcref:{}", if f.is_some() { "func" } else { "null" }),
        Val::ExternRef(e) => format!("externref:{}", if e.is_some() { "extern" } else { "null" }),
        Val::ExnRef(e) => format!("exnref:{}", if e.is_some() { "exn" } else { "null" }),
        Val::AnyRef(None) => "anyref:null".to_string(),
        Val::AnyRef(Some(a)) => match a.i31_s() {
            Some(v) => format!("anyref:i31 {v}"),
            None => "anyref:non-i31".to_string(),
        },
    }
}
