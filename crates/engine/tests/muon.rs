//! Muon against PyTorch: the Newton-Schulz orthogonalisation and two full updates of one
//! weight matrix match `scripts/muon_fixture.py` (the reference implementation, in float64)
//! within 1e-5.

use burn::tensor::{Device, Tensor, TensorData};
use hearth_engine::train::optim::{muon_step, newton_schulz};
use serde_json::Value;

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// A PyTorch `[out, in]` matrix in Burn's `[in, out]` layout.
fn burn_layout(values: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(values, [rows, cols]), device).transpose()
}

fn torch_layout(t: Tensor<2>) -> Vec<f32> {
    t.transpose()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len());
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "{what}: differs by up to {worst:e}");
}

#[test]
fn muon_matches_the_reference_implementation() {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/muon_reference.json")).unwrap();
    let (rows, cols) = (
        fixture["rows"].as_u64().unwrap() as usize,
        fixture["cols"].as_u64().unwrap() as usize,
    );
    for device in [
        Device::flex(),
        hearth_engine::backend::BackendKind::preferred()
            .device()
            .unwrap(),
    ] {
        let grads: Vec<Tensor<2>> = fixture["grads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| burn_layout(floats(g), rows, cols, &device))
            .collect();
        assert_close(
            &torch_layout(newton_schulz(grads[0].clone(), 5)),
            &floats(&fixture["orthogonalized"]),
            "Newton-Schulz",
        );
        let mut w = burn_layout(floats(&fixture["weight"]), rows, cols, &device);
        let mut m = w.clone().zeros_like();
        for (i, g) in grads.into_iter().enumerate() {
            (w, m) = muon_step(
                w,
                g,
                m,
                fixture["lr"].as_f64().unwrap(),
                fixture["weight_decay"].as_f64().unwrap(),
                fixture["momentum"].as_f64().unwrap(),
            );
            assert_close(
                &torch_layout(w.clone()),
                &floats(&fixture["after"][i]),
                &format!("weights after update {}", i + 1),
            );
        }
    }
}
