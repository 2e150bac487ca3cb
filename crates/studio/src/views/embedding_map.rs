//! The embedding map: the probe set's embeddings in 2-D over the snapshots.

use crate::widgets::scatter::{PointCloud, PointSet};
use hearth_engine::events::EmbeddingSnapshot;
use std::sync::Arc;

/// The probe set's embeddings in 2-D, queries and their positives, with a slider over the
/// snapshots; hovering a point shows its text. `index` is the snapshot shown (`None`: the
/// newest, following new ones).
pub fn embedding_map_ui(
    ui: &mut egui::Ui,
    maps: &[EmbeddingSnapshot],
    index: &mut Option<usize>,
    height: f32,
    groups: [&'static str; 2],
) {
    let Some(last) = maps.len().checked_sub(1) else {
        return;
    };
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
    embedding_scatter_ui(ui, "embedding_map", &maps[shown], height, groups);
}

/// An embedding map's points split into query and positive halves, indexed for hovering;
/// built once per snapshot and kept in egui's memory.
pub struct EmbeddingCloud {
    fingerprint: u64,
    queries: PointSet,
    positives: PointSet,
    /// The map's point index of each query half, then of each positive half.
    query_ids: Vec<usize>,
    positive_ids: Vec<usize>,
}

impl EmbeddingCloud {
    /// Splits and indexes `map`.
    pub fn new(map: &EmbeddingSnapshot) -> Self {
        let (query_ids, positive_ids): (Vec<usize>, Vec<usize>) =
            (0..map.points.len()).partition(|&i| map.groups.get(i).copied().unwrap_or(0) == 0);
        let set = |ids: &[usize]| {
            PointSet::new(
                ids.iter()
                    .map(|&i| {
                        egui_plot::PlotPoint::new(
                            f64::from(map.points[i][0]),
                            f64::from(map.points[i][1]),
                        )
                    })
                    .collect(),
            )
        };
        Self {
            fingerprint: embedding_fingerprint(map),
            queries: set(&query_ids),
            positives: set(&positive_ids),
            query_ids,
            positive_ids,
        }
    }

    /// Whether this was built from `map` (same step, points and groups).
    pub fn is_of(&self, map: &EmbeddingSnapshot) -> bool {
        self.fingerprint == embedding_fingerprint(map)
    }
}

/// A hash of a snapshot's step, points and groups: a new snapshot, or another run's, differs.
fn embedding_fingerprint(map: &EmbeddingSnapshot) -> u64 {
    let mix = |h: u64, v: u64| (h ^ v).wrapping_mul(0x0100_0000_01b3).rotate_left(5);
    let mut h = mix(0xcbf2_9ce4_8422_2325, map.step as u64);
    h = mix(h, map.points.len() as u64);
    for p in &map.points {
        h = mix(
            h,
            u64::from(p[0].to_bits()) << 32 | u64::from(p[1].to_bits()),
        );
    }
    for chunk in map.groups.chunks(8) {
        h = chunk.iter().fold(h, |h, &g| mix(h, u64::from(g)));
    }
    h
}

/// One embedding map as a scatter of its two groups (`groups` names them: query and positive
/// halves, first and second sentences); hover a point for its text.
pub fn embedding_scatter_ui(
    ui: &mut egui::Ui,
    id: &str,
    map: &EmbeddingSnapshot,
    height: f32,
    groups: [&'static str; 2],
) {
    let cache_id = egui::Id::unique("embedding_cloud").with(id);
    let cached: Option<Arc<EmbeddingCloud>> = ui.data(|d| d.get_temp(cache_id));
    let cloud = match cached {
        Some(cloud) if cloud.is_of(map) => cloud,
        _ => {
            let cloud = Arc::new(EmbeddingCloud::new(map));
            ui.data_mut(|d| d.insert_temp(cache_id, cloud.clone()));
            cloud
        }
    };
    let radius = if map.points.len() > 20_000 { 1.0 } else { 3.0 };
    let texts = &map.texts;
    let hover_cloud = cloud.clone();
    egui_plot::Plot::new(id)
        .height(height.max(160.0))
        .data_aspect(1.0)
        .legend(egui_plot::Legend::default())
        .show_axes([false, false])
        .label_formatter(move |hover| match hover {
            egui_plot::HoverPosition::NearDataPoint {
                plot_name, index, ..
            } => {
                let ids = if *plot_name == groups[0] {
                    &hover_cloud.query_ids
                } else {
                    &hover_cloud.positive_ids
                };
                ids.get(*index)
                    .and_then(|&i| texts.get(i))
                    .map(|t| format!("{plot_name} #{index}\n{}", t.replace('\n', " ")))
            }
            egui_plot::HoverPosition::Elsewhere { .. } => None,
        })
        .show(ui, |plot_ui| {
            plot_ui.add(PointCloud::new(
                groups[0],
                &cloud.queries,
                egui::Color32::from_rgb(0x4e, 0x9a, 0xf1),
                radius,
            ));
            plot_ui.add(PointCloud::new(
                groups[1],
                &cloud.positives,
                egui::Color32::from_rgb(0xf2, 0x8e, 0x2b),
                radius,
            ));
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(step: usize, shift: f32) -> EmbeddingSnapshot {
        EmbeddingSnapshot {
            step,
            points: (0..1000)
                .map(|i| [i as f32 + shift, (i % 7) as f32])
                .collect(),
            groups: (0..1000).map(|i| (i % 2) as u8).collect(),
            texts: (0..1000).map(|i| format!("text {i}")).collect(),
        }
    }

    #[test]
    fn the_cached_cloud_is_rebuilt_when_the_snapshot_changes() {
        let cloud = EmbeddingCloud::new(&map(10, 0.0));
        assert!(cloud.is_of(&map(10, 0.0)));
        assert!(!cloud.is_of(&map(20, 0.0)), "a newer snapshot");
        assert!(
            !cloud.is_of(&map(10, 0.5)),
            "another run's snapshot at the same step"
        );
        let mut regrouped = map(10, 0.0);
        regrouped.groups[3] = 0;
        assert!(!cloud.is_of(&regrouped));
    }

    #[test]
    fn the_halves_keep_their_points_and_texts() {
        let snapshot = map(10, 0.0);
        let cloud = EmbeddingCloud::new(&snapshot);
        assert_eq!(cloud.queries.points().len(), 500);
        assert_eq!(cloud.positives.points().len(), 500);
        // The positive nearest to (5, 5) is point 5 of the map: the third positive.
        let (index, _) = cloud
            .positives
            .nearest([5.0, 5.0], [1.0, 1.0], 1.0)
            .unwrap();
        assert_eq!(snapshot.texts[cloud.positive_ids[index]], "text 5");
    }
}
