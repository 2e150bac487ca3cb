//! The loss plot: series reduced to min/max/last per pixel column (level of detail), seed
//! bands, reference lines, the best point marked and readable ticks at every zoom.

use egui::{Color32, Stroke};
use egui_plot::{
    GridInput, GridMark, Legend, Line, MarkerShape, Plot, PlotPoints, Points, Polygon, Text,
};
use hearth_engine::viz::lod::{BlockIndex, min_max_last, min_max_last_indexed};

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

/// The one value every finite point of `series` has, when there is such a value.
fn flat_value(series: &[Series<'_>]) -> Option<f64> {
    let mut ys = series
        .iter()
        .flat_map(|s| s.ys.iter().copied())
        .filter(|y| y.is_finite());
    let first = ys.next()?;
    ys.all(|y| (y - first).abs() <= 1e-12 * first.abs().max(1.0))
        .then_some(first)
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
    // Epochs are fractions; steps, tokens and seconds read as whole numbers.
    let x_decimals = if x_label == hearth_engine::viz::curves::XAxis::Epochs.label() {
        3
    } else {
        0
    };
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
                        "{plot_name}\n{x_label} {:.x_decimals$}\n{y_label} {:.4}",
                        position.x,
                        from_y(position.y)
                    )
                }
                egui_plot::HoverPosition::Elsewhere { position } => {
                    format!(
                        "{x_label} {:.x_decimals$}\n{y_label} {:.4}",
                        position.x,
                        from_y(position.y)
                    )
                }
            })
        });
    // A flat curve (an exact-match rate still at 0) gets a readable span, not egui_plot's
    // default of plus or minus its own size: a fraction's [0, 1], else one unit around it.
    let plot = match flat_value(series) {
        Some(v) if !log_y && (0.0..=1.0).contains(&v) => plot.include_y(0.0).include_y(1.0),
        Some(v) if !log_y => plot.include_y(v - 1.0).include_y(v + 1.0),
        _ => plot,
    };
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
        references_ui(plot_ui, options.references, x_min, x_max, to_y);
        for (k, s) in series.iter().enumerate() {
            series_ui(plot_ui, k, s, (x_min, x_max), buckets, to_y);
        }
    })
}

/// Dashed reference lines, each labelled where it lies. Lines close in value get labels at
/// different places along x: ranked by value, the labels cycle through the left, a third and
/// two thirds of the way across.
fn references_ui(
    plot_ui: &mut egui_plot::PlotUi<'_>,
    references: &[RefLine],
    x_min: f64,
    x_max: f64,
    to_y: impl Fn(f64) -> f64,
) {
    let grey = Color32::from_gray(150);
    let mut ranked: Vec<usize> = (0..references.len()).collect();
    ranked.sort_by(|&a, &b| references[a].value.total_cmp(&references[b].value));
    for (rank, &k) in ranked.iter().enumerate() {
        let r = &references[k];
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
}

/// Series `k`, reduced to min/max/last per pixel column of the visible `x_range`.
fn series_ui(
    plot_ui: &mut egui_plot::PlotUi<'_>,
    k: usize,
    s: &Series<'_>,
    x_range: (f64, f64),
    buckets: usize,
    to_y: impl Fn(f64) -> f64 + Copy,
) {
    let (x_min, x_max) = x_range;
    // A run without x values on this axis (epochs of a run whose epoch size is unknown) draws
    // nothing rather than pairing values with the wrong points.
    if s.xs.len() != s.ys.len() {
        return;
    }
    let points = match s.index {
        Some(index) => min_max_last_indexed(s.xs, s.ys, index, x_min, x_max, buckets),
        None => min_max_last(s.xs, s.ys, x_min, x_max, buckets),
    };
    let reduced: Vec<[f64; 2]> = points.into_iter().map(|[x, y]| [x, to_y(y)]).collect();
    match s.style {
        SeriesStyle::Line { width } => {
            // A line through fewer than two points draws nothing: show them as dots (an
            // imported model's one recorded score, the first evaluation of a run).
            if reduced.len() < 2 {
                plot_ui.points(
                    Points::new(s.name.clone(), PlotPoints::from(reduced.clone()))
                        .color(s.color)
                        .radius(width + 2.5),
                );
            }
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
            best_point_ui(plot_ui, k, s, x_range, to_y);
        }
    }
}

/// The best point so far: the lowest value over the whole series, not just the view, marked
/// and labelled.
fn best_point_ui(
    plot_ui: &mut egui_plot::PlotUi<'_>,
    k: usize,
    s: &Series<'_>,
    (x_min, x_max): (f64, f64),
    to_y: impl Fn(f64) -> f64,
) {
    let best =
        s.ys.iter()
            .enumerate()
            .filter(|(_, y)| y.is_finite())
            .min_by(|a, b| a.1.total_cmp(b.1));
    let Some((i, &y)) = best else {
        return;
    };
    let at = [s.xs[i], to_y(y)];
    plot_ui.points(
        Points::new(s.name.clone(), PlotPoints::from(vec![at]))
            .shape(MarkerShape::Diamond)
            .filled(false)
            .radius(6.0)
            .color(s.color),
    );
    // The label reads away from the nearer edge, so a best point at the left end is not cut
    // off; series alternate above and below their point, so two bests at one step stay
    // legible.
    let (text, h) = if at[0] < 0.5 * (x_min + x_max) {
        (format!("  best {y:.4}"), egui::Align::Min)
    } else {
        (format!("best {y:.4}  "), egui::Align::Max)
    };
    let v = if k.is_multiple_of(2) {
        egui::Align::Max
    } else {
        egui::Align::Min
    };
    plot_ui.text(
        Text::new(s.name.clone(), at.into(), text)
            .anchor(egui::Align2([h, v]))
            .color(s.color),
    );
}

/// Fills between `lo` and `hi` with thin convex quads (egui fills convex shapes only).
fn band_ui(
    plot_ui: &mut egui_plot::PlotUi<'_>,
    band: &Band<'_>,
    x_min: f64,
    x_max: f64,
    to_y: impl Fn(f64) -> f64,
) {
    if band.lo.len() != band.xs.len() || band.hi.len() != band.xs.len() {
        return;
    }
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
    fn a_curve_at_one_value_is_flat_and_a_moving_one_is_not() {
        let series = |ys: &'static [f64]| Series {
            name: "val_exact_match".into(),
            xs: &[10.0, 20.0, 30.0],
            ys,
            color: Color32::WHITE,
            style: SeriesStyle::Line { width: 2.0 },
            index: None,
        };
        assert_eq!(flat_value(&[series(&[0.0, 0.0, f64::NAN])]), Some(0.0));
        assert_eq!(flat_value(&[series(&[0.0, 0.1, 0.0])]), None);
        assert_eq!(flat_value(&[]), None);
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
}
