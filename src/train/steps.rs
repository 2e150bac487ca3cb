//! One training loss and one evaluation per objective: batches built from the corpus (or the
//! pairs file), forward passes in the objective's attention mode, losses and metrics.

use crate::data::pairs::Pair;
use crate::data::{Corpus, Special, Split, Tokenizer};
use crate::eval::{estimate_loss, tokens_tensor};
use crate::model::{AttentionMode, Gpt};
use crate::objective::contrastive::{info_nce, normalize, pool, similarities};
use crate::objective::metrics::retrieval;
use crate::objective::{ObjectiveKind, ObjectiveSpec, Positives, masked, next_token};
use crate::project::RunSpec;
use burn::tensor::{Bool, Device, Tensor, TensorData};
use rand::Rng;
use rand::rngs::StdRng;

/// Tokenized pairs, split into training and held-out pairs (the last tenth, at least one).
pub struct PairSet {
    pub train: Vec<(Vec<u32>, Vec<u32>, Option<Vec<u32>>)>,
    pub held_out: Vec<(Vec<u32>, Vec<u32>)>,
}

impl PairSet {
    pub fn new(pairs: &[Pair], tokenizer: &Tokenizer) -> Self {
        let encoded: Vec<_> = pairs
            .iter()
            .map(|p| {
                (
                    tokenizer.encode(&p.a),
                    tokenizer.encode(&p.b),
                    p.negative.as_deref().map(|n| tokenizer.encode(n)),
                )
            })
            .collect();
        let held = (encoded.len() / 10)
            .max(1)
            .min(encoded.len().saturating_sub(1))
            .max(1);
        let split = encoded.len() - held;
        Self {
            held_out: encoded[split..]
                .iter()
                .map(|(a, b, _)| (a.clone(), b.clone()))
                .collect(),
            train: encoded[..split.max(1)].to_vec(),
        }
    }
}

/// What a step needs besides the model.
pub struct StepData<'a> {
    pub spec: &'a RunSpec,
    pub corpus: &'a Corpus,
    pub pairs: Option<&'a PairSet>,
}

/// Normalised pooled embeddings of token sequences (padded to the longest, at most `context`).
pub fn embed(
    model: &Gpt,
    texts: &[&[u32]],
    objective: &ObjectiveSpec,
    tokenizer: &Tokenizer,
    device: &Device,
) -> Tensor<2> {
    let context = model.context();
    let pad = tokenizer.special(Special::Pad).unwrap_or(0);
    let len = texts
        .iter()
        .map(|t| t.len().min(context))
        .max()
        .unwrap_or(1)
        .max(1);
    let fixed = texts.iter().all(|t| t.len() >= len);
    let mut ids = Vec::with_capacity(texts.len() * len);
    let mut keep = Vec::with_capacity(texts.len() * len);
    for t in texts {
        let t = &t[..t.len().min(len)];
        ids.extend(t.iter().map(|&i| i64::from(i)));
        keep.extend(std::iter::repeat_n(1.0f32, t.len()));
        ids.extend(std::iter::repeat_n(i64::from(pad), len - t.len()));
        keep.extend(std::iter::repeat_n(0.0f32, len - t.len()));
    }
    let b = texts.len();
    let x = tokens_tensor(ids, b, len, device);
    let hidden;
    let keep_tensor = if fixed {
        hidden = model.hidden(x, AttentionMode::Bidirectional, None);
        None
    } else {
        let padding: Vec<bool> = keep.iter().map(|&k| k == 0.0).collect();
        let padding = Tensor::<2, Bool>::from_data(TensorData::new(padding, [b, len]), device);
        hidden = model.hidden(x, AttentionMode::Bidirectional, Some(padding));
        Some(Tensor::<2>::from_data(
            TensorData::new(keep, [b, len]),
            device,
        ))
    };
    normalize(pool(hidden, keep_tensor, objective.pooling))
}

/// [`embed`] for any number of texts, 64 at a time: `[texts, d_model]`.
pub fn embed_all(
    model: &Gpt,
    texts: &[Vec<u32>],
    objective: &ObjectiveSpec,
    tokenizer: &Tokenizer,
    device: &Device,
) -> Tensor<2> {
    let chunks: Vec<Tensor<2>> = texts
        .chunks(64)
        .map(|c| embed(model, &as_refs(c), objective, tokenizer, device))
        .collect();
    Tensor::cat(chunks, 0)
}

/// Query/positive(/negative) token sequences for one contrastive batch.
fn contrastive_batch(
    data: &StepData<'_>,
    split: Split,
    rng: &mut StdRng,
) -> (Vec<Vec<u32>>, Vec<Vec<u32>>, Vec<Vec<u32>>) {
    let spec = data.spec;
    let (b, ctx) = (spec.train.batch_size, spec.model.context);
    match spec.objective.positives {
        Positives::Halves | Positives::Dropout => {
            let len = if spec.objective.positives == Positives::Halves {
                2 * ctx
            } else {
                ctx
            };
            let flat = data.corpus.sample_windows(split, b, len, rng);
            let rows: Vec<Vec<u32>> = flat
                .chunks(len)
                .map(|r| r.iter().map(|&i| i as u32).collect())
                .collect();
            if spec.objective.positives == Positives::Halves {
                let q = rows.iter().map(|r| r[..ctx].to_vec()).collect();
                let p = rows.iter().map(|r| r[ctx..].to_vec()).collect();
                (q, p, Vec::new())
            } else {
                (rows.clone(), rows, Vec::new())
            }
        }
        Positives::Pairs => {
            let set = data.pairs.expect("pairs loaded for the pairs objective");
            let mut q = Vec::new();
            let mut p = Vec::new();
            let mut n = Vec::new();
            for _ in 0..b {
                let (a, pos, neg) = &set.train[rng.random_range(0..set.train.len())];
                q.push(a.clone());
                p.push(pos.clone());
                if spec.objective.hard_negatives {
                    if let Some(neg) = neg {
                        n.push(neg.clone());
                    }
                }
            }
            (q, p, n)
        }
    }
}

fn as_refs(v: &[Vec<u32>]) -> Vec<&[u32]> {
    v.iter().map(Vec::as_slice).collect()
}

fn contrastive_loss(
    model: &Gpt,
    data: &StepData<'_>,
    split: Split,
    rng: &mut StdRng,
    device: &Device,
) -> Tensor<1> {
    let (q, p, n) = contrastive_batch(data, split, rng);
    let tok = &data.corpus.tokenizer;
    let obj = &data.spec.objective;
    let eq = embed(model, &as_refs(&q), obj, tok, device);
    let ep = embed(model, &as_refs(&p), obj, tok, device);
    let en = (!n.is_empty()).then(|| embed(model, &as_refs(&n), obj, tok, device));
    info_nce(eq, ep, en, obj.temperature)
}

fn masked_loss(
    model: &Gpt,
    data: &StepData<'_>,
    split: Split,
    rng: &mut StdRng,
    device: &Device,
) -> (Tensor<3>, Tensor<1>, Vec<i64>) {
    let spec = data.spec;
    let (b, ctx) = (spec.train.batch_size, spec.model.context);
    let ids = data.corpus.sample_windows(split, b, ctx, rng);
    let (inputs, labels) = masked::mask_tokens(
        &ids,
        ctx,
        &data.corpus.tokenizer,
        spec.objective.mask_rate,
        rng,
    );
    let logits = model.logits(model.hidden(
        tokens_tensor(inputs, b, ctx, device),
        AttentionMode::Bidirectional,
        None,
    ));
    let loss = masked::loss(
        logits.clone(),
        tokens_tensor(labels.clone(), b, ctx, device),
    );
    (logits, loss, labels)
}

/// Bidirectional hidden states of LinkBERT `inputs` (the `rows`, possibly masked), no query
/// attending to the rows' padding.
fn relation_hidden(
    model: &Gpt,
    tokenizer: &Tokenizer,
    rows: &[i64],
    inputs: Vec<i64>,
    context: usize,
    device: &Device,
) -> Tensor<3> {
    let pad = i64::from(
        tokenizer
            .special(Special::Pad)
            .expect("LinkBERT reserves [pad]"),
    );
    let n = rows.len() / context;
    let padding: Vec<bool> = rows.iter().map(|&t| t == pad).collect();
    let padding = Tensor::<2, Bool>::from_data(TensorData::new(padding, [n, context]), device);
    model.hidden(
        tokens_tensor(inputs, n, context, device),
        AttentionMode::Bidirectional,
        Some(padding),
    )
}

/// LinkBERT: masked tokens over `[cls] a [sep] b [sep]` rows plus the relation of each row.
/// Returns `(total loss, relation logits, relation labels)`.
fn linkbert_loss(
    model: &Gpt,
    data: &StepData<'_>,
    split: Split,
    rng: &mut StdRng,
    device: &Device,
) -> (Tensor<1>, Tensor<2>, Vec<i64>) {
    let spec = data.spec;
    let (b, ctx) = (spec.train.batch_size, spec.model.context);
    let tok = &data.corpus.tokenizer;
    let (rows, relations) = data.corpus.sample_relation_batch(split, b, ctx, rng);
    let (inputs, labels) = masked::mask_tokens(&rows, ctx, tok, spec.objective.mask_rate, rng);
    let hidden = relation_hidden(model, tok, &rows, inputs, ctx, device);
    let relation_logits = model
        .relation_logits(hidden.clone())
        .expect("a LinkBERT run's model has a relation head");
    let mlm = masked::loss(model.logits(hidden), tokens_tensor(labels, b, ctx, device));
    let relation = masked::loss(
        relation_logits.clone().reshape([b, 1, 3]),
        tokens_tensor(relations.clone(), b, 1, device),
    );
    (mlm + relation, relation_logits, relations)
}

fn next_token_loss(
    model: &Gpt,
    data: &StepData<'_>,
    split: Split,
    rng: &mut StdRng,
    device: &Device,
) -> Tensor<1> {
    let spec = data.spec;
    let (b, ctx) = (spec.train.batch_size, spec.model.context);
    if data.corpus.is_instructions() {
        // Supervised fine-tuning: the loss covers response tokens only.
        let (inputs, labels) = data.corpus.sample_instruction_batch(split, b, ctx, rng);
        return masked::loss(
            model.forward(tokens_tensor(inputs, b, ctx, device)),
            tokens_tensor(labels, b, ctx, device),
        );
    }
    let batch = data.corpus.sample_batch(split, b, ctx, rng);
    next_token::loss(
        model.forward(tokens_tensor(batch.inputs, b, ctx, device)),
        tokens_tensor(batch.targets, b, ctx, device),
    )
}

/// The training loss of one step.
pub fn train_loss(
    model: &Gpt,
    data: &StepData<'_>,
    rng: &mut StdRng,
    device: &Device,
) -> Tensor<1> {
    match data.spec.objective.kind {
        ObjectiveKind::NextToken => next_token_loss(model, data, Split::Train, rng, device),
        ObjectiveKind::Masked => masked_loss(model, data, Split::Train, rng, device).1,
        ObjectiveKind::LinkBert => linkbert_loss(model, data, Split::Train, rng, device).0,
        ObjectiveKind::Contrastive => contrastive_loss(model, data, Split::Train, rng, device),
        ObjectiveKind::Grit => {
            let emb = contrastive_loss(model, data, Split::Train, rng, device);
            let generation = next_token_loss(model, data, Split::Train, rng, device);
            emb + generation * data.spec.objective.gen_weight
        }
    }
}

/// Similarities of one validation batch and each query's margin over its hardest negative.
pub fn contrastive_view(
    model: &Gpt,
    data: &StepData<'_>,
    rng: &mut StdRng,
    device: &Device,
    step: usize,
) -> crate::train::events::ContrastiveBatch {
    let (q, p, _) = contrastive_batch(data, Split::Val, rng);
    let tok = &data.corpus.tokenizer;
    let obj = &data.spec.objective;
    let sims = similarities(
        embed(model, &as_refs(&q), obj, tok, device),
        embed(model, &as_refs(&p), obj, tok, device),
    );
    let n = q.len();
    let margins = (0..n)
        .map(|i| {
            let row = &sims[i * n..(i + 1) * n];
            let hardest = row
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, &s)| s)
                .fold(f32::NEG_INFINITY, f32::max);
            row[i] - hardest
        })
        .collect();
    crate::train::events::ContrastiveBatch {
        step,
        sims,
        n,
        margins,
    }
}

/// The first validation window with positions masked (fixed by `rng`) and the model's top three
/// predictions at each.
pub fn masked_view(
    model: &Gpt,
    data: &StepData<'_>,
    rng: &mut StdRng,
    device: &Device,
    step: usize,
) -> crate::train::events::MaskedProbe {
    let ctx = data.spec.model.context;
    let tok = &data.corpus.tokenizer;
    let ids: Vec<i64> = data.corpus.val[..ctx.min(data.corpus.val.len())]
        .iter()
        .map(|&i| i64::from(i))
        .collect();
    let len = ids.len();
    let (inputs, labels) = masked::mask_tokens(&ids, len, tok, data.spec.objective.mask_rate, rng);
    let logits = model.logits(model.hidden(
        tokens_tensor(inputs, 1, len, device),
        AttentionMode::Bidirectional,
        None,
    ));
    let vocab = logits.dims()[2];
    let probs = burn::tensor::activation::softmax(logits.reshape([len, vocab]), 1)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default();
    let masked: Vec<usize> = (0..len).filter(|&t| labels[t] != masked::IGNORE).collect();
    let predictions = masked
        .iter()
        .map(|&t| {
            let row = &probs[t * vocab..(t + 1) * vocab];
            let mut order: Vec<usize> = (0..vocab).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            order
                .iter()
                .take(3)
                .map(|&k| (tok.token_label(k as u32), row[k]))
                .collect()
        })
        .collect();
    crate::train::events::MaskedProbe {
        step,
        tokens: ids.iter().map(|&i| tok.token_label(i as u32)).collect(),
        masked,
        predictions,
    }
}

/// Held-out retrieval: for text positives the consecutive windows of `2 * context` tokens of
/// the validation split (first half queries, second half candidates), else the held-out pairs.
pub fn retrieval_eval(
    model: &Gpt,
    data: &StepData<'_>,
    device: &Device,
) -> Option<crate::objective::metrics::Retrieval> {
    let ctx = data.spec.model.context;
    let (queries, candidates): (Vec<Vec<u32>>, Vec<Vec<u32>>) =
        match (data.spec.objective.positives, data.pairs) {
            (Positives::Pairs, Some(set)) => set.held_out.iter().cloned().unzip(),
            _ => data
                .corpus
                .windows(Split::Val, 2 * ctx, 4_000)
                .into_iter()
                .map(|w| (w[..ctx].to_vec(), w[ctx..].to_vec()))
                .unzip(),
        };
    if queries.len() < 2 {
        return None;
    }
    let embed_set = |texts: &[Vec<u32>]| {
        embed_all(
            model,
            texts,
            &data.spec.objective,
            &data.corpus.tokenizer,
            device,
        )
    };
    let sims = similarities(embed_set(&queries), embed_set(&candidates));
    Some(retrieval(&sims, queries.len(), candidates.len()))
}

/// Relation accuracy of a LinkBERT model over every validation pair (inputs unmasked): overall
/// and per relation (next, random, linked), with the number of pairs.
pub fn relation_accuracy(
    model: &Gpt,
    corpus: &Corpus,
    context: usize,
    device: &Device,
) -> (f64, [f64; 3], usize) {
    let (mut hits, mut counts) = ([0usize; 3], [0usize; 3]);
    for chunk in corpus.relations_val.chunks(64) {
        let pairs: Vec<&crate::data::RelationExample> = chunk.iter().collect();
        let (rows, _) = corpus.relation_rows(&pairs, context);
        let hidden = relation_hidden(
            model,
            &corpus.tokenizer,
            &rows,
            rows.clone(),
            context,
            device,
        );
        let Some(logits) = model.relation_logits(hidden) else {
            break;
        };
        let predicted = logits.argmax(1).into_data().convert::<i64>();
        let predicted = predicted.as_slice::<i64>().unwrap_or_default();
        for (p, &guess) in chunk.iter().zip(predicted) {
            let r = usize::from(p.relation);
            counts[r] += 1;
            hits[r] += usize::from(guess == i64::from(p.relation));
        }
    }
    let total: usize = counts.iter().sum();
    let per = [0, 1, 2].map(|r| hits[r] as f64 / counts[r].max(1) as f64);
    (
        hits.iter().sum::<usize>() as f64 / total.max(1) as f64,
        per,
        total,
    )
}

/// Share of `examples` (the first `limit`) whose answer greedy decoding reproduces exactly:
/// the model continues each prompt until it writes a newline (or the answer's length plus a
/// few tokens), and the text must equal the answer.
pub fn exact_match(
    model: &Gpt,
    corpus: &Corpus,
    examples: &[crate::data::corpus::Example],
    limit: usize,
    device: &Device,
) -> f64 {
    let examples = &examples[..limit.min(examples.len())];
    if examples.is_empty() {
        return 0.0;
    }
    let answers: Vec<String> = examples
        .iter()
        .map(|e| corpus.tokenizer.decode(&e.ids[e.prompt_len..]))
        .collect();
    let prompts: Vec<Vec<u32>> = examples
        .iter()
        .map(|e| e.ids[..e.prompt_len].to_vec())
        .collect();
    let max_new = examples
        .iter()
        .map(|e| e.ids.len() - e.prompt_len)
        .max()
        .unwrap_or(1)
        + 4;
    let outputs = greedy_until_newline(model, corpus, &prompts, max_new, device);
    let hits = outputs
        .iter()
        .zip(&answers)
        .filter(|(out, answer)| out.trim_end() == answer.trim_end())
        .count();
    hits as f64 / examples.len() as f64
}

/// Greedy continuations of `prompts` (batched), each stopped after a newline or `max_new`
/// tokens; prompts longer than the context keep their end.
pub fn greedy_until_newline(
    model: &Gpt,
    corpus: &Corpus,
    prompts: &[Vec<u32>],
    max_new: usize,
    device: &Device,
) -> Vec<String> {
    let ctx = model.context();
    let tok = &corpus.tokenizer;
    let pad = tok.special(Special::Pad).unwrap_or(0);
    let mut outputs = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(32) {
        let mut seqs: Vec<Vec<u32>> = chunk.to_vec();
        let mut done = vec![false; seqs.len()];
        let mut generated: Vec<Vec<u32>> = vec![Vec::new(); seqs.len()];
        for _ in 0..max_new {
            if done.iter().all(|&d| d) {
                break;
            }
            let lens: Vec<usize> = seqs.iter().map(|s| s.len().min(ctx)).collect();
            let len = lens.iter().copied().max().unwrap_or(1).max(1);
            let mut flat = Vec::with_capacity(seqs.len() * len);
            for s in &seqs {
                let w = &s[s.len().saturating_sub(ctx)..];
                flat.extend(w.iter().map(|&i| i64::from(i)));
                flat.extend(std::iter::repeat_n(i64::from(pad), len - w.len()));
            }
            let n = seqs.len();
            let logits = model.forward(tokens_tensor(flat, n, len, device));
            let next = logits
                .argmax(2)
                .reshape([n, len])
                .into_data()
                .convert::<i64>();
            let next = next.as_slice::<i64>().unwrap_or_default().to_vec();
            for (i, &w_len) in lens.iter().enumerate() {
                if done[i] {
                    continue;
                }
                let id = next[i * len + w_len - 1] as u32;
                generated[i].push(id);
                seqs[i].push(id);
                if tok.decode(&[id]).contains('\n') || tok.is_special(id) {
                    done[i] = true;
                }
            }
        }
        outputs.extend(generated.iter().map(|g| tok.decode(g)));
    }
    outputs
}

/// Losses and metrics of an evaluation: `(train_loss, val_loss, extra metrics)`. `model` is a
/// validation snapshot; `rng` is seeded the same at every evaluation.
pub fn evaluate(
    model: &Gpt,
    data: &StepData<'_>,
    rng: &mut StdRng,
    device: &Device,
) -> (f32, f32, Vec<(String, f64)>) {
    let spec = data.spec;
    let batches = spec.train.eval_batches;
    let mean = |f: &mut dyn FnMut(&mut StdRng) -> f32, rng: &mut StdRng| -> f32 {
        (0..batches).map(|_| f64::from(f(rng))).sum::<f64>() as f32 / batches.max(1) as f32
    };
    let mut extra = Vec::new();
    match spec.objective.kind {
        ObjectiveKind::NextToken if data.corpus.is_instructions() => {
            let train = mean(
                &mut |r| next_token_loss(model, data, Split::Train, r, device).into_scalar(),
                rng,
            );
            let val = mean(
                &mut |r| next_token_loss(model, data, Split::Val, r, device).into_scalar(),
                rng,
            );
            extra.push(("val_response_loss".to_string(), f64::from(val)));
            let em = exact_match(model, data.corpus, &data.corpus.examples_val, 64, device);
            extra.push(("val_exact_match".to_string(), em));
            (train, val, extra)
        }
        ObjectiveKind::LinkBert => {
            let train = mean(
                &mut |r| {
                    linkbert_loss(model, data, Split::Train, r, device)
                        .0
                        .into_scalar()
                },
                rng,
            );
            let (mut total, mut correct, mut n) = (0.0f64, 0usize, 0usize);
            for _ in 0..batches {
                let (loss, logits, labels) = linkbert_loss(model, data, Split::Val, rng, device);
                total += f64::from(loss.into_scalar::<f32>());
                let rows = labels.len();
                let (c, chosen) = masked::accuracy(logits.reshape([rows, 1, 3]), &labels);
                correct += c;
                n += chosen;
            }
            extra.push((
                "val_relation_acc".to_string(),
                correct as f64 / n.max(1) as f64,
            ));
            (train, (total / batches.max(1) as f64) as f32, extra)
        }
        ObjectiveKind::NextToken => {
            let b = spec.train.batch_size;
            let train = estimate_loss(model, data.corpus, Split::Train, batches, b, rng, device);
            let val = estimate_loss(model, data.corpus, Split::Val, batches, b, rng, device);
            (train, val, extra)
        }
        ObjectiveKind::Masked => {
            let train = mean(
                &mut |r| {
                    masked_loss(model, data, Split::Train, r, device)
                        .1
                        .into_scalar()
                },
                rng,
            );
            let (mut correct, mut chosen, mut total) = (0usize, 0usize, 0.0f64);
            for _ in 0..batches {
                let (logits, loss, labels) = masked_loss(model, data, Split::Val, rng, device);
                total += f64::from(loss.into_scalar::<f32>());
                let (c, n) = masked::accuracy(logits, &labels);
                correct += c;
                chosen += n;
            }
            let val = (total / batches.max(1) as f64) as f32;
            extra.push((
                "val_masked_acc".to_string(),
                correct as f64 / chosen.max(1) as f64,
            ));
            extra.push(("val_mlm_ppl".to_string(), f64::from(val).exp()));
            (train, val, extra)
        }
        ObjectiveKind::Contrastive | ObjectiveKind::Grit => {
            let emb_train = mean(
                &mut |r| contrastive_loss(model, data, Split::Train, r, device).into_scalar(),
                rng,
            );
            let emb_val = mean(
                &mut |r| contrastive_loss(model, data, Split::Val, r, device).into_scalar(),
                rng,
            );
            if let Some(r) = retrieval_eval(model, data, device) {
                extra.push(("val_recall_at_1".to_string(), r.recall_at_1));
                extra.push(("val_recall_at_10".to_string(), r.recall_at_10));
                extra.push(("val_mrr".to_string(), r.mrr));
            }
            if spec.objective.kind == ObjectiveKind::Contrastive {
                (emb_train, emb_val, extra)
            } else {
                let b = spec.train.batch_size;
                let gen_train =
                    estimate_loss(model, data.corpus, Split::Train, batches, b, rng, device);
                let gen_val =
                    estimate_loss(model, data.corpus, Split::Val, batches, b, rng, device);
                extra.push(("val_emb_loss".to_string(), f64::from(emb_val)));
                extra.push(("train_emb_loss".to_string(), f64::from(emb_train)));
                extra.push(("train_gen_loss".to_string(), f64::from(gen_train)));
                let w = spec.objective.gen_weight as f32;
                extra.push((
                    "train_total_loss".to_string(),
                    f64::from(emb_train + w * gen_train),
                ));
                // The generation loss is the run's val_loss, comparable with next-token runs.
                (gen_train, gen_val, extra)
            }
        }
    }
}
