//! Scatter plots of many points (the embedding map holds 100,000): the points sit in a grid
//! index built once per snapshot, are drawn as one mesh of small squares (circles while few),
//! and the hovered point is found through the grid rather than by a scan.

use egui::{Color32, Mesh, Rect, Shape, Ui, pos2, vec2};
use egui_plot::{
    ClosestElem, PlotBounds, PlotGeometry, PlotItem, PlotItemBase, PlotPoint, PlotTransform,
};

/// Up to this many points are drawn as circles; more as squares in one mesh.
const MAX_CIRCLES: usize = 4_096;

/// Points with a uniform grid over their bounding box for nearest-point queries. Points with a
/// non-finite coordinate are kept (their indices stay those of the caller) but never found.
#[derive(Debug, Clone)]
pub struct PointSet {
    points: Vec<PlotPoint>,
    bounds: PlotBounds,
    min: [f64; 2],
    cell: [f64; 2],
    dims: [usize; 2],
    /// Start of each cell's run in `order` (row-major cells), plus the end.
    starts: Vec<u32>,
    /// Point indices sorted by cell.
    order: Vec<u32>,
}

impl PointSet {
    /// Indexes `points` with about two points per cell.
    pub fn new(points: Vec<PlotPoint>) -> Self {
        let finite = |p: &PlotPoint| p.x.is_finite() && p.y.is_finite();
        let mut bounds = PlotBounds::NOTHING;
        let mut count = 0usize;
        for p in points.iter().filter(|p| finite(p)) {
            bounds.extend_with(p);
            count += 1;
        }
        let side = ((count as f64 / 2.0).sqrt().ceil() as usize).clamp(1, 1024);
        let (min, cell) = if count == 0 {
            ([0.0, 0.0], [1.0, 1.0])
        } else {
            let (lo, hi) = (bounds.min(), bounds.max());
            let extent = |d: usize| ((hi[d] - lo[d]) / side as f64).max(f64::MIN_POSITIVE);
            (lo, [extent(0), extent(1)])
        };
        let mut set = Self {
            points,
            bounds,
            min,
            cell,
            dims: [side, side],
            starts: Vec::new(),
            order: Vec::new(),
        };
        let cells = side * side;
        let mut counts = vec![0u32; cells + 1];
        let cell_ids: Vec<Option<usize>> = set
            .points
            .iter()
            .map(|p| finite(p).then(|| set.cell_index(set.cell_of(p.x, p.y))))
            .collect();
        for c in cell_ids.iter().flatten() {
            counts[*c + 1] += 1;
        }
        for i in 0..cells {
            counts[i + 1] += counts[i];
        }
        let mut next = counts.clone();
        let mut order = vec![0u32; count];
        for (i, c) in cell_ids.iter().enumerate() {
            if let Some(c) = c {
                order[next[*c] as usize] = i as u32;
                next[*c] += 1;
            }
        }
        set.starts = counts;
        set.order = order;
        set
    }

    /// The points, in the caller's order.
    pub fn points(&self) -> &[PlotPoint] {
        &self.points
    }

    /// The bounding box of the finite points.
    pub fn bounds(&self) -> PlotBounds {
        self.bounds
    }

    fn cell_of(&self, x: f64, y: f64) -> [usize; 2] {
        let at = |d: usize, v: f64| {
            let c = ((v - self.min[d]) / self.cell[d]).floor();
            (c.max(0.0) as usize).min(self.dims[d] - 1)
        };
        [at(0, x), at(1, y)]
    }

    fn cell_index(&self, [cx, cy]: [usize; 2]) -> usize {
        cy * self.dims[0] + cx
    }

    /// The point nearest to `at` within `max_dist`, and its distance, where distances are
    /// measured after scaling x by `scale[0]` and y by `scale[1]` (screen points per unit).
    pub fn nearest(&self, at: [f64; 2], scale: [f64; 2], max_dist: f64) -> Option<(usize, f64)> {
        if self.order.is_empty() || !at[0].is_finite() || !at[1].is_finite() {
            return None;
        }
        let (sx, sy) = (scale[0].abs(), scale[1].abs());
        if sx == 0.0 || sy == 0.0 {
            return None;
        }
        let (rx, ry) = (max_dist / sx, max_dist / sy);
        let (lo, hi) = (self.bounds.min(), self.bounds.max());
        if at[0] + rx < lo[0] || at[0] - rx > hi[0] || at[1] + ry < lo[1] || at[1] - ry > hi[1] {
            return None;
        }
        let [x0, y0] = self.cell_of(at[0] - rx, at[1] - ry);
        let [x1, y1] = self.cell_of(at[0] + rx, at[1] + ry);
        let mut best: Option<(usize, f64)> = None;
        for cy in y0..=y1 {
            let row = self.cell_index([x0, cy])..=self.cell_index([x1, cy]);
            let (start, end) = (
                self.starts[*row.start()] as usize,
                self.starts[*row.end() + 1] as usize,
            );
            for &i in &self.order[start..end] {
                let p = self.points[i as usize];
                let d = ((p.x - at[0]) * sx).hypot((p.y - at[1]) * sy);
                if d <= max_dist && best.is_none_or(|(_, b)| d < b) {
                    best = Some((i as usize, d));
                }
            }
        }
        best
    }
}

thread_local! {
    /// The grid of drawn cells, kept between frames to spare a large allocation each frame.
    static DRAWN: std::cell::Cell<Vec<bool>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A [`PointSet`] as an egui_plot item: drawn as one mesh, hovered through the grid.
pub struct PointCloud<'a> {
    base: PlotItemBase,
    set: &'a PointSet,
    color: Color32,
    radius: f32,
}

impl<'a> PointCloud<'a> {
    /// The item `name` (shown in the legend) drawing `set` in `color`.
    pub fn new(name: &str, set: &'a PointSet, color: Color32, radius: f32) -> Self {
        Self {
            base: PlotItemBase::new(name.to_string()),
            set,
            color,
            radius,
        }
    }
}

impl PlotItem for PointCloud<'_> {
    fn shapes(&self, _ui: &Ui, transform: &PlotTransform, shapes: &mut Vec<Shape>) {
        let points = self.set.points();
        if points.is_empty() {
            return;
        }
        let frame = *transform.frame();
        let (x0, y0) = (transform.bounds().min()[0], transform.bounds().min()[1]);
        let (px0, py0) = (
            f64::from(transform.position_from_point_x(x0)),
            f64::from(transform.position_from_point_y(y0)),
        );
        let [sx, sy] = transform.dpos_dvalue();
        let highlight = if self.highlighted() { 1.5 } else { 1.0 };
        let visible = frame.expand(self.radius * 2.0);
        let positions = points.iter().filter_map(|p| {
            let at = pos2(
                (px0 + (p.x - x0) * sx) as f32,
                (py0 + (p.y - y0) * sy) as f32,
            );
            visible.contains(at).then_some(at)
        });
        if points.len() <= MAX_CIRCLES {
            let radius = self.radius * highlight;
            shapes.extend(positions.map(|at| Shape::circle_filled(at, radius, self.color)));
            return;
        }
        // Many points: squares of at least one point snapped to a one-point grid, in one
        // mesh; a grid cell already drawn is not drawn again, so a zoomed-out view of dense
        // clusters costs what the covered area does.
        let side = (self.radius * highlight).max(1.0);
        let origin = visible.min;
        let (cols, rows) = (
            visible.width().ceil().max(1.0) as usize,
            visible.height().ceil().max(1.0) as usize,
        );
        let mut drawn = DRAWN.take();
        drawn.clear();
        drawn.resize(cols * rows, false);
        let mut mesh = Mesh::default();
        let most = points.len().min(cols * rows);
        mesh.reserve_vertices(most * 4);
        mesh.reserve_triangles(most * 2);
        for at in positions {
            let (cx, cy) = ((at.x - origin.x) as usize, (at.y - origin.y) as usize);
            let Some(cell) = drawn.get_mut(cy.min(rows - 1) * cols + cx.min(cols - 1)) else {
                continue;
            };
            if std::mem::replace(cell, true) {
                continue;
            }
            let center = pos2(origin.x + cx as f32 + 0.5, origin.y + cy as f32 + 0.5);
            mesh.add_colored_rect(Rect::from_center_size(center, vec2(side, side)), self.color);
        }
        shapes.push(Shape::mesh(mesh));
        DRAWN.set(drawn);
    }

    fn initialize(&mut self, _x_range: std::ops::RangeInclusive<f64>) {}

    fn color(&self) -> Color32 {
        self.color
    }

    fn geometry(&self) -> PlotGeometry<'_> {
        PlotGeometry::Points(self.set.points())
    }

    fn bounds(&self) -> PlotBounds {
        self.set.bounds()
    }

    fn base(&self) -> &PlotItemBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut PlotItemBase {
        &mut self.base
    }

    fn find_closest(&self, point: egui::Pos2, transform: &PlotTransform) -> Option<ClosestElem> {
        let value = transform.value_from_position(point);
        // egui_plot keeps only items within the interaction radius; search a little beyond.
        let (index, dist) = self
            .set
            .nearest([value.x, value.y], transform.dpos_dvalue(), 32.0)?;
        Some(ClosestElem {
            index,
            dist_sq: (dist * dist) as f32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scattered(n: usize) -> Vec<PlotPoint> {
        let mut state = 0x2545_f491_u64;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let x = (state % 10_000) as f64 / 100.0;
                let y = ((state >> 20) % 10_000) as f64 / 300.0 - 10.0;
                PlotPoint::new(x, y)
            })
            .collect()
    }

    fn brute_force(points: &[PlotPoint], at: [f64; 2], scale: [f64; 2]) -> (usize, f64) {
        points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    i,
                    ((p.x - at[0]) * scale[0]).hypot((p.y - at[1]) * scale[1]),
                )
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap()
    }

    #[test]
    fn the_index_returns_the_nearest_point() {
        let points = scattered(20_000);
        let set = PointSet::new(points.clone());
        for (k, at) in [[50.0, 5.0], [0.0, -10.0], [99.9, 23.3], [12.34, 0.5]]
            .into_iter()
            .enumerate()
        {
            let scale = if k % 2 == 0 { [1.0, 1.0] } else { [8.0, -3.0] };
            let (want, dist) = brute_force(&points, at, scale);
            let (got, got_dist) = set.nearest(at, scale, 1e9).unwrap();
            assert_eq!(got_dist, dist, "at {at:?}");
            assert_eq!(points[got], points[want], "at {at:?}");
            // Also found with a search radius just above its distance.
            assert_eq!(set.nearest(at, scale, dist + 1e-9).unwrap().1, dist);
        }
    }

    #[test]
    fn nothing_is_found_beyond_the_radius() {
        let set = PointSet::new(vec![PlotPoint::new(0.0, 0.0), PlotPoint::new(10.0, 10.0)]);
        assert_eq!(set.nearest([5.0, 5.0], [1.0, 1.0], 2.0), None);
        assert_eq!(set.nearest([9.0, 10.0], [1.0, 1.0], 2.0), Some((1, 1.0)));
        assert_eq!(set.nearest([40.0, 40.0], [1.0, 1.0], 2.0), None);
    }

    #[test]
    fn non_finite_and_empty_sets_find_nothing() {
        assert_eq!(
            PointSet::new(Vec::new()).nearest([0.0, 0.0], [1.0, 1.0], 9.0),
            None
        );
        let set = PointSet::new(vec![
            PlotPoint::new(f64::NAN, 0.0),
            PlotPoint::new(1.0, 1.0),
        ]);
        assert_eq!(
            set.nearest([0.0, 0.0], [1.0, 1.0], 9.0).map(|(i, _)| i),
            Some(1)
        );
        // All points in one spot: a degenerate grid still answers.
        let set = PointSet::new(vec![PlotPoint::new(2.0, 2.0); 10]);
        assert!(set.nearest([2.0, 2.1], [1.0, 1.0], 1.0).is_some());
    }
}
