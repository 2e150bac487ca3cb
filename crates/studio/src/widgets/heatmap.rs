//! The attention heatmap: one head's weights as a texture, with token labels and hover text.

use egui::{Color32, Rect, Sense, Stroke, Vec2, pos2};
use hearth_engine::model::AttentionMaps;

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
}
