//! Retrieval-aware fine-tuning (RAFT): documents (the right one or not, plus distractors
//! picked at random or by BM25) in the prompt, the loss on the answer.

use super::{TransformError, one_line, tokens};
use crate::data::record::{MissingField, Record, TextExample};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The record field [`RaftEval::Edited`] reads the edited document from.
pub const EDITED_DOCUMENT_FIELD: &str = "document_edited";
/// The record field [`RaftEval::Edited`] reads the answer under the edited document from.
pub const EDITED_ANSWER_FIELD: &str = "answer_edited";

/// An Okapi BM25 index (k1 = 1.2, b = 0.75) over lowercase alphanumeric tokens.
#[derive(Debug, Clone)]
pub struct Bm25 {
    /// Per token: (document, term frequency), by document.
    postings: BTreeMap<String, Vec<(usize, u32)>>,
    doc_len: Vec<f64>,
    avg_len: f64,
}

impl Bm25 {
    /// Term-frequency saturation.
    pub const K1: f64 = 1.2;
    /// Document-length normalisation.
    pub const B: f64 = 0.75;

    /// Indexes `docs`; a document's index is its position.
    pub fn new(docs: &[&str]) -> Self {
        let mut postings: BTreeMap<String, Vec<(usize, u32)>> = BTreeMap::new();
        let mut doc_len = Vec::with_capacity(docs.len());
        for (d, text) in docs.iter().enumerate() {
            let mut counts: BTreeMap<String, u32> = BTreeMap::new();
            for t in tokens(text) {
                *counts.entry(t).or_default() += 1;
            }
            doc_len.push(counts.values().map(|&c| f64::from(c)).sum());
            for (t, c) in counts {
                postings.entry(t).or_default().push((d, c));
            }
        }
        let avg_len = doc_len.iter().sum::<f64>() / doc_len.len().max(1) as f64;
        Self {
            postings,
            doc_len,
            avg_len,
        }
    }

    /// Inverse document frequency (the non-negative variant).
    fn idf(&self, df: usize) -> f64 {
        let (n, df) = (self.doc_len.len() as f64, df as f64);
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }

    fn term_score(&self, idf: f64, tf: u32, doc: usize) -> f64 {
        let tf = f64::from(tf);
        let norm = 1.0 - Self::B + Self::B * self.doc_len[doc] / self.avg_len.max(f64::EPSILON);
        idf * tf * (Self::K1 + 1.0) / (tf + Self::K1 * norm)
    }

    /// The BM25 score of document `doc` for `query`.
    pub fn score(&self, query: &str, doc: usize) -> f64 {
        tokens(query)
            .filter_map(|t| {
                let list = self.postings.get(&t)?;
                let i = list.binary_search_by_key(&doc, |&(d, _)| d).ok()?;
                Some(self.term_score(self.idf(list.len()), list[i].1, doc))
            })
            .sum()
    }

    /// Up to `k` documents with a positive score for `query`, best first (ties: lower index
    /// first), leaving out `exclude`.
    pub fn top_k(&self, query: &str, k: usize, exclude: &[usize]) -> Vec<usize> {
        let mut scores = vec![0.0; self.doc_len.len()];
        for t in tokens(query) {
            if let Some(list) = self.postings.get(&t) {
                let idf = self.idf(list.len());
                for &(d, tf) in list {
                    scores[d] += self.term_score(idf, tf, d);
                }
            }
        }
        let mut ranked: Vec<usize> = (0..scores.len())
            .filter(|d| scores[*d] > 0.0 && !exclude.contains(d))
            .collect();
        ranked.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        ranked.truncate(k);
        ranked
    }
}

/// How RAFT picks the distractor documents of an example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistractorMode {
    /// Documents of random other records.
    #[default]
    Random,
    /// The other records' documents that BM25 ranks highest for the question (hard
    /// distractors), topped up with random ones when too few share a word with it.
    Bm25,
}

/// Options of [`raft`] and [`raft_eval`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RaftOptions {
    /// Field holding the question.
    pub question_field: String,
    /// Field holding the answer (the trained part).
    pub answer_field: String,
    /// Field holding the document that answers the question.
    pub document_field: String,
    /// Probability that an example's prompt contains its own (right) document.
    pub p_oracle: f64,
    /// Documents of other records in every prompt.
    pub distractors: usize,
    /// How the distractors are picked.
    pub mode: DistractorMode,
    /// Seed of the oracle draws, the distractors and their order.
    pub seed: u64,
}

impl Default for RaftOptions {
    fn default() -> Self {
        Self {
            question_field: "question".to_string(),
            answer_field: "answer".to_string(),
            document_field: "document".to_string(),
            p_oracle: 0.8,
            distractors: 2,
            mode: DistractorMode::Random,
            seed: 0,
        }
    }
}

/// The evaluation conditions of [`raft_eval`]; on the command line `no-document`,
/// `right-document`, `distractors-only` and `edited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RaftEval {
    /// The question alone.
    NoDocument,
    /// The right document alone.
    RightDocument,
    /// Distractors only (`distractors` of them, at least one).
    DistractorsOnly,
    /// The edited document ([`EDITED_DOCUMENT_FIELD`]) as the right one, plus distractors; the
    /// answer is [`EDITED_ANSWER_FIELD`].
    Edited,
}

/// The distinct documents of a record set, with the record -> document map and, for BM25
/// distractors, an index.
struct DocPool<'a> {
    texts: Vec<&'a str>,
    index: BTreeMap<&'a str, usize>,
    of_record: Vec<usize>,
    bm25: Option<Bm25>,
}

impl<'a> DocPool<'a> {
    fn new(records: &'a [Record], o: &RaftOptions) -> Result<Self, MissingField> {
        let mut texts = Vec::new();
        let mut index = BTreeMap::new();
        let mut of_record = Vec::with_capacity(records.len());
        for r in records {
            let doc = r.require(&o.document_field)?;
            let i = *index.entry(doc).or_insert_with(|| {
                texts.push(doc);
                texts.len() - 1
            });
            of_record.push(i);
        }
        let bm25 = (o.mode == DistractorMode::Bm25).then(|| Bm25::new(&texts));
        Ok(Self {
            texts,
            index,
            of_record,
            bm25,
        })
    }

    /// `k` distinct documents (fewer if there are not enough) other than those in `exclude`.
    fn distractors(
        &self,
        question: &str,
        exclude: &[usize],
        k: usize,
        rng: &mut StdRng,
    ) -> Vec<&'a str> {
        let n = self.texts.len();
        let k = k.min(n.saturating_sub(exclude.len()));
        let mut chosen = match &self.bm25 {
            Some(bm25) => bm25.top_k(question, k, exclude),
            None => Vec::new(),
        };
        if chosen.len() < k {
            let need = k - chosen.len();
            let extra: Vec<usize> = rand::seq::index::sample(rng, n, (k + exclude.len()).min(n))
                .into_iter()
                .filter(|j| !exclude.contains(j) && !chosen.contains(j))
                .take(need)
                .collect();
            chosen.extend(extra);
        }
        chosen.into_iter().map(|j| self.texts[j]).collect()
    }

    /// The documents to leave out of an example whose right document is `right`: the record's
    /// own document and any document with the same text as `right`.
    fn exclusions(&self, record: usize, right: Option<&str>) -> Vec<usize> {
        let mut exclude = vec![self.of_record[record]];
        if let Some(&j) = right.and_then(|d| self.index.get(d)) {
            exclude.push(j);
        }
        exclude.sort_unstable();
        exclude.dedup();
        exclude
    }
}

/// The prompt: each document on a line `doc: ...`, then `q: <question>` and `a: `.
fn raft_example(docs: &[&str], question: &str, answer: &str) -> TextExample {
    let mut prompt = String::new();
    for d in docs {
        prompt.push_str("doc: ");
        prompt.push_str(&one_line(d));
        prompt.push('\n');
    }
    prompt.push_str("q: ");
    prompt.push_str(&one_line(question));
    prompt.push_str("\na: ");
    TextExample {
        prompt,
        answer: format!("{answer}\n"),
    }
}

/// Retrieval-aware training examples: per record, its own document with probability
/// `p_oracle`, plus `distractors` documents of other records (never the same text twice), in
/// random order, then the question; the answer is trained. `p_oracle = 0, distractors = 0`
/// gives question-only examples; `p_oracle = 1, distractors = 0` right-document-only ones.
pub fn raft(records: &[Record], o: &RaftOptions) -> Result<Vec<TextExample>, TransformError> {
    let pool = DocPool::new(records, o)?;
    let mut rng = StdRng::seed_from_u64(o.seed);
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let question = r.require(&o.question_field)?;
            let answer = r.require(&o.answer_field)?;
            let with_right = rng.random::<f64>() < o.p_oracle;
            let own = pool.texts[pool.of_record[i]];
            let mut docs =
                pool.distractors(question, &pool.exclusions(i, None), o.distractors, &mut rng);
            if with_right {
                docs.push(own);
            }
            docs.shuffle(&mut rng);
            Ok(raft_example(&docs, question, answer))
        })
        .collect()
}

/// Evaluation examples under one condition, in the prompt format of [`raft`], so that a model
/// trained with it reads familiar text.
pub fn raft_eval(
    records: &[Record],
    o: &RaftOptions,
    cond: RaftEval,
) -> Result<Vec<TextExample>, TransformError> {
    let pool = DocPool::new(records, o)?;
    let mut rng = StdRng::seed_from_u64(o.seed);
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let question = r.require(&o.question_field)?;
            let own = pool.texts[pool.of_record[i]];
            let (right, answer, n_distractors) = match cond {
                RaftEval::NoDocument => (None, r.require(&o.answer_field)?, 0),
                RaftEval::RightDocument => (Some(own), r.require(&o.answer_field)?, 0),
                RaftEval::DistractorsOnly => {
                    (None, r.require(&o.answer_field)?, o.distractors.max(1))
                }
                RaftEval::Edited => (
                    Some(r.require(EDITED_DOCUMENT_FIELD)?),
                    r.require(EDITED_ANSWER_FIELD)?,
                    o.distractors,
                ),
            };
            let exclude = pool.exclusions(i, right);
            let mut docs = pool.distractors(question, &exclude, n_distractors, &mut rng);
            docs.extend(right);
            docs.shuffle(&mut rng);
            Ok(raft_example(&docs, question, answer))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::generators::api_zoo;
    use crate::data::transforms::rec;
    use std::collections::BTreeSet;
    /// The documents of a RAFT prompt.
    fn doc_lines(prompt: &str) -> Vec<&str> {
        prompt
            .lines()
            .filter_map(|l| l.strip_prefix("doc: "))
            .collect()
    }

    #[test]
    fn raft_mixes_right_document_and_distinct_distractors() {
        let recs = api_zoo(1, 300);
        let o = RaftOptions {
            seed: 9,
            ..RaftOptions::default()
        };
        let ex = raft(&recs, &o).unwrap();
        assert_eq!(ex.len(), recs.len());
        let mut with_right = 0;
        for (r, e) in recs.iter().zip(&ex) {
            let docs = doc_lines(&e.prompt);
            let right = r.get("document").unwrap();
            let has_right = docs.contains(&right);
            with_right += usize::from(has_right);
            let unique: BTreeSet<&str> = docs.iter().copied().collect();
            assert_eq!(unique.len(), docs.len(), "{}", e.prompt);
            assert_eq!(docs.len() - usize::from(has_right), o.distractors);
            let answer = r.get("answer").unwrap();
            assert_eq!(e.answer, format!("{answer}\n"));
            assert!(!e.prompt.contains(answer), "{}", e.prompt);
            let q = r.get("question").unwrap();
            assert!(e.prompt.ends_with(&format!("q: {q}\na: ")));
        }
        let frac = with_right as f64 / ex.len() as f64;
        assert!((frac - 0.8).abs() < 0.06, "{frac}");
        assert_eq!(raft(&recs, &o).unwrap(), ex, "deterministic");
    }

    #[test]
    fn raft_special_cases_and_duplicate_documents() {
        let recs = api_zoo(2, 50);
        let none = RaftOptions {
            p_oracle: 0.0,
            distractors: 0,
            ..RaftOptions::default()
        };
        assert!(
            raft(&recs, &none)
                .unwrap()
                .iter()
                .all(|e| e.prompt.starts_with("q: "))
        );
        let right = RaftOptions {
            p_oracle: 1.0,
            distractors: 0,
            ..RaftOptions::default()
        };
        for (r, e) in recs.iter().zip(raft(&recs, &right).unwrap()) {
            assert_eq!(doc_lines(&e.prompt), vec![r.get("document").unwrap()]);
        }
        // Records sharing a document: it is never both the right one and a distractor.
        let shared: Vec<Record> = (0..6)
            .map(|i| {
                let doc = if i < 3 { "the same doc" } else { "another doc" };
                rec(
                    &format!("s:{i}"),
                    &[("question", "q"), ("answer", "x"), ("document", doc)],
                )
            })
            .collect();
        let all = RaftOptions {
            p_oracle: 1.0,
            distractors: 3,
            ..RaftOptions::default()
        };
        for e in raft(&shared, &all).unwrap() {
            let docs = doc_lines(&e.prompt);
            assert_eq!(docs.len(), 2, "{}", e.prompt);
            assert_ne!(docs[0], docs[1]);
        }
    }

    #[test]
    fn bm25_distractors_score_higher_than_random_ones() {
        let recs = api_zoo(4, 300);
        let texts: Vec<&str> = recs.iter().map(|r| r.get("document").unwrap()).collect();
        let bm25 = Bm25::new(&texts);
        let mean_score = |mode: DistractorMode| {
            let o = RaftOptions {
                mode,
                p_oracle: 0.0,
                distractors: 3,
                seed: 5,
                ..RaftOptions::default()
            };
            let ex = raft(&recs, &o).unwrap();
            let mut total = 0.0;
            let mut count = 0;
            for (r, e) in recs.iter().zip(&ex) {
                for d in doc_lines(&e.prompt) {
                    let j = texts.iter().position(|t| *t == d).unwrap();
                    total += bm25.score(r.get("question").unwrap(), j);
                    count += 1;
                }
            }
            assert_eq!(count, recs.len() * 3);
            total / count as f64
        };
        let (hard, random) = (
            mean_score(DistractorMode::Bm25),
            mean_score(DistractorMode::Random),
        );
        assert!(hard > 1.5 * random, "bm25 {hard} vs random {random}");
    }

    #[test]
    fn bm25_ranks_matching_documents_first() {
        let docs = ["red apple pie", "blue sky", "red red car", "green tree"];
        let bm25 = Bm25::new(&docs);
        assert_eq!(bm25.top_k("red car", 4, &[]), vec![2, 0]);
        assert_eq!(bm25.top_k("red car", 4, &[2]), vec![0]);
        assert_eq!(bm25.score("purple", 0), 0.0);
        assert!(bm25.score("red", 2) > bm25.score("red", 0));
    }

    #[test]
    fn raft_eval_conditions() {
        let recs = api_zoo(3, 120);
        let o = RaftOptions {
            distractors: 2,
            ..RaftOptions::default()
        };
        let run = |cond| raft_eval(&recs, &o, cond).unwrap();
        let (none, right, distract, edited) = (
            run(RaftEval::NoDocument),
            run(RaftEval::RightDocument),
            run(RaftEval::DistractorsOnly),
            run(RaftEval::Edited),
        );
        for (i, r) in recs.iter().enumerate() {
            let doc = r.get("document").unwrap();
            let answer = format!("{}\n", r.get("answer").unwrap());
            assert!(doc_lines(&none[i].prompt).is_empty());
            assert_eq!(none[i].answer, answer);
            assert_eq!(doc_lines(&right[i].prompt), vec![doc]);
            let d = doc_lines(&distract[i].prompt);
            assert_eq!(d.len(), 2);
            assert!(!d.contains(&doc));
            let e = doc_lines(&edited[i].prompt);
            let edited_doc = r.get(EDITED_DOCUMENT_FIELD).unwrap();
            assert_eq!(e.len(), 3);
            assert!(e.contains(&edited_doc) && !e.contains(&doc));
            let edited_answer = r.get(EDITED_ANSWER_FIELD).unwrap();
            assert_eq!(edited[i].answer, format!("{edited_answer}\n"));
            assert_ne!(edited[i].answer, answer);
            // The renamed argument is in the edited document and the edited answer only.
            let new_arg = edited_answer
                .split(['(', ',', ')'])
                .filter_map(|kv| kv.trim().split_once('=').map(|(k, _)| k))
                .find(|k| !answer.contains(&format!("{k}=")))
                .unwrap();
            assert!(edited_doc.contains(new_arg) && !doc.contains(new_arg));
        }
        let zero = RaftOptions {
            distractors: 0,
            ..RaftOptions::default()
        };
        let d = raft_eval(&recs, &zero, RaftEval::DistractorsOnly).unwrap();
        assert!(d.iter().all(|e| doc_lines(&e.prompt).len() == 1));
    }
}
