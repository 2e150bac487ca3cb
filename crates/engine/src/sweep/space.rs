//! The settings a sweep varies: each parameter a list of values, an integer or real range, or
//! a log range, parsed from `NAME=SPEC` and checked against what the parameter accepts.

use super::SweepError;
use super::apply::{Knob, ValueKind};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One value of a parameter in one trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A whole number (width, layers, seed, ...).
    Int(i64),
    /// A real number (learning rate, dropout, ...).
    Real(f64),
    /// A name (objective, optimizer, ...).
    Text(String),
}

impl ParamValue {
    /// The value as a number (a name has none).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ParamValue::Int(v) => Some(*v as f64),
            ParamValue::Real(v) => Some(*v),
            ParamValue::Text(_) => None,
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(v) => write!(f, "{v}"),
            ParamValue::Real(v) => write!(f, "{}", short_real(*v)),
            ParamValue::Text(v) => f.write_str(v),
        }
    }
}

/// A real number printed short: `0.001`, `3.2e-4`, `0.25`.
pub fn short_real(v: f64) -> String {
    if v != 0.0 && (v.abs() <= 1e-2 || v.abs() >= 1e5) {
        let text = format!("{v:.2e}");
        // `3.20e-4` -> `3.2e-4`, `1.00e-3` -> `1e-3`.
        match text.split_once('e') {
            Some((mantissa, exp)) => {
                let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
                format!("{mantissa}e{exp}")
            }
            None => text,
        }
    } else {
        let text = format!("{v:.4}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        text.to_string()
    }
}

/// Where a parameter's values come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Domain {
    /// These values, in this order (`a,b,c`).
    List {
        /// The values.
        values: Vec<ParamValue>,
    },
    /// Whole numbers from `lo` to `hi`, both included (`int:LO:HI`).
    Int {
        /// Smallest value.
        lo: i64,
        /// Largest value.
        hi: i64,
    },
    /// Real numbers drawn uniformly from `lo` to `hi` (`real:LO:HI`).
    Real {
        /// Smallest value.
        lo: f64,
        /// Largest value.
        hi: f64,
    },
    /// Positive real numbers whose logarithm is drawn uniformly (`log:LO:HI`): as many draws
    /// between 1e-4 and 1e-3 as between 1e-3 and 1e-2.
    Log {
        /// Smallest value.
        lo: f64,
        /// Largest value.
        hi: f64,
    },
}

impl Domain {
    /// True for log ranges (their chart axes are logarithmic).
    pub fn is_log(&self) -> bool {
        matches!(self, Domain::Log { .. })
    }

    /// The number range a chart axis spans (a list: its numbers' range; names have none).
    pub fn bounds(&self) -> Option<(f64, f64)> {
        match self {
            Domain::List { values } => {
                let numbers: Vec<f64> = values.iter().filter_map(ParamValue::as_f64).collect();
                if numbers.len() < values.len() || numbers.is_empty() {
                    return None;
                }
                let lo = numbers.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                Some((lo, hi))
            }
            Domain::Int { lo, hi } => Some((*lo as f64, *hi as f64)),
            Domain::Real { lo, hi } | Domain::Log { lo, hi } => Some((*lo, *hi)),
        }
    }

    /// Every value, where there are finitely many (lists and integer ranges).
    pub fn grid_values(&self) -> Option<Vec<ParamValue>> {
        match self {
            Domain::List { values } => Some(values.clone()),
            Domain::Int { lo, hi } => Some((*lo..=*hi).map(ParamValue::Int).collect()),
            Domain::Real { .. } | Domain::Log { .. } => None,
        }
    }

    /// The values a check of the base settings tries: a list's values, a range's ends.
    pub fn corner_values(&self) -> Vec<ParamValue> {
        match self {
            Domain::List { values } => values.clone(),
            Domain::Int { lo, hi } => vec![ParamValue::Int(*lo), ParamValue::Int(*hi)],
            Domain::Real { lo, hi } | Domain::Log { lo, hi } => {
                vec![ParamValue::Real(*lo), ParamValue::Real(*hi)]
            }
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Domain::List { values } => {
                let parts: Vec<String> = values.iter().map(|v| v.to_string()).collect();
                f.write_str(&parts.join(","))
            }
            Domain::Int { lo, hi } => write!(f, "int:{lo}:{hi}"),
            Domain::Real { lo, hi } => write!(f, "real:{}:{}", short_real(*lo), short_real(*hi)),
            Domain::Log { lo, hi } => write!(f, "log:{}:{}", short_real(*lo), short_real(*hi)),
        }
    }
}

/// One parameter a sweep varies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// The setting's name (`lr`, `width`, ...; see [`super::apply::KNOBS`]).
    pub name: String,
    /// Its values.
    pub domain: Domain,
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.domain)
    }
}

impl Param {
    /// Parses `NAME=SPEC`: SPEC is `a,b,c`, `int:LO:HI`, `real:LO:HI` or `log:LO:HI`. Errors
    /// name the argument and say what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, SweepError> {
        let bad = |message: String| SweepError::Param {
            arg: text.to_string(),
            message,
        };
        let (name, spec) = text
            .split_once('=')
            .ok_or_else(|| bad("expected NAME=SPEC, e.g. lr=log:1e-4:1e-2".to_string()))?;
        let name = name.trim();
        let knob = Knob::named(name).ok_or_else(|| {
            bad(format!(
                "unknown parameter `{name}`; a sweep can vary {}",
                Knob::names().join(", ")
            ))
        })?;
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(bad("no values".to_string()));
        }
        let number = |s: &str, what: &str| -> Result<f64, SweepError> {
            let v: f64 = s
                .trim()
                .parse()
                .map_err(|_| bad(format!("{what} `{s}` is not a number")))?;
            if v.is_finite() {
                Ok(v)
            } else {
                Err(bad(format!("{what} `{s}` is not finite")))
            }
        };
        let range = |rest: &str| -> Result<(f64, f64), SweepError> {
            let (lo, hi) = rest
                .split_once(':')
                .ok_or_else(|| bad("a range is KIND:LO:HI".to_string()))?;
            let (lo, hi) = (number(lo, "LO")?, number(hi, "HI")?);
            if lo >= hi {
                return Err(bad(format!(
                    "empty range: LO ({lo}) must be below HI ({hi})"
                )));
            }
            Ok((lo, hi))
        };
        let domain = if let Some(rest) = spec.strip_prefix("int:") {
            let (lo, hi) = range(rest)?;
            if lo.fract() != 0.0 || hi.fract() != 0.0 {
                return Err(bad("int:LO:HI takes whole numbers".to_string()));
            }
            Domain::Int {
                lo: lo as i64,
                hi: hi as i64,
            }
        } else if let Some(rest) = spec.strip_prefix("real:") {
            let (lo, hi) = range(rest)?;
            Domain::Real { lo, hi }
        } else if let Some(rest) = spec.strip_prefix("log:") {
            let (lo, hi) = range(rest)?;
            if lo <= 0.0 {
                return Err(bad(format!(
                    "a log range must stay above zero (LO is {lo}); use real:LO:HI"
                )));
            }
            Domain::Log { lo, hi }
        } else {
            let mut values = Vec::new();
            for part in spec.split(',') {
                let part = part.trim();
                if part.is_empty() {
                    return Err(bad("an empty value in the list".to_string()));
                }
                let value = match knob.kind {
                    ValueKind::Int => {
                        let v = number(part, "value")?;
                        if v.fract() != 0.0 {
                            return Err(bad(format!("`{name}` takes whole numbers, not {part}")));
                        }
                        ParamValue::Int(v as i64)
                    }
                    ValueKind::Real => ParamValue::Real(number(part, "value")?),
                    ValueKind::Text => ParamValue::Text(part.to_string()),
                };
                if values.contains(&value) {
                    return Err(bad(format!("{part} is listed twice")));
                }
                values.push(value);
            }
            Domain::List { values }
        };
        match (&domain, knob.kind) {
            (Domain::List { .. }, _) => {}
            (_, ValueKind::Text) => {
                return Err(bad(format!(
                    "`{name}` takes names: list them (a,b,c), ranges are for numbers"
                )));
            }
            (Domain::Real { .. } | Domain::Log { .. }, ValueKind::Int) => {
                return Err(bad(format!(
                    "`{name}` takes whole numbers: use int:LO:HI or a list"
                )));
            }
            _ => {}
        }
        Ok(Param {
            name: knob.name.to_string(),
            domain,
        })
    }

    /// The value at `u` in [0, 1) of the parameter's range (lists and integer ranges: one of
    /// their values, each as likely).
    pub fn value_at(&self, u: f64) -> ParamValue {
        let u = u.clamp(0.0, 1.0 - f64::EPSILON);
        match &self.domain {
            Domain::List { values } => {
                values[((u * values.len() as f64) as usize).min(values.len() - 1)].clone()
            }
            Domain::Int { lo, hi } => {
                let n = (hi - lo + 1) as f64;
                ParamValue::Int(lo + ((u * n) as i64).min(hi - lo))
            }
            Domain::Real { lo, hi } => ParamValue::Real(lo + u * (hi - lo)),
            Domain::Log { lo, hi } => ParamValue::Real((lo.ln() + u * (hi.ln() - lo.ln())).exp()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_spec_parses() {
        let p = Param::parse("lr=log:1e-4:1e-2").unwrap();
        assert_eq!(p.domain, Domain::Log { lo: 1e-4, hi: 1e-2 });
        let p = Param::parse("width=32,64,128").unwrap();
        assert_eq!(
            p.domain.grid_values().unwrap(),
            [
                ParamValue::Int(32),
                ParamValue::Int(64),
                ParamValue::Int(128)
            ]
        );
        let p = Param::parse("layers=int:1:3").unwrap();
        assert_eq!(p.domain.grid_values().unwrap().len(), 3);
        let p = Param::parse("dropout=real:0:0.2").unwrap();
        assert_eq!(p.domain, Domain::Real { lo: 0.0, hi: 0.2 });
        let p = Param::parse("objective=next-token,masked").unwrap();
        assert_eq!(
            p.domain.grid_values().unwrap()[1],
            ParamValue::Text("masked".into())
        );
    }

    #[test]
    fn bad_specs_are_refused_naming_the_argument_and_the_problem() {
        for (arg, expected) in [
            ("depth=1,2", "unknown parameter `depth`"),
            ("lr=real:1e-2:1e-4", "empty range"),
            ("lr=real:0.1:0.1", "empty range"),
            ("lr=log:0:1e-2", "above zero"),
            ("lr=log:-1e-3:1e-2", "above zero"),
            ("width=real:32:128", "whole numbers"),
            ("width=32,48.5", "whole numbers"),
            ("objective=int:1:2", "takes names"),
            ("lr", "NAME=SPEC"),
            ("lr=", "no values"),
            ("lr=1e-3,,1e-2", "empty value"),
            ("lr=1e-3,abc", "`abc` is not a number"),
            ("width=32,32", "listed twice"),
        ] {
            let err = Param::parse(arg).expect_err(arg).to_string();
            assert!(err.contains(arg), "the error names the argument: {err}");
            assert!(
                err.contains(expected),
                "{arg}: expected `{expected}` in: {err}"
            );
        }
    }

    #[test]
    fn a_log_range_draws_as_often_in_each_decade() {
        let p = Param::parse("lr=log:1e-4:1e-2").unwrap();
        assert!((p.value_at(0.0).as_f64().unwrap() - 1e-4).abs() < 1e-12);
        assert!((p.value_at(0.5).as_f64().unwrap() - 1e-3).abs() < 1e-12);
        let int = Param::parse("layers=int:1:3").unwrap();
        let drawn: Vec<ParamValue> = [0.0, 0.34, 0.99].iter().map(|&u| int.value_at(u)).collect();
        assert_eq!(
            drawn,
            [ParamValue::Int(1), ParamValue::Int(2), ParamValue::Int(3)]
        );
    }

    #[test]
    fn short_reals_read_well() {
        assert_eq!(short_real(1e-3), "1e-3");
        assert_eq!(short_real(3.2e-4), "3.2e-4");
        assert_eq!(short_real(0.25), "0.25");
        assert_eq!(short_real(1.0), "1");
    }
}
