//! The character cursor under the `.fbp` parser.
//!
//! The grammar of the `fbp` package is a PEG without a separate lexer, so this plays the lexer's
//! part: it walks the characters, matches literals and character classes, and remembers, as
//! PEG parsers do, the furthest position where something failed to match and what was expected
//! there. That position and those expectations make the syntax error.
//!
//! Positions are byte offsets into the text, always on a character boundary: the scanner
//! borrows the text rather than copying it, so a graph with a huge IIP costs its own size once.

use std::borrow::Cow;

use super::super::error::Error;

/// A label for what was expected at a position.
pub(super) type Label = Cow<'static, str>;

/// A position in the text with the furthest-failure bookkeeping.
pub(super) struct Scanner<'a> {
    text: &'a str,
    /// The current position, in bytes.
    pub(super) pos: usize,
    fail_pos: usize,
    expected: Vec<Label>,
    silent: u32,
    /// The first error that is not a syntax error (a conflict, an overflow): it wins.
    pub(super) fatal: Option<Error>,
}

impl<'a> Scanner<'a> {
    /// A cursor at the start of `text`.
    pub(super) fn new(text: &'a str) -> Scanner<'a> {
        Scanner {
            text,
            pos: 0,
            fail_pos: 0,
            expected: Vec::new(),
            silent: 0,
            fatal: None,
        }
    }

    /// The length of the text, in bytes.
    pub(super) fn len(&self) -> usize {
        self.text.len()
    }

    /// The text from the current position on.
    pub(super) fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// The character at the current position.
    pub(super) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Moves past the character at the current position, if any.
    pub(super) fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
        }
    }

    /// Moves `bytes` bytes forward (to a character boundary the caller has found).
    pub(super) fn skip(&mut self, bytes: usize) {
        self.pos = (self.pos + bytes).min(self.text.len());
    }

    /// What is expected at the furthest failure so far, to simplify before reporting.
    pub(super) fn expected_mut(&mut self) -> &mut Vec<Label> {
        &mut self.expected
    }

    /// The text from `start` to the current position.
    pub(super) fn since(&self, start: usize) -> String {
        self.text[start.min(self.pos)..self.pos].to_string()
    }

    /// Runs `f`; if it fails, moves back to where it started (a PEG sequence).
    pub(super) fn seq<T>(&mut self, f: impl FnOnce(&mut Scanner<'a>) -> Option<T>) -> Option<T> {
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
        f: impl FnOnce(&mut Scanner<'a>) -> Option<T>,
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
        if !self.rest().starts_with(text) {
            self.fail(label);
            return None;
        }
        self.pos += text.len();
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
                self.pos += c.len_utf8();
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
        let rest = self.rest();
        let length = rest.find(|c| !class(c)).unwrap_or(rest.len());
        self.pos += length;
        rest[..length].to_string()
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
        for c in self.text[..pos.min(self.text.len())].chars() {
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
        let pos = self.fail_pos.max(self.pos).min(self.text.len());
        let (before, after) = self.text.split_at(pos);
        let found = match after.chars().next() {
            None => "end of input".to_string(),
            Some('\n' | '\r' | '\u{2028}' | '\u{2029}') => "end of line".to_string(),
            Some(c) => format!("'{}'", c.escape_debug()),
        };
        let context = if before
            .chars()
            .rev()
            .skip_while(|&c| c == ' ')
            .take(2)
            .eq(['>', '-'])
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
        let tab = before.ends_with('\t') || after.starts_with('\t');
        if tab {
            return self.error_at(
                pos,
                message + " (only spaces separate words in .fbp, not tabs)",
            );
        }
        self.error_at(pos, message)
    }
}
