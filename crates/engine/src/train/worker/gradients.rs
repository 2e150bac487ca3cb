//! One optimizer step's gradients: micro-batches, replicas and ranks summed into one buffer.

use super::RunFailure;
use crate::model::Model;
use crate::objective::{Objective, StepData};
use crate::train::collective::Collective;
use crate::train::optim::{GradBuffer, flatten_params};
use burn::module::Module;
use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::time::{Duration, Instant};

/// The gradients of one optimizer step and its mean training loss: `accum` rounds, each of
/// one micro-batch per replica. Replicas draw their rows in turn from `rng` (so the rows are
/// those of one batch of `replicas x batch_size` rows) and compute at once, each on its own
/// thread and device with a copy of `model`; every loss is scaled by `1 / (accum x replicas)`
/// and the gradients are summed on the first replica's device. Objectives that cannot draw
/// ahead compute their replicas in turn. Also returns the mean of each term of a loss that
/// sums several (see [`crate::objective::StepLoss`]) over this process's micro-batches.
#[allow(clippy::too_many_arguments)]
pub(super) fn step_gradients(
    objective: &dyn Objective,
    model: &Model,
    replicas: &[Device],
    collective: &dyn Collective,
    data: &StepData<'_>,
    rng: &mut StdRng,
    accum: usize,
    threads: usize,
    backend: crate::backend::BackendKind,
) -> (GradBuffer, f32, Vec<(String, f64)>, Duration) {
    let (rank, ranks) = (collective.rank(), collective.size());
    let parts = (accum * replicas.len() * ranks) as f64;
    let scale = |loss: burn::tensor::Tensor<1>| {
        if parts > 1.0 {
            loss.div_scalar(parts)
        } else {
            loss
        }
    };
    let mut grads = GradBuffer::default();
    let mut loss_sum = 0.0f64;
    let mut terms = TermSums::default();
    for _ in 0..accum {
        if replicas.len() == 1 && ranks == 1 {
            let loss = objective.train_step_loss(model, data, rng, &replicas[0]);
            terms.add(loss.terms);
            let loss = loss.total;
            loss_sum += f64::from(loss.clone().into_scalar::<f32>());
            grads.add(model, &scale(loss).backward());
            continue;
        }
        // Every rank draws the rows of every replica of every rank, in order, and keeps its
        // own: together the ranks compute the rows of one batch.
        let local = replicas.len();
        let drawn: Option<Vec<_>> = (0..local * ranks)
            .map(|_| objective.draw(data, rng))
            .collect::<Option<Vec<_>>>()
            .map(|all| all.into_iter().skip(rank * local).take(local).collect());
        // An objective that cannot draw ahead takes each rank's rows from a stream of its own
        // (the same for every rank's generator, so the ranks stay in step).
        let mut own_rng;
        let rng: &mut StdRng = if drawn.is_none() && ranks > 1 {
            own_rng = StdRng::seed_from_u64(
                rand::Rng::random::<u64>(rng) ^ (rank as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            &mut own_rng
        } else {
            &mut *rng
        };
        let results: Vec<(f32, GradBuffer)> = match drawn {
            Some(drawn) => std::thread::scope(|scope| {
                let per_replica = (threads / replicas.len()).max(1);
                let handles: Vec<_> = replicas
                    .iter()
                    .zip(drawn)
                    .enumerate()
                    .map(|(r, (device, rows))| {
                        let replica = if r == 0 {
                            model.clone()
                        } else {
                            model.clone().fork(device)
                        };
                        let scale = &scale;
                        scope.spawn(move || {
                            backend.set_threads(per_replica);
                            let loss = objective
                                .drawn_loss(&replica, rows, data, device)
                                .expect("drawn by the same objective");
                            let value: f32 = loss.clone().into_scalar();
                            (
                                value,
                                GradBuffer::from_grads(&replica, &scale(loss).backward()),
                            )
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            }),
            None => replicas
                .iter()
                .enumerate()
                .map(|(r, device)| {
                    let replica = if r == 0 {
                        model.clone()
                    } else {
                        model.clone().fork(device)
                    };
                    let loss = objective.train_step_loss(&replica, data, rng, device);
                    terms.add(loss.terms);
                    let loss = loss.total;
                    let value: f32 = loss.clone().into_scalar();
                    (
                        value,
                        GradBuffer::from_grads(&replica, &scale(loss).backward()),
                    )
                })
                .collect(),
        };
        for (value, replica_grads) in results {
            loss_sum += f64::from(value);
            grads.absorb(model, replica_grads);
        }
    }
    let mut reduce = Duration::ZERO;
    if ranks > 1 {
        let mut flat = grads.to_flat(model);
        flat.push(loss_sum as f32);
        let start = Instant::now();
        collective.all_reduce_sum(&mut flat);
        reduce = start.elapsed();
        loss_sum = f64::from(flat.pop().unwrap_or(f32::NAN));
        grads = GradBuffer::from_flat(model, &flat);
    }
    (grads, (loss_sum / parts) as f32, terms.means(), reduce)
}

/// Running sums of a step's loss terms, by name in the order first seen.
#[derive(Default)]
struct TermSums(Vec<(String, f64, usize)>);

impl TermSums {
    fn add(&mut self, terms: Vec<(crate::objective::MetricKey, burn::tensor::Tensor<1>)>) {
        for (key, value) in terms {
            let value = f64::from(value.into_scalar::<f32>());
            match self.0.iter_mut().find(|(name, ..)| name == key.name()) {
                Some((_, sum, n)) => {
                    *sum += value;
                    *n += 1;
                }
                None => self.0.push((key.name().to_string(), value, 1)),
            }
        }
    }

    fn means(self) -> Vec<(String, f64)> {
        self.0
            .into_iter()
            .map(|(name, sum, n)| (name, sum / n.max(1) as f64))
            .collect()
    }
}

/// Fails the run when the ranks' weights have drifted apart (a lost update, or ranks that
/// compute differently).
pub(super) fn same_weights_on_every_rank(
    model: &Model,
    collective: &dyn Collective,
    step: usize,
) -> Result<(), RunFailure> {
    let checksum: f64 = flatten_params(model).iter().map(|&x| f64::from(x)).sum();
    let mut extremes = [checksum, -checksum];
    collective.all_reduce_max(&mut extremes);
    if extremes[0] != -extremes[1] {
        return Err(RunFailure::RanksDiffer {
            rank: collective.rank(),
            ranks: collective.size(),
            step,
            low: -extremes[1],
            high: extremes[0],
        });
    }
    Ok(())
}
