//! Loss plot with a level-of-detail layer and an attention heatmap.

use crate::model::AttentionMaps;
use crate::viz::lod::min_max_last;
use egui::{Color32, Rect, Sense, Stroke, Vec2, pos2};
use egui_plot::{Legend, Line, Plot, PlotPoints, Points};

/// A run colour by index.
pub fn run_color(index: usize) -> Color32 {
    const PALETTE: [Color32; 8] = [
        Color32::from_rgb(0x4e, 0x9a, 0xf1),
        Color32::from_rgb(0xf2, 0x8e, 0x2b),
        Color32::from_rgb(0x59, 0xc1, 0x5b),
        Color32::from_rgb(0xe1, 0x57, 0x59),
        Color32::from_rgb(0xb0, 0x7a, 0xe0),
        Color32::from_rgb(0x9c, 0x75, 0x5f),
        Color32::from_rgb(0xff, 0x9d, 0xa7),
        Color32::from_rgb(0x76, 0xb7, 0xb2),
    ];
    PALETTE[index % PALETTE.len()]
}

/// How one series is drawn.
#[derive(Clone, Copy, PartialEq)]
pub enum SeriesStyle {
    Line {
        width: f32,
    },
    /// Markers joined by a line (evaluations are sparse).
    Markers,
}

pub struct Series<'a> {
    pub name: String,
    pub points: &'a [[f64; 2]],
    pub color: Color32,
    pub style: SeriesStyle,
}

/// Draws `series` on one plot. Each series is reduced to min/max/last per pixel column of the
/// visible x range, so drawing cost follows the plot's width, not the number of points.
pub fn loss_plot(ui: &mut egui::Ui, id: &str, series: &[Series<'_>], log_y: bool, height: f32) {
    let to_y = move |y: f64| if log_y { y.max(1e-12).log10() } else { y };
    let mut plot = Plot::new(id)
        .height(height)
        .legend(Legend::default())
        .x_axis_label("step")
        .y_axis_label(if log_y { "loss (log)" } else { "loss" })
        .link_cursor(egui::Id::unique("loss_plots"), [true, false]);
    if log_y {
        plot = plot
            .y_axis_formatter(|mark, _| format!("{:.3}", 10f64.powf(mark.value)))
            .label_formatter(|hover| {
                Some(match hover {
                    egui_plot::HoverPosition::NearDataPoint {
                        plot_name,
                        position,
                        ..
                    } => {
                        format!(
                            "{plot_name}\nstep {:.0}\nloss {:.4}",
                            position.x,
                            10f64.powf(position.y)
                        )
                    }
                    egui_plot::HoverPosition::Elsewhere { position } => {
                        format!("step {:.0}\nloss {:.4}", position.x, 10f64.powf(position.y))
                    }
                })
            });
    }
    let buckets = ui.available_width().max(100.0) as usize;
    plot.show(ui, |plot_ui| {
        let bounds = plot_ui.plot_bounds();
        let auto_x = plot_ui.auto_bounds().x || !bounds.is_valid_x();
        for s in series {
            let (x_min, x_max) = if auto_x {
                match (s.points.first(), s.points.last()) {
                    (Some(a), Some(b)) => (a[0], b[0].max(a[0] + 1.0)),
                    _ => continue,
                }
            } else {
                (bounds.min()[0], bounds.max()[0])
            };
            let reduced: Vec<[f64; 2]> = min_max_last(s.points, x_min, x_max, buckets)
                .into_iter()
                .map(|[x, y]| [x, to_y(y)])
                .collect();
            match s.style {
                SeriesStyle::Line { width } => {
                    plot_ui.line(
                        Line::new(s.name.clone(), PlotPoints::from(reduced))
                            .color(s.color)
                            .width(width),
                    );
                }
                SeriesStyle::Markers => {
                    plot_ui.line(
                        Line::new(s.name.clone(), PlotPoints::from(reduced.clone()))
                            .color(s.color)
                            .width(1.5),
                    );
                    plot_ui.points(
                        Points::new(s.name.clone(), PlotPoints::from(reduced))
                            .color(s.color)
                            .radius(3.0),
                    );
                }
            }
        }
    });
}

/// Colour for an attention weight in [0, 1].
fn heat(w: f32) -> Color32 {
    let t = w.clamp(0.0, 1.0).sqrt();
    // Dark blue -> orange -> light yellow.
    let lerp = |a: f32, b: f32, t: f32| (a + (b - a) * t) as u8;
    if t < 0.5 {
        let u = t * 2.0;
        Color32::from_rgb(
            lerp(16.0, 200.0, u),
            lerp(20.0, 80.0, u),
            lerp(60.0, 60.0, u),
        )
    } else {
        let u = (t - 0.5) * 2.0;
        Color32::from_rgb(
            lerp(200.0, 255.0, u),
            lerp(80.0, 240.0, u),
            lerp(60.0, 170.0, u),
        )
    }
}

/// Draws the `[seq, seq]` map of `layer`/`head` as an image: rows are queries, columns keys.
/// Hover shows the two tokens and the weight.
pub fn attention_heatmap(
    ui: &mut egui::Ui,
    maps: &AttentionMaps,
    tokens: &[String],
    layer: usize,
    head: usize,
    texture: &mut Option<(u64, egui::TextureHandle)>,
    key: u64,
) {
    let seq = maps.seq;
    if seq == 0 || layer >= maps.n_layer || head >= maps.n_head {
        return;
    }
    let map = maps.map(layer, head);
    if texture.as_ref().map(|(k, _)| *k) != Some(key) {
        let pixels: Vec<Color32> = map.iter().map(|&w| heat(w)).collect();
        let image = egui::ColorImage::new([seq, seq], pixels);
        let handle = ui
            .ctx()
            .load_texture("attention", image, egui::TextureOptions::NEAREST);
        *texture = Some((key, handle));
    }
    let Some((_, handle)) = texture else { return };
    let label_room = if seq <= 64 { 18.0 } else { 0.0 };
    let side = (ui.available_width() - label_room)
        .min(ui.available_height() - label_room - 24.0)
        .max(120.0);
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(side + label_room), Sense::hover());
    let grid = Rect::from_min_size(rect.min + Vec2::splat(label_room), Vec2::splat(side));
    let painter = ui.painter_at(rect);
    painter.image(
        handle.id(),
        grid,
        Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0)),
        Color32::WHITE,
    );
    painter.rect_stroke(
        grid,
        0.0,
        Stroke::new(1.0, ui.visuals().weak_text_color()),
        egui::StrokeKind::Outside,
    );
    let cell = side / seq as f32;
    if label_room > 0.0 {
        let font = egui::FontId::monospace((cell * 0.85).min(12.0));
        let color = ui.visuals().text_color();
        for (i, tok) in tokens.iter().enumerate().take(seq) {
            let c = grid.min.y + (i as f32 + 0.5) * cell;
            painter.text(
                pos2(grid.min.x - 3.0, c),
                egui::Align2::RIGHT_CENTER,
                tok,
                font.clone(),
                color,
            );
            let cx = grid.min.x + (i as f32 + 0.5) * cell;
            painter.text(
                pos2(cx, grid.min.y - 3.0),
                egui::Align2::CENTER_BOTTOM,
                tok,
                font.clone(),
                color,
            );
        }
    }
    if let Some(pos) = response.hover_pos() {
        if grid.contains(pos) {
            let q = (((pos.y - grid.min.y) / cell) as usize).min(seq - 1);
            let k = (((pos.x - grid.min.x) / cell) as usize).min(seq - 1);
            let label = |i: usize| tokens.get(i).cloned().unwrap_or_default();
            response.on_hover_text_at_pointer(format!(
                "query {q} '{}' -> key {k} '{}'\nweight {:.4}",
                label(q),
                label(k),
                map[q * seq + k]
            ));
        }
    }
}
