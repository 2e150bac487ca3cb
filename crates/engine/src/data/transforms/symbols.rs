//! Symbol tuning: k-shot prompts without instructions whose labels are arbitrary symbols.

use super::{TransformError, one_line};
use crate::data::record::{Record, TextExample};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::generators::{HELD_OUT_TASK, class_tasks};

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
}
