//! Fuzzing targets for wazerox. Each target's logic lives here, so the seeded smoke
//! tests (`fuzz/tests/smoke.rs`, run by every `cargo test`), the `wazerox-fuzz`
//! driver for long seeded runs (`src/main.rs`) and the libFuzzer entry points
//! (`fuzz/libfuzzer/`, a separate workspace) all run exactly the same code. See
//! `docs/fuzzing.md`.
//!
//! - [`differential`]: a `wasm-smith` module (only features both sides support, NaNs
//!   canonicalized, loops bounded) runs in wazerox and in the `wasmi` interpreter with
//!   the canonical call sequence of [`report`]; results, traps (by kind), final memory
//!   and exported globals must agree.
//! - [`validate`]: arbitrary bytes; wazerox must agree with wasmparser's verdict,
//!   never panic, and compile what it accepts.
//! - [`instantiate`]: arbitrary modules compiled, instantiated and run under fuel,
//!   a small stack, small memories, a store limit and a timeout; failures must be
//!   typed errors, and host memory and wall time per case stay bounded
//!   ([`resources`]).
//! - [`api`]: random sequences of embedding-API operations.
//!
//! [`exceptions`] builds the differential modules with exception handling, which
//! run against wasmtime in the oracle of `benches/` (wasmi has no exceptions), and
//! [`gc`] the same with the GC proposal;
//! [`campaign`] is the seeded-run loop both long-run drivers share; [`features`]
//! says which features a generated module uses.

pub mod api;
pub mod campaign;
pub mod differential;
pub mod exceptions;
pub mod features;
pub mod gc;
pub mod instantiate;
pub mod relaxed_nans;
pub mod report;
pub mod resources;
pub mod validate;

/// A small deterministic generator (xorshift64*) for seeded runs: failures reproduce
/// from the printed seed without a fuzzing engine.
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

/// The input of seed `seed` for a target, as the smoke tests and the driver build it.
pub fn seeded_input(target: Target, seed: u64) -> Vec<u8> {
    match target {
        Target::Differential => SeedBytes::new(seed).bytes(2048),
        Target::Validate => validate::seeded_input(seed),
        Target::Instantiate => SeedBytes::new(seed ^ 0x1257).bytes(4096),
        Target::Api => SeedBytes::new(seed ^ 0xa91).bytes(2048),
    }
}

/// The fuzzing targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Differential,
    Validate,
    Instantiate,
    Api,
}

impl Target {
    pub const ALL: [Target; 4] = [
        Target::Differential,
        Target::Validate,
        Target::Instantiate,
        Target::Api,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Differential => "differential",
            Target::Validate => "validate",
            Target::Instantiate => "instantiate",
            Target::Api => "api",
        }
    }

    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// How one input ended, for statistics: `Ok(label)` or a failure message.
pub fn run_one(target: Target, data: &[u8]) -> Result<&'static str, String> {
    match target {
        Target::Differential => match differential::check(data)? {
            Ok(()) => Ok("compared"),
            Err(differential::Skip::StackExhausted) => Ok("stack-limited"),
            Err(differential::Skip::NoModule) => Ok("no module"),
            Err(differential::Skip::GcHeapExhausted) => Ok("gc-heap-limited"),
        },
        Target::Validate => {
            thread_local! {
                static ENGINE: wazerox::Engine = wazerox::Engine::default();
            }
            ENGINE
                .with(|engine| validate::check(engine, data))
                .map(|()| "agreed")
        }
        Target::Instantiate => Ok(match instantiate::check(data)? {
            None => "no module",
            Some(instantiate::Reached::Rejected) => "rejected",
            Some(instantiate::Reached::NotInstantiated) => "not instantiated",
            Some(instantiate::Reached::Ran { .. }) => "ran",
        }),
        Target::Api => api::check(data).map(|_| "sequence"),
    }
}
