//! The embedding objectives report the health of their embedding space at every evaluation.

mod common;

use common::{evals, small_spec, train_to_end};
use hearth_engine::data::DataSource;
use hearth_engine::eval::health::{COLLAPSED_UNIFORMITY, collapse, health};
use hearth_engine::objective::ObjectiveKind;
use hearth_engine::spec::RunSpec;
use hearth_engine::train::{BackendKind, RunEvent};

const HEALTH: [&str; 5] = [
    "val_alignment",
    "val_uniformity",
    "val_cos_mean",
    "val_cos_std",
    "val_eff_rank",
];

#[test]
fn a_contrastive_run_reports_its_embedding_health_at_every_evaluation() {
    let mut spec = small_spec(BackendKind::preferred(), 30);
    spec.objective.kind = ObjectiveKind::CONTRASTIVE;
    spec.train.eval_interval = 10;
    let (dir, events) = train_to_end(spec);
    let evals = evals(&events);
    assert_eq!(evals.len(), 3);
    for eval in evals {
        for name in HEALTH {
            let value = eval
                .metric(name)
                .unwrap_or_else(|| panic!("{name} missing at step {}", eval.step));
            assert!(value.is_finite(), "{name} = {value}");
        }
        let u = eval.metric("val_uniformity").unwrap();
        let a = eval.metric("val_alignment").unwrap();
        let r = eval.metric("val_eff_rank").unwrap();
        let (mean, std) = (
            eval.metric("val_cos_mean").unwrap(),
            eval.metric("val_cos_std").unwrap(),
        );
        assert!((-4.0 - 1e-9..=0.0).contains(&u), "uniformity {u}");
        assert!((0.0..=4.0).contains(&a), "alignment {a}");
        assert!((1.0..=64.0).contains(&r), "effective rank {r}");
        assert!((-1.0..=1.0).contains(&mean) && (0.0..=1.0).contains(&std));
        eprintln!(
            "step {}: alignment {a:.4} uniformity {u:.4} cos {mean:.4} ± {std:.4} eff_rank {r:.2}",
            eval.step
        );
    }
    // The run's stored history holds them too.
    let history = hearth_engine::project::RunStore::open(&dir.path().join("run"))
        .and_then(|s| s.load_history())
        .expect("the run's history loads");
    let last = history.evals.last().expect("evaluations are stored");
    assert!(HEALTH.iter().all(|n| last.metric(n).is_some()));
}

/// A contrastive run on `text` (written to a file in `dir`) for `steps` steps, evaluated every
/// 10.
fn run_on_text(dir: &std::path::Path, text: &str, steps: usize) -> RunSpec {
    let path = dir.join("corpus.txt");
    std::fs::write(&path, text).unwrap();
    let mut spec = small_spec(BackendKind::preferred(), steps);
    spec.data.source = DataSource::TextFile { path };
    spec.objective.kind = ObjectiveKind::CONTRASTIVE;
    spec.train.eval_interval = 10;
    spec
}

/// One character repeated: every window of text is the same text, so every embedding is the
/// same vector whatever the weights. The space is collapsed by construction, not by luck.
const ONE_LETTER: usize = 20_000;

/// The collapse rule on embeddings built to be collapsed (one vector; one line; a crowded
/// space of two directions) and on a healthy spread.
#[test]
fn the_collapse_rule_judges_built_embeddings() {
    let d = 32;
    let unit = |v: Vec<f32>| {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / norm).collect::<Vec<f32>>()
    };
    // Rows `i` of a [n, d] matrix from `row(i)`, normalised.
    let rows = |n: usize, row: &dyn Fn(usize) -> Vec<f32>| -> Vec<f32> {
        (0..n).flat_map(|i| unit(row(i))).collect()
    };
    let judge = |queries: &[f32], positives: &[f32]| {
        let h = health(queries, positives, d).expect("enough pairs");
        (h, collapse(h.uniformity, h.eff_rank, Some(h.n), 0.05))
    };
    let n = 40;
    // Every text one vector.
    let same = rows(n, &|_| (0..d).map(|k| k as f32 + 1.0).collect());
    let (h, verdict) = judge(&same, &same);
    assert!(h.uniformity > -1e-9 && h.eff_rank < 1.0 + 1e-9, "{h:?}");
    assert!(verdict.is_some_and(|m| m.contains("nearly the same vector")));
    // Texts on one line through the origin, in both directions: far apart, one dimension.
    let line = rows(n, &|i| {
        let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
        (0..d).map(|k| sign * (k as f32 + 1.0)).collect()
    });
    let (h, verdict) = judge(&line, &line);
    assert!(h.uniformity < -0.5, "far apart: {h:?}");
    assert!(
        verdict.is_some_and(|m| m.contains("one direction")),
        "{h:?}"
    );
    // A crowded space: one shared direction plus small steps along two others.
    let crowded = rows(n, &|i| {
        let mut v = vec![0.0f32; d];
        v[0] = 1.0;
        v[1] = 0.12 * ((i % 5) as f32 - 2.0) / 2.0;
        v[2] = 0.12 * ((i / 5 % 8) as f32 - 3.5) / 3.5;
        v
    });
    let (h, verdict) = judge(&crowded, &crowded);
    assert!(
        verdict.is_some(),
        "crowded space not judged collapsed: {h:?}"
    );
    // A healthy spread: each text its own direction.
    let spread = rows(n, &|i| {
        let mut v = vec![0.0f32; d];
        v[i % d] = 1.0;
        v[(i * 7 + 3) % d] += 0.5;
        v
    });
    let (h, verdict) = judge(&spread, &spread);
    assert!(verdict.is_none(), "healthy spread judged collapsed: {h:?}");
    // Too few embeddings to judge.
    let few = &same[..4 * d];
    assert!(judge(few, few).1.is_none());
}

/// A run whose texts are all the same text: its embeddings are collapsed at every evaluation,
/// and the run says so in words, once, with what to try.
#[test]
fn a_run_whose_texts_all_embed_alike_says_its_embeddings_collapsed() {
    let dir = tempfile::tempdir().unwrap();
    let spec = run_on_text(dir.path(), &"a".repeat(ONE_LETTER), 20);
    let (_run, events) = train_to_end(spec);
    let evals = evals(&events);
    assert_eq!(evals.len(), 2, "evaluations at steps 10 and 20");
    for eval in &evals {
        let (u, r) = (
            eval.metric("val_uniformity").expect("uniformity"),
            eval.metric("val_eff_rank").expect("effective rank"),
        );
        assert!(
            u > COLLAPSED_UNIFORMITY,
            "step {}: uniformity {u}",
            eval.step
        );
        assert!(collapse(u, r, None, 0.05).is_some());
    }
    let warnings: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::Warning { step, message } if message.contains("collapsed") => {
                Some((*step, message.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 1, "warned once: {warnings:?}");
    assert_eq!(warnings[0].0, 10, "at the first evaluation");
    assert!(warnings[0].1.contains("Try"), "{}", warnings[0].1);
}

/// A masked warm-up trains no embeddings: its evaluations are drawn but never judged for
/// collapse, however alike its pooled vectors are; the first evaluation after InfoNCE trained
/// is.
#[test]
fn a_masked_warm_up_is_not_called_a_collapse() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = run_on_text(dir.path(), &"a".repeat(ONE_LETTER), 30);
    spec.objective.masked_warmup = 0.9;
    assert!(spec.objective.in_masked_warmup(26, 30));
    assert!(!spec.objective.in_masked_warmup(27, 30));
    assert!(!spec.objective.embeddings_trained_by(20, 30));
    assert!(spec.objective.embeddings_trained_by(30, 30));
    let (_run, events) = train_to_end(spec);
    let evals = evals(&events);
    assert_eq!(evals.len(), 3, "evaluations at steps 10, 20 and 30");
    // Every evaluation's statistics are collapsed (all texts are one text): what keeps the
    // warning back during the warm-up is the warm-up alone.
    for eval in &evals {
        let u = eval.metric("val_uniformity").expect("uniformity");
        assert!(
            u > COLLAPSED_UNIFORMITY,
            "step {}: uniformity {u}",
            eval.step
        );
    }
    let warned_at: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::Warning { step, message } if message.contains("collapsed") => Some(*step),
            _ => None,
        })
        .collect();
    assert_eq!(warned_at, vec![30], "judged only after InfoNCE trained");
}
