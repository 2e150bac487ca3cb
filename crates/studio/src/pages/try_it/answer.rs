//! One answer: a background thread that renders the prompt, samples tokens with a loaded model
//! and sends the decoded text over a channel as the tokens come.

use super::models::{Loaded, panic_text};
use hearth_engine::backend::default_threads;
use hearth_engine::data::chat::Message;
use hearth_engine::eval::{Sampling, generate_streaming};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the model reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// Raw text to continue.
    Raw(String),
    /// A conversation, rendered with the model's chat template up to the assistant's turn.
    Chat(Vec<Message>),
}

/// How tokens are picked, and how many at most.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Softmax temperature (0: always the most likely token).
    pub temperature: f64,
    /// Draw among the K most likely tokens (0: all).
    pub top_k: usize,
    /// Draw among the most likely tokens that together hold this probability (1: all).
    pub top_p: f64,
    /// Tokens at most.
    pub max_tokens: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            temperature: 0.7,
            top_k: 50,
            top_p: 0.9,
            max_tokens: 200,
        }
    }
}

/// What the thread says.
#[derive(Debug)]
pub enum Event {
    /// The text the model read (the rendered conversation, or the raw prompt) and its tokens.
    Read { text: String, tokens: usize },
    /// More of the answer, and the tokens picked so far.
    Text { more: String, tokens: usize },
    /// The answer is complete: tokens picked, seconds taken, whether Stop ended it.
    Done {
        tokens: usize,
        seconds: f64,
        stopped: bool,
    },
    /// No answer: why.
    Failed(String),
    /// The model failed while answering (a panic, caught): it is loaded afresh next time.
    Broke(String),
}

/// An answer being written in the background.
pub struct Job {
    events: Receiver<Event>,
    stop: Arc<AtomicBool>,
}

impl Job {
    /// Starts answering `prompt` with `model`; `repaint` is asked for at every new piece.
    pub fn start(
        model: Arc<Loaded>,
        prompt: Prompt,
        settings: Settings,
        seed: u64,
        repaint: egui::Context,
    ) -> Result<Self, String> {
        let (tx, events) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("hearth-try-answer".into())
            .spawn(move || {
                // The sender is shared with the unwinding side so a panic still reports.
                let tx = Arc::new(Mutex::new(tx));
                let inner = Arc::clone(&tx);
                let repaint_inner = repaint.clone();
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let send = |event: Event| {
                        if let Ok(tx) = inner.lock() {
                            let _ = tx.send(event);
                        }
                        repaint_inner.request_repaint();
                    };
                    // All cores but one: the window keeps one to draw on while tokens come.
                    model.backend.with_threads(default_threads(), || {
                        answer(&model, &prompt, settings, seed, &flag, send)
                    })
                }));
                let last = match result {
                    Ok(Ok(done)) => done,
                    Ok(Err(reason)) => Event::Failed(reason),
                    Err(panic) => Event::Broke(format!(
                        "the model failed while answering: {}",
                        panic_text(&panic)
                    )),
                };
                if let Ok(tx) = tx.lock() {
                    let _ = tx.send(last);
                }
                repaint.request_repaint();
            })
            .map_err(|e| format!("cannot start the answer's thread: {e}"))?;
        Ok(Self { events, stop })
    }

    /// Asks the thread to stop after the token it is picking.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The events waiting; a thread gone without its last word reads as a failure.
    pub fn drain(&self) -> Vec<Event> {
        let mut out = Vec::new();
        loop {
            match self.events.try_recv() {
                Ok(event) => out.push(event),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    let ended = out.iter().any(|e| {
                        matches!(e, Event::Done { .. } | Event::Failed(_) | Event::Broke(_))
                    });
                    if !ended {
                        out.push(Event::Failed(
                            "the answer's thread ended without finishing".to_string(),
                        ));
                    }
                    break;
                }
            }
        }
        out
    }
}

/// Renders and encodes the prompt, then samples the answer, sending it piece by piece (whole
/// characters only: text that ends inside a character waits for the next token). The stop
/// tokens end the answer and are not shown.
fn answer(
    model: &Loaded,
    prompt: &Prompt,
    settings: Settings,
    seed: u64,
    stop: &AtomicBool,
    send: impl Fn(Event),
) -> Result<Event, String> {
    let run = model.lock();
    let text = match prompt {
        Prompt::Raw(text) => text.clone(),
        Prompt::Chat(messages) => run
            .tokenizer
            .render_chat(messages, true)
            .map_err(|e| e.to_string())?,
    };
    let ids = run.tokenizer.encode(&text);
    if ids.is_empty() && !text.is_empty() {
        return Err("the prompt encodes to no tokens with this run's tokenizer".to_string());
    }
    send(Event::Read {
        text,
        tokens: ids.len(),
    });
    let sampling = Sampling {
        temperature: settings.temperature,
        top_k: settings.top_k,
        top_p: settings.top_p,
    };
    let stops = run.tokenizer.stop_tokens().to_vec();
    let tokenizer = &run.tokenizer;
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut picked: Vec<u32> = Vec::new();
    let mut shown = 0;
    let mut stopped = false;
    generate_streaming(
        &run.model,
        &ids,
        settings.max_tokens,
        sampling,
        &stops,
        &mut rng,
        &model.device,
        |token| {
            if !stops.contains(&token) {
                picked.push(token);
                let text = tokenizer.decode(&picked);
                if !text.ends_with('\u{FFFD}')
                    && let Some(more) = text.get(shown..)
                {
                    if !more.is_empty() {
                        send(Event::Text {
                            more: more.to_string(),
                            tokens: picked.len(),
                        });
                    }
                    shown = text.len();
                }
            }
            if stop.load(Ordering::Relaxed) {
                stopped = true;
                return false;
            }
            true
        },
    );
    // What is left (a last character cut short shows as U+FFFD).
    let text = tokenizer.decode(&picked);
    if let Some(more) = text.get(shown..).filter(|m| !m.is_empty()) {
        send(Event::Text {
            more: more.to_string(),
            tokens: picked.len(),
        });
    }
    Ok(Event::Done {
        tokens: picked.len(),
        seconds: started.elapsed().as_secs_f64(),
        stopped,
    })
}
