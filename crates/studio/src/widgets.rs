//! Loss plot with a level-of-detail layer, seed bands, the best point marked and readable
//! ticks at every zoom; the plot controls; attention heatmap.

use crate::prefs::{PlotSettings, XAxis};
use crate::shortcuts::{self, Command};
use egui::{Color32, Rect, Sense, Stroke, Vec2, pos2};
use egui_plot::{
    GridInput, GridMark, Legend, Line, MarkerShape, Plot, PlotPoints, Points, Polygon, Text,
};
use hearth_engine::model::AttentionMaps;
use hearth_engine::viz::lod::{BlockIndex, min_max_last, min_max_last_indexed};
use hearth_engine::viz::smoothing::SmoothingKind;

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
    /// A line of this width.
    Line {
        /// Stroke width in points.
        width: f32,
    },
    /// Markers joined by a line (evaluations are sparse); the best (lowest) point is marked.
    Markers,
}

/// One curve, borrowed from the run's columns: nothing is copied per frame but the few
/// points the level-of-detail layer keeps.
pub struct Series<'a> {
    /// The legend entry.
    pub name: String,
    /// x values, sorted.
    pub xs: &'a [f64],
    /// y values, one per x.
    pub ys: &'a [f64],
    /// Line and marker colour.
    pub color: Color32,
    /// Line or markers.
    pub style: SeriesStyle,
    /// A min/max block index of `ys`, for long series.
    pub index: Option<&'a BlockIndex>,
}

/// A mean ± spread band.
pub struct Band<'a> {
    /// The legend entry it belongs to (its mean line's name).
    pub name: String,
    /// x values, sorted.
    pub xs: &'a [f64],
    /// Lower edge, one per x.
    pub lo: &'a [f64],
    /// Upper edge, one per x.
    pub hi: &'a [f64],
    /// Fill colour (made translucent).
    pub color: Color32,
}

/// How a loss plot is laid out.
#[derive(Clone, Copy)]
pub struct PlotOptions<'a> {
    /// y on a log scale.
    pub log_y: bool,
    /// Height in points.
    pub height: f32,
    /// The x axis title.
    pub x_label: &'a str,
    /// The y axis title: what the curves measure.
    pub y_label: &'a str,
    /// Horizontal reference lines (simple models' figures on the same data); empty when the
    /// user turned them off.
    pub references: &'a [RefLine],
}

/// A labelled horizontal line at a simple model's figure (a count model's loss, TF-IDF's
/// recall), drawn dashed in grey; clicking its legend entry hides it.
#[derive(Debug, Clone, PartialEq)]
pub struct RefLine {
    /// Legend entry and label (`5-gram count model`).
    pub name: String,
    /// Where it is drawn, in the curves' units.
    pub value: f64,
}

impl RefLine {
    /// The references of `metric` among `references`, named `label` or, with `suffix`,
    /// `label (suffix)`.
    pub fn of(
        references: &[hearth_engine::eval::baseline::Reference],
        metric: &str,
        suffix: Option<&str>,
    ) -> Vec<RefLine> {
        references
            .iter()
            .filter(|r| r.metric == metric && r.value.is_finite())
            .map(|r| RefLine {
                name: match suffix {
                    Some(s) => format!("{} ({s})", r.label),
                    None => r.label.clone(),
                },
                value: r.value,
            })
            .collect()
    }
}

/// Grid lines closer than this (in points) are not drawn.
const GRID_MIN_SPACING: f32 = 8.0;
/// Labelled ticks are at least this far apart (in points), so their labels never collide and
/// egui_plot (which hides labels closer than 60 points) always shows them.
const LABEL_SPACING: f64 = 100.0;

/// The smallest of 1, 2, 5 times a power of ten that is at least `x` (> 0).
fn nice_step_at_least(x: f64) -> f64 {
    let power = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= x * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// Grid marks at 1-2-5 steps: labelled ticks on the smallest such step at least
/// [`LABEL_SPACING`] points apart, finer lines between them. egui_plot's default powers of ten
/// leave a chart with only "0" labelled when ten steps are too close and a hundred too far
/// (an 800-step run on a half-width chart).
pub fn nice_grid_spacer(input: GridInput) -> Vec<GridMark> {
    grid_marks(input, LABEL_SPACING)
}

/// As [`nice_grid_spacer`] for the y axis, whose labels are one line tall and may sit closer
/// ([`Y_LABEL_SPACING`]): a chart 120 points tall still labels several values.
pub fn nice_y_grid_spacer(input: GridInput) -> Vec<GridMark> {
    grid_marks(input, Y_LABEL_SPACING)
}

/// Labelled y ticks are at least this far apart (in points).
const Y_LABEL_SPACING: f64 = 24.0;

fn grid_marks(input: GridInput, label_spacing: f64) -> Vec<GridMark> {
    let (min, max) = input.bounds;
    // `base_step_size` is the value span of GRID_MIN_SPACING points.
    let per_point = input.base_step_size / f64::from(GRID_MIN_SPACING);
    if !(per_point.is_finite() && per_point > 0.0 && max > min) {
        return Vec::new();
    }
    let labelled = nice_step_at_least(per_point * label_spacing);
    let mantissa = labelled / 10f64.powf(labelled.log10().floor());
    // Fine lines split a labelled step in 5 (1 and 5) or 4 (2) equal nice parts.
    let fine = if (mantissa - 2.0).abs() < 1e-6 {
        labelled / 4.0
    } else {
        labelled / 5.0
    };
    let mut marks = Vec::new();
    for step in [labelled * 10.0, labelled, fine] {
        let first = (min / step).ceil() as i64;
        let last = (max / step).floor() as i64;
        for k in first..=last {
            let value = k as f64 * step;
            // A value already marked by a coarser step keeps the coarser mark.
            if !marks
                .iter()
                .any(|m: &GridMark| (m.value - value).abs() < fine * 1e-3)
            {
                marks.push(GridMark {
                    value,
                    step_size: step,
                });
            }
        }
    }
    marks
}

/// A tick's label with as many decimals as its step needs: `18` and `12` at a step of 1,
/// `-0.22` at a step of 0.02 (never `18.000`).
pub fn tick_label(value: f64, step: f64) -> String {
    let decimals = if step > 0.0 && step.is_finite() {
        (-(step.log10() + 1e-9).floor()).clamp(0.0, 8.0) as usize
    } else {
        3
    };
    let text = format!("{value:.decimals$}");
    // `-0` and `-0.00` read as zero.
    if text
        .trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        text.trim_start_matches('-').to_string()
    } else {
        text
    }
}

/// `value` to `digits` significant digits, without trailing zeros (`1.58`, `20`, `0.0316`).
fn significant(value: f64, digits: i32) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).clamp(0, 12) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

fn x_range(series: &[Series<'_>]) -> Option<(f64, f64)> {
    let mut range: Option<(f64, f64)> = None;
    for s in series {
        if let (Some(&a), Some(&b)) = (s.xs.first(), s.xs.last()) {
            range = Some(match range {
                Some((lo, hi)) => (lo.min(a), hi.max(b)),
                None => (a, b),
            });
        }
    }
    range.map(|(a, b)| (a, if b > a { b } else { a + 1.0 }))
}

/// Draws the series on one plot. Each series is reduced to min/max/last per pixel column of
/// the visible x range, so drawing cost follows the plot's width, not the number of points.
pub fn loss_plot(
    ui: &mut egui::Ui,
    id: &str,
    series: &[Series<'_>],
    bands: &[Band<'_>],
    options: PlotOptions<'_>,
) -> egui_plot::PlotResponse<()> {
    let log_y = options.log_y;
    let to_y = move |y: f64| if log_y { y.max(1e-12).log10() } else { y };
    let from_y = move |y: f64| if log_y { 10f64.powf(y) } else { y };
    let x_label = options.x_label;
    let y_label = options.y_label;
    // A reference line's label sits above it: room for it when the line is at the top.
    let margin_y = if options.references.is_empty() {
        0.05
    } else {
        0.15
    };
    let plot = Plot::new(id)
        .height(options.height)
        .set_margin_fraction(egui::vec2(0.05, margin_y))
        .legend(Legend::default())
        .x_axis_label(x_label)
        .grid_spacing(egui::Rangef::new(GRID_MIN_SPACING, 300.0))
        .x_grid_spacer(nice_grid_spacer)
        .y_grid_spacer(nice_y_grid_spacer)
        .y_axis_label(if log_y {
            format!("{} (log scale)", options.y_label)
        } else {
            options.y_label.to_string()
        })
        .link_cursor(egui::Id::unique("loss_plots"), [true, false])
        .y_axis_formatter(move |mark, _| {
            if log_y {
                significant(from_y(mark.value), 3)
            } else {
                tick_label(mark.value, mark.step_size)
            }
        })
        .label_formatter(move |hover| {
            Some(match hover {
                egui_plot::HoverPosition::NearDataPoint {
                    plot_name,
                    position,
                    ..
                } => {
                    format!(
                        "{plot_name}\n{x_label} {:.0}\n{y_label} {:.4}",
                        position.x,
                        from_y(position.y)
                    )
                }
                egui_plot::HoverPosition::Elsewhere { position } => {
                    format!(
                        "{x_label} {:.0}\n{y_label} {:.4}",
                        position.x,
                        from_y(position.y)
                    )
                }
            })
        });
    let buckets = ui.available_width().max(100.0) as usize;
    let full = x_range(series);
    plot.show(ui, |plot_ui| {
        let bounds = plot_ui.plot_bounds();
        let auto_x = plot_ui.auto_bounds().x || !bounds.is_valid_x();
        let Some((x_min, x_max)) = (if auto_x {
            full
        } else {
            Some((bounds.min()[0], bounds.max()[0]))
        }) else {
            return;
        };
        for band in bands {
            band_ui(plot_ui, band, x_min, x_max, to_y);
        }
        let grey = Color32::from_gray(150);
        // Lines close in value get labels at different places along x: ranked by value, the
        // labels cycle through the left, a third and two thirds of the way across.
        let mut ranked: Vec<usize> = (0..options.references.len()).collect();
        ranked.sort_by(|&a, &b| {
            options.references[a]
                .value
                .total_cmp(&options.references[b].value)
        });
        for (rank, &k) in ranked.iter().enumerate() {
            let r = &options.references[k];
            let y = to_y(r.value);
            // Unnamed items stay out of the legend: each line is labelled where it lies.
            plot_ui.hline(
                egui_plot::HLine::new("", y)
                    .color(grey)
                    .width(1.0)
                    .style(egui_plot::LineStyle::dashed_loose()),
            );
            let x = x_min + (rank % 3) as f64 / 3.0 * (x_max - x_min);
            plot_ui.text(
                Text::new(
                    "",
                    egui_plot::PlotPoint::new(x, y),
                    format!("  {} {:.3}", r.name, r.value),
                )
                .anchor(egui::Align2::LEFT_BOTTOM)
                .color(grey),
            );
        }
        for (k, s) in series.iter().enumerate() {
            let points = match s.index {
                Some(index) => min_max_last_indexed(s.xs, s.ys, index, x_min, x_max, buckets),
                None => min_max_last(s.xs, s.ys, x_min, x_max, buckets),
            };
            let reduced: Vec<[f64; 2]> = points.into_iter().map(|[x, y]| [x, to_y(y)]).collect();
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
                            .radius(2.5),
                    );
                    // Best so far: the lowest value over the whole series, not just the view.
                    let best =
                        s.ys.iter()
                            .enumerate()
                            .filter(|(_, y)| y.is_finite())
                            .min_by(|a, b| a.1.total_cmp(b.1));
                    if let Some((i, &y)) = best {
                        let at = [s.xs[i], to_y(y)];
                        plot_ui.points(
                            Points::new(s.name.clone(), PlotPoints::from(vec![at]))
                                .shape(MarkerShape::Diamond)
                                .filled(false)
                                .radius(6.0)
                                .color(s.color),
                        );
                        // The label reads away from the nearer edge, so a best point at the
                        // left end is not cut off; series alternate above and below their
                        // point, so two bests at one step stay legible.
                        let (text, h) = if at[0] < 0.5 * (x_min + x_max) {
                            (format!("  best {y:.4}"), egui::Align::Min)
                        } else {
                            (format!("best {y:.4}  "), egui::Align::Max)
                        };
                        let v = if k % 2 == 0 {
                            egui::Align::Max
                        } else {
                            egui::Align::Min
                        };
                        let anchor = egui::Align2([h, v]);
                        plot_ui.text(
                            Text::new(s.name.clone(), at.into(), text)
                                .anchor(anchor)
                                .color(s.color),
                        );
                    }
                }
            }
        }
    })
}

/// Smoothing, axis and scale controls shared by the monitor and compare pages. Returns the
/// settings when the user changed them.
pub fn plot_controls_ui(ui: &mut egui::Ui, settings: PlotSettings) -> Option<PlotSettings> {
    let mut s = settings;
    ui.horizontal(|ui| {
        let label = ui.label("Smoothing");
        let smoothing_hint = format!(
            "{}\n{}",
            shortcuts::hint(ui.ctx(), Command::MoreSmoothing),
            shortcuts::hint(ui.ctx(), Command::LessSmoothing)
        );
        ui.add(egui::Slider::new(&mut s.smoothing, 0.0..=0.99).fixed_decimals(2))
            .labelled_by(label.id)
            .on_hover_text(smoothing_hint);
        let kind_label = |kind: SmoothingKind| match kind {
            SmoothingKind::DebiasedEma => "debiased EMA",
            SmoothingKind::TimeWeightedEma => "time-weighted EMA",
        };
        egui::ComboBox::from_id_salt(ui.scope_id().with("smoothing_kind"))
            .selected_text(kind_label(s.smoothing_kind))
            .show_ui(ui, |ui| {
                for kind in [SmoothingKind::DebiasedEma, SmoothingKind::TimeWeightedEma] {
                    ui.selectable_value(&mut s.smoothing_kind, kind, kind_label(kind));
                }
            })
            .response
            .labelled_by(label.id);
        ui.checkbox(&mut s.smooth_in_log_space, "smooth in log space");
        ui.separator();
        ui.checkbox(&mut s.log_y, "log y")
            .on_hover_text(shortcuts::hint(ui.ctx(), Command::ToggleLogY));
        ui.checkbox(&mut s.references, "reference lines")
            .on_hover_text(
                "Simple models' figures on the run's own data: count models for losses and \
             accuracies, word TF-IDF and chance for retrieval; each is labelled on its line",
            );
        let x_label = ui
            .label("x axis")
            .on_hover_text(shortcuts::hint(ui.ctx(), Command::CycleXAxis));
        egui::ComboBox::from_id_salt(ui.scope_id().with("x_axis"))
            .selected_text(s.x_axis.label())
            .show_ui(ui, |ui| {
                for axis in XAxis::ALL {
                    ui.selectable_value(&mut s.x_axis, axis, axis.label());
                }
            })
            .response
            .labelled_by(x_label.id)
            .on_hover_text(shortcuts::hint(ui.ctx(), Command::CycleXAxis));
    });
    (s != settings).then_some(s)
}

/// `text` with its first letter in upper case, for a title.
pub fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Fills between `lo` and `hi` with thin convex quads (egui fills convex shapes only).
fn band_ui(
    plot_ui: &mut egui_plot::PlotUi<'_>,
    band: &Band<'_>,
    x_min: f64,
    x_max: f64,
    to_y: impl Fn(f64) -> f64,
) {
    let start = band.xs.partition_point(|&x| x < x_min).saturating_sub(1);
    let end = (band.xs.partition_point(|&x| x <= x_max) + 1).min(band.xs.len());
    if end <= start + 1 {
        return;
    }
    const MAX_QUADS: usize = 200;
    let stride = ((end - start) / MAX_QUADS).max(1);
    let mut idx: Vec<usize> = (start..end).step_by(stride).collect();
    if idx.last() != Some(&(end - 1)) {
        idx.push(end - 1);
    }
    let fill = band.color.gamma_multiply(0.22);
    for w in idx.windows(2) {
        let (a, b) = (w[0], w[1]);
        let quad = vec![
            [band.xs[a], to_y(band.lo[a])],
            [band.xs[b], to_y(band.lo[b])],
            [band.xs[b], to_y(band.hi[b])],
            [band.xs[a], to_y(band.hi[a])],
        ];
        plot_ui.polygon(
            Polygon::new(band.name.clone(), PlotPoints::from(quad))
                .fill_color(fill)
                // Zero width: nothing drawn, but the legend takes the run's colour from it.
                .stroke(Stroke::new(0.0, band.color))
                .allow_hover(false),
        );
    }
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

/// Probes of up to this many tokens get token labels on the heatmap's axes.
pub const MAX_LABELLED_TOKENS: usize = 48;
/// Token labels are drawn only where a cell is at least this many points tall.
const MIN_LABEL_CELL: f32 = 7.0;
/// Labels longer than this many characters are cut with an ellipsis.
const MAX_LABEL_CHARS: usize = 8;

/// A token as the heatmap shows it, with whitespace made visible: space `·`, newline `↵`, tab
/// `⇥`, other control characters escaped, the empty token `∅`. (The bundled fonts have no
/// `␠`.) The engine's own labels for lone whitespace (`\n`, `\t`, `·`) read the same.
pub fn visible_token(token: &str) -> String {
    match token {
        "" => return "∅".into(),
        "\\n" => return "↵".into(),
        "\\t" => return "⇥".into(),
        _ => {}
    }
    let mut out = String::with_capacity(token.len());
    for c in token.chars() {
        match c {
            ' ' => out.push('·'),
            '\n' => out.push('↵'),
            '\t' => out.push('⇥'),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// A label cut to [`MAX_LABEL_CHARS`] characters.
fn short_label(token: &str) -> String {
    let visible = visible_token(token);
    if visible.chars().count() <= MAX_LABEL_CHARS {
        visible
    } else {
        let mut cut: String = visible.chars().take(MAX_LABEL_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// The hover text of cell (`query`, `key`) of a `[seq, seq]` map: both positions with their
/// tokens, and the weight.
pub fn attention_hover_text(
    tokens: &[String],
    map: &[f32],
    seq: usize,
    query: usize,
    key: usize,
) -> String {
    let token = |i: usize| tokens.get(i).map_or_else(String::new, |t| visible_token(t));
    let weight = map.get(query * seq + key).copied().unwrap_or(f32::NAN);
    // Long probes spread attention thin (uniform over 1,024 keys is 0.001): small weights keep
    // their digits instead of rounding to zero.
    let weight = if weight != 0.0 && weight.abs() < 1e-3 {
        format!("{weight:.2e}")
    } else {
        format!("{weight:.4}")
    };
    format!(
        "query {query} '{}'\nkey   {key} '{}'\nweight {weight}",
        token(query),
        token(key)
    )
}

/// The cell (query row, key column) of a `seq`×`seq` heatmap drawn in `grid` under `pos`, if
/// any.
pub fn heatmap_cell(grid: Rect, seq: usize, pos: egui::Pos2) -> Option<(usize, usize)> {
    if seq == 0 || !grid.contains(pos) || grid.width() <= 0.0 || grid.height() <= 0.0 {
        return None;
    }
    let at = |v: f32, lo: f32, size: f32| {
        (((v - lo) / size * seq as f32).floor().max(0.0) as usize).min(seq - 1)
    };
    Some((
        at(pos.y, grid.min.y, grid.height()),
        at(pos.x, grid.min.x, grid.width()),
    ))
}

/// Whether `texture` holds the image cached under `key` (otherwise it is rebuilt).
fn texture_is_current(texture: &Option<(u64, egui::TextureHandle)>, key: u64) -> bool {
    texture.as_ref().is_some_and(|(k, _)| *k == key)
}

/// Draws the `[seq, seq]` map of `layer`/`head` as an image: rows are queries, columns keys.
/// Short probes ([`MAX_LABELLED_TOKENS`]) get their tokens on both axes where the cells are
/// big enough to read them; hovering any cell shows both tokens and the weight. `texture`
/// caches the image under `key`.
#[allow(clippy::too_many_arguments)]
pub fn attention_heatmap(
    ui: &mut egui::Ui,
    maps: &AttentionMaps,
    tokens: &[String],
    layer: usize,
    head: usize,
    texture: &mut Option<(u64, egui::TextureHandle)>,
    key: u64,
    max_side: f32,
) {
    let seq = maps.seq;
    if seq == 0 || layer >= maps.n_layer || head >= maps.n_head {
        return;
    }
    let map = maps.map(layer, head);
    if !texture_is_current(texture, key) {
        // One pixel per cell: a 1,024-token probe is one 1,024×1,024 texture, uploaded only
        // when the snapshot, layer or head changes.
        let pixels: Vec<Color32> = map.iter().map(|&w| heat(w)).collect();
        let image = egui::ColorImage::new([seq, seq], pixels);
        match texture {
            Some((k, handle)) => {
                handle.set(image, egui::TextureOptions::NEAREST);
                *k = key;
            }
            None => {
                let handle = ui.ctx().load_texture(
                    format!("attention-{key}"),
                    image,
                    egui::TextureOptions::NEAREST,
                );
                *texture = Some((key, handle));
            }
        }
    }
    let Some((_, handle)) = texture else { return };
    let total = ui
        .available_width()
        .min(ui.available_height() - 24.0)
        .min(max_side);
    let labels: Vec<String> = if seq <= MAX_LABELLED_TOKENS {
        tokens.iter().take(seq).map(|t| short_label(t)).collect()
    } else {
        Vec::new()
    };
    // Labels only for short probes, and only where a cell is tall enough to read one.
    let font_size = (total / seq as f32 * 0.85).clamp(MIN_LABEL_CELL, 12.0);
    let font = egui::FontId::monospace(font_size);
    let text_color = ui.visuals().text_color();
    let galleys: Vec<std::sync::Arc<egui::Galley>> =
        if seq <= MAX_LABELLED_TOKENS && !labels.is_empty() {
            labels
                .iter()
                .map(|l| {
                    // Coloured when painted (the hovered row and column stand out).
                    ui.painter()
                        .layout_no_wrap(l.clone(), font.clone(), Color32::PLACEHOLDER)
                })
                .collect()
        } else {
            Vec::new()
        };
    // Single characters stand upright over their columns; longer tokens are turned to read
    // upwards, so that neighbours never overlap.
    let upright = labels.iter().all(|l| l.chars().count() <= 1);
    let widest = galleys.iter().map(|g| g.size().x).fold(0.0f32, f32::max);
    let tallest = galleys.iter().map(|g| g.size().y).fold(0.0f32, f32::max);
    // Room for the longest label left of the rows, and above the columns.
    let room = Vec2::new(widest, if upright { tallest } else { widest }).ceil() + Vec2::splat(4.0);
    let labelled = !galleys.is_empty() && (total - room.max_elem()) / seq as f32 >= MIN_LABEL_CELL;
    let room = if labelled { room } else { Vec2::ZERO };
    let side = (total - room.max_elem()).max(120.0);
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(side) + room, Sense::hover());
    let grid = Rect::from_min_size(rect.min + room, Vec2::splat(side));
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
    let hovered = response
        .hover_pos()
        .and_then(|pos| heatmap_cell(grid, seq, pos));
    if labelled {
        let strong = ui.visuals().strong_text_color();
        for (i, galley) in galleys.iter().enumerate() {
            let (row_hovered, column_hovered) =
                hovered.map_or((false, false), |(q, k)| (q == i, k == i));
            let center = (i as f32 + 0.5) * cell;
            let size = galley.size();
            let row_at = pos2(
                grid.min.x - 3.0 - size.x,
                grid.min.y + center - size.y / 2.0,
            );
            let color = |on: bool| if on { strong } else { text_color };
            painter.galley(row_at, galley.clone(), color(row_hovered));
            if upright {
                let at = pos2(
                    grid.min.x + center - size.x / 2.0,
                    grid.min.y - 3.0 - size.y,
                );
                painter.galley(at, galley.clone(), color(column_hovered));
            } else {
                // Turned a quarter to the left around its top-left corner: the text runs up
                // from the grid and its height spans the column.
                let at = pos2(grid.min.x + center - size.y / 2.0, grid.min.y - 3.0);
                painter.add(
                    egui::epaint::TextShape::new(at, galley.clone(), color(column_hovered))
                        .with_angle(-std::f32::consts::FRAC_PI_2),
                );
            }
        }
    }
    if let Some((q, k)) = hovered {
        let cell_rect = Rect::from_min_size(
            pos2(grid.min.x + k as f32 * cell, grid.min.y + q as f32 * cell),
            Vec2::splat(cell),
        );
        painter.rect_stroke(
            cell_rect.expand(1.0),
            0.0,
            Stroke::new(1.5, ui.visuals().strong_text_color()),
            egui::StrokeKind::Outside,
        );
        let text = attention_hover_text(tokens, map, seq, q, k);
        response.on_hover_ui_at_pointer(|ui| {
            ui.label(egui::RichText::new(text).monospace());
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The labelled ticks egui_plot would show for `bounds` on a plot `width` points wide.
    fn labelled(bounds: (f64, f64), width: f64) -> Vec<f64> {
        let per_point = (bounds.1 - bounds.0) / width;
        let marks = nice_grid_spacer(GridInput {
            bounds,
            base_step_size: per_point * f64::from(GRID_MIN_SPACING),
        });
        // egui_plot labels a mark whose step is more than 60 points wide.
        marks
            .iter()
            .filter(|m| m.step_size / per_point > 60.0)
            .map(|m| m.value)
            .collect::<Vec<_>>()
    }

    #[test]
    fn tick_labels_carry_the_decimals_their_step_needs() {
        assert_eq!(tick_label(18.0, 1.0), "18");
        assert_eq!(tick_label(200.0, 50.0), "200");
        assert_eq!(tick_label(-0.22, 0.02), "-0.22");
        assert_eq!(tick_label(0.1, 0.1), "0.1");
        assert_eq!(tick_label(1.75, 0.05), "1.75");
        assert_eq!(tick_label(-1e-17, 0.5), "0.0");
        assert_eq!(significant(1.584_893, 3), "1.58");
        assert_eq!(significant(20.0, 3), "20");
        assert_eq!(significant(0.031_62, 3), "0.0316");
    }

    #[test]
    fn an_800_step_run_on_a_narrow_chart_has_several_labelled_ticks() {
        let mut ticks = labelled((-20.0, 820.0), 480.0);
        ticks.sort_by(f64::total_cmp);
        assert_eq!(ticks, [0.0, 200.0, 400.0, 600.0, 800.0]);
    }

    #[test]
    fn every_zoom_keeps_labels_at_least_100_points_apart() {
        for width in [300.0, 480.0, 700.0, 1200.0] {
            for span in [1.0, 7.0, 264.0, 800.0, 12_345.0, 3.2e6] {
                let ticks = labelled((0.0, span), width);
                assert!(ticks.len() >= 2, "span {span} on {width} points: {ticks:?}");
                let per_point = span / width;
                let mut sorted = ticks.clone();
                sorted.sort_by(f64::total_cmp);
                for pair in sorted.windows(2) {
                    assert!(
                        (pair[1] - pair[0]) / per_point >= LABEL_SPACING - 1e-6,
                        "span {span} on {width} points: {sorted:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn nice_steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step_at_least(0.3), 0.5);
        assert_eq!(nice_step_at_least(1.0), 1.0);
        assert_eq!(nice_step_at_least(130.0), 200.0);
        assert_eq!(nice_step_at_least(201.0), 500.0);
        assert_eq!(nice_step_at_least(600.0), 1000.0);
    }

    #[test]
    fn tokens_show_their_whitespace() {
        assert_eq!(visible_token(" the"), "·the");
        assert_eq!(visible_token("\n"), "↵");
        assert_eq!(visible_token("\\n"), "↵", "the engine's label of a newline");
        assert_eq!(visible_token("a\tb"), "a⇥b");
        assert_eq!(visible_token(""), "∅");
        assert_eq!(visible_token("\u{7}"), "\\u{7}");
        assert_eq!(short_label("abcdefghijkl"), "abcdefg…");
    }

    #[test]
    fn the_hover_text_names_both_tokens_and_the_weight() {
        let tokens: Vec<String> = ["T", "o", " ", "b", "e"].map(String::from).to_vec();
        let seq = tokens.len();
        let mut map = vec![0.0f32; seq * seq];
        map[3 * seq + 2] = 0.625;
        map[4 * seq + 1] = 3.4e-5;
        assert_eq!(
            attention_hover_text(&tokens, &map, seq, 3, 2),
            "query 3 'b'\nkey   2 '·'\nweight 0.6250"
        );
        // A weight far below a thousandth keeps its digits.
        assert_eq!(
            attention_hover_text(&tokens, &map, seq, 4, 1),
            "query 4 'e'\nkey   1 'o'\nweight 3.40e-5"
        );
        assert_eq!(
            attention_hover_text(&tokens, &map, seq, 0, 4),
            "query 0 'T'\nkey   4 'e'\nweight 0.0000"
        );
        // Fewer labels than positions: the position still reads.
        assert_eq!(
            attention_hover_text(&tokens[..1], &map, seq, 1, 0),
            "query 1 ''\nkey   0 'T'\nweight 0.0000"
        );
    }

    #[test]
    fn the_pointer_maps_to_the_cell_under_it() {
        let grid = Rect::from_min_size(pos2(10.0, 20.0), Vec2::splat(512.0));
        // 1,024 cells of half a point each.
        assert_eq!(heatmap_cell(grid, 1024, pos2(10.0, 20.0)), Some((0, 0)));
        assert_eq!(heatmap_cell(grid, 1024, pos2(10.6, 21.2)), Some((2, 1)));
        assert_eq!(
            heatmap_cell(grid, 1024, pos2(522.0, 532.0)),
            Some((1023, 1023))
        );
        assert_eq!(heatmap_cell(grid, 1024, pos2(266.0, 20.0)), Some((0, 512)));
        // Big cells: row from y, column from x.
        assert_eq!(heatmap_cell(grid, 4, pos2(400.0, 30.0)), Some((0, 3)));
        assert_eq!(heatmap_cell(grid, 4, pos2(9.9, 30.0)), None);
        assert_eq!(heatmap_cell(grid, 4, pos2(100.0, 533.0)), None);
        assert_eq!(heatmap_cell(grid, 0, pos2(100.0, 100.0)), None);
    }

    #[test]
    fn the_texture_is_uploaded_again_only_when_the_snapshot_changes() {
        let seq = 1024;
        let maps = AttentionMaps {
            n_layer: 1,
            n_head: 1,
            seq,
            weights: (0..seq * seq).map(|i| (i % 7) as f32 / 7.0).collect(),
        };
        let tokens: Vec<String> = (0..seq).map(|i| format!("t{i}")).collect();
        let ctx = egui::Context::default();
        let mut texture = None;
        let mut frame = |key: u64| {
            let mut output = ctx.run_ui(egui::RawInput::default(), |ui| {
                attention_heatmap(ui, &maps, &tokens, 0, 0, &mut texture, key, 600.0);
            });
            let uploads: Vec<[usize; 2]> = output
                .textures_delta
                .set
                .iter()
                .filter(|(id, _)| Some(**id) == texture.as_ref().map(|(_, h)| h.id()))
                .flat_map(|(_, deltas)| deltas.iter().map(|d| d.image.size()))
                .collect();
            output.textures_delta.clear();
            (uploads, texture.as_ref().map(|(k, h)| (*k, h.id())))
        };
        let (first, at_1) = frame(1);
        assert_eq!(first, vec![[seq, seq]], "one texel per cell");
        let (again, same) = frame(1);
        assert!(again.is_empty(), "an unchanged snapshot is not uploaded");
        assert_eq!(same, at_1);
        let (next, at_2) = frame(2);
        assert_eq!(next, vec![[seq, seq]], "a new snapshot replaces the image");
        assert_eq!(at_2.map(|(k, _)| k), Some(2));
        assert_eq!(
            at_2.map(|(_, id)| id),
            at_1.map(|(_, id)| id),
            "in the same texture"
        );
    }

    #[test]
    fn titles_start_upper_case() {
        assert_eq!(capitalized("next-token loss"), "Next-token loss");
        assert_eq!(capitalized(""), "");
    }
}
