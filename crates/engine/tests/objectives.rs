//! Each objective's loss and the metrics against PyTorch on fixed inputs
//! (fixture: `scripts/objective_fixtures.py`).

use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use hearth_engine::eval::{normalize, pool, retrieval, spearman};
use hearth_engine::objective::contrastive::info_nce;
use hearth_engine::objective::{Pooling, masked, next_token};
use hearth_engine::train::{AdamW, GradBuffer, OptimSpec};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/objectives_reference.json")).unwrap()
}

/// A nested JSON array of numbers as a flat vector and its shape.
fn flat(v: &Value) -> (Vec<f64>, Vec<usize>) {
    match v {
        Value::Array(items) if items.first().is_some_and(Value::is_array) => {
            let parts: Vec<(Vec<f64>, Vec<usize>)> = items.iter().map(flat).collect();
            let mut shape = vec![items.len()];
            shape.extend(parts[0].1.iter());
            (parts.into_iter().flat_map(|p| p.0).collect(), shape)
        }
        Value::Array(items) => (
            items.iter().map(|x| x.as_f64().unwrap()).collect(),
            vec![items.len()],
        ),
        other => panic!("not an array: {other}"),
    }
}

fn float<const D: usize>(v: &Value, device: &Device) -> Tensor<D> {
    let (values, shape) = flat(v);
    let values: Vec<f32> = values.into_iter().map(|x| x as f32).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn int<const D: usize>(v: &Value, device: &Device) -> Tensor<D, Int> {
    let (values, shape) = flat(v);
    let values: Vec<i64> = values.into_iter().map(|x| x as i64).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn close(got: f32, want: &Value, what: &str) {
    let want = want.as_f64().unwrap();
    assert!(
        (f64::from(got) - want).abs() < 1e-5 * want.abs().max(1.0),
        "{what}: Hearth {got}, PyTorch {want}"
    );
}

fn devices() -> Vec<(&'static str, Device)> {
    let mut out = vec![("flex", Device::flex())];
    #[cfg(feature = "libtorch")]
    #[allow(deprecated)]
    out.push(("libtorch", Device::libtorch()));
    out
}

#[test]
fn masked_loss_matches_pytorch() {
    let f = fixture();
    for (name, device) in devices() {
        let loss = masked::loss(
            float(&f["masked"]["logits"], &device),
            int(&f["masked"]["labels"], &device),
        );
        close(
            loss.into_scalar(),
            &f["masked"]["loss"],
            &format!("{name} masked loss"),
        );
    }
}

#[test]
fn pooling_and_info_nce_match_pytorch() {
    let f = fixture();
    for (name, device) in devices() {
        let pooled = normalize(pool(
            float(&f["pooling"]["hidden"], &device),
            Some(float(&f["pooling"]["keep"], &device)),
            Pooling::Mean,
        ));
        let got = pooled
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        let (want, _) = flat(&f["pooling"]["mean_normalized"]);
        for (g, w) in got.iter().zip(&want) {
            assert!((f64::from(*g) - w).abs() < 1e-5, "{name} pooled {g} vs {w}");
        }
        let max = normalize(pool(
            float(&f["pooling"]["hidden"], &device),
            Some(float(&f["pooling"]["keep"], &device)),
            Pooling::Max,
        ))
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
        let (want, _) = flat(&f["pooling"]["max_normalized"]);
        assert_eq!(max.len(), want.len());
        for (g, w) in max.iter().zip(&want) {
            assert!(
                (f64::from(*g) - w).abs() < 1e-5,
                "{name} max-pooled {g} vs {w}"
            );
        }
        let n = &f["info_nce"];
        let t = n["temperature"].as_f64().unwrap();
        let with_hard = info_nce(
            float(&n["q"], &device),
            float(&n["p"], &device),
            Some(float(&n["h"], &device)),
            t,
        );
        close(
            with_hard.into_scalar(),
            &n["loss_with_hard"],
            &format!("{name} InfoNCE with hard negatives"),
        );
        let in_batch = info_nce(float(&n["q"], &device), float(&n["p"], &device), None, t);
        close(
            in_batch.into_scalar(),
            &n["loss_in_batch"],
            &format!("{name} InfoNCE in batch"),
        );
    }
}

#[test]
fn grit_total_matches_pytorch() {
    let f = fixture();
    let g = &f["grit"];
    for (name, device) in devices() {
        let n = &f["info_nce"];
        let emb = info_nce(
            float(&n["q"], &device),
            float(&n["p"], &device),
            Some(float(&n["h"], &device)),
            n["temperature"].as_f64().unwrap(),
        );
        let generation =
            next_token::loss(float(&g["logits"], &device), int(&g["targets"], &device));
        close(
            generation.clone().into_scalar(),
            &g["gen_loss"],
            &format!("{name} next-token loss"),
        );
        let total = emb + generation * g["gen_weight"].as_f64().unwrap();
        close(
            total.into_scalar(),
            &g["total"],
            &format!("{name} GRIT total"),
        );
    }
}

#[test]
fn retrieval_and_spearman_match_pytorch_exactly() {
    let f = fixture();
    let r = &f["retrieval"];
    let (sims, shape) = flat(&r["sims"]);
    let sims: Vec<f32> = sims.into_iter().map(|x| x as f32).collect();
    let got = retrieval(&sims, shape[0], shape[1]);
    assert_eq!(got.recall_at_1, r["recall_at_1"].as_f64().unwrap());
    assert_eq!(got.recall_at_10, r["recall_at_10"].as_f64().unwrap());
    assert_eq!(got.mrr, r["mrr"].as_f64().unwrap());
    let s = &f["spearman"];
    let (x, _) = flat(&s["x"]);
    let (y, _) = flat(&s["y"]);
    let want = s["value"].as_f64().unwrap();
    assert!(
        (spearman(&x, &y) - want).abs() < 1e-12,
        "{} vs {want}",
        spearman(&x, &y)
    );
}

#[derive(Module, Debug)]
struct Free {
    q: Param<Tensor<2>>,
    p: Param<Tensor<2>>,
}

/// Free vectors trained with InfoNCE separate: the loss falls from about ln(batch).
#[test]
fn info_nce_gradients_pull_pairs_together() {
    let device = Device::flex().autodiff();
    device.seed(5);
    let mut model = Free {
        q: Param::from_tensor(Tensor::random(
            [8, 16],
            Distribution::Normal(0.0, 1.0),
            &device,
        )),
        p: Param::from_tensor(Tensor::random(
            [8, 16],
            Distribution::Normal(0.0, 1.0),
            &device,
        )),
    };
    let mut optim = AdamW::new(OptimSpec {
        weight_decay: 0.0,
        ..OptimSpec::default()
    });
    let loss_of = |m: &Free| info_nce(normalize(m.q.val()), normalize(m.p.val()), None, 0.05);
    let first: f32 = loss_of(&model).into_scalar();
    for _ in 0..100 {
        let loss = loss_of(&model);
        let grads = GradBuffer::from_grads(&model, &loss.backward());
        model = optim.step(model, &grads, 0.05).0;
    }
    let last: f32 = loss_of(&model).into_scalar();
    assert!(last < 0.1 * first, "InfoNCE {first} -> {last}");
}

/// Cosine of two rows of unit-length features.
fn row_cosine(x: &[f32], d: usize, i: usize, j: usize) -> f32 {
    x[i * d..(i + 1) * d]
        .iter()
        .zip(&x[j * d..(j + 1) * d])
        .map(|(a, b)| a * b)
        .sum()
}

#[test]
fn the_lexical_channel_counts_shared_spellings_whatever_the_case() {
    use hearth_engine::eval::{LEXICAL_BUCKETS, lexical_features};
    let texts: Vec<String> = [
        "Good morrow, neighbour Baptista.",
        "GOOD MORROW, NEIGHBOUR BAPTISTA.",
        "Baptista hath a daughter.",
        "xyzzy plugh quux",
        "abc",
    ]
    .map(String::from)
    .to_vec();
    for (name, device) in devices() {
        let x = lexical_features(&texts, &device);
        assert_eq!(x.dims(), [5, LEXICAL_BUCKETS]);
        let x: Vec<f32> = x.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        let d = LEXICAL_BUCKETS;
        assert!(
            (row_cosine(&x, d, 0, 0) - 1.0).abs() < 1e-5,
            "{name}: unit rows"
        );
        assert!(
            (row_cosine(&x, d, 0, 1) - 1.0).abs() < 1e-5,
            "{name}: case does not count"
        );
        // The 5-grams of "baptista" are shared; nothing else is.
        let shared = row_cosine(&x, d, 0, 2);
        assert!(shared > 0.1 && shared < 0.6, "{name}: {shared}");
        assert!(
            row_cosine(&x, d, 0, 3).abs() < 0.1,
            "{name}: no shared string"
        );
        assert_eq!(
            row_cosine(&x, d, 4, 4),
            0.0,
            "{name}: shorter than one n-gram"
        );
    }
}

#[test]
fn a_lexical_channel_mixes_its_cosine_into_the_embedding_and_health_reads_the_states() {
    use hearth_engine::data::{Tokenizer, TokenizerKind};
    use hearth_engine::eval::{EmbedSpec, embed, lexical_features, similarities};
    use hearth_engine::model::{Model, ModelSpec};
    let texts = [
        "the king is dead",
        "long live the king",
        "a horse, a horse!",
    ];
    let tokenizer = Tokenizer::fit(TokenizerKind::Char, &texts.concat());
    let ids: Vec<Vec<u32>> = texts.iter().map(|t| tokenizer.encode(t)).collect();
    let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let spec = ModelSpec {
        n_layer: 1,
        n_head: 2,
        d_model: 16,
        context: 32,
        ..ModelSpec::default()
    };
    for (name, device) in devices() {
        let model = Model::new(&spec, tokenizer.vocab_size(), &device);
        let states = embed(&model, &refs, Pooling::Mean, &tokenizer, &device);
        let how = EmbedSpec {
            pooling: Pooling::Mean,
            lexical: 0.3,
        };
        let both = embed(&model, &refs, how, &tokenizer, &device);
        let strings: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        let lexical = lexical_features(&strings, &device);
        let s = similarities(states.clone(), states.clone());
        let l = similarities(lexical.clone(), lexical);
        let b = similarities(both.clone(), both.clone());
        for i in 0..9 {
            let want = 0.7 * s[i] + 0.3 * l[i];
            assert!(
                (b[i] - want).abs() < 1e-5,
                "{name}: {} against {want}",
                b[i]
            );
        }
        // The shared "king" makes texts 0 and 1 closer through the channel than texts 0 and 2.
        assert!(l[1] > l[2] + 0.1, "{name}: {l:?}");
        let learned = how.learned_part(both);
        let diff = (learned - states).abs().max().into_scalar::<f32>();
        assert!(
            diff < 1e-5,
            "{name}: the learned part is the pooled states ({diff})"
        );
    }
}
