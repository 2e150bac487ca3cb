//! The studio's keyboard shortcuts. One table, [`SHORTCUTS`], makes the key handling, the
//! help overlay and the hints in the buttons' tooltips, so the three never disagree. A key
//! produces the [`Action`]s its button produces.
//!
//! Shortcuts do not fire while a text field has keyboard focus (the keys are the text's),
//! except F1 and, with the help open, Escape. Space is left to a focused button or checkbox.

use crate::action::{Action, AppContext};
use crate::services::prefs::{PlotSettings, Tab, XAxis};
use egui::{Key, KeyboardShortcut, ModifierNames, Modifiers};
use hearth_engine::events::RunControl;
use hearth_engine::project::RunStatus;

/// What a shortcut does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Show a page.
    ShowPage(Tab),
    /// Start a run from the draft (Run setup's Start run).
    StartRun,
    /// Pause the monitored run, or resume it when paused.
    PauseResume,
    /// Stop the monitored run.
    StopRun,
    /// Tick the monitored run and show the Compare page.
    Compare,
    /// Loss axes on a log scale, or not.
    ToggleLogY,
    /// The next x axis: step, tokens, time.
    CycleXAxis,
    /// One notch more smoothing.
    MoreSmoothing,
    /// One notch less smoothing.
    LessSmoothing,
    /// Open or close the list of shortcuts.
    ToggleHelp,
    /// Close the list of shortcuts.
    CloseHelp,
}

/// Where a shortcut is listed in the help overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Switching pages.
    Pages,
    /// Starting and controlling runs.
    Runs,
    /// Loss charts (on the Monitor and Compare pages).
    Charts,
    /// The shortcut list itself.
    Help,
}

impl Group {
    /// Every group, in the overlay's order.
    pub const ALL: [Group; 4] = [Group::Pages, Group::Runs, Group::Charts, Group::Help];

    /// The group's heading in the overlay.
    pub fn title(self) -> &'static str {
        match self {
            Group::Pages => "Pages",
            Group::Runs => "Runs",
            Group::Charts => "Charts (Monitor and Compare pages)",
            Group::Help => "Help",
        }
    }
}

/// One key and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortcut {
    /// What it does.
    pub command: Command,
    /// The key, with its modifiers.
    pub keys: KeyboardShortcut,
    /// What it does, in the overlay and in the tooltip of its button.
    pub description: &'static str,
    /// Where the overlay lists it.
    pub group: Group,
}

const fn shortcut(
    command: Command,
    modifiers: Modifiers,
    key: Key,
    description: &'static str,
    group: Group,
) -> Shortcut {
    Shortcut {
        command,
        keys: KeyboardShortcut::new(modifiers, key),
        description,
        group,
    }
}

/// Every shortcut, in the overlay's order. Ctrl is Cmd on a Mac.
pub const SHORTCUTS: [Shortcut; 18] = {
    use Command as C;
    use Group as G;
    use Modifiers as M;
    [
        shortcut(
            C::ShowPage(Tab::Dataset),
            M::COMMAND,
            Key::Num1,
            "Show the Dataset page",
            G::Pages,
        ),
        shortcut(
            C::ShowPage(Tab::Setup),
            M::COMMAND,
            Key::Num2,
            "Show the Run setup page",
            G::Pages,
        ),
        shortcut(
            C::ShowPage(Tab::Monitor),
            M::COMMAND,
            Key::Num3,
            "Show the Monitor page",
            G::Pages,
        ),
        shortcut(
            C::ShowPage(Tab::Compare),
            M::COMMAND,
            Key::Num4,
            "Show the Compare page",
            G::Pages,
        ),
        shortcut(
            C::ShowPage(Tab::Improve),
            M::COMMAND,
            Key::Num5,
            "Show the Improve page",
            G::Pages,
        ),
        shortcut(
            C::ShowPage(Tab::TryIt),
            M::COMMAND,
            Key::Num6,
            "Show the Try it page",
            G::Pages,
        ),
        shortcut(
            C::ShowPage(Tab::Sweep),
            M::COMMAND,
            Key::Num7,
            "Show the Sweep page",
            G::Pages,
        ),
        shortcut(
            C::Compare,
            M::NONE,
            Key::C,
            "Compare the ticked runs and the monitored one",
            G::Pages,
        ),
        shortcut(
            C::StartRun,
            M::COMMAND,
            Key::Enter,
            "Start a run with the Run setup settings",
            G::Runs,
        ),
        shortcut(
            C::PauseResume,
            M::NONE,
            Key::Space,
            "Pause or resume the monitored run",
            G::Runs,
        ),
        shortcut(
            C::StopRun,
            M::COMMAND,
            Key::Period,
            "Stop the monitored run after its current step",
            G::Runs,
        ),
        shortcut(
            C::ToggleLogY,
            M::NONE,
            Key::L,
            "Log scale on the loss axes, on or off",
            G::Charts,
        ),
        shortcut(
            C::CycleXAxis,
            M::NONE,
            Key::X,
            "Next x axis: step, tokens, time",
            G::Charts,
        ),
        shortcut(
            C::MoreSmoothing,
            M::NONE,
            Key::CloseBracket,
            "More smoothing",
            G::Charts,
        ),
        shortcut(
            C::LessSmoothing,
            M::NONE,
            Key::OpenBracket,
            "Less smoothing",
            G::Charts,
        ),
        shortcut(
            C::ToggleHelp,
            M::NONE,
            Key::F1,
            "Show or hide the keyboard shortcuts",
            G::Help,
        ),
        shortcut(
            C::ToggleHelp,
            M::NONE,
            Key::Questionmark,
            "Show or hide the keyboard shortcuts",
            G::Help,
        ),
        shortcut(
            C::CloseHelp,
            M::NONE,
            Key::Escape,
            "Close the keyboard shortcuts",
            G::Help,
        ),
    ]
};

/// Smoothing weights the smoothing keys step through.
const SMOOTHING_STEPS: [f64; 7] = [0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99];

/// How a shortcut reads: `Ctrl+1`, `Space`, `?`. On a Mac egui's own formatting (⌘ when the
/// font has it); elsewhere the modifier names with the key's symbol (`Ctrl+.`, not
/// `Ctrl+Period`).
pub fn keys_text(ctx: &egui::Context, keys: &KeyboardShortcut) -> String {
    if ctx.os().is_mac() {
        return ctx.format_shortcut(keys);
    }
    let names = ModifierNames {
        is_short: true,
        ..ModifierNames::NAMES
    };
    keys.format(&names, false)
}

/// The keys of `command`, e.g. `F1, ?`.
pub fn command_keys(ctx: &egui::Context, command: Command) -> String {
    SHORTCUTS
        .iter()
        .filter(|s| s.command == command)
        .map(|s| keys_text(ctx, &s.keys))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A button's tooltip: what its command does and its keys, e.g.
/// `Pause or resume the monitored run (Space)`.
pub fn hint(ctx: &egui::Context, command: Command) -> String {
    let description = SHORTCUTS
        .iter()
        .find(|s| s.command == command)
        .map_or("", |s| s.description);
    format!("{description} ({})", command_keys(ctx, command))
}

/// True for the keys that act while a text field has keyboard focus: they type nothing.
fn fires_while_typing(shortcut: &Shortcut) -> bool {
    matches!(shortcut.keys.logical_key, Key::F1 | Key::Escape)
}

/// The commands whose keys were pressed this frame (those key presses are consumed).
/// `help_open`: the overlay is shown (Escape closes it, and is left alone otherwise).
pub fn pressed(ctx: &egui::Context, help_open: bool) -> Vec<Command> {
    let typing = ctx.text_edit_focused();
    let any_focus = ctx.memory(|m| m.focused().is_some());
    let mut commands = Vec::new();
    for s in &SHORTCUTS {
        if typing && !fires_while_typing(s) {
            continue;
        }
        if s.command == Command::CloseHelp && !help_open {
            continue;
        }
        // A focused button or checkbox takes Space as a click.
        if s.keys.logical_key == Key::Space && any_focus {
            continue;
        }
        if ctx.input_mut(|i| i.consume_shortcut(&s.keys)) && !commands.contains(&s.command) {
            commands.push(s.command);
        }
    }
    commands
}

/// The next smoothing weight up (`more`) or down the ladder from `weight`.
pub fn next_smoothing(weight: f64, more: bool) -> f64 {
    const EPS: f64 = 1e-9;
    if more {
        SMOOTHING_STEPS
            .into_iter()
            .find(|&w| w > weight + EPS)
            .unwrap_or(SMOOTHING_STEPS[SMOOTHING_STEPS.len() - 1])
    } else {
        SMOOTHING_STEPS
            .into_iter()
            .rev()
            .find(|&w| w < weight - EPS)
            .unwrap_or(0.0)
    }
}

/// The axis after `axis` in the menu's order (wrapping around).
pub fn next_x_axis(axis: XAxis) -> XAxis {
    let at = XAxis::ALL.iter().position(|&a| a == axis).unwrap_or(0);
    XAxis::ALL[(at + 1) % XAxis::ALL.len()]
}

/// What `command` asks of the app: the actions its button would produce. `help_open` tells
/// whether the shortcut list is shown.
pub fn actions(command: Command, ctx: &AppContext<'_>, help_open: bool) -> Vec<Action> {
    let monitored = ctx.selected.and_then(|i| ctx.runs.get(i).map(|r| (i, r)));
    let chart_page = matches!(ctx.prefs.tab, Tab::Monitor | Tab::Compare);
    let plot = |change: fn(&mut PlotSettings)| {
        let mut plot = ctx.plot();
        change(&mut plot);
        if chart_page {
            vec![Action::SetPlot(plot)]
        } else {
            Vec::new()
        }
    };
    match command {
        Command::ShowPage(tab) => vec![Action::ShowTab(tab)],
        Command::StartRun => vec![Action::StartRun],
        Command::PauseResume => match monitored {
            Some((run, r)) if r.is_live() => {
                let control = if r.status == RunStatus::Paused {
                    RunControl::Resume
                } else {
                    RunControl::Pause
                };
                vec![Action::Control { run, control }]
            }
            _ => Vec::new(),
        },
        Command::StopRun => match monitored {
            Some((run, r)) if r.is_live() => vec![Action::Control {
                run,
                control: RunControl::Stop,
            }],
            _ => Vec::new(),
        },
        Command::Compare => {
            let mut out = Vec::new();
            if let Some((run, r)) = monitored
                && !r.checked
            {
                out.push(Action::SetCompared {
                    run,
                    compared: true,
                });
            }
            out.push(Action::ShowTab(Tab::Compare));
            out
        }
        Command::ToggleLogY => plot(|p| p.log_y = !p.log_y),
        Command::CycleXAxis => plot(|p| p.x_axis = next_x_axis(p.x_axis)),
        Command::MoreSmoothing => plot(|p| p.smoothing = next_smoothing(p.smoothing, true)),
        Command::LessSmoothing => plot(|p| p.smoothing = next_smoothing(p.smoothing, false)),
        Command::ToggleHelp => vec![Action::ShowShortcuts(!help_open)],
        Command::CloseHelp => vec![Action::ShowShortcuts(false)],
    }
}

/// Consumes this frame's shortcut keys and returns the actions they ask for.
pub fn handle(egui_ctx: &egui::Context, ctx: &AppContext<'_>, help_open: bool) -> Vec<Action> {
    pressed(egui_ctx, help_open)
        .into_iter()
        .flat_map(|command| actions(command, ctx, help_open))
        .collect()
}

/// The top bar's button that opens (or closes) the list of shortcuts.
pub fn help_button_ui(ui: &mut egui::Ui, help_open: bool, actions: &mut Vec<Action>) {
    if ui
        .selectable_label(help_open, "Shortcuts")
        .on_hover_text(hint(ui.ctx(), Command::ToggleHelp))
        .clicked()
    {
        actions.push(Action::ShowShortcuts(!help_open));
    }
}

/// The help overlay: every shortcut by group. Returns true when the user closes it (a click
/// outside it or its Close button; the keys arrive as [`Command::CloseHelp`]).
pub fn help_ui(ctx: &egui::Context) -> bool {
    let response = egui::Modal::new(egui::Id::unique("keyboard_shortcuts")).show(ctx, |ui| {
        ui.set_min_width(380.0);
        ui.heading("Keyboard shortcuts");
        ui.label(
            egui::RichText::new("While a text field is edited, only F1 and Escape act here.")
                .weak(),
        );
        for group in Group::ALL {
            ui.add_space(6.0);
            ui.label(egui::RichText::new(group.title()).strong());
            egui::Grid::new(("shortcut_group", group as u8))
                .num_columns(2)
                .min_col_width(96.0)
                .spacing([12.0, 4.0])
                .show(ui, |ui| {
                    // One row per command: keys that do the same are listed together.
                    let mut listed: Vec<Command> = Vec::new();
                    for s in SHORTCUTS.iter().filter(|s| s.group == group) {
                        if listed.contains(&s.command) {
                            continue;
                        }
                        listed.push(s.command);
                        ui.label(egui::RichText::new(command_keys(ctx, s.command)).monospace());
                        ui.label(s.description);
                        ui.end_row();
                    }
                });
        }
        ui.add_space(8.0);
        ui.button("Close").clicked()
    });
    response.inner || response.backdrop_response.clicked()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_a_key_and_no_key_is_taken_twice() {
        for (i, a) in SHORTCUTS.iter().enumerate() {
            for b in &SHORTCUTS[i + 1..] {
                assert_ne!(a.keys, b.keys, "{:?} and {:?}", a.command, b.command);
            }
            assert!(!a.description.is_empty());
        }
        for tab in Tab::ALL {
            assert!(
                SHORTCUTS
                    .iter()
                    .any(|s| s.command == Command::ShowPage(tab))
            );
        }
    }

    #[test]
    fn keys_read_as_a_user_types_them() {
        let ctx = egui::Context::default();
        ctx.set_os(egui::os::OperatingSystem::Nix);
        assert_eq!(command_keys(&ctx, Command::ShowPage(Tab::Setup)), "Ctrl+2");
        assert_eq!(command_keys(&ctx, Command::StopRun), "Ctrl+.");
        assert_eq!(command_keys(&ctx, Command::ToggleHelp), "F1, ?");
        assert_eq!(
            hint(&ctx, Command::PauseResume),
            "Pause or resume the monitored run (Space)"
        );
    }

    #[test]
    fn smoothing_steps_up_and_down_and_stays_in_range() {
        assert_eq!(next_smoothing(0.0, true), 0.3);
        assert_eq!(next_smoothing(0.8, true), 0.9);
        assert_eq!(next_smoothing(0.85, true), 0.9);
        assert_eq!(next_smoothing(0.99, true), 0.99);
        assert_eq!(next_smoothing(0.8, false), 0.6);
        assert_eq!(next_smoothing(0.85, false), 0.8);
        assert_eq!(next_smoothing(0.0, false), 0.0);
    }

    #[test]
    fn the_x_axis_cycles_through_every_axis() {
        let mut axis = XAxis::Step;
        let mut seen = Vec::new();
        for _ in 0..XAxis::ALL.len() {
            axis = next_x_axis(axis);
            seen.push(axis);
        }
        assert_eq!(axis, XAxis::Step);
        assert_eq!(seen.len(), XAxis::ALL.len());
        assert!(XAxis::ALL.iter().all(|a| seen.contains(a)));
    }
}
