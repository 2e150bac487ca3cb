//! Monitor page: one run's live loss curves, progress, controls, attention and samples.

use super::app::StudioApp;
use super::widgets::{Series, SeriesStyle, attention_heatmap, loss_plot, run_color};
use crate::project::RunStatus;
use crate::train::RunControl;
use crate::viz::smoothing::debiased_ema;
use std::hash::{Hash, Hasher};

fn format_secs(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

pub fn monitor_ui(app: &mut StudioApp, ui: &mut egui::Ui) {
    let Some(index) = app.selected.filter(|&i| i < app.runs.len()) else {
        ui.heading("Monitor");
        ui.label("Start a run on the Run setup page, or pick one in the list on the left.");
        return;
    };
    app.runs[index].ensure_history();
    let mut control = None;
    {
        let run = &app.runs[index];
        let last = run.history.as_ref().and_then(|h| h.steps.last()).copied();
        let total = run
            .live
            .as_ref()
            .map(|l| l.total_steps)
            .unwrap_or(run.spec.train.steps);
        ui.horizontal(|ui| {
            ui.heading(run.name());
            ui.label(
                egui::RichText::new(run.status.label())
                    .strong()
                    .color(status_color(&run.status, ui)),
            );
            if let Some(live) = &run.live {
                if live.n_params > 0 {
                    ui.label(format!(
                        "{:.2}M parameters · {}",
                        live.n_params as f64 / 1e6,
                        live.device
                    ));
                }
            }
        });
        let step = last.map(|m| m.step).unwrap_or(0);
        let fraction = step as f32 / total.max(1) as f32;
        let mut text = format!("step {step} / {total}");
        if let Some(m) = last {
            text.push_str(&format!(
                " · {:.0} tokens/s · loss {:.4}",
                m.tokens_per_s, m.train_loss
            ));
            if run.is_live() && step > 0 && step < total {
                let eta = m.elapsed_s / step as f64 * (total - step) as f64;
                text.push_str(&format!(" · ETA {}", format_secs(eta)));
            } else {
                text.push_str(&format!(" · {}", format_secs(m.elapsed_s)));
            }
        }
        ui.horizontal(|ui| {
            ui.add(
                egui::ProgressBar::new(fraction)
                    .text(text)
                    .desired_width(ui.available_width() - 260.0),
            );
            if run.is_live() {
                if run.status == RunStatus::Paused {
                    if ui.button("Resume").clicked() {
                        control = Some(RunControl::Resume);
                    }
                } else if ui.button("Pause").clicked() {
                    control = Some(RunControl::Pause);
                }
                if ui.button("Stop").clicked() {
                    control = Some(RunControl::Stop);
                }
            }
        });
        if let RunStatus::Failed { reason } = &run.status {
            ui.colored_label(ui.visuals().error_fg_color, format!("Failed: {reason}"));
        }
        if let Some(err) = &run.error {
            ui.colored_label(ui.visuals().error_fg_color, err);
        }
        if let Some(history) = &run.history {
            for (step, level, message) in history.messages.iter().rev().take(2) {
                if level == "warning" {
                    ui.colored_label(
                        ui.visuals().warn_fg_color,
                        format!("step {step}: {message}"),
                    );
                }
            }
        }
    }
    if let Some(c) = control {
        app.control(index, c);
    }
    ui.horizontal(|ui| {
        let label = ui.label("Smoothing");
        ui.add(egui::Slider::new(&mut app.prefs.smoothing, 0.0..=0.99).fixed_decimals(2))
            .labelled_by(label.id);
        ui.checkbox(&mut app.prefs.log_y, "log y");
    });
    ui.separator();

    let run = &app.runs[index];
    let color = run_color(index);
    let smoothed: Vec<[f64; 2]> = if app.prefs.smoothing > 0.0 {
        let ys: Vec<f64> = run.curves.train.iter().map(|p| p[1]).collect();
        run.curves
            .train
            .iter()
            .zip(debiased_ema(&ys, app.prefs.smoothing))
            .map(|(p, y)| [p[0], y])
            .collect()
    } else {
        Vec::new()
    };
    let faint = color.gamma_multiply(0.3);
    let mut series = vec![Series {
        name: "train (raw)".into(),
        points: &run.curves.train,
        color: if smoothed.is_empty() { color } else { faint },
        style: SeriesStyle::Line { width: 1.0 },
    }];
    if !smoothed.is_empty() {
        series.push(Series {
            name: "train (smoothed)".into(),
            points: &smoothed,
            color,
            style: SeriesStyle::Line { width: 2.0 },
        });
    }
    series.push(Series {
        name: "validation".into(),
        points: &run.curves.val,
        color: egui::Color32::from_rgb(0xf2, 0x8e, 0x2b),
        style: SeriesStyle::Markers,
    });

    let available = ui.available_size();
    let log_y = app.prefs.log_y;
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.set_width(available.x * 0.55);
            loss_plot(
                ui,
                "monitor_loss",
                &series,
                log_y,
                (available.y * 0.62).max(200.0),
            );
            ui.label(egui::RichText::new("Latest sample").strong());
            let sample = run.history.as_ref().and_then(|h| h.samples.last());
            egui::ScrollArea::vertical()
                .id_salt("sample")
                .max_height(ui.available_height())
                .show(ui, |ui| match sample {
                    Some((step, text)) => {
                        ui.label(egui::RichText::new(format!("step {step}")).weak());
                        ui.add(egui::Label::new(egui::RichText::new(text).monospace()).wrap());
                    }
                    None => {
                        ui.label(
                            egui::RichText::new("A sample appears at each evaluation.").weak(),
                        );
                    }
                });
        });
        ui.separator();
        ui.vertical(|ui| {
            ui.label(egui::RichText::new("Attention on the probe text").strong());
            let snapshot = run.live.as_ref().and_then(|l| l.attention.as_ref());
            match snapshot {
                Some(snap) => {
                    let maps = &snap.maps;
                    ui.horizontal(|ui| {
                        let layer_label = ui.label("layer");
                        app.attention_layer =
                            app.attention_layer.min(maps.n_layer.saturating_sub(1));
                        app.attention_head = app.attention_head.min(maps.n_head.saturating_sub(1));
                        egui::ComboBox::from_id_salt("attn_layer")
                            .selected_text(app.attention_layer.to_string())
                            .show_ui(ui, |ui| {
                                for l in 0..maps.n_layer {
                                    ui.selectable_value(&mut app.attention_layer, l, l.to_string());
                                }
                            })
                            .response
                            .labelled_by(layer_label.id);
                        let head_label = ui.label("head");
                        egui::ComboBox::from_id_salt("attn_head")
                            .selected_text(app.attention_head.to_string())
                            .show_ui(ui, |ui| {
                                for h in 0..maps.n_head {
                                    ui.selectable_value(&mut app.attention_head, h, h.to_string());
                                }
                            })
                            .response
                            .labelled_by(head_label.id);
                        ui.label(egui::RichText::new(format!("step {}", snap.step)).weak());
                    });
                    let mut hasher = std::collections::hash_map::DefaultHasher::new();
                    (&run.dir, snap.step, app.attention_layer, app.attention_head)
                        .hash(&mut hasher);
                    attention_heatmap(
                        ui,
                        maps,
                        &snap.tokens,
                        app.attention_layer,
                        app.attention_head,
                        &mut app.attention_texture,
                        hasher.finish(),
                    );
                    ui.label(
                        egui::RichText::new("rows: query position · columns: key position").weak(),
                    );
                }
                None => {
                    ui.label(
                        egui::RichText::new(if run.is_live() {
                            "Attention maps appear while the run trains."
                        } else {
                            "Attention maps are shown for runs training in this session."
                        })
                        .weak(),
                    );
                }
            }
        });
    });
}

fn status_color(status: &RunStatus, ui: &egui::Ui) -> egui::Color32 {
    match status {
        RunStatus::Running => egui::Color32::from_rgb(0x59, 0xc1, 0x5b),
        RunStatus::Paused => ui.visuals().warn_fg_color,
        RunStatus::Failed { .. } => ui.visuals().error_fg_color,
        _ => ui.visuals().text_color(),
    }
}
