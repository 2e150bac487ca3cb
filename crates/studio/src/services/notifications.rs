//! Desktop notifications when a run trained in this session finishes, fails or its embeddings
//! collapse, through the freedesktop notification service (D-Bus, in pure Rust). Runs that
//! were already over when the project was opened never notify; each run notifies once per
//! outcome (finish and failure again only after it was resumed, collapse once per run). Sending happens on a background thread; where no notification service
//! runs, notices are dropped with a debug log line.

use crate::action::Action;
use crate::run_view::RunView;
use crate::services::prefs::Prefs;
use crate::widgets::capitalized;
use hearth_engine::objective::ObjectiveSpec;
use hearth_engine::project::RunStatus;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

/// How a run ended, as far as the desktop is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It trained to its last step.
    Finished,
    /// It stopped on an error (divergence, bad data, a crash of its worker).
    Failed,
    /// Its latest evaluation shows collapsed embeddings (every text nearly one vector).
    Collapsed,
}

/// One notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The run's folder.
    pub run: PathBuf,
    /// What happened.
    pub outcome: Outcome,
    /// The notification's title.
    pub summary: String,
    /// Its text.
    pub body: String,
}

/// What the watch needs to know of a run.
#[derive(Debug, Clone)]
pub struct RunState<'a> {
    /// The run's folder (its identity).
    pub dir: &'a Path,
    /// Its name as the studio shows it.
    pub name: &'a str,
    /// Where it stands.
    pub status: &'a RunStatus,
    /// A worker of this session trains it.
    pub live: bool,
    /// Last step and its training loss.
    pub last_step: Option<(usize, f32)>,
    /// What it trains (names that training loss in a notice).
    pub objective: &'a ObjectiveSpec,
    /// Steps it trains in all.
    pub total_steps: usize,
    /// Why its latest evaluation counts as collapsed, if it does.
    pub collapse: Option<String>,
}

impl<'a> RunState<'a> {
    /// The state of a listed run.
    pub fn of(run: &'a RunView) -> Self {
        Self {
            dir: &run.dir,
            name: run.name(),
            status: &run.status,
            live: run.is_live(),
            last_step: run.last_step,
            objective: &run.spec.objective,
            total_steps: run.spec.train.steps,
            collapse: crate::pages::runs::collapse_of(run),
        }
    }
}

/// Which runs this session watches and which outcomes it already told.
#[derive(Debug, Default)]
pub struct RunWatch {
    /// Runs trained in this session, with the outcomes told since they last trained.
    watched: HashMap<PathBuf, HashSet<Outcome>>,
    /// Runs whose collapse was told (once per run, resumed or not).
    collapse_told: HashSet<PathBuf>,
}

impl RunWatch {
    /// Looks at the runs; returns the notices of outcomes not told yet. A run is watched once
    /// it is seen training; a run seen training again (resumed) may tell its outcomes again.
    pub fn observe<'a>(&mut self, runs: impl IntoIterator<Item = RunState<'a>>) -> Vec<Notice> {
        let mut notices = Vec::new();
        for run in runs {
            if run.live {
                let told = self.watched.entry(run.dir.to_path_buf()).or_default();
                if run.status.is_active() {
                    told.clear();
                }
            }
            let Some(told) = self.watched.get_mut(run.dir) else {
                continue;
            };
            if run.collapse.is_some() && self.collapse_told.insert(run.dir.to_path_buf()) {
                notices.push(notice(&run, Outcome::Collapsed));
            }
            let outcome = match run.status {
                RunStatus::Finished => Outcome::Finished,
                RunStatus::Failed { .. } => Outcome::Failed,
                _ => continue,
            };
            if told.insert(outcome) {
                notices.push(notice(&run, outcome));
            }
        }
        notices
    }
}

/// The notification for `run` ending with `outcome`.
fn notice(run: &RunState<'_>, outcome: Outcome) -> Notice {
    let (summary, body) = match (outcome, run.status) {
        (Outcome::Failed, RunStatus::Failed { reason }) => {
            (format!("Run {} failed", run.name), reason.clone())
        }
        (Outcome::Collapsed, _) => (
            format!("Run {}: embeddings collapsed", run.name),
            capitalized(
                run.collapse
                    .as_deref()
                    .unwrap_or("the embeddings have collapsed"),
            ),
        ),
        _ => (
            format!("Run {} finished", run.name),
            match run.last_step {
                Some((step, loss)) => format!(
                    "{step} steps · last {} {loss:.4}",
                    crate::quantities::step_loss_name(run.objective, step, run.total_steps)
                ),
                None => "Training finished.".to_string(),
            },
        ),
    };
    Notice {
        run: run.dir.to_path_buf(),
        outcome,
        summary,
        body,
    }
}

/// Sends notices to the desktop from a background thread (started on first use), so the UI
/// never waits on D-Bus.
#[derive(Debug, Default)]
pub struct DesktopNotifier {
    sender: Option<Sender<Notice>>,
}

impl DesktopNotifier {
    /// Queues `notice` for the desktop.
    pub fn send(&mut self, notice: Notice) {
        if self.sender.is_none() {
            let (tx, rx) = std::sync::mpsc::channel::<Notice>();
            let spawned = std::thread::Builder::new()
                .name("notifications".into())
                .spawn(move || {
                    for notice in rx {
                        show(&notice);
                    }
                });
            match spawned {
                Ok(_) => self.sender = Some(tx),
                Err(err) => {
                    log::debug!("desktop notifications off: no thread for them ({err})");
                    return;
                }
            }
        }
        if let Some(tx) = &self.sender
            && tx.send(notice).is_err()
        {
            self.sender = None;
        }
    }
}

/// Shows one notice through the freedesktop notification service.
#[cfg(all(unix, not(target_os = "macos")))]
fn show(notice: &Notice) {
    let icon = match notice.outcome {
        Outcome::Finished => "dialog-information",
        Outcome::Failed => "dialog-error",
        Outcome::Collapsed => "dialog-warning",
    };
    let result = notify_rust::Notification::new()
        .appname("Hearth")
        .summary(&notice.summary)
        .body(&notice.body)
        .icon(icon)
        .show();
    match result {
        Ok(_) => log::debug!("desktop notification sent: {}", notice.summary),
        Err(err) => log::debug!("desktop notification not shown ({err}): {}", notice.summary),
    }
}

/// Elsewhere there is no freedesktop notification service.
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn show(notice: &Notice) {
    log::debug!(
        "desktop notification not shown (no notification service): {}",
        notice.summary
    );
}

/// The studio's notifications: the watch, the sender, and what was told this session.
#[derive(Debug, Default)]
pub struct Notifications {
    watch: RunWatch,
    desktop: DesktopNotifier,
    told: Vec<Notice>,
}

impl Notifications {
    /// Looks at the runs and tells the desktop of new outcomes when `enabled` (outcomes seen
    /// while disabled are never told later).
    pub fn observe(&mut self, runs: &[RunView], enabled: bool) {
        for notice in self.watch.observe(runs.iter().map(RunState::of)) {
            if enabled {
                self.desktop.send(notice.clone());
                self.told.push(notice);
            } else {
                log::debug!(
                    "desktop notification off in the settings: {}",
                    notice.summary
                );
            }
        }
    }

    /// The notices sent this session, oldest first.
    pub fn told(&self) -> &[Notice] {
        &self.told
    }
}

/// The top bar's settings menu (what the studio remembers between sessions beyond layout).
pub fn settings_menu_ui(ui: &mut egui::Ui, prefs: &Prefs, actions: &mut Vec<Action>) {
    ui.menu_button("Settings", |ui| {
        let mut on = prefs.notifications;
        if ui
            .checkbox(&mut on, "Desktop notifications")
            .on_hover_text(
                "Tell the desktop when a run trained in this session finishes, fails or its \
                 embeddings collapse",
            )
            .changed()
        {
            actions.push(Action::SetNotifications(on));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    static NEXT_TOKEN: std::sync::LazyLock<ObjectiveSpec> =
        std::sync::LazyLock::new(ObjectiveSpec::default);

    fn state<'a>(dir: &'a Path, status: &'a RunStatus, live: bool) -> RunState<'a> {
        RunState {
            dir,
            name: "tiny",
            status,
            live,
            last_step: Some((60, 2.5)),
            objective: &NEXT_TOKEN,
            total_steps: 60,
            collapse: None,
        }
    }

    #[test]
    fn a_run_of_this_session_notifies_once_when_it_finishes() {
        let dir = Path::new("/p/runs/tiny");
        let mut watch = RunWatch::default();
        assert!(
            watch
                .observe([state(dir, &RunStatus::Running, true)])
                .is_empty()
        );
        let notices = watch.observe([state(dir, &RunStatus::Finished, false)]);
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].outcome, Outcome::Finished);
        assert_eq!(notices[0].summary, "Run tiny finished");
        assert_eq!(notices[0].body, "60 steps · last next-token loss 2.5000");
        for _ in 0..3 {
            assert!(
                watch
                    .observe([state(dir, &RunStatus::Finished, false)])
                    .is_empty(),
                "no duplicate on later frames"
            );
        }
    }

    #[test]
    fn a_failure_notifies_with_its_reason() {
        let dir = Path::new("/p/runs/bad");
        let failed = RunStatus::Failed {
            reason: "the run diverged".into(),
        };
        let mut watch = RunWatch::default();
        let _ = watch.observe([state(dir, &RunStatus::Created, true)]);
        let notices = watch.observe([state(dir, &failed, false)]);
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].outcome, Outcome::Failed);
        assert_eq!(notices[0].summary, "Run tiny failed");
        assert_eq!(notices[0].body, "the run diverged");
        assert!(watch.observe([state(dir, &failed, false)]).is_empty());
    }

    #[test]
    fn runs_over_before_this_session_never_notify() {
        let old = Path::new("/p/runs/old");
        let interrupted = RunStatus::Failed {
            reason: "interrupted".into(),
        };
        let mut watch = RunWatch::default();
        for _ in 0..2 {
            assert!(
                watch
                    .observe([
                        state(old, &RunStatus::Finished, false),
                        state(Path::new("/p/runs/gone"), &interrupted, false),
                    ])
                    .is_empty()
            );
        }
    }

    #[test]
    fn a_stopped_run_does_not_notify_but_a_resumed_one_may_again() {
        let dir = Path::new("/p/runs/tiny");
        let mut watch = RunWatch::default();
        let _ = watch.observe([state(dir, &RunStatus::Running, true)]);
        assert!(
            watch
                .observe([state(dir, &RunStatus::Stopped, false)])
                .is_empty(),
            "the user stopped it"
        );
        let failed = RunStatus::Failed {
            reason: "out of memory".into(),
        };
        assert_eq!(watch.observe([state(dir, &failed, false)]).len(), 1);
        // Resumed from its checkpoint: a new attempt with its own outcome.
        let _ = watch.observe([state(dir, &RunStatus::Running, true)]);
        assert_eq!(watch.observe([state(dir, &failed, false)]).len(), 1);
        assert!(watch.observe([state(dir, &failed, false)]).is_empty());
    }

    #[test]
    fn several_runs_are_told_apart() {
        let (a, b) = (Path::new("/p/runs/a"), Path::new("/p/runs/b"));
        let mut watch = RunWatch::default();
        let _ = watch.observe([
            state(a, &RunStatus::Running, true),
            state(b, &RunStatus::Running, true),
        ]);
        let notices = watch.observe([
            state(a, &RunStatus::Finished, false),
            state(b, &RunStatus::Running, true),
        ]);
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].run, a);
        let notices = watch.observe([
            state(a, &RunStatus::Finished, false),
            state(b, &RunStatus::Finished, false),
        ]);
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].run, b);
    }

    #[test]
    fn a_collapse_notifies_once_per_run() {
        let dir = Path::new("/p/runs/emb");
        let mut watch = RunWatch::default();
        // A run of an objective that embeds: its health rule judges collapse.
        let mut spec = hearth_engine::spec::RunSpec::default();
        spec.objective.kind = hearth_engine::objective::ObjectiveKind::all()
            .into_iter()
            .find(|k| k.objective().is_some_and(|o| o.uses_embeddings()))
            .expect("an objective embeds");
        let sentence = crate::quantities::collapse_in(
            &spec,
            1,
            &[
                ("val_uniformity".to_string(), -0.02),
                ("val_eff_rank".to_string(), 1.1),
            ],
        );
        assert!(sentence.is_some());
        let collapsed = |status| RunState {
            collapse: sentence.clone(),
            ..state(dir, status, true)
        };
        assert!(
            watch
                .observe([state(dir, &RunStatus::Running, true)])
                .is_empty()
        );
        let notices = watch.observe([collapsed(&RunStatus::Running)]);
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].outcome, Outcome::Collapsed);
        assert_eq!(notices[0].summary, "Run tiny: embeddings collapsed");
        assert!(notices[0].body.starts_with("The embeddings have collapsed"));
        assert!(notices[0].body.contains("uniformity -0.02"));
        for _ in 0..3 {
            assert!(watch.observe([collapsed(&RunStatus::Running)]).is_empty());
        }
        // Finishing still tells the finish, not the collapse again.
        let finished = RunState {
            live: false,
            ..collapsed(&RunStatus::Finished)
        };
        let notices = watch.observe([finished]);
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].outcome, Outcome::Finished);
    }
}
