//! Settings that shape generated code and that the runtime must agree with.
//!
//! The address-space layout of a linear memory is stated here once: the translator
//! elides bounds checks on the assumption of it, and the runtime reserves exactly
//! it (`wazerox_runtime::memory::MemoryStyle` is built from a [`TranslationConfig`]),
//! so no setting can make compiled code rely on a guard the mapping does not have.

/// Address space reserved for a linear memory's contents by default: the whole
/// range a 32-bit index can reach, so 32-bit accesses need no explicit check.
pub const DEFAULT_MEMORY_RESERVATION: u64 = 4 << 30;

/// Inaccessible address space after each memory's reservation by default. An
/// access whose static offset plus size fits in it needs no explicit check.
pub const DEFAULT_GUARD_BYTES: u64 = 2 << 30;

/// The largest `reservation + guard` a configuration may ask for per memory
/// (64 TiB: half of x86-64 Linux's user address space).
pub const MAX_MEMORY_ADDRESS_SPACE: u64 = 1 << 46;

/// The granularity of reservations and guards: every supported host's pages
/// divide the Wasm page (64 KiB).
pub const RESERVATION_GRANULE: u64 = 1 << 16;

/// Settings that change the generated code (part of the compiled artifact's key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TranslationConfig {
    /// Address space reserved for each memory's contents; a memory never grows
    /// beyond it. Bounds checks of 32-bit memories are elided only when it covers
    /// the whole 4 GiB index range.
    pub memory_reservation: u64,
    /// Bytes of inaccessible address space after each memory's reservation.
    /// Accesses whose static offset plus size fit in it need no check.
    pub guard_bytes: u64,
    /// Emit explicit bounds checks on every memory access instead of relying on
    /// guard pages.
    pub explicit_bounds_checks: bool,
    /// Clamp the address of every explicitly bounds-checked memory or table
    /// access with `select_spectre_guard`, so that a mispredicted check cannot
    /// speculatively read out of bounds.
    pub spectre_guards: bool,
    /// Count executed operators against the store's fuel; trap when it runs out.
    pub consume_fuel: bool,
    /// Check the engine's epoch against the store's deadline at function entries and
    /// loop headers; trap when it is reached.
    pub epoch_interruption: bool,
    /// Give every relaxed SIMD operator its x86-64 (SSE4.1) result on every CPU
    /// instead of the fastest native one.
    pub relaxed_simd_deterministic: bool,
    /// Call functions of the same module through their function references (whose
    /// code address is a lazy stub until the callee is compiled) instead of direct
    /// PC-relative calls: set only for lazily compiled modules, whose functions
    /// live in separate code images (docs/lazy-compilation.md).
    pub lazy_calls: bool,
}

impl Default for TranslationConfig {
    fn default() -> Self {
        TranslationConfig {
            memory_reservation: DEFAULT_MEMORY_RESERVATION,
            guard_bytes: DEFAULT_GUARD_BYTES,
            explicit_bounds_checks: false,
            spectre_guards: true,
            consume_fuel: false,
            epoch_interruption: false,
            relaxed_simd_deterministic: false,
            lazy_calls: false,
        }
    }
}

impl TranslationConfig {
    /// Checks the memory layout settings: both sizes whole multiples of
    /// [`RESERVATION_GRANULE`], the reservation non-zero, and their sum within
    /// [`MAX_MEMORY_ADDRESS_SPACE`].
    pub fn validate(&self) -> Result<(), String> {
        if self.memory_reservation == 0
            || !self.memory_reservation.is_multiple_of(RESERVATION_GRANULE)
        {
            return Err(format!(
                "memory_reservation of {} bytes must be a non-zero multiple of {RESERVATION_GRANULE}",
                self.memory_reservation
            ));
        }
        if !self.guard_bytes.is_multiple_of(RESERVATION_GRANULE) {
            return Err(format!(
                "memory_guard_size of {} bytes must be a multiple of {RESERVATION_GRANULE}",
                self.guard_bytes
            ));
        }
        match self.memory_reservation.checked_add(self.guard_bytes) {
            Some(total) if total <= MAX_MEMORY_ADDRESS_SPACE => Ok(()),
            _ => Err(format!(
                "memory_reservation + memory_guard_size ({} + {} bytes) exceeds the \
                 limit of {MAX_MEMORY_ADDRESS_SPACE} bytes per memory",
                self.memory_reservation, self.guard_bytes
            )),
        }
    }

    /// Whether an access of a memory of type `ty` at `index + offset` (`size`
    /// bytes, `index` known to be below 2^32) may rely on the reservation and guard
    /// instead of an explicit check: only with 64 KiB pages (one-byte pages end
    /// inside a host page), a reservation covering the 4 GiB a 32-bit index
    /// reaches, and `offset + size` within the guard.
    pub fn elides_bounds_check(&self, ty: &crate::MemoryType, offset: u64, size: u64) -> bool {
        !self.explicit_bounds_checks
            && ty.page_size_log2 == crate::DEFAULT_PAGE_SIZE_LOG2
            && self.memory_reservation >= 1 << 32
            && offset
                .checked_add(size)
                .is_some_and(|end| end <= self.guard_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryType;

    #[test]
    fn layouts_are_validated() {
        assert!(TranslationConfig::default().validate().is_ok());
        let with = |reservation, guard| TranslationConfig {
            memory_reservation: reservation,
            guard_bytes: guard,
            ..TranslationConfig::default()
        };
        assert!(with(0, 0).validate().is_err());
        assert!(with(65536, 0).validate().is_ok());
        assert!(with(65536 + 4096, 0).validate().is_err());
        assert!(with(65536, 4096).validate().is_err());
        assert!(with(MAX_MEMORY_ADDRESS_SPACE, 65536).validate().is_err());
        assert!(with(u64::MAX - 65535, 1 << 20).validate().is_err());
    }

    #[test]
    fn checks_are_elided_only_where_the_mapping_backs_them() {
        let memory = MemoryType::new(1, None);
        let default = TranslationConfig::default();
        assert!(default.elides_bounds_check(&memory, 0, 8));
        assert!(default.elides_bounds_check(&memory, DEFAULT_GUARD_BYTES - 8, 8));
        assert!(!default.elides_bounds_check(&memory, DEFAULT_GUARD_BYTES - 7, 8));
        assert!(!default.elides_bounds_check(&memory, u64::MAX, 8));
        let small_reservation = TranslationConfig {
            memory_reservation: 1 << 20,
            ..default
        };
        assert!(!small_reservation.elides_bounds_check(&memory, 0, 1));
        let no_guard = TranslationConfig {
            guard_bytes: 0,
            ..default
        };
        assert!(!no_guard.elides_bounds_check(&memory, 0, 1));
        let byte_pages = MemoryType {
            page_size_log2: 0,
            ..memory
        };
        assert!(!default.elides_bounds_check(&byte_pages, 0, 1));
    }
}
