//! Executes the directives of one wast script.

use crate::WastReport;
use crate::values::{arg_to_val, describe, matches};
use std::collections::HashMap;
use wast::lexer::Lexer;
use wast::parser::{self, ParseBuffer};
use wast::token::{Id, Span};
use wast::{QuoteWat, Wast, WastDirective, WastExecute, WastInvoke, Wat};
use wazerox::{
    Config, Engine, ErrorKind, Func, Global, GlobalType, Instance, Linker, Memory, MemoryType,
    Module, Mutability, Ref, SharedMemory, Store, Table, TableType, TrapCode, Val, ValType,
};

/// The result of running one directive.
enum Outcome {
    Pass,
    Fail(String),
    Unsupported(String),
}

struct Runner<'a> {
    name: &'a str,
    text: &'a str,
    engine: Engine,
    store: Store<()>,
    linker: Linker<()>,
    current: Option<Instance>,
    instances: HashMap<String, Instance>,
    definitions: HashMap<String, Module>,
    report: WastReport,
}

/// Runs every directive of the script `contents` (named `name` in messages) with
/// the feature set its suite assumes (see [`config_for`]).
pub fn run_wast(name: &str, contents: &str) -> WastReport {
    run_wast_with(name, contents, &config_for(name))
}

/// The configuration a testsuite file assumes, judged by its path. Each suite was
/// written against the spec of its time and tests that spec's rules, including
/// what it rejects: WebAssembly 1.0/2.0 and the 2.0-era proposals (`threads`,
/// `simd`) find a second memory invalid and a memory index in a memory instruction
/// malformed, so they run without the 3.0 memory features wazerox enables by
/// default; `proposals/threads` also predates reference types (multiple tables are
/// invalid there), and `proposals/memory64` predates multi-memory.
pub fn config_for(name: &str) -> Config {
    let mut config = Config::new();
    let wasm2_era = [
        "wasm-v1/",
        "wasm-v2/",
        "proposals/threads/",
        "proposals/simd/",
    ];
    if wasm2_era.iter().any(|suite| name.contains(suite)) {
        config
            .wasm_multi_memory(false)
            .wasm_memory64(false)
            .wasm_custom_page_sizes(false);
    }
    if name.contains("proposals/threads/") {
        config.wasm_reference_types(false);
    }
    if name.contains("proposals/memory64/") {
        config.wasm_multi_memory(false);
    }
    // Taken from wasmtime's multi-memory tests: SIMD accesses to a second memory.
    if name.ends_with("/simd_memory-multi.wast") {
        config.wasm_multi_memory(true);
    }
    // The legacy exception-handling suite (from the testsuite repository's
    // `legacy/exceptions`) uses the legacy encoding; some files also use exnref.
    if name.contains("legacy-exceptions/") || name.contains("legacy/exceptions/") {
        config.wasm_legacy_exceptions(true);
    }
    // Exception tests use tail calls, typed function references in tag and block
    // types, and recursion groups for tag type identity.
    if name.contains("proposals/exceptions/") || name.contains("legacy-exceptions/") {
        config.wasm_tail_call(true);
        config.wasm_gc(true);
    }
    // WebAssembly 3.0 includes typed function references and GC, as does the GC
    // proposal's own suite (their GC parts are unsupported so far: counted failed).
    if ["wasm-v3/", "wasm-latest/", "proposals/gc/"]
        .iter()
        .any(|suite| name.contains(suite))
    {
        config.wasm_gc(true);
    }
    // The typed function references proposal, as its suite assumes it: written
    // before multi-memory and memory64 (a memory index byte must be zero, a table
    // limit must fit 32 bits).
    if name.contains("proposals/function-references/") {
        config
            .wasm_function_references(true)
            .wasm_multi_memory(false)
            .wasm_memory64(false)
            .wasm_custom_page_sizes(false);
    }
    config
}

/// Like [`run_wast`], with an explicit configuration.
pub fn run_wast_with(name: &str, contents: &str, config: &Config) -> WastReport {
    // Legacy exception handling's folded `try` forms, which the `wast` crate no
    // longer parses, become the flat forms it does (same binary).
    let unfolded = crate::legacy_syntax::unfold_legacy_try(contents);
    let contents = unfolded.as_deref().unwrap_or(contents);
    let mut lexer = Lexer::new(contents);
    lexer.allow_confusing_unicode(true);
    let mut report = WastReport::default();
    let buffer = match ParseBuffer::new_with_lexer(lexer) {
        Ok(b) => b,
        Err(e) => {
            report.failed = 1;
            report.failures.push(format!("{name}: cannot lex: {e}"));
            return report;
        }
    };
    let wast = match parser::parse::<Wast>(&buffer) {
        Ok(w) => w,
        Err(e) => {
            report.failed = 1;
            report.failures.push(format!("{name}: cannot parse: {e}"));
            return report;
        }
    };
    let engine = match Engine::new(config) {
        Ok(e) => e,
        Err(e) => {
            report.failed = 1;
            report.failures.push(format!("{name}: engine: {e}"));
            return report;
        }
    };
    let mut runner = Runner {
        name,
        text: contents,
        store: Store::new(&engine, ()),
        linker: Linker::new(&engine),
        engine,
        current: None,
        instances: HashMap::new(),
        definitions: HashMap::new(),
        report,
    };
    runner.define_spectest();
    for directive in wast.directives {
        let span = directive.span();
        let outcome = runner.run(directive);
        runner.record(span, outcome);
    }
    runner.report
}

impl Runner<'_> {
    fn record(&mut self, span: Span, outcome: Outcome) {
        let (line, col) = span.linecol_in(self.text);
        let location = format!("{}:{}:{}", self.name, line + 1, col + 1);
        match outcome {
            Outcome::Pass => self.report.passed += 1,
            Outcome::Fail(message) => {
                self.report.failed += 1;
                self.report.failures.push(format!("{location}: {message}"));
            }
            Outcome::Unsupported(message) => {
                self.report.failed += 1;
                self.report.unsupported += 1;
                self.report
                    .failures
                    .push(format!("{location}: unsupported: {message}"));
            }
        }
    }

    /// The standard `spectest` module the testsuite imports from.
    fn define_spectest(&mut self) {
        let store = &mut self.store;
        let linker = &mut self.linker;
        let print = |linker: &mut Linker<()>, name: &str, params: &[ValType]| {
            linker
                .func_new(
                    "spectest",
                    name,
                    wazerox::FuncType::new(params.iter().copied(), []),
                    |_, _, _| Ok(()),
                )
                .expect("define spectest function");
        };
        print(linker, "print", &[]);
        print(linker, "print_i32", &[ValType::I32]);
        print(linker, "print_i64", &[ValType::I64]);
        print(linker, "print_f32", &[ValType::F32]);
        print(linker, "print_f64", &[ValType::F64]);
        print(linker, "print_i32_f32", &[ValType::I32, ValType::F32]);
        print(linker, "print_f64_f64", &[ValType::F64, ValType::F64]);
        let globals = [
            ("global_i32", Val::I32(666)),
            ("global_i64", Val::I64(666)),
            ("global_f32", Val::F32(666.6f32.to_bits())),
            ("global_f64", Val::F64(666.6f64.to_bits())),
        ];
        for (name, value) in globals {
            let global = Global::new(
                &mut *store,
                GlobalType::new(value.ty(), Mutability::Const),
                value,
            )
            .expect("spectest global");
            linker
                .define(&mut *store, "spectest", name, global)
                .expect("define");
        }
        let table = Table::new(
            &mut *store,
            TableType::new(ValType::FUNCREF, 10, Some(20)),
            Ref::Func(None),
        )
        .expect("spectest table");
        linker
            .define(&mut *store, "spectest", "table", table)
            .expect("define");
        let memory =
            Memory::new(&mut *store, MemoryType::new(1, Some(2))).expect("spectest memory");
        linker
            .define(&mut *store, "spectest", "memory", memory)
            .expect("define");
        let shared = SharedMemory::new(&self.engine, MemoryType::shared(1, 2))
            .expect("spectest shared memory");
        linker
            .define(&mut *store, "spectest", "shared_memory", shared)
            .expect("define");
    }

    fn instance(&self, id: Option<Id<'_>>) -> Result<Instance, String> {
        match id {
            Some(id) => self
                .instances
                .get(id.name())
                .copied()
                .ok_or_else(|| format!("unknown module ${}", id.name())),
            None => self
                .current
                .ok_or_else(|| "no module instantiated yet".to_string()),
        }
    }

    fn compile(&self, module: &mut QuoteWat<'_>) -> Result<Module, String> {
        let bytes = module
            .encode()
            .map_err(|e| format!("cannot encode module: {e}"))?;
        Module::new(&self.engine, bytes).map_err(|e| format!("module rejected: {e}"))
    }

    fn instantiate(&mut self, module: &Module) -> Result<Instance, wazerox::Error> {
        self.linker.instantiate(&mut self.store, module)
    }

    fn define_instance(&mut self, id: Option<Id<'_>>, instance: Instance) {
        self.current = Some(instance);
        if let Some(id) = id {
            self.instances.insert(id.name().to_string(), instance);
        }
    }

    fn invoke(
        &mut self,
        invoke: &WastInvoke<'_>,
    ) -> Result<Result<Vec<Val>, wazerox::Error>, String> {
        let instance = self.instance(invoke.module)?;
        let func: Func = instance
            .get_func(&mut self.store, invoke.name)
            .ok_or_else(|| format!("no exported function `{}`", invoke.name))?;
        let mut params = Vec::with_capacity(invoke.args.len());
        for arg in &invoke.args {
            params.push(arg_to_val(&mut self.store, arg)?);
        }
        let ty = func.ty(&self.store);
        let mut results: Vec<Val> = ty.results().iter().map(|t| Val::default_for(*t)).collect();
        Ok(func
            .call(&mut self.store, &params, &mut results)
            .map(|()| results))
    }

    /// Runs an `assert_return`/`assert_trap` subject: an invocation, a `get`, or a
    /// module to instantiate.
    fn execute(
        &mut self,
        exec: WastExecute<'_>,
    ) -> Result<Result<Vec<Val>, wazerox::Error>, String> {
        match exec {
            WastExecute::Invoke(invoke) => self.invoke(&invoke),
            WastExecute::Get { module, global, .. } => {
                let instance = self.instance(module)?;
                let global = instance
                    .get_global(&mut self.store, global)
                    .ok_or_else(|| format!("no exported global `{global}`"))?;
                Ok(Ok(vec![global.get(&mut self.store)]))
            }
            WastExecute::Wat(mut wat) => {
                let module = self.compile(&mut QuoteWat::Wat(std::mem::replace(
                    &mut wat,
                    Wat::Module(wast::core::Module {
                        span: Span::from_offset(0),
                        id: None,
                        name: None,
                        kind: wast::core::ModuleKind::Binary(Vec::new()),
                    }),
                )))?;
                Ok(self.instantiate(&module).map(|_| Vec::new()))
            }
        }
    }

    /// `assert_invalid` / `assert_malformed`: the module must be rejected with
    /// `stage`. Text that the wast crate cannot even encode counts as rejected: the
    /// text format could only express the bad module that way.
    fn assert_rejected(
        &self,
        module: &mut QuoteWat<'_>,
        message: &str,
        stage: ErrorKind,
        what: &str,
    ) -> Outcome {
        let Ok(bytes) = module.encode() else {
            return Outcome::Pass;
        };
        match Module::new(&self.engine, bytes) {
            Err(e) if e.kind() == stage => Outcome::Pass,
            Ok(_) => Outcome::Fail(format!("expected {what} module (`{message}`), it compiled")),
            Err(e) => Outcome::Fail(format!(
                "expected {what} module (`{message}`), got {:?}: {e}",
                e.kind()
            )),
        }
    }

    fn run(&mut self, directive: WastDirective<'_>) -> Outcome {
        match self.run_directive(directive) {
            Ok(outcome) => outcome,
            Err(message) if message.starts_with("unsupported: ") => {
                Outcome::Unsupported(message["unsupported: ".len()..].to_string())
            }
            Err(message) => Outcome::Fail(message),
        }
    }

    fn run_directive(&mut self, directive: WastDirective<'_>) -> Result<Outcome, String> {
        Ok(match directive {
            WastDirective::Module(mut module) => {
                let id = module.name();
                let compiled = self.compile(&mut module)?;
                let instance = self
                    .instantiate(&compiled)
                    .map_err(|e| format!("instantiation failed: {e}"))?;
                self.define_instance(id, instance);
                Outcome::Pass
            }
            WastDirective::ModuleDefinition(mut module) => {
                let id = module.name();
                let compiled = self.compile(&mut module)?;
                if let Some(id) = id {
                    self.definitions.insert(id.name().to_string(), compiled);
                }
                Outcome::Pass
            }
            WastDirective::ModuleInstance {
                instance, module, ..
            } => {
                let name = module
                    .ok_or("module instance without a module name")?
                    .name();
                let compiled = self
                    .definitions
                    .get(name)
                    .cloned()
                    .ok_or_else(|| format!("unknown module definition ${name}"))?;
                let created = self
                    .instantiate(&compiled)
                    .map_err(|e| format!("instantiation failed: {e}"))?;
                self.define_instance(instance, created);
                Outcome::Pass
            }
            WastDirective::Register { name, module, .. } => {
                let instance = self.instance(module)?;
                self.linker
                    .instance(&mut self.store, name, instance)
                    .map_err(|e| format!("register failed: {e}"))?;
                Outcome::Pass
            }
            WastDirective::Invoke(invoke) => match self.invoke(&invoke)? {
                Ok(_) => Outcome::Pass,
                Err(e) => Outcome::Fail(format!("invoke `{}` failed: {e}", invoke.name)),
            },
            WastDirective::AssertReturn { exec, results, .. } => {
                let actual = match self.execute(exec)? {
                    Ok(values) => values,
                    Err(e) => return Ok(Outcome::Fail(format!("expected a return, got: {e}"))),
                };
                if actual.len() != results.len() {
                    return Ok(Outcome::Fail(format!(
                        "expected {} results, got {}",
                        results.len(),
                        actual.len()
                    )));
                }
                for (value, expected) in actual.iter().zip(&results) {
                    if !matches(&self.store, value, expected)? {
                        return Ok(Outcome::Fail(format!(
                            "result {} does not match {expected:?}",
                            describe(value)
                        )));
                    }
                }
                Outcome::Pass
            }
            WastDirective::AssertTrap { exec, message, .. } => match self.execute(exec)? {
                Ok(values) => Outcome::Fail(format!(
                    "expected trap `{message}`, got {:?}",
                    values.iter().map(describe).collect::<Vec<_>>()
                )),
                Err(e) => check_trap(message, &e),
            },
            WastDirective::AssertExhaustion { call, message, .. } => match self.invoke(&call)? {
                Err(e) => check_trap(message, &e),
                Ok(_) => Outcome::Fail(format!("expected `{message}`, returned normally")),
            },
            WastDirective::AssertInvalid {
                mut module,
                message,
                ..
            } => self.assert_rejected(&mut module, message, ErrorKind::Validation, "invalid"),
            WastDirective::AssertMalformed {
                mut module,
                message,
                ..
            } => self.assert_rejected(&mut module, message, ErrorKind::Decode, "malformed"),
            WastDirective::AssertUnlinkable {
                module, message, ..
            } => {
                let compiled = self.compile(&mut QuoteWat::Wat(module))?;
                match self.instantiate(&compiled) {
                    Err(e) if e.kind() == ErrorKind::Link => Outcome::Pass,
                    Err(e) => Outcome::Fail(format!(
                        "expected unlinkable (`{message}`), got {:?}: {e}",
                        e.kind()
                    )),
                    Ok(_) => Outcome::Fail(format!(
                        "expected unlinkable (`{message}`), it instantiated"
                    )),
                }
            }
            WastDirective::AssertInvalidCustom { .. }
            | WastDirective::AssertMalformedCustom { .. } => {
                return Err("unsupported: custom-section assertions (annotations proposal)".into());
            }
            WastDirective::AssertException { exec, .. } => match self.execute(exec)? {
                Err(e) if e.kind() == ErrorKind::Exception => Outcome::Pass,
                Err(e) => Outcome::Fail(format!("expected an exception, got error: {e}")),
                Ok(values) => Outcome::Fail(format!(
                    "expected an exception, got {:?}",
                    values.iter().map(describe).collect::<Vec<_>>()
                )),
            },
            WastDirective::AssertSuspension { .. } => {
                return Err("unsupported: assert_suspension (stack switching)".into());
            }
            WastDirective::Thread(_) | WastDirective::Wait { .. } => {
                return Err("unsupported: wast threads".into());
            }
        })
    }
}

/// The trap codes that mean what a spec assertion's message says. The spec names
/// traps in its own words ("undefined element" is a `call_indirect` index past the
/// table's end, "uninitialized element" a null entry); an implementation's message
/// may extend the expected one, so the spec's text is matched as a prefix.
pub fn trap_codes_for(message: &str) -> Option<&'static [TrapCode]> {
    const TABLE: &[(&str, &[TrapCode])] = &[
        (
            "out of bounds memory access",
            &[TrapCode::MemoryOutOfBounds],
        ),
        ("out of bounds table access", &[TrapCode::TableOutOfBounds]),
        ("undefined element", &[TrapCode::TableOutOfBounds]),
        ("uninitialized element", &[TrapCode::IndirectCallToNull]),
        ("indirect call type mismatch", &[TrapCode::BadSignature]),
        ("integer divide by zero", &[TrapCode::IntegerDivisionByZero]),
        ("integer overflow", &[TrapCode::IntegerOverflow]),
        (
            "invalid conversion to integer",
            &[TrapCode::BadConversionToInteger],
        ),
        ("unreachable", &[TrapCode::UnreachableCodeReached]),
        ("call stack exhausted", &[TrapCode::StackOverflow]),
        ("unaligned atomic", &[TrapCode::HeapMisaligned]),
        (
            "expected shared memory",
            &[TrapCode::AtomicWaitNonSharedMemory],
        ),
        (
            "null function reference",
            &[TrapCode::IndirectCallToNull, TrapCode::NullReference],
        ),
        ("null reference", &[TrapCode::NullReference]),
        ("null i31 reference", &[TrapCode::NullReference]),
        ("null structure reference", &[TrapCode::NullReference]),
        ("null array reference", &[TrapCode::NullReference]),
        ("cast failure", &[TrapCode::CastFailure]),
        ("out of bounds array access", &[TrapCode::ArrayOutOfBounds]),
    ];
    TABLE
        .iter()
        .find(|(prefix, _)| message.starts_with(prefix))
        .map(|(_, codes)| *codes)
}

/// An `assert_trap`/`assert_exhaustion` outcome: the error must be a trap whose
/// code is one the expected message names; any other trap is a failure.
fn check_trap(message: &str, error: &wazerox::Error) -> Outcome {
    let Some(expected) = trap_codes_for(message) else {
        return Outcome::Fail(format!(
            "expected trap `{message}`, a message the runner does not know (got: {error})"
        ));
    };
    match error.as_trap() {
        Some(trap) if expected.contains(&trap.code()) => Outcome::Pass,
        Some(trap) => Outcome::Fail(format!(
            "expected trap `{message}`, got trap {:?} ({error})",
            trap.code()
        )),
        None => Outcome::Fail(format!("expected trap `{message}`, got error: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_messages_name_trap_codes() {
        assert_eq!(
            trap_codes_for("undefined element"),
            Some(&[TrapCode::TableOutOfBounds][..])
        );
        assert_eq!(
            trap_codes_for("uninitialized element 2"),
            Some(&[TrapCode::IndirectCallToNull][..])
        );
        assert_eq!(trap_codes_for("something else"), None);
    }

    #[test]
    fn a_trap_of_the_wrong_kind_fails_the_assertion() {
        let wast = r#"
            (module
              (func (export "div") (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0)))
              (func $loop (export "unreachable") unreachable))
            (assert_trap (invoke "div" (i32.const 0)) "integer divide by zero")
            (assert_trap (invoke "div" (i32.const 0)) "integer overflow")
            (assert_trap (invoke "unreachable") "undefined element")
            (assert_exhaustion (invoke "unreachable") "call stack exhausted")
        "#;
        let report = run_wast("kinds.wast", wast);
        assert_eq!(
            report.passed, 2,
            "the module and the right trap: {report:?}"
        );
        assert_eq!(report.failed, 3, "{:?}", report.failures);
        assert!(
            report.failures[0]
                .contains("expected trap `integer overflow`, got trap IntegerDivisionByZero")
        );
        assert!(
            report.failures[2]
                .contains("expected trap `call stack exhausted`, got trap UnreachableCodeReached")
        );
    }
}
