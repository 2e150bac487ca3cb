//! Seed groups: runs whose settings differ only by seed, drawn as a mean line with a band.

use serde_json::Value;

/// Settings that do not make two runs different experiments.
const IGNORED: [&[&str]; 2] = [&["name"], &["train", "seed"]];

fn without_ignored(spec: &Value) -> Value {
    let mut spec = spec.clone();
    for path in IGNORED {
        let (last, parents) = path.split_last().expect("non-empty path");
        let mut node = Some(&mut spec);
        for key in parents {
            node = node.and_then(|n| n.get_mut(*key));
        }
        if let Some(Value::Object(map)) = node {
            map.remove(*last);
        }
    }
    spec
}

/// Partitions runs (given as their spec JSON) into groups equal up to name and seed, in order
/// of first appearance. Every run is in exactly one group; a lone run is a group of one.
pub fn seed_groups(specs: &[Value]) -> Vec<Vec<usize>> {
    let keys: Vec<Value> = specs.iter().map(without_ignored).collect();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        match groups.iter_mut().find(|g| keys[g[0]] == *key) {
            Some(group) => group.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

/// Mean and sample standard deviation across series at the x values every series has
/// (`xs` of each series sorted). Returns `(xs, mean, std)`; with one series std is 0.
pub fn mean_std(series: &[(&[f64], &[f64])]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let Some(((first_xs, _), rest)) = series.split_first() else {
        return (Vec::new(), Vec::new(), Vec::new());
    };
    let n = series.len() as f64;
    let mut cursors = vec![0usize; rest.len()];
    let (mut xs, mut means, mut stds) = (Vec::new(), Vec::new(), Vec::new());
    'points: for (i, &x) in first_xs.iter().enumerate() {
        let mut values = Vec::with_capacity(series.len());
        values.push(series[0].1[i]);
        for (k, (other_xs, other_ys)) in rest.iter().enumerate() {
            let c = &mut cursors[k];
            while *c < other_xs.len() && other_xs[*c] < x {
                *c += 1;
            }
            if *c >= other_xs.len() || other_xs[*c] != x {
                continue 'points;
            }
            values.push(other_ys[*c]);
        }
        let mean = values.iter().sum::<f64>() / n;
        let var = if values.len() > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        xs.push(x);
        means.push(mean);
        stds.push(var.sqrt());
    }
    (xs, means, stds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(name: &str, seed: u64, lr: f64) -> Value {
        json!({"name": name, "optim": {"lr": lr}, "train": {"seed": seed, "steps": 100}})
    }

    #[test]
    fn runs_differing_only_by_seed_group_together() {
        let specs = [
            spec("a", 1, 1e-3),
            spec("b", 2, 1e-3),
            spec("c", 1, 3e-3),
            spec("d", 3, 1e-3),
            spec("e", 9, 3e-3),
            json!({"name": "f", "optim": {"lr": 1e-3}, "train": {"seed": 1, "steps": 200}}),
        ];
        assert_eq!(
            seed_groups(&specs),
            vec![vec![0, 1, 3], vec![2, 4], vec![5]]
        );
    }

    #[test]
    fn mean_and_std_at_shared_steps() {
        let a = ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]);
        let b = ([1.0, 3.0, 4.0], [3.0, 5.0, 9.0]);
        let (xs, mean, std) = mean_std(&[(&a.0, &a.1), (&b.0, &b.1)]);
        assert_eq!(xs, vec![1.0, 3.0], "only steps both runs logged");
        assert_eq!(mean, vec![2.0, 4.0]);
        let s = 2f64.sqrt(); // sample std of {1, 3} and of {3, 5}
        assert!(
            (std[0] - s).abs() < 1e-12 && (std[1] - s).abs() < 1e-12,
            "{std:?}"
        );
    }
}
