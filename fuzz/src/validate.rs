//! Validation agreement: arbitrary bytes; wazerox must accept exactly what
//! wasmparser (with the features of the default `Config`) accepts, never panic, and
//! compile whatever it accepts.

/// The features of `wazerox::Config::default()`: Wasm 2.0 (SIMD included), threads,
/// tail calls, extended-const, relaxed SIMD, wide arithmetic and the 3.0 memory
/// features (multi-memory, memory64, custom page sizes) and exception handling
/// (exnref encoding).
pub fn features() -> wasmparser::WasmFeatures {
    use wasmparser::WasmFeatures as F;
    F::WASM2
        | F::THREADS
        | F::TAIL_CALL
        | F::EXTENDED_CONST
        | F::RELAXED_SIMD
        | F::WIDE_ARITHMETIC
        | F::MULTI_MEMORY
        | F::MEMORY64
        | F::CUSTOM_PAGE_SIZES
        | F::EXCEPTIONS
}

/// Checks one input with an engine of the default configuration.
pub fn check(engine: &wazerox::Engine, bytes: &[u8]) -> Result<(), String> {
    let ours = wazerox::Module::validate(engine, bytes);
    let reference = wasmparser::Validator::new_with_features(features()).validate_all(bytes);
    match (ours, reference) {
        (Ok(()), Ok(_)) => wazerox::Module::new(engine, bytes)
            .map(drop)
            .map_err(|e| format!("valid module failed to compile: {e}")),
        (Err(e), Err(_)) => match e.kind() {
            wazerox::ErrorKind::Decode | wazerox::ErrorKind::Validation => Ok(()),
            kind => Err(format!("invalid module reported as {kind:?}: {e}")),
        },
        (Ok(()), Err(reason)) => Err(format!("wazerox accepts, wasmparser rejects: {reason}")),
        (Err(e), Ok(_)) => Err(format!("wazerox rejects, wasmparser accepts: {e}")),
    }
}

/// Inputs of the seeded smoke run: random bytes, half of them behind a valid header
/// so they get past the preamble, and one in four a valid `wasm-smith` module (any
/// proposal) with up to three corrupted bytes, so validation itself is reached.
pub fn seeded_input(seed: u64) -> Vec<u8> {
    let mut bytes = crate::SeedBytes::new(seed ^ 0x5eed).bytes(64 + (seed % 200) as usize);
    if seed % 4 == 3 {
        let data = crate::SeedBytes::new(seed).bytes(1024);
        let mut u = arbitrary::Unstructured::new(&data);
        if let Ok(module) = wasm_smith::Module::new(wasm_smith::Config::default(), &mut u) {
            let mut wasm = module.to_bytes();
            for flip in bytes.chunks(3).take(1 + (seed as usize / 4) % 3) {
                let at = u16::from_le_bytes([flip[0], flip[1]]) as usize % wasm.len();
                wasm[at] ^= flip[2] | 1;
            }
            return wasm;
        }
    }
    if seed.is_multiple_of(2) {
        bytes[..8].copy_from_slice(b"\0asm\x01\0\0\0");
    }
    bytes
}
