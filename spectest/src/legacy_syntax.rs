//! The folded text syntax of legacy exception handling, which the `wast` crate no
//! longer parses: `(try $l? blocktype (do instr*) (catch $t instr*)* (catch_all
//! instr*)? )` and `(try … (do instr*) (delegate $l))`. [`unfold_legacy_try`]
//! rewrites each such form into the flat syntax the crate still accepts
//! (`try $l? blocktype instr* catch $t instr* … end`, `… delegate $l`), which
//! encodes to the same binary. Strings (`module quote` texts) and comments are
//! copied untouched.

/// `text` with every folded legacy `try` unfolded; `None` if it has none.
pub fn unfold_legacy_try(text: &str) -> Option<String> {
    let mut r = Rewriter {
        s: text.as_bytes(),
        i: 0,
        out: String::with_capacity(text.len()),
        rewrote: false,
    };
    while r.i < r.s.len() {
        r.sequence();
        if r.i < r.s.len() {
            // An unmatched `)`: copy it and go on.
            r.copy(1);
        }
    }
    r.rewrote.then_some(r.out)
}

struct Rewriter<'a> {
    s: &'a [u8],
    i: usize,
    out: String,
    rewrote: bool,
}

fn is_idchar(c: u8) -> bool {
    !(c.is_ascii_whitespace() || c == b'(' || c == b')' || c == b'"' || c == b';')
}

impl Rewriter<'_> {
    fn copy(&mut self, n: usize) {
        let end = (self.i + n).min(self.s.len());
        // Slices start and end at ASCII delimiters or the end, so they are valid
        // UTF-8 boundaries.
        self.out
            .push_str(std::str::from_utf8(&self.s[self.i..end]).unwrap_or(""));
        self.i = end;
    }

    fn at(&self, text: &str) -> bool {
        self.s[self.i..].starts_with(text.as_bytes())
    }

    /// Copies a comment or string starting here, if one does; returns whether.
    fn trivia(&mut self) -> bool {
        if self.at(";;") {
            let len = self.s[self.i..]
                .iter()
                .position(|&c| c == b'\n')
                .unwrap_or(self.s.len() - self.i);
            self.copy(len);
            true
        } else if self.at("(;") {
            let mut depth = 0;
            let start = self.i;
            let mut j = self.i;
            while j < self.s.len() {
                if self.s[j..].starts_with(b"(;") {
                    depth += 1;
                    j += 2;
                } else if self.s[j..].starts_with(b";)") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            self.copy(j - start);
            true
        } else if self.at("\"") {
            let mut j = self.i + 1;
            while j < self.s.len() && self.s[j] != b'"' {
                j += if self.s[j] == b'\\' { 2 } else { 1 };
            }
            self.copy(j + 1 - self.i);
            true
        } else {
            false
        }
    }

    /// The keyword right after the `(` at the current position, if any.
    fn keyword(&self) -> &str {
        let mut j = self.i + 1;
        while j < self.s.len() && self.s[j].is_ascii_whitespace() {
            j += 1;
        }
        let start = j;
        while j < self.s.len() && is_idchar(self.s[j]) {
            j += 1;
        }
        std::str::from_utf8(&self.s[start..j]).unwrap_or("")
    }

    /// Skips `(` and the keyword after it.
    fn skip_keyword(&mut self) {
        let keyword_len = self.keyword().len();
        self.i += 1;
        while self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
        self.i += keyword_len;
    }

    /// Copies (rewriting) up to, not including, the `)` that closes the current list.
    fn sequence(&mut self) {
        while self.i < self.s.len() {
            if self.trivia() {
                continue;
            }
            match self.s[self.i] {
                b')' => return,
                b'(' if self.keyword() == "try" => self.try_form(),
                b'(' => {
                    self.copy(1);
                    self.sequence();
                    self.copy(1);
                }
                _ => self.copy(1),
            }
        }
    }

    /// Rewrites the folded `try` starting at the current `(`.
    fn try_form(&mut self) {
        self.rewrote = true;
        self.skip_keyword();
        self.out.push_str("try");
        let mut delegated = false;
        while self.i < self.s.len() {
            if self.trivia() {
                continue;
            }
            match self.s[self.i] {
                b')' => {
                    self.i += 1;
                    if !delegated {
                        self.out.push_str(" end");
                    }
                    return;
                }
                b'(' => match self.keyword() {
                    clause @ ("do" | "catch" | "catch_all" | "delegate") => {
                        delegated |= clause == "delegate";
                        let emitted = if clause == "do" { " " } else { clause };
                        let emitted = emitted.to_string();
                        self.skip_keyword();
                        self.out.push(' ');
                        self.out.push_str(&emitted);
                        self.sequence();
                        self.i += 1;
                    }
                    // The block type: `(result …)`, `(param …)`, `(type …)`.
                    _ => {
                        self.copy(1);
                        self.sequence();
                        self.copy(1);
                    }
                },
                _ => self.copy(1),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::unfold_legacy_try;

    /// The rewrite with whitespace runs collapsed (they are insignificant).
    fn unfold(text: &str) -> String {
        let unfolded = unfold_legacy_try(text).expect("has a folded try");
        unfolded.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn unfolds_catch_catch_all_and_delegate() {
        let text =
            "(func (try $l (result i32) (do (i32.const 1)) (catch $e) (catch_all (i32.const 2))))";
        assert_eq!(
            unfold(text),
            "(func try $l (result i32) (i32.const 1) catch $e catch_all (i32.const 2) end)"
        );
        let text = "(try (do (try (do (throw $e)) (delegate 0))) (catch_all))";
        assert_eq!(unfold(text), "try try (throw $e) delegate 0 catch_all end");
    }

    #[test]
    fn leaves_strings_comments_and_try_table_alone() {
        let text = "(module quote \"(func (try (do)))\") ;; (try (do))\n(try_table)";
        assert_eq!(unfold_legacy_try(text), None);
    }
}
