//! Which bounds checks the translator emits, read from the Cranelift IR of small
//! functions: checks are elided only where the configured reservation and guard
//! back them, and explicit checks carry Spectre guards unless turned off.

use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use target_lexicon::PointerWidth;
use wazerox_environ::{TranslationConfig, VMOffsets, WasmFeatures, parse};
use wazerox_frontend::FuncTranslator;
use wazerox_frontend::translate::TranslationInputs;

/// The IR of the module's first function, as text.
fn ir_of(wat: &str, config: &TranslationConfig) -> String {
    let wasm = wat::parse_str(wat).expect("valid text");
    let features = WasmFeatures::WASM3 | WasmFeatures::CUSTOM_PAGE_SIZES;
    let translation = parse::parse(&wasm, features).expect("valid module");
    let offsets = VMOffsets::new(&translation.info);
    let inputs = TranslationInputs {
        module: &translation.info,
        offsets: &offsets,
        config,
        frontend_config: TargetFrontendConfig {
            default_call_conv: CallConv::SystemV,
            pointer_width: PointerWidth::U64,
            page_size_align_log2: 12,
        },
        relaxed_simd: wazerox_frontend::translate::RelaxedSimdLowering::DETERMINISTIC,
    };
    let body = translation.bodies.into_iter().next().expect("one body");
    let func = translation.info.defined_to_func_index(0);
    FuncTranslator::new()
        .translate(&inputs, func, body)
        .expect("translates")
        .display()
        .to_string()
}

const LOAD32: &str = r#"(module (memory 1)
    (func (param i32) (result i32) (i32.load offset=16 (local.get 0))))"#;

fn has_length_check(ir: &str) -> bool {
    ir.contains("icmp ugt")
}

#[test]
fn guard_pages_elide_checks_only_when_reservation_and_guard_back_them() {
    let default = TranslationConfig::default();
    assert!(!has_length_check(&ir_of(LOAD32, &default)));
    for config in [
        TranslationConfig {
            guard_bytes: 0,
            ..default
        },
        TranslationConfig {
            memory_reservation: 1 << 20,
            ..default
        },
        TranslationConfig {
            explicit_bounds_checks: true,
            ..default
        },
    ] {
        assert!(has_length_check(&ir_of(LOAD32, &config)), "{config:?}");
    }
    let one_byte_pages = r#"(module (memory 1 (pagesize 1))
        (func (param i32) (result i32) (i32.load (local.get 0))))"#;
    assert!(has_length_check(&ir_of(one_byte_pages, &default)));
}

#[test]
fn explicit_checks_carry_spectre_guards_unless_turned_off() {
    let explicit = TranslationConfig {
        explicit_bounds_checks: true,
        ..TranslationConfig::default()
    };
    let table = r#"(module (table 1 funcref)
        (func (param i32) (call_indirect (local.get 0))))"#;
    for wat in [LOAD32, table] {
        assert!(
            ir_of(wat, &explicit).contains("select_spectre_guard"),
            "{wat}"
        );
        let off = TranslationConfig {
            spectre_guards: false,
            ..explicit
        };
        assert!(!ir_of(wat, &off).contains("select_spectre_guard"), "{wat}");
    }
    // Guard pages need no clamp.
    assert!(!ir_of(LOAD32, &TranslationConfig::default()).contains("select_spectre_guard"));
}

#[test]
fn memory64_checks_by_index_type_and_maximum() {
    let default = TranslationConfig::default();
    let unbounded = r#"(module (memory i64 1)
        (func (param i64) (result i32) (i32.load offset=16 (local.get 0))))"#;
    let ir = ir_of(unbounded, &default);
    assert!(
        has_length_check(&ir) && ir.contains("uadd_overflow_trap"),
        "{ir}"
    );
    let small = r#"(module (memory i64 1 65536)
        (func (param i64) (result i32) (i32.load offset=16 (local.get 0))))"#;
    let ir = ir_of(small, &default);
    assert!(!ir.contains("uadd_overflow_trap"), "{ir}");
    // One compare of the index with 2^32 - 1 (clamped), no load of the length.
    assert!(
        ir.contains("icmp ugt") && ir.contains("0xffff_ffff"),
        "{ir}"
    );
    assert!(ir.contains("select_spectre_guard"), "{ir}");
    assert_eq!(ir.matches("load.i64").count(), 4, "{ir}");
}
