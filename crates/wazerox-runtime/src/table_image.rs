//! Funcref table images: a defined table's contents after its initialiser and
//! active element segments, laid out once per module as VMContext offsets.
//!
//! A table of 10,000 `ref.func` elements cost 10,000 constant-expression
//! evaluations per instantiation (nearly all of the time of instantiating such a
//! module). Every funcref a segment can name (`ref.func` of an imported or a
//! defined function) is the address of a `VMFuncRef` inside the instance's own
//! VMContext, i.e. `vmctx + VMOffsets::func_ref(f)`; so the table's initial
//! contents are fixed per module up to that base address, and filling a table
//! from its image is one add per element, with no evaluation and no allocation.
//!
//! A table gets an image only if its initialiser (if any) and every active
//! segment targeting it are single `ref.func`/`ref.null` constants at constant
//! offsets that fit in the table's minimum size: then no segment targeting it can
//! trap, and applying them all before the other segments is indistinguishable
//! from applying them in order (a later trap makes the instance unreachable, and
//! only defined tables have images). Anything else keeps the per-segment path.

use wazerox_environ::{ConstExpr, ConstOp, ElementMode, ModuleInfo, TableIndex, VMOffsets};

/// A defined table's initial contents: per element, the `VMFuncRef`'s offset in
/// the VMContext, or 0 for null.
#[derive(Debug)]
pub struct TableImage {
    offsets: Box<[u32]>,
}

impl TableImage {
    /// Elements of the image (the table's minimum size).
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Appends the image, relative to the VMContext at `vmctx`, to `elements`.
    pub(crate) fn extend(&self, vmctx: usize, elements: &mut Vec<usize>) {
        // Branch-free, so the loop vectorises: a null offset stays 0.
        elements.extend(self.offsets.iter().map(|&offset| {
            let keep = ((offset != 0) as usize).wrapping_neg();
            (vmctx + offset as usize) & keep
        }));
    }
}

/// The images of `module`'s defined tables, by defined table index.
pub fn table_images(module: &ModuleInfo) -> Vec<Option<std::sync::Arc<TableImage>>> {
    let offsets = VMOffsets::new(module);
    let imported = module.num_imported_tables as usize;
    (imported..module.tables.len())
        .map(|i| image_of(module, &offsets, TableIndex(i as u32)).map(std::sync::Arc::new))
        .collect()
}

/// Largest table an image is built for: beyond it the image would cost more
/// memory per module than it saves per instance.
const MAX_IMAGE_ELEMENTS: u64 = 1 << 20;

fn image_of(module: &ModuleInfo, offsets: &VMOffsets, table: TableIndex) -> Option<TableImage> {
    let desc = &module.tables[table.index()];
    if desc.ty.minimum > MAX_IMAGE_ELEMENTS {
        return None;
    }
    let func_ref = |expr: &ConstExpr| -> Option<u32> {
        match expr.ops.as_slice() {
            [ConstOp::RefNull(_)] => Some(0),
            [ConstOp::RefFunc(f)] => Some(offsets.func_ref(*f)),
            _ => None,
        }
    };
    let init = match &desc.init {
        Some(expr) => func_ref(expr)?,
        None => 0,
    };
    let mut image = vec![init; desc.ty.minimum as usize];
    for segment in &module.elements {
        let ElementMode::Active {
            table: target,
            offset,
        } = &segment.mode
        else {
            continue;
        };
        if *target != table {
            continue;
        }
        let start = match offset.ops.as_slice() {
            [ConstOp::I32Const(v)] if !desc.ty.table64 => u64::from(*v as u32),
            [ConstOp::I64Const(v)] if desc.ty.table64 => *v as u64,
            _ => return None,
        };
        let range = crate::table::range(start, segment.items.len() as u64, desc.ty.minimum)?;
        for (slot, item) in image[range].iter_mut().zip(&segment.items) {
            *slot = func_ref(item)?;
        }
    }
    Some(TableImage {
        offsets: image.into_boxed_slice(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wazerox_environ::{
        ElementSegment, FuncIndex, FuncType, GlobalIndex, Table, TableType, TypeIndex, ValType,
    };

    fn module(segments: Vec<(ConstOp, Vec<ConstOp>)>) -> ModuleInfo {
        let ty = TableType {
            element: ValType::FUNCREF,
            minimum: 6,
            maximum: None,
            table64: false,
        };
        ModuleInfo {
            types: vec![FuncType::new([], [])],
            functions: vec![TypeIndex(0); 3],
            tables: vec![Table { ty, init: None }],
            elements: segments
                .into_iter()
                .map(|(offset, items)| ElementSegment {
                    mode: ElementMode::Active {
                        table: TableIndex(0),
                        offset: ConstExpr::single(offset),
                    },
                    element: ValType::FUNCREF,
                    items: items.into_iter().map(ConstExpr::single).collect(),
                })
                .collect(),
            ..ModuleInfo::default()
        }
    }

    #[test]
    fn an_image_holds_the_segments_func_refs_relative_to_the_vmcontext() {
        let info = module(vec![
            (
                ConstOp::I32Const(1),
                vec![
                    ConstOp::RefFunc(FuncIndex(2)),
                    ConstOp::RefNull(ValType::FUNCREF),
                ],
            ),
            (ConstOp::I32Const(4), vec![ConstOp::RefFunc(FuncIndex(0))]),
        ]);
        let images = table_images(&info);
        let image = images[0].as_ref().expect("constant segments get an image");
        let offsets = VMOffsets::new(&info);
        let mut elements = Vec::new();
        image.extend(0x10000, &mut elements);
        let at = |f: u32| 0x10000 + offsets.func_ref(FuncIndex(f)) as usize;
        assert_eq!(elements, [0, at(2), 0, 0, at(0), 0]);
    }

    #[test]
    fn segments_that_may_trap_or_depend_on_imports_get_no_image() {
        let out_of_bounds = module(vec![(
            ConstOp::I32Const(5),
            vec![ConstOp::RefFunc(FuncIndex(0)); 2],
        )]);
        assert!(table_images(&out_of_bounds)[0].is_none());
        let global_offset = module(vec![(
            ConstOp::GlobalGet(GlobalIndex(0)),
            vec![ConstOp::RefFunc(FuncIndex(0))],
        )]);
        assert!(table_images(&global_offset)[0].is_none());
    }
}
