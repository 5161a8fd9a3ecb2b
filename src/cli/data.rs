//! Reading record data for `eval`: a JSON array, JSONL, one JSON object, or YAML.
//!
//! JSON inputs are kept as bytes and split into one slice per record, so each
//! record can be parsed sparsely (only the fields the rule reads) and printed
//! verbatim by `--filter`. YAML is converted to JSON values first.
//!
//! JSON lines larger than one chunk ([`CHUNK_BYTES`]) are not read whole: [`open`]
//! hands back a [`LineReader`] that reads them in chunks cut at line boundaries,
//! so `eval` runs in bounded memory whatever the size of the input. A JSON array,
//! a single object and YAML are documents, read whole.

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
    /// The whole input (YAML input: converted to JSON lines).
    pub bytes: Vec<u8>,
    /// How records are laid out in `bytes`.
    pub layout: Layout,
}

/// Where the records are.
pub enum Layout {
    /// One record per non-blank line; split (and checked as UTF-8) by the
    /// workers, each on its own share of the lines.
    Lines,
    /// Records found while loading; `bytes` is already checked as UTF-8.
    Slots(Vec<RecordSlot>),
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
    /// Split the records into about `n` shares of similar size, in input order.
    pub fn shares(&self, n: usize) -> Vec<Share<'_>> {
        match &self.layout {
            Layout::Slots(slots) => {
                let size = slots.len().div_ceil(n.max(1)).max(1);
                slots.chunks(size).map(Share::Slots).collect()
            }
            Layout::Lines => {
                let len = self.bytes.len();
                let mut out = Vec::new();
                let mut start = 0;
                for i in 1..=n.max(1) {
                    let target = len * i / n.max(1);
                    // cut just after a newline, so every share holds whole lines
                    let end = if i == n.max(1) {
                        len
                    } else {
                        match memchr::memchr(b'\n', self.bytes.get(target..).unwrap_or(b"")) {
                            Some(k) => target + k + 1,
                            None => len,
                        }
                    };
                    if end > start {
                        out.push(Share::Lines { start, end });
                        start = end;
                    }
                }
                out
            }
        }
    }

    /// The 1-based line where byte `offset` lies.
    pub fn line_at(&self, offset: usize) -> usize {
        line_of(&self.bytes, offset)
    }
}

/// The text of a record in the bytes it was found in (empty if not UTF-8,
/// which [`Share::for_each`] reported).
pub fn record_text<'b>(bytes: &'b [u8], r: &RecordSlot) -> &'b str {
    std::str::from_utf8(bytes.get(r.start..r.end).unwrap_or(b"")).unwrap_or("")
}

/// A share of the records for one worker.
pub enum Share<'a> {
    /// Records already located.
    Slots(&'a [RecordSlot]),
    /// The lines in this byte range.
    Lines {
        /// First byte.
        start: usize,
        /// One past the last byte.
        end: usize,
    },
}

impl Share<'_> {
    /// Visit each record of the share in order with its text. Lines are checked
    /// as UTF-8 here; an invalid line is handed over as an error. Returns the
    /// number of line ends in a share of lines (0 for located records).
    pub fn for_each<'d>(
        &self,
        bytes: &'d [u8],
        mut f: impl FnMut(RecordSlot, Result<&'d str, String>),
    ) -> usize {
        match self {
            Share::Slots(slots) => {
                for slot in *slots {
                    let text = std::str::from_utf8(bytes.get(slot.start..slot.end).unwrap_or(b""))
                        .map_err(|e| {
                            format!("invalid UTF-8 at byte {}", slot.start + e.valid_up_to())
                        });
                    f(*slot, text);
                }
                0
            }
            Share::Lines { start, end } => {
                let chunk = bytes.get(*start..*end).unwrap_or(b"");
                let mut from = 0;
                let mut visit = |a: usize, b: usize| {
                    let piece = chunk.get(a..b).unwrap_or(b"");
                    if !piece.iter().all(u8::is_ascii_whitespace) {
                        let slot = RecordSlot {
                            start: start + a,
                            end: start + b,
                            line: 0,
                        };
                        let text = std::str::from_utf8(piece).map_err(|e| {
                            format!("invalid UTF-8 at byte {}", start + a + e.valid_up_to())
                        });
                        f(slot, text);
                    }
                };
                let mut n_lines = 0;
                for nl in memchr::memchr_iter(b'\n', chunk) {
                    visit(from, nl);
                    from = nl + 1;
                    n_lines += 1;
                }
                visit(from, chunk.len());
                n_lines
            }
        }
    }
}

/// A data file that cannot be read: where (file, line, column) and why.
#[derive(Debug)]
pub struct LoadError {
    /// The name of the input (`<stdin>` for `-`).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl LoadError {
    fn new(file: &str, line: Option<usize>, column: Option<usize>, message: String) -> LoadError {
        LoadError {
            file: file.to_string(),
            line,
            column,
            message,
        }
    }
}

/// How much of JSON lines is read at a time: an input no larger is read whole.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Longest line accepted in JSON lines read in chunks: a chunk grows to hold a
/// longer line up to this size, so memory stays bounded.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// An opened input: read whole, or JSON lines still to be read in chunks.
pub enum Input {
    /// The whole input, split into records.
    Whole(Data),
    /// JSON lines larger than one chunk.
    Lines(LineReader),
}

/// JSON lines read in chunks that end at a line end (the last one at the end
/// of the input).
pub struct LineReader {
    /// The name used in messages (`<stdin>` for `-`).
    pub name: String,
    src: Box<dyn Read + Send>,
    /// Read but not yet handed out: the start of a line the last chunk cut.
    carry: Vec<u8>,
    done: bool,
    /// A pipe or a terminal (not a regular file): hand out the lines read so far
    /// as soon as there is one, instead of waiting for a full chunk.
    streaming: bool,
    /// The size of the input in bytes, when it is a regular file.
    pub size: Option<u64>,
}

impl LineReader {
    /// Fill `buf` with the next chunk of whole lines; returns its length in
    /// bytes (`buf` itself keeps its size, so a reused buffer is never zeroed
    /// again), or `None` at the end of the input. After an error (a read
    /// failed, or a line is longer than [`MAX_LINE_BYTES`]) there are no more chunks.
    pub fn next_chunk(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>, String> {
        if self.done {
            return Ok(None);
        }
        let mut len = self.carry.len();
        if buf.len() < CHUNK_BYTES.max(len) {
            buf.resize(CHUNK_BYTES.max(len), 0);
        }
        buf[..len].copy_from_slice(&self.carry);
        self.carry.clear();
        let mut eof = false;
        // bytes before this were searched for a line end (streaming)
        let mut searched = 0;
        loop {
            if self.streaming
                && let Some(k) = memchr::memrchr(b'\n', &buf[searched..len])
            {
                let k = searched + k;
                self.carry.extend_from_slice(&buf[k + 1..len]);
                return Ok(Some(k + 1));
            }
            searched = len;
            while !eof && len < buf.len() {
                match self.src.read(&mut buf[len..]) {
                    Ok(0) => eof = true,
                    Ok(n) => len += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.done = true;
                        return Err(format!("cannot read `{}`: {e}", self.name));
                    }
                }
                if self.streaming {
                    // what has arrived is evaluated now (`tail -f`)
                    break;
                }
            }
            if eof {
                self.done = true;
                return Ok((len > 0).then_some(len));
            }
            if len < buf.len() {
                continue;
            }
            match memchr::memrchr(b'\n', &buf[..len]) {
                Some(k) => {
                    self.carry.extend_from_slice(&buf[k + 1..len]);
                    return Ok(Some(k + 1));
                }
                None if buf.len() >= MAX_LINE_BYTES => {
                    self.done = true;
                    return Err(format!(
                        "a line longer than {} MiB: JSON lines are read in chunks of whole lines",
                        MAX_LINE_BYTES >> 20
                    ));
                }
                None => buf.resize((buf.len() * 2).min(MAX_LINE_BYTES), 0),
            }
        }
    }

    /// True when lines are handed out as they arrive (a pipe, not a file).
    pub fn streaming(&self) -> bool {
        self.streaming
    }
}

/// Read up to `limit` bytes into `buf`; true when the input ended.
fn read_up_to(src: &mut dyn Read, buf: &mut Vec<u8>, limit: usize) -> std::io::Result<bool> {
    let n = src.take(limit as u64).read_to_end(buf)?;
    Ok(n < limit)
}

/// Open a data file (`-` for standard input): JSON lines larger than one chunk
/// are handed back to be read in chunks, anything else is read and split whole.
/// JSON lines from a pipe (anything but a regular file) are handed back as soon
/// as the first line tells the format, to be evaluated as they arrive.
pub fn open(path: &Path, format: DataFormat) -> Result<Input, LoadError> {
    let is_stdin = path.as_os_str() == "-";
    let name = if is_stdin {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    let cannot =
        |e: std::io::Error| LoadError::new(&name, None, None, format!("cannot read `{name}`: {e}"));
    let (mut src, size): (Box<dyn Read + Send>, Option<u64>) = if is_stdin {
        (Box::new(std::io::stdin()), stdin_file_size())
    } else {
        let file = std::fs::File::open(path).map_err(cannot)?;
        let size = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        (Box::new(file), size)
    };
    let streaming = size.is_none();
    let mut bytes = Vec::with_capacity(CHUNK_BYTES);
    let (ended, known) = if streaming {
        read_until_known(&mut src, &mut bytes, path, format).map_err(cannot)?
    } else {
        let ended = read_up_to(&mut src, &mut bytes, CHUNK_BYTES).map_err(cannot)?;
        strip_bom(&mut bytes);
        (ended, known_format(path, &bytes, format))
    };
    if !ended {
        if known == Some(DataFormat::Jsonl) {
            return Ok(Input::Lines(LineReader {
                name,
                src,
                carry: bytes,
                done: false,
                streaming,
                size,
            }));
        }
        src.read_to_end(&mut bytes).map_err(cannot)?;
    }
    from_bytes(name, path, bytes, format).map(Input::Whole)
}

/// A UTF-8 byte order mark (common from Windows tools) is not part of the data.
fn strip_bom(bytes: &mut Vec<u8>) {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
}

/// The format when the start of the input tells it (`None`: read more).
fn known_format(path: &Path, start: &[u8], format: DataFormat) -> Option<DataFormat> {
    match format {
        DataFormat::Auto => guess(path, start, false),
        f => Some(f),
    }
}

/// From a pipe: read as it arrives until the format is known (JSON lines: the
/// first line is whole), the input ended, or one chunk was read. A first line
/// that is one whole JSON value is JSON lines (as one object, it is the same record).
fn read_until_known(
    src: &mut dyn Read,
    bytes: &mut Vec<u8>,
    path: &Path,
    format: DataFormat,
) -> std::io::Result<(bool, Option<DataFormat>)> {
    let mut piece = vec![0; 64 << 10];
    loop {
        let n = match src.read(&mut piece) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        bytes.extend_from_slice(&piece[..n]);
        if bytes.len() == n {
            strip_bom(bytes);
        }
        if n == 0 {
            return Ok((true, None));
        }
        let Some(nl) = memchr::memchr(b'\n', bytes) else {
            if bytes.len() >= CHUNK_BYTES {
                return Ok((false, known_format(path, bytes, format)));
            }
            continue;
        };
        let known = known_format(path, bytes, format).or_else(|| {
            let first = &bytes[..nl];
            serde_json::from_slice::<serde::de::IgnoredAny>(first)
                .is_ok()
                .then_some(DataFormat::Jsonl)
        });
        if known.is_some() || bytes.len() >= CHUNK_BYTES {
            return Ok((false, known));
        }
    }
}

/// The size of standard input when it is a regular file (`< data.jsonl`),
/// read in full chunks; `None` for a pipe or a terminal, whose records are
/// evaluated as they arrive.
fn stdin_file_size() -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map(std::fs::File::from)
            .and_then(|f| f.metadata())
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Read and split a whole data file (`-` for standard input).
pub fn load(path: &Path, format: DataFormat) -> Result<Data, LoadError> {
    match open(path, format)? {
        Input::Whole(data) => Ok(data),
        Input::Lines(mut lines) => {
            let mut bytes = std::mem::take(&mut lines.carry);
            let name = lines.name;
            lines.src.read_to_end(&mut bytes).map_err(|e| {
                LoadError::new(&name, None, None, format!("cannot read `{name}`: {e}"))
            })?;
            Ok(Data {
                name,
                bytes,
                layout: Layout::Lines,
            })
        }
    }
}

/// Split a whole input (its byte order mark removed) into records.
fn from_bytes(
    name: String,
    path: &Path,
    bytes: Vec<u8>,
    format: DataFormat,
) -> Result<Data, LoadError> {
    let format = match format {
        DataFormat::Auto => guess(path, &bytes, true).unwrap_or(DataFormat::Jsonl),
        f => f,
    };
    if format == DataFormat::Jsonl {
        return Ok(Data {
            name,
            bytes,
            layout: Layout::Lines,
        });
    }
    if let Err(e) = std::str::from_utf8(&bytes) {
        let at = e.valid_up_to();
        let line = line_of(&bytes, at);
        return Err(LoadError::new(
            &name,
            Some(line),
            None,
            format!("invalid UTF-8 at byte {at}"),
        ));
    }
    if format == DataFormat::Yaml {
        return yaml(name, &bytes);
    }
    let slots = split_json(&bytes, &name)?;
    Ok(Data {
        name,
        bytes,
        layout: Layout::Slots(slots),
    })
}

/// The format of an input from its extension, else its first character; for
/// `{`, one object or one object per line. `complete` says `bytes` is the whole
/// input; when it is only the start, `None` means the start does not tell.
fn guess(path: &Path, bytes: &[u8], complete: bool) -> Option<DataFormat> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("jsonl" | "ndjson") => return Some(DataFormat::Jsonl),
        Some("yaml" | "yml") => return Some(DataFormat::Yaml),
        _ => {}
    }
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => Some(DataFormat::Json),
        Some(b'{') => {
            // one object, or one object per line?
            let mut stream =
                serde_json::Deserializer::from_slice(bytes).into_iter::<serde::de::IgnoredAny>();
            match stream.next() {
                Some(Ok(_)) => {
                    let rest = bytes.get(stream.byte_offset()..).unwrap_or(b"");
                    if rest.iter().all(u8::is_ascii_whitespace) {
                        complete.then_some(DataFormat::Json)
                    } else {
                        Some(DataFormat::Jsonl)
                    }
                }
                Some(Err(e)) if e.is_eof() && !complete => None,
                _ => Some(DataFormat::Jsonl),
            }
        }
        None => complete.then_some(DataFormat::Jsonl),
        _ => Some(DataFormat::Yaml),
    }
}

pub(super) fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes
        .get(..offset)
        .map_or(0, |b| memchr::memchr_iter(b'\n', b).count())
        + 1
}

/// A JSON array (one record per element) or a single JSON value.
fn split_json(bytes: &[u8], name: &str) -> Result<Vec<RecordSlot>, LoadError> {
    let first = bytes.iter().position(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|i| bytes[i] == b'[') {
        let items: Vec<&serde_json::value::RawValue> =
            serde_json::from_slice(bytes).map_err(|e| {
                LoadError::new(
                    name,
                    Some(e.line()),
                    Some(e.column()),
                    format!("invalid JSON: {}", super::render::json_message(&e)),
                )
            })?;
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
fn yaml(name: String, bytes: &[u8]) -> Result<Data, LoadError> {
    let text = std::str::from_utf8(bytes).unwrap_or("");
    let value: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| {
        let location = e.location();
        // the first line of saphyr's message, without its own position: the fields carry it
        let message = e.to_string();
        let first = message.lines().next().unwrap_or("");
        let first = first.strip_prefix("error: ").unwrap_or(first);
        let first = match first.strip_prefix("line ") {
            Some(rest) if rest.contains(" column ") => {
                rest.split_once(": ").map_or(first, |(_, tail)| tail)
            }
            _ => first,
        };
        LoadError::new(
            &name,
            location.map(|l| l.line() as usize).filter(|l| *l > 0),
            location.map(|l| l.column() as usize).filter(|c| *c > 0),
            format!("invalid YAML: {first}"),
        )
    })?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Null => Vec::new(),
        other => vec![other],
    };
    let mut out = String::new();
    let mut slots = Vec::new();
    for item in items {
        let start = out.len();
        out.push_str(&item.to_string());
        slots.push(RecordSlot {
            start,
            end: out.len(),
            line: 0,
        });
        out.push('\n');
    }
    Ok(Data {
        name,
        bytes: out.into_bytes(),
        layout: Layout::Slots(slots),
    })
}
