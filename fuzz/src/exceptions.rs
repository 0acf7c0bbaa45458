//! The exceptions campaign's modules: the differential target's, with exception
//! handling on (tags, `throw`, `throw_ref`, `try_table`, `exnref` values). wasmi has
//! no exceptions, so these cases run against the `wasmtime` crate instead: the
//! driver is `benches/src/bin/oracle.rs` (`oracle run exceptions`), which runs
//! wazerox through [`crate::differential::run_wazerox`], wasmtime with the same
//! canonical call sequence, and compares with
//! [`crate::differential::compare_reports`].
//!
//! wasm-smith exports no tags, so [`generate`] exports each one under
//! [`crate::report::tag_export_name`]: the report of an uncaught exception then
//! names its tag by index, in every runtime.

use crate::differential::Case;
use crate::report::tag_export_name;
use wasm_encoder::{ExportKind, ExportSection, RawSection, SectionId};
use wasmparser::{Parser, Payload};

/// The differential configuration with exceptions on. wasm-smith emits only the
/// standard (exnref) encoding: its configuration has no legacy exceptions.
pub fn config() -> wasm_smith::Config {
    wasm_smith::Config {
        exceptions_enabled: true,
        ..crate::differential::config()
    }
}

/// A case from fuzzer bytes, as [`crate::differential::generate`] builds it, with
/// every tag exported.
pub fn generate(data: &[u8]) -> Option<Case> {
    generate_with(config(), data)
}

/// [`generate`] with another wasm-smith configuration (the GC campaign's).
pub fn generate_with(config: wasm_smith::Config, data: &[u8]) -> Option<Case> {
    let case = crate::differential::generate_with(config, data)?;
    // `None` only if wasm-smith happened to choose one of our export names.
    let wasm = export_tags(&case.wasm).ok()?;
    Some(Case { wasm, ..case })
}

/// Where a section goes in a module (the binary format's order, which is not the
/// order of the section ids: tags come before globals, data count before code).
fn section_rank(id: u8) -> u8 {
    match id {
        13 => 55, // tag, between memory (5) and global (6)
        12 => 95, // data count, between element (9) and code (10)
        id => id * 10,
    }
}

const EXPORT_SECTION: u8 = SectionId::Export as u8;

/// `wasm` with each defined tag exported as `tag_export_name(index)`; other
/// sections copied byte for byte. `Err` if `wasm` does not parse, imports tags
/// (their indices would come first) or already uses one of the names.
pub fn export_tags(wasm: &[u8]) -> Result<Vec<u8>, String> {
    let mut tags = 0u32;
    let mut exports = ExportSection::new();
    let mut names = Vec::new();
    // Sections as (id, bytes), without the export section, which is rebuilt.
    let mut sections: Vec<(u8, &[u8])> = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| e.to_string())?;
        match &payload {
            Payload::ImportSection(reader) => {
                for import in reader.clone().into_imports() {
                    if let wasmparser::TypeRef::Tag(_) = import.map_err(|e| e.to_string())?.ty {
                        return Err("imported tags".into());
                    }
                }
            }
            Payload::TagSection(reader) => tags += reader.count(),
            Payload::ExportSection(reader) => {
                for export in reader.clone() {
                    let export = export.map_err(|e| e.to_string())?;
                    let kind = match export.kind {
                        wasmparser::ExternalKind::Func => ExportKind::Func,
                        wasmparser::ExternalKind::Table => ExportKind::Table,
                        wasmparser::ExternalKind::Memory => ExportKind::Memory,
                        wasmparser::ExternalKind::Global => ExportKind::Global,
                        wasmparser::ExternalKind::Tag => ExportKind::Tag,
                        other => return Err(format!("export of kind {other:?}")),
                    };
                    names.push(export.name.to_string());
                    exports.export(export.name, kind, export.index);
                }
            }
            _ => {}
        }
        if let Some((id, range)) = payload.as_section()
            && id != EXPORT_SECTION
        {
            sections.push((id, &wasm[range]));
        }
    }
    for tag in 0..tags {
        let name = tag_export_name(tag);
        if names.contains(&name) {
            return Err(format!("export name {name:?} taken"));
        }
        exports.export(&name, ExportKind::Tag, tag);
    }
    let mut module = wasm_encoder::Module::new();
    let mut exported = false;
    for (id, data) in sections {
        // Custom sections (id 0) stay where they were.
        if !exported && id != 0 && section_rank(id) > section_rank(EXPORT_SECTION) {
            module.section(&exports);
            exported = true;
        }
        module.section(&RawSection { id, data });
    }
    if !exported {
        module.section(&exports);
    }
    Ok(module.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tag_is_exported_and_the_module_still_validates() {
        let wasm = wat::parse_str(
            r#"(module
              (tag $a (param i32))
              (tag $b)
              (global (export "g") i32 (i32.const 1))
              (func (export "f") (throw $b))
              (start 0)
              (func (param i32) (result i32) (local.get 0)))"#,
        )
        .unwrap();
        // The export section goes before the start section; a module without one
        // gets one.
        let no_exports = wat::parse_str("(module (tag (param f64)) (func))").unwrap();
        for (wasm, expected) in [
            (
                wasm,
                vec![
                    ("g".to_string(), wasmparser::ExternalKind::Global, 0),
                    ("f".to_string(), wasmparser::ExternalKind::Func, 0),
                    (tag_export_name(0), wasmparser::ExternalKind::Tag, 0),
                    (tag_export_name(1), wasmparser::ExternalKind::Tag, 1),
                ],
            ),
            (
                no_exports,
                vec![(tag_export_name(0), wasmparser::ExternalKind::Tag, 0)],
            ),
        ] {
            let out = export_tags(&wasm).unwrap();
            wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
                .validate_all(&out)
                .expect("valid");
            let mut exports = Vec::new();
            for payload in Parser::new(0).parse_all(&out) {
                if let Payload::ExportSection(reader) = payload.unwrap() {
                    for e in reader {
                        let e = e.unwrap();
                        exports.push((e.name.to_string(), e.kind, e.index));
                    }
                }
            }
            assert_eq!(exports, expected);
        }
    }

    #[test]
    fn generated_modules_validate_with_their_tags_exported() {
        let mut with_tags = 0;
        for seed in 0..50 {
            let data = crate::seeded_input(crate::Target::Differential, seed);
            let Some(case) = generate(&data) else {
                continue;
            };
            wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
                .validate_all(&case.wasm)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            let names = crate::features::features(&case.wasm).unwrap();
            if names.contains(&"tag") {
                with_tags += 1;
            }
        }
        assert!(with_tags > 5, "{with_tags} of 50 modules define tags");
    }
}
