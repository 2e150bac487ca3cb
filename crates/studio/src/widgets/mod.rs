//! Drawing pieces the pages share: the loss plot, the plot controls, the attention heatmap
//! and the embedding scatter.

mod heatmap;
mod loss_plot;
mod plot_controls;
pub mod scatter;

pub use heatmap::attention_heatmap;
pub use loss_plot::{Band, PlotOptions, RefLine, Series, SeriesStyle, loss_plot};
pub use plot_controls::plot_controls_ui;

use egui::Color32;

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

/// `text` with its first letter in upper case, for a title.
pub fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_start_upper_case() {
        assert_eq!(capitalized("next-token loss"), "Next-token loss");
        assert_eq!(capitalized(""), "");
    }
}
