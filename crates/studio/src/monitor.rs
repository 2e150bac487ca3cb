//! Monitor page: one run's live loss curves, progress, controls, attention and samples, and
//! what a user does with a run (rename, tag, notes, clone, resume, export, delete).

use crate::action::{Action, AppContext};
use crate::prefs::XAxis;
use crate::quantities::{
    HEALTH_CHARTS, collapse_in, is_health_metric, step_loss_name, train_curve, val_like_train,
};
use crate::run_view::RunView;
use crate::shortcuts::{self, Command};
use crate::views::{contrastive_view_ui, embedding_map_ui, layer_head_ui, masked_view_ui};
use crate::widgets::{
    PlotOptions, RefLine, Series, SeriesStyle, attention_heatmap, capitalized, loss_plot,
    plot_controls_ui, run_color,
};
use hearth_engine::events::RunControl;
use hearth_engine::objective::{MetricKey, ObjectiveKind};
use hearth_engine::project::RunStatus;
use std::hash::{Hash, Hasher};

/// The monitor page: what it shows of the selected run besides the run itself.
#[derive(Default)]
pub struct MonitorPage {
    attention_layer: usize,
    attention_head: usize,
    /// The heatmap texture and the (run, step, layer, head) key it shows.
    attention_texture: Option<(u64, egui::TextureHandle)>,
    /// The contrastive batch heatmap's texture.
    contrastive_texture: Option<(u64, egui::TextureHandle)>,
    /// Which embedding map is shown (`None`: the newest).
    embedding_map_index: Option<usize>,
    /// The objective metric the metrics chart shows (`None`: the run's first).
    metric_choice: Option<String>,
}

impl MonitorPage {
    /// Draws the selected run; returns what the user asked for.
    #[must_use = "the app applies what the page asks for"]
    pub fn ui(&mut self, ui: &mut egui::Ui, ctx: &AppContext<'_>) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some((index, run)) = ctx
            .selected
            .and_then(|i| ctx.runs.get(i).map(|run| (i, run)))
        else {
            ui.heading("Monitor");
            ui.label("Start a run on the Run setup page, or pick one in the list on the left.");
            return actions;
        };
        header_ui(ui, index, run, &mut actions);
        details_ui(ui, index, run, &mut actions);
        let plot = ctx.plot();
        if let Some(changed) = plot_controls_ui(ui, plot) {
            actions.push(Action::SetPlot(changed));
        }
        ui.separator();
        let available = ui.available_size();
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.set_width(available.x * 0.55);
                // The chart's title takes a line of the height the chart had alone.
                let height = (available.y * 0.62 - 24.0).max(200.0);
                let rect = loss_chart_ui(ui, run, index, ctx, height);
                if ui.small_button("Export chart PNG…").clicked() {
                    actions.push(Action::ExportChartPng {
                        rect,
                        file_name: format!("{}-loss.png", run.name()),
                    });
                }
                metrics_plot_ui(
                    ui,
                    run,
                    plot.x_axis,
                    available.y * 0.25,
                    plot.references,
                    &mut self.metric_choice,
                );
                sample_ui(ui, run);
            });
            ui.separator();
            ui.vertical(|ui| {
                egui::ScrollArea::vertical()
                    .id_salt("monitor_right")
                    .show(ui, |ui| {
                        terms_ui(ui, run, index, &plot);
                        health_ui(ui, run, plot.x_axis);
                        self.views_ui(ui, run, available.y);
                    });
            });
        });
        actions
    }

    /// The objective's views and the attention map on the probe text.
    fn views_ui(&mut self, ui: &mut egui::Ui, run: &RunView, height: f32) {
        if !run.embedding_maps.is_empty() {
            embedding_map_ui(
                ui,
                &run.embedding_maps,
                &mut self.embedding_map_index,
                height * 0.4,
            );
            ui.separator();
        }
        if let Some(view) = &run.contrastive_view {
            contrastive_view_ui(ui, view, &mut self.contrastive_texture);
            ui.separator();
        }
        if let Some(view) = &run.masked_view {
            masked_view_ui(ui, view);
            ui.separator();
        }
        ui.label(egui::RichText::new("Attention on the probe text").strong());
        // Finished runs show the last stored snapshot (read by the app before drawing); live
        // runs the worker's.
        let snapshot = run
            .live
            .as_ref()
            .and_then(|l| l.attention.as_ref())
            .or_else(|| run.stored_attention_snapshot());
        let Some(snap) = snapshot else {
            ui.label(egui::RichText::new("Attention maps appear while the run trains.").weak());
            return;
        };
        let maps = &snap.maps;
        self.attention_layer = self.attention_layer.min(maps.n_layer.saturating_sub(1));
        self.attention_head = self.attention_head.min(maps.n_head.saturating_sub(1));
        layer_head_ui(
            ui,
            &mut self.attention_layer,
            &mut self.attention_head,
            maps.n_layer,
            maps.n_head,
        );
        ui.label(egui::RichText::new(format!("step {}", snap.step)).weak());
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (
            &run.dir,
            snap.step,
            self.attention_layer,
            self.attention_head,
        )
            .hash(&mut hasher);
        attention_heatmap(
            ui,
            maps,
            &snap.tokens,
            self.attention_layer,
            self.attention_head,
            &mut self.attention_texture,
            hasher.finish(),
            f32::INFINITY,
        );
        ui.label(egui::RichText::new("rows: query position · columns: key position").weak());
    }
}

fn format_secs(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

fn status_color(status: &RunStatus, ui: &egui::Ui) -> egui::Color32 {
    match status {
        RunStatus::Running => egui::Color32::from_rgb(0x59, 0xc1, 0x5b),
        RunStatus::Paused => ui.visuals().warn_fg_color,
        RunStatus::Failed { .. } => ui.visuals().error_fg_color,
        _ => ui.visuals().text_color(),
    }
}

/// Name, status and size; progress with pause, resume and stop; the latest metrics, failure
/// and warnings.
fn header_ui(ui: &mut egui::Ui, index: usize, run: &RunView, actions: &mut Vec<Action>) {
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
        if let Some(live) = &run.live
            && live.n_params > 0
        {
            ui.label(format!(
                "{:.2}M parameters · {}",
                live.n_params as f64 / 1e6,
                live.device
            ));
        }
        let t = &run.spec.train;
        if !t.devices.trim().is_empty() || t.grad_accum > 1 || t.world_size > 1 {
            let mut scale = Vec::new();
            if t.world_size > 1 {
                let per_rank = last
                    .map(|m| {
                        format!(
                            " · {:.0} tokens/s per rank",
                            m.tokens_per_s / t.world_size as f64
                        )
                    })
                    .unwrap_or_default();
                scale.push(format!("{} MPI ranks{per_rank}", t.world_size));
            }
            if !t.devices.trim().is_empty() {
                scale.push(format!("replicas {}", t.devices.trim()));
            }
            if t.grad_accum > 1 {
                scale.push(format!(
                    "{} micro-batches of {} per step",
                    t.grad_accum, t.batch_size
                ));
            }
            ui.label(egui::RichText::new(scale.join(" · ")).weak());
        }
    });
    let step = last.map(|m| m.step).unwrap_or(0);
    let fraction = step as f32 / total.max(1) as f32;
    let mut text = format!("step {step} / {total}");
    if let Some(m) = last {
        text.push_str(&format!(
            " · {:.0} tokens/s · {} {:.4}",
            m.tokens_per_s,
            step_loss_name(&run.spec.objective, step, total),
            m.train_loss
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
            let mut control = None;
            let pause_hint = shortcuts::hint(ui.ctx(), Command::PauseResume);
            if run.status == RunStatus::Paused {
                if ui.button("Resume").on_hover_text(pause_hint).clicked() {
                    control = Some(RunControl::Resume);
                }
            } else if ui.button("Pause").on_hover_text(pause_hint).clicked() {
                control = Some(RunControl::Pause);
            }
            if ui
                .button("Stop")
                .on_hover_text(shortcuts::hint(ui.ctx(), Command::StopRun))
                .clicked()
            {
                control = Some(RunControl::Stop);
            }
            if let Some(control) = control {
                actions.push(Action::Control {
                    run: index,
                    control,
                });
            }
        }
    });
    if let Some(eval) = run.history.as_ref().and_then(|h| h.evals.last()) {
        let mut parts: Vec<String> = Vec::new();
        if run.spec.objective.kind == ObjectiveKind::GRIT {
            // GRIT's validation loss is its generation loss; say so beside its other parts.
            parts.push(format!("val_gen_loss {:.4}", eval.val_loss));
        }
        if !eval.extra.is_empty() {
            parts.extend(eval.extra.iter().map(|(k, v)| format!("{k} {v:.4}")));
            ui.label(format!("step {}: {}", eval.step, parts.join(" · ")));
        }
    }
    if let Some(eval) = run.history.as_ref().and_then(|h| h.evals.last())
        && let Some(sentence) = collapse_in(&run.spec, eval.step, &eval.extra)
    {
        let text = format!("Step {}: {sentence}", eval.step);
        ui.add(
            egui::Label::new(
                egui::RichText::new(text)
                    .strong()
                    .color(ui.visuals().error_fg_color),
            )
            .wrap(),
        );
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

/// Rename, tags, notes and the run's actions.
fn details_ui(ui: &mut egui::Ui, index: usize, run: &RunView, actions: &mut Vec<Action>) {
    let live = run.is_live();
    let resumable = !live && matches!(run.status, RunStatus::Stopped | RunStatus::Failed { .. });
    egui::CollapsingHeader::new("Run details")
        .id_salt("run_details")
        .show(ui, |ui| {
            let mut annotations = run.annotations.clone();
            let mut save = false;
            egui::Grid::new("run_details_grid")
                .num_columns(2)
                .show(ui, |ui| {
                    let label = ui.label("Name");
                    let mut name = run.name().to_string();
                    let r = ui.text_edit_singleline(&mut name).labelled_by(label.id);
                    if r.changed() {
                        annotations.display_name = Some(name);
                    }
                    save |= r.lost_focus();
                    ui.end_row();
                    let label = ui.label("Tags");
                    let mut tags = annotations.tags.join(", ");
                    let r = ui
                        .add(egui::TextEdit::singleline(&mut tags).hint_text("comma, separated"))
                        .labelled_by(label.id);
                    if r.changed() {
                        annotations.tags = tags
                            .split(',')
                            .map(|t| t.trim().to_string())
                            .filter(|t| !t.is_empty())
                            .collect();
                    }
                    save |= r.lost_focus();
                    ui.end_row();
                    let label = ui.label("Notes");
                    let r = ui
                        .add(egui::TextEdit::multiline(&mut annotations.notes).desired_rows(2))
                        .labelled_by(label.id);
                    save |= r.lost_focus();
                    ui.end_row();
                    ui.label("Folder");
                    ui.label(egui::RichText::new(run.dir.display().to_string()).weak());
                    ui.end_row();
                });
            if save || annotations != run.annotations {
                actions.push(Action::Annotate {
                    run: index,
                    annotations,
                    save,
                });
            }
            ui.horizontal(|ui| {
                if ui
                    .button("Clone settings")
                    .on_hover_text("Start a variant on the setup page")
                    .clicked()
                {
                    actions.push(Action::CloneSettings(index));
                }
                if !live
                    && ui
                        .button("Fine-tune from here")
                        .on_hover_text("A new run starting from this run's newest checkpoint")
                        .clicked()
                {
                    actions.push(Action::FineTune(index));
                }
                if resumable && ui.button("Resume from checkpoint").clicked() {
                    actions.push(Action::Resume(index));
                }
                if ui.button("Export metrics CSV…").clicked() {
                    actions.push(Action::ExportMetricsCsv(index));
                }
                if ui
                    .add_enabled(!live, egui::Button::new("Export…"))
                    .on_hover_text(
                        "Write the newest checkpoint as a Hugging Face model (transformers loads it)",
                    )
                    .clicked()
                {
                    actions.push(Action::ExportRun(index));
                }
                if ui
                    .add_enabled(!live, egui::Button::new("Delete"))
                    .on_hover_text("Moves the run to the project's trash; Undo brings it back")
                    .clicked()
                {
                    actions.push(Action::Delete(index));
                }
            });
        });
}

/// The training loss (raw and smoothed) and the validation values of the same quantity, under
/// a title that names it. Returns the chart's place on screen (for the PNG export).
fn loss_chart_ui(
    ui: &mut egui::Ui,
    run: &RunView,
    index: usize,
    ctx: &AppContext<'_>,
    height: f32,
) -> egui::Rect {
    let plot = ctx.plot();
    let axis = plot.x_axis;
    let smoothing_on = plot.smoothing > 0.0;
    let color = run_color(index);
    let curves = &run.curves;
    let train = train_curve(&run.spec.objective, curves, axis);
    let quantity = &train.quantity;
    let val = val_like_train(&run.spec.objective, curves);
    // Validation points sit on the training curve: never in the run's own colour.
    let orange = egui::Color32::from_rgb(0xf2, 0x8e, 0x2b);
    let val_color = if color == orange {
        egui::Color32::from_rgb(0xe1, 0x57, 0x59)
    } else {
        orange
    };
    // A contrastive run records its step loss's terms: its training curve is then the
    // InfoNCE term alone (the quantity validation measures), and the masked-token term gets a
    // chart of its own.
    let terms = train.infonce_term;
    let (train_name, smoothed_name) = if terms {
        ("train InfoNCE, each step (raw)", "train InfoNCE (smoothed)")
    } else {
        ("train (raw)", "train (smoothed)")
    };
    let raw_color = if smoothing_on {
        color.gamma_multiply(0.3)
    } else {
        color
    };
    let mut series = vec![Series {
        name: train_name.into(),
        xs: train.xs,
        ys: train.raw,
        color: raw_color,
        style: SeriesStyle::Line { width: 1.0 },
        index: train.raw_index,
    }];
    if smoothing_on {
        series.push(Series {
            name: smoothed_name.into(),
            xs: train.xs,
            ys: train.ys,
            color,
            style: SeriesStyle::Line { width: 2.0 },
            index: train.index,
        });
    }
    if let Some(val) = &val {
        series.push(Series {
            name: "validation".into(),
            xs: curves.val_xs(axis),
            ys: val,
            color: val_color,
            style: SeriesStyle::Markers,
            index: None,
        });
    }
    // Count models measure the next-token loss; only a chart of that loss shows them (GRIT's
    // chart is its total, L_emb + lambda * L_gen).
    let grit = run.spec.objective.kind == ObjectiveKind::GRIT;
    let references = if plot.references && val.is_some() && !grit {
        RefLine::of(&run.references, "val_loss", None)
    } else {
        Vec::new()
    };
    let options = PlotOptions {
        log_y: plot.log_y,
        height,
        x_label: axis.label(),
        y_label: &quantity.label,
        references: &references,
    };
    // The exported picture holds the title and the axes with the plot.
    ui.scope(|ui| {
        ui.label(egui::RichText::new(capitalized(&quantity.label)).strong());
        // A masked warm-up or a kept masked term trains another loss: say what the training
        // curve measures.
        let o = &run.spec.objective;
        if (o.masked_warmup > 0.0 || o.masked_weight > 0.0) && o.uses_embeddings() {
            let until = o.masked_warmup_steps(run.spec.train.steps);
            let text = if terms {
                let start = if o.masked_warmup > 0.0 {
                    format!(" from step {} (after the masked warm-up)", until + 1)
                } else {
                    String::new()
                };
                // While halves positives overlap their queries, training pairs share text
                // that validation's (which never overlap) do not.
                let curriculum = if o.positives == hearth_engine::objective::Positives::Halves
                    && o.overlap_curriculum > 0.0
                {
                    let w = o.masked_warmup.clamp(0.0, 0.99);
                    let end = w + (1.0 - w) * o.overlap_curriculum.min(1.0);
                    let end = (end * run.spec.train.steps as f64).ceil() as usize;
                    format!(
                        "; until step {end} its pairs overlap, so it sits below validation's \
                         non-overlapping pairs"
                    )
                } else {
                    String::new()
                };
                format!(
                    "training curve: the InfoNCE term of each step{start}{curriculum}; the \
                     masked-token term has its own chart (Training terms)"
                )
            } else {
                // Runs recorded before steps kept their terms: one curve of both.
                let after = if o.masked_weight > 0.0 {
                    format!("InfoNCE + {} x masked-token loss", o.masked_weight)
                } else {
                    "InfoNCE".to_string()
                };
                if o.masked_warmup > 0.0 {
                    format!(
                        "training curve: masked-token loss until step {until} (the masked \
                         warm-up), {after} after; validation is InfoNCE throughout"
                    )
                } else {
                    format!("training curve: {after}; validation is InfoNCE alone")
                }
            };
            let color = if terms {
                ui.visuals().weak_text_color()
            } else {
                ui.visuals().warn_fg_color
            };
            ui.label(egui::RichText::new(text).small().color(color));
        }
        loss_plot(ui, "monitor_loss", &series, &[], options);
    })
    .response
    .rect
}

/// The latest generated sample, or why there is none.
fn sample_ui(ui: &mut egui::Ui, run: &RunView) {
    let sample = run.history.as_ref().and_then(|h| h.samples.last());
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
                let kind = &run.spec.objective.kind;
                let text = if kind.objective().is_some_and(|o| o.generates_text()) {
                    "A sample appears at each evaluation."
                } else {
                    "This objective trains a bidirectional model, which does not generate text."
                };
                ui.label(egui::RichText::new(text).weak());
            }
        });
}

/// The objective's own curves: GRIT's loss balance, or one accuracy / retrieval metric at a
/// time (chosen above the chart) with its reference lines, since recall and MRR are different
/// quantities.
fn metrics_plot_ui(
    ui: &mut egui::Ui,
    run: &RunView,
    axis: XAxis,
    height: f32,
    show_references: bool,
    choice: &mut Option<String>,
) {
    let curves = &run.curves;
    if curves.metrics.is_empty() {
        return;
    }
    let xs = curves.val_xs(axis);
    let grit = run.spec.objective.kind == ObjectiveKind::GRIT;
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
            ("L_emb", curves.metric(MetricKey::TRAIN_EMB_LOSS.name())),
            ("lambda * L_gen", Some(weighted_gen.as_slice())),
            ("total", curves.metric(MetricKey::TRAIN_TOTAL_LOSS.name())),
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
        title = "Objective metric (validation)";
        ui.label(egui::RichText::new(title).strong());
        let names: Vec<&String> = curves
            .metrics
            .keys()
            .filter(|name| {
                !name.ends_with("ppl") && !name.ends_with("loss") && !is_health_metric(name)
            })
            .collect();
        let Some(first) = names.first() else {
            return;
        };
        let shown = match choice.as_ref() {
            Some(c) if names.contains(&c) => c.clone(),
            _ => (*first).clone(),
        };
        if names.len() > 1 {
            ui.horizontal(|ui| {
                ui.label(egui::RichText::new("metric").small());
                for name in &names {
                    if ui
                        .selectable_label(**name == shown, name.as_str())
                        .clicked()
                    {
                        *choice = Some((*name).clone());
                    }
                }
            });
        }
        // Retrieval ranks by the whole embedding; say what that holds besides the states.
        let o = &run.spec.objective;
        let retrieval = shown.contains("recall") || shown.contains("mrr");
        if retrieval && o.uses_embeddings() && o.lexical > 0.0 {
            ui.label(
                egui::RichText::new(format!(
                    "ranked by the whole embedding: the pooled states ({:.2} of the similarity) \
                     and the lexical channel's hashed character {}-grams ({:.2}); validation \
                     InfoNCE scores the states alone",
                    1.0 - o.lexical,
                    hearth_engine::eval::LEXICAL_NGRAM,
                    o.lexical
                ))
                .small()
                .color(ui.visuals().weak_text_color()),
            );
        }
        if let Some(ys) = curves.metric(&shown) {
            series.push(Series {
                name: shown.clone(),
                xs,
                ys,
                color: palette[0],
                style: SeriesStyle::Line { width: 2.0 },
                index: None,
            });
        }
    }
    if grit {
        ui.label(egui::RichText::new(title).strong());
    }
    let references: Vec<RefLine> = if grit || !show_references {
        Vec::new()
    } else {
        series
            .iter()
            .flat_map(|s| RefLine::of(&run.references, &s.name, None))
            .collect()
    };
    let options = PlotOptions {
        log_y: false,
        height: height.max(120.0),
        x_label: axis.label(),
        y_label: if grit {
            "loss"
        } else {
            series.first().map_or("value", |s| s.name.as_str())
        },
        references: &references,
    };
    loss_plot(ui, "monitor_metrics", &series, &[], options);
}

/// The terms of the step loss besides the loss chart's own (a contrastive run's masked-token
/// term), one chart each; nothing for runs without terms.
fn terms_ui(ui: &mut egui::Ui, run: &RunView, index: usize, plot: &crate::prefs::PlotSettings) {
    let axis = plot.x_axis;
    let Some(masked) = run.curves.terms.get(MetricKey::STEP_MASKED_LOSS.name()) else {
        return;
    };
    ui.label(egui::RichText::new("Training terms (each step)").strong());
    let o = &run.spec.objective;
    let weight = if o.masked_weight > 0.0 {
        format!(
            "; after the warm-up it enters the step loss x {}",
            o.masked_weight
        )
    } else {
        String::new()
    };
    ui.label(egui::RichText::new(format!("Masked-token loss, unweighted{weight}")).small());
    let color = run_color(index);
    let smoothed = (plot.smoothing > 0.0).then(|| masked.smoothed_values());
    let mut series = vec![Series {
        name: "masked-token loss (raw)".into(),
        xs: masked.xs(axis),
        ys: &masked.values,
        color: if smoothed.is_some() {
            color.gamma_multiply(0.3)
        } else {
            color
        },
        style: SeriesStyle::Line { width: 1.0 },
        index: None,
    }];
    if let Some(ys) = &smoothed {
        series.push(Series {
            name: "masked-token loss (smoothed)".into(),
            xs: masked.xs(axis),
            ys,
            color,
            style: SeriesStyle::Line { width: 2.0 },
            index: None,
        });
    }
    let options = PlotOptions {
        log_y: plot.log_y,
        height: 130.0,
        x_label: axis.label(),
        y_label: "masked-token loss",
        references: &[],
    };
    loss_plot(ui, "monitor_terms_masked", &series, &[], options);
    ui.separator();
}

/// The embedding objectives' health at each evaluation, one quantity per chart; nothing for
/// runs that do not measure it.
fn health_ui(ui: &mut egui::Ui, run: &RunView, axis: XAxis) {
    let curves = &run.curves;
    if !HEALTH_CHARTS
        .iter()
        .any(|c| c.series.iter().any(|(m, _)| curves.metric(m).is_some()))
    {
        return;
    }
    ui.label(egui::RichText::new("Embedding health (held-out embeddings)").strong());
    let xs = curves.val_xs(axis);
    let palette = [
        egui::Color32::from_rgb(0x4e, 0x9a, 0xf1),
        egui::Color32::from_rgb(0xf2, 0x8e, 0x2b),
    ];
    for (k, chart) in HEALTH_CHARTS.iter().enumerate() {
        let series: Vec<Series<'_>> = chart
            .series
            .iter()
            .enumerate()
            .filter_map(|(i, (metric, legend))| {
                Some(Series {
                    name: (*legend).into(),
                    xs,
                    ys: curves.metric(metric)?,
                    color: palette[i % palette.len()],
                    style: SeriesStyle::Line { width: 2.0 },
                    index: None,
                })
            })
            .collect();
        if series.is_empty() {
            continue;
        }
        ui.label(egui::RichText::new(chart.title).small());
        let options = PlotOptions {
            log_y: false,
            height: 110.0,
            x_label: axis.label(),
            y_label: chart.y_label,
            references: &[],
        };
        loss_plot(ui, &format!("monitor_health_{k}"), &series, &[], options);
    }
    ui.separator();
}
