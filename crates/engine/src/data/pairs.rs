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
    /// A similarity score: a third field that is a number.
    pub score: Option<f64>,
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

/// Reads a pairs file; JSONL when the name ends in `.jsonl` or `.json`, TSV otherwise.
pub fn read_pairs(path: &Path) -> Result<Vec<Pair>, PairsError> {
    let text = std::fs::read_to_string(path).map_err(|source| PairsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let jsonl = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("json"));
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
            let field = |names: &[&str]| names.iter().find_map(|n| v.get(*n)).cloned();
            let text = |names: &[&str]| -> Option<String> {
                field(names).and_then(|x| x.as_str().map(str::to_string))
            };
            Pair {
                a: text(&["a", "query", "text_a", "prompt"])
                    .ok_or_else(|| err("missing field \"a\" (or \"query\")".into()))?,
                b: text(&["b", "positive", "text_b", "response"])
                    .ok_or_else(|| err("missing field \"b\" (or \"positive\")".into()))?,
                negative: text(&["negative", "neg"]),
                score: field(&["score"]).and_then(|x| x.as_f64()),
            }
        } else {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() < 2 {
                return Err(err(format!(
                    "expected 2 or 3 tab-separated columns, found {}",
                    cols.len()
                )));
            }
            let third = cols.get(2).map(|s| s.to_string());
            Pair {
                a: cols[0].to_string(),
                b: cols[1].to_string(),
                score: third.as_deref().and_then(|t| t.trim().parse().ok()),
                negative: third.filter(|t| t.trim().parse::<f64>().is_err()),
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
}
