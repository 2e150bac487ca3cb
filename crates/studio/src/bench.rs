//! Headless benchmarks of the studio: plot frames with many points, and opening a project with
//! many runs. Run through `hearth bench plot` and `hearth bench store`.

use crate::app::StudioApp;
use crate::prefs::Prefs;
use crate::widgets::{PlotOptions, Series, SeriesStyle, loss_plot, run_color};
use hearth_engine::project::{RunStatus, RunStore};
use hearth_engine::spec::RunSpec;
use hearth_engine::train::StepMetrics;
use hearth_engine::viz::lod::BlockIndex;
use std::path::Path;
use std::time::{Duration, Instant};

/// Percentiles of frame times in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct FrameStats {
    /// Frames timed.
    pub frames: usize,
    /// Median frame time.
    pub p50_ms: f64,
    /// 99th percentile frame time.
    pub p99_ms: f64,
    /// Slowest frame.
    pub max_ms: f64,
}

impl FrameStats {
    fn from(mut times: Vec<Duration>) -> Self {
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let at = |q: f64| ms(times[((times.len() as f64 - 1.0) * q).round() as usize]);
        Self {
            frames: times.len(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: ms(*times.last().expect("at least one frame")),
        }
    }
}

/// Tessellates a frame as an integration would; textures are not uploaded anywhere.
fn finish_frame(ctx: &egui::Context, output: egui::FullOutput) {
    let egui::FullOutput {
        shapes,
        pixels_per_point,
        mut textures_delta,
        ..
    } = output;
    let _ = ctx.tessellate(shapes, pixels_per_point);
    textures_delta.clear();
}

fn raw_input(events: Vec<egui::Event>) -> egui::RawInput {
    egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(1280.0, 800.0),
        )),
        events,
        ..Default::default()
    }
}

/// Draws `runs` curves of `points` points each through the studio's plot code, zooming in,
/// panning and zooming out, and times each frame's CPU work (layout and tessellation).
/// Returns the index build time in ms and the frame statistics.
pub fn plot_benchmark(runs: usize, points: usize, frames: usize) -> (f64, FrameStats) {
    let xs: Vec<f64> = (0..points).map(|i| i as f64).collect();
    let curves: Vec<Vec<f64>> = (0..runs)
        .map(|r| {
            let mut state = 0x9e37_79b9_u64.wrapping_mul(r as u64 + 1);
            (0..points)
                .map(|i| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let noise = (state % 1000) as f64 / 1000.0 - 0.5;
                    let spike = if i % 99_991 == 17 { 3.0 } else { 0.0 };
                    3.0 * (-(i as f64) / (points as f64 / 5.0)).exp()
                        + 1.0
                        + 0.1 * r as f64
                        + 0.2 * noise
                        + spike
                })
                .collect()
        })
        .collect();
    let t = Instant::now();
    let indexes: Vec<BlockIndex> = curves.iter().map(|ys| BlockIndex::new(ys)).collect();
    let build_ms = t.elapsed().as_secs_f64() * 1e3;

    if std::env::var_os("HEARTH_BENCH_TRACE").is_some() {
        let mut kept = 0;
        let mut t = Instant::now();
        for _ in 0..5 {
            kept = 0;
            t = Instant::now();
            for (ys, index) in curves.iter().zip(&indexes) {
                kept += hearth_engine::viz::lod::min_max_last_indexed(
                    &xs,
                    ys,
                    index,
                    0.0,
                    points as f64,
                    1200,
                )
                .len();
            }
        }
        eprintln!(
            "full-view LOD of all curves: {:.2} ms, {kept} points kept",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    let ctx = egui::Context::default();
    let center = egui::pos2(640.0, 300.0);
    let mut times = Vec::with_capacity(frames);
    for frame in 0..frames + 2 {
        let phase = frame * 4 / frames.max(1);
        let mut events = vec![egui::Event::PointerMoved(center)];
        match phase {
            0 => events.push(egui::Event::Zoom(1.08)),
            1 => {
                // Drag to pan.
                let x = 640.0 - (frame % (frames / 4).max(1)) as f32 * 4.0;
                events = vec![
                    egui::Event::PointerMoved(egui::pos2(x, 300.0)),
                    egui::Event::PointerButton {
                        pos: egui::pos2(x, 300.0),
                        button: egui::PointerButton::Primary,
                        pressed: true,
                        modifiers: egui::Modifiers::NONE,
                    },
                ];
            }
            2 => events.push(egui::Event::Zoom(1.0 / 1.08)),
            _ => events.push(egui::Event::Zoom(1.0 / 1.02)),
        }
        let series: Vec<Series<'_>> = curves
            .iter()
            .zip(&indexes)
            .enumerate()
            .map(|(i, (ys, index))| Series {
                name: format!("run {i}"),
                xs: &xs,
                ys,
                color: run_color(i),
                style: SeriesStyle::Line { width: 1.0 },
                index: Some(index),
            })
            .collect();
        let start = Instant::now();
        let output = ctx.run_ui(raw_input(events), |ui| {
            let options = PlotOptions {
                log_y: false,
                height: 600.0,
                x_label: "step",
                y_label: "loss",
            };
            loss_plot(ui, "bench_plot", &series, &[], options);
        });
        finish_frame(&ctx, output);
        // The first frames warm up fonts and memory.
        if frame >= 2 {
            times.push(start.elapsed());
        }
    }
    if std::env::var_os("HEARTH_BENCH_TRACE").is_some() {
        for (i, t) in times.iter().enumerate() {
            eprintln!("frame {i} {:.2}", t.as_secs_f64() * 1e3);
        }
    }
    (build_ms, FrameStats::from(times))
}

/// Writes a project of `runs` finished runs with `steps` steps each.
pub fn generate_project(
    dir: &Path,
    runs: usize,
    steps: usize,
) -> Result<(), hearth_engine::project::StoreError> {
    let project = hearth_engine::project::Project::open_or_create(dir)?;
    for r in 0..runs {
        let mut spec = RunSpec {
            name: format!("run-{r:04}"),
            ..RunSpec::default()
        };
        spec.train.seed = r as u64;
        spec.optim.lr = [1e-3, 3e-3, 6e-4][r % 3];
        let store = RunStore::create(&project.runs_dir().join(format!("run-{r:04}")), &spec)?;
        let metrics: Vec<StepMetrics> = (1..=steps)
            .map(|s| StepMetrics {
                step: s,
                train_loss: 4.0 / (1.0 + s as f32 / 100.0) + 0.01 * (r % 7) as f32,
                lr: 1e-3,
                grad_norm: 0.5,
                tokens_per_s: 10_000.0,
                elapsed_s: s as f64 * 0.05,
                tokens_seen: (s * 768) as u64,
            })
            .collect();
        store.append_steps(&metrics)?;
        store.set_status(&RunStatus::Finished)?;
    }
    Ok(())
}

/// Seconds from opening the project in `dir` to the end of the studio's first frame.
pub fn open_project_seconds(dir: &Path) -> f64 {
    let ctx = egui::Context::default();
    let start = Instant::now();
    let mut app = StudioApp::with_project(ctx.clone(), dir, Prefs::default());
    let output = ctx.run_ui(raw_input(Vec::new()), |ui| app.draw(ui));
    finish_frame(&ctx, output);
    let secs = start.elapsed().as_secs_f64();
    assert!(!app.runs().is_empty(), "the project's runs were listed");
    secs
}
