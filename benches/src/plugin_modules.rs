//! The modules of the pooling benchmarks (`benches/pooling.rs`) and of the
//! request loop example (`examples/plugin_requests.rs`).

/// 10,000 table elements referring to 10 functions, and an export that calls
/// through the table.
pub fn table_module() -> String {
    let funcs: String = (0..10)
        .map(|i| format!("(func $f{i} (type $t) (i32.const {i}))"))
        .collect();
    let refs: String = (0..10_000).map(|i| format!(" $f{}", i % 10)).collect();
    format!(
        r#"(module (type $t (func (result i32))) (table 10000 10000 funcref) {funcs}
          (elem (i32.const 0) func{refs})
          (func (export "call") (param i32) (result i32) (call_indirect (type $t) (local.get 0))))"#
    )
}

/// 1 MiB of data in 16 segments and an export reading it.
pub fn plugin_module() -> String {
    let data: String = (0..16)
        .map(|i| {
            format!(
                "(data (i32.const {}) \"{}\")",
                i * 65536,
                "\\2a".repeat(65536)
            )
        })
        .collect();
    format!(
        r#"(module (memory 17) {data}
          (func (export "run") (param i32) (result i32)
            (i32.add (i32.load8_u (local.get 0)) (local.get 0))))"#
    )
}
