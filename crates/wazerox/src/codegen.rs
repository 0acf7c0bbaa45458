//! What this build knows of code generation.
//!
//! With the `cranelift` feature (the default) an engine owns a compiler; without
//! it, a runtime-only build can still load precompiled artifacts, and all it needs
//! to know is whether their machine code runs on this host. [`CodegenTarget`] is
//! what an artifact records for that check: the compiler's exact settings (which a
//! build with a compiler compares verbatim, as it always has) and, for a build
//! without one, the architecture and the CPU features the code uses, each checked
//! against what this CPU reports.

/// The code generator settings an artifact's code was produced with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodegenTarget {
    /// Cranelift's version, target, flags and CPU features, as one string.
    pub settings: String,
    /// The architecture, as `std::env::consts::ARCH` names it.
    pub arch: String,
    /// CPU features the code may use (Cranelift's `has_*` flags that are on).
    pub cpu_features: Vec<String>,
}

/// Settings for the code generator, kept as plain data so that a `Config` means the
/// same with or without a compiler in the build.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CodegenConfig {
    /// Cranelift `opt_level`: "none", "speed" or "speed_and_size".
    pub opt_level: String,
    /// Run Cranelift's IR verifier.
    pub verify: bool,
    /// Threads used to compile function bodies; 0 = one per available core.
    pub threads: usize,
    /// Generate code for the architecture's baseline instead of the host's features.
    pub baseline_cpu: bool,
}

impl Default for CodegenConfig {
    fn default() -> Self {
        CodegenConfig {
            opt_level: "speed".to_string(),
            verify: cfg!(debug_assertions),
            threads: 0,
            baseline_cpu: false,
        }
    }
}

#[cfg(feature = "cranelift")]
mod with_compiler {
    use super::{CodegenConfig, CodegenTarget};
    use wazerox_compiler::{Compiler, CompilerConfig};

    pub(crate) fn new_compiler(
        config: &CodegenConfig,
        checkpoints: bool,
    ) -> Result<Compiler, String> {
        Compiler::new(CompilerConfig {
            opt_level: config.opt_level.clone(),
            verify: config.verify,
            threads: config.threads,
            baseline_cpu: config.baseline_cpu,
            checkpoints,
        })
    }

    pub(crate) fn target_of(compiler: &Compiler) -> CodegenTarget {
        CodegenTarget {
            settings: compiler.fingerprint(),
            arch: compiler.architecture(),
            cpu_features: compiler.cpu_features(),
        }
    }
}

#[cfg(feature = "cranelift")]
pub(crate) use with_compiler::{new_compiler, target_of};

/// Why code generated for `target` cannot run on this host, if it cannot.
/// Used when no compiler is there to compare settings with.
#[cfg_attr(feature = "cranelift", allow(dead_code))]
pub(crate) fn check_runs_on_host(target: &CodegenTarget) -> Result<(), String> {
    if target.arch != std::env::consts::ARCH {
        return Err(format!(
            "compiled for {}, this host is {}",
            target.arch,
            std::env::consts::ARCH
        ));
    }
    for feature in &target.cpu_features {
        match host_has(feature) {
            Some(true) => {}
            Some(false) => return Err(format!("this CPU lacks {feature}, which the code uses")),
            None => {
                return Err(format!(
                    "the code uses CPU feature {feature}, which this build cannot check"
                ));
            }
        }
    }
    Ok(())
}

/// Whether this CPU has the feature Cranelift calls `flag`; `None` when unknown.
fn host_has(flag: &str) -> Option<bool> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        Some(match flag {
            "has_sse3" => has!("sse3"),
            "has_ssse3" => has!("ssse3"),
            "has_cmpxchg16b" => has!("cmpxchg16b"),
            "has_sse41" => has!("sse4.1"),
            "has_sse42" => has!("sse4.2"),
            "has_avx" => has!("avx"),
            "has_avx2" => has!("avx2"),
            "has_fma" => has!("fma"),
            "has_avx_vnni" => has!("avxvnni"),
            "has_avx512bitalg" => has!("avx512bitalg"),
            "has_avx512dq" => has!("avx512dq"),
            "has_avx512vl" => has!("avx512vl"),
            "has_avx512vbmi" => has!("avx512vbmi"),
            "has_avx512f" => has!("avx512f"),
            "has_avx512vnni" => has!("avx512vnni"),
            "has_popcnt" => has!("popcnt"),
            "has_bmi1" => has!("bmi1"),
            "has_bmi2" => has!("bmi2"),
            "has_lzcnt" => has!("lzcnt"),
            _ => return None,
        })
    }
    #[cfg(target_arch = "aarch64")]
    {
        use std::arch::is_aarch64_feature_detected as has;
        Some(match flag {
            "has_lse" => has!("lse"),
            "has_pauth" => has!("paca"),
            "has_fp16" => has!("fp16"),
            "has_dotprod" => has!("dotprod"),
            "has_i8mm" => has!("i8mm"),
            _ => return None,
        })
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = flag;
        None
    }
}

#[cfg(all(test, feature = "cranelift"))]
mod tests {
    use super::*;

    #[test]
    fn code_for_this_host_runs_on_this_host() {
        let compiler = new_compiler(&CodegenConfig::default(), true).unwrap();
        let target = target_of(&compiler);
        assert!(!target.cpu_features.is_empty() || target.arch != "x86_64");
        check_runs_on_host(&target).unwrap();
    }

    #[test]
    fn foreign_or_unknown_targets_are_refused() {
        let compiler = new_compiler(&CodegenConfig::default(), true).unwrap();
        let mut target = target_of(&compiler);
        target.arch = "riscv64".to_string();
        assert!(check_runs_on_host(&target).unwrap_err().contains("riscv64"));
        let mut target = target_of(&compiler);
        target
            .cpu_features
            .push("has_quantum_entanglement".to_string());
        assert!(
            check_runs_on_host(&target)
                .unwrap_err()
                .contains("cannot check")
        );
    }
}
