//! The Sweep page's charts, drawn with the painter: parallel coordinates (log axes for log
//! ranges, brushing, top k%), the metric against one parameter, every trial's learning curve
//! (pruned ones faded), and parameter importance.

use egui::{Color32, Pos2, Rect, Sense, Stroke, Ui, pos2, vec2};
use hearth_engine::sweep::space::short_real;
use hearth_engine::sweep::{Domain, Param, ParamValue, SweepRecord, TrialState};

/// A brushed range on a parallel-coordinates axis, in the axis's own 0..1 (0 at the bottom).
pub type Brush = Option<(f32, f32)>;

/// Where a value sits on a parameter's axis, 0 (bottom) to 1 (top); log ranges in the
/// logarithm, lists by position.
pub fn axis_position(param: &Param, value: &ParamValue) -> Option<f32> {
    let t = match &param.domain {
        Domain::List { values } => {
            let i = values.iter().position(|v| v == value)?;
            if values.len() == 1 {
                0.5
            } else {
                i as f64 / (values.len() - 1) as f64
            }
        }
        Domain::Log { lo, hi } => {
            let v = value.as_f64()?;
            (v.ln() - lo.ln()) / (hi.ln() - lo.ln())
        }
        Domain::Int { .. } | Domain::Real { .. } => {
            let (lo, hi) = param.domain.bounds()?;
            (value.as_f64()? - lo) / (hi - lo).max(f64::MIN_POSITIVE)
        }
    };
    Some(t.clamp(0.0, 1.0) as f32)
}

/// The value at `t` (0..1) of a numeric axis, for labels.
fn axis_label(param: &Param, t: f64) -> String {
    match &param.domain {
        Domain::List { values } => {
            let i = (t * (values.len().max(1) - 1) as f64).round() as usize;
            values.get(i).map(|v| v.to_string()).unwrap_or_default()
        }
        Domain::Log { lo, hi } => short_real((lo.ln() + t * (hi.ln() - lo.ln())).exp()),
        Domain::Int { lo, hi } => format!("{:.0}", *lo as f64 + t * (hi - lo) as f64),
        Domain::Real { lo, hi } => short_real(lo + t * (hi - lo)),
    }
}

/// Good (green) to bad (red) by rank share `r` in 0..1.
pub fn rank_color(r: f32) -> Color32 {
    let r = r.clamp(0.0, 1.0);
    Color32::from_rgb(
        (60.0 + 180.0 * r) as u8,
        (190.0 - 120.0 * r) as u8,
        (110.0 - 40.0 * r) as u8,
    )
}

/// The range of the metric over the trials that have a value.
pub fn metric_range(record: &SweepRecord) -> Option<(f64, f64)> {
    let values: Vec<f64> = record
        .trials
        .iter()
        .filter_map(|t| t.last_value())
        .filter(|v| v.is_finite())
        .collect();
    if values.is_empty() {
        return None;
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((lo, if hi > lo { hi } else { lo + 1e-9 }))
}

/// Whether each trial passes the brushes and is among the best `top_percent` (by rank).
pub fn shown(record: &SweepRecord, brushes: &[Brush], top_percent: f32) -> Vec<bool> {
    let ranking = record.ranking();
    let with_value = record
        .trials
        .iter()
        .filter(|t| t.last_value().is_some())
        .count();
    let keep = ((top_percent / 100.0) * with_value as f32).ceil() as usize;
    let range = metric_range(record);
    record
        .trials
        .iter()
        .map(|t| {
            let rank = ranking
                .iter()
                .position(|&i| i == t.index)
                .unwrap_or(usize::MAX);
            if t.last_value().is_none() || rank >= keep.max(1) {
                return false;
            }
            let mut positions: Vec<Option<f32>> = record
                .spec
                .params
                .iter()
                .zip(&t.values)
                .map(|(p, v)| axis_position(p, v))
                .collect();
            positions.push(match (range, t.last_value()) {
                (Some((lo, hi)), Some(v)) => Some(((v - lo) / (hi - lo)) as f32),
                _ => None,
            });
            positions
                .iter()
                .zip(brushes)
                .all(|(pos, brush)| match (pos, brush) {
                    (_, None) => true,
                    (Some(p), Some((a, b))) => *p >= a.min(*b) && *p <= a.max(*b),
                    (None, Some(_)) => false,
                })
        })
        .collect()
}

/// Parallel coordinates: one axis per parameter and one for the metric; drag on an axis to
/// brush a range (double-click clears it). Returns true when a brush changed.
pub fn parallel_ui(
    ui: &mut Ui,
    record: &SweepRecord,
    brushes: &mut Vec<Brush>,
    visible: &[bool],
    height: f32,
) -> bool {
    let n_axes = record.spec.params.len() + 1;
    brushes.resize(n_axes, None);
    let (rect, response) =
        ui.allocate_exact_size(vec2(ui.available_width(), height), Sense::click_and_drag());
    let painter = ui.painter_at(rect);
    let visuals = ui.visuals();
    painter.rect_filled(rect, 4.0, visuals.extreme_bg_color);
    let plot = Rect::from_min_max(rect.min + vec2(40.0, 26.0), rect.max - vec2(40.0, 22.0));
    let x_of = |k: usize| {
        if n_axes == 1 {
            plot.center().x
        } else {
            plot.left() + plot.width() * k as f32 / (n_axes - 1) as f32
        }
    };
    let y_of = |t: f32| plot.bottom() - t * plot.height();
    let range = metric_range(record);
    let ranking = record.ranking();
    let ranked = ranking.len().max(2) - 1;
    // Lines: faint for trials filtered out, coloured by rank otherwise, pruned ones faded.
    for pass in [false, true] {
        for t in &record.trials {
            let Some(value) = t.last_value() else {
                continue;
            };
            let on = visible.get(t.index).copied().unwrap_or(false);
            if on != pass {
                continue;
            }
            let mut points: Vec<Pos2> = record
                .spec
                .params
                .iter()
                .zip(&t.values)
                .enumerate()
                .filter_map(|(k, (p, v))| axis_position(p, v).map(|y| pos2(x_of(k), y_of(y))))
                .collect();
            if let Some((lo, hi)) = range {
                points.push(pos2(
                    x_of(n_axes - 1),
                    y_of(((value - lo) / (hi - lo)) as f32),
                ));
            }
            let rank = ranking.iter().position(|&i| i == t.index).unwrap_or(0);
            let mut color = rank_color(rank as f32 / ranked as f32);
            if matches!(t.state, TrialState::Pruned { .. }) {
                color = color.gamma_multiply(0.45);
            }
            let stroke = if on {
                Stroke::new(1.8, color)
            } else {
                Stroke::new(1.0, visuals.weak_text_color().gamma_multiply(0.25))
            };
            painter.add(egui::Shape::line(points, stroke));
        }
    }
    // Axes, their names and ends, and brushes.
    let text = visuals.text_color();
    let font = egui::FontId::proportional(11.0);
    for (k, brush) in brushes.iter().enumerate() {
        let x = x_of(k);
        painter.line_segment(
            [pos2(x, plot.top()), pos2(x, plot.bottom())],
            Stroke::new(1.0, visuals.weak_text_color()),
        );
        let (name, top, bottom) = if k < record.spec.params.len() {
            let p = &record.spec.params[k];
            let log = if p.domain.is_log() { " (log)" } else { "" };
            (
                format!("{}{log}", p.name),
                axis_label(p, 1.0),
                axis_label(p, 0.0),
            )
        } else {
            let (lo, hi) = range.unwrap_or((0.0, 1.0));
            (
                record.spec.metric.clone(),
                format!("{hi:.3}"),
                format!("{lo:.3}"),
            )
        };
        painter.text(
            pos2(x, rect.top() + 4.0),
            egui::Align2::CENTER_TOP,
            name,
            font.clone(),
            text,
        );
        painter.text(
            pos2(x + 3.0, plot.top()),
            egui::Align2::LEFT_BOTTOM,
            top,
            font.clone(),
            visuals.weak_text_color(),
        );
        painter.text(
            pos2(x + 3.0, plot.bottom() + 2.0),
            egui::Align2::LEFT_TOP,
            bottom,
            font.clone(),
            visuals.weak_text_color(),
        );
        if let Some((a, b)) = *brush {
            let brush = Rect::from_x_y_ranges(x - 6.0..=x + 6.0, y_of(a.max(b))..=y_of(a.min(b)));
            painter.rect_filled(brush, 2.0, visuals.selection.bg_fill.gamma_multiply(0.5));
            painter.rect_stroke(
                brush,
                2.0,
                visuals.selection.stroke,
                egui::StrokeKind::Outside,
            );
        }
    }
    // Brushing: the axis nearest the press.
    let mut changed = false;
    let nearest = |pos: Pos2| {
        (0..n_axes)
            .min_by(|&a, &b| (x_of(a) - pos.x).abs().total_cmp(&(x_of(b) - pos.x).abs()))
            .filter(|&k| (x_of(k) - pos.x).abs() < 30.0)
    };
    let t_of = |pos: Pos2| ((plot.bottom() - pos.y) / plot.height()).clamp(0.0, 1.0);
    if response.double_clicked()
        && let Some(k) = response.interact_pointer_pos().and_then(nearest)
    {
        brushes[k] = None;
        changed = true;
    } else if response.dragged()
        && let (Some(origin), Some(now)) = (
            ui.input(|i| i.pointer.press_origin()),
            response.interact_pointer_pos(),
        )
        && let Some(k) = nearest(origin)
    {
        brushes[k] = Some((t_of(origin), t_of(now)));
        changed = true;
    }
    response.on_hover_text(
        "Drag along an axis to keep only the trials in that range; double-click it to clear",
    );
    changed
}

/// A frame for a small x-y chart: the plot rectangle and its mapping.
struct Frame {
    plot: Rect,
    x: (f64, f64, bool),
    y: (f64, f64),
}

impl Frame {
    fn to_screen(&self, x: f64, y: f64) -> Pos2 {
        let (x0, x1, log) = self.x;
        let tx = if log {
            (x.ln() - x0.ln()) / (x1.ln() - x0.ln())
        } else {
            (x - x0) / (x1 - x0)
        };
        let ty = (y - self.y.0) / (self.y.1 - self.y.0);
        pos2(
            self.plot.left() + tx as f32 * self.plot.width(),
            self.plot.bottom() - ty as f32 * self.plot.height(),
        )
    }
}

fn frame_ui(
    ui: &mut Ui,
    title: &str,
    size: egui::Vec2,
    x: (f64, f64, bool),
    y: (f64, f64),
    x_name: &str,
) -> (egui::Painter, Frame) {
    let (rect, _) = ui.allocate_exact_size(size, Sense::hover());
    let painter = ui.painter_at(rect);
    let visuals = ui.visuals();
    painter.rect_filled(rect, 4.0, visuals.extreme_bg_color);
    let plot = Rect::from_min_max(rect.min + vec2(48.0, 22.0), rect.max - vec2(12.0, 28.0));
    let font = egui::FontId::proportional(11.0);
    let weak = visuals.weak_text_color();
    painter.text(
        rect.min + vec2(8.0, 4.0),
        egui::Align2::LEFT_TOP,
        title,
        egui::FontId::proportional(12.0),
        visuals.text_color(),
    );
    painter.rect_stroke(
        plot,
        0.0,
        Stroke::new(1.0, weak.gamma_multiply(0.4)),
        egui::StrokeKind::Inside,
    );
    let label = |v: f64| {
        if x.2 {
            short_real(v)
        } else if v.abs() >= 100.0 {
            format!("{v:.0}")
        } else {
            short_real(v)
        }
    };
    painter.text(
        pos2(plot.left(), plot.bottom() + 3.0),
        egui::Align2::LEFT_TOP,
        label(x.0),
        font.clone(),
        weak,
    );
    painter.text(
        pos2(plot.right(), plot.bottom() + 3.0),
        egui::Align2::RIGHT_TOP,
        label(x.1),
        font.clone(),
        weak,
    );
    painter.text(
        pos2(plot.center().x, plot.bottom() + 14.0),
        egui::Align2::CENTER_TOP,
        x_name,
        font.clone(),
        weak,
    );
    painter.text(
        pos2(plot.left() - 4.0, plot.top()),
        egui::Align2::RIGHT_TOP,
        format!("{:.3}", y.1),
        font.clone(),
        weak,
    );
    painter.text(
        pos2(plot.left() - 4.0, plot.bottom()),
        egui::Align2::RIGHT_BOTTOM,
        format!("{:.3}", y.0),
        font,
        weak,
    );
    (painter, Frame { plot, x, y })
}

/// The metric of each trial against one parameter (log x for log ranges).
pub fn metric_vs_param_ui(
    ui: &mut Ui,
    record: &SweepRecord,
    param: usize,
    visible: &[bool],
    size: egui::Vec2,
) {
    let Some(p) = record.spec.params.get(param) else {
        return;
    };
    let Some((lo, hi)) = metric_range(record) else {
        ui.allocate_exact_size(size, Sense::hover());
        return;
    };
    let pad = (hi - lo) * 0.05;
    let numeric = p.domain.bounds();
    let x = match (numeric, &p.domain) {
        (Some((a, b)), Domain::Log { .. }) => (a, b, true),
        (Some((a, b)), _) if b > a => (a - (b - a) * 0.05, b + (b - a) * 0.05, false),
        _ => (
            -0.5,
            (p.domain.grid_values().map_or(1, |v| v.len()) as f64) - 0.5,
            false,
        ),
    };
    let title = format!("{} against {}", record.spec.metric, p.name);
    let (painter, frame) = frame_ui(ui, &title, size, x, (lo - pad, hi + pad), &p.name);
    let ranking = record.ranking();
    let ranked = ranking.len().max(2) - 1;
    for t in &record.trials {
        let Some(v) = t.last_value() else { continue };
        let xv = match (&p.domain, &t.values[param]) {
            (Domain::List { values }, value) if numeric.is_none() => {
                values.iter().position(|x| x == value).unwrap_or(0) as f64
            }
            (_, value) => match value.as_f64() {
                Some(x) => x,
                None => continue,
            },
        };
        let rank = ranking.iter().position(|&i| i == t.index).unwrap_or(0);
        let mut color = rank_color(rank as f32 / ranked as f32);
        if !visible.get(t.index).copied().unwrap_or(true) {
            color = color.gamma_multiply(0.25);
        }
        let at = frame.to_screen(xv, v);
        if matches!(t.state, TrialState::Pruned { .. }) {
            painter.circle_stroke(at, 4.0, Stroke::new(1.5, color));
        } else {
            painter.circle_filled(at, 4.0, color);
        }
    }
}

/// Every trial's metric over its steps; pruned trials faded, the best drawn thick.
pub fn curves_ui(ui: &mut Ui, record: &SweepRecord, visible: &[bool], size: egui::Vec2) {
    let points: Vec<f64> = record
        .trials
        .iter()
        .flat_map(|t| t.curve.iter().map(|(_, v)| *v))
        .filter(|v| v.is_finite())
        .collect();
    if points.is_empty() {
        ui.allocate_exact_size(size, Sense::hover());
        return;
    }
    let lo = points.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = points.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = (hi - lo).max(1e-9) * 0.05;
    let steps = record.base.train.steps.max(1) as f64;
    let title = format!("{} of every trial (pruned faded)", record.spec.metric);
    let (painter, frame) = frame_ui(
        ui,
        &title,
        size,
        (0.0, steps, false),
        (lo - pad, hi + pad),
        "step",
    );
    let best = record.best().map(|(i, _)| i);
    let ranking = record.ranking();
    let ranked = ranking.len().max(2) - 1;
    for t in &record.trials {
        let line: Vec<Pos2> = t
            .curve
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(s, v)| frame.to_screen(*s as f64, *v))
            .collect();
        let rank = ranking.iter().position(|&i| i == t.index).unwrap_or(0);
        let mut color = rank_color(rank as f32 / ranked as f32);
        let mut width = 1.5;
        if matches!(t.state, TrialState::Pruned { .. }) {
            color = color.gamma_multiply(0.3);
            width = 1.0;
        }
        if !visible.get(t.index).copied().unwrap_or(true) {
            color = color.gamma_multiply(0.3);
        }
        if Some(t.index) == best {
            width = 3.0;
        }
        if line.len() == 1 {
            painter.circle_filled(line[0], 2.5, color);
        }
        painter.add(egui::Shape::line(line, Stroke::new(width, color)));
    }
}

/// Horizontal bars of each parameter's importance.
pub fn importance_ui(ui: &mut Ui, record: &SweepRecord, importance: Option<&[f64]>) {
    ui.label(egui::RichText::new("Parameter importance").strong())
        .on_hover_text(
            "Mean decrease in impurity of a random forest (64 trees, depth 4) fitted from the \
             trials' values to their metric (Breiman 2001), as W&B's importance panel; pruned \
             trials count with the value they were stopped at",
        );
    let Some(importance) = importance else {
        ui.weak("Shown once four trials have a value.");
        return;
    };
    let mut order: Vec<usize> = (0..importance.len()).collect();
    order.sort_by(|&a, &b| importance[b].total_cmp(&importance[a]));
    for k in order {
        ui.horizontal(|ui| {
            ui.add_sized([90.0, 16.0], egui::Label::new(&record.spec.params[k].name));
            let (rect, _) = ui.allocate_exact_size(vec2(160.0, 14.0), Sense::hover());
            ui.painter()
                .rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
            let mut bar = rect;
            bar.set_width(rect.width() * importance[k] as f32);
            ui.painter()
                .rect_filled(bar, 2.0, ui.visuals().selection.bg_fill);
            ui.label(format!("{:.0}%", importance[k] * 100.0));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axes_place_each_decade_equally_and_lists_by_position() {
        let lr = Param::parse("lr=log:1e-4:1e-2").unwrap();
        assert_eq!(axis_position(&lr, &ParamValue::Real(1e-3)), Some(0.5));
        let w = Param::parse("width=32,64,128").unwrap();
        assert_eq!(axis_position(&w, &ParamValue::Int(64)), Some(0.5));
        assert_eq!(axis_position(&w, &ParamValue::Int(128)), Some(1.0));
        assert_eq!(axis_label(&lr, 0.5), "1e-3");
    }
}
