//! Reading a dataset's sources into records: text files, folders, JSONL, CSV/TSV, pair files
//! and the built-in generators. Every error names the file and, where there is one, the line.

use super::record::Record;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// How a text file is cut into documents (the unit of de-duplication and of a random split); on
/// the command line `whole`, `paragraphs` and `lines`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DocSplit {
    /// The whole file is one document.
    #[default]
    Whole,
    /// Paragraphs separated by blank lines.
    Paragraphs,
    /// Every non-empty line.
    Lines,
}

impl DocSplit {
    /// Every way to cut, in the order the studio lists them.
    pub const ALL: [DocSplit; 3] = [DocSplit::Whole, DocSplit::Paragraphs, DocSplit::Lines];

    /// The name shown in the studio.
    pub fn label(self) -> &'static str {
        match self {
            DocSplit::Whole => "whole file",
            DocSplit::Paragraphs => "paragraphs",
            DocSplit::Lines => "lines",
        }
    }
}

/// The built-in generators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Generator {
    /// Generated story sentences, one document per line.
    Stories,
    /// Invented functions with documentation, paraphrased instructions and calls.
    ApiZoo,
    /// Small classification tasks with checkable rules.
    ClassTasks,
    /// Documents on invented topics that link to each other with `[[wiki links]]`.
    LinkedDocs,
    /// Additions and subtractions of 1-3 digit numbers, with a checker.
    Arithmetic,
    /// Letters to sort alphabetically, with a checker.
    SortLetters,
}

impl Generator {
    /// Every generator, in the order the studio lists them.
    pub const ALL: [Generator; 6] = [
        Generator::Stories,
        Generator::ApiZoo,
        Generator::ClassTasks,
        Generator::LinkedDocs,
        Generator::Arithmetic,
        Generator::SortLetters,
    ];

    /// The generator's name, as `gen:NAME` sources and the studio write it.
    pub fn label(self) -> &'static str {
        match self {
            Generator::Stories => "stories",
            Generator::ApiZoo => "api_zoo",
            Generator::ClassTasks => "class_tasks",
            Generator::LinkedDocs => "linked_docs",
            Generator::Arithmetic => "arithmetic",
            Generator::SortLetters => "sort_letters",
        }
    }

    /// The generator named `text` ([`Generator::label`]).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.label() == text)
    }

    /// What `size` counts for this generator, and its default.
    pub fn size_unit(self) -> (&'static str, usize) {
        match self {
            Generator::Stories => ("characters", 200_000),
            Generator::ApiZoo => ("functions", 300),
            Generator::ClassTasks => ("examples per task", 200),
            Generator::LinkedDocs => ("documents", 120),
            Generator::Arithmetic => ("problems", 6000),
            Generator::SortLetters => ("problems", 6000),
        }
    }
}

/// One source of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceKind {
    /// A UTF-8 text file.
    Text {
        /// The file.
        path: PathBuf,
        /// How the file is cut into documents.
        #[serde(default)]
        documents: DocSplit,
    },
    /// Every file under a folder (recursively) whose name matches `glob` (`*` and `?`;
    /// several patterns separated by `;`).
    Folder {
        /// The folder.
        path: PathBuf,
        /// File name patterns.
        glob: String,
        /// How each file is cut into documents.
        #[serde(default)]
        documents: DocSplit,
    },
    /// JSON lines; `fields` are the keys kept (empty: every key), in that order.
    Jsonl {
        /// The file.
        path: PathBuf,
        /// Keys kept, in order.
        fields: Vec<String>,
    },
    /// CSV (or TSV when the name ends in `.tsv`) with a header row; `columns` are kept (empty:
    /// every column).
    Table {
        /// The file.
        path: PathBuf,
        /// Columns kept, in order.
        columns: Vec<String>,
    },
    /// A pairs file (TSV `a<TAB>b[<TAB>third]` or JSONL), as the contrastive objective reads it;
    /// records have fields `a` and `b`.
    Pairs {
        /// The file.
        path: PathBuf,
    },
    /// A built-in generator.
    Generated {
        /// Which generator.
        generator: Generator,
        /// Its seed.
        seed: u64,
        /// How much it generates ([`Generator::size_unit`]).
        size: usize,
    },
}

impl SourceKind {
    /// A short name for lists and statistics.
    pub fn describe(&self) -> String {
        let name = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string())
        };
        match self {
            SourceKind::Text { path, .. } => name(path),
            SourceKind::Folder { path, glob, .. } => format!("{}/{glob}", name(path)),
            SourceKind::Jsonl { path, .. } | SourceKind::Table { path, .. } => name(path),
            SourceKind::Pairs { path } => format!("pairs {}", name(path)),
            SourceKind::Generated {
                generator, size, ..
            } => format!("{} ({size})", generator.label()),
        }
    }

    /// Guesses the kind of a file a user picked from its extension.
    pub fn for_file(path: PathBuf) -> Self {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "jsonl" | "json" => SourceKind::Jsonl {
                path,
                fields: Vec::new(),
            },
            "csv" | "tsv" => SourceKind::Table {
                path,
                columns: Vec::new(),
            },
            _ => SourceKind::Text {
                path,
                documents: DocSplit::Whole,
            },
        }
    }
}

/// A source argument (`kind:PATH#OPTIONS`) that does not parse; shown as `ARG: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{arg}: {message}")]
pub struct SourceArgError {
    /// The argument as given.
    pub arg: String,
    /// What is wrong with it.
    pub message: String,
}

impl SourceKind {
    /// Parses a source argument as the command line writes it: `text:FILE[#whole|paragraphs|
    /// lines]`, `folder:DIR[#GLOB]`, `jsonl:FILE[#field,field]`, `csv:FILE[#col,col]` (or
    /// `tsv:`), `pairs:FILE`, `gen:NAME[#SIZE[#SEED]]`, or a bare file path (its kind from its
    /// extension, see [`SourceKind::for_file`]).
    pub fn parse_arg(arg: &str) -> Result<Self, SourceArgError> {
        let fail = |message: String| SourceArgError {
            arg: arg.to_string(),
            message,
        };
        let (kind, rest) = match arg.split_once(':') {
            Some((k, r))
                if ["text", "folder", "jsonl", "csv", "tsv", "pairs", "gen"].contains(&k) =>
            {
                (k, r)
            }
            _ => return Ok(SourceKind::for_file(PathBuf::from(arg))),
        };
        let (main, options) = match rest.split_once('#') {
            Some((m, o)) => (m, Some(o)),
            None => (rest, None),
        };
        let list = |o: Option<&str>| -> Vec<String> {
            o.map(|o| {
                o.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
        };
        let path = PathBuf::from(main);
        Ok(match kind {
            "text" => SourceKind::Text {
                path,
                documents: match options {
                    None => DocSplit::Whole,
                    Some(name) => {
                        <DocSplit as clap::ValueEnum>::from_str(name, false).map_err(|_| {
                            fail(format!("\"{name}\" is not whole, paragraphs or lines"))
                        })?
                    }
                },
            },
            "folder" => SourceKind::Folder {
                path,
                glob: options.unwrap_or("*").to_string(),
                documents: DocSplit::Whole,
            },
            "jsonl" => SourceKind::Jsonl {
                path,
                fields: list(options),
            },
            "csv" | "tsv" => SourceKind::Table {
                path,
                columns: list(options),
            },
            "pairs" => SourceKind::Pairs { path },
            _ => {
                let generator = Generator::parse(main).ok_or_else(|| {
                    let names: Vec<&str> = Generator::ALL.iter().map(|g| g.label()).collect();
                    fail(format!("no generator \"{main}\" ({})", names.join(", ")))
                })?;
                let parts: Vec<&str> = options.map_or(Vec::new(), |o| o.split('#').collect());
                if parts.len() > 2 {
                    return Err(fail(format!(
                        "expected gen:{}[#SIZE[#SEED]]",
                        generator.label()
                    )));
                }
                let number = |i: usize, default: u64| -> Result<u64, SourceArgError> {
                    match parts.get(i).copied().filter(|s| !s.is_empty()) {
                        None => Ok(default),
                        Some(s) => s
                            .parse()
                            .map_err(|_| fail(format!("\"{s}\" is not a number"))),
                    }
                };
                let size = number(0, generator.size_unit().1 as u64)?;
                let size =
                    usize::try_from(size).map_err(|_| fail(format!("size {size} is too large")))?;
                SourceKind::Generated {
                    generator,
                    seed: number(1, 1)?,
                    size,
                }
            }
        })
    }
}

/// A source that cannot be read, naming the file and line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct SourceError {
    /// `path` or `path:line`.
    pub location: String,
    /// What is wrong there.
    pub message: String,
}

impl SourceError {
    /// An error at `path`, and at `line` when given.
    pub fn at(path: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        let location = match line {
            Some(line) => format!("{}:{line}", path.display()),
            None => path.display().to_string(),
        };
        Self {
            location,
            message: message.into(),
        }
    }
}

/// Bytes read so far of the bytes to read, for progress bars.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// The UTF-8 byte order mark some editors write at the start of a file; it is not text.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a UTF-8 text file in 1 MiB blocks, reporting progress; a leading byte order mark is
/// dropped, and invalid UTF-8 and empty files are errors naming the file (and the line).
pub fn read_text_streaming(path: &Path, progress: Progress<'_>) -> Result<String, SourceError> {
    let io = |e: std::io::Error| SourceError::at(path, None, format!("cannot read: {e}"));
    let mut file = std::fs::File::open(path).map_err(io)?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut text = String::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut block = vec![0u8; 1 << 20];
    // Bytes of a character cut by the end of the previous block.
    let mut carry: Vec<u8> = Vec::new();
    let (mut read, mut lines_before) = (0u64, 0usize);
    // Whether a byte order mark may still start the file (only a prefix of one was read).
    let mut at_start = true;
    loop {
        let n = file.read(&mut block).map_err(io)?;
        if n == 0 {
            break;
        }
        read += n as u64;
        carry.extend_from_slice(&block[..n]);
        if at_start {
            if carry.starts_with(UTF8_BOM) {
                carry.drain(..UTF8_BOM.len());
                at_start = false;
            } else if !UTF8_BOM.starts_with(&carry) {
                at_start = false;
            }
        }
        let valid = match std::str::from_utf8(&carry) {
            Ok(s) => s.len(),
            // An incomplete character at the very end waits for the next block.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(e) => {
                let line = lines_before + 1 + count_newlines(&carry[..e.valid_up_to()]);
                return Err(SourceError::at(
                    path,
                    Some(line),
                    "invalid UTF-8 (the file must be UTF-8 text)",
                ));
            }
        };
        let s = std::str::from_utf8(&carry[..valid]).expect("checked above");
        lines_before += count_newlines(s.as_bytes());
        text.push_str(s);
        carry.drain(..valid);
        progress(read, total);
    }
    if !carry.is_empty() {
        return Err(SourceError::at(
            path,
            Some(lines_before + 1),
            "invalid UTF-8: the file ends inside a character",
        ));
    }
    if text.trim().is_empty() {
        return Err(SourceError::at(path, None, "the file is empty"));
    }
    Ok(text)
}

fn count_newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Cuts a file's text into documents; `origin` of each is `path:first line`.
fn documents(path: &Path, text: String, split: DocSplit) -> Vec<Record> {
    let origin = |line: usize| format!("{}:{line}", path.display());
    match split {
        // The text moves into the record (a large file is not copied).
        DocSplit::Whole => vec![Record::text_only(origin(1), text)],
        DocSplit::Lines => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| Record::text_only(origin(i + 1), l))
            .collect(),
        // A paragraph keeps its final newline, so joined documents keep the blank line.
        DocSplit::Paragraphs => {
            let mut out = Vec::new();
            let mut current: Vec<&str> = Vec::new();
            let mut first = 1;
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    if !current.is_empty() {
                        out.push(Record::text_only(origin(first), current.join("\n") + "\n"));
                        current.clear();
                    }
                } else {
                    if current.is_empty() {
                        first = i + 1;
                    }
                    current.push(line);
                }
            }
            if !current.is_empty() {
                out.push(Record::text_only(origin(first), current.join("\n") + "\n"));
            }
            out
        }
    }
}

/// Whether `name` matches one of the `;`-separated glob patterns (`*`, `?`).
pub fn glob_matches(patterns: &str, name: &str) -> bool {
    // Greedy matching that returns to the last `*` on a mismatch: time proportional to the
    // pattern times the name, however many stars the pattern has.
    fn matches(p: &[char], s: &[char]) -> bool {
        let (mut pi, mut si) = (0, 0);
        // After a `*`: the pattern position behind it and the name position it resumes at.
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            match p.get(pi) {
                Some('*') => {
                    star = Some((pi + 1, si));
                    pi += 1;
                }
                Some(&c) if c == '?' || c == s[si] => {
                    pi += 1;
                    si += 1;
                }
                _ => match star {
                    // The star takes one more character of the name.
                    Some((after, from)) => {
                        star = Some((after, from + 1));
                        pi = after;
                        si = from + 1;
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|&c| c == '*')
    }
    let s: Vec<char> = name.chars().collect();
    patterns
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .any(|p| matches(&p.chars().collect::<Vec<_>>(), &s))
}

/// Files under `dir` (recursively, sorted) whose names match `glob`.
pub fn folder_files(dir: &Path, glob: &str) -> Result<Vec<PathBuf>, SourceError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d)
            .map_err(|e| SourceError::at(&d, None, format!("cannot list the folder: {e}")))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if glob_matches(glob, &entry.file_name().to_string_lossy()) {
                out.push(path);
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(SourceError::at(
            dir,
            None,
            format!("no file under the folder matches \"{glob}\""),
        ));
    }
    Ok(out)
}

fn json_value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Reads JSON lines: each non-empty line an object; `fields` (empty: all) become the record.
pub fn read_jsonl(
    path: &Path,
    fields: &[String],
    progress: Progress<'_>,
) -> Result<Vec<Record>, SourceError> {
    let text = read_text_streaming(path, progress)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            SourceError::at(
                path,
                Some(line_no),
                format!("not a JSON object ({e}); is the line cut short?"),
            )
        })?;
        let serde_json::Value::Object(map) = value else {
            return Err(SourceError::at(
                path,
                Some(line_no),
                "each line must be a JSON object",
            ));
        };
        let record_fields = if fields.is_empty() {
            map.iter()
                .map(|(k, v)| (k.clone(), json_value_text(v)))
                .collect()
        } else {
            let mut kept = Vec::with_capacity(fields.len());
            for f in fields {
                let v = map.get(f).ok_or_else(|| {
                    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
                    keys.sort_unstable();
                    SourceError::at(
                        path,
                        Some(line_no),
                        format!("no field \"{f}\" (the line has: {})", keys.join(", ")),
                    )
                })?;
                kept.push((f.clone(), json_value_text(v)));
            }
            kept
        };
        out.push(Record::new(
            format!("{}:{line_no}", path.display()),
            record_fields,
        ));
    }
    if out.is_empty() {
        return Err(SourceError::at(path, None, "the file has no JSON lines"));
    }
    Ok(out)
}

/// Reads CSV (TSV for `.tsv`) with a header; `columns` (empty: all) become the record.
pub fn read_table(
    path: &Path,
    columns: &[String],
    progress: Progress<'_>,
) -> Result<Vec<Record>, SourceError> {
    let text = read_text_streaming(path, progress)?;
    let tsv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(if tsv { b'\t' } else { b',' })
        .from_reader(text.as_bytes());
    let mut lines = LineCounter::new(text.as_bytes());
    let header_row = reader
        .headers()
        .map_err(|e| table_error(path, &e, &mut lines))?;
    // Blank lines before the header are skipped.
    let header_line = header_row.position().map_or(1, |p| lines.line_at(p.byte()));
    let header: Vec<String> = header_row.iter().map(str::to_string).collect();
    // Every column in order (repeated names too), or the named ones.
    let (wanted, index): (Vec<String>, Vec<usize>) = if columns.is_empty() {
        (header.clone(), (0..header.len()).collect())
    } else {
        let mut index = Vec::with_capacity(columns.len());
        for c in columns {
            let i = header.iter().position(|h| h == c).ok_or_else(|| {
                SourceError::at(
                    path,
                    Some(header_line),
                    format!("no column \"{c}\" (the header has: {})", header.join(", ")),
                )
            })?;
            index.push(i);
        }
        (columns.to_vec(), index)
    };
    let mut out = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| table_error(path, &e, &mut lines))?;
        let origin = match row.position() {
            Some(p) => format!("{}:{}", path.display(), lines.line_at(p.byte())),
            None => path.display().to_string(),
        };
        let fields = wanted
            .iter()
            .zip(&index)
            .map(|(name, &i)| (name.clone(), row.get(i).unwrap_or_default().to_string()))
            .collect();
        out.push(Record::new(origin, fields));
    }
    if out.is_empty() {
        return Err(SourceError::at(path, None, "the table has no rows"));
    }
    Ok(out)
}

/// Lines (from 1) of the records of a table, from the byte offsets the CSV reader gives.
///
/// The reader's own line count lags behind after a `\r\n` line end (it has read the `\r` but
/// not yet the `\n` when the next record starts), so lines are counted here.
struct LineCounter<'a> {
    bytes: &'a [u8],
    /// Offset up to which line ends are counted, and the line there.
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    /// The line of the record that the reader started at `byte`: line ends (and blank lines)
    /// the reader has not consumed yet come before the record.
    fn line_at(&mut self, byte: u64) -> usize {
        let mut start = usize::try_from(byte).map_or(self.bytes.len(), |b| b.min(self.bytes.len()));
        while self
            .bytes
            .get(start)
            .is_some_and(|b| matches!(b, b'\r' | b'\n'))
        {
            start += 1;
        }
        if start < self.offset {
            (self.offset, self.line) = (0, 1);
        }
        self.line += count_newlines(&self.bytes[self.offset..start]);
        self.offset = start;
        self.line
    }
}

/// A table that does not read: at the line of the record, with the reader's message (its own
/// line count left out).
fn table_error(path: &Path, e: &csv::Error, lines: &mut LineCounter<'_>) -> SourceError {
    let line = e.position().map(|p| lines.line_at(p.byte()));
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("found a row of {len} fields, but the header has {expected_len}"),
        _ => e.to_string(),
    };
    SourceError::at(path, line, message)
}

/// The records of one source.
pub fn read_source(
    source: &SourceKind,
    progress: Progress<'_>,
) -> Result<Vec<Record>, SourceError> {
    match source {
        SourceKind::Text { path, documents: d } => {
            Ok(documents(path, read_text_streaming(path, progress)?, *d))
        }
        SourceKind::Folder {
            path,
            glob,
            documents: d,
        } => {
            let files = folder_files(path, glob)?;
            let n = files.len() as u64;
            let mut out = Vec::new();
            for (i, file) in files.iter().enumerate() {
                let text = read_text_streaming(file, &|_, _| {})?;
                let mut docs = documents(file, text, *d);
                // A document of a folder is titled by its file name (for links between them).
                if *d == DocSplit::Whole {
                    let stem = file
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    for doc in &mut docs {
                        doc.fields.insert(0, ("title".to_string(), stem.clone()));
                    }
                }
                out.extend(docs);
                progress(i as u64 + 1, n);
            }
            Ok(out)
        }
        SourceKind::Jsonl { path, fields } => read_jsonl(path, fields, progress),
        SourceKind::Table { path, columns } => read_table(path, columns, progress),
        SourceKind::Pairs { path } => {
            use super::pairs::PairsError;
            let pairs = super::pairs::read_pairs(path).map_err(|e| match e {
                PairsError::Line { line, message, .. } => {
                    SourceError::at(path, Some(line), message)
                }
                PairsError::Io { source, .. } => {
                    SourceError::at(path, None, format!("cannot read: {source}"))
                }
                PairsError::Empty { .. } => SourceError::at(path, None, "no pairs"),
            })?;
            Ok(pairs
                .into_iter()
                .map(|p| {
                    Record::new(
                        format!("{}:{}", path.display(), p.line),
                        vec![("a".to_string(), p.a), ("b".to_string(), p.b)],
                    )
                })
                .collect())
        }
        SourceKind::Generated {
            generator,
            seed,
            size,
        } => {
            let records = match generator {
                Generator::Stories => documents(
                    Path::new("stories"),
                    super::generated::story_text(*seed, *size),
                    DocSplit::Lines,
                ),
                Generator::ApiZoo => super::generators::api_zoo(*seed, *size),
                Generator::ClassTasks => super::generators::class_tasks(*seed, *size),
                Generator::LinkedDocs => super::generators::linked_docs(*seed, *size),
                Generator::Arithmetic => super::generators::arithmetic(*seed, *size),
                Generator::SortLetters => super::generators::sort_letters(*seed, *size),
            };
            progress(1, 1);
            Ok(records)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn err_of(source: SourceKind) -> String {
        read_source(&source, &|_, _| {}).unwrap_err().to_string()
    }

    #[test]
    fn bad_inputs_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let bad = write(d, "bad.txt", b"one\ntwo\nthr\xffee\n");
        assert!(
            err_of(SourceKind::Text {
                path: bad,
                documents: DocSplit::Whole
            })
            .contains("bad.txt:3: invalid UTF-8")
        );
        let empty = write(d, "empty.txt", b"");
        assert!(
            err_of(SourceKind::Text {
                path: empty,
                documents: DocSplit::Whole
            })
            .contains("empty.txt: the file is empty")
        );
        let cut = write(
            d,
            "cut.jsonl",
            b"{\"q\": \"a\", \"r\": \"b\"}\n{\"q\": \"c\", \"r\": \"d\"}\n{\"q\": \"e\", \"r\n",
        );
        let e = err_of(SourceKind::Jsonl {
            path: cut,
            fields: vec![],
        });
        assert!(e.contains("cut.jsonl:3: not a JSON object"), "{e}");
        let missing = write(
            d,
            "m.jsonl",
            b"{\"q\": \"a\", \"r\": \"b\"}\n{\"q\": \"c\"}\n",
        );
        let e = err_of(SourceKind::Jsonl {
            path: missing,
            fields: vec!["q".into(), "r".into()],
        });
        assert!(
            e.contains("m.jsonl:2: no field \"r\" (the line has: q)"),
            "{e}"
        );
        let table = write(d, "t.csv", b"question,answer\nwhat,that\n");
        let e = err_of(SourceKind::Table {
            path: table,
            columns: vec!["question".into(), "label".into()],
        });
        assert!(
            e.contains("t.csv:1: no column \"label\" (the header has: question, answer)"),
            "{e}"
        );
        let ragged = write(d, "r.tsv", b"a\tb\nx\ty\nonly-one\n");
        let e = err_of(SourceKind::Table {
            path: ragged,
            columns: vec![],
        });
        assert!(e.contains("r.tsv:3:"), "{e}");
    }

    #[test]
    fn a_character_split_across_blocks_reads_whole() {
        let dir = tempfile::tempdir().unwrap();
        // 'é' is two bytes; put one across the 1 MiB block boundary.
        let mut bytes = vec![b'a'; (1 << 20) - 1];
        bytes.extend("é\nfin".as_bytes());
        let path = write(dir.path(), "big.txt", &bytes);
        let seen = std::sync::Mutex::new(Vec::new());
        let text = read_text_streaming(&path, &|done, total| {
            seen.lock().unwrap().push((done, total))
        })
        .unwrap();
        assert!(text.ends_with("é\nfin"));
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 2, "progress once per block");
        assert_eq!(seen[1], (bytes.len() as u64, bytes.len() as u64));
    }

    #[test]
    fn folders_tables_and_jsonl_become_records() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("notes/sub")).unwrap();
        write(&d.join("notes"), "a.md", b"alpha");
        write(&d.join("notes/sub"), "b.md", b"beta\n\ngamma");
        write(&d.join("notes"), "skip.txt", b"no");
        let recs = read_source(
            &SourceKind::Folder {
                path: d.join("notes"),
                glob: "*.md".into(),
                documents: DocSplit::Whole,
            },
            &|_, _| {},
        )
        .unwrap();
        assert_eq!(recs.len(), 2, "recursive, filtered by the glob");
        assert_eq!(recs[0].get("title"), Some("a"));
        assert_eq!(recs[1].get("text"), Some("beta\n\ngamma"));
        let recs = read_source(
            &SourceKind::Folder {
                path: d.join("notes"),
                glob: "*.md".into(),
                documents: DocSplit::Paragraphs,
            },
            &|_, _| {},
        )
        .unwrap();
        assert_eq!(recs.len(), 3);
        let t = write(d, "t.csv", b"q,a,extra\n\"hi, you\",yo,z\n");
        let recs = read_table(&t, &["a".into(), "q".into()], &|_, _| {}).unwrap();
        assert_eq!(
            recs[0].fields,
            vec![("a".into(), "yo".into()), ("q".into(), "hi, you".into())]
        );
        assert!(recs[0].origin.ends_with("t.csv:2"));
        let j = write(
            d,
            "j.jsonl",
            b"{\"q\": \"x\", \"n\": 3}\n\n{\"q\": \"y\", \"n\": 4}\n",
        );
        let recs = read_jsonl(&j, &["n".into()], &|_, _| {}).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].text(), "4");
        assert!(recs[1].origin.ends_with("j.jsonl:3"));
        assert!(glob_matches("*.txt; *.md", "x.md"));
        assert!(!glob_matches("*.txt", "x.md"));
        assert!(glob_matches("doc-??.txt", "doc-12.txt"));
    }
}
