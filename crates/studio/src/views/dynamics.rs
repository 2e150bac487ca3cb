//! The training dynamics of a run, drawn by the Monitor's Dynamics tab and the Compare page:
//! the layer-by-time heatmap of the update ratio with its healthy band, per-layer gradient
//! norms, the clip rate, weight and gradient histograms over time, the per-token loss of the
//! probe text, the logit lens and the rules that fire, in words.

use crate::run_view::RunView;
use egui::{Color32, Rect, Sense, Stroke, pos2, vec2};
use hearth_engine::dynamics::{
    self, BlockRecord, DynamicsRecord, HistogramKind, HistogramSet, ProbeInsight, Severity,
};
use hearth_engine::project::{RunHistory, RunStore};

/// Everything a run recorded of its dynamics, read from its store.
#[derive(Debug, Clone, Default)]
pub struct DynamicsData {
    /// The recorded steps' matrices.
    pub records: Vec<DynamicsRecord>,
    /// Weight and gradient histograms at evaluations.
    pub histograms: Vec<HistogramSet>,
    /// The newest probe insight.
    pub insight: Option<ProbeInsight>,
    /// Every step's global gradient norm before clipping, `(step, norm)`.
    pub grad_norms: Vec<(usize, f32)>,
    /// The run's clipping limit (0: none).
    pub grad_clip: f64,
    /// What the views draw, derived once when the data is read (not at every frame).
    figures: Figures,
}

/// The figures the views draw, derived from a run's dynamics once per read.
#[derive(Debug, Clone, Default)]
struct Figures {
    /// The rules that fire.
    findings: Vec<dynamics::Finding>,
    /// The matrices' names in the model's order (of the newest record).
    names: Vec<String>,
    /// log10 update ratio per matrix (row, in `names` order) and record (column); NaN where
    /// a record lacks the matrix.
    grid: Vec<Vec<f64>>,
    /// Per layer, `(step, log10 gradient norm)` over the records.
    layer_norms: Vec<(String, Vec<[f64; 2]>)>,
    /// `(step, % of the trailing window clipped)` over every step.
    clip_points: Vec<[f64; 2]>,
    /// Share of all steps clipped.
    clip_total: f64,
    /// `(step, log10 median update ratio)` per record.
    median_points: Vec<[f64; 2]>,
    /// Per block, `(step, residual RMS)` over the block records.
    block_rms: Vec<Vec<[f64; 2]>>,
    /// Per block, `(step, attention entropy in nats)` over the block records.
    block_entropy: Vec<Vec<[f64; 2]>>,
}

impl Figures {
    fn derive(
        records: &[DynamicsRecord],
        blocks: &[BlockRecord],
        grad_norms: &[(usize, f32)],
        grad_clip: f64,
    ) -> Self {
        let per_block = |value: &dyn Fn(&BlockRecord) -> &Vec<f32>| -> Vec<Vec<[f64; 2]>> {
            let n = blocks.iter().map(|b| value(b).len()).max().unwrap_or(0);
            (0..n)
                .map(|k| {
                    blocks
                        .iter()
                        .filter_map(|b| value(b).get(k).map(|v| [b.step as f64, f64::from(*v)]))
                        .collect()
                })
                .collect()
        };
        let block_rms = per_block(&|b| &b.act_rms);
        let block_entropy = per_block(&|b| &b.attn_entropy);
        let norms: Vec<f32> = grad_norms.iter().map(|(_, g)| *g).collect();
        let names: Vec<String> = records
            .last()
            .map(|r| r.matrices.iter().map(|m| m.name.clone()).collect())
            .unwrap_or_default();
        let grid = names
            .iter()
            .map(|name| {
                records
                    .iter()
                    .map(|record| {
                        record
                            .matrices
                            .iter()
                            .find(|m| &m.name == name)
                            .map(|m| f64::from(m.update_ratio()).log10())
                            .unwrap_or(f64::NAN)
                    })
                    .collect()
            })
            .collect();
        let mut layer_norms: Vec<(String, Vec<[f64; 2]>)> = Vec::new();
        for record in records {
            let mut sums: Vec<(String, f64)> = Vec::new();
            for m in &record.matrices {
                let layer = dynamics::layer_of(&m.name);
                let square = f64::from(m.grad_norm).powi(2);
                match sums.iter_mut().find(|(l, _)| *l == layer) {
                    Some((_, s)) => *s += square,
                    None => sums.push((layer, square)),
                }
            }
            for (layer, sum) in sums {
                let point = [record.step as f64, sum.sqrt().max(1e-30).log10()];
                match layer_norms.iter_mut().find(|(l, _)| *l == layer) {
                    Some((_, points)) => points.push(point),
                    None => layer_norms.push((layer, vec![point])),
                }
            }
        }
        let (clip_points, clip_total) = if grad_clip > 0.0 {
            let window = dynamics::CLIP_WINDOW;
            let points = grad_norms
                .iter()
                .enumerate()
                .map(|(i, (step, _))| {
                    let rate = dynamics::clip_rate(&norms[..=i], grad_clip, window).unwrap_or(0.0);
                    [*step as f64, rate * 100.0]
                })
                .collect();
            let total = dynamics::clip_rate(&norms, grad_clip, norms.len()).unwrap_or(0.0);
            (points, total)
        } else {
            (Vec::new(), 0.0)
        };
        let median_points = records
            .iter()
            .filter_map(|r| {
                r.update_ratio_median()
                    .filter(|m| *m > 0.0)
                    .map(|m| [r.step as f64, m.log10()])
            })
            .collect();
        Self {
            findings: dynamics::findings(records, &norms, grad_clip),
            names,
            grid,
            layer_norms,
            clip_points,
            clip_total,
            median_points,
            block_rms,
            block_entropy,
        }
    }
}

impl DynamicsData {
    /// Reads a run's dynamics from its folder; the gradient norms and the clipping limit come
    /// from the run as the studio holds it (its history is read only where not yet loaded).
    pub fn load(run: &RunView) -> Result<Self, String> {
        let read = || -> Result<Self, hearth_engine::project::StoreError> {
            let store = RunStore::open(&run.dir)?;
            let norms = |h: &RunHistory| h.steps.iter().map(|s| (s.step, s.grad_norm)).collect();
            let grad_norms = match &run.history {
                Some(history) => norms(history),
                None => norms(&store.load_history()?),
            };
            Ok(Self::new(
                store.dynamics()?,
                store.blocks()?,
                store.histograms()?,
                store.latest_insight()?,
                grad_norms,
                run.spec.optim.grad_clip,
            ))
        };
        read().map_err(|e| e.to_string())
    }

    /// A run's dynamics from their parts, with the figures the views draw derived once.
    pub fn new(
        records: Vec<DynamicsRecord>,
        blocks: Vec<BlockRecord>,
        histograms: Vec<HistogramSet>,
        insight: Option<ProbeInsight>,
        grad_norms: Vec<(usize, f32)>,
        grad_clip: f64,
    ) -> Self {
        let figures = Figures::derive(&records, &blocks, &grad_norms, grad_clip);
        Self {
            records,
            histograms,
            insight,
            grad_norms,
            grad_clip,
            figures,
        }
    }

    /// The rules that fire, in words.
    pub fn findings(&self) -> &[dynamics::Finding] {
        &self.figures.findings
    }

    /// The matrices' names in the model's order (of the newest record).
    pub fn matrix_names(&self) -> &[String] {
        &self.figures.names
    }
}

/// Lowest and highest log10 update ratio the heatmap's colours span.
pub const LOG_RANGE: (f64, f64) = (-6.0, 0.0);

/// Colour of a log10 update ratio: blue far below the healthy 1e-3, pale green around it, red
/// far above it.
pub fn ratio_colour(log10: f64) -> Color32 {
    if !log10.is_finite() {
        return Color32::from_gray(40);
    }
    let healthy = dynamics::HEALTHY_LOG10_RATIO;
    let lerp = |a: u8, b: u8, t: f64| (f64::from(a) + (f64::from(b) - f64::from(a)) * t) as u8;
    let mix = |from: [u8; 3], to: [u8; 3], t: f64| {
        let t = t.clamp(0.0, 1.0);
        Color32::from_rgb(
            lerp(from[0], to[0], t),
            lerp(from[1], to[1], t),
            lerp(from[2], to[2], t),
        )
    };
    let centre = [120, 200, 120];
    if log10 >= healthy {
        mix(
            centre,
            [230, 50, 40],
            (log10 - healthy) / (LOG_RANGE.1 - healthy),
        )
    } else {
        mix(
            centre,
            [40, 70, 200],
            (healthy - log10) / (healthy - LOG_RANGE.0),
        )
    }
}

/// The layer-by-time heatmap of log10 update ratio: one row per matrix, one column per
/// recorded step, with its colour scale and the healthy band marked on it. `label_width` is
/// the room for row labels (the same for runs shown side by side).
pub fn ratio_heatmap_ui(ui: &mut egui::Ui, data: &DynamicsData, height: f32, label_width: f32) {
    let names = data.matrix_names();
    let grid_ratios = &data.figures.grid;
    if data.records.is_empty() || names.is_empty() {
        ui.label(
            egui::RichText::new(
                "No update ratios yet: they are recorded every train.dynamics_interval steps.",
            )
            .weak(),
        );
        return;
    }
    let width = ui.available_width().max(label_width + 80.0);
    let rows = names.len();
    let row_h = ((height - 18.0) / rows as f32).clamp(6.0, 18.0);
    let (response, painter) =
        ui.allocate_painter(vec2(width, row_h * rows as f32 + 18.0), Sense::hover());
    let grid = Rect::from_min_max(
        pos2(response.rect.left() + label_width, response.rect.top()),
        pos2(
            response.rect.right(),
            response.rect.top() + row_h * rows as f32,
        ),
    );
    let cols = data.records.len();
    let col_w = grid.width() / cols as f32;
    // Small enough that the longest label fits its column (a monospace glyph is about 0.62
    // of the font size wide), so none is cut at the left.
    let longest = names
        .iter()
        .map(|n| dynamics::matrix_label(n).chars().count())
        .max()
        .unwrap_or(1) as f32;
    let size = (row_h - 2.0)
        .clamp(7.0, 11.0)
        .min((label_width - 6.0) / (longest * 0.62));
    let font = egui::FontId::monospace(size);
    for (r, name) in names.iter().enumerate() {
        let y = grid.top() + r as f32 * row_h;
        if row_h >= 7.0 && size >= 5.0 {
            painter.text(
                pos2(grid.left() - 4.0, y + row_h / 2.0),
                egui::Align2::RIGHT_CENTER,
                dynamics::matrix_label(name),
                font.clone(),
                ui.visuals().text_color(),
            );
        }
        for (c, &ratio) in grid_ratios[r].iter().enumerate() {
            let cell = Rect::from_min_size(
                pos2(grid.left() + c as f32 * col_w, y),
                vec2(col_w + 0.5, row_h + 0.5),
            );
            painter.rect_filled(cell, 0.0, ratio_colour(ratio));
        }
    }
    let first = data.records.first().map_or(0, |r| r.step);
    let last = data.records.last().map_or(0, |r| r.step);
    painter.text(
        pos2(grid.left(), grid.bottom() + 2.0),
        egui::Align2::LEFT_TOP,
        format!("step {first}"),
        egui::FontId::proportional(11.0),
        ui.visuals().weak_text_color(),
    );
    painter.text(
        pos2(grid.right(), grid.bottom() + 2.0),
        egui::Align2::RIGHT_TOP,
        format!("step {last}"),
        egui::FontId::proportional(11.0),
        ui.visuals().weak_text_color(),
    );
    if let Some(pos) = response.hover_pos()
        && grid.contains(pos)
    {
        let r = (((pos.y - grid.top()) / row_h) as usize).min(rows - 1);
        let c = (((pos.x - grid.left()) / col_w) as usize).min(cols - 1);
        let record = &data.records[c];
        if let Some(m) = record.matrices.iter().find(|m| m.name == names[r]) {
            let ratio = m.update_ratio();
            response.on_hover_text(format!(
                "{}\nstep {}\nupdate ratio {ratio:.2e} (10^{:.1})\ngradient norm {:.3e}\nweight norm {:.3e}",
                dynamics::matrix_label(&m.name),
                record.step,
                f64::from(ratio).log10(),
                m.grad_norm,
                m.weight_norm
            ));
        }
    }
    ratio_scale_ui(ui, label_width);
}

/// The heatmap's colour scale with the healthy band (1e-3, from 10^-3.5 to 10^-2.5) marked.
fn ratio_scale_ui(ui: &mut egui::Ui, label_width: f32) {
    let width = (ui.available_width() - label_width).max(120.0);
    let (response, painter) = ui.allocate_painter(vec2(width + label_width, 30.0), Sense::hover());
    let bar = Rect::from_min_size(
        pos2(
            response.rect.left() + label_width,
            response.rect.top() + 2.0,
        ),
        vec2(width, 10.0),
    );
    let (lo, hi) = LOG_RANGE;
    let steps = 60;
    for i in 0..steps {
        let t0 = i as f32 / steps as f32;
        let log = lo + (hi - lo) * (f64::from(t0) + 0.5 / f64::from(steps));
        painter.rect_filled(
            Rect::from_min_size(
                pos2(bar.left() + t0 * width, bar.top()),
                vec2(width / steps as f32 + 0.5, bar.height()),
            ),
            0.0,
            ratio_colour(log),
        );
    }
    let x_of = |log: f64| bar.left() + ((log - lo) / (hi - lo)) as f32 * width;
    let healthy = dynamics::HEALTHY_LOG10_RATIO;
    let band = Rect::from_min_max(
        pos2(x_of(healthy - 0.5), bar.top() - 2.0),
        pos2(x_of(healthy + 0.5), bar.bottom() + 2.0),
    );
    painter.rect_stroke(
        band,
        1.0,
        Stroke::new(1.5, ui.visuals().strong_text_color()),
        egui::StrokeKind::Outside,
    );
    painter.text(
        pos2(bar.left() - 4.0, bar.center().y),
        egui::Align2::RIGHT_CENTER,
        "log10 update ratio",
        egui::FontId::proportional(11.0),
        ui.visuals().weak_text_color(),
    );
    for log in [-6, -5, -4, -3, -2, -1, 0] {
        let text = if log == -3 {
            "10^-3 healthy".to_string()
        } else {
            format!("10^{log}")
        };
        painter.text(
            pos2(x_of(f64::from(log)), bar.bottom() + 3.0),
            egui::Align2::CENTER_TOP,
            text,
            egui::FontId::proportional(10.0),
            ui.visuals().weak_text_color(),
        );
    }
}

/// Per-layer gradient norms over the recorded steps (log scale), one line per layer.
pub fn grad_norm_lines_ui(ui: &mut egui::Ui, data: &DynamicsData, height: f32, id: &str) {
    egui_plot::Plot::new(id)
        .height(height)
        .x_axis_label("step")
        .y_axis_label("log10 gradient norm")
        .legend(egui_plot::Legend::default())
        .show(ui, |plot_ui| {
            for (i, (layer, points)) in data.figures.layer_norms.iter().enumerate() {
                plot_ui.line(
                    egui_plot::Line::new(
                        layer.as_str(),
                        egui_plot::PlotPoints::from(points.clone()),
                    )
                    .color(crate::widgets::run_color(i)),
                );
            }
        });
}

/// Each block's residual-stream RMS or attention entropy on the probe text over the recorded
/// steps, one line per block.
pub fn block_lines_ui(ui: &mut egui::Ui, data: &DynamicsData, entropy: bool, height: f32) {
    let (lines, label, id) = if entropy {
        (
            &data.figures.block_entropy,
            "attention entropy (nats)",
            "dyn_block_entropy",
        )
    } else {
        (&data.figures.block_rms, "residual RMS", "dyn_block_rms")
    };
    if lines.is_empty() {
        ui.label(
            egui::RichText::new(
                "Recorded on the probe text with the matrices (models that generate text).",
            )
            .weak(),
        );
        return;
    }
    egui_plot::Plot::new(id)
        .height(height)
        .x_axis_label("step")
        .y_axis_label(label)
        .legend(egui_plot::Legend::default())
        .show(ui, |plot_ui| {
            for (k, points) in lines.iter().enumerate() {
                plot_ui.line(
                    egui_plot::Line::new(
                        format!("block {k}"),
                        egui_plot::PlotPoints::from(points.clone()),
                    )
                    .color(crate::widgets::run_color(k)),
                );
            }
        });
}

/// The share of steps clipped over a trailing window, over the run.
pub fn clip_rate_ui(ui: &mut egui::Ui, data: &DynamicsData, height: f32, id: &str) {
    if data.grad_clip <= 0.0 {
        ui.label(egui::RichText::new("Clipping is off for this run (optim.grad_clip 0).").weak());
        return;
    }
    let window = dynamics::CLIP_WINDOW;
    let (points, total) = (&data.figures.clip_points, data.figures.clip_total);
    ui.label(format!(
        "Clipping at gradient norm {}: {:.1}% of {} steps clipped",
        data.grad_clip,
        total * 100.0,
        data.grad_norms.len()
    ));
    egui_plot::Plot::new(id)
        .height(height)
        .x_axis_label("step")
        .y_axis_label(format!("% clipped (last {window})"))
        .include_y(0.0)
        .include_y(100.0)
        .show(ui, |plot_ui| {
            plot_ui.line(
                egui_plot::Line::new("clip rate", egui_plot::PlotPoints::from(points.clone()))
                    .color(Color32::from_rgb(230, 140, 60)),
            );
        });
}

/// Ridgelines drawn at most (evaluations between them are left out).
const MAX_RIDGES: usize = 16;

/// Weight or gradient histograms of one layer over the evaluations, as ridgelines (the newest
/// at the bottom, at most [`MAX_RIDGES`] of them spread over the run), on the value range of
/// the evaluations drawn.
pub fn histograms_ui(
    ui: &mut egui::Ui,
    data: &DynamicsData,
    layer: &mut String,
    kind: &mut HistogramKind,
    height: f32,
) {
    let layers: Vec<String> = data
        .histograms
        .last()
        .map(|s| {
            let mut names: Vec<String> = Vec::new();
            for h in &s.histograms {
                if !names.contains(&h.layer) {
                    names.push(h.layer.clone());
                }
            }
            names
        })
        .unwrap_or_default();
    if layers.is_empty() {
        ui.label(egui::RichText::new("Histograms appear at each evaluation.").weak());
        return;
    }
    if !layers.contains(layer) {
        *layer = layers[0].clone();
    }
    ui.horizontal(|ui| {
        egui::ComboBox::from_id_salt(ui.scope_id().with("hist_layer"))
            .selected_text(layer.as_str())
            .show_ui(ui, |ui| {
                for l in &layers {
                    ui.selectable_value(layer, l.clone(), l);
                }
            });
        ui.selectable_value(kind, HistogramKind::Weight, "weights");
        ui.selectable_value(kind, HistogramKind::Grad, "gradients");
    });
    let all: Vec<(usize, &dynamics::Histogram)> = data
        .histograms
        .iter()
        .filter_map(|s| {
            s.histograms
                .iter()
                .find(|h| &h.layer == layer && h.kind == *kind)
                .map(|h| (s.step, h))
        })
        .collect();
    // At most MAX_RIDGES evaluations, evenly spread, the first and the newest always in.
    let series: Vec<(usize, &dynamics::Histogram)> = if all.len() <= MAX_RIDGES {
        all
    } else {
        let last = all.len() - 1;
        let mut picked: Vec<usize> = (0..MAX_RIDGES)
            .map(|k| (k * last).div_ceil(MAX_RIDGES - 1))
            .collect();
        picked.dedup();
        picked.into_iter().map(|i| all[i]).collect()
    };
    let lo = series
        .iter()
        .map(|(_, h)| h.lo)
        .fold(f32::INFINITY, f32::min);
    let hi = series
        .iter()
        .map(|(_, h)| h.hi)
        .fold(f32::NEG_INFINITY, f32::max);
    if series.is_empty() || hi <= lo {
        ui.label(egui::RichText::new("No values to draw.").weak());
        return;
    }
    let width = ui.available_width().max(200.0);
    let (response, painter) = ui.allocate_painter(vec2(width, height), Sense::hover());
    let area = response.rect.shrink2(vec2(50.0, 14.0));
    let n = series.len();
    let spacing = area.height() / (n as f32 + 2.0);
    let x_of = |v: f32| area.left() + (v - lo) / (hi - lo) * area.width();
    for (i, (step, h)) in series.iter().enumerate() {
        let base = area.top() + spacing * (i as f32 + 3.0);
        let peak = h.counts.iter().copied().max().unwrap_or(1).max(1) as f32;
        let bins = h.counts.len() as f32;
        let points: Vec<egui::Pos2> = h
            .counts
            .iter()
            .enumerate()
            .map(|(b, &c)| {
                let v = h.lo + (h.hi - h.lo) * (b as f32 + 0.5) / bins;
                pos2(x_of(v), base - c as f32 / peak * spacing * 2.5)
            })
            .collect();
        let t = (i as f32 + 1.0) / n as f32;
        let colour = Color32::from_rgb(
            (70.0 + 160.0 * t) as u8,
            (110.0 + 60.0 * t) as u8,
            (200.0 - 120.0 * t) as u8,
        );
        // The area under the curve, one quad per bin (the outline is not convex, so a
        // polygon fill would cut across it).
        let fill = colour.gamma_multiply(0.25);
        let mut mesh = egui::Mesh::default();
        for pair in points.windows(2) {
            let at = mesh.vertices.len() as u32;
            for p in [
                pair[0],
                pair[1],
                pos2(pair[1].x, base),
                pos2(pair[0].x, base),
            ] {
                mesh.colored_vertex(p, fill);
            }
            mesh.add_triangle(at, at + 1, at + 2);
            mesh.add_triangle(at, at + 2, at + 3);
        }
        painter.add(egui::Shape::mesh(mesh));
        painter.add(egui::Shape::line(points, Stroke::new(1.2, colour)));
        painter.text(
            pos2(area.left() - 4.0, base),
            egui::Align2::RIGHT_BOTTOM,
            format!("{step}"),
            egui::FontId::proportional(10.0),
            ui.visuals().weak_text_color(),
        );
    }
    for (v, align) in [(lo, egui::Align2::LEFT_TOP), (hi, egui::Align2::RIGHT_TOP)] {
        painter.text(
            pos2(x_of(v), area.bottom() + 2.0),
            align,
            format!("{v:.3}"),
            egui::FontId::proportional(10.0),
            ui.visuals().weak_text_color(),
        );
    }
    painter.text(
        pos2(x_of(0.0f32.clamp(lo, hi)), area.bottom() + 2.0),
        egui::Align2::CENTER_TOP,
        "0",
        egui::FontId::proportional(10.0),
        ui.visuals().weak_text_color(),
    );
}

/// Colour of a token's loss: green where the model was sure and right, red where it was far
/// off (`max`: the loss drawn reddest).
pub fn loss_colour(loss: f32, max: f32) -> Color32 {
    let t = (loss / max.max(1e-6)).clamp(0.0, 1.0);
    let lerp = |a: f32, b: f32| (a + (b - a) * t) as u8;
    Color32::from_rgb(lerp(60.0, 200.0), lerp(150.0, 50.0), lerp(80.0, 50.0))
}

/// The probe text coloured by each token's loss at the newest evaluation; hovering a token
/// shows the model's top guesses for it, clicking it picks it for the logit lens.
pub fn token_loss_ui(ui: &mut egui::Ui, insight: &ProbeInsight, selected: &mut Option<usize>) {
    let max = insight
        .losses
        .iter()
        .copied()
        .filter(|l| l.is_finite())
        .fold(0.0f32, f32::max)
        .max(1.0);
    ui.label(
        egui::RichText::new(format!(
            "step {} · mean loss {:.3} nats over {} tokens · green: low loss, red: {max:.1} nats or more · hover a token for the top guesses, click it for the logit lens",
            insight.step,
            insight.mean_loss().unwrap_or(f32::NAN),
            insight.losses.len()
        ))
        .weak(),
    );
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing = vec2(0.0, 2.0);
        if let Some(first) = insight.tokens.first() {
            ui.label(egui::RichText::new(shown(first)).monospace());
        }
        for (i, loss) in insight.losses.iter().enumerate() {
            let token = &insight.tokens[i + 1];
            let mut text = egui::RichText::new(shown(token))
                .monospace()
                .background_color(loss_colour(*loss, max))
                .color(Color32::WHITE);
            if *selected == Some(i) {
                text = text.underline().strong();
            }
            let response = ui.add(egui::Label::new(text).sense(Sense::click()));
            let guesses = insight.guesses.get(i).cloned().unwrap_or_default();
            let response = response.on_hover_ui(|ui| {
                ui.label(format!(
                    "{:?}: loss {loss:.3} nats (p = {:.3})",
                    token,
                    (-loss).exp()
                ));
                ui.label(egui::RichText::new("the model's top guesses:").weak());
                for (guess, p) in &guesses {
                    ui.label(format!("{}  {:.1}%", shown_guess(guess), p * 100.0));
                }
            });
            if response.clicked() {
                *selected = Some(i);
            }
            if token.ends_with('\n') {
                ui.end_row();
            }
        }
    });
}

/// What each block's residual stream would predict for the selected token (the logit lens),
/// with the blocks' residual RMS and attention entropy.
pub fn logit_lens_ui(ui: &mut egui::Ui, insight: &ProbeInsight, selected: &mut Option<usize>) {
    if insight.lens.is_empty() {
        return;
    }
    let at = selected
        .unwrap_or(insight.lens.len() - 1)
        .min(insight.lens.len() - 1);
    let token = &insight.tokens[at + 1];
    ui.label(format!(
        "Logit lens for token {} ({:?}), after {:?}: each block's residual stream read through the final norm and the output head",
        at + 1,
        token,
        insight.tokens[at]
    ));
    egui::Grid::new(ui.scope_id().with("lens"))
        .striped(true)
        .show(ui, |ui| {
            ui.label(egui::RichText::new("block").strong());
            ui.label(egui::RichText::new("top guesses").strong());
            ui.label(egui::RichText::new("residual RMS").strong());
            ui.label(egui::RichText::new("attention entropy").strong());
            ui.end_row();
            for (layer, guesses) in insight.lens[at].iter().enumerate() {
                ui.label(layer.to_string());
                ui.horizontal(|ui| {
                    for (guess, p) in guesses {
                        let text = format!("{}  {:.0}%", shown_guess(guess), p * 100.0);
                        let mut rich = egui::RichText::new(text).monospace();
                        if guess == token {
                            rich = rich.strong().color(Color32::from_rgb(90, 190, 100));
                        }
                        ui.label(rich);
                    }
                });
                ui.label(
                    insight
                        .act_rms
                        .get(layer)
                        .map_or(String::new(), |v| format!("{v:.3}")),
                );
                ui.label(
                    insight
                        .attn_entropy
                        .get(layer)
                        .map_or(String::new(), |v| format!("{v:.2} nats")),
                );
                ui.end_row();
            }
        });
}

/// The rules that fire, in words; a line saying none do otherwise.
pub fn findings_ui(ui: &mut egui::Ui, data: &DynamicsData) {
    let findings = data.findings();
    if findings.is_empty() {
        if !data.records.is_empty() {
            ui.label(
                egui::RichText::new(
                    "No rule fires: every matrix's update ratio is within 10^-5 to 10^-1.5, and clipping fires on at most half the recent steps.",
                )
                .weak(),
            );
        }
        return;
    }
    for finding in findings {
        let colour = match finding.severity {
            Severity::Warning => Color32::from_rgb(235, 120, 60),
            Severity::Note => Color32::from_rgb(120, 160, 230),
        };
        ui.label(egui::RichText::new(finding.text.as_str()).color(colour));
    }
}

/// Median update ratio over the matrices at each recorded step, `(step, log10 ratio)`.
pub fn median_ratio_points(data: &DynamicsData) -> &[[f64; 2]] {
    &data.figures.median_points
}

/// Room for the heatmap's row labels, from the longest label of the runs shown.
pub fn label_width(datas: &[&DynamicsData]) -> f32 {
    let longest = datas
        .iter()
        .flat_map(|d| d.matrix_names())
        .map(|n| dynamics::matrix_label(n).chars().count())
        .max()
        .unwrap_or(10);
    (longest as f32 * 6.5 + 8.0).clamp(60.0, 220.0)
}

/// A token as the per-token view shows it: newline `↵`, tab `⇥`, everything else as written.
fn shown(token: &str) -> String {
    token.replace('\n', "↵").replace('\t', "⇥")
}

/// A guessed token on its own: as [`shown`], with a space as `·` so it is not blank.
fn shown_guess(token: &str) -> String {
    shown(token).replace(' ', "·")
}
