//! Reading record data for `eval`: a JSON array, JSONL, one JSON object, or YAML.
//!
//! JSON inputs are kept as bytes and split into one slice per record, so each
//! record can be parsed sparsely (only the fields the rule reads) and printed
//! verbatim by `--filter`. YAML is converted to JSON values first.

use std::io::Read;
use std::path::Path;

use clap::ValueEnum;

/// `--data-format`
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DataFormat {
    /// Guess from the file extension, then from the first character.
    Auto,
    /// A JSON array of objects, or one JSON object.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// A YAML list of mappings, or one mapping.
    Yaml,
}

/// All records of one input.
pub struct Data {
    /// The name used in messages (`<stdin>` for `-`).
    pub name: String,
    /// The whole input.
    pub bytes: Vec<u8>,
    /// Where each record is.
    pub records: Vec<RecordSlot>,
    /// Records converted from YAML (then `records` point into `yaml_json`).
    pub yaml_json: Vec<u8>,
}

/// One record: a byte range into the input (or into the converted YAML), and its line.
#[derive(Clone, Copy, Debug)]
pub struct RecordSlot {
    /// Byte range start.
    pub start: usize,
    /// Byte range end.
    pub end: usize,
    /// 1-based line in the input where the record starts.
    pub line: usize,
}

impl Data {
    /// The bytes of a record (JSON text).
    pub fn record_bytes(&self, r: &RecordSlot) -> &[u8] {
        let src = if self.yaml_json.is_empty() {
            &self.bytes
        } else {
            &self.yaml_json
        };
        src.get(r.start..r.end).unwrap_or(b"")
    }
}

/// Read and split a data file (`-` for standard input).
pub fn load(path: &Path, format: DataFormat) -> Result<Data, String> {
    let is_stdin = path.as_os_str() == "-";
    let name = if is_stdin {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    let mut bytes = Vec::new();
    let read = if is_stdin {
        std::io::stdin().read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes))
    };
    read.map_err(|e| format!("cannot read `{name}`: {e}"))?;
    let format = match format {
        DataFormat::Auto => guess(path, &bytes),
        f => f,
    };
    let mut data = Data {
        name,
        bytes,
        records: Vec::new(),
        yaml_json: Vec::new(),
    };
    match format {
        DataFormat::Jsonl => data.records = split_lines(&data.bytes),
        DataFormat::Json | DataFormat::Auto => data.records = split_json(&data.bytes, &data.name)?,
        DataFormat::Yaml => yaml(&mut data)?,
    }
    Ok(data)
}

fn guess(path: &Path, bytes: &[u8]) -> DataFormat {
    match path.extension().and_then(|e| e.to_str()) {
        Some("jsonl" | "ndjson") => return DataFormat::Jsonl,
        Some("yaml" | "yml") => return DataFormat::Yaml,
        _ => {}
    }
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => DataFormat::Json,
        Some(b'{') => {
            // one object, or one object per line?
            let mut stream =
                serde_json::Deserializer::from_slice(bytes).into_iter::<serde::de::IgnoredAny>();
            match stream.next() {
                Some(Ok(_)) => {
                    let rest = bytes.get(stream.byte_offset()..).unwrap_or(b"");
                    if rest.iter().all(u8::is_ascii_whitespace) {
                        DataFormat::Json
                    } else {
                        DataFormat::Jsonl
                    }
                }
                _ => DataFormat::Jsonl,
            }
        }
        None => DataFormat::Jsonl,
        _ => DataFormat::Yaml,
    }
}

fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes.get(..offset).map_or(0, |b| memchr_count(b)) + 1
}

fn memchr_count(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

/// One record per non-blank line.
fn split_lines(bytes: &[u8]) -> Vec<RecordSlot> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut line = 1;
    for piece in bytes.split(|&b| b == b'\n') {
        let end = start + piece.len();
        if !piece.iter().all(u8::is_ascii_whitespace) {
            out.push(RecordSlot { start, end, line });
        }
        start = end + 1;
        line += 1;
    }
    out
}

/// A JSON array (one record per element) or a single JSON value.
fn split_json(bytes: &[u8], name: &str) -> Result<Vec<RecordSlot>, String> {
    let first = bytes.iter().position(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|i| bytes[i] == b'[') {
        let items: Vec<&serde_json::value::RawValue> = serde_json::from_slice(bytes)
            .map_err(|e| format!("{name}:{}:{}: invalid JSON: {e}", e.line(), e.column()))?;
        let base = bytes.as_ptr() as usize;
        return Ok(items
            .iter()
            .map(|raw| {
                let start = raw.get().as_ptr() as usize - base;
                let end = start + raw.get().len();
                RecordSlot {
                    start,
                    end,
                    line: line_of(bytes, start),
                }
            })
            .collect());
    }
    let start = first.unwrap_or(0);
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    Ok(vec![RecordSlot {
        start,
        end,
        line: line_of(bytes, start),
    }])
}

/// YAML: a list of mappings or one mapping, converted to compact JSON records.
fn yaml(data: &mut Data) -> Result<(), String> {
    let text = std::str::from_utf8(&data.bytes)
        .map_err(|e| format!("{}: invalid UTF-8 at byte {}", data.name, e.valid_up_to()))?;
    let value: serde_json::Value =
        serde_saphyr::from_str(text).map_err(|e| format!("{}: invalid YAML: {e}", data.name))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Null => Vec::new(),
        other => vec![other],
    };
    let mut out = Vec::new();
    for item in items {
        let start = out.len();
        serde_json::to_writer(&mut out, &item).map_err(|e| e.to_string())?;
        data.records.push(RecordSlot {
            start,
            end: out.len(),
            line: 0,
        });
        out.push(b'\n');
    }
    data.yaml_json = out;
    Ok(())
}
