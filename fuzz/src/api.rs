//! API sequences: random sequences of embedding-API operations (stores created and
//! dropped, modules compiled, serialized and deserialized, instances created and
//! dropped, exports called under fuel, memories grown, read and written, globals and
//! tables read and written through the API) must never crash, and each operation's
//! result must be the one its documentation promises.

use crate::differential::{kind_ours, val_ours};
use crate::instantiate::{check_call_error, define_imports};
use crate::report::{Kind, arguments};
use arbitrary::{Arbitrary, Unstructured};
use wazerox::{
    Engine, ErrorKind, Extern, Func, Global, GlobalType, Memory, MemoryType, Module, Mutability,
    Ref, Store, Table, TableType, Val, ValType,
};

/// One API operation; indices pick from the live objects modulo their count.
#[derive(Debug, Clone, Arbitrary)]
pub enum Op {
    NewStore,
    DropStore(u8),
    Instantiate {
        store: u8,
        module: u8,
        fail_host_calls: bool,
    },
    /// Forgets an instance handle (its store keeps it alive, as documented).
    DropInstance(u8),
    Call {
        func: u8,
        args_seed: u64,
        fuel: u16,
    },
    /// Calls a function with a store it does not belong to: a panic naming the
    /// mistake (every accessor's rule, docs/api.md).
    CallForeign {
        func: u8,
        store: u8,
    },
    Serialize(u8),
    Deserialize(u8),
    NewMemory {
        store: u8,
        minimum: u8,
        maximum: Option<u8>,
    },
    MemoryGrow {
        memory: u8,
        delta: u8,
    },
    MemoryRead {
        memory: u8,
        offset: u32,
        len: u16,
    },
    MemoryWrite {
        memory: u8,
        offset: u32,
        len: u16,
        byte: u8,
    },
    NewGlobal {
        store: u8,
        value: u64,
        kind: u8,
        mutable: bool,
    },
    GlobalSet {
        global: u8,
        value: u64,
        kind: u8,
    },
    NewTable {
        store: u8,
        minimum: u8,
        maximum: Option<u8>,
    },
    TableGet {
        table: u8,
        index: u16,
    },
    TableSet {
        table: u8,
        index: u16,
        func: Option<u8>,
    },
    TableGrow {
        table: u8,
        delta: u8,
    },
}

/// The wasm-smith configuration of the modules a sequence uses: small, valid, with a
/// few imports and with maxima on memories and tables.
pub fn module_config() -> wasm_smith::Config {
    wasm_smith::Config {
        max_imports: 4,
        min_funcs: 3,
        max_funcs: 10,
        max_instructions: 100,
        max_memories: 1,
        max_tables: 2,
        max_memory32_bytes: 8 << 16,
        memory_max_size_required: true,
        table_max_size_required: true,
        max_table_elements: 50,
        export_everything: true,
        threads_enabled: false,
        tail_call_enabled: false,
        exceptions_enabled: false,
        gc_enabled: false,
        memory64_enabled: false,
        relaxed_simd_enabled: false,
        extended_const_enabled: false,
        custom_page_sizes_enabled: false,
        wide_arithmetic_enabled: false,
        ..wasm_smith::Config::default()
    }
}

/// An engine with fuel and a small stack, shared by every sequence of a thread.
fn engine() -> Engine {
    crate::instantiate::engine(crate::instantiate::EngineKnobs {
        stack: 1,
        unoptimized: false,
        explicit_bounds_checks: false,
        fuel: true,
        epochs: false,
        relaxed_simd_deterministic: false,
        gc: false,
    })
}

struct State {
    engine: Engine,
    modules: Vec<Module>,
    artifacts: Vec<Vec<u8>>,
    /// `None` once dropped; objects of a dropped store are skipped.
    stores: Vec<Option<Store<()>>>,
    instances: Vec<(usize, wazerox::Instance)>,
    funcs: Vec<(usize, Func)>,
    memories: Vec<(usize, Memory)>,
    globals: Vec<(usize, Global)>,
    tables: Vec<(usize, Table)>,
}

fn pick<T>(items: &[T], i: u8) -> Option<&T> {
    (!items.is_empty()).then(|| &items[i as usize % items.len()])
}

fn value_of(kind: u8, bits: u64) -> Val {
    match kind % 4 {
        0 => Val::I32(bits as i32),
        1 => Val::I64(bits as i64),
        2 => Val::F32(bits as u32),
        _ => Val::F64(bits),
    }
}

fn same_bits(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::I32(x), Val::I32(y)) => x == y,
        (Val::I64(x), Val::I64(y)) => x == y,
        (Val::F32(x), Val::F32(y)) => x == y,
        (Val::F64(x), Val::F64(y)) => x == y,
        (Val::V128(x), Val::V128(y)) => x == y,
        (Val::FuncRef(x), Val::FuncRef(y)) => x == y,
        (Val::ExternRef(x), Val::ExternRef(y)) => x == y,
        _ => false,
    }
}

impl State {
    fn store(&mut self, i: usize) -> Option<&mut Store<()>> {
        self.stores.get_mut(i).and_then(|s| s.as_mut())
    }

    fn live_store(&self, i: u8) -> Option<usize> {
        let live: Vec<usize> = (0..self.stores.len())
            .filter(|s| self.stores[*s].is_some())
            .collect();
        pick(&live, i).copied()
    }

    fn apply(&mut self, op: Op) -> Result<(), String> {
        match op {
            Op::NewStore => self.stores.push(Some(Store::new(&self.engine, ()))),
            Op::DropStore(i) => {
                if let Some(s) = self.live_store(i) {
                    self.stores[s] = None;
                }
            }
            Op::Instantiate {
                store,
                module,
                fail_host_calls,
            } => {
                let (Some(s), Some(module)) = (self.live_store(store), pick(&self.modules, module))
                else {
                    return Ok(());
                };
                let module = module.clone();
                let store = self.store(s).expect("live");
                let linker = define_imports(store, &module, fail_host_calls);
                store.set_fuel(10_000).map_err(|e| e.to_string())?;
                match linker.instantiate(&mut *store, &module) {
                    Ok(instance) => {
                        for (_, export) in instance.exports(&mut *store) {
                            match export {
                                Extern::Func(f) => self.funcs.push((s, f)),
                                Extern::Memory(m) => self.memories.push((s, m)),
                                Extern::Global(g) => self.globals.push((s, g)),
                                Extern::Table(t) => self.tables.push((s, t)),
                                Extern::SharedMemory(_) | Extern::Tag(_) => {}
                            }
                        }
                        self.instances.push((s, instance));
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::Link | ErrorKind::Instantiation) => {}
                    Err(e) => check_call_error(&e).map_err(|m| format!("instantiate: {m}"))?,
                }
            }
            Op::DropInstance(i) => {
                if !self.instances.is_empty() {
                    let i = i as usize % self.instances.len();
                    self.instances.swap_remove(i);
                }
            }
            Op::Call {
                func,
                args_seed,
                fuel,
            } => {
                let Some(&(s, func)) = pick(&self.funcs, func) else {
                    return Ok(());
                };
                let Some(store) = self.store(s) else {
                    return Ok(());
                };
                let ty = func.ty(&*store);
                let kinds: Vec<Kind> = ty.params().iter().map(|t| kind_ours(*t)).collect();
                let params: Vec<Val> = arguments(args_seed, 0, &kinds)
                    .into_iter()
                    .map(val_ours)
                    .collect();
                let mut results: Vec<Val> =
                    ty.results().iter().map(|t| Val::default_for(*t)).collect();
                store.set_fuel(fuel as u64).map_err(|e| e.to_string())?;
                if let Err(e) = func.call(&mut *store, &params, &mut results) {
                    check_call_error(&e)?;
                } else if let Some((r, t)) = results
                    .iter()
                    .zip(ty.results())
                    .find(|(r, t)| r.ty() != **t)
                {
                    return Err(format!("result {r:?} of type {t} expected"));
                }
            }
            Op::CallForeign { func, store } => {
                let (Some(&(s, func)), Some(other)) =
                    (pick(&self.funcs, func), self.live_store(store))
                else {
                    return Ok(());
                };
                if s == other {
                    return Ok(());
                }
                let store = self.store(other).expect("live");
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    func.call(&mut *store, &[], &mut [])
                }));
                let message = match &outcome {
                    Err(payload) => payload
                        .downcast_ref::<String>()
                        .cloned()
                        .unwrap_or_default(),
                    Ok(result) => format!("returned {result:?}"),
                };
                if !message.contains("used with a store it does not belong to") {
                    return Err(format!("call with a foreign store: {message}"));
                }
            }
            Op::Serialize(m) => {
                if let Some(module) = pick(&self.modules, m) {
                    self.artifacts.push(module.serialize());
                }
            }
            Op::Deserialize(a) => {
                if let Some(artifact) = pick(&self.artifacts, a) {
                    // SAFETY: the artifact was produced by `Module::serialize` of this
                    // engine in this process and not modified since.
                    let module = unsafe { Module::deserialize(&self.engine, artifact) }
                        .map_err(|e| format!("deserializing our own artifact: {e}"))?;
                    self.modules.push(module);
                }
            }
            Op::NewMemory {
                store,
                minimum,
                maximum,
            } => {
                let Some(s) = self.live_store(store) else {
                    return Ok(());
                };
                let (minimum, maximum) = (minimum as u32 % 8, maximum.map(|m| m as u32 % 16));
                let ty = MemoryType::new(minimum, maximum);
                let created = Memory::new(self.store(s).expect("live"), ty);
                match (created, maximum) {
                    (Ok(m), _) => self.memories.push((s, m)),
                    (Err(_), Some(max)) if max < minimum => {}
                    (Err(e), _) => return Err(format!("Memory::new({minimum}, {maximum:?}): {e}")),
                }
            }
            Op::MemoryGrow { memory, delta } => {
                let Some(&(s, memory)) = pick(&self.memories, memory) else {
                    return Ok(());
                };
                let Some(store) = self.store(s) else {
                    return Ok(());
                };
                let delta = delta as u64 % 8;
                let before = memory.size(&*store);
                let limit = memory.ty(&*store).maximum().unwrap_or(65536);
                match memory.grow(&mut *store, delta) {
                    Ok(old) if old == before && memory.size(&*store) == before + delta => {
                        if memory.data_size(&*store) as u64 != (before + delta) * 65536 {
                            return Err("grown memory's byte size disagrees".into());
                        }
                    }
                    Err(_) if before + delta > limit && memory.size(&*store) == before => {}
                    other => {
                        return Err(format!(
                            "grow by {delta} from {before} (max {limit}): {other:?}, now {}",
                            memory.size(&*store)
                        ));
                    }
                }
            }
            Op::MemoryRead {
                memory,
                offset,
                len,
            } => {
                let Some(&(s, memory)) = pick(&self.memories, memory) else {
                    return Ok(());
                };
                let Some(store) = self.store(s) else {
                    return Ok(());
                };
                let size = memory.data_size(&*store);
                let offset = offset as usize % (size + 1024);
                let mut buffer = vec![0; len as usize];
                let fits = offset + buffer.len() <= size;
                if memory.read(&*store, offset, &mut buffer).is_ok() != fits {
                    return Err(format!("read {len} at {offset} of {size}: fits={fits}"));
                }
                if fits && buffer[..] != memory.data(&*store)[offset..offset + len as usize] {
                    return Err("read disagrees with data()".into());
                }
            }
            Op::MemoryWrite {
                memory,
                offset,
                len,
                byte,
            } => {
                let Some(&(s, memory)) = pick(&self.memories, memory) else {
                    return Ok(());
                };
                let Some(store) = self.store(s) else {
                    return Ok(());
                };
                let size = memory.data_size(&*store);
                let offset = offset as usize % (size + 1024);
                let buffer = vec![byte; len as usize];
                let fits = offset + buffer.len() <= size;
                if memory.write(&mut *store, offset, &buffer).is_ok() != fits {
                    return Err(format!("write {len} at {offset} of {size}: fits={fits}"));
                }
                if fits && memory.data(&*store)[offset..offset + len as usize] != buffer[..] {
                    return Err("written bytes do not read back".into());
                }
            }
            Op::NewGlobal {
                store,
                value,
                kind,
                mutable,
            } => {
                let Some(s) = self.live_store(store) else {
                    return Ok(());
                };
                let value = value_of(kind, value);
                let mutability = if mutable {
                    Mutability::Var
                } else {
                    Mutability::Const
                };
                let ty = GlobalType::new(value.ty(), mutability);
                let store = self.store(s).expect("live");
                let global = Global::new(&mut *store, ty, value.clone())
                    .map_err(|e| format!("Global::new: {e}"))?;
                if !same_bits(&global.get(&mut *store), &value) {
                    return Err("a new global does not hold its initial value".into());
                }
                self.globals.push((s, global));
            }
            Op::GlobalSet {
                global,
                value,
                kind,
            } => {
                let Some(&(s, global)) = pick(&self.globals, global) else {
                    return Ok(());
                };
                let Some(store) = self.store(s) else {
                    return Ok(());
                };
                let ty = global.ty(&*store);
                let before = global.get(&mut *store);
                let value = match ty.content() {
                    // References: set null, or a type mismatch.
                    ValType::FUNCREF if kind.is_multiple_of(2) => Val::FuncRef(None),
                    ValType::EXTERNREF if kind.is_multiple_of(2) => Val::ExternRef(None),
                    _ => value_of(kind, value),
                };
                let allowed = ty.mutability() == Mutability::Var && value.ty() == ty.content();
                match global.set(&mut *store, value.clone()) {
                    Ok(()) if allowed => {
                        if !same_bits(&global.get(&mut *store), &value) {
                            return Err("global does not hold the value set".into());
                        }
                    }
                    Err(e) if !allowed && e.kind() == ErrorKind::Usage => {
                        if !same_bits(&global.get(&mut *store), &before) {
                            return Err("a refused global.set changed the global".into());
                        }
                    }
                    other => {
                        return Err(format!(
                            "set {value:?} on {:?} {:?}: {other:?}",
                            ty.mutability(),
                            ty.content()
                        ));
                    }
                }
            }
            Op::NewTable {
                store,
                minimum,
                maximum,
            } => {
                let Some(s) = self.live_store(store) else {
                    return Ok(());
                };
                let (minimum, maximum) = (minimum as u32 % 32, maximum.map(|m| m as u32 % 64));
                let ty = TableType::new(ValType::FUNCREF, minimum, maximum);
                match Table::new(self.store(s).expect("live"), ty, Ref::Func(None)) {
                    Ok(t) => self.tables.push((s, t)),
                    Err(_) if maximum.is_some_and(|m| m < minimum) => {}
                    Err(e) => return Err(format!("Table::new({minimum}, {maximum:?}): {e}")),
                }
            }
            Op::TableGet { table, index } => {
                let Some(&(s, table)) = pick(&self.tables, table) else {
                    return Ok(());
                };
                let Some(store) = self.store(s) else {
                    return Ok(());
                };
                let size = table.size(&*store);
                if table.get(&mut *store, index as u64).is_some() != ((index as u64) < size) {
                    return Err(format!("table.get {index} of {size}"));
                }
            }
            Op::TableSet { table, index, func } => {
                let Some(&(s, table)) = pick(&self.tables, table) else {
                    return Ok(());
                };
                // Only functions of the table's own store.
                let same_store: Vec<Func> = self
                    .funcs
                    .iter()
                    .filter(|(fs, _)| *fs == s)
                    .map(|(_, f)| *f)
                    .collect();
                let Some(store) = self.store(s) else {
                    return Ok(());
                };
                let element = table.ty(&*store).element();
                let value = match element {
                    ValType::FUNCREF => Ref::Func(func.and_then(|f| pick(&same_store, f).copied())),
                    _ => Ref::Extern(None),
                };
                let non_null = matches!(value, Ref::Func(Some(_)));
                let size = table.size(&*store);
                let fits = (index as u64) < size;
                if table.set(&mut *store, index as u64, value).is_ok() != fits {
                    return Err(format!("table.set {index} of {size}"));
                }
                if fits {
                    let now = table.get(&mut *store, index as u64);
                    let now_non_null = matches!(now, Some(Ref::Func(Some(_))));
                    if now_non_null != non_null {
                        return Err(format!("table element {index} reads back as {now:?}"));
                    }
                }
            }
            Op::TableGrow { table, delta } => {
                let Some(&(s, table)) = pick(&self.tables, table) else {
                    return Ok(());
                };
                let Some(store) = self.store(s) else {
                    return Ok(());
                };
                let before = table.size(&*store);
                let init = match table.ty(&*store).element() {
                    ValType::FUNCREF => Ref::Func(None),
                    _ => Ref::Extern(None),
                };
                let limit = table.ty(&*store).maximum().unwrap_or(u32::MAX as u64);
                let delta = delta as u64 % 16;
                match table.grow(&mut *store, delta, init) {
                    Ok(old) if old == before && table.size(&*store) == before + delta => {}
                    Err(_) if before + delta > limit && table.size(&*store) == before => {}
                    other => {
                        return Err(format!(
                            "table grow by {delta} from {before} (max {limit}): {other:?}"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Runs one sequence from fuzzer bytes: up to three modules, then up to 64 operations.
/// Returns how many operations ran.
pub fn check(data: &[u8]) -> Result<usize, String> {
    let mut u = Unstructured::new(data);
    let engine = engine();
    let mut state = State {
        engine: engine.clone(),
        modules: Vec::new(),
        artifacts: Vec::new(),
        stores: vec![Some(Store::new(&engine, ()))],
        instances: Vec::new(),
        funcs: Vec::new(),
        memories: Vec::new(),
        globals: Vec::new(),
        tables: Vec::new(),
    };
    let modules = u.int_in_range(1..=3u8).unwrap_or(1);
    for _ in 0..modules {
        let Ok(mut module) = wasm_smith::Module::new(module_config(), &mut u) else {
            break;
        };
        if module.ensure_termination(100).is_err() {
            continue;
        }
        let wasm = module.to_bytes();
        let module = Module::new(&engine, &wasm).map_err(|e| format!("valid module: {e}"))?;
        state.modules.push(module);
    }
    // Start with an instance of every module, so calls and export handles are there
    // from the first operation.
    for module in 0..state.modules.len() {
        let op = Op::Instantiate {
            store: 0,
            module: module as u8,
            fail_host_calls: false,
        };
        state
            .apply(op)
            .map_err(|e| format!("initial instantiation: {e}"))?;
    }
    let mut ops = 0;
    while ops < 64 && !u.is_empty() {
        let Ok(op) = u.arbitrary::<Op>() else { break };
        let description = format!("{op:?}");
        state
            .apply(op)
            .map_err(|e| format!("operation {ops} ({description}): {e}"))?;
        ops += 1;
    }
    if std::env::var_os("WAZEROX_FUZZ_DEBUG").is_some() {
        eprintln!(
            "{} modules, {ops} operations, {} stores, {} instances, {} funcs",
            state.modules.len(),
            state.stores.len(),
            state.instances.len(),
            state.funcs.len()
        );
    }
    Ok(ops)
}
