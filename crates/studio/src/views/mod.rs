//! The views objectives offer at evaluations, drawn by the monitor and compare pages: the
//! embedding map, a contrastive batch, a masked-token probe, and the attention pickers.

mod batch;
pub mod dynamics;
mod embedding_map;
mod probe;

pub use batch::contrastive_view_ui;
pub use embedding_map::{embedding_map_ui, embedding_scatter_ui};
pub use probe::masked_view_ui;

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
