//! Property tests over every parser of user input: text, JSONL, CSV/TSV and pairs files, prompt
//! and response files, dataset recipes, run specs, tokenizer names and files, source arguments
//! and option names. No input may panic, and every refusal of a file names the file, and the line
//! for line-oriented formats (a line and column for JSON documents).
//!
//! Each property runs a bounded number of small cases, so the whole file takes seconds.

use hearth_engine::backend::BackendKind;
use hearth_engine::data::corpus::{Corpus, DataSource, DataSpec, read_text_file};
use hearth_engine::data::dataset::{
    DATASET_FILE, Dataset, DatasetRecipe, LinkRecipe, SourceSpec, SplitMode, SplitSpec,
    SymbolRecipe, TransformSpec,
};
use hearth_engine::data::pairs::read_pairs;
use hearth_engine::data::record::Record;
use hearth_engine::data::sources::{
    DocSplit, Generator, SourceKind, UTF8_BOM, glob_matches, read_source,
};
use hearth_engine::data::tokenizer::{BpeModel, TokenizerError};
use hearth_engine::data::transforms::{
    DistractorMode, LabelMode, LinkOptions, RaftOptions, SftOptions, SymbolOptions,
};
use hearth_engine::data::{Tokenizer, TokenizerKind};
use hearth_engine::model::{Model, ModelSpec};
use hearth_engine::objective::{ObjectiveKind, Pooling, Positives};
use hearth_engine::project::store::{read_spec, read_tokenizer};
use hearth_engine::spec::RunSpec;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A bounded run: `cases` inputs, nothing written to disk, short shrinking.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 512,
        ..ProptestConfig::default()
    }
}

fn no_progress(_: u64, _: u64) {}

/// Writes `bytes` as `name` in a fresh folder; the folder lives as long as the returned guard.
fn write_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// `path:line: ` as refusals of line-oriented files start.
fn at_line(path: &Path, line: usize) -> String {
    format!("{}:{line}: ", path.display())
}

/// The text of a UTF-8 file without its byte order mark, or the line (from 1) of its first
/// invalid byte.
fn expected_text(bytes: &[u8]) -> Result<&str, usize> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| line_of(&bytes[..e.valid_up_to()]))
}

/// The line (from 1) that starts after `before`.
fn line_of(before: &[u8]) -> usize {
    1 + before.iter().filter(|&&b| b == b'\n').count()
}

/// Bytes of a text file: ASCII, line ends of every style, NULs, multi-byte characters (whole
/// and cut), invalid bytes and byte order marks, with or without a leading byte order mark.
fn file_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        6 => select(b"ab Z\t,;\"{}:#".to_vec()).prop_map(|b| vec![b]),
        3 => Just(b"\n".to_vec()),
        1 => Just(b"\r\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(vec![0u8]),
        1 => Just("é€😀".as_bytes().to_vec()),
        1 => Just("€".as_bytes()[..2].to_vec()),
        1 => Just(vec![0xFF]),
        1 => Just(vec![0xC0, 0x80]),
        1 => Just(UTF8_BOM.to_vec()),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ];
    (any::<bool>(), vec(piece, 0..48)).prop_map(|(bom, pieces)| {
        let mut out = if bom { UTF8_BOM.to_vec() } else { Vec::new() };
        out.extend(pieces.into_iter().flatten());
        out
    })
}

/// Lines joined with `\n` or `\r\n`, with or without a final line end and a byte order mark.
fn join_lines(lines: &[String], crlf: bool, final_end: bool, bom: bool) -> Vec<u8> {
    let end = if crlf { "\r\n" } else { "\n" };
    let mut text = lines.join(end);
    if final_end && !lines.is_empty() {
        text.push_str(end);
    }
    let mut out = if bom { UTF8_BOM.to_vec() } else { Vec::new() };
    out.extend(text.into_bytes());
    out
}

/// A JSON value as written in a file: strings with escapes, integers, floats, numbers beyond
/// `f64`, literals, containers, and a few things JSON does not allow.
fn json_token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z \"\\\\é\t\n]{0,6}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => (-1e6f64..1e6).prop_map(|x| x.to_string()),
        1 => select(vec![
            "1e400", "-1e400", "123456789012345678901234567890", "5e-324", "-0", "0.5", "true",
            "false", "null", "[]", "[1, \"x\"]", "{}", "{\"k\": {\"k\": []}}", "NaN",
            "Infinity", "01", "'single'", "\"unterminated",
        ])
        .prop_map(str::to_string),
    ]
}

/// One line of a JSONL file: mostly objects, also blank lines, other JSON values, cut objects
/// and garbage.
fn jsonl_line(keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    let object = vec((select(keys), json_token()), 0..5)
        .prop_map(|fields| {
            let inner: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{}: {v}", serde_json::to_string(k).unwrap()))
                .collect();
            format!("{{{}}}", inner.join(", "))
        })
        .boxed();
    prop_oneof![
        8 => object.clone(),
        1 => Just(String::new()),
        1 => Just(" \t ".to_string()),
        1 => json_token(),
        1 => (object, any::<prop::sample::Index>()).prop_map(|(o, cut)| {
            let ends: Vec<usize> = o.char_indices().map(|(i, _)| i).collect();
            o[..ends[cut.index(ends.len())]].to_string()
        }),
        1 => "[^\n]{0,10}",
    ]
}

// ---------------------------------------------------------------------------------------------
// Text files
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// A text source reads exactly the file's UTF-8 text (without a byte order mark), cut into
    /// documents whose origins are their first lines; invalid UTF-8 is refused at its line, an
    /// empty file by name. The run's text reader and corpus agree.
    #[test]
    fn text_files_decode_or_name_file_and_line(
        bytes in file_bytes(),
        split in select(DocSplit::ALL.to_vec()),
    ) {
        let (_dir, path) = write_file("notes.txt", &bytes);
        let source = SourceKind::Text { path: path.clone(), documents: split };
        let read = read_source(&source, &no_progress);
        match expected_text(&bytes) {
            Err(line) => {
                let e = read.unwrap_err().to_string();
                prop_assert!(e.starts_with(&at_line(&path, line)), "{e}");
                prop_assert!(e.contains("UTF-8"), "{e}");
            }
            Ok(text) if text.trim().is_empty() => {
                let e = read.unwrap_err().to_string();
                prop_assert_eq!(e, format!("{}: the file is empty", path.display()));
            }
            Ok(text) => {
                let records = read.unwrap();
                let origin = |line: usize| format!("{}:{line}", path.display());
                match split {
                    DocSplit::Whole => {
                        prop_assert_eq!(records, vec![Record::text_only(origin(1), text)]);
                    }
                    DocSplit::Lines => {
                        let expected: Vec<Record> = text
                            .lines()
                            .enumerate()
                            .filter(|(_, l)| !l.trim().is_empty())
                            .map(|(i, l)| Record::text_only(origin(i + 1), l))
                            .collect();
                        prop_assert_eq!(records, expected);
                    }
                    DocSplit::Paragraphs => {
                        let lines: Vec<&str> = text.lines().collect();
                        let mut kept = Vec::new();
                        for r in &records {
                            let first: usize = r.origin.rsplit_once(':').unwrap().1.parse().unwrap();
                            let body = r.text();
                            let body = body.strip_suffix('\n');
                            prop_assert!(body.is_some(), "a paragraph ends in a line end");
                            let body_lines: Vec<&str> = body.unwrap().split('\n').collect();
                            prop_assert_eq!(body_lines[0], lines[first - 1]);
                            kept.extend(body_lines.iter().map(|l| l.to_string()));
                        }
                        let non_blank: Vec<String> = lines
                            .iter()
                            .filter(|l| !l.trim().is_empty())
                            .map(|l| l.to_string())
                            .collect();
                        prop_assert_eq!(kept, non_blank);
                    }
                }
            }
        }
        // A run's text file: the same decoding; only a file with no text at all is empty.
        match (expected_text(&bytes), read_text_file(&path)) {
            (Ok(text), Ok(read)) => prop_assert_eq!(read, text),
            (Ok(""), Err(e)) => {
                prop_assert_eq!(e.to_string(), format!("{}: the file is empty", path.display()))
            }
            (Err(line), Err(e)) => {
                prop_assert!(e.to_string().starts_with(&at_line(&path, line)), "{e}")
            }
            (expected, got) => prop_assert!(false, "expected {expected:?}, read {got:?}"),
        }
        let spec = DataSpec {
            source: DataSource::TextFile { path: path.clone() },
            tokenizer: TokenizerKind::Char,
            val_fraction: 0.1,
            shards: None,
        };
        match (expected_text(&bytes), Corpus::load(&spec)) {
            (Ok(text), Ok(corpus)) => prop_assert_eq!(corpus.n_chars, text.chars().count()),
            (_, Err(e)) => prop_assert!(e.to_string().contains(&path.display().to_string())),
            (Err(_), Ok(_)) => prop_assert!(false, "invalid UTF-8 loaded"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JSONL sources
// ---------------------------------------------------------------------------------------------

/// What reading a JSONL file must give: each non-blank line's `(line, fields)`, or the first
/// line that is not an object with every wanted field (`None`: no JSON line at all).
#[allow(clippy::type_complexity)]
fn jsonl_expected(
    text: &str,
    fields: &[String],
) -> Result<Vec<(usize, Vec<(String, String)>)>, Option<usize>> {
    let as_text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(line) else {
            return Err(Some(i + 1));
        };
        let kept = if fields.is_empty() {
            map.iter().map(|(k, v)| (k.clone(), as_text(v))).collect()
        } else if let Some(kept) = fields
            .iter()
            .map(|f| map.get(f).map(|v| (f.clone(), as_text(v))))
            .collect::<Option<Vec<_>>>()
        {
            kept
        } else {
            return Err(Some(i + 1));
        };
        out.push((i + 1, kept));
    }
    if out.is_empty() {
        return Err(None);
    }
    Ok(out)
}

const JSONL_KEYS: &[&str] = &["q", "r", "n", "ü", ""];

proptest! {
    #![proptest_config(config(256))]

    /// A JSONL source gives one record per non-blank line, its origin that line; a line that is
    /// not a JSON object with the wanted fields is refused naming the file and that line.
    #[test]
    fn jsonl_records_or_the_offending_line(
        lines in vec(jsonl_line(JSONL_KEYS), 0..8),
        fields in vec(select(JSONL_KEYS), 0..3),
        (crlf, final_end, bom) in any::<(bool, bool, bool)>(),
    ) {
        let fields: Vec<String> = fields.into_iter().map(str::to_string).collect();
        let bytes = join_lines(&lines, crlf, final_end, bom);
        let (_dir, path) = write_file("data.jsonl", &bytes);
        let text = expected_text(&bytes).unwrap();
        let read = read_source(
            &SourceKind::Jsonl { path: path.clone(), fields: fields.clone() },
            &no_progress,
        );
        match jsonl_expected(text, &fields) {
            Ok(expected) => {
                let records = read.unwrap();
                prop_assert_eq!(records.len(), expected.len());
                for (r, (line, kept)) in records.iter().zip(expected) {
                    prop_assert_eq!(&r.origin, &format!("{}:{line}", path.display()));
                    prop_assert_eq!(&r.fields, &kept);
                }
            }
            Err(Some(line)) => {
                let e = read.unwrap_err().to_string();
                prop_assert!(e.starts_with(&at_line(&path, line)), "{e}");
            }
            Err(None) => {
                let e = read.unwrap_err().to_string();
                prop_assert!(e.starts_with(&format!("{}: ", path.display())), "{e}");
            }
        }
    }

    /// Any bytes in a JSONL file: records, or a refusal naming the file (and a line of it).
    #[test]
    fn jsonl_any_bytes_never_panic(bytes in file_bytes()) {
        let (_dir, path) = write_file("data.jsonl", &bytes);
        let lines = line_of(&bytes);
        match read_source(&SourceKind::Jsonl { path: path.clone(), fields: vec![] }, &no_progress) {
            Ok(records) => prop_assert!(!records.is_empty()),
            Err(e) => assert_names_file(&e.to_string(), &path, lines)?,
        }
    }
}

/// A refusal names `path`, and a line within the file's `lines` when it names one.
fn assert_names_file(message: &str, path: &Path, lines: usize) -> Result<(), TestCaseError> {
    let shown = path.display().to_string();
    let rest = message.strip_prefix(&shown);
    prop_assert!(rest.is_some(), "{message}");
    let rest = rest.unwrap();
    if let Some(after) = rest.strip_prefix(':')
        && let Some((number, _)) = after.split_once(':')
        && let Ok(line) = number.parse::<usize>()
    {
        prop_assert!(
            (1..=lines).contains(&line),
            "line {line} of {lines}: {message}"
        );
    } else {
        prop_assert!(rest.starts_with(": "), "{message}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// CSV and TSV sources
// ---------------------------------------------------------------------------------------------

/// A cell as written by a CSV writer: always quoted, quotes doubled.
fn quoted(cell: &str) -> String {
    format!("\"{}\"", cell.replace('"', "\"\""))
}

fn csv_cell() -> impl Strategy<Value = String> {
    "[a-z ,;\t\"\n\ré]{0,5}"
}

/// A table: header, rows of the header's width, and maybe a ragged row at some index.
#[derive(Debug, Clone)]
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    ragged: Option<(usize, Vec<String>)>,
}

fn table() -> impl Strategy<Value = Table> {
    (1usize..4).prop_flat_map(|width| {
        (
            vec(csv_cell(), width),
            vec(vec(csv_cell(), width), 0..6),
            proptest::option::weighted(
                0.4,
                (
                    any::<prop::sample::Index>(),
                    (1usize..6).prop_filter("ragged", move |&n| n != width),
                )
                    .prop_flat_map(|(at, n)| (Just(at), vec(csv_cell(), n))),
            ),
        )
            .prop_map(|(header, rows, ragged)| Table {
                ragged: ragged.map(|(at, cells)| (at.index(rows.len() + 1), cells)),
                header,
                rows,
            })
    })
}

proptest! {
    #![proptest_config(config(256))]

    /// A well-formed table (quoted cells holding delimiters, quotes and line breaks) reads back
    /// cell for cell, each record's origin the line its row starts on; a row of another width
    /// is refused at the line it starts on.
    #[test]
    fn tables_read_back_or_name_the_ragged_line(
        t in table(),
        (tsv, crlf, bom) in any::<(bool, bool, bool)>(),
    ) {
        let (delimiter, name) = if tsv { ("\t", "data.tsv") } else { (",", "data.csv") };
        let end = if crlf { "\r\n" } else { "\n" };
        let mut rows: Vec<&Vec<String>> = t.rows.iter().collect();
        if let Some((at, cells)) = &t.ragged {
            rows.insert(*at, cells);
        }
        let mut text = String::new();
        let mut starts = Vec::new();
        for row in std::iter::once(&t.header).chain(rows.iter().copied()) {
            starts.push(line_of(text.as_bytes()));
            let cells: Vec<String> = row.iter().map(|c| quoted(c)).collect();
            text.push_str(&cells.join(delimiter));
            text.push_str(end);
        }
        let mut bytes = if bom { UTF8_BOM.to_vec() } else { Vec::new() };
        bytes.extend(text.as_bytes());
        let (_dir, path) = write_file(name, &bytes);
        let read = read_source(&SourceKind::Table { path: path.clone(), columns: vec![] }, &no_progress);
        match &t.ragged {
            Some((at, _)) => {
                let e = read.unwrap_err().to_string();
                prop_assert!(e.starts_with(&at_line(&path, starts[at + 1])), "{e}");
            }
            None if t.rows.is_empty() => {
                let e = read.unwrap_err().to_string();
                prop_assert_eq!(e, format!("{}: the table has no rows", path.display()));
            }
            None => {
                let records = read.unwrap();
                prop_assert_eq!(records.len(), t.rows.len());
                for (i, (r, row)) in records.iter().zip(&t.rows).enumerate() {
                    prop_assert_eq!(&r.origin, &format!("{}:{}", path.display(), starts[i + 1]));
                    let expected: Vec<(String, String)> =
                        t.header.iter().cloned().zip(row.iter().cloned()).collect();
                    prop_assert_eq!(&r.fields, &expected);
                }
                // Choosing columns: named ones in the order asked; an unknown one is refused at
                // the header's line.
                let mut columns = t.header.clone();
                columns.reverse();
                let records = read_source(
                    &SourceKind::Table { path: path.clone(), columns: columns.clone() },
                    &no_progress,
                ).unwrap();
                for r in &records {
                    let names: Vec<&String> = r.fields.iter().map(|(k, _)| k).collect();
                    prop_assert_eq!(names, columns.iter().collect::<Vec<_>>());
                }
                if !t.header.contains(&"missing".to_string()) {
                    let e = read_source(
                        &SourceKind::Table { path: path.clone(), columns: vec!["missing".into()] },
                        &no_progress,
                    ).unwrap_err().to_string();
                    prop_assert!(e.starts_with(&at_line(&path, 1)), "{e}");
                    prop_assert!(e.contains("no column \"missing\""), "{e}");
                }
            }
        }
    }

    /// Raw lines with stray quotes, ragged rows and blank lines, or any bytes: records, or a
    /// refusal naming the file and a line of it.
    #[test]
    fn tables_of_any_text_never_panic(
        lines in vec(vec("[a-z \"'é]{0,4}", 0..4), 0..6),
        bytes in file_bytes(),
        tsv in any::<bool>(),
    ) {
        let (delimiter, name) = if tsv { ('\t', "raw.tsv") } else { (',', "raw.csv") };
        let text: String = lines
            .iter()
            .map(|cells| cells.join(&delimiter.to_string()) + "\n")
            .collect();
        for bytes in [text.into_bytes(), bytes] {
            let (_dir, path) = write_file(name, &bytes);
            let lines = line_of(&bytes);
            match read_source(&SourceKind::Table { path: path.clone(), columns: vec![] }, &no_progress) {
                Ok(records) => {
                    prop_assert!(!records.is_empty());
                    for r in &records {
                        let line: usize = r.origin.rsplit_once(':').unwrap().1.parse().unwrap();
                        prop_assert!((1..=lines).contains(&line), "{} of {lines}", r.origin);
                    }
                }
                Err(e) => assert_names_file(&e.to_string(), &path, lines)?,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pairs files and prompt/response files
// ---------------------------------------------------------------------------------------------

/// A pair as a file must read: `(line, a, b, negative, score)`.
type ExpectedPair = (usize, String, String, Option<String>, Option<f64>);

/// What reading a pairs file must give, or the first line it must refuse.
fn pairs_expected(text: &str, jsonl: bool) -> Result<Vec<ExpectedPair>, Option<usize>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if jsonl {
            let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(line) else {
                return Err(Some(i + 1));
            };
            let first = |names: &[&str]| names.iter().find_map(|n| v.get(*n)).cloned();
            let (Some(Value::String(a)), Some(Value::String(b))) = (
                first(&["a", "query", "text_a", "prompt"]),
                first(&["b", "positive", "text_b", "response"]),
            ) else {
                return Err(Some(i + 1));
            };
            let negative = match first(&["negative", "neg"]) {
                Some(Value::String(n)) => Some(n),
                _ => None,
            };
            let score = first(&["score"]).and_then(|s| s.as_f64());
            out.push((i + 1, a, b, negative, score));
        } else {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() < 2 {
                return Err(Some(i + 1));
            }
            let score = cols
                .get(2)
                .and_then(|c| c.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite());
            let negative = cols
                .get(2)
                .filter(|_| score.is_none())
                .map(|c| c.to_string());
            out.push((i + 1, cols[0].into(), cols[1].into(), negative, score));
        }
    }
    if out.is_empty() {
        return Err(None);
    }
    Ok(out)
}

const PAIR_KEYS: &[&str] = &[
    "a", "query", "text_a", "prompt", "b", "positive", "text_b", "response", "negative", "neg",
    "score",
];

fn tsv_pair_line() -> impl Strategy<Value = String> {
    let cell = prop_oneof![
        4 => "[a-z \"é\r]{0,5}",
        1 => select(vec!["0.5", "-3", " 7 ", "nan", "NaN", "inf", "-Infinity", "1e999", "1e-999", ""])
            .prop_map(str::to_string),
    ];
    prop_oneof![
        8 => vec(cell, 0..5).prop_map(|cells| cells.join("\t")),
        1 => Just(String::new()),
        1 => Just("  ".to_string()),
    ]
}

/// One line of a JSONL pairs file: mostly objects with a query and a positive under one of
/// their names (usually text), maybe a negative and a score; sometimes any JSONL line.
fn jsonl_pair_line() -> impl Strategy<Value = String> {
    let text = || {
        prop_oneof![
            6 => "[a-z é\"\\\\\t]{0,6}".prop_map(Value::from),
            1 => any_value(),
        ]
    };
    let named = |names: &'static [&'static str], p: f64| {
        proptest::option::weighted(p, (select(names), text()))
    };
    let object = (
        named(&["a", "query", "text_a", "prompt"], 0.9),
        named(&["b", "positive", "text_b", "response"], 0.9),
        named(&["negative", "neg"], 0.3),
        proptest::option::weighted(0.3, any_field_value()),
    )
        .prop_map(|(a, b, negative, score)| {
            let mut map = serde_json::Map::new();
            for (k, v) in [a, b, negative].into_iter().flatten() {
                map.insert(k.to_string(), v);
            }
            if let Some(score) = score {
                map.insert("score".into(), score);
            }
            Value::Object(map).to_string()
        });
    prop_oneof![6 => object, 1 => jsonl_line(PAIR_KEYS)]
}

proptest! {
    #![proptest_config(config(256))]

    /// A pairs file (TSV or JSONL) gives one pair per non-blank line, with the line it came
    /// from, a finite score or a negative from the third field; a malformed line is refused
    /// naming the file and that line, by the pairs reader, a `pairs` dataset source and a
    /// prompt/response run source alike.
    #[test]
    fn pairs_files_read_or_name_the_line(
        jsonl in any::<bool>(),
        tsv_lines in vec(tsv_pair_line(), 0..7),
        jsonl_lines in vec(jsonl_pair_line(), 0..7),
        (crlf, final_end, bom) in any::<(bool, bool, bool)>(),
    ) {
        let (lines, name) = if jsonl { (jsonl_lines, "pairs.jsonl") } else { (tsv_lines, "pairs.tsv") };
        let bytes = join_lines(&lines, crlf, final_end, bom);
        let (_dir, path) = write_file(name, &bytes);
        let text = expected_text(&bytes).unwrap();
        let read = read_pairs(&path);
        let as_source = read_source(&SourceKind::Pairs { path: path.clone() }, &no_progress);
        let spec = DataSpec {
            source: DataSource::PromptResponse { path: path.clone() },
            tokenizer: TokenizerKind::Char,
            val_fraction: 0.1,
            shards: None,
        };
        let corpus = Corpus::load(&spec);
        let shown = path.display().to_string();
        match pairs_expected(text, jsonl) {
            Ok(expected) => {
                let pairs = read.unwrap();
                let got: Vec<ExpectedPair> = pairs
                    .iter()
                    .map(|p| (p.line, p.a.clone(), p.b.clone(), p.negative.clone(), p.score))
                    .collect();
                prop_assert_eq!(got, expected.clone());
                let records = as_source.unwrap();
                for (r, (line, a, b, ..)) in records.iter().zip(&expected) {
                    prop_assert_eq!(&r.origin, &format!("{shown}:{line}"));
                    prop_assert_eq!(r.get("a"), Some(a.as_str()));
                    prop_assert_eq!(r.get("b"), Some(b.as_str()));
                }
                let corpus = corpus.unwrap();
                prop_assert!(!corpus.examples_train.is_empty() && !corpus.examples_val.is_empty());
            }
            Err(Some(line)) => {
                for e in [
                    read.unwrap_err().to_string(),
                    as_source.unwrap_err().to_string(),
                    corpus.unwrap_err().to_string(),
                ] {
                    prop_assert!(e.starts_with(&at_line(&path, line)), "{e}");
                    prop_assert_eq!(e.matches(&shown).count(), 1, "the file named once: {}", e);
                }
            }
            Err(None) => {
                for e in [
                    read.unwrap_err().to_string(),
                    as_source.unwrap_err().to_string(),
                    corpus.unwrap_err().to_string(),
                ] {
                    prop_assert_eq!(e, format!("{shown}: no pairs"));
                }
            }
        }
    }

    /// Any bytes in a pairs file: pairs, or a refusal naming the file (and a line of it).
    #[test]
    fn pairs_of_any_bytes_never_panic(bytes in file_bytes(), jsonl in any::<bool>()) {
        let name = if jsonl { "any.jsonl" } else { "any.tsv" };
        let (_dir, path) = write_file(name, &bytes);
        let lines = line_of(&bytes);
        match read_pairs(&path) {
            Ok(pairs) => {
                prop_assert!(expected_text(&bytes).is_ok());
                for p in &pairs {
                    prop_assert!((1..=lines).contains(&p.line));
                    prop_assert!(p.score.is_none_or(f64::is_finite));
                }
            }
            Err(e) => assert_names_file(&e.to_string(), &path, lines)?,
        }
        if let Err(line) = expected_text(&bytes) {
            let e = read_pairs(&path).unwrap_err().to_string();
            prop_assert!(e.starts_with(&at_line(&path, line)), "{e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JSON documents: dataset recipes and run specs
// ---------------------------------------------------------------------------------------------

/// Any JSON value, small: scalars of every kind (negative, huge, tiny, empty) and shallow
/// containers.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        number(),
        "[a-z_:/#.{}-]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(Value::from),
            vec(("[a-z_]{1,6}", inner), 0..3)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A number a size, count, seed or rate field may be given: small, zero, negative, huge,
/// fractional, the limits of 64 bits and of `f64`.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (0u64..12).prop_map(Value::from),
        1 => (-5i64..0).prop_map(Value::from),
        1 => (12u64..100_000).prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => select(vec![u64::MAX, u64::from(u32::MAX) + 1, 1 << 53]).prop_map(Value::from),
        1 => Just(Value::from(i64::MIN)),
        2 => (-2.0f64..2.0).prop_map(Value::from),
        1 => select(vec![1e308, -1e308, 5e-324, 1e-300, 0.5, 1.0, -0.0]).prop_map(Value::from),
    ]
}

/// A value a field may be set to: a number, an empty or odd string, a name from the
/// documents' vocabulary, a flag, null, or a container.
fn any_field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => number(),
        2 => select(vec![
            "", " ", "x", "{prompt}", "char", "byte", "bpe", "text", "jsonl", "generated",
            "linkbert", "flex", "libtorch-cuda", "random", "bm25", "symbols", "none", "sft", "cls",
            "pairs", "nope", "../..", "/", "a\u{0}b",
        ])
        .prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => any_value(),
    ]
}

/// One change to a JSON document: set the `at`-th value (in document order) to a new value,
/// or remove it from its object or array.
#[derive(Debug, Clone)]
enum Change {
    Set(prop::sample::Index, Value),
    Remove(prop::sample::Index),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), any_field_value()).prop_map(|(at, v)| Change::Set(at, v)),
        1 => any::<prop::sample::Index>().prop_map(Change::Remove),
    ]
}

/// Values below the root of `v`.
fn count_values(v: &Value) -> usize {
    match v {
        Value::Object(map) => map.values().map(|x| 1 + count_values(x)).sum(),
        Value::Array(items) => items.iter().map(|x| 1 + count_values(x)).sum(),
        _ => 0,
    }
}

/// Applies `change` to `doc` (nothing when the document has no value below its root).
fn apply(doc: &mut Value, change: &Change) {
    let n = count_values(doc);
    if n == 0 {
        return;
    }
    let (at, remove, new) = match change {
        Change::Set(at, v) => (at.index(n), false, Some(v)),
        Change::Remove(at) => (at.index(n), true, None),
    };
    // Walks the document in order; `seen` counts the values passed so far.
    fn walk(v: &mut Value, at: usize, seen: &mut usize, remove: bool, new: Option<&Value>) -> bool {
        match v {
            Value::Object(map) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    if *seen == at {
                        match new {
                            Some(x) if !remove => {
                                map.insert(k, x.clone());
                            }
                            _ => {
                                map.remove(&k);
                            }
                        }
                        return true;
                    }
                    *seen += 1;
                    if walk(map.get_mut(&k).unwrap(), at, seen, remove, new) {
                        return true;
                    }
                }
                false
            }
            Value::Array(items) => {
                for i in 0..items.len() {
                    if *seen == at {
                        match new {
                            Some(x) if !remove => items[i] = x.clone(),
                            _ => {
                                items.remove(i);
                            }
                        }
                        return true;
                    }
                    *seen += 1;
                    if walk(&mut items[i], at, seen, remove, new) {
                        return true;
                    }
                }
                false
            }
            _ => false,
        }
    }
    walk(doc, at, &mut 0, remove, new);
}

/// `base` with a few random changes.
fn mutated(base: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    (base, vec(change(), 0..4)).prop_map(|(mut doc, changes)| {
        for c in &changes {
            apply(&mut doc, c);
        }
        doc
    })
}

/// A valid recipe of every kind of source and transform.
fn base_recipe() -> impl Strategy<Value = DatasetRecipe> {
    let source = prop_oneof![
        select(DocSplit::ALL.to_vec()).prop_map(|documents| SourceKind::Text {
            path: "notes.txt".into(),
            documents
        }),
        Just(SourceKind::Folder {
            path: "notes".into(),
            glob: "*.md;*.txt".into(),
            documents: DocSplit::Paragraphs
        }),
        Just(SourceKind::Jsonl {
            path: "a.jsonl".into(),
            fields: vec!["q".into(), "a".into()]
        }),
        Just(SourceKind::Table {
            path: "t.csv".into(),
            columns: vec!["question".into()]
        }),
        Just(SourceKind::Pairs {
            path: "p.tsv".into()
        }),
        (select(Generator::ALL.to_vec()), any::<u64>(), 0usize..1000).prop_map(
            |(generator, seed, size)| SourceKind::Generated {
                generator,
                seed,
                size
            }
        ),
    ];
    (
        vec(source, 0..3),
        select(TransformSpec::all_defaults()),
        select(vec![
            TokenizerKind::Char,
            TokenizerKind::Byte,
            TokenizerKind::Bpe { vocab_size: 512 },
        ]),
        proptest::option::of(1usize..1000),
    )
        .prop_map(
            |(sources, transform, tokenizer, epoch_size)| DatasetRecipe {
                sources: sources.into_iter().map(SourceSpec::new).collect(),
                transform,
                tokenizer,
                epoch_size,
                ..DatasetRecipe::default()
            },
        )
}

/// A valid spec (a small model) for every objective and kind of data.
fn base_spec() -> impl Strategy<Value = RunSpec> {
    let source = prop_oneof![
        Just(DataSource::default()),
        Just(DataSource::TextFile {
            path: "input.txt".into()
        }),
        Just(DataSource::PromptResponse {
            path: "sft.jsonl".into()
        }),
        base_recipe().prop_map(|r| DataSource::Dataset {
            recipe: Box::new(r),
            folder: None
        }),
    ];
    (
        source,
        select(ObjectiveKind::BUILT_IN.to_vec()),
        select(Positives::ALL.to_vec()),
        (
            1usize..3,
            select(vec![(1usize, 8usize), (2, 16), (4, 16)]),
            1usize..17,
        ),
        any::<bool>(),
    )
        .prop_map(
            |(source, kind, positives, (n_layer, (n_head, d_model), context), fine_tune)| {
                let mut spec = RunSpec {
                    name: "fuzz".into(),
                    model: ModelSpec {
                        n_layer,
                        n_head,
                        d_model,
                        context,
                        ..ModelSpec::default()
                    },
                    init: fine_tune.then(hearth_engine::spec::InitSpec::default),
                    ..RunSpec::default()
                };
                spec.data.source = source;
                spec.objective.kind = kind;
                spec.objective.positives = positives;
                spec.train.backend = BackendKind::Flex;
                spec
            },
        )
}

fn recipe_value() -> impl Strategy<Value = Value> {
    mutated(base_recipe().prop_map(|r| serde_json::to_value(r).unwrap()))
}

fn spec_value() -> impl Strategy<Value = Value> {
    mutated(base_spec().prop_map(|s| serde_json::to_value(s).unwrap()))
}

/// A JSON document as a user may leave it: pretty or compact, maybe cut short.
fn json_text(value: impl Strategy<Value = Value>) -> impl Strategy<Value = String> {
    (
        value,
        any::<bool>(),
        proptest::option::weighted(0.2, any::<prop::sample::Index>()),
    )
        .prop_map(|(v, pretty, cut)| {
            let text = if pretty {
                serde_json::to_string_pretty(&v).unwrap()
            } else {
                serde_json::to_string(&v).unwrap()
            };
            match cut {
                Some(at) => {
                    let ends: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
                    text[..ends[at.index(ends.len())]].to_string()
                }
                None => text,
            }
        })
}

/// Checks a loaded recipe can be validated and saved again.
fn check_recipe(recipe: &DatasetRecipe) -> Result<(), TestCaseError> {
    let _ = recipe.validate();
    let saved = serde_json::to_string(recipe).unwrap();
    let back = DatasetRecipe::from_json(&saved, Path::new("saved.json"));
    prop_assert!(back.is_ok(), "a saved recipe loads again: {back:?}");
    Ok(())
}

/// Checks what the studio and the worker compute from a spec that validates, without training:
/// sizes, names, the objective, and (when small) the model itself.
fn check_valid_spec(spec: &RunSpec) -> Result<(), TestCaseError> {
    let m = &spec.model;
    for vocab in [1, 65, 50_257, usize::MAX] {
        let params = m.n_params(vocab);
        prop_assert!(params >= m.d_model.min(vocab));
        let _ = m.train_memory_bytes(vocab, spec.train.batch_size, true);
        let _ = m.train_memory_bytes(vocab, spec.train.batch_size, false);
    }
    prop_assert!(m.head_dim() * m.n_head == m.d_model);
    let _ = spec.data.source.describe();
    let objective = spec.objective.objective();
    prop_assert!(objective.is_ok());
    let _ = (
        spec.objective.attention_mode(),
        spec.objective.needs_specials(),
        spec.objective.uses_embeddings(),
    );
    let saved = serde_json::to_string(spec).unwrap();
    prop_assert!(
        RunSpec::from_json(&saved).is_ok(),
        "a saved spec loads again"
    );
    if m.d_model <= 64 && m.n_layer <= 2 && m.context <= 32 && m.relation_classes <= 8 {
        let device = BackendKind::Flex.device().unwrap();
        let _model = Model::new(m, 7, &device);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    /// A recipe file of any bytes, or of JSON shaped like a recipe with any values, loads or is
    /// refused naming the file (and the line); a loaded recipe validates and saves again.
    #[test]
    fn recipes_load_or_name_file_and_line(
        text in json_text(recipe_value()),
        bytes in file_bytes(),
    ) {
        for bytes in [text.into_bytes(), bytes] {
            let (dir, path) = write_file(DATASET_FILE, &bytes);
            let lines = line_of(&bytes);
            match DatasetRecipe::load(dir.path()) {
                Ok(recipe) => check_recipe(&recipe)?,
                Err(e) => {
                    let e = e.to_string();
                    assert_names_file(&e, &path, lines)?;
                    if let Err(line) = expected_text(&bytes) {
                        prop_assert!(e.starts_with(&at_line(&path, line)), "{e}");
                    }
                }
            }
        }
    }

    /// A run spec of any bytes, or of JSON shaped like a spec with any values, loads or is
    /// refused with the line and column (and, read from a run folder, the file); a spec that
    /// loads and validates gives its sizes, objective and model without panicking.
    #[test]
    fn specs_load_or_name_line_and_column(
        text in json_text(spec_value()),
        bytes in file_bytes(),
    ) {
        let lossy = String::from_utf8_lossy(&bytes).into_owned();
        for text in [text, lossy] {
            match RunSpec::from_json(&text) {
                Ok(spec) => {
                    if spec.validate().is_empty() {
                        check_valid_spec(&spec)?;
                    }
                }
                Err(e) => {
                    let e = e.to_string();
                    prop_assert!(
                        e.contains(" line ") || e.contains("schema_version"),
                        "{e}"
                    );
                }
            }
            let (dir, path) = write_file("spec.json", text.as_bytes());
            if let Err(e) = read_spec(dir.path()) {
                let e = e.to_string();
                prop_assert!(e.starts_with(&path.display().to_string()), "{e}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tokenizers
// ---------------------------------------------------------------------------------------------

/// A small trained BPE model's saved JSON.
fn bpe_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let text = "the cat sat on the mat; the dog sat on the log. ".repeat(8);
        BpeModel::train([text.as_str()].into_iter(), 280).json
    })
}

/// A saved tokenizer: a real one of each kind with a few changes, its BPE model's own JSON
/// changed too, or something else entirely.
fn tokenizer_file() -> impl Strategy<Value = String> {
    let base = (
        prop_oneof![
            Just(Tokenizer::fit(TokenizerKind::Char, "the cat sat, é€\n")),
            Just(Tokenizer::fit(TokenizerKind::Byte, "")),
            Just(Tokenizer::Bpe {
                model: BpeModel::from_json(bpe_json().to_string()).unwrap(),
                specials: false
            }),
        ],
        any::<bool>(),
    )
        .prop_map(|(t, specials)| serde_json::to_value(t.with_specials(specials)).unwrap());
    // Few changes, so that many files still read and the ones that do are used.
    let changes = || prop_oneof![2 => Just(vec![]), 3 => vec(change(), 1..3)];
    let document = (base, changes(), changes()).prop_map(|(mut doc, outer, changes)| {
        for c in &outer {
            apply(&mut doc, c);
        }
        // Changes inside the BPE model's own JSON, kept as the string it is saved as.
        if let Some(Value::String(json)) = doc.pointer_mut("/model/json")
            && let Ok(mut model) = serde_json::from_str::<Value>(json)
        {
            for c in &changes {
                apply(&mut model, c);
            }
            *json = model.to_string();
        }
        doc.to_string()
    });
    prop_oneof![
        6 => document,
        1 => "[a-z{}\":,\\[\\] ]{0,24}",
    ]
}

/// Uses a loaded tokenizer the way runs and the studio do.
fn use_tokenizer(tok: &Tokenizer, ids: &[u32]) -> Result<(), TestCaseError> {
    let base = tok.base_size();
    prop_assert!(tok.vocab_size() >= base);
    let _ = tok.kind();
    let encoded = tok.encode("the cat, é\t€\n\0 😀");
    prop_assert!(
        encoded.iter().all(|&id| (id as usize) < base),
        "{encoded:?}"
    );
    let _ = tok.decode(&encoded);
    let _ = tok.decode(ids);
    for &id in ids {
        let _ = tok.token_label(id);
    }
    let _ = tok.clone().with_specials(true).decode(ids);
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    /// A saved tokenizer file of any content is read as a working tokenizer or not at all
    /// (never one that fails later); a broken BPE model is refused as the file is read.
    #[test]
    fn tokenizer_files_read_whole_or_not_at_all(
        text in tokenizer_file(),
        ids in vec(prop_oneof![0u32..300, any::<u32>()], 0..12),
    ) {
        let (dir, _path) = write_file("tokenizer.json", text.as_bytes());
        if let Some(tok) = read_tokenizer(dir.path()) {
            use_tokenizer(&tok, &ids)?;
        }
        if let Some(tok) = hearth_engine::data::dataset::saved_tokenizer(dir.path()) {
            use_tokenizer(&tok, &ids)?;
        }
    }

    /// Tokenizer names: `char`, `byte`, `bpe` and `bpe:N` with N over 256 parse and print
    /// back; a too-small vocabulary and anything else are refused naming what was given.
    #[test]
    fn tokenizer_names_parse_or_are_refused(
        name in prop_oneof![
            "[a-z:0-9 ]{0,8}",
            (0u64..600).prop_map(|n| format!("bpe:{n}")),
            any::<u64>().prop_map(|n| format!("bpe:{n}")),
            "bpe:[0-9]{20,24}",
            select(vec!["char", "byte", "bpe", "bpe:", "bpe:+300", "bpe:-1", "BPE:300", " char"])
                .prop_map(str::to_string),
        ],
    ) {
        match TokenizerKind::parse(&name) {
            Ok(TokenizerKind::Bpe { vocab_size }) => {
                prop_assert!(vocab_size > 256);
                prop_assert!(name == "bpe" || name.trim_start_matches("bpe:").parse() == Ok(vocab_size));
            }
            Ok(kind) => prop_assert_eq!(kind.label(), name.as_str()),
            Err(e) => {
                prop_assert!(e.to_string().contains(&format!("\"{name}\"")), "{e}");
                if let TokenizerError::VocabularyTooSmall { .. } = e {
                    let n: usize = name.strip_prefix("bpe:").unwrap().parse().unwrap();
                    prop_assert!(n <= 256);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Source arguments, globs and option names
// ---------------------------------------------------------------------------------------------

/// Whether `name` matches the glob `pattern` (`*`, `?`), by dynamic programming.
fn glob_reference(pattern: &[char], name: &[char]) -> bool {
    let mut m = vec![vec![false; name.len() + 1]; pattern.len() + 1];
    m[0][0] = true;
    for i in 1..=pattern.len() {
        for j in 0..=name.len() {
            m[i][j] = match pattern[i - 1] {
                '*' => m[i - 1][j] || (j > 0 && m[i][j - 1]),
                '?' => j > 0 && m[i - 1][j - 1],
                c => j > 0 && m[i - 1][j - 1] && name[j - 1] == c,
            };
        }
    }
    m[pattern.len()][name.len()]
}

proptest! {
    #![proptest_config(config(256))]

    /// A source argument parses or is refused naming the argument; `kind:PATH#OPTIONS` keeps
    /// the path, and generator sizes and seeds of any 64-bit value round-trip.
    #[test]
    fn source_arguments_parse_or_name_the_argument(
        kind in select(vec!["text:", "folder:", "jsonl:", "csv:", "tsv:", "pairs:", "gen:", "", "TEXT:", "x:"]),
        rest in "[a-z_./#,: 0-9é]{0,16}",
        generator in select(Generator::ALL.to_vec()),
        size in any::<u64>(),
        seed in any::<u64>(),
    ) {
        let arg = format!("{kind}{rest}");
        let prefixed = arg.split_once(':').filter(|(k, _)| {
            ["text", "folder", "jsonl", "csv", "tsv", "pairs", "gen"].contains(k)
        });
        match (SourceKind::parse_arg(&arg), prefixed) {
            (Ok(source), None) => {
                prop_assert_eq!(source, SourceKind::for_file(PathBuf::from(&arg)))
            }
            (Ok(source), Some((_, rest))) => {
                let main = rest.split_once('#').map_or(rest, |(m, _)| m);
                match &source {
                    SourceKind::Generated { generator, .. } => {
                        prop_assert_eq!(generator.label(), main)
                    }
                    SourceKind::Text { path, .. }
                    | SourceKind::Folder { path, .. }
                    | SourceKind::Jsonl { path, .. }
                    | SourceKind::Table { path, .. }
                    | SourceKind::Pairs { path } => prop_assert_eq!(path, &PathBuf::from(main)),
                }
            }
            (Err(e), prefixed) => {
                prop_assert!(prefixed.is_some());
                prop_assert!(e.to_string().starts_with(&format!("{arg}: ")), "{e}");
            }
        }
        let arg = format!("gen:{}#{size}#{seed}", generator.label());
        prop_assert_eq!(
            SourceKind::parse_arg(&arg).unwrap(),
            SourceKind::Generated { generator, seed, size: size as usize }
        );
    }

    /// Folder globs match exactly as `*` and `?` mean, in time proportional to pattern and name.
    #[test]
    fn globs_match_as_specified(
        pattern in "[ab*?]{0,10}",
        name in "[ab]{0,12}",
        more in "[ab*?;]{0,6}",
    ) {
        let p: Vec<char> = pattern.chars().collect();
        let n: Vec<char> = name.chars().collect();
        // An empty pattern matches nothing.
        prop_assert_eq!(
            glob_matches(&pattern, &name),
            !p.is_empty() && glob_reference(&p, &n)
        );
        let any_of = more.split(';').chain([pattern.as_str()]).map(str::trim).filter(|p| !p.is_empty())
            .any(|p| glob_reference(&p.chars().collect::<Vec<_>>(), &n));
        prop_assert_eq!(glob_matches(&format!("{more};{pattern}"), &name), any_of);
    }

    /// Option names parse only as themselves.
    #[test]
    fn option_names_parse_only_as_themselves(
        name in prop_oneof![
            "[a-z_-]{0,12}",
            select(vec!["next-token", "masked", "contrastive", "grit", "linkbert", "mean", "cls",
                "last", "halves", "dropout", "pairs", "stories", "api_zoo", "class_tasks",
                "linked_docs", "Mean", "next_token"]).prop_map(str::to_string),
        ],
    ) {
        if let Some(k) = ObjectiveKind::parse(&name) {
            prop_assert_eq!(k.name(), name.as_str());
        }
        if let Some(p) = Pooling::parse(&name) {
            prop_assert_eq!(p.name(), name.as_str());
        }
        if let Some(p) = Positives::parse(&name) {
            prop_assert_eq!(p.name(), name.as_str());
        }
        if let Some(g) = Generator::parse(&name) {
            prop_assert_eq!(g.label(), name.as_str());
        }
    }
}

#[test]
fn every_option_name_parses() {
    for k in ObjectiveKind::BUILT_IN {
        assert_eq!(ObjectiveKind::parse(k.name()), Some(k.clone()));
    }
    for p in Pooling::ALL {
        assert_eq!(Pooling::parse(p.name()), Some(p));
    }
    for p in Positives::ALL {
        assert_eq!(Positives::parse(p.name()), Some(p));
    }
    for g in Generator::ALL {
        assert_eq!(Generator::parse(g.label()), Some(g));
    }
}

#[test]
fn a_glob_with_many_stars_matches_a_long_name_at_once() {
    // A backtracking matcher tries every way of splitting the name among the 24 stars (about
    // 10^31 for this name) and never returns; the matcher keeps one position per star, so
    // this answers at once. No clock is read: the answers are what is checked.
    let pattern = "*a".repeat(24) + "b";
    let name = "a".repeat(240);
    assert!(!glob_matches(&pattern, &name));
    assert!(glob_matches(&pattern, &(name.clone() + "b")));
    assert!(
        !glob_matches(&pattern, &("a".repeat(23) + "b")),
        "fewer a's than stars"
    );
}

#[test]
fn huge_model_sizes_saturate() {
    let m = ModelSpec {
        d_model: usize::MAX / 2,
        context: usize::MAX,
        ..ModelSpec::default()
    };
    assert_eq!(m.n_params(65), usize::MAX);
    assert_eq!(m.train_memory_bytes(65, 12, true), usize::MAX);
    assert_eq!(m.train_memory_bytes(65, 12, false), usize::MAX);
}

// ---------------------------------------------------------------------------------------------
// Building datasets from recipes with any settings
// ---------------------------------------------------------------------------------------------

const FIELD_NAMES: &[&str] = &[
    "text", "title", "q", "question", "answer", "document", "input", "label", "task", "prompt",
    "response", "",
];

fn small_source() -> impl Strategy<Value = SourceKind> {
    prop_oneof![
        (0usize..3000, any::<u64>()).prop_map(|(size, seed)| SourceKind::Generated {
            generator: Generator::Stories,
            seed,
            size
        }),
        (
            select(vec![
                Generator::ApiZoo,
                Generator::ClassTasks,
                Generator::LinkedDocs
            ]),
            0usize..8,
            any::<u64>()
        )
            .prop_map(|(generator, size, seed)| SourceKind::Generated {
                generator,
                seed,
                size
            }),
        Just(SourceKind::Jsonl {
            path: PathBuf::from("records.jsonl"),
            fields: vec![]
        }),
        Just(SourceKind::Pairs {
            path: PathBuf::from("pairs.tsv")
        }),
        select(DocSplit::ALL.to_vec()).prop_map(|documents| SourceKind::Text {
            path: PathBuf::from("notes.txt"),
            documents
        }),
    ]
}

fn any_transform() -> impl Strategy<Value = TransformSpec> {
    // Usually the field the transform reads by default, sometimes another.
    let name = |default: &'static str| {
        prop_oneof![
            3 => Just(default.to_string()),
            1 => select(FIELD_NAMES).prop_map(str::to_string),
        ]
    };
    prop_oneof![
        Just(TransformSpec::None),
        (
            name("prompt"),
            name("response"),
            select(vec!["{prompt}", "Q: {prompt}\nA: ", "no slot"])
        )
            .prop_map(
                |(prompt_field, response_field, template)| TransformSpec::Sft {
                    options: SftOptions {
                        prompt_field,
                        response_field,
                        template: template.into()
                    },
                }
            ),
        (
            name("question"),
            name("answer"),
            name("document"),
            0.0f64..=1.0,
            0usize..5,
            any::<bool>(),
            any::<u64>()
        )
            .prop_map(
                |(
                    question_field,
                    answer_field,
                    document_field,
                    p_oracle,
                    distractors,
                    bm25,
                    seed,
                )| {
                    TransformSpec::Raft {
                        options: RaftOptions {
                            question_field,
                            answer_field,
                            document_field,
                            p_oracle,
                            distractors,
                            mode: if bm25 {
                                DistractorMode::Bm25
                            } else {
                                DistractorMode::Random
                            },
                            seed,
                        },
                    }
                }
            ),
        (
            (name("input"), name("label"), name("task")),
            0usize..6,
            select(vec![
                LabelMode::Natural,
                LabelMode::Symbols,
                LabelMode::Flipped
            ]),
            any::<u64>(),
            prop_oneof![
                Just(String::new()),
                select(hearth_engine::data::generators::task_names()).prop_map(str::to_string),
                name("")
            ],
            (0usize..20, 0usize..10),
        )
            .prop_map(
                |(
                    (input_field, label_field, task_field),
                    k_shot,
                    mode,
                    seed,
                    held_out_task,
                    (train_prompts, val_prompts),
                )| {
                    TransformSpec::Symbols {
                        recipe: SymbolRecipe {
                            options: SymbolOptions {
                                input_field,
                                label_field,
                                task_field,
                                k_shot,
                                mode,
                                seed,
                            },
                            held_out_task,
                            train_prompts,
                            val_prompts,
                        },
                    }
                }
            ),
        (
            name("title"),
            name("text"),
            0usize..200,
            any::<u64>(),
            0usize..30
        )
            .prop_map(|(title_field, text_field, segment_chars, seed, pairs)| {
                TransformSpec::LinkBert {
                    recipe: LinkRecipe {
                        options: LinkOptions {
                            title_field,
                            text_field,
                            segment_chars,
                            seed,
                        },
                        pairs,
                    },
                }
            }),
    ]
}

proptest! {
    #![proptest_config(config(96))]

    /// A recipe with any transform settings over small sources builds, or is refused with a
    /// message (a record it names by its file and line); it never panics.
    #[test]
    fn recipes_with_any_settings_build_or_refuse(
        sources in vec((small_source(), 0.05f64..4.0), 1..3),
        transform in any_transform(),
        (dedup, random_split, seed) in any::<(bool, bool, u64)>(),
        val_fraction in 0.01f64..=0.5,
        epoch_size in proptest::option::of(1usize..60),
        tokenizer in select(vec![TokenizerKind::Char, TokenizerKind::Byte]),
        records in vec(vec(proptest::option::weighted(0.6, "[a-z ]{0,12}"), FIELD_NAMES.len()), 0..8),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let jsonl: String = records
            .iter()
            .map(|values| {
                let map: serde_json::Map<String, Value> = FIELD_NAMES
                    .iter()
                    .zip(values)
                    .filter_map(|(k, v)| Some((k.to_string(), Value::from(v.clone()?))))
                    .collect();
                Value::Object(map).to_string() + "\n"
            })
            .collect();
        std::fs::write(dir.path().join("records.jsonl"), jsonl).unwrap();
        std::fs::write(dir.path().join("pairs.tsv"), "q one\tp one\nq two\tp two\tneg\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "[[Other]] first\n\nsecond line\nthird\n").unwrap();
        let sources = sources
            .into_iter()
            .map(|(source, weight)| {
                let source = match source {
                    SourceKind::Jsonl { path, fields } => SourceKind::Jsonl { path: dir.path().join(path), fields },
                    SourceKind::Pairs { path } => SourceKind::Pairs { path: dir.path().join(path) },
                    SourceKind::Text { path, documents } => SourceKind::Text { path: dir.path().join(path), documents },
                    other => other,
                };
                SourceSpec { source, weight }
            })
            .collect();
        let recipe = DatasetRecipe {
            sources,
            dedup,
            split: SplitSpec {
                mode: if random_split { SplitMode::RandomDocuments } else { SplitMode::Contiguous },
                val_fraction,
                seed,
            },
            tokenizer,
            epoch_size,
            transform,
            ..DatasetRecipe::default()
        };
        match Dataset::build(&recipe, None, &|_, _| {}) {
            Ok(ds) => {
                let _ = ds.sizes();
                let _ = Corpus::from_dataset(ds, true);
            }
            Err(e) => {
                let e = e.to_string();
                prop_assert!(!e.is_empty());
                // A record that lacks a field is named by its file and line (or generator).
                if let Some((origin, _)) = e.split_once(": no field \"") {
                    let from_file = origin.starts_with(&dir.path().display().to_string())
                        && origin.rsplit_once(':').is_some_and(|(_, l)| l.parse::<usize>().is_ok());
                    let generated = Generator::ALL.iter().any(|g| origin.starts_with(g.label()));
                    prop_assert!(from_file || generated, "{e}");
                }
            }
        }
    }
}

#[test]
fn a_bpe_model_with_ids_beyond_its_vocabulary_is_refused() {
    let mut model: Value = serde_json::from_str(bpe_json()).unwrap();
    let vocab = model.pointer_mut("/model/vocab").unwrap();
    let t = vocab.as_object_mut().unwrap().get_mut("t").unwrap();
    *t = Value::from(5_000);
    let saved = serde_json::json!({"kind": "bpe", "model": {"json": model.to_string()}});
    let (dir, _path) = write_file("tokenizer.json", saved.to_string().as_bytes());
    assert!(read_tokenizer(dir.path()).is_none());
    let err = BpeModel::from_json(model.to_string())
        .unwrap_err()
        .to_string();
    assert!(err.contains("5000"), "{err}");
}
