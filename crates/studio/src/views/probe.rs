//! A masked-token probe: the probe text with its masked positions and the predictions.

use hearth_engine::events::MaskedProbe;

/// The probe text with its masked positions highlighted; hover one for the top predictions.
pub fn masked_view_ui(ui: &mut egui::Ui, view: &MaskedProbe) {
    ui.label(egui::RichText::new("Masked-token probe").strong());
    let correct = view
        .masked
        .iter()
        .zip(&view.predictions)
        .filter(|(t, p)| p.first().is_some_and(|(tok, _)| *tok == view.tokens[**t]))
        .count();
    ui.label(
        egui::RichText::new(format!(
            "step {}: top prediction right at {correct} of {} masked positions (hover a highlighted token)",
            view.step,
            view.masked.len()
        ))
        .weak(),
    );
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 0.0;
        for (t, token) in view.tokens.iter().enumerate() {
            match view.masked.iter().position(|&m| m == t) {
                Some(k) => {
                    let preds = &view.predictions[k];
                    let right = preds.first().is_some_and(|(tok, _)| tok == token);
                    let color = if right {
                        egui::Color32::from_rgb(0x2e, 0x7d, 0x32)
                    } else {
                        egui::Color32::from_rgb(0xb7, 0x1c, 0x1c)
                    };
                    let text = egui::RichText::new(token)
                        .monospace()
                        .background_color(color)
                        .color(egui::Color32::WHITE);
                    let tip: Vec<String> = preds
                        .iter()
                        .map(|(tok, p)| format!("'{tok}' {:.1}%", p * 100.0))
                        .collect();
                    ui.label(text)
                        .on_hover_text(format!("masked '{token}'\npredicted: {}", tip.join(", ")));
                }
                None => {
                    ui.label(egui::RichText::new(token).monospace());
                }
            }
        }
    });
}
