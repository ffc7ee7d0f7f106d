//! The character cursor under the `.fbp` parser.
//!
//! The grammar of the `fbp` package is a PEG without a separate lexer, so this plays the lexer's
//! part: it walks the characters, matches literals and character classes, and remembers, as
//! PEG parsers do, the furthest position where something failed to match and what was expected
//! there. That position and those expectations make the syntax error.

use std::borrow::Cow;

use super::super::error::Error;

/// A label for what was expected at a position.
pub(super) type Label = Cow<'static, str>;

/// A position in the text with the furthest-failure bookkeeping.
pub(super) struct Scanner {
    chars: Vec<char>,
    /// The current position, in characters.
    pub(super) pos: usize,
    fail_pos: usize,
    expected: Vec<Label>,
    silent: u32,
    /// The first error that is not a syntax error (a conflict, an overflow): it wins.
    pub(super) fatal: Option<Error>,
}

impl Scanner {
    /// A cursor at the start of `text`.
    pub(super) fn new(text: &str) -> Scanner {
        Scanner {
            chars: text.chars().collect(),
            pos: 0,
            fail_pos: 0,
            expected: Vec::new(),
            silent: 0,
            fatal: None,
        }
    }

    /// The number of characters.
    pub(super) fn len(&self) -> usize {
        self.chars.len()
    }

    /// The character at the current position.
    pub(super) fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    /// The character `offset` places after the current position.
    pub(super) fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    /// What is expected at the furthest failure so far, to simplify before reporting.
    pub(super) fn expected_mut(&mut self) -> &mut Vec<Label> {
        &mut self.expected
    }

    /// The characters from `start` to the current position.
    pub(super) fn since(&self, start: usize) -> String {
        self.chars[start.min(self.pos)..self.pos].iter().collect()
    }

    /// Runs `f`; if it fails, moves back to where it started (a PEG sequence).
    pub(super) fn seq<T>(&mut self, f: impl FnOnce(&mut Scanner) -> Option<T>) -> Option<T> {
        let start = self.pos;
        let result = f(self);
        if result.is_none() {
            self.pos = start;
        }
        result
    }

    /// Notes that `label` was expected at the current position.
    pub(super) fn fail(&mut self, label: impl Into<Label>) {
        self.fail_at(self.pos, label);
    }

    /// Notes that `label` was expected at `pos`.
    pub(super) fn fail_at(&mut self, pos: usize, label: impl Into<Label>) {
        if self.silent > 0 || pos < self.fail_pos {
            return;
        }
        if pos > self.fail_pos {
            self.fail_pos = pos;
            self.expected.clear();
        }
        let label = label.into();
        if !self.expected.contains(&label) {
            self.expected.push(label);
        }
    }

    /// Runs `f` with its own failures unrecorded; if it fails, records `label` where it began
    /// (a PEG named rule).
    pub(super) fn named<T>(
        &mut self,
        label: &'static str,
        f: impl FnOnce(&mut Scanner) -> Option<T>,
    ) -> Option<T> {
        let start = self.pos;
        self.silent += 1;
        let result = self.seq(f);
        self.silent -= 1;
        if result.is_none() {
            self.fail_at(start, label);
        }
        result
    }

    /// Matches the literal `text`.
    pub(super) fn lit(&mut self, text: &str, label: &'static str) -> Option<()> {
        let mut at = self.pos;
        for expected in text.chars() {
            if self.chars.get(at) != Some(&expected) {
                self.fail(label);
                return None;
            }
            at += 1;
        }
        self.pos = at;
        Some(())
    }

    /// Matches one character for which `class` holds.
    pub(super) fn class(
        &mut self,
        class: impl Fn(char) -> bool,
        label: &'static str,
    ) -> Option<char> {
        match self.peek() {
            Some(c) if class(c) => {
                self.pos += 1;
                Some(c)
            }
            _ => {
                self.fail(label);
                None
            }
        }
    }

    /// Matches as many characters as `class` allows (possibly none), and returns them.
    pub(super) fn many(&mut self, class: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&class) {
            self.pos += 1;
        }
        self.since(start)
    }

    /// Skips spaces (`_` in the grammar: spaces only, not tabs).
    pub(super) fn spaces(&mut self) {
        self.many(|c| c == ' ');
    }

    /// At least one space (`__` in the grammar).
    pub(super) fn spaces1(&mut self) -> Option<()> {
        self.class(|c| c == ' ', "a space")?;
        self.spaces();
        Some(())
    }

    /// The 1-based line and column of `pos`.
    pub(super) fn line_col(&self, pos: usize) -> (usize, usize) {
        let mut line = 1;
        let mut column = 1;
        for &c in self.chars.iter().take(pos) {
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        (line, column)
    }

    /// An [`Error::Fbp`] at `pos`.
    pub(super) fn error_at(&self, pos: usize, message: impl Into<String>) -> Error {
        let (line, column) = self.line_col(pos);
        Error::Fbp {
            line,
            column,
            message: message.into(),
        }
    }

    /// Records `error` unless an earlier one is recorded already.
    pub(super) fn set_fatal(&mut self, error: Error) {
        if self.fatal.is_none() {
            self.fatal = Some(error);
        }
    }

    /// The syntax error at the furthest position anything failed to match.
    pub(super) fn syntax_error(&self) -> Error {
        let pos = self.fail_pos.max(self.pos).min(self.chars.len());
        let found = match self.chars.get(pos) {
            None => "end of input".to_string(),
            Some('\n' | '\r' | '\u{2028}' | '\u{2029}') => "end of line".to_string(),
            Some(c) => format!("'{}'", c.escape_debug()),
        };
        let context = if self.chars[..pos]
            .iter()
            .rev()
            .skip_while(|&&c| c == ' ')
            .take(2)
            .eq(['>', '-'].iter())
        {
            " after '->'"
        } else {
            ""
        };
        let expected: &[Label] = if pos == self.fail_pos {
            &self.expected
        } else {
            &[]
        };
        let message = match expected.split_last() {
            None => format!("unexpected {found}"),
            Some((last, [])) => format!("expected {last}{context}, found {found}"),
            Some((last, rest)) => format!(
                "expected {} or {last}{context}, found {found}",
                rest.join(", ")
            ),
        };
        let tab = pos.checked_sub(1).and_then(|p| self.chars.get(p)) == Some(&'\t')
            || self.chars.get(pos) == Some(&'\t');
        if tab {
            return self.error_at(
                pos,
                message + " (only spaces separate words in .fbp, not tabs)",
            );
        }
        self.error_at(pos, message)
    }
}
