//! What a runtime did with a module, in one runtime-independent format: the
//! differential oracle compares two [`Report`]s, and the reproduction output of
//! `wazerox-fuzz repro` and of the wasmtime oracle (`benches/src/bin/oracle.rs`) print
//! them line by line so a mismatch can be diffed three ways.
//!
//! Also the canonical call sequence every runtime follows: exported functions sorted
//! by name (calls have side effects, so order matters), each called once with
//! arguments derived from one `u64` seed ([`arguments`]).

use std::fmt;

/// A Wasm value type, as far as the harness needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    I32,
    I64,
    F32,
    F64,
    V128,
    FuncRef,
    ExternRef,
    /// `exnref` (the exceptions campaign only: wasmi has no exceptions).
    ExnRef,
    /// A reference of the GC proposal's any hierarchy (`anyref`, `eqref`,
    /// `i31ref`, struct and array references; the GC campaign only).
    AnyRef,
}

/// What an any-hierarchy reference is, as far as two runtimes can agree: object
/// identities differ, an `i31`'s value does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnyValue {
    Null,
    /// An `i31ref` and its 31-bit payload (zero-extended).
    I31(u32),
    Struct,
    Array,
    /// An externref internalized by `any.convert_extern`.
    Extern,
}

/// A value, with float NaNs canonicalized: which NaN an operation produces is
/// allowed nondeterminism, so only "a NaN" is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    I32(u32),
    I64(u64),
    F32(u32),
    F64(u64),
    V128(u128),
    /// A reference; `true` when non-null (identities differ between runtimes).
    FuncRef(bool),
    ExternRef(bool),
    ExnRef(bool),
    AnyRef(AnyValue),
}

impl Value {
    pub fn f32(bits: u32) -> Value {
        Value::F32(if f32::from_bits(bits).is_nan() {
            0x7fc0_0000
        } else {
            bits
        })
    }

    pub fn f64(bits: u64) -> Value {
        Value::F64(if f64::from_bits(bits).is_nan() {
            0x7ff8_0000_0000_0000
        } else {
            bits
        })
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::I32(x) => write!(f, "i32:{x:#010x}"),
            Value::I64(x) => write!(f, "i64:{x:#018x}"),
            Value::F32(x) => write!(f, "f32:{x:#010x}"),
            Value::F64(x) => write!(f, "f64:{x:#018x}"),
            Value::V128(x) => write!(f, "v128:{x:#034x}"),
            Value::FuncRef(non_null) => write!(f, "funcref:{}", null_or_not(*non_null)),
            Value::ExternRef(non_null) => write!(f, "externref:{}", null_or_not(*non_null)),
            Value::ExnRef(non_null) => write!(f, "exnref:{}", null_or_not(*non_null)),
            Value::AnyRef(AnyValue::Null) => write!(f, "anyref:null"),
            Value::AnyRef(AnyValue::I31(x)) => write!(f, "anyref:i31:{x:#010x}"),
            Value::AnyRef(AnyValue::Struct) => write!(f, "anyref:struct"),
            Value::AnyRef(AnyValue::Array) => write!(f, "anyref:array"),
            Value::AnyRef(AnyValue::Extern) => write!(f, "anyref:extern"),
        }
    }
}

fn null_or_not(non_null: bool) -> &'static str {
    if non_null { "non-null" } else { "null" }
}

/// What one call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Values(Vec<Value>),
    /// A trap, by kind (see [`TRAP_KINDS`]); "instantiation" when instantiation
    /// itself failed.
    Trap(&'static str),
    /// An exception that left the call uncaught: the index of its tag among the
    /// module's tags (the generator exports each as [`tag_export_name`]) and its
    /// payload. `None` for a tag the module does not export.
    Exception {
        tag: Option<u32>,
        payload: Vec<Value>,
    },
}

/// The export name under which the exceptions campaign's modules export their tag
/// number `index` (wasm-smith exports no tags), so that every runtime can name the
/// tag of an uncaught exception.
pub fn tag_export_name(index: u32) -> String {
    format!("{TAG_EXPORT_PREFIX}{index}")
}

const TAG_EXPORT_PREFIX: &str = "wazerox-fuzz tag ";

/// The tag number of an export name made by [`tag_export_name`].
pub fn tag_export_index(name: &str) -> Option<u32> {
    name.strip_prefix(TAG_EXPORT_PREFIX)?.parse().ok()
}

/// Trap kinds every runtime maps its own codes to. A code outside this list maps to
/// "other", which never compares equal to a listed kind by accident.
pub const TRAP_KINDS: &[&str] = &[
    "stack",
    "memory",
    "table",
    "null-call",
    "signature",
    "int-overflow",
    "div-zero",
    "conversion",
    "unreachable",
    "null-reference",
    "out-of-fuel",
    "cast",
    "array",
    "gc-heap",
    "other",
    "host",
    "instantiation",
];

/// One call of the canonical sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub name: String,
    pub args: Vec<Value>,
    pub outcome: Outcome,
}

/// Everything compared about one run of a module.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// `None` when instantiation failed (nothing was called).
    pub calls: Option<Vec<Call>>,
    /// Contents of the exported memories, in export-name order, each preceded by
    /// its length (`u64`, little-endian) so that boundaries are part of the
    /// comparison; `None` when no memory is exported. See [`Report::add_memory`].
    pub memory: Option<Vec<u8>>,
    /// Exported globals, by name.
    pub globals: Vec<(String, Value)>,
    /// Instantiation failed because a constant expression's allocation passed the
    /// GC heap's cap (not printed: it only makes the case skipped).
    pub gc_heap_exhausted_at_instantiation: bool,
}

impl Report {
    pub fn instantiation_failed() -> Report {
        Report::default()
    }

    /// Appends the contents of the next exported memory (in export-name order).
    pub fn add_memory(&mut self, bytes: &[u8]) {
        let memory = self.memory.get_or_insert_with(Vec::new);
        memory.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        memory.extend_from_slice(bytes);
    }

    /// Whether a call overflowed the stack: stack limits legitimately differ, so such
    /// runs are not compared.
    pub fn stack_exhausted(&self) -> bool {
        self.calls
            .iter()
            .flatten()
            .any(|c| c.outcome == Outcome::Trap("stack"))
    }

    /// Whether the GC heap's cap was reached (trap kind "gc-heap", or at
    /// instantiation): caps legitimately differ, so such runs are compared only
    /// up to that call.
    pub fn gc_heap_exhausted(&self) -> bool {
        self.gc_heap_exhausted_at_instantiation
            || self
                .calls
                .iter()
                .flatten()
                .any(|c| c.outcome == Outcome::Trap("gc-heap"))
    }

    /// The calls before the first "gc-heap" trap.
    pub fn calls_before_gc_heap(&self) -> &[Call] {
        let calls = self.calls.as_deref().unwrap_or(&[]);
        let end = calls
            .iter()
            .position(|c| c.outcome == Outcome::Trap("gc-heap"))
            .unwrap_or(calls.len());
        &calls[..end]
    }

    /// The calls before the first stack overflow.
    pub fn calls_before_overflow(&self) -> &[Call] {
        let calls = self.calls.as_deref().unwrap_or(&[]);
        let end = calls
            .iter()
            .position(|c| c.outcome == Outcome::Trap("stack"))
            .unwrap_or(calls.len());
        &calls[..end]
    }

    /// The first line on which two reports differ, for a one-line mismatch message.
    pub fn first_difference(&self, other: &Report) -> Option<(String, String)> {
        let (a, b) = (self.to_string(), other.to_string());
        let mut left = a.lines();
        let mut right = b.lines();
        loop {
            match (left.next(), right.next()) {
                (None, None) => return None,
                (l, r) if l == r => continue,
                (l, r) => {
                    return Some((
                        l.unwrap_or("<end>").to_string(),
                        r.unwrap_or("<end>").to_string(),
                    ));
                }
            }
        }
    }
}

/// FNV-1a: a stable digest of a memory for the printed report (the comparison
/// itself uses the full contents).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(calls) = &self.calls else {
            return writeln!(f, "instantiation failed");
        };
        for call in calls {
            write!(f, "call {:?}(", call.name)?;
            for (i, arg) in call.args.iter().enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                write!(f, "{arg}")?;
            }
            write!(f, ") -> ")?;
            match &call.outcome {
                Outcome::Values(values) => {
                    write!(f, "[")?;
                    for (i, v) in values.iter().enumerate() {
                        if i > 0 {
                            write!(f, ", ")?;
                        }
                        write!(f, "{v}")?;
                    }
                    writeln!(f, "]")?;
                }
                Outcome::Trap(kind) => writeln!(f, "trap {kind}")?,
                Outcome::Exception { tag, payload } => {
                    match tag {
                        Some(tag) => write!(f, "exception tag {tag} [")?,
                        None => write!(f, "exception of an unexported tag [")?,
                    }
                    for (i, v) in payload.iter().enumerate() {
                        if i > 0 {
                            write!(f, ", ")?;
                        }
                        write!(f, "{v}")?;
                    }
                    writeln!(f, "]")?;
                }
            }
        }
        if let Some(memory) = &self.memory {
            let non_zero = memory.iter().filter(|b| **b != 0).count();
            writeln!(
                f,
                "memory {} bytes, {non_zero} non-zero, fnv1a {:#018x}",
                memory.len(),
                fnv1a(memory)
            )?;
        }
        for (name, value) in &self.globals {
            writeln!(f, "global {name:?} = {value}")?;
        }
        Ok(())
    }
}

/// The exported functions in canonical call order (by name), given each export's
/// name and parameter kinds, with the arguments of each call.
pub fn plan(mut funcs: Vec<(String, Vec<Kind>)>, args_seed: u64) -> Vec<(String, Vec<Value>)> {
    funcs.sort_by(|a, b| a.0.cmp(&b.0));
    funcs
        .into_iter()
        .enumerate()
        .map(|(call, (name, params))| (name, arguments(args_seed, call, &params)))
        .collect()
}

/// Arguments of call number `call`: seed 0 gives all zeros (the plainest run);
/// other seeds mix boundary values (0, ±1, MIN, MAX, ±0.0, ±∞, NaN, 2^31, …) with
/// random bits, so division, conversion and shift edge cases are reached often.
pub fn arguments(args_seed: u64, call: usize, params: &[Kind]) -> Vec<Value> {
    params
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            if args_seed == 0 {
                return zero(*kind);
            }
            let h = mix(args_seed ^ mix(((call as u64) << 32) | i as u64));
            argument(*kind, h)
        })
        .collect()
}

fn zero(kind: Kind) -> Value {
    match kind {
        Kind::I32 => Value::I32(0),
        Kind::I64 => Value::I64(0),
        Kind::F32 => Value::F32(0),
        Kind::F64 => Value::F64(0),
        Kind::V128 => Value::V128(0),
        Kind::FuncRef => Value::FuncRef(false),
        Kind::ExternRef => Value::ExternRef(false),
        Kind::ExnRef => Value::ExnRef(false),
        Kind::AnyRef => Value::AnyRef(AnyValue::Null),
    }
}

const I64_EDGES: &[u64] = &[
    0,
    1,
    u64::MAX,
    2,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    63,
    64,
];

const F32_EDGES: &[f32] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
    f32::MIN_POSITIVE,
    1e-45,
    2147483648.0,
    -2147483904.0,
    4294967296.0,
    (1u64 << 63) as f32,
    f32::MAX,
    -0.99999994,
];

const F64_EDGES: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    f64::MIN_POSITIVE,
    5e-324,
    2147483648.0,
    -2147483649.0,
    4294967296.0,
    (1u64 << 63) as f64,
    f64::MAX,
    -0.9999999999999999,
];

fn argument(kind: Kind, h: u64) -> Value {
    // Half the time a boundary value, half the time random bits.
    let edge = (h >> 60) as usize;
    let random = h & (1 << 59) != 0;
    let bits = mix(h);
    match kind {
        Kind::I32 if random => Value::I32(bits as u32),
        Kind::I32 => Value::I32(I64_EDGES[edge] as u32),
        Kind::I64 if random => Value::I64(bits),
        Kind::I64 => Value::I64(I64_EDGES[edge]),
        Kind::F32 if random => Value::F32(bits as u32),
        Kind::F32 => Value::F32(F32_EDGES[edge].to_bits()),
        Kind::F64 if random => Value::F64(bits),
        Kind::F64 => Value::F64(F64_EDGES[edge].to_bits()),
        Kind::V128 => Value::V128(((bits as u128) << 64) | mix(bits) as u128),
        Kind::FuncRef => Value::FuncRef(false),
        Kind::ExternRef => Value::ExternRef(false),
        Kind::ExnRef => Value::ExnRef(false),
        Kind::AnyRef => Value::AnyRef(AnyValue::Null),
    }
}

/// The host functions a differential module may import (wasm-smith's
/// `available_imports`), all under module "host": every runtime defines each import
/// with [`host_call`], so calls into the host — argument passing in registers and on
/// the stack, values live across the call, results coming back — are compared too.
pub const HOST_IMPORTS: &str = r#"(module
  (import "host" "nop" (func))
  (import "host" "i32" (func (param i32) (result i32)))
  (import "host" "f64" (func (param f64 f64) (result f64)))
  (import "host" "mixed" (func (param i32 i64 f32 f64) (result i64 f32)))
  (import "host" "many" (func (param i32 i64 f32 f64 i32 i64 f32 f64 i32 i64 f32 f64) (result i32 f64)))
  (import "host" "v128" (func (param v128 i32) (result v128)))
)"#;

/// What host import `name` returns when called for the `calls`-th time (counting
/// every host call of the run) with `args`: a hash of all three, spread over the
/// result kinds like [`arguments`] (boundary values half the time).
pub fn host_call(name: &str, calls: u64, args: &[Value], results: &[Kind]) -> Vec<Value> {
    let mut h = mix(calls ^ name.bytes().fold(0u64, |h, b| mix(h ^ b as u64)));
    for arg in args {
        let bits = match *arg {
            Value::I32(x) | Value::F32(x) => x as u128,
            Value::I64(x) | Value::F64(x) => x as u128,
            Value::V128(x) => x,
            Value::FuncRef(b) | Value::ExternRef(b) | Value::ExnRef(b) => b as u128,
            // Host imports take no any references; hashed for completeness.
            Value::AnyRef(AnyValue::I31(x)) => 2 + x as u128,
            Value::AnyRef(a) => (a != AnyValue::Null) as u128,
        };
        h = mix(h ^ bits as u64 ^ mix((bits >> 64) as u64));
    }
    results
        .iter()
        .enumerate()
        .map(|(i, kind)| argument(*kind, mix(h ^ i as u64)))
        .collect()
}

/// splitmix64's finalizer: a cheap, well-spread hash.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_zero_gives_zero_arguments() {
        let args = arguments(0, 3, &[Kind::I32, Kind::F64]);
        assert_eq!(args, vec![Value::I32(0), Value::F64(0)]);
    }

    #[test]
    fn arguments_reach_boundary_values() {
        let mut seen_min = false;
        for seed in 1..500 {
            if arguments(seed, 0, &[Kind::I32]) == vec![Value::I32(0x8000_0000)] {
                seen_min = true;
            }
        }
        assert!(seen_min);
    }

    #[test]
    fn report_prints_calls_memory_and_globals() {
        let report = Report {
            calls: Some(vec![Call {
                name: "f".into(),
                args: vec![Value::I32(7)],
                outcome: Outcome::Trap("div-zero"),
            }]),
            memory: Some(vec![0, 1]),
            globals: vec![("g".into(), Value::f64(f64::NAN.to_bits() | 1))],
            gc_heap_exhausted_at_instantiation: false,
        };
        let text = report.to_string();
        assert!(text.starts_with(
            "call \"f\"(i32:0x00000007) -> trap div-zero\nmemory 2 bytes, 1 non-zero"
        ));
        assert!(text.ends_with("global \"g\" = f64:0x7ff8000000000000\n"));
    }
}
