//! The run settings a sweep can vary, and how a trial's values are written into a
//! [`RunSpec`].

use super::space::ParamValue;
use crate::model::Arch;
use crate::objective::ObjectiveKind;
use crate::spec::RunSpec;
use clap::ValueEnum;

/// What kind of value a setting takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Whole numbers.
    Int,
    /// Real numbers.
    Real,
    /// Names.
    Text,
}

/// A run setting a sweep can vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knob {
    /// The name in `--param NAME=SPEC` (as the `hearth train` flag, with `_` for `-`).
    pub name: &'static str,
    /// What values it takes.
    pub kind: ValueKind,
    /// The spec field it sets.
    pub field: &'static str,
}

const fn knob(name: &'static str, kind: ValueKind, field: &'static str) -> Knob {
    Knob { name, kind, field }
}

/// Every setting a sweep can vary, in the order the studio lists them.
pub const KNOBS: &[Knob] = &[
    knob("lr", ValueKind::Real, "optim.lr"),
    knob("min_lr", ValueKind::Real, "optim.min_lr"),
    knob("warmup", ValueKind::Int, "optim.warmup_steps"),
    knob("weight_decay", ValueKind::Real, "optim.weight_decay"),
    knob("grad_clip", ValueKind::Real, "optim.grad_clip"),
    knob("optimizer", ValueKind::Text, "optim.optimizer"),
    knob("muon_lr", ValueKind::Real, "optim.muon_lr"),
    knob("width", ValueKind::Int, "model.d_model"),
    knob("layers", ValueKind::Int, "model.n_layer"),
    knob("heads", ValueKind::Int, "model.n_head"),
    knob("context", ValueKind::Int, "model.context"),
    knob("dropout", ValueKind::Real, "model.dropout"),
    knob("arch", ValueKind::Text, "model.arch"),
    knob("lora_rank", ValueKind::Int, "model.lora.rank"),
    knob("batch", ValueKind::Int, "train.batch_size"),
    knob("grad_accum", ValueKind::Int, "train.grad_accum"),
    knob("seed", ValueKind::Int, "train.seed"),
    knob("objective", ValueKind::Text, "objective.kind"),
    knob("mask_rate", ValueKind::Real, "objective.mask_rate"),
    knob("temperature", ValueKind::Real, "objective.temperature"),
    knob("gen_weight", ValueKind::Real, "objective.gen_weight"),
    knob(
        "uniformity_weight",
        ValueKind::Real,
        "objective.uniformity_weight",
    ),
    knob("masked_weight", ValueKind::Real, "objective.masked_weight"),
    knob("masked_warmup", ValueKind::Real, "objective.masked_warmup"),
    knob("lexical", ValueKind::Real, "objective.lexical"),
];

impl Knob {
    /// The setting called `name` (`-` and `_` alike).
    pub fn named(name: &str) -> Option<Knob> {
        let name = name.replace('-', "_");
        KNOBS.iter().copied().find(|k| k.name == name)
    }

    /// Every name, for messages.
    pub fn names() -> Vec<&'static str> {
        KNOBS.iter().map(|k| k.name).collect()
    }

    /// The setting's value in `spec`.
    pub fn read(&self, spec: &RunSpec) -> ParamValue {
        let (o, m, t, obj) = (&spec.optim, &spec.model, &spec.train, &spec.objective);
        let real = ParamValue::Real;
        let int = |v: usize| ParamValue::Int(v as i64);
        match self.name {
            "lr" => real(o.lr),
            "min_lr" => real(o.min_lr),
            "warmup" => int(o.warmup_steps),
            "weight_decay" => real(o.weight_decay),
            "grad_clip" => real(o.grad_clip),
            "optimizer" => ParamValue::Text(enum_name(o.optimizer)),
            "muon_lr" => real(o.muon_lr),
            "width" => int(m.d_model),
            "layers" => int(m.n_layer),
            "heads" => int(m.n_head),
            "context" => int(m.context),
            "dropout" => real(m.dropout),
            "arch" => ParamValue::Text(enum_name(m.arch)),
            "lora_rank" => int(m.lora.as_ref().map_or(0, |l| l.rank)),
            "batch" => int(t.batch_size),
            "grad_accum" => int(t.grad_accum),
            "seed" => ParamValue::Int(t.seed as i64),
            "objective" => ParamValue::Text(obj.kind.name().to_string()),
            "mask_rate" => real(obj.mask_rate),
            "temperature" => real(obj.temperature),
            "gen_weight" => real(obj.gen_weight),
            "uniformity_weight" => real(obj.uniformity_weight),
            "masked_weight" => real(obj.masked_weight),
            "masked_warmup" => real(obj.masked_warmup),
            "lexical" => real(obj.lexical),
            other => unreachable!("knob {other} has no field"),
        }
    }

    /// Writes `value` into `spec`. A learning rate keeps the base's ratio of minimum to peak
    /// (so the cosine decays to the same share), and a LoRA rank the base's alpha / rank.
    pub fn write(&self, spec: &mut RunSpec, value: &ParamValue) -> Result<(), String> {
        let number = || {
            value
                .as_f64()
                .ok_or_else(|| format!("{} takes a number, not {value}", self.name))
        };
        let whole = || -> Result<usize, String> {
            let v = number()?;
            if v < 0.0 || v.fract() != 0.0 {
                return Err(format!(
                    "{} takes a whole number of at least 0, not {v}",
                    self.name
                ));
            }
            Ok(v as usize)
        };
        let text = || match value {
            ParamValue::Text(t) => Ok(t.clone()),
            other => Err(format!("{} takes a name, not {other}", self.name)),
        };
        match self.name {
            "lr" => {
                let lr = number()?;
                let ratio = if spec.optim.lr > 0.0 {
                    spec.optim.min_lr / spec.optim.lr
                } else {
                    0.1
                };
                spec.optim.lr = lr;
                spec.optim.min_lr = lr * ratio;
            }
            "min_lr" => spec.optim.min_lr = number()?,
            "warmup" => spec.optim.warmup_steps = whole()?,
            "weight_decay" => spec.optim.weight_decay = number()?,
            "grad_clip" => spec.optim.grad_clip = number()?,
            "optimizer" => spec.optim.optimizer = parse_enum(&text()?, self.name)?,
            "muon_lr" => spec.optim.muon_lr = number()?,
            "width" => spec.model.d_model = whole()?,
            "layers" => spec.model.n_layer = whole()?,
            "heads" => spec.model.n_head = whole()?,
            "context" => spec.model.context = whole()?,
            "dropout" => spec.model.dropout = number()?,
            "arch" => spec.model.arch = parse_enum::<Arch>(&text()?, self.name)?,
            "lora_rank" => {
                let rank = whole()?;
                let lora = spec.model.lora.as_mut().ok_or_else(|| {
                    "lora_rank: the base settings train no LoRA adapters (add --init-from RUN --lora-rank R)"
                        .to_string()
                })?;
                let scale = lora.alpha / lora.rank.max(1) as f64;
                lora.rank = rank;
                lora.alpha = scale * rank as f64;
            }
            "batch" => spec.train.batch_size = whole()?,
            "grad_accum" => spec.train.grad_accum = whole()?,
            "seed" => spec.train.seed = whole()? as u64,
            "objective" => {
                let name = text()?;
                spec.objective.kind = ObjectiveKind::parse(&name).ok_or_else(|| {
                    let known: Vec<String> = ObjectiveKind::all()
                        .iter()
                        .map(|k| k.name().to_string())
                        .collect();
                    format!("objective `{name}` is not one of {}", known.join(", "))
                })?;
            }
            "mask_rate" => spec.objective.mask_rate = number()?,
            "temperature" => spec.objective.temperature = number()?,
            "gen_weight" => spec.objective.gen_weight = number()?,
            "uniformity_weight" => spec.objective.uniformity_weight = number()?,
            "masked_weight" => spec.objective.masked_weight = number()?,
            "masked_warmup" => spec.objective.masked_warmup = number()?,
            "lexical" => spec.objective.lexical = number()?,
            other => return Err(format!("no setting called {other}")),
        }
        Ok(())
    }
}

fn enum_name<E: ValueEnum>(value: E) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

fn parse_enum<E: ValueEnum>(text: &str, name: &str) -> Result<E, String> {
    E::from_str(text, true).map_err(|_| {
        let known: Vec<String> = E::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        format!("{name} `{text}` is not one of {}", known.join(", "))
    })
}

/// `base` with a trial's values written in, in the order given.
pub fn apply_values(base: &RunSpec, values: &[(String, ParamValue)]) -> Result<RunSpec, String> {
    let mut spec = base.clone();
    for (name, value) in values {
        let knob = Knob::named(name).ok_or_else(|| format!("no setting called {name}"))?;
        knob.write(&mut spec, value)?;
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_knob_reads_back_what_it_wrote() {
        let mut spec = RunSpec::default();
        spec.model.lora = Some(crate::model::LoraSpec::default());
        for knob in KNOBS {
            let value = match (knob.kind, knob.name) {
                (ValueKind::Int, _) => ParamValue::Int(3),
                (ValueKind::Real, _) => ParamValue::Real(0.0125),
                (ValueKind::Text, "optimizer") => ParamValue::Text("muon".into()),
                (ValueKind::Text, "arch") => ParamValue::Text("modern".into()),
                (ValueKind::Text, _) => ParamValue::Text("masked".into()),
            };
            knob.write(&mut spec, &value).unwrap();
            assert_eq!(knob.read(&spec), value, "{}", knob.name);
        }
    }

    #[test]
    fn a_learning_rate_keeps_the_schedules_floor_share() {
        let base = RunSpec::default();
        let share = base.optim.min_lr / base.optim.lr;
        let spec = apply_values(&base, &[("lr".into(), ParamValue::Real(4e-3))]).unwrap();
        assert_eq!(spec.optim.lr, 4e-3);
        assert!((spec.optim.min_lr / spec.optim.lr - share).abs() < 1e-12);
        assert!(spec.validate().is_empty(), "{:?}", spec.validate());
    }

    #[test]
    fn a_wrong_name_or_kind_is_refused() {
        let base = RunSpec::default();
        let err = apply_values(
            &base,
            &[("objective".into(), ParamValue::Text("nope".into()))],
        )
        .unwrap_err();
        assert!(
            err.contains("next-token"),
            "lists the known objectives: {err}"
        );
        let err = apply_values(&base, &[("lora_rank".into(), ParamValue::Int(4))]).unwrap_err();
        assert!(err.contains("--lora-rank"), "{err}");
        let err =
            apply_values(&base, &[("width".into(), ParamValue::Text("x".into()))]).unwrap_err();
        assert!(err.contains("takes a number"), "{err}");
    }
}
