//! Text pairs: labelled positives (and negatives) for training, scored pairs for evaluation.
//! TSV `a<TAB>b[<TAB>third]` or JSONL objects; the third field is a hard negative for training
//! files and a similarity score for evaluation files.

use std::path::{Path, PathBuf};

/// One pair, with its optional third field.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// The query (first text).
    pub a: String,
    /// Its positive (second text).
    pub b: String,
    /// A hard negative: a third field that is not a number.
    pub negative: Option<String>,
    /// A similarity score: a third field that is a finite number.
    pub score: Option<f64>,
    /// The line of the file it was read from (from 1).
    pub line: usize,
}

/// Why a pairs file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PairsError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// The line (from 1).
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The file holds no pair.
    #[error("{path}: no pairs")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Whether `path` names a JSONL file (ends in `.jsonl` or `.json`).
fn is_jsonl(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("json"))
}

/// The text of `path`, which must be UTF-8 (a leading byte order mark is dropped); invalid
/// bytes are reported at their line.
fn read_text(path: &Path) -> Result<String, PairsError> {
    let bytes = std::fs::read(path).map_err(|source| PairsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| PairsError::Line {
        path: path.to_path_buf(),
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
        message: "invalid UTF-8 (the file must be UTF-8 text)".to_string(),
    })?;
    Ok(text.to_string())
}

/// Reads a pairs file; JSONL when the name ends in `.jsonl` or `.json`, TSV otherwise
/// (`a<TAB>b[<TAB>score or negative]`, or the STS benchmark's seven columns). The file must be
/// UTF-8 (a leading byte order mark is dropped); errors name the file and the line.
pub fn read_pairs(path: &Path) -> Result<Vec<Pair>, PairsError> {
    let text = read_text(path)?;
    let jsonl = is_jsonl(path);
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| PairsError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let pair = if jsonl {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| err(format!("invalid JSON: {e}")))?;
            if !v.is_object() {
                return Err(err("each line must be a JSON object".into()));
            }
            // The first of `names` the line has, and its value.
            let field =
                |names: &[&'static str]| names.iter().find_map(|&n| v.get(n).map(|x| (n, x)));
            let text = |names: &[&'static str]| -> Result<String, PairsError> {
                match field(names) {
                    Some((_, serde_json::Value::String(s))) => Ok(s.clone()),
                    Some((name, _)) => Err(err(format!("field \"{name}\" must be a string"))),
                    None => Err(err(format!(
                        "missing field \"{}\" (or \"{}\")",
                        names[0], names[1]
                    ))),
                }
            };
            Pair {
                a: text(&["a", "query", "text_a", "prompt"])?,
                b: text(&["b", "positive", "text_b", "response"])?,
                negative: match field(&["negative", "neg"]) {
                    Some((_, serde_json::Value::String(s))) => Some(s.clone()),
                    _ => None,
                },
                score: field(&["score"]).and_then(|(_, x)| x.as_f64()),
                line: i + 1,
            }
        } else {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() < 2 {
                return Err(err(format!(
                    "expected 2 or 3 tab-separated columns, found {}",
                    cols.len()
                )));
            }
            // The STS benchmark's layout (genre, source, year, id, score, sentence 1,
            // sentence 2, extra columns ignored): its sentences and score.
            let sts_score = (cols.len() >= 7)
                .then(|| cols[4].trim().parse::<f64>().ok())
                .flatten()
                .filter(|x| x.is_finite());
            if let Some(score) = sts_score {
                pairs.push(Pair {
                    a: cols[5].to_string(),
                    b: cols[6].to_string(),
                    negative: None,
                    score: Some(score),
                    line: i + 1,
                });
                continue;
            }
            // A finite number is a score; anything else (`nan` and `inf` too) is a negative.
            let score = cols
                .get(2)
                .and_then(|t| t.trim().parse::<f64>().ok())
                .filter(|x| x.is_finite());
            Pair {
                a: cols[0].to_string(),
                b: cols[1].to_string(),
                negative: cols
                    .get(2)
                    .filter(|_| score.is_none())
                    .map(|t| t.to_string()),
                score,
                line: i + 1,
            }
        };
        pairs.push(pair);
    }
    if pairs.is_empty() {
        return Err(PairsError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(pairs)
}

/// One pair of sentences with a gold similarity score (STS: 0 to 5).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredPair {
    /// The first sentence.
    pub a: String,
    /// The second sentence.
    pub b: String,
    /// The gold score.
    pub score: f64,
}

/// Reads scored sentence pairs: the STS benchmark's tab-separated layout (genre, source, year,
/// id, score, sentence 1, sentence 2; columns after the seventh are ignored, and sentences are
/// never split on commas), `a<TAB>b<TAB>score`, or JSONL `{"a", "b", "score"}` (by the name's
/// `.jsonl` / `.json` ending). Errors name the file, the line and the column.
pub fn read_scored_pairs(path: &Path) -> Result<Vec<ScoredPair>, PairsError> {
    if is_jsonl(path) {
        return read_pairs(path)?
            .into_iter()
            .map(|p| match p.score {
                Some(score) => Ok(ScoredPair {
                    a: p.a,
                    b: p.b,
                    score,
                }),
                None => Err(PairsError::Line {
                    path: path.to_path_buf(),
                    line: p.line,
                    message: "missing a numeric field \"score\"".to_string(),
                }),
            })
            .collect();
    }
    let text = read_text(path)?;
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| PairsError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let cols: Vec<&str> = line.split('\t').collect();
        // Columns (from 1) of the score and the two sentences.
        let (score_col, a_col, b_col) = match cols.len() {
            n if n >= 7 => (5, 6, 7),
            3 => (3, 1, 2),
            n => {
                return Err(err(format!(
                    "expected the STS layout (7 tab-separated columns: genre, source, year, id, score, sentence 1, sentence 2) or a<TAB>b<TAB>score, found {n} columns"
                )));
            }
        };
        let score = cols[score_col - 1]
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| {
                err(format!(
                    "column {score_col} (the score) is {:?}, not a number",
                    cols[score_col - 1]
                ))
            })?;
        pairs.push(ScoredPair {
            a: cols[a_col - 1].to_string(),
            b: cols[b_col - 1].to_string(),
            score,
        });
    }
    if pairs.is_empty() {
        return Err(PairsError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_and_jsonl_with_scores_and_negatives() {
        let dir = tempfile::tempdir().unwrap();
        let tsv = dir.path().join("p.tsv");
        std::fs::write(&tsv, "q1\tp1\t0.5\nq2\tp2\tn2\n\n").unwrap();
        let pairs = read_pairs(&tsv).unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0].score, Some(0.5));
        assert_eq!(pairs[1].negative.as_deref(), Some("n2"));
        let jsonl = dir.path().join("p.jsonl");
        std::fs::write(&jsonl, "{\"a\": \"x\\ny\", \"b\": \"z\", \"score\": 3}\n").unwrap();
        let pairs = read_pairs(&jsonl).unwrap();
        assert_eq!(pairs[0].a, "x\ny");
        assert_eq!(pairs[0].score, Some(3.0));
    }

    #[test]
    fn sts_benchmark_lines_read_as_their_sentences_and_score() {
        let dir = tempfile::tempdir().unwrap();
        let tsv = dir.path().join("sts.csv");
        std::fs::write(
            &tsv,
            "main-captions\tMSRvid\t2012test\t0001\t4.750\tA child rides a horse.\tA kid rides a horse.\textra\n",
        )
        .unwrap();
        let pairs = read_pairs(&tsv).unwrap();
        assert_eq!(pairs[0].a, "A child rides a horse.");
        assert_eq!(pairs[0].b, "A kid rides a horse.");
        assert_eq!(pairs[0].score, Some(4.75));
        assert_eq!(pairs[0].negative, None);
    }

    #[test]
    fn a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let tsv = dir.path().join("bad.tsv");
        std::fs::write(&tsv, "q1\tp1\nonly-one-column\n").unwrap();
        let err = read_pairs(&tsv).unwrap_err().to_string();
        assert!(err.contains("bad.tsv:2"), "{err}");
        let jsonl = dir.path().join("bad.jsonl");
        std::fs::write(&jsonl, "{\"a\": \"x\", \"b\": \"y\"}\n{\"a\": \"trunc").unwrap();
        let err = read_pairs(&jsonl).unwrap_err().to_string();
        assert!(
            err.contains("bad.jsonl:2") && err.contains("invalid JSON"),
            "{err}"
        );
    }

    #[test]
    fn the_sts_layout_reads_columns_five_to_seven_only() {
        let dir = tempfile::tempdir().unwrap();
        let sts = dir.path().join("sts.csv");
        std::fs::write(
            &sts,
            "main-news\tdeft\t2015\t0001\t3.800\tA man, a plan.\tA plan, a man.\n\
             main-forums\tans\t2016\t0002\t0.5\tOne.\tTwo.\textra\tcolumns\n",
        )
        .unwrap();
        let pairs = read_scored_pairs(&sts).unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0].a, "A man, a plan.");
        assert_eq!(pairs[0].b, "A plan, a man.");
        assert_eq!(pairs[0].score, 3.8);
        assert_eq!((pairs[1].a.as_str(), pairs[1].score), ("One.", 0.5));
        let jsonl = dir.path().join("sts.jsonl");
        std::fs::write(&jsonl, "{\"a\": \"x\", \"b\": \"y\", \"score\": 4}\n").unwrap();
        assert_eq!(read_scored_pairs(&jsonl).unwrap()[0].score, 4.0);
    }

    #[test]
    fn a_bad_sts_line_names_its_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let sts = dir.path().join("bad.csv");
        std::fs::write(
            &sts,
            "g\ts\t2012\t1\t5.0\ta\tb\ng\ts\t2012\t2\thigh\ta\tb\n",
        )
        .unwrap();
        let err = read_scored_pairs(&sts).unwrap_err().to_string();
        assert!(
            err.contains("bad.csv:2") && err.contains("column 5"),
            "{err}"
        );
        std::fs::write(&sts, "g\ts\t2012\t1\n").unwrap();
        let err = read_scored_pairs(&sts).unwrap_err().to_string();
        assert!(
            err.contains("bad.csv:1") && err.contains("4 columns"),
            "{err}"
        );
        let jsonl = dir.path().join("bad.jsonl");
        std::fs::write(&jsonl, "{\"a\": \"x\", \"b\": \"y\"}\n").unwrap();
        let err = read_scored_pairs(&jsonl).unwrap_err().to_string();
        assert!(
            err.contains("bad.jsonl:1") && err.contains("score"),
            "{err}"
        );
    }
}
