//! `Linker`: resolves imports by name, from host functions and from instances.

use crate::engine::Engine;
use crate::error::Error;
use crate::externals::Extern;
use crate::func::{Caller, HostFuncTemplate, IntoFunc, dynamic_template, template_into_func};
use crate::instance::Instance;
use crate::module::Module;
use crate::store::{AsContextMut, StoreOpaque};
use crate::values::Val;
use std::collections::HashMap;
use wazerox_frontend::FuncType;

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
    pub fn new(engine: &Engine) -> Linker<T> {
        Linker {
            engine: engine.clone(),
            definitions: HashMap::new(),
            _marker: std::marker::PhantomData,
        }
    }

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

    /// Defines a host function with a signature chosen at run time.
    pub fn func_new(
        &mut self,
        module: &str,
        name: &str,
        ty: FuncType,
        func: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<(), Error> + Send + Sync + 'static,
    ) -> Result<&mut Self, Error> {
        let template = dynamic_template::<T>(ty, func);
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
                "unknown import: `{module}::{name}` has not been defined"
            ))),
        }
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
            imports.push(self.resolve(ctx.opaque_mut(), &import.module, &import.name)?);
        }
        Instance::new_in(ctx.0, module, &imports)
    }
}
