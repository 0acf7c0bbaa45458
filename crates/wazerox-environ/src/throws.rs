//! Which defined functions can throw a Wasm exception, so that calls to the others
//! need no exception edge even inside a `try_table`/`try` body.
//!
//! A call inside a handler scope is a Cranelift `try_call`, after which every
//! register counts as clobbered (the unwinder restores none): values live across
//! it are spilled. A function that cannot throw does not need that: one that
//! contains no `throw`, `throw_ref` or `rethrow`, no indirect call (any function
//! may be behind it), no call of an import (host functions may throw), and no
//! call of a function that can throw. Traps are never exceptions. The facts are
//! gathered during the decode pass, which reads every operator anyway.

use wasmparser::Operator;

/// Per defined function: whether it throws by itself and which functions it calls.
#[derive(Debug, Default)]
pub(crate) struct ThrowScan {
    throws_itself: Vec<bool>,
    callees: Vec<Vec<u32>>,
}

impl ThrowScan {
    /// Starts the next function body.
    pub fn begin_function(&mut self) {
        self.throws_itself.push(false);
        self.callees.push(Vec::new());
    }

    /// Records one operator of the current body.
    pub fn observe(&mut self, op: &Operator<'_>) {
        let (Some(throws), Some(callees)) =
            (self.throws_itself.last_mut(), self.callees.last_mut())
        else {
            return;
        };
        match op {
            Operator::Call { function_index } | Operator::ReturnCall { function_index } => {
                callees.push(*function_index)
            }
            Operator::Throw { .. }
            | Operator::ThrowRef
            | Operator::Rethrow { .. }
            | Operator::CallIndirect { .. }
            | Operator::ReturnCallIndirect { .. }
            | Operator::CallRef { .. }
            | Operator::ReturnCallRef { .. } => *throws = true,
            _ => {}
        }
    }

    /// Whether each defined function may throw, given how many functions are
    /// imported (an unknown index counts as throwing).
    pub fn finish(self, num_imported: u32) -> Vec<bool> {
        let n = self.throws_itself.len();
        let mut may_throw = self.throws_itself;
        let mut callers: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (caller, callees) in self.callees.iter().enumerate() {
            for &callee in callees {
                match callee.checked_sub(num_imported) {
                    Some(defined) if (defined as usize) < n => {
                        callers[defined as usize].push(caller as u32)
                    }
                    _ => may_throw[caller] = true,
                }
            }
        }
        let mut work: Vec<u32> = (0..n as u32).filter(|f| may_throw[*f as usize]).collect();
        while let Some(f) = work.pop() {
            for &caller in &callers[f as usize] {
                if !may_throw[caller as usize] {
                    may_throw[caller as usize] = true;
                    work.push(caller);
                }
            }
        }
        may_throw
    }
}

#[cfg(test)]
mod tests {
    use super::ThrowScan;
    use wasmparser::Operator;

    #[test]
    fn throwing_propagates_to_callers_and_leaves_the_rest() {
        let mut scan = ThrowScan::default();
        // One import (index 0); defined functions 1..=5.
        let bodies: [&[Operator<'static>]; 5] = [
            &[Operator::Nop],                        // 1: leaf
            &[Operator::Call { function_index: 1 }], // 2: calls a leaf
            &[Operator::Throw { tag_index: 0 }],     // 3: throws
            &[Operator::Call { function_index: 3 }], // 4: calls a thrower
            &[Operator::Call { function_index: 0 }], // 5: calls the import
        ];
        for body in bodies {
            scan.begin_function();
            for op in body {
                scan.observe(op);
            }
        }
        assert_eq!(scan.finish(1), vec![false, false, true, true, true]);
    }
}
