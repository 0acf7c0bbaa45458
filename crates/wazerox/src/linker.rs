//! `Linker`: resolves imports by name, from host functions and from instances.

use crate::engine::Engine;
use crate::error::{Error, ErrorKind, GuestText};
use crate::externals::Extern;
use crate::func::{Caller, HostFuncTemplate, IntoFunc, dynamic_template, template_into_func};
use crate::instance::Instance;
use crate::module::Module;
use crate::store::{AsContextMut, StoreOpaque};
use crate::values::Val;
use std::collections::HashMap;
use wazerox_environ::FuncType;

#[derive(Clone)]
enum Definition {
    /// Already placed in a particular store.
    Extern(Extern),
    /// A host function, placed in each store that instantiates with it.
    HostFunc(HostFuncTemplate),
}

/// Defines names for imports and instantiates modules with them. Cloning is cheap
/// (host functions are shared), and a linker without store-bound definitions can be
/// used from any thread, e.g. to instantiate a program's threads.
pub struct Linker<T> {
    engine: Engine,
    definitions: HashMap<(String, String), Definition>,
    _marker: std::marker::PhantomData<fn(T)>,
}

impl<T> Clone for Linker<T> {
    fn clone(&self) -> Self {
        Linker {
            engine: self.engine.clone(),
            definitions: self.definitions.clone(),
            _marker: std::marker::PhantomData,
        }
    }
}

impl<T: 'static> Linker<T> {
    /// An empty linker for modules of `engine`.
    pub fn new(engine: &Engine) -> Linker<T> {
        Linker {
            engine: engine.clone(),
            definitions: HashMap::new(),
            _marker: std::marker::PhantomData,
        }
    }

    /// The linker's engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn insert(&mut self, module: &str, name: &str, definition: Definition) -> &mut Self {
        self.definitions
            .insert((module.to_string(), name.to_string()), definition);
        self
    }

    /// Defines `module::name` as `item` (later definitions replace earlier ones).
    pub fn define(
        &mut self,
        _store: impl AsContextMut<Data = T>,
        module: &str,
        name: &str,
        item: impl Into<Extern>,
    ) -> Result<&mut Self, Error> {
        Ok(self.insert(module, name, Definition::Extern(item.into())))
    }

    /// Defines a host function from a closure (see [`crate::Func::wrap`]).
    pub fn func_wrap<Params, Results>(
        &mut self,
        module: &str,
        name: &str,
        func: impl IntoFunc<T, Params, Results>,
    ) -> Result<&mut Self, Error> {
        let template = func.into_template().0;
        Ok(self.insert(module, name, Definition::HostFunc(template)))
    }

    pub(crate) fn insert_host_func(
        &mut self,
        module: &str,
        name: &str,
        template: crate::func::HostFuncTemplate,
    ) -> &mut Self {
        self.insert(module, name, Definition::HostFunc(template))
    }

    /// Defines a host function with a signature chosen at run time.
    pub fn func_new(
        &mut self,
        module: &str,
        name: &str,
        ty: FuncType,
        func: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync + 'static,
    ) -> Result<&mut Self, Error> {
        let template = dynamic_template::<T, _>(ty, func);
        Ok(self.insert(module, name, Definition::HostFunc(template)))
    }

    /// Defines every export of `instance` under module name `module`.
    pub fn instance(
        &mut self,
        mut store: impl AsContextMut<Data = T>,
        module: &str,
        instance: Instance,
    ) -> Result<&mut Self, Error> {
        for (name, item) in instance.exports(&mut store) {
            self.insert(module, &name, Definition::Extern(item));
        }
        Ok(self)
    }

    /// The item defined as `module::name`, placed in `store`.
    pub fn get(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &str,
        name: &str,
    ) -> Option<Extern> {
        let mut ctx = store.as_context_mut();
        self.resolve(ctx.opaque_mut(), module, name).ok()
    }

    fn resolve(&self, store: &mut StoreOpaque, module: &str, name: &str) -> Result<Extern, Error> {
        match self
            .definitions
            .get(&(module.to_string(), name.to_string()))
        {
            Some(Definition::Extern(e)) => Ok(e.clone()),
            Some(Definition::HostFunc(template)) => Ok(Extern::Func(template_into_func(
                crate::func::HostFuncTemplateBox(template.clone()),
                store,
            )?)),
            None => Err(Error::link(format!(
                "unknown import: `{}::{}` has not been defined",
                GuestText(module),
                GuestText(name)
            ))),
        }
    }

    /// Resolves `module`'s imports once, for instantiating it many times (in any
    /// store, on any thread). Every import must be a host function or a shared
    /// memory: store-bound items (an instance's exports, a `Memory`, a `Global`) can
    /// only be used by `instantiate` with their own store.
    pub fn instantiate_pre(&self, module: &Module) -> Result<InstancePre<T>, Error> {
        let mut imports = Vec::with_capacity(module.info().imports.len());
        for import in &module.info().imports {
            let key = (import.module.clone(), import.name.clone());
            let definition = match self.definitions.get(&key) {
                Some(d @ Definition::HostFunc(_)) => d.clone(),
                Some(d @ Definition::Extern(Extern::SharedMemory(_))) => d.clone(),
                Some(Definition::Extern(_)) => {
                    return Err(Error::usage(format!(
                        "`{}::{}` is bound to a store; instantiate_pre needs store-independent imports",
                        GuestText(&import.module),
                        GuestText(&import.name)
                    )));
                }
                None => {
                    let missing = self.missing_imports(module);
                    return Err(missing.expect("this import is missing"));
                }
            };
            imports.push(definition);
        }
        Ok(InstancePre {
            module: module.clone(),
            imports: std::sync::Arc::new(imports),
            _marker: std::marker::PhantomData,
        })
    }

    /// Instantiates `module`, resolving each import by its module and field name.
    pub fn instantiate(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &Module,
    ) -> Result<Instance, Error> {
        let mut ctx = store.as_context_mut();
        let mut imports = Vec::with_capacity(module.info().imports.len());
        for import in &module.info().imports {
            match self.resolve(ctx.opaque_mut(), &import.module, &import.name) {
                Ok(item) => imports.push(item),
                Err(error) if error.kind() == ErrorKind::Link => {
                    return Err(self.missing_imports(module).unwrap_or(error));
                }
                Err(error) => return Err(error),
            }
        }
        Instance::new_in(ctx.0, module, &imports)
    }

    /// The link error naming every import of `module` this linker does not define
    /// (a user fixing one at a time would otherwise need a run per missing import).
    fn missing_imports(&self, module: &Module) -> Option<Error> {
        let mut missing: Vec<String> = Vec::new();
        for import in &module.info().imports {
            let key = (import.module.clone(), import.name.clone());
            let name = format!(
                "`{}::{}`",
                GuestText(&import.module),
                GuestText(&import.name)
            );
            if !self.definitions.contains_key(&key) && !missing.contains(&name) {
                missing.push(name);
            }
        }
        match missing.as_slice() {
            [] => None,
            [one] => Some(Error::link(format!(
                "unknown import: {one} has not been defined"
            ))),
            many => Some(Error::link(format!(
                "unknown imports: {} have not been defined",
                many.join(", ")
            ))),
        }
    }
}

/// A module with its imports resolved (see [`Linker::instantiate_pre`]): cheap to
/// clone, `Send + Sync`, so threads can each instantiate it in their own store.
pub struct InstancePre<T> {
    module: Module,
    imports: std::sync::Arc<Vec<Definition>>,
    _marker: std::marker::PhantomData<fn(T)>,
}

impl<T> std::fmt::Debug for InstancePre<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstancePre")
            .field("imports", &self.imports.len())
            .finish()
    }
}

impl<T> Clone for InstancePre<T> {
    fn clone(&self) -> Self {
        InstancePre {
            module: self.module.clone(),
            imports: self.imports.clone(),
            _marker: std::marker::PhantomData,
        }
    }
}

impl<T: 'static> InstancePre<T> {
    /// The module this pre-instantiation instantiates.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// A new instance in `store`.
    pub fn instantiate(&self, mut store: impl AsContextMut<Data = T>) -> Result<Instance, Error> {
        let mut ctx = store.as_context_mut();
        let mut imports = Vec::with_capacity(self.imports.len());
        for definition in self.imports.iter() {
            imports.push(match definition {
                Definition::Extern(e) => e.clone(),
                Definition::HostFunc(template) => Extern::Func(template_into_func(
                    crate::func::HostFuncTemplateBox(template.clone()),
                    ctx.opaque_mut(),
                )?),
            });
        }
        Instance::new_in(ctx.0, &self.module, &imports)
    }
}
