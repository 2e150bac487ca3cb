//! Transforms: what records become for each training objective.
//!
//! - [`sft`]: instruction formatting, loss on the response.
//! - [`raft`] / [`raft_eval`]: retrieval-aware fine-tuning, documents (the right one or not,
//!   plus distractors) in the prompt, loss on the answer.
//! - [`symbol_prompts`]: symbol tuning, k-shot prompts whose labels are arbitrary symbols.
//! - [`linkbert_pairs`]: LinkBERT segment pairs with a next / random / linked relation.
//!
//! Every transform is deterministic given its options' seed.

use super::record::{MissingField, Record, Relation, RelationPair, TextExample};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The record field [`RaftEval::Edited`] reads the edited document from.
pub const EDITED_DOCUMENT_FIELD: &str = "document_edited";
/// The record field [`RaftEval::Edited`] reads the answer under the edited document from.
pub const EDITED_ANSWER_FIELD: &str = "answer_edited";

/// Why a transform cannot turn records into examples.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// A record lacks a field the transform reads.
    #[error(transparent)]
    MissingField(#[from] MissingField),
    /// The SFT template has no `{prompt}` slot for the instruction.
    #[error("the instruction template has no {{prompt}}: {template:?}")]
    TemplateWithoutPrompt {
        /// The template as given.
        template: String,
    },
    /// No task has more records than the shots of a prompt.
    #[error(
        "symbol tuning needs a task with at least {} records ({k_shot} shots and a query)",
        .k_shot + 1
    )]
    TooFewTaskRecords {
        /// Labelled examples per prompt.
        k_shot: usize,
    },
    /// No document is long enough to give a segment A that has a next segment.
    #[error("no document is long enough for two segments of {segment_chars} characters")]
    NoTwoSegmentDocument {
        /// The segment length asked for.
        segment_chars: usize,
    },
    /// Random pairs need a second document to draw from.
    #[error("LinkBERT pairs need at least two documents with text")]
    TooFewDocuments,
    /// Linked pairs need a link from a document with two segments to one with text.
    #[error("no document with two segments links to another document with text")]
    NoLinkedDocument,
    /// Drawing a linked document by inverse in-degree failed.
    #[error("{0}")]
    Weights(#[from] rand::distr::weighted::Error),
}

/// `text` with every run of whitespace (newlines included) turned into one space, so that a
/// value takes exactly one line of a prompt.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Lowercase alphanumeric tokens, for BM25 and TF-IDF.
fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
}

// ---------------------------------------------------------------------------------------------
// SFT
// ---------------------------------------------------------------------------------------------

/// Options of [`sft`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SftOptions {
    /// Field holding the instruction.
    pub prompt_field: String,
    /// Field holding the response (the trained part).
    pub response_field: String,
    /// The prompt; `{prompt}` is replaced by the instruction.
    pub template: String,
}

impl Default for SftOptions {
    fn default() -> Self {
        Self {
            prompt_field: "prompt".to_string(),
            response_field: "response".to_string(),
            template: "### Instruction:\n{prompt}\n### Response:\n".to_string(),
        }
    }
}

/// Instruction examples: the prompt is the template around the instruction, the answer the
/// response and a newline. Errors name the record and the missing field.
pub fn sft(records: &[Record], o: &SftOptions) -> Result<Vec<TextExample>, TransformError> {
    if !o.template.contains("{prompt}") {
        return Err(TransformError::TemplateWithoutPrompt {
            template: o.template.clone(),
        });
    }
    records
        .iter()
        .map(|r| {
            let prompt = r.require(&o.prompt_field)?;
            let response = r.require(&o.response_field)?;
            Ok(TextExample {
                prompt: o.template.replace("{prompt}", prompt),
                answer: format!("{response}\n"),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// BM25
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// RAFT
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Symbol tuning
// ---------------------------------------------------------------------------------------------

/// Which labels symbol-tuning prompts show; on the command line `natural`, `symbols` and
/// `flipped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LabelMode {
    /// The labels as they are.
    Natural,
    /// Each label replaced by a meaningless symbol, drawn anew for every prompt.
    #[default]
    Symbols,
    /// Natural labels, permuted: swapped for two labels, rotated by one (in sorted order) for
    /// more.
    Flipped,
}

/// Options of [`symbol_prompts`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SymbolOptions {
    /// Field holding the input shown before `->`.
    pub input_field: String,
    /// Field holding the natural label.
    pub label_field: String,
    /// Field naming the task of a record; records without it form one unnamed task.
    pub task_field: String,
    /// Labelled examples before the query.
    pub k_shot: usize,
    /// Which labels the prompts show.
    pub mode: LabelMode,
    /// Seed of the task, record, shot and symbol draws.
    pub seed: u64,
}

impl Default for SymbolOptions {
    fn default() -> Self {
        Self {
            input_field: "input".to_string(),
            label_field: "label".to_string(),
            task_field: "task".to_string(),
            k_shot: 4,
            mode: LabelMode::Symbols,
            seed: 0,
        }
    }
}

/// Short meaningless tokens that stand for labels.
const SYMBOLS: &[&str] = &[
    "foo", "zib", "#7", "qux", "dax", "wug", "blick", "ro", "fep", "tov", "@3", "lorp", "kiki",
    "mib", "&2", "yat", "snu", "gax", "vo", "%4", "plim", "zorb", "nuk", "tef",
];

/// The sorted distinct labels of every task.
pub fn task_labels(records: &[Record], o: &SymbolOptions) -> BTreeMap<String, Vec<String>> {
    let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in records {
        if let Some(label) = r.get(&o.label_field) {
            let task = r.get(&o.task_field).unwrap_or_default();
            labels
                .entry(task.to_string())
                .or_default()
                .insert(label.to_string());
        }
    }
    labels
        .into_iter()
        .map(|(task, set)| (task, set.into_iter().collect()))
        .collect()
}

/// `n` distinct symbols, none equal to a label of the task, in random order.
fn draw_symbols(labels: &[String], rng: &mut StdRng) -> Vec<String> {
    let is_label = |s: &str| labels.iter().any(|l| l == s);
    let mut pool: Vec<String> = SYMBOLS
        .iter()
        .filter(|s| !is_label(s))
        .map(|s| s.to_string())
        .collect();
    let mut extra = 0;
    while pool.len() < labels.len() {
        let s = format!("x{extra}");
        extra += 1;
        if !is_label(&s) {
            pool.push(s);
        }
    }
    pool.shuffle(rng);
    pool.truncate(labels.len());
    pool
}

/// The label shown for each natural label of a task (`labels` sorted), under `mode`.
fn label_map(labels: &[String], mode: LabelMode, rng: &mut StdRng) -> BTreeMap<String, String> {
    let shown: Vec<String> = match mode {
        LabelMode::Natural => labels.to_vec(),
        LabelMode::Flipped => (0..labels.len())
            .map(|i| labels[(i + 1) % labels.len()].clone())
            .collect(),
        LabelMode::Symbols => draw_symbols(labels, rng),
    };
    labels.iter().cloned().zip(shown).collect()
}

/// Query and shots (indices into `rows`) of one prompt: `k` shots other than the query, with
/// every label among them when `k` allows, in random order.
fn pick_shots(
    rows: &[(String, String)],
    labels: &[String],
    k: usize,
    rng: &mut StdRng,
) -> (usize, Vec<usize>) {
    let query = rng.random_range(0..rows.len());
    let mut order: Vec<usize> = (0..rows.len()).filter(|&j| j != query).collect();
    order.shuffle(rng);
    let mut shots = Vec::with_capacity(k);
    if k >= labels.len() {
        for label in labels {
            if let Some(&j) = order.iter().find(|&&j| &rows[j].1 == label) {
                shots.push(j);
            }
        }
    }
    for &j in &order {
        if shots.len() == k {
            break;
        }
        if !shots.contains(&j) {
            shots.push(j);
        }
    }
    shots.shuffle(rng);
    (query, shots)
}

/// `n_prompts` k-shot prompts without instructions. Each picks a task (among those with more
/// than `k_shot` records) and `k_shot + 1` distinct records of it: lines `<input> -> <label>`
/// for the shots, then `<query input> -> `; the answer is the query's shown label. Labels are
/// shown as `mode` says, consistently within a prompt.
pub fn symbol_prompts(
    records: &[Record],
    o: &SymbolOptions,
    n_prompts: usize,
) -> Result<Vec<TextExample>, TransformError> {
    let mut by_task: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for r in records {
        let input = one_line(r.require(&o.input_field)?);
        let label = r.require(&o.label_field)?.to_string();
        let task = r.get(&o.task_field).unwrap_or_default();
        by_task.entry(task).or_default().push((input, label));
    }
    let labels = task_labels(records, o);
    let tasks: Vec<(&str, Vec<(String, String)>)> = by_task
        .into_iter()
        .filter(|(_, rows)| rows.len() > o.k_shot)
        .collect();
    if tasks.is_empty() && n_prompts > 0 {
        return Err(TransformError::TooFewTaskRecords { k_shot: o.k_shot });
    }
    let mut rng = StdRng::seed_from_u64(o.seed);
    let mut out = Vec::with_capacity(n_prompts);
    for _ in 0..n_prompts {
        let (task, rows) = &tasks[rng.random_range(0..tasks.len())];
        let labels = &labels[*task];
        let shown = label_map(labels, o.mode, &mut rng);
        let (query, shots) = pick_shots(rows, labels, o.k_shot, &mut rng);
        let mut prompt = String::new();
        for &j in &shots {
            let (input, label) = &rows[j];
            prompt.push_str(&format!("{input} -> {}\n", shown[label]));
        }
        let (input, label) = &rows[query];
        prompt.push_str(&format!("{input} -> "));
        out.push(TextExample {
            prompt,
            answer: format!("{}\n", shown[label]),
        });
    }
    Ok(out)
}

/// Splits records into those of every task but `held_out` (first) and those of `held_out`.
/// Records without a task field go with the first.
pub fn split_by_task(
    records: &[Record],
    task_field: &str,
    held_out: &str,
) -> (Vec<Record>, Vec<Record>) {
    records
        .iter()
        .cloned()
        .partition(|r| r.get(task_field) != Some(held_out))
}

// ---------------------------------------------------------------------------------------------
// LinkBERT
// ---------------------------------------------------------------------------------------------

/// Options of [`link_graph`] and [`linkbert_pairs`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinkOptions {
    /// Field holding a document's title, which `[[Title]]` and `[text](Title)` links name.
    pub title_field: String,
    /// Field holding a document's text, which is cut into segments.
    pub text_field: String,
    /// Target segment length in characters.
    pub segment_chars: usize,
    /// Seed of the relation, segment and document draws.
    pub seed: u64,
}

impl Default for LinkOptions {
    fn default() -> Self {
        Self {
            title_field: "title".to_string(),
            text_field: "text".to_string(),
            segment_chars: 120,
            seed: 0,
        }
    }
}

/// Out-links per document in the TF-IDF graph built for collections without links.
pub const TFIDF_NEIGHBOURS: usize = 5;

/// The targets of `[[Target]]` (`|alias` and `#section` dropped) and `[text](target)` links in
/// `text`, in order.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("[[") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("]]") else { break };
        let inner = &after[..end];
        out.push(
            inner
                .split(['|', '#'])
                .next()
                .unwrap_or_default()
                .to_string(),
        );
        rest = &after[end + 2..];
    }
    let mut rest = text;
    while let Some(p) = rest.find("](") {
        let before = &rest[..p];
        let after = &rest[p + 2..];
        let line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
        if let Some(end) = after.find(')')
            && line.contains('[')
        {
            let target = after[..end].split(['#', '?']).next().unwrap_or_default();
            let target = target.trim_matches(['<', '>']).replace("%20", " ");
            if !target.trim().is_empty() {
                out.push(target);
            }
        }
        rest = after;
    }
    out
}

/// The file name of `path` without its extension (a leading dot is kept).
fn file_stem(path: &str) -> &str {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    match name.rfind('.') {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    }
}

/// The file stem of a record's origin (`path:line` or `path`).
fn origin_stem(origin: &str) -> &str {
    let path = match origin.rsplit_once(':') {
        Some((path, line)) if !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) => path,
        _ => origin,
    };
    file_stem(path)
}

/// Finds the document a link target names: a title (first one wins), else a file stem of an
/// origin that only one document has; case-insensitive.
struct Resolver {
    by_title: BTreeMap<String, usize>,
    by_stem: BTreeMap<String, usize>,
}

impl Resolver {
    fn new(docs: &[Record], o: &LinkOptions) -> Self {
        let mut by_title = BTreeMap::new();
        let mut stems: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, d) in docs.iter().enumerate() {
            if let Some(title) = d.get(&o.title_field) {
                by_title.entry(title.trim().to_lowercase()).or_insert(i);
            }
            stems
                .entry(origin_stem(&d.origin).to_lowercase())
                .or_default()
                .push(i);
        }
        let by_stem = stems
            .into_iter()
            .filter(|(_, ids)| ids.len() == 1)
            .map(|(stem, ids)| (stem, ids[0]))
            .collect();
        Self { by_title, by_stem }
    }

    fn resolve(&self, target: &str) -> Option<usize> {
        let key = target.trim().to_lowercase();
        self.by_title
            .get(&key)
            .or_else(|| self.by_stem.get(&key))
            .or_else(|| self.by_stem.get(file_stem(&key)))
            .copied()
    }
}

/// Each document linked to its `k` most cosine-similar documents (TF-IDF vectors; only
/// documents sharing a token count), most similar first.
fn tfidf_graph(texts: &[&str], k: usize) -> Vec<Vec<usize>> {
    let n = texts.len();
    let mut vocab: BTreeMap<String, usize> = BTreeMap::new();
    let counts: Vec<BTreeMap<usize, f64>> = texts
        .iter()
        .map(|t| {
            let mut c = BTreeMap::new();
            for tok in tokens(t) {
                let next = vocab.len();
                let id = *vocab.entry(tok).or_insert(next);
                *c.entry(id).or_insert(0.0) += 1.0;
            }
            c
        })
        .collect();
    let mut df = vec![0usize; vocab.len()];
    for c in &counts {
        for &id in c.keys() {
            df[id] += 1;
        }
    }
    let mut postings: Vec<Vec<(usize, f64)>> = vec![Vec::new(); vocab.len()];
    let vectors: Vec<Vec<(usize, f64)>> = counts
        .iter()
        .enumerate()
        .map(|(d, c)| {
            let mut v: Vec<(usize, f64)> = c
                .iter()
                .map(|(&id, &tf)| {
                    let idf = ((1.0 + n as f64) / (1.0 + df[id] as f64)).ln() + 1.0;
                    (id, tf * idf)
                })
                .collect();
            let norm = v.iter().map(|(_, w)| w * w).sum::<f64>().sqrt();
            for (id, w) in &mut v {
                *w /= norm;
                postings[*id].push((d, *w));
            }
            v
        })
        .collect();
    vectors
        .iter()
        .enumerate()
        .map(|(d, v)| {
            let mut sim = vec![0.0; n];
            for &(id, w) in v {
                for &(e, w2) in &postings[id] {
                    sim[e] += w * w2;
                }
            }
            let mut ranked: Vec<usize> = (0..n).filter(|&e| e != d && sim[e] > 0.0).collect();
            ranked.sort_by(|&a, &b| sim[b].total_cmp(&sim[a]).then(a.cmp(&b)));
            ranked.truncate(k);
            ranked
        })
        .collect()
}

/// Out-links of every document (indices into `docs`, no self-links, no repeats): `[[Title]]`
/// wiki links and Markdown links `[text](target)` whose target is another document's title or
/// the file name of its origin (stem, case-insensitive). When no document links to another,
/// each links to its [`TFIDF_NEIGHBOURS`] most TF-IDF-similar documents instead.
pub fn link_graph(docs: &[Record], o: &LinkOptions) -> Vec<Vec<usize>> {
    let resolver = Resolver::new(docs, o);
    let texts: Vec<&str> = docs
        .iter()
        .map(|d| d.get(&o.text_field).unwrap_or_default())
        .collect();
    let graph: Vec<Vec<usize>> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let mut out = Vec::new();
            for target in link_targets(text) {
                if let Some(j) = resolver.resolve(&target)
                    && j != i
                    && !out.contains(&j)
                {
                    out.push(j);
                }
            }
            out
        })
        .collect();
    if graph.iter().all(Vec::is_empty) {
        tfidf_graph(&texts, TFIDF_NEIGHBOURS)
    } else {
        graph
    }
}

/// `text` with `[[Target]]` and `[[Target|alias]]` written as `Target` and `alias`.
fn strip_wiki_brackets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("[[") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("]]") else { break };
        out.push_str(&rest[..start]);
        let inner = &after[..end];
        out.push_str(inner.rsplit('|').next().unwrap_or(inner));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// `text` cut into trimmed, non-empty segments of at most `segment_chars` characters: each ends
/// at the last sentence end (`.`, `!` or `?` before whitespace, or a newline) in its second
/// half, else at the last whitespace there, else after `segment_chars` characters.
pub fn segments(text: &str, segment_chars: usize) -> Vec<String> {
    let limit = segment_chars.max(1);
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let byte_at = |i: usize| chars.get(i).map_or(text.len(), |&(b, _)| b);
    let sentence_end = |j: usize| {
        let c = chars[j].1;
        c == '\n'
            || (matches!(c, '.' | '!' | '?')
                && chars
                    .get(j + 1)
                    .is_none_or(|&(_, next)| next.is_whitespace()))
    };
    let mut out = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let end = if chars.len() - start <= limit {
            chars.len()
        } else {
            let window_end = start + limit;
            let min_cut = start + limit / 2;
            (min_cut..window_end)
                .rev()
                .find(|&j| sentence_end(j))
                .map(|j| j + 1)
                .or_else(|| {
                    (min_cut.max(start + 1)..=window_end)
                        .rev()
                        .find(|&j| chars[j].1.is_whitespace())
                })
                .unwrap_or(window_end)
        };
        let segment = text[byte_at(start)..byte_at(end)].trim();
        if !segment.is_empty() {
            out.push(segment.to_string());
        }
        start = end;
    }
    out
}

/// `n_pairs` LinkBERT pairs. Each takes segment `i` (not the last) of a document with at least
/// two segments as A, and a relation drawn uniformly: Next takes B = segment `i + 1`; Random a
/// segment of another random document; Linked a random segment of a document A's document
/// links to (see [`link_graph`]), linked documents drawn with probability proportional to
/// 1 / their in-degree, and A drawn among documents with links. Wiki-link brackets are removed
/// from the segments; the titles stay.
pub fn linkbert_pairs(
    docs: &[Record],
    o: &LinkOptions,
    n_pairs: usize,
) -> Result<Vec<RelationPair>, TransformError> {
    let segs: Vec<Vec<String>> = docs
        .iter()
        .map(|d| {
            let text = d.require(&o.text_field)?;
            Ok(segments(&strip_wiki_brackets(text), o.segment_chars))
        })
        .collect::<Result<_, MissingField>>()?;
    if n_pairs == 0 {
        return Ok(Vec::new());
    }
    let graph = link_graph(docs, o);
    let mut in_degree = vec![0usize; docs.len()];
    for &t in graph.iter().flatten() {
        in_degree[t] += 1;
    }
    let has_segments = |d: usize| !segs[d].is_empty();
    let starts: Vec<usize> = (0..docs.len()).filter(|&d| segs[d].len() >= 2).collect();
    let linked_starts: Vec<usize> = starts
        .iter()
        .copied()
        .filter(|&d| graph[d].iter().any(|&t| has_segments(t)))
        .collect();
    let with_segments: Vec<usize> = (0..docs.len()).filter(|&d| has_segments(d)).collect();
    if starts.is_empty() {
        return Err(TransformError::NoTwoSegmentDocument {
            segment_chars: o.segment_chars,
        });
    }
    if with_segments.len() < 2 {
        return Err(TransformError::TooFewDocuments);
    }
    if linked_starts.is_empty() {
        return Err(TransformError::NoLinkedDocument);
    }
    let mut rng = StdRng::seed_from_u64(o.seed);
    let mut pairs = Vec::with_capacity(n_pairs);
    for _ in 0..n_pairs {
        let relation = Relation::ALL[rng.random_range(0..Relation::ALL.len())];
        let candidates = if relation == Relation::Linked {
            &linked_starts
        } else {
            &starts
        };
        let a_doc = candidates[rng.random_range(0..candidates.len())];
        let i = rng.random_range(0..segs[a_doc].len() - 1);
        let b_doc = match relation {
            Relation::Next => a_doc,
            Relation::Random => loop {
                let d = with_segments[rng.random_range(0..with_segments.len())];
                if d != a_doc {
                    break d;
                }
            },
            Relation::Linked => {
                let targets: Vec<usize> = graph[a_doc]
                    .iter()
                    .copied()
                    .filter(|&t| has_segments(t))
                    .collect();
                *targets.choose_weighted(&mut rng, |&t| 1.0 / in_degree[t] as f64)?
            }
        };
        let b = if relation == Relation::Next {
            segs[a_doc][i + 1].clone()
        } else {
            segs[b_doc][rng.random_range(0..segs[b_doc].len())].clone()
        };
        pairs.push(RelationPair {
            a: segs[a_doc][i].clone(),
            b,
            relation,
            a_doc,
            b_doc,
        });
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::generators::{HELD_OUT_TASK, api_zoo, class_tasks, linked_docs};

    fn rec(origin: &str, fields: &[(&str, &str)]) -> Record {
        Record::new(
            origin,
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The documents of a RAFT prompt.
    fn doc_lines(prompt: &str) -> Vec<&str> {
        prompt
            .lines()
            .filter_map(|l| l.strip_prefix("doc: "))
            .collect()
    }

    #[test]
    fn sft_templates_prompt_and_answer() {
        let recs = vec![rec(
            "a.jsonl:1",
            &[("prompt", "add 2 and 3"), ("response", "5")],
        )];
        let ex = sft(&recs, &SftOptions::default()).unwrap();
        assert_eq!(
            ex[0].prompt,
            "### Instruction:\nadd 2 and 3\n### Response:\n"
        );
        assert_eq!(ex[0].answer, "5\n");
        let custom = SftOptions {
            template: "Q: {prompt}\nA: ".to_string(),
            ..SftOptions::default()
        };
        assert_eq!(
            sft(&recs, &custom).unwrap()[0].prompt,
            "Q: add 2 and 3\nA: "
        );
        let missing = vec![rec("b.jsonl:7", &[("prompt", "hi")])];
        let err = sft(&missing, &SftOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("b.jsonl:7") && err.contains("response"),
            "{err}"
        );
        let no_slot = SftOptions {
            template: "no slot".to_string(),
            ..SftOptions::default()
        };
        assert!(sft(&recs, &no_slot).is_err());
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

    /// Parses a symbol prompt: the shots (input, shown label) and the query input.
    fn parse_prompt(prompt: &str) -> (Vec<(&str, &str)>, &str) {
        let lines: Vec<&str> = prompt.split('\n').collect();
        let (query, shots) = lines.split_last().unwrap();
        let shots = shots
            .iter()
            .map(|l| l.split_once(" -> ").unwrap())
            .collect();
        (shots, query.strip_suffix(" -> ").unwrap())
    }

    /// The natural label of every input of every task.
    fn natural_labels(recs: &[Record]) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut m: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for r in recs {
            m.entry(r.get("task").unwrap().to_string())
                .or_default()
                .insert(
                    r.get("input").unwrap().to_string(),
                    r.get("label").unwrap().to_string(),
                );
        }
        m
    }

    /// A prompt's task labels, and (natural, shown) label of every shot and the query.
    type PromptLabels = (Vec<String>, Vec<(String, String)>);

    /// The labels of every prompt.
    fn prompt_labels(recs: &[Record], ex: &[TextExample]) -> Vec<PromptLabels> {
        let natural = natural_labels(recs);
        let labels = task_labels(recs, &SymbolOptions::default());
        ex.iter()
            .map(|e| {
                let (shots, query) = parse_prompt(&e.prompt);
                let (task, inputs) = natural
                    .iter()
                    .find(|(_, m)| {
                        m.contains_key(query) && shots.iter().all(|(i, _)| m.contains_key(*i))
                    })
                    .unwrap();
                let mut pairs: Vec<(String, String)> = shots
                    .iter()
                    .map(|(i, s)| (inputs[*i].clone(), s.to_string()))
                    .collect();
                pairs.push((
                    inputs[query].clone(),
                    e.answer.strip_suffix('\n').unwrap().to_string(),
                ));
                (labels[task].clone(), pairs)
            })
            .collect()
    }

    #[test]
    fn symbol_prompts_map_labels_consistently() {
        let recs = class_tasks(6, 60);
        let all_natural: BTreeSet<String> = task_labels(&recs, &SymbolOptions::default())
            .into_values()
            .flatten()
            .collect();
        let o = SymbolOptions {
            seed: 3,
            ..SymbolOptions::default()
        };
        let ex = symbol_prompts(&recs, &o, 300).unwrap();
        assert_eq!(ex.len(), 300);
        let mut mappings = BTreeSet::new();
        for (labels, pairs) in prompt_labels(&recs, &ex) {
            assert_eq!(pairs.len(), o.k_shot + 1);
            let mut map: BTreeMap<&str, &str> = BTreeMap::new();
            for (natural, shown) in &pairs {
                assert!(!all_natural.contains(shown), "{shown}");
                assert!(shown.is_ascii());
                assert_eq!(*map.entry(natural).or_insert(shown), shown.as_str());
            }
            let shown: BTreeSet<&str> = map.values().copied().collect();
            assert_eq!(shown.len(), map.len(), "distinct labels, distinct symbols");
            // Every label of the task is among the shots.
            let shot_labels: BTreeSet<&String> = pairs[..o.k_shot].iter().map(|(n, _)| n).collect();
            assert_eq!(shot_labels.len(), labels.len());
            mappings.insert(format!("{map:?}"));
        }
        assert!(mappings.len() > 20, "symbols are redrawn per prompt");
    }

    #[test]
    fn natural_and_flipped_labels() {
        let recs = class_tasks(8, 40);
        for mode in [LabelMode::Natural, LabelMode::Flipped] {
            let o = SymbolOptions {
                mode,
                k_shot: 5,
                ..SymbolOptions::default()
            };
            let ex = symbol_prompts(&recs, &o, 200).unwrap();
            for (labels, pairs) in prompt_labels(&recs, &ex) {
                for (natural, shown) in &pairs {
                    let i = labels.iter().position(|l| l == natural).unwrap();
                    let expected = match mode {
                        LabelMode::Flipped => &labels[(i + 1) % labels.len()],
                        _ => natural,
                    };
                    assert_eq!(shown, expected);
                }
            }
        }
    }

    #[test]
    fn symbol_prompts_need_enough_records_and_split_by_task() {
        let recs = class_tasks(2, 20);
        let o = SymbolOptions {
            k_shot: 25,
            ..SymbolOptions::default()
        };
        assert!(symbol_prompts(&recs, &o, 5).is_err());
        let (train, val) = split_by_task(&recs, "task", HELD_OUT_TASK);
        assert_eq!(train.len() + val.len(), recs.len());
        assert_eq!(val.len(), 20);
        assert!(val.iter().all(|r| r.get("task") == Some(HELD_OUT_TASK)));
        assert!(train.iter().all(|r| r.get("task") != Some(HELD_OUT_TASK)));
    }

    #[test]
    fn symbols_avoid_label_words_and_cover_many_labels() {
        let labels: Vec<String> = (0..30)
            .map(|i| format!("l{i}"))
            .chain(["foo".to_string()])
            .collect();
        let mut rng = StdRng::seed_from_u64(1);
        let symbols = draw_symbols(&labels, &mut rng);
        let unique: BTreeSet<&String> = symbols.iter().collect();
        assert_eq!(unique.len(), labels.len());
        assert!(symbols.iter().all(|s| !labels.contains(s)));
    }

    #[test]
    fn linkbert_relations_are_balanced_and_valid() {
        let docs = linked_docs(2, 120);
        let o = LinkOptions::default();
        let graph = link_graph(&docs, &o);
        let pairs = linkbert_pairs(&docs, &o, 3000).unwrap();
        assert_eq!(pairs.len(), 3000);
        for rel in Relation::ALL {
            let frac =
                pairs.iter().filter(|p| p.relation == rel).count() as f64 / pairs.len() as f64;
            assert!((frac - 1.0 / 3.0).abs() < 0.05, "{rel:?}: {frac}");
        }
        for p in &pairs {
            assert!(!p.a.contains("[[") && !p.b.contains("]]"));
            assert!(p.a.len() <= o.segment_chars && !p.a.is_empty());
            match p.relation {
                Relation::Next => assert_eq!(p.a_doc, p.b_doc),
                Relation::Random => assert_ne!(p.a_doc, p.b_doc),
                Relation::Linked => assert!(graph[p.a_doc].contains(&p.b_doc)),
            }
        }
        assert_eq!(linkbert_pairs(&docs, &o, 3000).unwrap(), pairs);
    }

    #[test]
    fn link_graph_reads_wiki_and_markdown_links() {
        let docs = vec![
            rec(
                "notes/Alpha.md",
                &[(
                    "text",
                    "See [[Beta|the second]] and [[beta]] and [[Alpha]].",
                )],
            ),
            rec(
                "notes/Beta.md",
                &[("text", "Back to [alpha](./Alpha.md#top).")],
            ),
            rec(
                "notes/gamma notes.md",
                &[
                    ("title", "Gamma"),
                    ("text", "Links [b](Beta) and [x](http://a.b/c)."),
                ],
            ),
            rec("notes/delta.md", &[("text", "A [link](gamma%20notes.md).")]),
        ];
        let g = link_graph(&docs, &LinkOptions::default());
        assert_eq!(g, vec![vec![1], vec![0], vec![1], vec![2]]);
        assert_eq!(
            strip_wiki_brackets("See [[Beta|the second]] and [[Gamma]]."),
            "See the second and Gamma."
        );
    }

    #[test]
    fn tfidf_graph_when_nothing_links() {
        let docs: Vec<Record> = linked_docs(3, 30)
            .into_iter()
            .map(|d| {
                let text = strip_wiki_brackets(d.get("text").unwrap());
                Record::new(d.origin.clone(), vec![("text".to_string(), text)])
            })
            .collect();
        let g = link_graph(&docs, &LinkOptions::default());
        for (i, out) in g.iter().enumerate() {
            assert_eq!(out.len(), TFIDF_NEIGHBOURS);
            assert!(!out.contains(&i));
        }
        assert!(linkbert_pairs(&docs, &LinkOptions::default(), 300).is_ok());
    }

    #[test]
    fn linked_documents_are_drawn_by_inverse_in_degree() {
        let long = |name: &str| format!("{name} is a place. It has many words in it. ");
        let text = |name: &str, links: &str| format!("{}{}{links}", long(name), long(name));
        // A links to Hub (in-degree 4) and Rare (in-degree 1).
        let docs = vec![
            rec(
                "a",
                &[("title", "A"), ("text", &text("A", "[[Hub]] [[Rare]]"))],
            ),
            rec("b", &[("title", "B"), ("text", &text("B", "[[Hub]]"))]),
            rec("c", &[("title", "C"), ("text", &text("C", "[[Hub]]"))]),
            rec("d", &[("title", "D"), ("text", &text("D", "[[Hub]]"))]),
            rec("hub", &[("title", "Hub"), ("text", &text("Hub", ""))]),
            rec("rare", &[("title", "Rare"), ("text", &text("Rare", ""))]),
        ];
        let o = LinkOptions {
            segment_chars: 40,
            ..LinkOptions::default()
        };
        let pairs = linkbert_pairs(&docs, &o, 6000).unwrap();
        let from_a = |b_doc| {
            pairs
                .iter()
                .filter(|p| p.relation == Relation::Linked && p.a_doc == 0 && p.b_doc == b_doc)
                .count()
        };
        let (hub, rare) = (from_a(4), from_a(5));
        // Expected 1/5 vs 4/5 of A's linked pairs.
        assert!(rare > 2 * hub && hub > 0, "hub {hub}, rare {rare}");
    }

    #[test]
    fn segments_cut_at_sentences_near_the_length() {
        let text = "One short sentence. Another one follows here. And a third sentence ends it. \
                    Then words without any stop at all go on and on for a while";
        let segs = segments(text, 50);
        assert!(
            segs.iter().all(|s| s.len() <= 50 && !s.is_empty()),
            "{segs:?}"
        );
        assert_eq!(segs[0], "One short sentence. Another one follows here.");
        assert_eq!(segs.join(" "), text);
        assert_eq!(segments("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(segments("", 10), Vec::<String>::new());
        let accented = segments("d\u{e9}j\u{e0} vu, d\u{e9}j\u{e0} vu", 6);
        assert!(
            accented.iter().all(|s| s.chars().count() <= 6),
            "{accented:?}"
        );
        assert_eq!(accented.join(" "), "d\u{e9}j\u{e0} vu, d\u{e9}j\u{e0} vu");
    }
}
