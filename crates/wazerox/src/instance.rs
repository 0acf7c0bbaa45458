//! `Instance`: instantiation (import matching, segment initialisation, start
//! function) and export lookup.

use crate::error::{Error, ErrorKind, GuestText};
use crate::externals::{Extern, Global, Memory, SharedMemory, Table};
use crate::func::{Func, TypedFunc, WasmParams, WasmResults};
use crate::module::Module;
use crate::store::{AsContextMut, InstanceData, StoreInner, StoreOpaque};
use wazerox_environ::{ExportKind, FuncIndex, GlobalIndex, ImportKind, MemoryIndex, TableIndex};
use wazerox_runtime::instance::{Growth, Imports, Instance as RuntimeInstance, InstantiationError};
use wazerox_runtime::instance_pool::PoolLimitError;

/// An instantiated module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Instance {
    pub(crate) store: u64,
    pub(crate) index: usize,
}

/// Whether limits `(min, max)` of an actual object satisfy the declared import.
fn limits_match(actual_min: u64, actual_max: Option<u64>, min: u64, max: Option<u64>) -> bool {
    actual_min >= min
        && match (max, actual_max) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(m), Some(a)) => a <= m,
        }
}

fn resolve_imports(
    store: &mut StoreOpaque,
    module: &Module,
    imports: &[Extern],
) -> Result<Imports, Error> {
    let info = module.info();
    if imports.len() != info.imports.len() {
        return Err(Error::link(format!(
            "module expects {} imports, {} were given",
            info.imports.len(),
            imports.len()
        )));
    }
    let mut resolved = Imports::default();
    for (import, item) in info.imports.iter().zip(imports) {
        if let Some(id) = item.store_id() {
            store.check(id)?;
        }
        let name = format!("{}::{}", GuestText(&import.module), GuestText(&import.name));
        let mismatch =
            |what: &str| Error::link(format!("incompatible import type for `{name}`: {what}"));
        match (&import.kind, item) {
            (ImportKind::Function(ty), Extern::Func(f)) => {
                let expected = module.0.type_ids[ty.index()];
                if !store.engine().is_subtype(f.type_id(store), expected) {
                    return Err(mismatch(&format!(
                        "expected {}, found {}",
                        info.types[ty.index()],
                        store.funcs[f.index].ty
                    )));
                }
                let func_ref = store.funcs[f.index].func_ref;
                // A lazily compiled export is compiled now: the importing instance's
                // copy of the reference would otherwise keep the stub, a detour on
                // every call (the stub never updates copies).
                // SAFETY: function references of this store are live.
                unsafe { wazerox_runtime::lazy::resolve(func_ref) }
                    .map_err(|e| Error::link(format!("`{name}`: lazy compilation failed: {e}")))?;
                // SAFETY: as above.
                resolved.functions.push(unsafe { *func_ref });
            }
            (ImportKind::Table(ty), Extern::Table(t)) => {
                let actual = t.ty_in(store);
                if actual.element() != ty.element
                    || actual.inner.table64 != ty.table64
                    || !limits_match(actual.minimum(), actual.maximum(), ty.minimum, ty.maximum)
                {
                    return Err(mismatch(&format!(
                        "expected a table of {}, found one of {}, or limits differ",
                        ty.element,
                        actual.element()
                    )));
                }
                resolved.tables.push(t.ptr(store));
            }
            (ImportKind::Memory(ty), Extern::Memory(m)) => {
                let actual = m.ty_in(store);
                if ty.shared {
                    return Err(mismatch(
                        "a shared memory is expected, found an unshared one",
                    ));
                }
                if actual.inner.memory64 != ty.memory64
                    || actual.inner.page_size_log2 != ty.page_size_log2
                    || !limits_match(actual.minimum(), actual.maximum(), ty.minimum, ty.maximum)
                {
                    return Err(mismatch("memory index type, page size or limits"));
                }
                resolved.memories.push(m.ptr(store));
            }
            (ImportKind::Memory(ty), Extern::SharedMemory(m)) => {
                let actual = m.ty();
                if !ty.shared {
                    return Err(mismatch(
                        "an unshared memory is expected, found a shared one",
                    ));
                }
                if actual.inner.memory64 != ty.memory64
                    || actual.inner.page_size_log2 != ty.page_size_log2
                    || !limits_match(actual.minimum(), actual.maximum(), ty.minimum, ty.maximum)
                {
                    return Err(mismatch("memory index type, page size or limits"));
                }
                // The store keeps the memory alive as long as instances use it.
                store.keep_shared_memory(m);
                resolved.memories.push(m.ptr());
            }
            (ImportKind::Global(ty), Extern::Global(g)) => {
                let data = g.data(store);
                // A mutable global is read and written through the import, so its
                // type must be the same; an immutable one only read: a subtype will do.
                let type_matches = if ty.mutable {
                    data.ty == *ty
                } else {
                    !data.ty.mutable && store.engine().val_subtype(data.ty.content, ty.content)
                };
                if !type_matches {
                    return Err(mismatch(&format!(
                        "expected {}{}, found {}{}",
                        if ty.mutable { "mut " } else { "" },
                        ty.content,
                        if data.ty.mutable { "mut " } else { "" },
                        data.ty.content
                    )));
                }
                resolved.globals.push(data.definition);
            }
            (ImportKind::Tag(ty), Extern::Tag(t)) => {
                if t.type_id(store) != module.0.type_ids[ty.index()] {
                    return Err(mismatch("tag type"));
                }
                resolved.tags.push(t.ptr(store));
            }
            _ => return Err(mismatch("wrong kind of item")),
        }
    }
    Ok(resolved)
}

impl Instance {
    /// Instantiates `module` with `imports` given in the module's import order.
    pub fn new<T>(
        mut store: impl AsContextMut<Data = T>,
        module: &Module,
        imports: &[Extern],
    ) -> Result<Instance, Error> {
        let ctx = store.as_context_mut();
        Instance::new_in(ctx.0, module, imports)
    }

    pub(crate) fn new_in<T>(
        store: &mut StoreInner<T>,
        module: &Module,
        imports: &[Extern],
    ) -> Result<Instance, Error> {
        let opaque = &mut store.opaque;
        crate::async_call::refuse_sync_call(opaque)?;
        if !opaque.engine.same(module.engine()) {
            return Err(Error::usage("module compiled by another engine"));
        }
        let imports = resolve_imports(opaque, module, imports)?;
        let info = module.info();
        let defined_memories = &info.memories[info.num_imported_memories as usize..];
        let defined_tables = &info.tables[info.num_imported_tables as usize..];
        store.check_counts(1, defined_memories.len(), defined_tables.len())?;
        if store.limiter.is_some() {
            for ty in defined_memories {
                let growth = Growth::Memory {
                    current: 0,
                    desired: ty.minimum.saturating_mul(ty.page_size()) as usize,
                    maximum: ty
                        .maximum
                        .map(|m| m.saturating_mul(ty.page_size()) as usize),
                };
                if !store.growing(growth)? {
                    return Err(Error::with_kind(
                        ErrorKind::Instantiation,
                        format!(
                            "memory of {} pages refused by the store's resource limiter",
                            ty.minimum
                        ),
                    ));
                }
            }
            for table in defined_tables {
                let growth = Growth::Table {
                    current: 0,
                    desired: table.ty.minimum as usize,
                    maximum: table.ty.maximum.map(|m| m as usize),
                };
                if !store.growing(growth)? {
                    return Err(Error::with_kind(
                        ErrorKind::Instantiation,
                        format!(
                            "table of {} elements refused by the store's resource limiter",
                            table.ty.minimum
                        ),
                    ));
                }
            }
        }
        let opaque = &mut store.opaque;
        let mut runtime = RuntimeInstance::new(
            module.info().clone(),
            opaque.engine.type_hierarchy(),
            module.0.type_ids.clone(),
            &module.function_code(),
            imports,
            &*opaque.vm_store_context,
            &opaque.engine.config().memory_style(),
            module.memory_images(),
            module.table_images(),
            opaque.engine.0.instance_pool.as_ref(),
        )
        .map_err(|e| {
            let kind = match e {
                InstantiationError::Pool(PoolLimitError::Exhausted { .. }) => {
                    ErrorKind::PoolExhausted
                }
                _ => ErrorKind::Instantiation,
            };
            Error::with_kind(kind, e.to_string())
        })?;
        runtime.set_growth_hook(crate::limits::growth_hook::<T>);
        if let Some(lazy) = module.lazy_functions() {
            runtime
                .set_lazy_functions(lazy)
                .map_err(|e| Error::with_kind(ErrorKind::Instantiation, e))?;
        }
        for index in 0..info.memories.len() as u32 {
            // SAFETY: this thread holds the store (`&mut`), none of its compiled code
            // executes now (at most suspended in a host call), and the memory lives
            // as long as the store's instances. Faults of the store's code in this
            // memory's guard region are now Wasm traps.
            unsafe {
                let memory = runtime.memory_ptr(MemoryIndex(index));
                opaque
                    .vm_store_context
                    .add_memory_reservation((*memory).reservation());
            }
        }
        opaque.memory_count += defined_memories.len();
        opaque.table_count += defined_tables.len();
        for index in info.num_imported_memories..info.memories.len() as u32 {
            if let Some(memory) = runtime.defined_shared_memory(MemoryIndex(index)) {
                opaque.keep_shared_memory(&SharedMemory(memory));
            }
        }
        let init = runtime.initialize();
        let vmctx = runtime.vmctx() as usize;
        opaque.instances.push(InstanceData {
            runtime,
            module: module.clone(),
        });
        let index = opaque.instances.len() - 1;
        opaque.instance_by_vmctx.insert(vmctx, index);
        let instance = Instance {
            store: opaque.id,
            index,
        };
        match init {
            Ok(()) => {}
            Err(InstantiationError::Trap(code)) => {
                return Err(crate::error::Trap::new(code, Vec::new()).into());
            }
            Err(e @ (InstantiationError::Resource(_) | InstantiationError::Pool(_))) => {
                return Err(Error::with_kind(ErrorKind::Instantiation, e.to_string()));
            }
        }
        if let Some(start) = module.info().start {
            let func = instance.func_at(opaque, start);
            func.call(crate::store::StoreContextMut(store), &[], &mut [])?;
        }
        Ok(instance)
    }

    fn func_at(&self, store: &mut StoreOpaque, index: FuncIndex) -> Func {
        let data = &store.instances[self.index];
        let func_ref = data.runtime.func_ref(index);
        let type_id = data.module.type_id_of_func(index);
        let ty = data.module.info().func_type(index).clone();
        let array_call = store
            .engine
            .trampolines(type_id)
            .expect("trampolines of a compiled module's type compile")
            .array_call;
        Func::register(store, func_ref, type_id, ty, array_call)
    }

    /// The export `name`, if any.
    pub fn get_export(&self, mut store: impl AsContextMut, name: &str) -> Option<Extern> {
        let mut ctx = store.as_context_mut();
        let store = ctx.opaque_mut();
        store.assert_owns(self.store, "instance");
        export_by_index(store, self.index, name)
    }

    /// The exported function `name`, if any.
    pub fn get_func(&self, store: impl AsContextMut, name: &str) -> Option<Func> {
        self.get_export(store, name)?.into_func()
    }

    /// The exported function `name` with a static signature; an error if it is missing or its type is not `Params -> Results`.
    pub fn get_typed_func<Params: WasmParams, Results: WasmResults>(
        &self,
        mut store: impl AsContextMut,
        name: &str,
    ) -> Result<TypedFunc<Params, Results>, Error> {
        let func = self
            .get_func(&mut store, name)
            .ok_or_else(|| Error::usage(format!("no exported function named `{name}`")))?;
        func.typed(&store)
    }

    /// The exported (unshared) memory `name`, if any.
    pub fn get_memory(&self, store: impl AsContextMut, name: &str) -> Option<Memory> {
        self.get_export(store, name)?.into_memory()
    }

    /// The exported shared memory `name` (a shared memory is never a [`Memory`]).
    pub fn get_shared_memory(&self, store: impl AsContextMut, name: &str) -> Option<SharedMemory> {
        self.get_export(store, name)?.into_shared_memory()
    }

    /// The exported global `name`, if any.
    pub fn get_global(&self, store: impl AsContextMut, name: &str) -> Option<Global> {
        self.get_export(store, name)?.into_global()
    }

    /// The exported table `name`, if any.
    pub fn get_table(&self, store: impl AsContextMut, name: &str) -> Option<Table> {
        self.get_export(store, name)?.into_table()
    }

    /// Every export, in declaration order.
    pub fn exports(&self, mut store: impl AsContextMut) -> Vec<(String, Extern)> {
        let mut ctx = store.as_context_mut();
        ctx.opaque().assert_owns(self.store, "instance");
        exports_by_index(ctx.opaque_mut(), self.index)
    }
}

pub(crate) fn exports_by_index(store: &mut StoreOpaque, index: usize) -> Vec<(String, Extern)> {
    let names: Vec<String> = store.instances[index]
        .module
        .info()
        .exports
        .iter()
        .map(|e| e.name.clone())
        .collect();
    names
        .into_iter()
        .filter_map(|n| export_by_index(store, index, &n).map(|e| (n, e)))
        .collect()
}

pub(crate) fn export_by_index(store: &mut StoreOpaque, index: usize, name: &str) -> Option<Extern> {
    let instance = Instance {
        store: store.id,
        index,
    };
    let data = &store.instances[index];
    let export = data.module.info().export(name)?;
    let (kind, export_index) = (export.kind, export.index);
    Some(match kind {
        ExportKind::Function => Extern::Func(instance.func_at(store, FuncIndex(export_index))),
        ExportKind::Memory => {
            let ptr = data.runtime.memory_ptr(MemoryIndex(export_index));
            match store.shared_memory_at(ptr) {
                Some(shared) => Extern::SharedMemory(shared),
                None => Extern::Memory(Memory::register(store, ptr)),
            }
        }
        ExportKind::Table => {
            let ptr = data.runtime.table_ptr(TableIndex(export_index));
            Extern::Table(Table::register(store, ptr))
        }
        ExportKind::Global => {
            let ptr = data.runtime.global_ptr(GlobalIndex(export_index));
            let ty = data.module.info().globals[export_index as usize].ty;
            Extern::Global(Global::register(store, ptr, ty))
        }
        ExportKind::Tag => {
            let ptr = data
                .runtime
                .tag_ptr(wazerox_environ::TagIndex(export_index));
            Extern::Tag(crate::Tag::register(store, ptr))
        }
    })
}
