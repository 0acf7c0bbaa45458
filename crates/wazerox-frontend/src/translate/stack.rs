//! Control frames of the Wasm structured control flow being translated.

use cranelift_codegen::ir::{Block, Value};

#[derive(Debug)]
pub(crate) enum FrameKind {
    Block,
    Loop {
        /// Branch target of the loop: its header, which takes the loop's params.
        header: Block,
    },
    If {
        /// Where the false arm starts; takes the `if`'s params.
        else_block: Block,
        /// Whether an `else` has been translated for this frame.
        else_seen: bool,
    },
    /// `try_table`: a block whose body's exceptions land in `landing`, which
    /// dispatches on `catches` once the body ends.
    TryTable {
        landing: Block,
        catches: Vec<wasmparser::Catch>,
    },
    /// Legacy `try`: a block whose body's exceptions land in `landing`; each
    /// `catch`/`catch_all` adds a test of the dispatch chain.
    LegacyTry {
        landing: Block,
        /// Set at the first `catch`/`catch_all`: the caught exception (the
        /// landing block's parameter, which `rethrow` rethrows) and the block
        /// where the chain continues when no clause so far matched (`None` after
        /// `catch_all`).
        catching: Option<(Value, Option<Block>)>,
    },
}

/// The landing block of a `try_table`/`try` body: exceptions thrown by calls in
/// the body (and `throw`s directly in it) arrive here with the exception object
/// as the block's only parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HandlerScope {
    pub landing: Block,
}

#[derive(Debug)]
pub(crate) struct ControlFrame {
    pub kind: FrameKind,
    /// Block after the construct; takes the construct's results.
    pub destination: Block,
    pub num_params: usize,
    pub num_results: usize,
    /// Operand stack height below the construct's params.
    pub stack_height: usize,
    /// Whether anything jumps to `destination`, i.e. code after `end` is reachable.
    pub exit_reachable: bool,
    /// How many handler scopes protect code directly inside this frame (the
    /// innermost is `ControlStack::handlers[handlers_inside - 1]`); for `delegate`.
    pub handlers_inside: usize,
}

impl ControlFrame {
    /// The block a `br` to this frame jumps to, and how many values it carries.
    pub fn branch_target(&self) -> (Block, usize) {
        match self.kind {
            FrameKind::Loop { header } => (header, self.num_params),
            _ => (self.destination, self.num_results),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct ControlStack {
    frames: Vec<ControlFrame>,
    /// Open `try_table`/`try` bodies, innermost last.
    pub handlers: Vec<HandlerScope>,
}

impl ControlStack {
    pub fn push_block(
        &mut self,
        destination: Block,
        num_params: usize,
        num_results: usize,
        stack_height: usize,
    ) {
        self.push(
            FrameKind::Block,
            destination,
            num_params,
            num_results,
            stack_height,
        );
    }

    pub fn push(
        &mut self,
        kind: FrameKind,
        destination: Block,
        num_params: usize,
        num_results: usize,
        stack_height: usize,
    ) {
        self.frames.push(ControlFrame {
            kind,
            destination,
            num_params,
            num_results,
            stack_height,
            exit_reachable: false,
            handlers_inside: self.handlers.len(),
        });
    }

    pub fn pop(&mut self) -> ControlFrame {
        self.frames
            .pop()
            .expect("validated: control stack underflow")
    }

    pub fn top_mut(&mut self) -> &mut ControlFrame {
        self.frames
            .last_mut()
            .expect("validated: control stack underflow")
    }

    /// The frame a branch of `relative_depth` targets.
    pub fn frame_mut(&mut self, relative_depth: u32) -> &mut ControlFrame {
        let i = self.frames.len() - 1 - relative_depth as usize;
        &mut self.frames[i]
    }

    /// The landing block exceptions raised here go to, if any in this function.
    pub fn innermost_handler(&self) -> Option<Block> {
        self.handlers.last().map(|h| h.landing)
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }
}
