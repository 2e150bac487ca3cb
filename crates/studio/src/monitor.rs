//! Monitor page: one run's live loss curves, progress, controls, attention and samples, and
//! what a user does with a run (rename, tag, notes, clone, resume, export, delete).

use super::app::{SaveKind, StudioApp, XAxis};
use super::widgets::{PlotOptions, Series, SeriesStyle, attention_heatmap, loss_plot, run_color};
use hearth_engine::project::RunStatus;
use hearth_engine::train::RunControl;
use hearth_engine::viz::smoothing::SmoothingKind;
use std::hash::{Hash, Hasher};

fn format_secs(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// Smoothing, axis and scale controls shared by the monitor and compare pages.
pub fn plot_controls_ui(app: &mut StudioApp, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        let label = ui.label("Smoothing");
        ui.add(egui::Slider::new(&mut app.prefs.smoothing, 0.0..=0.99).fixed_decimals(2))
            .labelled_by(label.id);
        egui::ComboBox::from_id_salt(ui.scope_id().with("smoothing_kind"))
            .selected_text(match app.prefs.smoothing_kind {
                SmoothingKind::DebiasedEma => "debiased EMA",
                SmoothingKind::TimeWeightedEma => "time-weighted EMA",
            })
            .show_ui(ui, |ui| {
                ui.selectable_value(
                    &mut app.prefs.smoothing_kind,
                    SmoothingKind::DebiasedEma,
                    "debiased EMA",
                );
                ui.selectable_value(
                    &mut app.prefs.smoothing_kind,
                    SmoothingKind::TimeWeightedEma,
                    "time-weighted EMA",
                );
            })
            .response
            .labelled_by(label.id);
        ui.checkbox(&mut app.prefs.smooth_in_log_space, "smooth in log space");
        ui.separator();
        ui.checkbox(&mut app.prefs.log_y, "log y");
        let x_label = ui.label("x axis");
        egui::ComboBox::from_id_salt(ui.scope_id().with("x_axis"))
            .selected_text(app.prefs.x_axis.label())
            .show_ui(ui, |ui| {
                for axis in XAxis::ALL {
                    ui.selectable_value(&mut app.prefs.x_axis, axis, axis.label());
                }
            })
            .response
            .labelled_by(x_label.id);
    });
}

/// Rename, tags, notes and the run's actions.
fn manage_ui(app: &mut StudioApp, index: usize, ui: &mut egui::Ui) {
    let mut save = false;
    let mut action: Option<fn(&mut StudioApp, usize)> = None;
    let live = app.runs[index].is_live();
    let resumable = !live
        && matches!(
            app.runs[index].status,
            RunStatus::Stopped | RunStatus::Failed { .. }
        );
    egui::CollapsingHeader::new("Run details")
        .id_salt("run_details")
        .show(ui, |ui| {
            let run = &mut app.runs[index];
            egui::Grid::new("run_details_grid")
                .num_columns(2)
                .show(ui, |ui| {
                    let label = ui.label("Name");
                    let mut name = run.name().to_string();
                    let r = ui.text_edit_singleline(&mut name).labelled_by(label.id);
                    if r.changed() {
                        run.annotations.display_name = Some(name);
                    }
                    save |= r.lost_focus();
                    ui.end_row();
                    let label = ui.label("Tags");
                    let mut tags = run.annotations.tags.join(", ");
                    let r = ui
                        .add(egui::TextEdit::singleline(&mut tags).hint_text("comma, separated"))
                        .labelled_by(label.id);
                    if r.changed() {
                        run.annotations.tags = tags
                            .split(',')
                            .map(|t| t.trim().to_string())
                            .filter(|t| !t.is_empty())
                            .collect();
                    }
                    save |= r.lost_focus();
                    ui.end_row();
                    let label = ui.label("Notes");
                    let r = ui
                        .add(egui::TextEdit::multiline(&mut run.annotations.notes).desired_rows(2))
                        .labelled_by(label.id);
                    save |= r.lost_focus();
                    ui.end_row();
                    ui.label("Folder");
                    ui.label(egui::RichText::new(run.dir.display().to_string()).weak());
                    ui.end_row();
                });
            ui.horizontal(|ui| {
                if ui
                    .button("Clone settings")
                    .on_hover_text("Start a variant on the setup page")
                    .clicked()
                {
                    action = Some(StudioApp::clone_settings);
                }
                if !live
                    && ui
                        .button("Fine-tune from here")
                        .on_hover_text("A new run starting from this run's newest checkpoint")
                        .clicked()
                {
                    action = Some(StudioApp::fine_tune_from);
                }
                if resumable && ui.button("Resume from checkpoint").clicked() {
                    action = Some(StudioApp::resume_run);
                }
                if ui.button("Export metrics CSV…").clicked() {
                    action = Some(|app, i| {
                        let name = format!("{}.csv", app.runs[i].name());
                        app.ask_save(SaveKind::MetricsCsv(i), &name);
                    });
                }
                if ui
                    .add_enabled(!live, egui::Button::new("Delete"))
                    .on_hover_text("Moves the run to the project's trash; Undo brings it back")
                    .clicked()
                {
                    action = Some(StudioApp::delete_run);
                }
            });
        });
    if save {
        app.save_annotations(index);
    }
    if let Some(action) = action {
        action(app, index);
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
            for tag in &run.annotations.tags {
                ui.label(egui::RichText::new(format!("#{tag}")).weak());
            }
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
                    .desired_width(ui.available_width() - 160.0),
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
        if let Some(eval) = run.history.as_ref().and_then(|h| h.evals.last()) {
            if !eval.extra.is_empty() {
                let text: Vec<String> = eval
                    .extra
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.4}"))
                    .collect();
                ui.label(format!("step {}: {}", eval.step, text.join(" · ")));
            }
        }
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
    manage_ui(app, index, ui);
    if index >= app.runs.len() || app.selected != Some(index) {
        return; // deleted
    }
    plot_controls_ui(app, ui);
    ui.separator();

    let settings = app.prefs.smooth_settings();
    let axis = app.prefs.x_axis;
    let log_y = app.prefs.log_y;
    let color = run_color(index);
    let smoothing_on = settings.weight > 0.0;
    {
        let run = &mut app.runs[index];
        if smoothing_on {
            run.curves.smoothed(settings);
        }
        run.curves.train_index();
        // Finished runs show the last stored snapshot; live runs wait for the worker's (reading
        // the store on every new step would put I/O on the UI thread for nothing).
        if run.live.is_none() {
            let last = run.last_step.map(|(s, _)| s).unwrap_or(0);
            run.attention_near(last);
        }
    }
    // Disjoint borrows: the run's data is read while the attention picker state is written.
    let StudioApp {
        runs,
        attention_layer,
        attention_head,
        attention_texture,
        embedding_map_index,
        contrastive_texture,
        ..
    } = app;
    let run = &runs[index];
    let curves = &run.curves;
    let mut series = vec![Series {
        name: "train (raw)".into(),
        xs: curves.xs(axis),
        ys: &curves.train,
        color: if smoothing_on {
            color.gamma_multiply(0.3)
        } else {
            color
        },
        style: SeriesStyle::Line { width: 1.0 },
        index: Some(curves.train_index_ref()),
    }];
    if smoothing_on {
        series.push(Series {
            name: "train (smoothed)".into(),
            xs: curves.xs(axis),
            ys: curves.smoothed_values(),
            color,
            style: SeriesStyle::Line { width: 2.0 },
            index: Some(curves.smoothed_index()),
        });
    }
    series.push(Series {
        name: "validation".into(),
        xs: curves.val_xs(axis),
        ys: &curves.val,
        color: egui::Color32::from_rgb(0xf2, 0x8e, 0x2b),
        style: SeriesStyle::Markers,
        index: None,
    });
    let snapshot = run
        .live
        .as_ref()
        .and_then(|l| l.attention.as_ref())
        .or_else(|| run.stored_attention.as_ref().and_then(|(_, s)| s.as_ref()));
    let sample = run.history.as_ref().and_then(|h| h.samples.last());

    let available = ui.available_size();
    let mut export_rect = None;
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.set_width(available.x * 0.55);
            let options = PlotOptions {
                log_y,
                height: (available.y * 0.62).max(200.0),
                x_label: axis.label(),
                y_label: "loss",
            };
            let response = loss_plot(ui, "monitor_loss", &series, &[], options);
            if ui.small_button("Export chart PNG…").clicked() {
                export_rect = Some(response.response.rect);
            }
            metrics_plot_ui(ui, run, axis, available.y * 0.25);
            ui.label(egui::RichText::new("Latest sample").strong());
            egui::ScrollArea::vertical()
                .id_salt("sample")
                .max_height(ui.available_height())
                .show(ui, |ui| match sample {
                    Some((step, text)) => {
                        ui.label(egui::RichText::new(format!("step {step}")).weak());
                        ui.add(egui::Label::new(egui::RichText::new(text).monospace()).wrap());
                    }
                    None => {
                        use hearth_engine::objective::ObjectiveKind;
                        let kind = &run.spec.objective.kind;
                        let text = if *kind == ObjectiveKind::NEXT_TOKEN
                            || *kind == ObjectiveKind::GRIT
                        {
                            "A sample appears at each evaluation."
                        } else {
                            "This objective trains a bidirectional model, which does not generate text."
                        };
                        ui.label(egui::RichText::new(text).weak());
                    }
                });
        });
        ui.separator();
        ui.vertical(|ui| {
            egui::ScrollArea::vertical()
                .id_salt("monitor_right")
                .show(ui, |ui| {
                    if !run.embedding_maps.is_empty() {
                        embedding_map_ui(
                            ui,
                            &run.embedding_maps,
                            embedding_map_index,
                            available.y * 0.4,
                        );
                        ui.separator();
                    }
                    if let Some(view) = &run.contrastive_view {
                        contrastive_view_ui(ui, view, contrastive_texture);
                        ui.separator();
                    }
                    if let Some(view) = &run.masked_view {
                        masked_view_ui(ui, view);
                        ui.separator();
                    }
                    ui.label(egui::RichText::new("Attention on the probe text").strong());
                    let Some(snap) = snapshot else {
                        ui.label(
                            egui::RichText::new("Attention maps appear while the run trains.")
                                .weak(),
                        );
                        return;
                    };
                    let maps = &snap.maps;
                    *attention_layer = (*attention_layer).min(maps.n_layer.saturating_sub(1));
                    *attention_head = (*attention_head).min(maps.n_head.saturating_sub(1));
                    layer_head_ui(
                        ui,
                        attention_layer,
                        attention_head,
                        maps.n_layer,
                        maps.n_head,
                    );
                    ui.label(egui::RichText::new(format!("step {}", snap.step)).weak());
                    let mut hasher = std::collections::hash_map::DefaultHasher::new();
                    (&run.dir, snap.step, *attention_layer, *attention_head).hash(&mut hasher);
                    attention_heatmap(
                        ui,
                        maps,
                        &snap.tokens,
                        *attention_layer,
                        *attention_head,
                        attention_texture,
                        hasher.finish(),
                        f32::INFINITY,
                    );
                    ui.label(
                        egui::RichText::new("rows: query position · columns: key position").weak(),
                    );
                });
        });
    });
    if let Some(rect) = export_rect {
        let name = format!("{}-loss.png", app.runs[index].name());
        app.ask_save(SaveKind::ChartPng(rect), &name);
    }
}

/// The probe set's embeddings in 2-D, queries and their positives, with a slider over the
/// snapshots; hovering a point shows its text.
fn embedding_map_ui(
    ui: &mut egui::Ui,
    maps: &[hearth_engine::events::EmbeddingSnapshot],
    index: &mut Option<usize>,
    height: f32,
) {
    let last = maps.len() - 1;
    let mut shown = index.unwrap_or(last).min(last);
    ui.horizontal(|ui| {
        ui.label(egui::RichText::new("Embedding map").strong());
        let label = ui.label("snapshot");
        if ui
            .add(
                egui::Slider::new(&mut shown, 0..=last)
                    .custom_formatter(|v, _| format!("step {}", maps[v as usize].step)),
            )
            .labelled_by(label.id)
            .changed()
        {
            // Back at the newest: follow new snapshots again.
            *index = (shown != last).then_some(shown);
        }
    });
    embedding_scatter_ui(ui, "embedding_map", &maps[shown], height);
}

/// One embedding map as a scatter of query and positive halves; hover a point for its text.
pub fn embedding_scatter_ui(
    ui: &mut egui::Ui,
    id: &str,
    map: &hearth_engine::events::EmbeddingSnapshot,
    height: f32,
) {
    let (queries, positives): (Vec<usize>, Vec<usize>) =
        (0..map.points.len()).partition(|&i| map.groups[i] == 0);
    let to_points = |ids: &[usize]| -> Vec<[f64; 2]> {
        ids.iter()
            .map(|&i| [f64::from(map.points[i][0]), f64::from(map.points[i][1])])
            .collect()
    };
    let texts =
        |ids: &[usize]| -> Vec<String> { ids.iter().map(|&i| map.texts[i].clone()).collect() };
    let (query_texts, positive_texts) = (texts(&queries), texts(&positives));
    egui_plot::Plot::new(id)
        .height(height.max(160.0))
        .data_aspect(1.0)
        .legend(egui_plot::Legend::default())
        .show_axes([false, false])
        .label_formatter(move |hover| match hover {
            egui_plot::HoverPosition::NearDataPoint {
                plot_name, index, ..
            } => {
                let texts = if *plot_name == "query halves" {
                    &query_texts
                } else {
                    &positive_texts
                };
                texts
                    .get(*index)
                    .map(|t| format!("{plot_name} #{index}\n{}", t.replace('\n', " ")))
            }
            egui_plot::HoverPosition::Elsewhere { .. } => None,
        })
        .show(ui, |plot_ui| {
            plot_ui.points(
                egui_plot::Points::new(
                    "query halves",
                    egui_plot::PlotPoints::from(to_points(&queries)),
                )
                .color(egui::Color32::from_rgb(0x4e, 0x9a, 0xf1))
                .radius(3.0),
            );
            plot_ui.points(
                egui_plot::Points::new(
                    "positive halves",
                    egui_plot::PlotPoints::from(to_points(&positives)),
                )
                .color(egui::Color32::from_rgb(0xf2, 0x8e, 0x2b))
                .radius(3.0),
            );
        });
}

/// One validation batch: similarity heatmap (diagonal = positives) and each query's margin.
fn contrastive_view_ui(
    ui: &mut egui::Ui,
    view: &hearth_engine::events::ContrastiveBatch,
    texture: &mut Option<(u64, egui::TextureHandle)>,
) {
    let wins = view.margins.iter().filter(|&&m| m > 0.0).count();
    let mean = view.margins.iter().sum::<f32>() / view.margins.len().max(1) as f32;
    ui.label(egui::RichText::new("Contrastive batch").strong());
    ui.label(
        egui::RichText::new(format!(
            "step {}: the positive beats the hardest negative for {wins} of {} queries (mean margin {mean:+.3})",
            view.step, view.n
        ))
        .weak(),
    );
    ui.horizontal_top(|ui| {
        let maps = hearth_engine::model::AttentionMaps {
            n_layer: 1,
            n_head: 1,
            seq: view.n,
            // Cosine similarity in [-1, 1] shown on the heat scale's [0, 1].
            weights: view.sims.iter().map(|s| (s + 1.0) / 2.0).collect(),
        };
        let labels: Vec<String> = (0..view.n).map(|i| i.to_string()).collect();
        ui.vertical(|ui| {
            ui.set_width(170.0);
            attention_heatmap(ui, &maps, &labels, 0, 0, texture, view.step as u64, 160.0);
            ui.label(
                egui::RichText::new("rows: queries · columns: candidates")
                    .weak()
                    .small(),
            );
        });
        let points: Vec<[f64; 2]> = view
            .margins
            .iter()
            .enumerate()
            .map(|(i, &m)| [i as f64, f64::from(m)])
            .collect();
        egui_plot::Plot::new("margins")
            .height(180.0)
            .x_axis_label("query")
            .y_axis_label("margin")
            .show(ui, |plot_ui| {
                plot_ui.hline(egui_plot::HLine::new("zero", 0.0).color(ui_weak()));
                plot_ui.points(
                    egui_plot::Points::new("margin", egui_plot::PlotPoints::from(points))
                        .radius(3.0)
                        .color(egui::Color32::from_rgb(0x59, 0xc1, 0x5b)),
                );
            });
    });
}

fn ui_weak() -> egui::Color32 {
    egui::Color32::from_gray(110)
}

/// The probe text with its masked positions highlighted; hover one for the top predictions.
fn masked_view_ui(ui: &mut egui::Ui, view: &hearth_engine::events::MaskedProbe) {
    ui.label(egui::RichText::new("Masked-token probe").strong());
    let correct = view
        .masked
        .iter()
        .zip(&view.predictions)
        .filter(|(t, p)| p.first().is_some_and(|(tok, _)| *tok == view.tokens[**t]))
        .count();
    ui.label(
        egui::RichText::new(format!(
            "step {}: top prediction right at {correct} of {} masked positions (hover a highlighted token)",
            view.step,
            view.masked.len()
        ))
        .weak(),
    );
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 0.0;
        for (t, token) in view.tokens.iter().enumerate() {
            match view.masked.iter().position(|&m| m == t) {
                Some(k) => {
                    let preds = &view.predictions[k];
                    let right = preds.first().is_some_and(|(tok, _)| tok == token);
                    let color = if right {
                        egui::Color32::from_rgb(0x2e, 0x7d, 0x32)
                    } else {
                        egui::Color32::from_rgb(0xb7, 0x1c, 0x1c)
                    };
                    let text = egui::RichText::new(token)
                        .monospace()
                        .background_color(color)
                        .color(egui::Color32::WHITE);
                    let tip: Vec<String> = preds
                        .iter()
                        .map(|(tok, p)| format!("'{tok}' {:.1}%", p * 100.0))
                        .collect();
                    ui.label(text)
                        .on_hover_text(format!("masked '{token}'\npredicted: {}", tip.join(", ")));
                }
                None => {
                    ui.label(egui::RichText::new(token).monospace());
                }
            }
        }
    });
}

/// The objective's own curves: GRIT's loss balance, or accuracy / retrieval metrics.
fn metrics_plot_ui(ui: &mut egui::Ui, run: &super::app::RunView, axis: XAxis, height: f32) {
    let curves = &run.curves;
    if curves.metrics.is_empty() {
        return;
    }
    let xs = curves.val_xs(axis);
    let grit = run.spec.objective.kind == hearth_engine::objective::ObjectiveKind::GRIT;
    let weighted_gen: Vec<f64> = curves
        .eval_train
        .iter()
        .map(|l| l * run.spec.objective.gen_weight)
        .collect();
    let mut series = Vec::new();
    let palette = [
        egui::Color32::from_rgb(0x4e, 0x9a, 0xf1),
        egui::Color32::from_rgb(0xf2, 0x8e, 0x2b),
        egui::Color32::from_rgb(0x59, 0xc1, 0x5b),
        egui::Color32::from_rgb(0xb0, 0x7a, 0xe0),
    ];
    let title;
    if grit {
        title = "Loss balance: L_emb, lambda * L_gen and the total (train)";
        for (k, (name, ys)) in [
            (
                "L_emb",
                curves.metrics.get("train_emb_loss").map(Vec::as_slice),
            ),
            ("lambda * L_gen", Some(weighted_gen.as_slice())),
            (
                "total",
                curves.metrics.get("train_total_loss").map(Vec::as_slice),
            ),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(ys) = ys {
                series.push(Series {
                    name: name.into(),
                    xs,
                    ys,
                    color: palette[k],
                    style: SeriesStyle::Line { width: 2.0 },
                    index: None,
                });
            }
        }
    } else {
        title = "Objective metrics (validation)";
        for (k, (name, ys)) in curves
            .metrics
            .iter()
            .filter(|(name, _)| !name.ends_with("ppl") && !name.ends_with("loss"))
            .enumerate()
        {
            series.push(Series {
                name: name.clone(),
                xs,
                ys,
                color: palette[k % palette.len()],
                style: SeriesStyle::Line { width: 2.0 },
                index: None,
            });
        }
    }
    ui.label(egui::RichText::new(title).strong());
    let options = PlotOptions {
        log_y: false,
        height: height.max(120.0),
        x_label: axis.label(),
        y_label: if grit { "loss" } else { "value" },
    };
    loss_plot(ui, "monitor_metrics", &series, &[], options);
}

/// Layer and head pickers.
pub fn layer_head_ui(
    ui: &mut egui::Ui,
    layer: &mut usize,
    head: &mut usize,
    n_layer: usize,
    n_head: usize,
) {
    ui.horizontal(|ui| {
        let layer_label = ui.label("layer");
        egui::ComboBox::from_id_salt(ui.scope_id().with("attn_layer"))
            .selected_text(layer.to_string())
            .show_ui(ui, |ui| {
                for l in 0..n_layer {
                    ui.selectable_value(layer, l, l.to_string());
                }
            })
            .response
            .labelled_by(layer_label.id);
        let head_label = ui.label("head");
        egui::ComboBox::from_id_salt(ui.scope_id().with("attn_head"))
            .selected_text(head.to_string())
            .show_ui(ui, |ui| {
                for h in 0..n_head {
                    ui.selectable_value(head, h, h.to_string());
                }
            })
            .response
            .labelled_by(head_label.id);
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
