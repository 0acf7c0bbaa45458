//! `Config` and `Engine`: compilation settings, the compiler, the engine-wide
//! registry of function types, and trampolines shared by every module and store.

use crate::codegen::CodegenConfig;
use crate::error::{Error, ErrorKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
#[cfg(feature = "cranelift")]
use wazerox_compiler::Compiler;
use wazerox_environ::SignatureTrampolinesCode;
use wazerox_environ::{
    ConcreteType, FuncType, GcType, ModuleInfo, SubtypeInfo, TranslationConfig, ValType,
    WasmFeatures,
};
use wazerox_runtime::code_memory::CodeMemory;
use wazerox_runtime::code_registry::{self, ModuleCode};
use wazerox_runtime::instance_pool::{InstancePool, PoolLimits};
use wazerox_runtime::memory::MemoryStyle;

/// Settings for an [`Engine`].
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) features: WasmFeatures,
    pub(crate) codegen: CodegenConfig,
    pub(crate) translation: TranslationConfig,
    pub(crate) max_wasm_stack: usize,
    pub(crate) gc_heap_limit: usize,
    pub(crate) checkpoints: bool,
    pub(crate) allocation: InstanceAllocationStrategy,
    pub(crate) cache_dir: Option<std::path::PathBuf>,
    pub(crate) profiler: crate::ProfilingStrategy,
    pub(crate) backtrace_details: crate::WasmBacktraceDetails,
    pub(crate) compilation_strategy: CompilationStrategy,
    pub(crate) background_compilation: bool,
    pub(crate) async_support: bool,
}

/// When a module's functions are compiled, and how (docs/lazy-compilation.md).
/// Whatever the strategy, [`crate::Module::serialize`] writes fully optimized code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompilationStrategy {
    /// Every function, in parallel on every core, before [`crate::Module::new`]
    /// returns: the fastest code from the first instruction, the longest wait.
    #[default]
    Eager,
    /// Each function on its first call, at the engine's optimization level; the
    /// module is still validated whole by [`crate::Module::new`].
    Lazy,
    /// Like [`CompilationStrategy::Lazy`], with Cranelift's cheapest settings
    /// (`opt_level=none`, single-pass register allocation): cheaper first calls,
    /// slower code and larger stack frames, with no tier-up to optimized code yet.
    LazyFast,
}

impl CompilationStrategy {
    /// Whether functions are compiled on their first call.
    pub fn is_lazy(self) -> bool {
        !matches!(self, CompilationStrategy::Eager)
    }
}

/// Where instances get their VMContexts, linear memories and tables from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum InstanceAllocationStrategy {
    /// A fresh allocation per instance, memory reservation and table, freed when
    /// its store is dropped. No limits beyond the module's own.
    #[default]
    OnDemand,
    /// Instances, memories, tables (and async fiber stacks) come from engine-wide
    /// pools that are reset and reused (see [`PoolingConfig`]): instantiation
    /// then costs no address-space changes and no allocation of table storage,
    /// at the price of fixed limits.
    Pooling(PoolingConfig),
}

impl InstanceAllocationStrategy {
    /// The pooling strategy with [`PoolingConfig::default`].
    pub fn pooling() -> Self {
        InstanceAllocationStrategy::Pooling(PoolingConfig::default())
    }
}

/// Sizes of the pooling allocator, with wasmtime's names. A limit reached by
/// live objects is an [`ErrorKind::PoolExhausted`] error (retry once stores are
/// dropped); a module over a per-module or per-object limit is an
/// [`ErrorKind::Instantiation`] error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolingConfig {
    pub(crate) total_core_instances: usize,
    pub(crate) total_memories: usize,
    pub(crate) max_memory_size: u64,
    pub(crate) total_tables: usize,
    pub(crate) table_elements: u64,
    pub(crate) max_tables_per_module: usize,
    pub(crate) max_memories_per_module: usize,
    pub(crate) total_stacks: usize,
}

impl Default for PoolingConfig {
    /// 1000 instances, memories, tables and stacks; memories of up to 4 GiB
    /// (address space only: a slot costs memory only for the pages its
    /// instances touch), tables of up to 20,000 elements, one memory and one
    /// table per module (wasmtime's defaults, but for `table_elements`, which
    /// is 20,000 there too).
    fn default() -> Self {
        PoolingConfig {
            total_core_instances: 1000,
            total_memories: 1000,
            max_memory_size: 4 << 30,
            total_tables: 1000,
            table_elements: 20_000,
            max_tables_per_module: 1,
            max_memories_per_module: 1,
            total_stacks: 1000,
        }
    }
}

impl PoolingConfig {
    /// A pooling configuration with the defaults (see [`PoolingConfig::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// How many instances may be alive at once across all stores of the engine.
    pub fn total_core_instances(&mut self, count: usize) -> &mut Self {
        self.total_core_instances = count;
        self
    }

    /// How many linear memories may be alive at once across all stores of the
    /// engine (each instance's defined, unshared memories count). Each slot
    /// reserves address space like any memory (6 GiB by default), so this is
    /// bounded by the process's address space (128 TiB on x86-64 Linux: some
    /// 20,000 slots).
    pub fn total_memories(&mut self, slots: usize) -> &mut Self {
        self.total_memories = slots;
        self
    }

    /// Largest size (bytes) a pooled memory may have or grow to; a module whose
    /// memory starts larger fails to instantiate, and `memory.grow` beyond it
    /// returns -1.
    pub fn max_memory_size(&mut self, bytes: u64) -> &mut Self {
        self.max_memory_size = bytes;
        self
    }

    /// How many tables instances may define at once across all stores.
    pub fn total_tables(&mut self, count: usize) -> &mut Self {
        self.total_tables = count;
        self
    }

    /// Most elements a pooled table may have or grow to: a module whose table
    /// starts larger fails to instantiate, and `table.grow` beyond it returns -1.
    pub fn table_elements(&mut self, elements: u64) -> &mut Self {
        self.table_elements = elements;
        self
    }

    /// Most tables one module may define.
    pub fn max_tables_per_module(&mut self, count: usize) -> &mut Self {
        self.max_tables_per_module = count;
        self
    }

    /// Most linear memories one module may define.
    pub fn max_memories_per_module(&mut self, count: usize) -> &mut Self {
        self.max_memories_per_module = count;
        self
    }

    /// How many async calls (`Config::async_support`) may hold a fiber stack at
    /// once across all stores; one more fails with `PoolExhausted`.
    pub fn total_stacks(&mut self, count: usize) -> &mut Self {
        self.total_stacks = count;
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// WebAssembly 2.0 (SIMD included) plus threads (shared memories, atomics)
    /// and, from WebAssembly 3.0, tail calls, extended constant expressions,
    /// relaxed SIMD, wide arithmetic, multi-memory, memory64 (with table64),
    /// custom page sizes and exception handling (exnref encoding), as wasmtime
    /// enables them; optimizing for speed.
    pub fn new() -> Self {
        let features = WasmFeatures::WASM2
            | WasmFeatures::THREADS
            | WasmFeatures::TAIL_CALL
            | WasmFeatures::EXTENDED_CONST
            | WasmFeatures::RELAXED_SIMD
            | WasmFeatures::WIDE_ARITHMETIC
            | WasmFeatures::MULTI_MEMORY
            | WasmFeatures::MEMORY64
            | WasmFeatures::CUSTOM_PAGE_SIZES
            | WasmFeatures::EXCEPTIONS;
        Config {
            features,
            codegen: CodegenConfig::default(),
            translation: TranslationConfig::default(),
            max_wasm_stack: 512 * 1024,
            gc_heap_limit: wazerox_runtime::gc::DEFAULT_GC_HEAP_LIMIT,
            checkpoints: true,
            allocation: InstanceAllocationStrategy::OnDemand,
            cache_dir: None,
            profiler: crate::ProfilingStrategy::None,
            backtrace_details: crate::WasmBacktraceDetails::Environment,
            compilation_strategy: CompilationStrategy::Eager,
            background_compilation: false,
            async_support: false,
        }
    }

    /// When and how functions are compiled ([`CompilationStrategy`]; eager by
    /// default). With a lazy strategy the module is still validated as a whole
    /// when it is created; it is not written to the code cache
    /// ([`Config::cache_dir`]), whose existing entries it uses, and
    /// [`crate::Module::serialize`] compiles the functions not compiled yet first.
    pub fn compilation_strategy(&mut self, strategy: CompilationStrategy) -> &mut Self {
        self.compilation_strategy = strategy;
        self
    }

    /// With a lazy [`CompilationStrategy`]: a background thread compiles the
    /// direct callees of every compiled function before they are called, on a
    /// core the program leaves idle (docs/lazy-compilation.md, "Background
    /// compilation"). Off by default; then only called functions are compiled.
    pub fn background_compilation(&mut self, enable: bool) -> &mut Self {
        self.background_compilation = enable;
        self
    }

    fn feature(&mut self, feature: WasmFeatures, enable: bool) -> &mut Self {
        self.features.set(feature, enable);
        self
    }

    /// Fixed-width SIMD (`v128`), compiled to the host's vector instructions. On by
    /// default; when disabled, modules using it fail validation.
    pub fn wasm_simd(&mut self, enable: bool) -> &mut Self {
        self.feature(WasmFeatures::SIMD, enable)
    }
    /// Bulk memory operations (`memory.copy`, `memory.fill`, passive segments). On by default.
    pub fn wasm_bulk_memory(&mut self, enable: bool) -> &mut Self {
        self.feature(WasmFeatures::BULK_MEMORY, enable)
    }
    /// Reference types (`funcref`/`externref` values, several tables). On by default.
    pub fn wasm_reference_types(&mut self, enable: bool) -> &mut Self {
        self.feature(WasmFeatures::REFERENCE_TYPES, enable)
    }
    /// Functions and blocks with several results. On by default.
    pub fn wasm_multi_value(&mut self, enable: bool) -> &mut Self {
        self.feature(WasmFeatures::MULTI_VALUE, enable)
    }
    /// Any number of memories per module (WebAssembly 3.0). On by default.
    pub fn wasm_multi_memory(&mut self, enable: bool) -> &mut Self {
        self.feature(WasmFeatures::MULTI_MEMORY, enable)
    }
    /// `i32/i64.add/sub/mul` in constant expressions (global initializers, data and
    /// element offsets). On by default.
    pub fn wasm_extended_const(&mut self, enable: bool) -> &mut Self {
        self.feature(WasmFeatures::EXTENDED_CONST, enable)
    }
    /// Shared memories and atomic instructions (threads proposal). On by default.
    pub fn wasm_threads(&mut self, enable: bool) -> &mut Self {
        self.feature(WasmFeatures::THREADS, enable)
    }
    /// `return_call` and `return_call_indirect`: calls that replace the caller's
    /// frame, so unbounded tail recursion runs in constant stack. On by default.
    pub fn wasm_tail_call(&mut self, enable: bool) -> &mut Self {
        self.feature(WasmFeatures::TAIL_CALL, enable)
    }
    /// The relaxed SIMD operators (`f32x4.relaxed_madd`, `i8x16.relaxed_swizzle`,
    /// …), whose results the spec lets differ by platform. On by default; see
    /// [`Config::relaxed_simd_deterministic`] for which result wazerox gives.
    pub fn wasm_relaxed_simd(&mut self, enable: bool) -> &mut Self {
        self.feature(WasmFeatures::RELAXED_SIMD, enable)
    }
    /// Translate every relaxed SIMD operator to one fixed result on every CPU — the
    /// one x86-64 with SSE4.1 gives, matching wasmtime's deterministic lowering —
    /// instead of the fastest native instruction of this CPU (whose results for
    /// NaN, out-of-range and overflowing lanes can depend on the CPU's features:
    /// FMA, AVX-VNNI, …). Off by default, as in wasmtime (docs/frontend.md lists the
    /// choice per operator).
    pub fn relaxed_simd_deterministic(&mut self, enable: bool) -> &mut Self {
        self.translation.relaxed_simd_deterministic = enable;
        self
    }
    /// `i64.add128`, `i64.sub128`, `i64.mul_wide_s`, `i64.mul_wide_u`: 128-bit
    /// arithmetic on pairs of i64s. On by default.
    pub fn wasm_wide_arithmetic(&mut self, enable: bool) -> &mut Self {
        self.feature(WasmFeatures::WIDE_ARITHMETIC, enable)
    }
    /// Exception handling, the standard (exnref) encoding: tags, `throw`,
    /// `throw_ref`, `try_table`, `exnref`. On by default.
    pub fn wasm_exceptions(&mut self, enable: bool) -> &mut Self {
        self.feature(WasmFeatures::EXCEPTIONS, enable)
    }
    /// The legacy exception-handling encoding (`try`, `catch`, `catch_all`,
    /// `delegate`, `rethrow`), which most toolchains still emit. Off by default;
    /// `wazerox run` turns it on.
    pub fn wasm_legacy_exceptions(&mut self, enable: bool) -> &mut Self {
        self.feature(WasmFeatures::LEGACY_EXCEPTIONS, enable)
    }
    /// Typed function references (WebAssembly 3.0): `(ref $t)`/`(ref null $t)`
    /// value types, `call_ref`, `return_call_ref`, `ref.as_non_null`,
    /// `br_on_null`, `br_on_non_null`, non-nullable locals and tables with
    /// initializers; imports are checked by subtyping (docs/references.md). Off by
    /// default.
    pub fn wasm_function_references(&mut self, enable: bool) -> &mut Self {
        self.feature(WasmFeatures::FUNCTION_REFERENCES, enable)
    }
    /// The GC proposal (docs/gc.md): recursion groups and subtype declarations,
    /// canonicalized iso-recursively across the engine's modules (imports and
    /// `call_indirect` accept declared subtypes), the any hierarchy (`anyref`,
    /// `eqref`, `i31ref`, …), `i31`, `ref.eq`, casts, the extern/any
    /// conversions, and struct and array types in a per-store heap collected
    /// between calls and inside them (roots in Wasm frames from stack maps).
    /// Implies function references. Off by default.
    pub fn wasm_gc(&mut self, enable: bool) -> &mut Self {
        if enable {
            self.wasm_function_references(true);
        }
        self.feature(WasmFeatures::GC, enable)
    }
    /// Memories and tables indexed by `i64` (WebAssembly 3.0). On by default.
    /// A 64-bit memory grows up to [`Config::memory_reservation`].
    pub fn wasm_memory64(&mut self, enable: bool) -> &mut Self {
        self.feature(WasmFeatures::MEMORY64, enable)
    }
    /// Memories with one-byte pages (the custom-page-sizes proposal). On by
    /// default, as in wasmtime.
    pub fn wasm_custom_page_sizes(&mut self, enable: bool) -> &mut Self {
        self.feature(WasmFeatures::CUSTOM_PAGE_SIZES, enable)
    }

    /// The most bytes a store's GC heap may hold (default 1 GiB). An allocation
    /// past it traps with `TrapCode::GcHeapExhausted`; collections run only
    /// between outermost calls into Wasm (docs/gc.md), so a single call that
    /// allocates more than this traps even if most of it is garbage.
    pub fn gc_heap_limit(&mut self, bytes: usize) -> &mut Self {
        self.gc_heap_limit = bytes;
        self
    }
    /// Maximum native stack (bytes) Wasm code may use before trapping with
    /// `StackOverflow`. Default 512 KiB.
    pub fn max_wasm_stack(&mut self, bytes: usize) -> &mut Self {
        self.max_wasm_stack = bytes;
        self
    }

    /// Async calls (docs/async.md): with it, Wasm is called with
    /// [`Func::call_async`](crate::Func::call_async),
    /// [`TypedFunc::call_async`](crate::TypedFunc::call_async) and instantiated
    /// with [`Linker::instantiate_async`](crate::Linker::instantiate_async) (the
    /// synchronous forms then fail with a usage error, except from a host
    /// function that already runs inside an async call), and host functions may
    /// be async ([`Func::wrap_async`](crate::Func::wrap_async),
    /// [`Linker::func_wrap_async`](crate::Linker::func_wrap_async)). Each async
    /// call runs on a stack of its own of `max_wasm_stack` plus 512 KiB for host
    /// code, taken from a pool the engine keeps; a host future that is not ready
    /// suspends the call, which returns `Pending` to the executor. Off by default.
    pub fn async_support(&mut self, enable: bool) -> &mut Self {
        self.async_support = enable;
        self
    }

    /// Whether host functions can take snapshots (`Caller::snapshot`). On by
    /// default; off, host calls skip saving the exit state (five register stores),
    /// which only benchmarks comparing the two should want.
    pub fn checkpoints(&mut self, enable: bool) -> &mut Self {
        self.checkpoints = enable;
        self
    }

    /// Charge every executed operator against the store's fuel (`Store::set_fuel`);
    /// running out traps with `OutOfFuel`. Off by default (free when off).
    pub fn consume_fuel(&mut self, enable: bool) -> &mut Self {
        self.translation.consume_fuel = enable;
        self
    }

    /// Check the engine's epoch (`Engine::increment_epoch`) against the store's
    /// deadline (`Store::set_epoch_deadline`) at every function entry and loop
    /// header; reaching it traps with `Interrupt`. Off by default (free when off).
    pub fn epoch_interruption(&mut self, enable: bool) -> &mut Self {
        self.translation.epoch_interruption = enable;
        self
    }

    /// Address space (bytes) reserved for each linear memory; a memory never
    /// moves, so it never grows beyond this. Default 4 GiB: the whole range of a
    /// 32-bit index, which lets 32-bit accesses go unchecked. Smaller values make
    /// every access checked explicitly; larger ones let 64-bit memories grow past
    /// 4 GiB. Must be a non-zero multiple of 64 KiB (checked by [`Engine::new`]).
    pub fn memory_reservation(&mut self, bytes: u64) -> &mut Self {
        self.translation.memory_reservation = bytes;
        self
    }

    /// Inaccessible address space (bytes) after each memory's reservation.
    /// Accesses whose static offset plus size fit in it need no explicit check.
    /// Default 2 GiB; a multiple of 64 KiB (checked by [`Engine::new`]).
    pub fn memory_guard_size(&mut self, bytes: u64) -> &mut Self {
        self.translation.guard_bytes = bytes;
        self
    }

    /// Clamp explicitly bounds-checked memory and table accesses with
    /// `select_spectre_guard` so that a mispredicted check cannot read out of
    /// bounds speculatively. On by default (as in wasmtime).
    pub fn spectre_guards(&mut self, enable: bool) -> &mut Self {
        self.translation.spectre_guards = enable;
        self
    }

    /// The address-space layout of memories, as compiled code assumes it.
    pub(crate) fn memory_style(&self) -> MemoryStyle {
        MemoryStyle::for_config(&self.translation)
    }

    /// Check every memory access explicitly instead of relying on guard pages.
    pub fn explicit_bounds_checks(&mut self, enable: bool) -> &mut Self {
        self.translation.explicit_bounds_checks = enable;
        self
    }

    /// Cranelift optimization level: "none", "speed" (default) or "speed_and_size".
    pub fn cranelift_opt_level(&mut self, level: &str) -> &mut Self {
        self.codegen.opt_level = level.to_string();
        self
    }

    /// Run Cranelift's IR verifier on every function (slow; for debugging).
    pub fn cranelift_verifier(&mut self, enable: bool) -> &mut Self {
        self.codegen.verify = enable;
        self
    }

    /// Where instances' memories come from: fresh reservations (the default) or a
    /// pool (see [`InstanceAllocationStrategy::Pooling`]).
    pub fn allocation_strategy(&mut self, strategy: InstanceAllocationStrategy) -> &mut Self {
        self.allocation = strategy;
        self
    }

    /// Cache compiled modules in `dir` (created if missing): `Module::new` of the
    /// same bytes with an engine of the same settings loads the cached artifact
    /// instead of compiling. Entries are written atomically; a corrupt, truncated or
    /// foreign entry is rejected by its checksum and fingerprint and recompiled.
    ///
    /// The entries are machine code that runs as is: whoever can write to `dir` can
    /// make this process run any code (as with [`crate::Module::deserialize`]), so
    /// it must be a directory only trusted users can write.
    pub fn cache_dir(&mut self, dir: impl Into<std::path::PathBuf>) -> &mut Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Tell a native profiler where compiled functions are (see
    /// [`ProfilingStrategy`](crate::ProfilingStrategy)); `Engine::new` fails if the
    /// profiler's file cannot be written.
    pub fn profiler(&mut self, strategy: crate::ProfilingStrategy) -> &mut Self {
        self.profiler = strategy;
        self
    }

    /// Whether trap backtraces show source files and lines from a module's DWARF
    /// (`.debug_*` sections, e.g. C built with `-g`). By default, when the
    /// environment variable `WAZEROX_BACKTRACE_DETAILS` is `1` as the engine is
    /// made. Frames always show the function's name and Wasm offsets.
    pub fn wasm_backtrace_details(&mut self, details: crate::WasmBacktraceDetails) -> &mut Self {
        self.backtrace_details = details;
        self
    }

    /// Threads used to compile a module's functions (0 = one per core).
    pub fn compile_threads(&mut self, threads: usize) -> &mut Self {
        self.codegen.threads = threads;
        self
    }

    /// Generate code for the architecture's baseline CPU (x86_64: SSE2; no SSSE3,
    /// SSE4.1 or AVX) rather than for the features this machine has. Slower code that
    /// runs anywhere; artifacts record the choice.
    pub fn cranelift_baseline_cpu(&mut self, enable: bool) -> &mut Self {
        self.codegen.baseline_cpu = enable;
        self
    }
}

/// Trampolines for one function type, shared by every store of the engine.
pub(crate) struct SignatureTrampolines {
    /// `extern "C" fn(code, callee_vmctx, caller_vmctx, values)`.
    pub array_call: usize,
    /// Wasm-convention entry that forwards to a host callback.
    pub wasm_to_host: usize,
    /// The machine code, kept for artifacts: a runtime-only build gets the
    /// trampolines of a module's types from its artifact.
    pub code: Arc<SignatureTrampolinesCode>,
    _mapped: Arc<ModuleCode>,
}

/// The engine's function types, canonicalized iso-recursively: a recursion group
/// is identified by its members' structure, with references to types inside the
/// group written as positions in it ([`ConcreteType::RecGroup`]) and references
/// outside as engine ids ([`ConcreteType::Engine`]). Two modules declaring the
/// same group get the same ids, which is what `call_indirect`, links and the
/// API compare. Ids are never reused (the registry only grows).
#[derive(Default)]
struct TypeRegistry {
    /// Canonical group → engine id of its first member (members are consecutive).
    groups: HashMap<Vec<(FuncType, Option<GcType>, SubtypeInfo)>, u32>,
    /// By engine id: the signature in engine form and the declared supertype.
    types: Vec<(FuncType, Option<u32>)>,
    /// By engine id: the struct or array type in engine form (`None` for
    /// function types); for field access from the host.
    gc_types: Vec<Option<GcType>>,
}

/// The registry as the engine and its instances share it.
#[derive(Default)]
struct SharedTypes(Mutex<TypeRegistry>);

impl wazerox_runtime::instance::TypeHierarchy for SharedTypes {
    fn is_subtype(&self, sub: u32, sup: u32) -> bool {
        let registry = self.0.lock().unwrap();
        let mut current = Some(sub);
        while let Some(id) = current {
            if id == sup {
                return true;
            }
            current = registry.types.get(id as usize).and_then(|t| t.1);
        }
        false
    }
}

impl TypeRegistry {
    /// Interns one recursion group given in canonical form; returns its first id.
    fn intern(&mut self, group: Vec<(FuncType, Option<GcType>, SubtypeInfo)>) -> u32 {
        if let Some(first) = self.groups.get(&group) {
            return *first;
        }
        let first = self.types.len() as u32;
        let to_engine = |c: ConcreteType| match c {
            ConcreteType::RecGroup(i) => ConcreteType::Engine(first + i),
            other => other,
        };
        for (ty, gc_type, sub) in &group {
            self.gc_types
                .push(gc_type.as_ref().map(|t| t.map_concrete(&to_engine)));
            let supertype = sub.supertype.map(|s| match to_engine(s) {
                ConcreteType::Engine(id) => id,
                other => unreachable!("canonical supertype {other:?}"),
            });
            self.types.push((ty.map_concrete(&to_engine), supertype));
        }
        self.groups.insert(group, first);
        first
    }
}

pub(crate) struct EngineInner {
    pub config: Config,
    #[cfg(feature = "cranelift")]
    pub compiler: Compiler,
    types: Arc<SharedTypes>,
    trampolines: Mutex<HashMap<u32, Arc<SignatureTrampolines>>>,
    /// The epoch counter compiled code compares with store deadlines.
    pub epoch: std::sync::atomic::AtomicU64,
    /// The instance, table and memory pools of the pooling allocation strategy.
    pub instance_pool: Option<Arc<InstancePool>>,
    /// `Config::wasm_backtrace_details`, resolved when the engine was made.
    pub backtrace_details: bool,
    /// Stacks of async calls (`Config::async_support`), reused across stores.
    pub fiber_stacks: Arc<wazerox_runtime::fiber::StackPool>,
}

/// Compiles modules and owns what they share. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Engine(pub(crate) Arc<EngineInner>);

impl Default for Engine {
    fn default() -> Self {
        Engine::new(&Config::default()).expect("the default configuration is valid")
    }
}

impl Engine {
    /// An engine with `config`'s settings; fails if they are inconsistent or unsupported (e.g. a proposal wazerox does not implement), or if the profiler's file cannot be opened.
    pub fn new(config: &Config) -> Result<Engine, Error> {
        config
            .translation
            .validate()
            .map_err(|e| Error::with_kind(ErrorKind::Usage, e))?;
        wazerox_runtime::traphandlers::init_traps();
        config.profiler.open().map_err(|e| {
            Error::with_kind(
                ErrorKind::Usage,
                format!("profiler {:?}: {e}", config.profiler),
            )
        })?;
        #[cfg(feature = "cranelift")]
        let compiler = crate::codegen::new_compiler(&config.codegen, config.checkpoints)
            .map_err(|e| Error::with_kind(ErrorKind::Unsupported, e))?;
        let (instance_pool, stack_limit) = match &config.allocation {
            InstanceAllocationStrategy::OnDemand => (None, None),
            InstanceAllocationStrategy::Pooling(pooling) => (
                Some(Arc::new(InstancePool::new(
                    PoolLimits {
                        total_core_instances: pooling.total_core_instances,
                        total_memories: pooling.total_memories,
                        max_memory_size: pooling.max_memory_size,
                        total_tables: pooling.total_tables,
                        table_elements: pooling.table_elements,
                        max_tables_per_module: pooling.max_tables_per_module,
                        max_memories_per_module: pooling.max_memories_per_module,
                    },
                    config.memory_style(),
                ))),
                Some(pooling.total_stacks),
            ),
        };
        Ok(Engine(Arc::new(EngineInner {
            config: config.clone(),
            #[cfg(feature = "cranelift")]
            compiler,
            types: Arc::default(),
            trampolines: Mutex::default(),
            epoch: std::sync::atomic::AtomicU64::new(0),
            instance_pool,
            backtrace_details: config.backtrace_details.enabled(),
            fiber_stacks: Arc::new(wazerox_runtime::fiber::StackPool::new(
                config.max_wasm_stack,
                stack_limit,
            )),
        })))
    }

    pub(crate) fn backtrace_details(&self) -> bool {
        self.0.backtrace_details
    }

    /// Whether the engine was made with `Config::async_support(true)`: calls
    /// into Wasm then go through the async API.
    pub fn is_async(&self) -> bool {
        self.0.config.async_support
    }

    /// The configuration the engine was made with.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// Advances the epoch; code running in stores whose deadline this reaches traps
    /// with `Interrupt` at its next function entry or loop header. Callable from any
    /// thread (e.g. a timer).
    pub fn increment_epoch(&self) {
        self.0
            .epoch
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    pub(crate) fn current_epoch(&self) -> u64 {
        self.0.epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn same(&self, other: &Engine) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The engine-wide id of `ty` (whose concrete types are engine ids), as a
    /// final type alone in its recursion group: what host functions and tags
    /// declare. Equal types get equal ids, which is what `call_indirect` compares.
    pub(crate) fn type_id(&self, ty: &FuncType) -> u32 {
        let mut registry = self.0.types.0.lock().unwrap();
        registry.intern(vec![(ty.clone(), None, SubtypeInfo::default())])
    }

    /// The engine ids of a module's types, by type index: each recursion group is
    /// canonicalized (see [`TypeRegistry`]) and interned. Validation guarantees
    /// that types refer only to earlier groups or their own.
    pub(crate) fn register_module_types(&self, info: &ModuleInfo) -> Vec<u32> {
        let mut registry = self.0.types.0.lock().unwrap();
        let mut ids: Vec<u32> = Vec::with_capacity(info.types.len());
        for group in &info.rec_groups {
            let canonical = |c: ConcreteType| match c {
                ConcreteType::Module(t) if group.contains(&t.0) => {
                    ConcreteType::RecGroup(t.0 - group.start)
                }
                ConcreteType::Module(t) => ConcreteType::Engine(ids[t.index()]),
                other => other,
            };
            let members = group
                .clone()
                .map(|i| {
                    let sub = info.subtypes[i as usize];
                    let sub = SubtypeInfo {
                        supertype: sub.supertype.map(canonical),
                        ..sub
                    };
                    let gc = info.gc_types[i as usize]
                        .as_ref()
                        .map(|t| t.map_concrete(&canonical));
                    (info.types[i as usize].map_concrete(&canonical), gc, sub)
                })
                .collect();
            let first = registry.intern(members);
            ids.extend((0..group.len() as u32).map(|i| first + i));
        }
        ids
    }

    /// The signature of type `id`, its concrete types as engine ids.
    pub(crate) fn type_of(&self, id: u32) -> FuncType {
        self.0.types.0.lock().unwrap().types[id as usize].0.clone()
    }

    /// The struct or array type `id`, its concrete types as engine ids.
    pub(crate) fn gc_type_of(&self, id: u32) -> Option<GcType> {
        self.0
            .types
            .0
            .lock()
            .unwrap()
            .gc_types
            .get(id as usize)?
            .clone()
    }

    /// The declared supertype of type `id`.
    pub(crate) fn supertype_of(&self, id: u32) -> Option<u32> {
        self.0.types.0.lock().unwrap().types.get(id as usize)?.1
    }

    /// Whether type `sub` is `sup` or declares it as a (transitive) supertype.
    pub(crate) fn is_subtype(&self, sub: u32, sup: u32) -> bool {
        wazerox_runtime::instance::TypeHierarchy::is_subtype(&*self.0.types, sub, sup)
    }

    /// The registry's subtyping, for instances (`call_indirect` to non-final types).
    pub(crate) fn type_hierarchy(&self) -> Arc<dyn wazerox_runtime::instance::TypeHierarchy> {
        self.0.types.clone()
    }

    /// Whether a value of type `sub` may be used where `sup` is expected (both in
    /// engine form).
    pub(crate) fn val_subtype(&self, sub: ValType, sup: ValType) -> bool {
        sub.is_subtype_of(sup, &|id| self.supertype_of(id))
    }

    /// The compiler, or the error a runtime-only build gives for anything that
    /// needs one.
    #[cfg(feature = "cranelift")]
    pub(crate) fn compiler(&self) -> Result<&Compiler, Error> {
        Ok(&self.0.compiler)
    }

    /// The target of the code this engine generates, as artifacts record it.
    #[cfg(feature = "cranelift")]
    pub(crate) fn codegen_target(&self) -> crate::codegen::CodegenTarget {
        crate::codegen::target_of(&self.0.compiler)
    }

    /// The trampolines of type `id`: cached, or compiled on first use. A build
    /// without a compiler has those of the artifacts it loaded.
    pub(crate) fn trampolines(&self, id: u32) -> Result<Arc<SignatureTrampolines>, Error> {
        if let Some(t) = self.0.trampolines.lock().unwrap().get(&id) {
            return Ok(t.clone());
        }
        let compiled = self.compile_trampolines(id)?;
        self.map_trampolines(vec![(id, compiled)])?;
        Ok(self.cached_trampolines(&[id])?.remove(0))
    }

    #[cfg(feature = "cranelift")]
    fn compile_trampolines(&self, id: u32) -> Result<SignatureTrampolinesCode, Error> {
        Ok(self
            .0
            .compiler
            .compile_signature_trampolines(&self.type_of(id))?)
    }

    #[cfg(not(feature = "cranelift"))]
    fn compile_trampolines(&self, id: u32) -> Result<SignatureTrampolinesCode, Error> {
        Err(Error::with_kind(
            ErrorKind::Unsupported,
            format!(
                "no trampolines for function type {}: this build has no compiler, and no \
                 loaded artifact uses this type",
                self.type_of(id)
            ),
        ))
    }

    /// The trampolines of each of `ids`, compiling (in one code region) those not
    /// cached yet.
    #[cfg(feature = "cranelift")]
    pub(crate) fn trampolines_of(
        &self,
        ids: &[u32],
    ) -> Result<Vec<Arc<SignatureTrampolines>>, Error> {
        let mut missing: Vec<u32> = {
            let cache = self.0.trampolines.lock().unwrap();
            ids.iter()
                .copied()
                .filter(|id| !cache.contains_key(id))
                .collect()
        };
        missing.sort_unstable();
        missing.dedup();
        let compiled = missing
            .into_iter()
            .map(|id| Ok((id, self.compile_trampolines(id)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        self.map_trampolines(compiled)?;
        self.cached_trampolines(ids)
    }

    /// Maps the trampolines of several types into one code region and caches them;
    /// types already cached (or repeated) keep their first copy.
    pub(crate) fn map_trampolines(
        &self,
        mut compiled: Vec<(u32, SignatureTrampolinesCode)>,
    ) -> Result<(), Error> {
        {
            let cache = self.0.trampolines.lock().unwrap();
            let mut seen = std::collections::HashSet::new();
            compiled.retain(|(id, _)| !cache.contains_key(id) && seen.insert(*id));
        }
        if compiled.is_empty() {
            return Ok(());
        }
        let mut image = Vec::new();
        let mut traps = Vec::new();
        let mut starts = Vec::with_capacity(compiled.len());
        for (_, code) in &compiled {
            image.resize(image.len().next_multiple_of(16), 0);
            let start = image.len() as u32;
            image.extend_from_slice(&code.code);
            traps.extend(code.traps.iter().map(|&(o, c)| (start + o, c)));
            starts.push(start as usize);
        }
        let code = CodeMemory::new(&image, |_| Ok(()))
            .map_err(|e| Error::with_kind(ErrorKind::Instantiation, e))?;
        let base = code.base();
        let mapped = Arc::new(ModuleCode::new(
            code,
            Vec::new(),
            traps,
            Some("<trampolines>".to_string()),
            HashMap::new(),
        ));
        code_registry::register(&mapped);
        crate::profiling::register(
            self,
            compiled.iter().zip(&starts).map(|((id, code), start)| {
                (
                    format!("wasm-trampolines[{}]", self.type_of(*id)),
                    base + start,
                    code.code.len(),
                )
            }),
        );
        // Another thread may have mapped the same trampolines meanwhile: every
        // caller must use the cached copy, which lives as long as the engine (ours
        // would be unmapped when dropped, leaving callers with dangling addresses).
        let mut cache = self.0.trampolines.lock().unwrap();
        for ((id, code), start) in compiled.into_iter().zip(starts) {
            cache.entry(id).or_insert_with(|| {
                Arc::new(SignatureTrampolines {
                    array_call: base + start + code.array_call as usize,
                    wasm_to_host: base + start + code.wasm_to_host as usize,
                    code: Arc::new(code),
                    _mapped: mapped.clone(),
                })
            });
        }
        Ok(())
    }

    /// The cached trampolines of each of `ids`.
    pub(crate) fn cached_trampolines(
        &self,
        ids: &[u32],
    ) -> Result<Vec<Arc<SignatureTrampolines>>, Error> {
        let cache = self.0.trampolines.lock().unwrap();
        ids.iter()
            .map(|id| {
                cache.get(id).cloned().ok_or_else(|| {
                    Error::with_kind(
                        ErrorKind::Decode,
                        "invalid compiled artifact: missing trampolines",
                    )
                })
            })
            .collect()
    }
}
