//! Settings that shape generated code and that the runtime must agree with.

/// Settings that change the generated code (part of the compiled artifact's key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TranslationConfig {
    /// Bytes of inaccessible address space after each 32-bit memory's 4 GiB
    /// reservation. Accesses whose static offset plus size fit in it need no check.
    pub guard_bytes: u64,
    /// Emit explicit bounds checks on every memory access instead of relying on
    /// guard pages.
    pub explicit_bounds_checks: bool,
    /// Count executed operators against the store's fuel; trap when it runs out.
    pub consume_fuel: bool,
    /// Check the engine's epoch against the store's deadline at function entries and
    /// loop headers; trap when it is reached.
    pub epoch_interruption: bool,
    /// Give every relaxed SIMD operator its x86-64 (SSE4.1) result on every CPU
    /// instead of the fastest native one.
    pub relaxed_simd_deterministic: bool,
}

impl Default for TranslationConfig {
    fn default() -> Self {
        TranslationConfig {
            guard_bytes: 2 << 30,
            explicit_bounds_checks: false,
            consume_fuel: false,
            epoch_interruption: false,
            relaxed_simd_deterministic: false,
        }
    }
}
