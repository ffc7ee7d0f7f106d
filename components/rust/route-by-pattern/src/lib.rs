//! `route/ByPattern`: routes each data IP to the output of the first pattern it matches.
//!
//! * inport `patterns` (array, setting, required): a JSON array of patterns, as in
//!   `["error*", "warn", "?:*"]`, or a single pattern as plain text. A pattern with `*` (any
//!   run of characters) or `?` (any one character) is a glob that must match the whole text;
//!   any other pattern matches when the text contains it.
//! * inport `in` (string): text to route.
//! * outport `out` (array): `out[i]` gets the data that matches pattern `i` first; data matching
//!   a pattern whose index is not connected is dropped.
//! * outport `unmatched` (string): data that matches no pattern.
//!
//! Brackets go to every connected output, so each keeps the stream's structure. An output that
//! closes downstream is skipped from then on; the process ends when all have closed.

use flowd_guest::{Component, Context, Error, Ip, OutPort, Port, Result, Spec, debug, warn};

/// One routing pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// Matches text that contains it.
    Substring(String),
    /// `*` and `?` wildcards, matching the whole text.
    Glob(Vec<char>),
}

impl Pattern {
    fn new(p: &str) -> Pattern {
        if p.contains(['*', '?']) {
            Pattern::Glob(p.chars().collect())
        } else {
            Pattern::Substring(p.to_owned())
        }
    }

    fn matches(&self, text: &str, chars: &[char]) -> bool {
        match self {
            Pattern::Substring(s) => text.contains(s.as_str()),
            Pattern::Glob(g) => glob_match(g, chars),
        }
    }
}

/// Whole-text wildcard match: `*` is any run of characters, `?` any one character. Linear in
/// practice: on a mismatch it retries only from the last `*`.
fn glob_match(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p).copied() {
            Some('*') => {
                last_star = Some((p, t));
                p += 1;
            }
            Some(c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match last_star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    last_star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// The `patterns` setting: a JSON array of strings, or one plain pattern.
fn parse_patterns(text: &str) -> std::result::Result<Vec<Pattern>, String> {
    let text = text.trim();
    if !text.starts_with('[') {
        return Ok(vec![Pattern::new(text)]);
    }
    let list: Vec<String> =
        serde_json::from_str(text).map_err(|e| format!("expected a JSON array of strings: {e}"))?;
    Ok(list.iter().map(|p| Pattern::new(p)).collect())
}

/// Sends to a port unless it has closed; a closed port is forgotten. Other errors propagate.
fn send_to(slot: &mut Option<OutPort>, ip: &Ip) -> Result<()> {
    let Some(port) = slot else { return Ok(()) };
    match port.send(ip) {
        Err(e) if e.is_closed() => {
            debug!("{}{:?} closed downstream", port.name(), port.index());
            *slot = None;
            Ok(())
        }
        other => other,
    }
}

struct ByPattern;

impl Component for ByPattern {
    fn describe() -> Spec {
        Spec::new(
            "route/ByPattern",
            "Routes text to out[i] by the first of several patterns it matches",
        )
        .icon("random")
        .inport(
            Port::new(
                "patterns",
                "array",
                "JSON array of substrings or globs (* and ?)",
            )
            .required(),
        )
        .inport(Port::new("in", "string", "Text to route"))
        .outport(Port::new("out", "string", "One connection per pattern").array())
        .outport(Port::new(
            "unmatched",
            "string",
            "Text that matches no pattern",
        ))
    }

    fn run(ctx: &mut Context) -> Result<()> {
        let raw: String = ctx.read_config("patterns")?;
        let patterns = parse_patterns(&raw).map_err(|reason| Error::BadConfig {
            port: "patterns".into(),
            value: raw.clone(),
            reason,
        })?;
        let mut routes: Vec<Option<OutPort>> = patterns.iter().map(|_| None).collect();
        for port in ctx.outports("out")? {
            match port.index().and_then(|i| routes.get_mut(i as usize)) {
                Some(slot) => *slot = Some(port),
                None => warn!(
                    "{port:?} is connected but there are only {} patterns",
                    patterns.len()
                ),
            }
        }
        let mut unmatched = Some(ctx.outport("unmatched")?);
        let input = ctx.inport("in")?;

        while let Some(ip) = input.recv()? {
            if ip.is_bracket() {
                for slot in routes.iter_mut().chain(std::iter::once(&mut unmatched)) {
                    send_to(slot, &ip)?;
                }
            } else {
                let text = ip.text_lossy();
                let chars: Vec<char> = text.chars().collect();
                let slot = match patterns.iter().position(|p| p.matches(&text, &chars)) {
                    Some(i) => &mut routes[i],
                    None => &mut unmatched,
                };
                send_to(slot, &ip)?;
            }
            if routes.iter().chain([&unmatched]).all(Option::is_none) {
                debug!("every output has closed");
                break;
            }
        }
        Ok(())
    }
}

flowd_guest::export!(ByPattern);

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str, t: &str) -> bool {
        glob_match(
            &p.chars().collect::<Vec<_>>(),
            &t.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("a*", "abc"));
        assert!(glob("*c", "abc"));
        assert!(glob("a?c", "abc"));
        assert!(glob("a*b*c", "aXXbYYbc"));
        assert!(glob("é?", "éß"));
        assert!(!glob("a?c", "ac"));
        assert!(!glob("a*d", "abc"));
        assert!(!glob("abc", "abcd"));
        assert!(glob("**a", "a"));
    }

    #[test]
    fn patterns() {
        let ps = parse_patterns(r#"["err*", "warn", "?"]"#).unwrap();
        assert_eq!(ps[1], Pattern::Substring("warn".into()));
        let first = |t: &str| {
            let chars: Vec<char> = t.chars().collect();
            ps.iter().position(|p| p.matches(t, &chars))
        };
        assert_eq!(first("error: disk"), Some(0));
        assert_eq!(first("a warning"), Some(1));
        assert_eq!(first("x"), Some(2));
        assert_eq!(first("info"), None);
        assert_eq!(
            parse_patterns(" plain ").unwrap(),
            vec![Pattern::new("plain")]
        );
        assert!(parse_patterns("[1, 2]").is_err());
    }
}
