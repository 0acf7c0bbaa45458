//! Fuzzing oracles for wazerox, used by the seeded smoke tests in `tests/` (run by
//! `cargo test`) and by long fuzzing runs (see `docs/fuzzing.md`).
//!
//! - [`differential`]: a `wasm-smith` module (only features both sides support, NaNs
//!   canonicalized, loops bounded) runs in wazerox and in the `wasmi` interpreter;
//!   every export is called in declaration order and results, traps (by kind), final
//!   memory and exported globals must agree.
//! - [`validate`]: arbitrary bytes; `Module::validate` must agree with wasmparser's
//!   verdict and never panic.

pub mod differential;

/// A small deterministic generator (xorshift64*) for seeded smoke runs: failures
/// reproduce from the printed seed without a fuzzing engine.
pub struct SeedBytes(u64);

impl SeedBytes {
    pub fn new(seed: u64) -> Self {
        SeedBytes(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            out.extend_from_slice(&self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// Validation agreement: wazerox accepts exactly what wasmparser (with the same
/// features) accepts, without panicking.
pub fn validate(engine: &wazerox::Engine, bytes: &[u8]) -> Result<(), String> {
    let ours = wazerox::Module::validate(engine, bytes).is_ok();
    let features = (wasmparser::WasmFeatures::WASM2 - wasmparser::WasmFeatures::SIMD)
        | wasmparser::WasmFeatures::THREADS;
    let reference = wasmparser::Validator::new_with_features(features)
        .validate_all(bytes)
        .is_ok();
    if ours == reference {
        Ok(())
    } else {
        Err(format!(
            "wazerox valid={ours}, wasmparser valid={reference}"
        ))
    }
}
