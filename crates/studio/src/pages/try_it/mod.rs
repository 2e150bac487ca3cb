//! Try it page: a text-generating run answers a prompt, token by token, as it samples them. In
//! chat mode (when the run's tokenizer has a chat template) the conversation so far is rendered
//! with the template at every turn; side by side, a second run (say the base of a fine-tune)
//! answers the same prompt in a second column. Models load in the background and stay loaded
//! per run folder while the page is used.

mod answer;
mod models;

use crate::action::{Action, AppContext};
use crate::run_view::RunView;
pub use answer::Settings;
use answer::{Event, Job, Prompt};
use hearth_engine::data::chat::Message;
use hearth_engine::export::Layout;
use models::{ModelState, Models};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long loaded models stay in memory once the page is no longer shown.
const KEEP_LOADED: Duration = Duration::from_secs(180);

/// The prompt the page opens with: a question any chat model can answer.
pub const EXAMPLE_PROMPT: &str = "What is the capital of France?";

/// Where one answer stands.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnState {
    /// Waiting for the model to load.
    Waiting,
    /// Tokens are coming; how many so far.
    Writing(usize),
    /// Complete.
    Done {
        /// Tokens picked.
        tokens: usize,
        /// Seconds the sampling took.
        seconds: f64,
        /// Stop ended it before the model did.
        stopped: bool,
    },
    /// No answer: why.
    Failed(String),
}

/// One prompt and the answer of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// What the user wrote.
    pub prompt: String,
    /// Asked in chat mode (the conversation rendered with the template).
    pub chat: bool,
    /// What the model read (the rendered conversation, or the raw text) and its tokens.
    pub read: Option<(String, usize)>,
    /// The answer so far.
    pub answer: String,
    /// Where it stands.
    pub state: TurnState,
    /// The sampling seed.
    pub seed: u64,
    /// Said about how it was asked (a chat prompt answered as raw text).
    pub note: Option<String>,
}

impl Turn {
    /// True while the answer is still to come.
    pub fn is_open(&self) -> bool {
        matches!(self.state, TurnState::Waiting | TurnState::Writing(_))
    }
}

/// One column: a run and its turns.
#[derive(Default)]
struct Column {
    /// The run the turns were asked of.
    run: Option<PathBuf>,
    turns: Vec<Turn>,
    job: Option<Job>,
}

impl Column {
    /// Stops the answer being written and forgets the conversation.
    fn reset(&mut self, run: Option<PathBuf>) {
        if let Some(job) = self.job.take() {
            job.stop();
        }
        self.turns.clear();
        self.run = run;
    }

    fn is_busy(&self) -> bool {
        self.turns.last().is_some_and(Turn::is_open)
    }
}

/// The Try it page.
pub struct TryItPage {
    /// The prompt being written.
    pub prompt: String,
    /// Chat mode: the prompt is a user's turn, rendered with the run's chat template.
    pub chat: bool,
    /// How tokens are picked.
    pub settings: Settings,
    /// A second run answers beside the first.
    pub side_by_side: bool,
    /// Runs picked for the columns (else: the selected run, and its base or another run).
    choice: [Option<PathBuf>; 2],
    /// The selected run as last seen: selecting another run in the list takes over column 1.
    seen_selected: Option<PathBuf>,
    columns: [Column; 2],
    models: Models,
    /// When the page was last shown.
    last_shown: Instant,
    /// Answers started so far (each gets its own seed).
    asked: u64,
}

impl Default for TryItPage {
    fn default() -> Self {
        Self {
            prompt: EXAMPLE_PROMPT.to_string(),
            chat: true,
            settings: Settings::default(),
            side_by_side: false,
            choice: [None, None],
            seen_selected: None,
            columns: Default::default(),
            models: Models::default(),
            last_shown: Instant::now(),
            asked: 0,
        }
    }
}

/// Whether a run generates text (and so belongs on this page).
fn generates(run: &RunView) -> bool {
    Layout::of(&run.spec).decoder
}

/// The run of `runs` in `dir`.
fn find(runs: &[RunView], dir: &Path) -> Option<usize> {
    runs.iter().position(|r| r.dir == dir)
}

impl TryItPage {
    /// The turns of column `column` (0: left, 1: right), oldest first.
    pub fn turns(&self, column: usize) -> &[Turn] {
        self.columns.get(column).map_or(&[], |c| &c.turns)
    }

    /// The run folder column `column` answers with, once the page has been drawn.
    pub fn column_run(&self, column: usize) -> Option<&Path> {
        self.columns.get(column).and_then(|c| c.run.as_deref())
    }

    /// True while an answer is being written or waits for its model.
    pub fn is_busy(&self) -> bool {
        self.columns.iter().any(Column::is_busy)
    }

    /// True while a model loads or an answer is written: the app keeps drawing.
    pub fn is_working(&self) -> bool {
        self.is_busy() || self.models.is_loading()
    }

    /// Shows the run in `dir` in the first column.
    pub fn show_run(&mut self, dir: &Path) {
        self.choice[0] = Some(dir.to_path_buf());
    }

    /// Takes in loaded models and the answers' new text; starts answers whose model is ready.
    /// True when something changed.
    pub fn poll(&mut self, ctx: &egui::Context) -> bool {
        let mut changed = self.models.poll();
        for column in &mut self.columns {
            if let Some(job) = &column.job {
                let events = job.drain();
                changed |= !events.is_empty();
                for event in events {
                    let Some(turn) = column.turns.last_mut() else {
                        break;
                    };
                    // A model that broke while answering is loaded afresh for the next answer.
                    if let (Event::Broke(_), Some(dir)) = (&event, &column.run) {
                        self.models.forget(dir);
                    }
                    if apply(turn, event) {
                        column.job = None;
                    }
                }
            }
            let Some(dir) = column.run.clone() else {
                continue;
            };
            let waiting = column.job.is_none()
                && column
                    .turns
                    .last()
                    .is_some_and(|t| t.state == TurnState::Waiting);
            if !waiting {
                continue;
            }
            match self.models.state(&dir) {
                ModelState::Absent => self.models.want(&dir, ctx),
                ModelState::Loading(_) => {}
                ModelState::Failed(reason) => {
                    let reason = format!("the model did not load: {reason}");
                    if let Some(turn) = column.turns.last_mut() {
                        turn.state = TurnState::Failed(reason);
                    }
                    changed = true;
                }
                ModelState::Ready(model) => {
                    let model = std::sync::Arc::clone(model);
                    let n = column.turns.len();
                    let (prompt, note) = prompt_of(&column.turns, model.chat_template);
                    let turn = &mut column.turns[n - 1];
                    turn.note = note;
                    match Job::start(model, prompt, self.settings, turn.seed, ctx.clone()) {
                        Ok(job) => {
                            turn.state = TurnState::Writing(0);
                            column.job = Some(job);
                        }
                        Err(reason) => turn.state = TurnState::Failed(reason),
                    }
                    changed = true;
                }
            }
        }
        changed
    }

    /// Keeps the loaded models while the page is used; some minutes after it was last shown,
    /// and with nothing being written, they are let go.
    pub fn idle(&mut self, shown: bool) {
        if shown || self.is_working() {
            self.last_shown = Instant::now();
        } else if self.last_shown.elapsed() > KEEP_LOADED && self.models.len() > 0 {
            self.models.clear();
        }
    }

    /// Asks the prompt of each shown column.
    fn send(&mut self, ctx: &egui::Context, shown: usize) {
        let prompt = self.prompt.trim().to_string();
        if prompt.is_empty() || self.is_busy() {
            return;
        }
        self.asked += 1;
        let seed = seed_now() ^ self.asked;
        for column in self.columns.iter_mut().take(shown) {
            let Some(dir) = &column.run else {
                continue;
            };
            // A run that trained on since, or a model that failed to load, loads again.
            if self.models.stale(dir) {
                self.models.load(dir, ctx);
            } else {
                self.models.want(dir, ctx);
            }
            column.turns.push(Turn {
                prompt: prompt.clone(),
                chat: self.chat,
                read: None,
                answer: String::new(),
                state: TurnState::Waiting,
                seed,
                note: None,
            });
        }
        if self.chat {
            self.prompt.clear();
        }
        self.poll(ctx);
    }

    /// Stops the answers being written; answers still waiting for their model are dropped.
    fn stop(&mut self) {
        for column in &mut self.columns {
            if let Some(job) = &column.job {
                job.stop();
            }
            if let Some(turn) = column.turns.last_mut()
                && turn.state == TurnState::Waiting
            {
                turn.state = TurnState::Done {
                    tokens: 0,
                    seconds: 0.0,
                    stopped: true,
                };
            }
        }
    }

    /// The runs of the two columns: the chosen ones, else the selected run (or the first that
    /// generates text) and, beside it, its base run when it is a fine-tune, else another run.
    fn resolve(&mut self, ctx: &AppContext<'_>) -> [Option<usize>; 2] {
        let selected = ctx.selected.and_then(|i| ctx.runs.get(i));
        let selected_dir = selected.map(|r| r.dir.clone());
        if selected_dir != self.seen_selected {
            // A run picked in the list is the one to try.
            self.seen_selected = selected_dir;
            if selected.is_some_and(generates) {
                self.choice[0] = None;
            }
        }
        let usable = |i: &usize| generates(&ctx.runs[*i]);
        let chosen = |dir: &Option<PathBuf>| {
            dir.as_deref()
                .and_then(|d| find(ctx.runs, d))
                .filter(usable)
        };
        let first = chosen(&self.choice[0])
            .or(ctx.selected.filter(|i| *i < ctx.runs.len()).filter(usable))
            .or_else(|| crate::pages::runs::list_order(ctx.runs.len()).find(usable));
        let second = chosen(&self.choice[1]).or_else(|| {
            let first = first?;
            let base = ctx.runs[first]
                .spec
                .init
                .as_ref()
                .and_then(|init| find(ctx.runs, &init.from_run))
                .filter(usable);
            base.or_else(|| {
                crate::pages::runs::list_order(ctx.runs.len()).find(|i| *i != first && usable(i))
            })
            .or(Some(first))
        });
        [first, second]
    }

    /// Draws the page.
    #[must_use = "the app applies what the page asks for"]
    pub fn ui(&mut self, ui: &mut egui::Ui, ctx: &AppContext<'_>) -> Vec<Action> {
        self.last_shown = Instant::now();
        self.poll(ui.ctx());
        let resolved = self.resolve(ctx);
        let shown = if self.side_by_side { 2 } else { 1 };
        for (i, column) in self.columns.iter_mut().enumerate() {
            let run = resolved[i]
                .filter(|_| i < shown)
                .map(|r| ctx.runs[r].dir.clone());
            if column.run != run {
                column.reset(run);
            }
            // A chosen run starts loading as soon as it shows.
            if let Some(dir) = &column.run {
                self.models.want(dir, ui.ctx());
            }
        }
        ui.heading("Try it");
        ui.label(
            egui::RichText::new(
                "Ask a run that generates text: its newest checkpoint answers, token by token. \
                 Chat mode renders the conversation with the model's chat template; side by \
                 side, a second run (the base of a fine-tune, say) answers the same prompt.",
            )
            .weak(),
        );
        ui.add_space(4.0);
        if resolved[0].is_none() {
            ui.add_space(8.0);
            ui.label(
                "No run of this project generates text yet: train a next-token run (Dataset, \
                 then Run setup), or bring a model in with Import model… (a Hugging Face folder \
                 or a GGUF file such as SmolLM2).",
            );
            return Vec::new();
        }
        self.runs_row_ui(ui, ctx, resolved);
        self.settings_row_ui(ui);
        self.prompt_ui(ui, shown);
        ui.separator();
        let names: Vec<String> = resolved
            .iter()
            .map(|r| {
                r.map(|i| ctx.runs[i].name().to_string())
                    .unwrap_or_default()
            })
            .collect();
        if shown == 2 {
            let (models, columns) = (&self.models, &self.columns);
            ui.columns(2, |cols| {
                for (i, col) in cols.iter_mut().enumerate() {
                    column_ui(col, i, &names[i], models, &columns[i]);
                }
            });
        } else {
            column_ui(ui, 0, &names[0], &self.models, &self.columns[0]);
        }
        Vec::new()
    }

    /// The run of each column, and side by side on or off.
    fn runs_row_ui(
        &mut self,
        ui: &mut egui::Ui,
        ctx: &AppContext<'_>,
        resolved: [Option<usize>; 2],
    ) {
        ui.horizontal(|ui| {
            ui.label("Run");
            if let Some(dir) = run_combo(ui, "try_it_run_a", ctx, resolved[0]) {
                self.choice[0] = Some(dir);
            }
            ui.add_space(12.0);
            ui.checkbox(&mut self.side_by_side, "Side by side")
                .on_hover_text("A second run answers the same prompt in a second column");
            if self.side_by_side
                && let Some(dir) = run_combo(ui, "try_it_run_b", ctx, resolved[1])
            {
                self.choice[1] = Some(dir);
            }
            ui.add_space(12.0);
            ui.separator();
            let mut chat = self.chat;
            ui.selectable_value(&mut chat, true, "Chat").on_hover_text(
                "The prompt is your turn of a conversation, rendered with the run's chat \
                     template (runs whose tokenizer has none read it as raw text)",
            );
            ui.selectable_value(&mut chat, false, "Raw text")
                .on_hover_text("The run continues the prompt as it is");
            if chat != self.chat {
                self.chat = chat;
            }
            if let Some(i) = resolved[0]
                && let ModelState::Ready(model) = self.models.state(&ctx.runs[i].dir)
                && self.chat
                && !model.chat_template
            {
                ui.label(
                    egui::RichText::new("(no chat template: answers continue the raw text)").weak(),
                );
            }
        });
    }

    /// Temperature, top-k, top-p and the answer's length.
    fn settings_row_ui(&mut self, ui: &mut egui::Ui) {
        let s = &mut self.settings;
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Temperature");
            ui.add(egui::Slider::new(&mut s.temperature, 0.0..=2.0).step_by(0.05))
                .labelled_by(label.id)
                .on_hover_text("0: always the most likely token; 1: the model's own distribution");
            ui.add_space(8.0);
            let label = ui.label("Top-k");
            ui.add(egui::DragValue::new(&mut s.top_k).range(0..=1000))
                .labelled_by(label.id)
                .on_hover_text("Draw among the k most likely tokens only (0: among all)");
            ui.add_space(8.0);
            let label = ui.label("Top-p");
            ui.add(egui::Slider::new(&mut s.top_p, 0.05..=1.0).step_by(0.01))
                .labelled_by(label.id)
                .on_hover_text(
                    "Draw among the most likely tokens that together hold this probability \
                     (1: among all)",
                );
            ui.add_space(8.0);
            let label = ui.label("Max tokens");
            ui.add(egui::DragValue::new(&mut s.max_tokens).range(1..=4096))
                .labelled_by(label.id);
        });
    }

    /// The prompt box and its buttons.
    fn prompt_ui(&mut self, ui: &mut egui::Ui, shown: usize) {
        let busy = self.is_busy();
        let label = ui.label(if self.chat { "Message" } else { "Prompt" });
        let edit = ui
            .add(
                egui::TextEdit::multiline(&mut self.prompt)
                    .desired_rows(3)
                    .desired_width(f32::INFINITY)
                    // Enter asks; Shift+Enter starts a new line.
                    .return_key(egui::KeyboardShortcut::new(
                        egui::Modifiers::SHIFT,
                        egui::Key::Enter,
                    ))
                    .hint_text(if self.chat {
                        "Ask something (Enter sends, Shift+Enter starts a new line)"
                    } else {
                        "The start of a text for the run to continue"
                    }),
            )
            .labelled_by(label.id);
        let enter =
            edit.has_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter) && !i.modifiers.shift);
        let mut ask = enter;
        ui.horizontal(|ui| {
            let can = !busy && !self.prompt.trim().is_empty();
            ask |= ui
                .add_enabled(
                    can,
                    egui::Button::new(egui::RichText::new("Generate").strong()),
                )
                .on_hover_text(if shown == 2 {
                    "Both runs answer the prompt"
                } else {
                    "The run answers the prompt"
                })
                .clicked();
            if ui.add_enabled(busy, egui::Button::new("Stop")).clicked() {
                self.stop();
            }
            let any = self.columns.iter().any(|c| !c.turns.is_empty());
            if ui
                .add_enabled(any && !busy, egui::Button::new("New conversation"))
                .on_hover_text("Forget the turns so far")
                .clicked()
            {
                for column in &mut self.columns {
                    let run = column.run.clone();
                    column.reset(run);
                }
            }
        });
        if ask {
            self.send(ui.ctx(), shown);
        }
    }
}

/// Applies one event of a job to its turn; true when the answer is complete.
fn apply(turn: &mut Turn, event: Event) -> bool {
    match event {
        Event::Read { text, tokens } => turn.read = Some((text, tokens)),
        Event::Text { more, tokens } => {
            turn.answer.push_str(&more);
            turn.state = TurnState::Writing(tokens);
        }
        Event::Done {
            tokens,
            seconds,
            stopped,
        } => {
            turn.state = TurnState::Done {
                tokens,
                seconds,
                stopped,
            };
            return true;
        }
        Event::Failed(reason) | Event::Broke(reason) => {
            turn.state = TurnState::Failed(reason);
            return true;
        }
    }
    false
}

/// What the model reads for the last of `turns`: in chat mode (with a template) the
/// conversation so far, the answered chat turns and this one; otherwise this prompt as raw
/// text. With a note when a chat turn is read as raw text.
fn prompt_of(turns: &[Turn], has_template: bool) -> (Prompt, Option<String>) {
    let Some((last, before)) = turns.split_last() else {
        return (Prompt::Raw(String::new()), None);
    };
    if !last.chat {
        return (Prompt::Raw(last.prompt.clone()), None);
    }
    if !has_template {
        return (
            Prompt::Raw(last.prompt.clone()),
            Some(
                "this run's tokenizer has no chat template: the message was read as raw text"
                    .into(),
            ),
        );
    }
    let mut messages = Vec::new();
    for turn in before.iter().filter(|t| t.chat) {
        if matches!(turn.state, TurnState::Done { .. }) && !turn.answer.is_empty() {
            messages.push(Message::new("user", &turn.prompt));
            messages.push(Message::new("assistant", turn.answer.trim()));
        }
    }
    messages.push(Message::new("user", &last.prompt));
    (Prompt::Chat(messages), None)
}

/// A seed from the clock.
fn seed_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A list of the runs that generate text; returns the folder of a newly picked one.
fn run_combo(
    ui: &mut egui::Ui,
    id: &str,
    ctx: &AppContext<'_>,
    current: Option<usize>,
) -> Option<PathBuf> {
    let mut picked = None;
    let text = current.map_or("(none)", |i| ctx.runs[i].name());
    egui::ComboBox::from_id_salt(id)
        .selected_text(text)
        .width(220.0)
        .show_ui(ui, |ui| {
            for i in crate::pages::runs::list_order(ctx.runs.len()) {
                let run = &ctx.runs[i];
                if !generates(run) {
                    continue;
                }
                if ui
                    .selectable_label(current == Some(i), run.name())
                    .on_hover_text(run.dir.display().to_string())
                    .clicked()
                {
                    picked = Some(run.dir.clone());
                }
            }
        });
    picked
}

/// One column: its run's model state, then the turns.
fn column_ui(ui: &mut egui::Ui, index: usize, name: &str, models: &Models, column: &Column) {
    ui.horizontal(|ui| {
        ui.label(egui::RichText::new(name).strong());
        let Some(dir) = &column.run else {
            return;
        };
        match models.state(dir) {
            ModelState::Absent => {}
            ModelState::Loading(seconds) => {
                ui.spinner();
                ui.label(format!("loading… {seconds:.0} s"));
            }
            ModelState::Ready(model) => {
                ui.label(
                    egui::RichText::new(format!(
                        "step {} · {} · loaded in {:.1} s",
                        model.step,
                        model.backend.label(),
                        model.load_s
                    ))
                    .weak(),
                )
                .on_hover_text(model.checkpoint.display().to_string());
            }
            ModelState::Failed(reason) => {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!("cannot load: {reason}"),
                );
            }
        }
    });
    egui::ScrollArea::vertical()
        .id_salt(("try_it_answers", index))
        .stick_to_bottom(true)
        .auto_shrink([false, false])
        .show(ui, |ui| {
            if column.turns.is_empty() {
                ui.label(egui::RichText::new("The answers appear here.").weak());
            }
            for turn in &column.turns {
                turn_ui(ui, name, turn);
                ui.add_space(10.0);
            }
        });
}

/// One prompt and its answer.
fn turn_ui(ui: &mut egui::Ui, name: &str, turn: &Turn) {
    let visuals = ui.visuals().clone();
    if turn.chat {
        // The user's turn on a shaded card, the run's answer below it.
        egui::Frame::new()
            .fill(visuals.faint_bg_color)
            .corner_radius(6)
            .inner_margin(egui::Margin::symmetric(8, 6))
            .show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.label(egui::RichText::new("You").small().strong());
                ui.add(egui::Label::new(&turn.prompt).wrap());
            });
        ui.add_space(4.0);
        ui.label(
            egui::RichText::new(name)
                .small()
                .strong()
                .color(visuals.hyperlink_color),
        );
        if !turn.answer.is_empty() {
            ui.add(egui::Label::new(egui::RichText::new(&turn.answer).strong()).wrap());
        }
    } else {
        // The prompt, then its continuation.
        let mut job = egui::text::LayoutJob::default();
        let style = ui.style();
        egui::RichText::new(&turn.prompt).weak().append_to(
            &mut job,
            style,
            egui::FontSelection::Default,
            egui::Align::LEFT,
        );
        egui::RichText::new(&turn.answer).strong().append_to(
            &mut job,
            style,
            egui::FontSelection::Default,
            egui::Align::LEFT,
        );
        ui.add(egui::Label::new(job).wrap());
    }
    if let Some(note) = &turn.note {
        ui.label(
            egui::RichText::new(note)
                .small()
                .color(visuals.warn_fg_color),
        );
    }
    let read = turn
        .read
        .as_ref()
        .map(|(text, tokens)| format!("The model read {tokens} tokens:\n{text}"));
    let status = ui.horizontal(|ui| match &turn.state {
        TurnState::Waiting => {
            ui.spinner();
            ui.label(egui::RichText::new("loading the model…").small().weak());
        }
        TurnState::Writing(tokens) => {
            ui.spinner();
            ui.label(
                egui::RichText::new(format!("writing… {tokens} tokens"))
                    .small()
                    .weak(),
            );
        }
        TurnState::Done {
            tokens,
            seconds,
            stopped,
        } => {
            let rate = if *seconds > 0.0 {
                format!(" ({:.1} tokens/s)", *tokens as f64 / seconds)
            } else {
                String::new()
            };
            let how = if *stopped { "stopped after" } else { "" };
            let text = format!("{how} {tokens} tokens in {seconds:.1} s{rate}");
            ui.label(egui::RichText::new(text.trim()).small().weak());
        }
        TurnState::Failed(reason) => {
            ui.colored_label(visuals.error_fg_color, reason);
        }
    });
    if let Some(read) = read {
        status
            .response
            .on_hover_text(format!("{read}\n(seed {})", turn.seed));
    }
}
