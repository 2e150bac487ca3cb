//! Tasks a stage improves on: their prompts (held-out and training) as the base run reads them,
//! and their checkers.

use crate::data::dataset::{Content, Dataset, DatasetRecipe, TransformSpec};
use crate::data::generators::{self, ApiZooChecker, Verdict};
use crate::data::sources::{Generator, SourceKind};
use crate::data::{DataSource, Tokenizer};
use crate::spec::RunSpec;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A task with a checker; on the command line `arithmetic`, `api_zoo` and `sort_letters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Additions and subtractions ([`generators::arithmetic`]); the exact result.
    Arithmetic,
    /// Calls to invented functions ([`generators::api_zoo`]); the call as documented.
    #[value(name = "api_zoo")]
    ApiZoo,
    /// Letters to sort ([`generators::sort_letters`]); the same letters in order.
    #[value(name = "sort_letters")]
    SortLetters,
}

impl TaskKind {
    /// Every task, in the order a studio lists them.
    pub const ALL: [TaskKind; 3] = [
        TaskKind::Arithmetic,
        TaskKind::ApiZoo,
        TaskKind::SortLetters,
    ];

    /// The generator whose records the task's prompts are.
    pub fn generator(self) -> Generator {
        match self {
            TaskKind::Arithmetic => Generator::Arithmetic,
            TaskKind::ApiZoo => Generator::ApiZoo,
            TaskKind::SortLetters => Generator::SortLetters,
        }
    }

    /// The task's name (its generator's).
    pub fn name(self) -> &'static str {
        self.generator().label()
    }
}

/// One prompt of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskItem {
    /// The instruction, as the checker reads it.
    pub instruction: String,
    /// The instruction in the base's template: what the model reads.
    pub prompt: String,
    /// The reference answer (without its newline).
    pub reference: String,
}

enum Checker {
    Arithmetic,
    SortLetters,
    ApiZoo(ApiZooChecker),
}

/// A task as a base run sees it: the held-out prompts, the prompts to sample for training and
/// the checker.
pub struct TaskSet {
    /// The task.
    pub kind: TaskKind,
    /// The base's instruction template (`{prompt}` marks the instruction).
    pub template: String,
    /// Prompts the base never trained on (its dataset's validation records of the task).
    pub held_out: Vec<TaskItem>,
    /// Prompts to sample for training, drawn from in order, round after round.
    pool: Vec<TaskItem>,
    checker: Checker,
}

fn templated(template: &str, instruction: &str) -> String {
    template.replace("{prompt}", instruction)
}

impl TaskSet {
    /// The task `kind` for the base run `spec` (whose tokenizer is `tokenizer`): rebuilds the
    /// base's dataset, takes up to `eval_prompts` of its validation records of the task as the
    /// held-out prompts, and a pool of `pool_size` training prompts (fresh problems from the
    /// task's generator, none of them held out; `api_zoo`: the base's training requests). Errors
    /// say what the base lacks.
    pub fn for_base(
        kind: TaskKind,
        spec: &RunSpec,
        tokenizer: &Tokenizer,
        eval_prompts: usize,
        pool_size: usize,
        seed: u64,
    ) -> Result<Self, TaskError> {
        let DataSource::Dataset { recipe, .. } = &spec.data.source else {
            return Err(TaskError::NotADataset {
                task: kind.name(),
                data: spec.data.source.describe(),
            });
        };
        let TransformSpec::Sft { options } = &recipe.transform else {
            return Err(TaskError::NotSft {
                dataset: recipe.name.clone(),
                transform: recipe.transform.label().to_string(),
            });
        };
        let ds = Dataset::build(recipe, Some(tokenizer.clone()), &|_, _| {}).map_err(|e| {
            TaskError::DoesNotBuild {
                dataset: recipe.name.clone(),
                message: e.to_string(),
            }
        })?;
        let prefix = format!("{}:", kind.name());
        let item = |instruction: &str, reference: &str| TaskItem {
            instruction: instruction.to_string(),
            prompt: templated(&options.template, instruction),
            reference: reference.trim_end_matches('\n').to_string(),
        };
        let held_out: Vec<TaskItem> = ds
            .val_records
            .iter()
            .filter(|r| r.origin.starts_with(&prefix))
            .filter_map(|r| {
                Some(item(
                    r.get(&options.prompt_field)?,
                    r.get(&options.response_field)?,
                ))
            })
            .take(eval_prompts)
            .collect();
        if held_out.is_empty() {
            return Err(TaskError::NoHeldOut {
                dataset: recipe.name.clone(),
                task: kind.name(),
                prompt_field: options.prompt_field.clone(),
                response_field: options.response_field.clone(),
            });
        }
        let held: BTreeSet<&str> = held_out.iter().map(|i| i.instruction.as_str()).collect();
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5354_6152);
        let pool: Vec<TaskItem> = match kind {
            TaskKind::Arithmetic | TaskKind::SortLetters => {
                let fresh_seed = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x1a2b_3c4d;
                let records = match kind {
                    TaskKind::Arithmetic => {
                        generators::arithmetic(fresh_seed, pool_size + held.len())
                    }
                    _ => generators::sort_letters(fresh_seed, pool_size + held.len()),
                };
                records
                    .iter()
                    .filter_map(|r| Some(item(r.get("prompt")?, r.get("response")?)))
                    .filter(|i| !held.contains(i.instruction.as_str()))
                    .take(pool_size)
                    .collect()
            }
            TaskKind::ApiZoo => {
                let Content::Examples { train, .. } = &ds.content else {
                    return Err(TaskError::NoExamples {
                        dataset: recipe.name.clone(),
                    });
                };
                let (pre, post) = options
                    .template
                    .split_once("{prompt}")
                    .unwrap_or((options.template.as_str(), ""));
                let mut seen = BTreeSet::new();
                let mut items: Vec<TaskItem> = train
                    .iter()
                    .filter_map(|e| {
                        let instruction = e.prompt.strip_prefix(pre)?.strip_suffix(post)?;
                        Some(item(instruction, &e.answer))
                    })
                    .filter(|i| !held.contains(i.instruction.as_str()))
                    .filter(|i| seen.insert(i.instruction.clone()))
                    .collect();
                items.shuffle(&mut rng);
                items
            }
        };
        if pool.is_empty() {
            return Err(TaskError::NoPrompts {
                dataset: recipe.name.clone(),
                task: kind.name(),
            });
        }
        let checker = match kind {
            TaskKind::Arithmetic => Checker::Arithmetic,
            TaskKind::SortLetters => Checker::SortLetters,
            TaskKind::ApiZoo => Checker::ApiZoo(api_zoo_checker(recipe)?),
        };
        Ok(Self {
            kind,
            template: options.template.clone(),
            held_out,
            pool,
            checker,
        })
    }

    /// The checker's verdict on `answer` to `instruction`.
    pub fn check(&self, instruction: &str, answer: &str) -> Verdict {
        match &self.checker {
            Checker::Arithmetic => generators::check_arithmetic(instruction, answer),
            Checker::SortLetters => generators::check_sort_letters(instruction, answer),
            Checker::ApiZoo(zoo) => zoo.check(instruction, answer),
        }
    }

    /// The training prompts of round `round` (from 1): the next `n` of the pool, starting over
    /// when it runs out.
    pub fn training_prompts(&self, round: usize, n: usize) -> Vec<TaskItem> {
        let start = round.saturating_sub(1) * n;
        (0..n.min(self.pool.len()))
            .map(|i| self.pool[(start + i) % self.pool.len()].clone())
            .collect()
    }

    /// Prompts in the training pool.
    pub fn pool_size(&self) -> usize {
        self.pool.len()
    }
}

/// Why a base run cannot be improved on a task: what its data lacks, naming the field or
/// dataset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// The base does not train on a dataset recipe.
    #[error(
        "data.source: the base must train on a dataset with the sft transform of gen:{task} records ({data} is not one)"
    )]
    NotADataset {
        /// The task's generator name.
        task: &'static str,
        /// The base's data, described.
        data: String,
    },
    /// The base's dataset is not instruction data.
    #[error("data.source.recipe.transform: the base's dataset {dataset} is {transform}, not sft")]
    NotSft {
        /// The dataset's name.
        dataset: String,
        /// Its transform.
        transform: String,
    },
    /// The base's dataset cannot be rebuilt.
    #[error("the base's dataset {dataset} does not build: {message}")]
    DoesNotBuild {
        /// The dataset's name.
        dataset: String,
        /// The build error.
        message: String,
    },
    /// No validation record of the task to hold out.
    #[error(
        "the base's dataset {dataset} has no gen:{task} records with fields \"{prompt_field}\" and \"{response_field}\" in its validation split"
    )]
    NoHeldOut {
        /// The dataset's name.
        dataset: String,
        /// The task's generator name.
        task: &'static str,
        /// The prompt field the transform reads.
        prompt_field: String,
        /// The response field the transform reads.
        response_field: String,
    },
    /// The dataset holds no instruction examples.
    #[error("the base's dataset {dataset} has no examples")]
    NoExamples {
        /// The dataset's name.
        dataset: String,
    },
    /// No training prompt of the task.
    #[error("the base's dataset {dataset} gives no training prompts of gen:{task}")]
    NoPrompts {
        /// The dataset's name.
        dataset: String,
        /// The task's generator name.
        task: &'static str,
    },
    /// The API zoo task without the zoo to check calls against.
    #[error("the base's dataset {dataset} has no gen:api_zoo source to check calls against")]
    NoApiZoo {
        /// The dataset's name.
        dataset: String,
    },
}

/// The checker of the API zoo the recipe generates.
fn api_zoo_checker(recipe: &DatasetRecipe) -> Result<ApiZooChecker, TaskError> {
    let records: Vec<_> = recipe
        .sources
        .iter()
        .filter_map(|s| match &s.source {
            SourceKind::Generated {
                generator: Generator::ApiZoo,
                seed,
                size,
            } => Some(generators::api_zoo(*seed, *size)),
            _ => None,
        })
        .flatten()
        .collect();
    if records.is_empty() {
        return Err(TaskError::NoApiZoo {
            dataset: recipe.name.clone(),
        });
    }
    Ok(ApiZooChecker::new(&records))
}
