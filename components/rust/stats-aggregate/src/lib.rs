//! `stats/Aggregate`: summary statistics of numbers, per substream.
//!
//! * inport `in` (number): numbers as text (`3`, `-1.5e3`), and brackets delimiting substreams;
//! * outport `out` (object): one JSON object per substream, sent when it closes:
//!   `{"count":3,"sum":6,"min":1,"max":3,"mean":2}`, with `"label"` added when the opening
//!   bracket had a label. `min`, `max` and `mean` are `null` for an empty substream.
//!
//! Substreams nest: an outer substream's statistics include those of the substreams inside it,
//! and the inner object is sent first. If data arrived outside any bracket, one more object, for
//! the whole stream, is sent at end of stream. Brackets are not forwarded: the output is one
//! object per substream.
//!
//! Data that is not a finite number is skipped with a warning. A closing bracket without an
//! opening one is ignored; substreams still open at end of stream are closed then.

use flowd_guest::{Component, Context, Ip, Port, Result, Spec, info, warn};

/// Running statistics of one substream.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Stats {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn add(&mut self, x: f64) {
        if self.count == 0 {
            (self.min, self.max) = (x, x);
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        self.count += 1;
        self.sum += x;
    }

    fn merge(&mut self, other: &Stats) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The statistics as a JSON object, with the substream's label if it has one.
    fn to_json(self, label: &[u8]) -> String {
        let opt = |x: f64| {
            if self.count == 0 {
                "null".into()
            } else {
                number(x)
            }
        };
        let mut json = format!(
            r#"{{"count":{},"sum":{},"min":{},"max":{},"mean":{}"#,
            self.count,
            number(self.sum),
            opt(self.min),
            opt(self.max),
            opt(self.sum / self.count as f64),
        );
        if !label.is_empty() {
            json.push_str(r#","label":"#);
            push_json_string(&mut json, &String::from_utf8_lossy(label));
        }
        json.push('}');
        json
    }
}

/// A JSON number; `null` for infinities (a sum can overflow).
fn number(x: f64) -> String {
    if x.is_finite() {
        x.to_string()
    } else {
        "null".into()
    }
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A finite number from a data IP's text.
fn parse_number(data: &[u8]) -> Option<f64> {
    let x: f64 = std::str::from_utf8(data).ok()?.trim().parse().ok()?;
    x.is_finite().then_some(x)
}

/// The aggregation state machine, apart from the ports so that it can be tested.
#[derive(Debug, Default)]
struct Aggregator {
    /// Open substreams, innermost last: label and statistics.
    open: Vec<(Vec<u8>, Stats)>,
    /// Everything, for the whole-stream object.
    whole: Stats,
    /// Whether data came outside any bracket.
    unbracketed: bool,
    skipped: u64,
}

impl Aggregator {
    /// Takes one IP; returns the JSON object to send, if a substream closed.
    fn feed(&mut self, ip: Ip) -> Option<String> {
        match ip {
            Ip::Data(data) => {
                match parse_number(&data) {
                    Some(x) => match self.open.last_mut() {
                        Some((_, stats)) => stats.add(x),
                        None => {
                            self.whole.add(x);
                            self.unbracketed = true;
                        }
                    },
                    None => {
                        if self.skipped == 0 {
                            warn!(
                                "skipping data that is not a number: {:?}",
                                String::from_utf8_lossy(&data)
                            );
                        }
                        self.skipped += 1;
                    }
                }
                None
            }
            Ip::Open(label) => {
                self.open.push((label, Stats::default()));
                None
            }
            Ip::Close(_) => match self.open.pop() {
                Some((label, stats)) => {
                    let parent = match self.open.last_mut() {
                        Some((_, parent)) => parent,
                        None => &mut self.whole,
                    };
                    parent.merge(&stats);
                    Some(stats.to_json(&label))
                }
                None => {
                    warn!("ignoring a closing bracket without an opening one");
                    None
                }
            },
        }
    }

    /// At end of stream: the objects still to send.
    fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.open.is_empty() {
            warn!(
                "{} substream(s) still open at end of stream",
                self.open.len()
            );
        }
        while !self.open.is_empty() {
            out.extend(self.feed(Ip::Close(Vec::new())));
        }
        if self.unbracketed {
            out.push(self.whole.to_json(b""));
        }
        if self.skipped > 0 {
            info!("skipped {} data IP(s) that were not numbers", self.skipped);
        }
        out
    }
}

struct Aggregate;

impl Component for Aggregate {
    fn describe() -> Spec {
        Spec::new(
            "stats/Aggregate",
            "Sends count, sum, min, max and mean of the numbers of each substream",
        )
        .icon("calculator")
        .inport(Port::new(
            "in",
            "number",
            "Numbers, in bracketed substreams",
        ))
        .outport(Port::new(
            "out",
            "object",
            "Statistics, one object per substream",
        ))
    }

    fn run(ctx: &mut Context) -> Result<()> {
        let (input, output) = (ctx.inport("in")?, ctx.outport("out")?);
        let mut agg = Aggregator::default();
        while let Some(ip) = input.recv()? {
            if let Some(json) = agg.feed(ip) {
                output.send_data(json)?;
            }
        }
        for json in agg.finish() {
            output.send_data(json)?;
        }
        Ok(())
    }
}

flowd_guest::export!(Aggregate);

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ips: Vec<Ip>) -> Vec<String> {
        let mut agg = Aggregator::default();
        let mut out: Vec<String> = ips.into_iter().filter_map(|ip| agg.feed(ip)).collect();
        out.extend(agg.finish());
        out
    }

    #[test]
    fn one_object_per_substream() {
        let out = run(vec![
            Ip::open("a"),
            Ip::data("1"),
            Ip::data(" 2 "),
            Ip::data("3"),
            Ip::close("a"),
            Ip::open(""),
            Ip::close(""),
        ]);
        assert_eq!(
            out,
            vec![
                r#"{"count":3,"sum":6,"min":1,"max":3,"mean":2,"label":"a"}"#,
                r#"{"count":0,"sum":0,"min":null,"max":null,"mean":null}"#,
            ]
        );
    }

    #[test]
    fn nesting_and_whole_stream() {
        let out = run(vec![
            Ip::data("10"),
            Ip::open("outer"),
            Ip::data("-1.5"),
            Ip::open("in\"ner"),
            Ip::data("4"),
            Ip::close(""),
            Ip::close(""),
        ]);
        assert_eq!(
            out,
            vec![
                r#"{"count":1,"sum":4,"min":4,"max":4,"mean":4,"label":"in\"ner"}"#,
                r#"{"count":2,"sum":2.5,"min":-1.5,"max":4,"mean":1.25,"label":"outer"}"#,
                r#"{"count":3,"sum":12.5,"min":-1.5,"max":10,"mean":4.166666666666667}"#,
            ]
        );
    }

    #[test]
    fn skips_bad_data_and_closes_at_end() {
        let out = run(vec![
            Ip::close(""),
            Ip::open(""),
            Ip::data("x"),
            Ip::data("NaN"),
            Ip::data("2"),
        ]);
        assert_eq!(out, vec![r#"{"count":1,"sum":2,"min":2,"max":2,"mean":2}"#]);
        assert!(run(vec![]).is_empty(), "nothing for an empty stream");
    }
}
