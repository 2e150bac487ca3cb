//! What the studio remembers between sessions: the page shown, the project, and how plots are
//! drawn (layout and preferences only; runs live in the project).

use hearth_engine::viz::curves::SmoothSettings;
pub use hearth_engine::viz::curves::XAxis;
use hearth_engine::viz::smoothing::SmoothingKind;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The central panel's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Tab {
    /// What the next run trains on.
    #[default]
    Dataset,
    /// The next run's settings.
    Setup,
    /// One run, live or stored.
    Monitor,
    /// Ticked runs side by side.
    Compare,
    /// A finished run made better from its own checked attempts.
    Improve,
    /// A text-generating run answers prompts.
    TryIt,
    /// Many runs over a space of settings, watched and ranked.
    Sweep,
}

impl Tab {
    /// Every page, in the order of the top bar.
    pub const ALL: [Tab; 7] = [
        Tab::Dataset,
        Tab::Setup,
        Tab::Monitor,
        Tab::Compare,
        Tab::Improve,
        Tab::TryIt,
        Tab::Sweep,
    ];

    /// The name in the top bar.
    pub fn label(self) -> &'static str {
        match self {
            Tab::Dataset => "Dataset",
            Tab::Setup => "Run setup",
            Tab::Monitor => "Monitor",
            Tab::Compare => "Compare",
            Tab::Improve => "Improve",
            Tab::TryIt => "Try it",
            Tab::Sweep => "Sweep",
        }
    }
}

/// UI preferences kept by eframe between sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Prefs {
    /// The project opened last.
    pub project_dir: Option<PathBuf>,
    /// The page shown.
    pub tab: Tab,
    /// EMA weight applied to training-loss curves (0 = raw); for the time-weighted EMA it sets
    /// the time constant `tau = -1 / ln(weight)` steps.
    pub smoothing: f64,
    /// Which moving average smooths training curves.
    pub smoothing_kind: SmoothingKind,
    /// Smooth `ln(loss)` instead of the loss, so spikes weigh less.
    pub smooth_in_log_space: bool,
    /// Loss axes on a log scale.
    pub log_y: bool,
    /// What the x axis of loss plots measures.
    pub x_axis: XAxis,
    /// Tell the desktop when a run trained in this session finishes or fails.
    pub notifications: bool,
    /// Draw simple models' figures (count models, TF-IDF, chance) as reference lines.
    pub references: bool,
}

impl Default for Prefs {
    fn default() -> Self {
        Self {
            project_dir: None,
            tab: Tab::Dataset,
            smoothing: 0.8,
            smoothing_kind: SmoothingKind::DebiasedEma,
            smooth_in_log_space: false,
            log_y: false,
            x_axis: XAxis::Step,
            notifications: true,
            references: true,
        }
    }
}

/// How loss plots are drawn, shared by the monitor and compare pages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlotSettings {
    /// See [`Prefs::smoothing`].
    pub smoothing: f64,
    /// See [`Prefs::smoothing_kind`].
    pub smoothing_kind: SmoothingKind,
    /// See [`Prefs::smooth_in_log_space`].
    pub smooth_in_log_space: bool,
    /// See [`Prefs::log_y`].
    pub log_y: bool,
    /// See [`Prefs::x_axis`].
    pub x_axis: XAxis,
    /// See [`Prefs::references`].
    pub references: bool,
}

impl PlotSettings {
    /// The smoothing these settings ask for.
    pub fn smooth_settings(&self) -> SmoothSettings {
        SmoothSettings {
            kind: self.smoothing_kind,
            weight: self.smoothing,
            log_space: self.smooth_in_log_space,
        }
    }
}

impl Prefs {
    /// The plot settings.
    pub fn plot(&self) -> PlotSettings {
        PlotSettings {
            smoothing: self.smoothing,
            smoothing_kind: self.smoothing_kind,
            smooth_in_log_space: self.smooth_in_log_space,
            log_y: self.log_y,
            x_axis: self.x_axis,
            references: self.references,
        }
    }

    /// Takes over `plot`.
    pub fn set_plot(&mut self, plot: PlotSettings) {
        self.smoothing = plot.smoothing;
        self.smoothing_kind = plot.smoothing_kind;
        self.smooth_in_log_space = plot.smooth_in_log_space;
        self.log_y = plot.log_y;
        self.x_axis = plot.x_axis;
        self.references = plot.references;
    }

    /// The smoothing plots ask for.
    pub fn smooth_settings(&self) -> SmoothSettings {
        self.plot().smooth_settings()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_preferences_round_trip_and_tolerate_missing_fields() {
        let mut prefs = Prefs {
            tab: Tab::Compare,
            ..Prefs::default()
        };
        prefs.x_axis = XAxis::Tokens;
        let text = ron::to_string(&prefs).unwrap();
        assert_eq!(ron::from_str::<Prefs>(&text).unwrap(), prefs);
        let partial: Prefs = ron::from_str("(tab: Monitor)").unwrap();
        assert_eq!(partial.tab, Tab::Monitor);
        assert_eq!(partial.smoothing, 0.8, "missing fields take their defaults");
    }

    #[test]
    fn the_notification_setting_round_trips_and_defaults_to_on() {
        let off = Prefs {
            notifications: false,
            ..Prefs::default()
        };
        let text = ron::to_string(&off).unwrap();
        assert!(text.contains("notifications:false"), "{text}");
        assert!(!ron::from_str::<Prefs>(&text).unwrap().notifications);
        // Preferences saved before the setting existed keep notifications on.
        let older: Prefs = ron::from_str("(tab: Monitor, log_y: true)").unwrap();
        assert!(older.notifications);
    }
}
