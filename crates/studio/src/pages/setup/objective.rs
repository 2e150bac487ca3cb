//! Run setup's objective section: the objective, the settings it describes
//! ([`hearth_engine::objective::Setting`]), each drawn by its kind, and its recipe.

use super::{row, section};
use crate::action::Action;
use hearth_engine::model::SpecError;
use hearth_engine::objective::{
    ObjectiveKind, ObjectiveSpec, Recipe, Setting, SettingKind, SettingValue,
};
use hearth_engine::spec::RunSpec;

/// The objective and the settings it reads.
pub(super) fn objective_section_ui(
    ui: &mut egui::Ui,
    o: &mut ObjectiveSpec,
    errors: &[SpecError],
    actions: &mut Vec<Action>,
) {
    section(ui, "Objective", "objective_grid", |ui| {
        row(ui, errors, "Objective", "objective.kind", |ui| {
            egui::ComboBox::from_id_salt("objective_kind")
                .selected_text(o.kind.name())
                .show_ui(ui, |ui| {
                    for k in ObjectiveKind::all() {
                        let name = k.name().to_string();
                        ui.selectable_value(&mut o.kind, k, name);
                    }
                })
                .response
        });
        for setting in o.settings() {
            if setting.is_shown(o) {
                setting_row_ui(ui, o, &setting, errors, actions);
            }
        }
    });
    ui.add_space(8.0);
}

/// One setting's row: its label, the editor its kind asks for, its help on hover and any
/// error at its field.
fn setting_row_ui(
    ui: &mut egui::Ui,
    o: &mut ObjectiveSpec,
    setting: &Setting,
    errors: &[SpecError],
    actions: &mut Vec<Action>,
) {
    row(ui, errors, &setting.label, &setting.field(), |ui| {
        let (response, value) = setting_editor_ui(ui, setting, setting.read(o), actions);
        if let Some(value) = value {
            setting.write(o, value);
        }
        if setting.help.is_empty() {
            response
        } else {
            response.on_hover_text(setting.help.as_ref())
        }
    });
}

/// The editor of a setting of `value`; returns its response and the new value when the user
/// changed it.
fn setting_editor_ui(
    ui: &mut egui::Ui,
    setting: &Setting,
    value: SettingValue,
    actions: &mut Vec<Action>,
) -> (egui::Response, Option<SettingValue>) {
    match (&setting.kind, value) {
        (SettingKind::Number { range, speed }, SettingValue::Number(mut v)) => {
            let r = ui.add(
                egui::DragValue::new(&mut v)
                    .speed(*speed)
                    .range(range.clone()),
            );
            let changed = r.changed();
            (r, changed.then_some(SettingValue::Number(v)))
        }
        (SettingKind::LogNumber { range }, SettingValue::Number(mut v)) => {
            let r = ui.add(egui::Slider::new(&mut v, range.clone()).logarithmic(true));
            let changed = r.changed();
            (r, changed.then_some(SettingValue::Number(v)))
        }
        (SettingKind::Integer { range }, SettingValue::Number(v)) => {
            let mut whole = v.round() as i64;
            let r = ui.add(egui::DragValue::new(&mut whole).range(range.clone()));
            let changed = r.changed();
            (r, changed.then_some(SettingValue::Number(whole as f64)))
        }
        (SettingKind::Flag { text }, SettingValue::Flag(mut on)) => {
            let r = ui.checkbox(&mut on, *text);
            let changed = r.changed();
            (r, changed.then_some(SettingValue::Flag(on)))
        }
        (SettingKind::Choice { options }, SettingValue::Text(current)) => {
            let mut picked = None;
            let r = egui::ComboBox::from_id_salt(setting.key.as_ref())
                .selected_text(current.as_str())
                .show_ui(ui, |ui| {
                    for option in options {
                        if ui.selectable_label(current == *option, *option).clicked() {
                            picked = Some(SettingValue::Text(option.to_string()));
                        }
                    }
                })
                .response;
            (r, picked)
        }
        (SettingKind::Text { hint }, SettingValue::Text(mut text)) => {
            let r = ui.add(egui::TextEdit::singleline(&mut text).hint_text(*hint));
            let changed = r.changed();
            (r, changed.then_some(SettingValue::Text(text)))
        }
        (SettingKind::File { hint }, SettingValue::Text(mut text)) => {
            let inner = ui.horizontal(|ui| {
                let r = ui.add(
                    egui::TextEdit::singleline(&mut text)
                        .hint_text(*hint)
                        .desired_width(180.0),
                );
                if ui.button("Browse…").clicked() {
                    actions.push(Action::PickObjectiveFile {
                        key: setting.key.to_string(),
                        title: format!("Choose the {}", setting.label.to_lowercase()),
                    });
                }
                r
            });
            let changed = inner.inner.changed();
            (inner.inner, changed.then_some(SettingValue::Text(text)))
        }
        // A setting that reads a value of another kind than it edits cannot be edited.
        (_, value) => (ui.label(format!("{value:?}")), None),
    }
}

/// The objective's recommended settings, whether the draft follows them, and the button that
/// puts them back.
pub(super) fn recipe_ui(ui: &mut egui::Ui, spec: &mut RunSpec) {
    let recipe = Recipe::of(&spec.objective.kind);
    let follows = spec.follows_recipe();
    ui.horizontal_wrapped(|ui| {
        ui.label(egui::RichText::new("Recipe:").strong());
        ui.label(recipe.describe());
        if follows {
            ui.label(egui::RichText::new("(as recommended)").weak());
        }
    })
    .response
    .on_hover_text(recipe.why);
    if ui
        .add_enabled(
            !follows,
            egui::Button::new("Reset to the objective's recipe"),
        )
        .on_hover_text(recipe.why)
        .on_disabled_hover_text(
            "The learning rate, warmup and objective options already follow the recipe",
        )
        .clicked()
    {
        spec.apply_recipe();
    }
    ui.add_space(8.0);
}
