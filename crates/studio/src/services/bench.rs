//! Headless benchmarks of the studio: plot frames with many points, opening a project with
//! many runs, the whole app while runs train, a large attention heatmap and a large embedding
//! map. Run through `hearth bench plot`, `store`, `ui`, `attention` and `embed`.

use crate::app::StudioApp;
use crate::services::prefs::Prefs;
use crate::widgets::{PlotOptions, Series, SeriesStyle, loss_plot, run_color};
use hearth_engine::events::EmbeddingSnapshot;
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
/// The input of frame `frame` of `frames` of a scripted gesture over a chart around `pointer`:
/// a quarter zooming in by `zoom` per frame, a quarter dragging left from `pointer`, a quarter
/// zooming out, the rest zooming out slowly.
fn gesture(frame: usize, frames: usize, pointer: egui::Pos2, zoom: f32) -> Vec<egui::Event> {
    let mut events = vec![egui::Event::PointerMoved(pointer)];
    match frame * 4 / frames.max(1) {
        0 => events.push(egui::Event::Zoom(zoom)),
        1 => {
            // Drag to pan.
            let at = egui::pos2(
                640.0 - (frame % (frames / 4).max(1)) as f32 * 4.0,
                pointer.y,
            );
            events = vec![
                egui::Event::PointerMoved(at),
                egui::Event::PointerButton {
                    pos: at,
                    button: egui::PointerButton::Primary,
                    pressed: true,
                    modifiers: egui::Modifiers::NONE,
                },
            ];
        }
        2 => events.push(egui::Event::Zoom(1.0 / zoom)),
        _ => events.push(egui::Event::Zoom(1.0 / 1.02)),
    }
    events
}

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
        let events = gesture(frame, frames, center, 1.08);
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
                references: &[],
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

/// The settings of one small run that keeps training through the UI benchmark.
fn bench_run_spec(name: &str, seed: u64, steps: usize) -> RunSpec {
    use hearth_engine::data::{DataSource, TokenizerKind};
    let mut spec = RunSpec {
        name: name.to_string(),
        ..RunSpec::default()
    };
    spec.data.source = DataSource::Generated {
        seed: 3,
        n_chars: 60_000,
    };
    spec.data.tokenizer = TokenizerKind::Char;
    spec.data.val_fraction = 0.1;
    spec.model.n_layer = 2;
    spec.model.n_head = 2;
    spec.model.d_model = 64;
    spec.model.context = 32;
    spec.model.dropout = 0.0;
    spec.model.relation_classes = 0;
    spec.optim.lr = 3e-3;
    spec.optim.min_lr = 3e-4;
    spec.optim.warmup_steps = 20;
    spec.train.batch_size = 16;
    spec.train.grad_accum = 1;
    spec.train.devices = String::new();
    spec.train.world_size = 1;
    spec.train.steps = steps;
    spec.train.eval_interval = 50;
    spec.train.eval_batches = 4;
    spec.train.seed = seed;
    spec.train.backend = hearth_engine::train::BackendKind::preferred();
    spec.train.threads = 1;
    spec.train.checkpoint_interval = 0;
    spec.train.attention_interval = 50;
    spec.train.sample_tokens = 20;
    spec
}

/// What the UI benchmark measured.
#[derive(Debug, Clone)]
pub struct UiBench {
    /// The backend the runs trained on.
    pub backend: String,
    /// Steps each run had completed when the timed frames began and ended.
    pub steps: Vec<(usize, usize)>,
    /// Frame statistics.
    pub stats: FrameStats,
}

/// Why the UI benchmark could not time its frames.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The runs trained too slowly to reach the pages' full content.
    #[error("the runs did not reach step 60 in 300 s: {messages:?}")]
    TooSlow {
        /// The studio's messages (why a run did not start, for instance).
        messages: Vec<String>,
    },
    /// The started runs are missing from the run list.
    #[error("the runs are not listed")]
    NotListed,
}

/// Drives the studio headless on a new project in `dir`: starts `runs` small runs (one
/// thread each; as worker processes of `worker`, attached through their stores, when given),
/// waits for their first evaluation, then times `frames` frames at 1280x800 that alternate
/// between the monitor page (the first two runs in turn) and the compare page (every run), at
/// about 60 frames per second. Each frame's CPU time is what the UI thread does: draining the
/// runs' events, layout and tessellation.
/// The runs are stopped at the end.
pub fn ui_benchmark(
    dir: &Path,
    frames: usize,
    runs: usize,
    worker: Option<std::path::PathBuf>,
) -> Result<UiBench, BenchError> {
    use crate::action::Action;
    use crate::services::prefs::Tab;
    use hearth_engine::events::RunControl;

    let ctx = egui::Context::default();
    let mut app = StudioApp::with_project(ctx.clone(), dir, Prefs::default());
    if let Some(exe) = worker {
        app.set_worker_exe(exe);
    }
    // All of them train at once, whatever the cores.
    app.apply(Action::SetQueueLimit(Some(runs.max(1))));
    let names: Vec<String> = (0..runs.max(2))
        .map(|i| format!("bench-{}", (b'a' + i as u8) as char))
        .collect();
    for (seed, name) in names.iter().enumerate() {
        app.apply(Action::SetDraft(Box::new(bench_run_spec(
            name,
            11 + seed as u64,
            20_000,
        ))));
        app.apply(Action::StartRun);
    }
    // What eframe does each frame: `logic` (draining the runs' events) and `ui`, with a
    // frame that has no window behind it.
    let mut eframe_frame = eframe::Frame::_new_kittest();
    let mut frame = |app: &mut StudioApp, events: Vec<egui::Event>| -> Duration {
        let start = Instant::now();
        let output = ctx.run_ui(raw_input(events), |ui| {
            eframe::App::logic(app, ui.ctx(), &mut eframe_frame);
            app.draw(ui);
        });
        finish_frame(&ctx, output);
        start.elapsed()
    };
    let index = |app: &StudioApp, name: &str| app.runs().iter().position(|r| r.name() == name);
    let step = |app: &StudioApp, name: &str| {
        index(app, name)
            .and_then(|i| app.runs()[i].last_step)
            .map_or(0, |(s, _)| s)
    };
    // Until every run is past its first evaluation and attention snapshot.
    let deadline = Instant::now() + Duration::from_secs(300);
    while names.iter().any(|n| step(&app, n) < 60) {
        if Instant::now() > deadline {
            return Err(BenchError::TooSlow {
                messages: app.messages().to_vec(),
            });
        }
        frame(&mut app, Vec::new());
        std::thread::sleep(Duration::from_millis(16));
        if std::env::var_os("HEARTH_BENCH_TRACE").is_some() {
            let runs: Vec<_> = app
                .runs()
                .iter()
                .map(|r| (r.name().to_string(), r.last_step, r.status.clone()))
                .collect();
            eprintln!("{runs:?}");
        }
    }
    let Some(all) = names
        .iter()
        .map(|n| index(&app, n))
        .collect::<Option<Vec<usize>>>()
    else {
        return Err(BenchError::NotListed);
    };
    let (a, b) = (all[0], all[1]);
    for &run in &all {
        app.apply(Action::SetCompared {
            run,
            compared: true,
        });
    }
    let started: Vec<usize> = names.iter().map(|n| step(&app, n)).collect();
    let mut times = Vec::with_capacity(frames);
    // A few untimed frames first, once per page.
    for n in 0..frames + 6 {
        match (n / 5) % 3 {
            0 => app.apply(Action::Monitor(a)),
            1 => app.apply(Action::ShowTab(Tab::Compare)),
            _ => app.apply(Action::Monitor(b)),
        }
        // The pointer wanders over the page, hovering plots and heatmaps.
        let t = n as f32 * 0.05;
        let pointer = egui::pos2(640.0 + 560.0 * t.sin(), 400.0 + 320.0 * (1.3 * t).cos());
        let took = frame(&mut app, vec![egui::Event::PointerMoved(pointer)]);
        if n >= 6 {
            times.push(took);
        }
        std::thread::sleep(Duration::from_millis(16).saturating_sub(took));
    }
    let ended: Vec<usize> = names.iter().map(|n| step(&app, n)).collect();
    for &run in &all {
        app.apply(Action::Control {
            run,
            control: RunControl::Stop,
        });
    }
    // Let the workers see the stop and finish.
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.runs().iter().any(|r| r.is_live()) && Instant::now() < deadline {
        frame(&mut app, Vec::new());
        std::thread::sleep(Duration::from_millis(20));
    }
    if std::env::var_os("HEARTH_BENCH_TRACE").is_some() {
        for (i, t) in times.iter().enumerate() {
            eprintln!("frame {i} {:.2}", t.as_secs_f64() * 1e3);
        }
    }
    let backend = app.runs()[a].spec.train.backend.name().to_string();
    Ok(UiBench {
        backend,
        steps: started.into_iter().zip(ended).collect(),
        stats: FrameStats::from(times),
    })
}

/// Draws the attention heatmap of a `seq`-token probe for `frames` frames at 1280x800 with the
/// pointer moving over it (so the hover tooltip is laid out every frame); a new snapshot
/// arrives every 100 frames, as evaluations would bring one.
pub fn attention_benchmark(seq: usize, frames: usize) -> FrameStats {
    let snapshot = |version: usize| hearth_engine::model::AttentionMaps {
        n_layer: 1,
        n_head: 1,
        seq,
        weights: (0..seq * seq)
            .map(|i| {
                let (q, k) = (i / seq, i % seq);
                if k > q {
                    0.0
                } else {
                    (((q * 31 + k * 17 + version * 7) % 101) as f32 / 100.0).powi(3)
                }
            })
            .collect(),
    };
    let tokens: Vec<String> = (0..seq).map(|i| format!("tok{}", i % 97)).collect();
    let ctx = egui::Context::default();
    let mut texture = None;
    let mut maps = snapshot(0);
    let mut times = Vec::with_capacity(frames);
    for n in 0..frames + 2 {
        if n > 2 && n % 100 == 0 {
            maps = snapshot(n / 100);
        }
        let t = n as f32 * 0.07;
        let pointer = egui::pos2(400.0 + 380.0 * t.sin(), 400.0 + 380.0 * (0.7 * t).cos());
        let start = Instant::now();
        let output = ctx.run_ui(raw_input(vec![egui::Event::PointerMoved(pointer)]), |ui| {
            crate::widgets::attention_heatmap(
                ui,
                &maps,
                &tokens,
                0,
                0,
                &mut texture,
                (n / 100) as u64,
                f32::INFINITY,
            );
        });
        finish_frame(&ctx, output);
        if n >= 2 {
            times.push(start.elapsed());
        }
    }
    FrameStats::from(times)
}

/// Draws an embedding map of `points` points (queries and positives in clusters) for `frames`
/// frames at 1280x800 while zooming in, panning and zooming out, with the pointer hovering.
/// Returns the time to build the map's index (first frame) and the frame statistics.
pub fn embed_benchmark(points: usize, frames: usize) -> (f64, FrameStats) {
    let mut state = 0x853c_49e6_748f_ea9b_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 1_000_000) as f32 / 1_000_000.0
    };
    let mut map = EmbeddingSnapshot {
        step: 1000,
        points: Vec::with_capacity(points),
        groups: Vec::with_capacity(points),
        texts: Vec::with_capacity(points),
    };
    for i in 0..points {
        let cluster = (i / 2 % 40) as f32;
        let (cx, cy) = (
            (cluster * 2.4).cos() * cluster,
            (cluster * 2.4).sin() * cluster,
        );
        let (r, a) = (next().sqrt() * 4.0, next() * std::f32::consts::TAU);
        map.points.push([cx + r * a.cos(), cy + r * a.sin()]);
        map.groups.push((i % 2) as u8);
        map.texts
            .push(format!("probe text {i} of cluster {cluster}"));
    }
    let maps = vec![map];
    let ctx = egui::Context::default();
    let center = egui::pos2(640.0, 360.0);
    let mut shown = None;
    let mut times = Vec::with_capacity(frames);
    let mut build_ms = 0.0;
    for frame in 0..frames + 2 {
        let wobble = egui::vec2((frame as f32 * 0.3).sin() * 40.0, 0.0);
        let events = gesture(frame, frames, center + wobble, 1.05);
        let start = Instant::now();
        let output = ctx.run_ui(raw_input(events), |ui| {
            crate::views::embedding_map_ui(
                ui,
                &maps,
                &mut shown,
                700.0,
                ["query halves", "positive halves"],
            );
        });
        finish_frame(&ctx, output);
        if frame == 0 {
            build_ms = start.elapsed().as_secs_f64() * 1e3;
        }
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
