//! `csv/Parse` and `csv/Write`: CSV text to JSON records and back.

use csv_core::{ReadRecordResult, Reader, ReaderBuilder};
use serde_json::{Map, Value};

use super::setting::Setting;
use super::{NativeComponent, error_port, reject};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{OutPort, ProcessContext, ProcessError};
use crate::ip::{Ip, Payload};

/// A record longer than this is refused (most often an opening quote that never closes), so
/// that one bad file cannot take the process's memory.
const MAX_RECORD: usize = 16 * 1024 * 1024;

/// Parses the CSV text on `in` into one JSON record per row on `out`.
///
/// The data IPs of a stream are one document, in pieces of any size: a whole file, or its
/// lines as `core/ReadLines` sends them (a piece that does not end with a newline gets one), so
/// a quoted field may span pieces. With `header` true (the default) the first row names the
/// fields and each later row becomes an object (fields beyond the names are keyed by their
/// column number, from 1); with `header` false each row becomes an array of strings. Values
/// stay text. `delimiter` is one byte (default `,`). A bracket on `in` ends the document (its
/// last row is sent, and the next row is a header again) and is forwarded. A record over
/// 16 MiB goes to `error`, or ends the process if `error` is not connected.
#[derive(Default)]
pub struct Parse;

impl NativeComponent for Parse {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("csv/Parse", "Parses CSV text into one record per row")
            .icon("table")
            .inport(PortSpec::new(
                "in",
                "string",
                "CSV text: whole, or in lines",
            ))
            .inport(header_port(
                "Whether the first row names the fields (default true)",
            ))
            .inport(delimiter_port())
            .outport(PortSpec::new(
                "out",
                "object",
                "One record per row: an object, or an array without a header",
            ))
            .outport(error_port())
    }
}

impl Component for Parse {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let header = Setting::read(ctx, "header", flag, || Ok(true))?.into_value();
        let delimiter = Setting::read(ctx, "delimiter", delimiter, || Ok(b','))?.into_value();
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        let errors = ctx.outport("error")?;
        let mut document = Document::new(delimiter, header);
        while let Some(ip) = ctx.recv(input)? {
            match ip {
                Ip::Data(text) => {
                    let mut piece = text.as_bytes().to_vec();
                    if !piece.ends_with(b"\n") {
                        piece.push(b'\n');
                    }
                    document.feed(ctx, output, errors, &piece, &text)?;
                }
                bracket => {
                    document.feed(ctx, output, errors, &[], bracket.payload())?;
                    document = Document::new(delimiter, header);
                    ctx.send(output, bracket)?;
                }
            }
        }
        document.feed(ctx, output, errors, &[], &Payload::from(""))
    }
}

/// The state of one CSV document being parsed.
struct Document {
    reader: Reader,
    /// Whether the next record is the header.
    header_next: bool,
    names: Option<Vec<String>>,
    /// The record being read: its bytes and where each field ends.
    bytes: Vec<u8>,
    ends: Vec<usize>,
    bytes_used: usize,
    ends_used: usize,
}

impl Document {
    fn new(delimiter: u8, header: bool) -> Document {
        Document {
            reader: ReaderBuilder::new().delimiter(delimiter).build(),
            header_next: header,
            names: None,
            bytes: vec![0; 1024],
            ends: vec![0; 64],
            bytes_used: 0,
            ends_used: 0,
        }
    }

    /// Parses `piece` (empty at the end of the document) and sends each row it completes.
    fn feed(
        &mut self,
        ctx: &mut ProcessContext,
        output: OutPort,
        errors: OutPort,
        mut piece: &[u8],
        source: &Payload,
    ) -> Result<(), ProcessError> {
        loop {
            let (result, read, written, ended) = self.reader.read_record(
                piece,
                &mut self.bytes[self.bytes_used..],
                &mut self.ends[self.ends_used..],
            );
            piece = &piece[read..];
            self.bytes_used += written;
            self.ends_used += ended;
            match result {
                ReadRecordResult::InputEmpty | ReadRecordResult::End => return Ok(()),
                ReadRecordResult::OutputFull if self.bytes.len() >= MAX_RECORD => {
                    self.bytes_used = 0;
                    self.ends_used = 0;
                    let reason = format!(
                        "a CSV record is longer than {} MiB (is a quote left open?)",
                        MAX_RECORD >> 20
                    );
                    return reject(ctx, errors, source, reason);
                }
                ReadRecordResult::OutputFull => self.bytes.resize(self.bytes.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                ReadRecordResult::Record => {
                    let fields = self.take_fields();
                    if let Some(row) = self.row(fields) {
                        ctx.send(output, Ip::Data(Payload::from_json(&row)))?;
                    }
                }
            }
        }
    }

    /// The fields of the record just read, as text.
    fn take_fields(&mut self) -> Vec<String> {
        let mut start = 0;
        let fields = self.ends[..self.ends_used]
            .iter()
            .map(|&end| {
                let field = String::from_utf8_lossy(&self.bytes[start..end]).into_owned();
                start = end;
                field
            })
            .collect();
        self.bytes_used = 0;
        self.ends_used = 0;
        fields
    }

    /// The JSON record for `fields`, or `None` when they were the header.
    fn row(&mut self, fields: Vec<String>) -> Option<Value> {
        if self.header_next {
            self.header_next = false;
            self.names = Some(fields);
            return None;
        }
        let Some(names) = &self.names else {
            return Some(Value::Array(
                fields.into_iter().map(Value::String).collect(),
            ));
        };
        let mut record = Map::new();
        for (i, field) in fields.into_iter().enumerate() {
            let name = names.get(i).cloned().unwrap_or_else(|| (i + 1).to_string());
            record.insert(name, Value::String(field));
        }
        Some(Value::Object(record))
    }
}

/// Writes the JSON records on `in` as CSV rows on `out`, one line per IP (without its line
/// ending, as `core/WriteLines` adds one; a field holding a newline is quoted and keeps it).
///
/// The columns are `columns` when set (a JSON array of names, or names separated by commas),
/// or else the fields of the first object. With `header` true (the default) a line of the
/// column names comes first. An object gives its values in column order (a missing one is
/// empty), an array its items in order, any other value a one-field row. Text stays text,
/// `null` is empty, other values are written as JSON. `delimiter` is one byte (default `,`).
/// A bracket on `in` ends the document (the next row comes after a header again) and is
/// forwarded.
#[derive(Default)]
pub struct Write;

impl NativeComponent for Write {
    fn spec() -> ComponentSpec {
        ComponentSpec::new("csv/Write", "Writes records as CSV rows")
            .icon("table")
            .inport(PortSpec::new("in", "object", "Records: objects or arrays"))
            .inport(PortSpec::new(
                "columns",
                "array",
                "The columns, in order (default: the fields of the first object)",
            ))
            .inport(header_port(
                "Whether a line of column names comes first (default true)",
            ))
            .inport(delimiter_port())
            .outport(PortSpec::new("out", "string", "CSV lines"))
    }
}

impl Component for Write {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let fixed = Setting::read(ctx, "columns", columns, || Ok(None))?.into_value();
        let header = Setting::read(ctx, "header", flag, || Ok(true))?.into_value();
        let delimiter = Setting::read(ctx, "delimiter", delimiter, || Ok(b','))?.into_value();
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        let line = |fields: &mut dyn Iterator<Item = String>| -> Result<Ip, ProcessError> {
            let mut writer = ::csv::WriterBuilder::new()
                .delimiter(delimiter)
                .terminator(::csv::Terminator::Any(b'\n'))
                .from_writer(Vec::new());
            writer.write_record(fields)?;
            let mut text = writer
                .into_inner()
                .map_err(|e| ProcessError::failed(e.to_string()))?;
            text.pop();
            Ok(Ip::data(text))
        };
        // The document's columns, once known, and whether its header went out.
        let mut current = fixed.clone();
        let mut started = false;
        while let Some(ip) = ctx.recv(input)? {
            let Ip::Data(payload) = &ip else {
                current = fixed.clone();
                started = false;
                ctx.send(output, ip)?;
                continue;
            };
            let record = payload.to_json();
            if !started {
                started = true;
                if current.is_none()
                    && let Value::Object(fields) = &record
                {
                    current = Some(fields.keys().cloned().collect());
                }
                if let (true, Some(names)) = (header, &current) {
                    let names = line(&mut names.iter().cloned())?;
                    ctx.send(output, names)?;
                }
            }
            let fields: Vec<String> = match (&record, &current) {
                (Value::Object(fields), Some(names)) => names
                    .iter()
                    .map(|name| fields.get(name).map(cell).unwrap_or_default())
                    .collect(),
                (Value::Object(fields), None) => fields.values().map(cell).collect(),
                (Value::Array(items), _) => items.iter().map(cell).collect(),
                (other, _) => vec![cell(other)],
            };
            let row = line(&mut fields.into_iter())?;
            ctx.send(output, row)?;
        }
        Ok(())
    }
}

/// A value as the text of one CSV field.
fn cell(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn header_port(description: &str) -> PortSpec {
    PortSpec::new("header", "boolean", description)
}

fn delimiter_port() -> PortSpec {
    PortSpec::new(
        "delimiter",
        "string",
        "The byte between fields (default ,; \\t for tabs)",
    )
}

/// `true` or `false`, the setting of inport `name`.
fn flag(name: &'static str, value: Payload) -> Result<bool, ProcessError> {
    match value.to_string_lossy().trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(ProcessError::failed(format!(
            "inport '{name}': invalid value '{other}': expected true or false"
        ))),
    }
}

/// One byte (`\t` for a tab), the setting of inport `name`.
fn delimiter(name: &'static str, value: Payload) -> Result<u8, ProcessError> {
    match value.as_bytes() {
        b"\\t" => Ok(b'\t'),
        [byte] if *byte != b'"' && *byte != b'\n' && *byte != b'\r' => Ok(*byte),
        _ => Err(ProcessError::failed(format!(
            "inport '{name}': invalid value '{}': expected one character (not a quote or a \
             line break)",
            value.to_string_lossy()
        ))),
    }
}

/// Column names, the setting of inport `name`: a JSON array of strings, or names separated by
/// commas.
fn columns(name: &'static str, value: Payload) -> Result<Option<Vec<String>>, ProcessError> {
    let names: Vec<String> = match value.to_json() {
        Value::Array(items) => items.iter().map(cell).collect(),
        Value::String(text) => text.split(',').map(|n| n.trim().to_string()).collect(),
        other => {
            return Err(ProcessError::failed(format!(
                "inport '{name}': invalid value '{other}': expected an array of column names"
            )));
        }
    };
    Ok(Some(names))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::*;

    #[test]
    fn parses_rows_into_records_named_by_the_header() {
        let text = "name,age,note\nada,36,\"likes, commas\"\nbob,7\n";
        let lines = lines_through("csv/Parse", &[], vec![data(text)]);
        assert_eq!(
            lines,
            strings(&[
                r#"{"name":"ada","age":"36","note":"likes, commas"}"#,
                r#"{"name":"bob","age":"7"}"#,
            ])
        );
    }

    #[test]
    fn a_quoted_field_may_span_lines_sent_one_by_one() {
        let pieces = ["a;b", "1;\"two", "lines\"", "3;4"];
        let lines = lines_through(
            "csv/Parse",
            &[("header", json!(false)), ("delimiter", json!(";"))],
            pieces.iter().map(|p| data(p)).collect(),
        );
        assert_eq!(
            lines,
            strings(&[r#"["a","b"]"#, r#"["1","two\nlines"]"#, r#"["3","4"]"#])
        );
    }

    #[test]
    fn each_substream_is_a_document_with_its_own_header() {
        let lines = lines_through(
            "csv/Parse",
            &[],
            vec![
                open("f1"),
                data("x\n1"),
                close("f1"),
                open("f2"),
                data("y\n2"),
                close("f2"),
            ],
        );
        assert_eq!(
            lines,
            strings(&[
                "< f1",
                r#"{"x":"1"}"#,
                "> f1",
                "< f2",
                r#"{"y":"2"}"#,
                "> f2"
            ])
        );
    }

    #[test]
    fn writes_records_with_a_header_and_quotes_where_needed() {
        let lines = lines_through(
            "csv/Write",
            &[],
            vec![
                data(r#"{"name":"ada","n":1,"ok":true}"#),
                data(r#"{"n":2.5,"name":"b, \"c\"","x":null}"#),
                data(r#"["p",null,[1]]"#),
            ],
        );
        assert_eq!(
            lines,
            strings(&["name,n,ok", "ada,1,true", r#""b, ""c""",2.5,"#, r#"p,,[1]"#])
        );
    }

    #[test]
    fn written_rows_parse_back_to_the_same_records() {
        let records = [r#"{"a":"1","b":"two\nlines"}"#, r#"{"a":"x,y","b":""}"#];
        let written = lines_through(
            "csv/Write",
            &[("columns", json!(["a", "b"])), ("delimiter", json!("\\t"))],
            records.iter().map(|r| data(r)).collect(),
        );
        let parsed = lines_through(
            "csv/Parse",
            &[("delimiter", json!("\\t"))],
            written.iter().map(|l| data(l)).collect(),
        );
        assert_eq!(parsed, strings(&records));
    }

    #[test]
    fn an_unclosed_quote_is_refused_before_it_takes_the_memory() {
        let big = "x".repeat(1 << 20);
        let mut ips = vec![data("h"), data("\"open")];
        ips.extend((0..20).map(|_| data(&big)));
        let errors = errors_through("csv/Parse", &[], ips);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].1.contains("quote"), "{errors:?}");
    }

    #[test]
    fn bad_settings_are_errors_naming_the_port() {
        let errors = errors_through("csv/Parse", &[("delimiter", json!(",,"))], vec![]);
        assert!(errors[0].1.contains("'delimiter'"), "{errors:?}");
        let errors = errors_through("csv/Write", &[("header", json!("yes"))], vec![]);
        assert!(errors[0].1.contains("'header'"), "{errors:?}");
    }
}
