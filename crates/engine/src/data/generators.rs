//! Built-in structured datasets, so every transform can be tried with nothing downloaded.
//!
//! - [`api_zoo`]: invented functions with documentation, paraphrased instructions and calls, for
//!   retrieval-aware fine-tuning (RAFT).
//! - [`class_tasks`]: families of small classification tasks with checkable rules, for symbol
//!   tuning.
//! - [`linked_docs`]: documents on invented topics that link to each other, for LinkBERT.
//! - [`arithmetic`] and [`sort_letters`]: prompt / response tasks whose answers a program
//!   checks ([`check_arithmetic`], [`check_sort_letters`]); [`ApiZooChecker`] checks calls to
//!   the functions of [`api_zoo`]. These verifiable tasks are what a run improves on from its
//!   own samples.
//!
//! Every generator is deterministic given its seed and writes ASCII text only.

use super::record::Record;
use super::transforms::{EDITED_ANSWER_FIELD, EDITED_DOCUMENT_FIELD};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

fn fields(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// API zoo
// ---------------------------------------------------------------------------------------------

/// What a function does: (word in the documentation, synonym in the instruction).
const ACTIONS: &[(&str, &str)] = &[
    ("spins", "rotate"),
    ("cleans", "wash"),
    ("paints", "color"),
    ("sorts", "arrange"),
    ("counts", "tally"),
    ("opens", "unseal"),
    ("closes", "shut"),
    ("moves", "shift"),
    ("copies", "clone"),
    ("bends", "flex"),
    ("heats", "warm"),
    ("cools", "chill"),
    ("lifts", "raise"),
    ("drops", "lower"),
    ("stores", "stash"),
    ("fetches", "retrieve"),
    ("mends", "repair"),
    ("breaks", "smash"),
    ("names", "label"),
    ("weighs", "measure"),
    ("checks", "inspect"),
    ("joins", "merge"),
    ("splits", "divide"),
    ("packs", "bundle"),
];

/// What a function acts on: (noun in the documentation and the name, synonym in the instruction).
const OBJECTS: &[(&str, &str)] = &[
    ("widget", "gadget"),
    ("lever", "handle"),
    ("basket", "hamper"),
    ("bottle", "flask"),
    ("carpet", "rug"),
    ("rope", "cord"),
    ("stone", "rock"),
    ("pillow", "cushion"),
    ("kettle", "teapot"),
    ("bucket", "pail"),
    ("sofa", "couch"),
    ("cap", "hat"),
    ("boat", "ship"),
    ("path", "trail"),
    ("mug", "cup"),
    ("gift", "present"),
    ("road", "street"),
    ("film", "movie"),
    ("pan", "skillet"),
    ("box", "crate"),
    ("note", "memo"),
    ("pond", "pool"),
    ("plate", "dish"),
    ("bag", "sack"),
];

/// Optional qualifier of the object: (documentation word, instruction synonym); "" for none.
const QUALIFIERS: &[(&str, &str)] = &[
    ("", ""),
    ("big", "large"),
    ("small", "tiny"),
    ("new", "fresh"),
    ("dull", "plain"),
];

/// The most functions [`api_zoo`] can make: one per distinct purpose.
pub const MAX_FUNCTIONS: usize = ACTIONS.len() * OBJECTS.len() * QUALIFIERS.len();

const COLORS: &[&str] = &[
    "red", "blue", "gold", "gray", "pink", "teal", "jade", "plum",
];
const MANNERS: &[&str] = &[
    "fast", "slow", "soft", "loud", "calm", "bold", "keen", "mild",
];
const FINISHES: &[&str] = &["matte", "gloss", "satin", "rough", "smooth", "waxed"];
const FLAVORS: &[&str] = &["sweet", "sour", "salty", "bitter", "spicy", "tangy"];

/// Argument names with their value pools; `None`: a small number.
const ARGS: &[(&str, Option<&[&str]>)] = &[
    ("size", None),
    ("count", None),
    ("level", None),
    ("speed", None),
    ("depth", None),
    ("angle", None),
    ("tint", Some(COLORS)),
    ("shade", Some(COLORS)),
    ("mode", Some(MANNERS)),
    ("style", Some(MANNERS)),
    ("finish", Some(FINISHES)),
    ("flavor", Some(FLAVORS)),
];

/// Names an argument is renamed to in the edited documentation; never used as an original name.
const EDIT_NAMES: &[&str] = &[
    "knob", "dial", "flux", "gauge", "notch", "quota", "trim", "bias", "grain", "pulse", "heft",
    "zest",
];

const STEM_ONSETS: &[&str] = &[
    "b", "d", "fl", "gr", "k", "m", "pl", "sn", "tr", "v", "z", "gl",
];
const STEM_VOWELS: &[&str] = &["a", "e", "i", "o", "u"];
const STEM_CODAS: &[&str] = &["b", "g", "k", "m", "nk", "p", "sh", "t", "x", "z"];

/// One argument of a generated function: its name, what the documentation says about its
/// values, and the value used in the instruction and the call.
struct Arg {
    name: String,
    values: String,
    /// Every value the argument accepts.
    choices: Vec<String>,
    value: String,
}

fn signature_doc(function: &str, purpose: &str, args: &[Arg]) -> String {
    let names: Vec<&str> = args.iter().map(|a| a.name.as_str()).collect();
    let mut doc = format!("{function}({}): {purpose}.", names.join(", "));
    for a in args {
        doc.push_str(&format!(" {}: {}.", a.name, a.values));
    }
    doc
}

fn call(function: &str, args: &[Arg]) -> String {
    let parts: Vec<String> = args
        .iter()
        .map(|a| format!("{}={}", a.name, a.value))
        .collect();
    format!("{function}({})", parts.join(", "))
}

fn random_arg(rng: &mut StdRng, name: &str, pool: Option<&[&str]>) -> Arg {
    match pool {
        None => {
            let lo = rng.random_range(0..=3);
            let hi = rng.random_range(6..=9);
            Arg {
                name: name.to_string(),
                values: format!("{lo} to {hi}"),
                choices: (lo..=hi).map(|v| v.to_string()).collect(),
                value: rng.random_range(lo..=hi).to_string(),
            }
        }
        Some(pool) => {
            let allowed: Vec<&str> = pool.choose_multiple(rng, 3).copied().collect();
            Arg {
                name: name.to_string(),
                values: format!("{}, {} or {}", allowed[0], allowed[1], allowed[2]),
                choices: allowed.iter().map(|v| v.to_string()).collect(),
                value: allowed[rng.random_range(0..allowed.len())].to_string(),
            }
        }
    }
}

/// Requests generated per function (with different argument values); a random split by record
/// then validates on new requests for functions seen in training.
pub const QUESTIONS_PER_FUNCTION: usize = 4;

/// `n_functions` invented functions (at most [`MAX_FUNCTIONS`]), [`QUESTIONS_PER_FUNCTION`]
/// records each, with origin `api_zoo:<i>.<j>` and the fields:
///
/// - `function`: a unique name `<stem>_<object>` (e.g. `grox_widget`), the stem invented;
/// - `document`: `name(args): purpose.` then the values each argument takes, e.g.
///   `grox_widget(size, tint): spins a small widget. size: 2 to 8. tint: red, blue or gold.`;
/// - `question`: the purpose in synonyms, then the argument values in order, e.g.
///   `rotate a tiny gadget: 3, red`;
/// - `answer`: the call, e.g. `grox_widget(size=3, tint=red)`;
/// - `document_edited` / `answer_edited`: the same with one argument renamed to a name that no
///   original function uses.
///
/// Every function has a distinct purpose (action, qualifier, object), so the question identifies
/// the function. The question gives values by position and never the argument names: a model
/// that reads the document copies the names from it, while a model without documents has to
/// memorise them (and the name's invented stem) per function.
pub fn api_zoo(seed: u64, n_functions: usize) -> Vec<Record> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut purposes: Vec<(usize, usize, usize)> = (0..ACTIONS.len())
        .flat_map(|a| {
            (0..QUALIFIERS.len()).flat_map(move |q| (0..OBJECTS.len()).map(move |o| (a, q, o)))
        })
        .collect();
    purposes.shuffle(&mut rng);
    purposes.truncate(n_functions);
    let mut names = BTreeSet::new();
    let mut records = Vec::with_capacity(purposes.len());
    for (i, &(a, q, o)) in purposes.iter().enumerate() {
        let (action_doc, action_q) = ACTIONS[a];
        let (qual_doc, qual_q) = QUALIFIERS[q];
        let (object_doc, object_q) = OBJECTS[o];
        let function = loop {
            let stem = format!(
                "{}{}{}",
                STEM_ONSETS[rng.random_range(0..STEM_ONSETS.len())],
                STEM_VOWELS[rng.random_range(0..STEM_VOWELS.len())],
                STEM_CODAS[rng.random_range(0..STEM_CODAS.len())]
            );
            let name = format!("{stem}_{object_doc}");
            if names.insert(name.clone()) {
                break name;
            }
        };
        let n_args = rng.random_range(1..=2);
        let chosen: Vec<(&str, Option<&[&str]>)> =
            ARGS.choose_multiple(&mut rng, n_args).copied().collect();
        let mut args: Vec<Arg> = chosen
            .into_iter()
            .map(|(name, pool)| random_arg(&mut rng, name, pool))
            .collect();
        let qualified = |qual: &str, object: &str| {
            if qual.is_empty() {
                object.to_string()
            } else {
                format!("{qual} {object}")
            }
        };
        let purpose = format!("{action_doc} a {}", qualified(qual_doc, object_doc));
        let document = signature_doc(&function, &purpose, &args);
        let renamed = rng.random_range(0..args.len());
        let mut edited_args: Vec<Arg> = args
            .iter()
            .map(|a| Arg {
                name: a.name.clone(),
                values: a.values.clone(),
                choices: a.choices.clone(),
                value: a.value.clone(),
            })
            .collect();
        edited_args[renamed].name = EDIT_NAMES[rng.random_range(0..EDIT_NAMES.len())].to_string();
        let document_edited = signature_doc(&function, &purpose, &edited_args);
        for j in 0..QUESTIONS_PER_FUNCTION {
            if j > 0 {
                // Another request for the same function: new values.
                for (a, e) in args.iter_mut().zip(&mut edited_args) {
                    a.value = a.choices[rng.random_range(0..a.choices.len())].clone();
                    e.value = a.value.clone();
                }
            }
            let values: Vec<&str> = args.iter().map(|a| a.value.as_str()).collect();
            let question = format!(
                "{action_q} a {}: {}",
                qualified(qual_q, object_q),
                values.join(", ")
            );
            records.push(Record::new(
                format!("api_zoo:{i}.{j}"),
                fields(&[
                    ("function", function.clone()),
                    ("document", document.clone()),
                    ("question", question),
                    ("answer", call(&function, &args)),
                    (EDITED_DOCUMENT_FIELD, document_edited.clone()),
                    (EDITED_ANSWER_FIELD, call(&function, &edited_args)),
                ]),
            ));
        }
    }
    records
}

// ---------------------------------------------------------------------------------------------
// Classification tasks
// ---------------------------------------------------------------------------------------------

/// A family of classification examples: how inputs are drawn and the rule that labels them.
struct Task {
    name: &'static str,
    labels: &'static [&'static str],
    input: fn(&mut StdRng) -> String,
    label: fn(&str) -> &'static str,
}

fn letters(rng: &mut StdRng) -> String {
    let len = rng.random_range(3..=8);
    (0..len)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

fn digits(rng: &mut StdRng) -> String {
    let len = rng.random_range(3..=5);
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u')
}

const YES_NO: &[&str] = &["yes", "no"];

const TASKS: &[Task] = &[
    Task {
        name: "contains_a",
        labels: YES_NO,
        input: letters,
        label: |s| yes_no(s.contains('a')),
    },
    Task {
        name: "length_even",
        labels: &["even", "odd"],
        input: letters,
        label: |s| if s.len() % 2 == 0 { "even" } else { "odd" },
    },
    Task {
        name: "digit_sum_gt_15",
        labels: YES_NO,
        input: digits,
        label: |s| yes_no(s.bytes().map(|b| u32::from(b - b'0')).sum::<u32>() > 15),
    },
    Task {
        name: "starts_vowel",
        labels: &["vowel", "consonant"],
        input: letters,
        label: |s| {
            if s.starts_with(is_vowel) {
                "vowel"
            } else {
                "consonant"
            }
        },
    },
    Task {
        name: "ends_with_s",
        labels: YES_NO,
        input: letters,
        label: |s| yes_no(s.ends_with('s')),
    },
    Task {
        name: "has_double_letter",
        labels: YES_NO,
        input: letters,
        label: |s| yes_no(s.as_bytes().windows(2).any(|w| w[0] == w[1])),
    },
    Task {
        name: "length_band",
        labels: &["short", "medium", "long"],
        input: letters,
        label: |s| match s.len() {
            0..=4 => "short",
            5..=6 => "medium",
            _ => "long",
        },
    },
];

/// The task family meant to be held out of symbol-tuning training and used for validation.
pub const HELD_OUT_TASK: &str = "ends_with_s";

/// The most examples per task [`class_tasks`] makes (inputs are unique within a task).
pub const MAX_PER_TASK: usize = 5000;

/// The names of the task families of [`class_tasks`].
pub fn task_names() -> Vec<&'static str> {
    TASKS.iter().map(|t| t.name).collect()
}

/// `per_task` examples (at most [`MAX_PER_TASK`]) of every task family, interleaved; origin
/// `class_tasks:<task>:<i>`, fields `task`, `input` (3-8 lowercase letters, or 3-5 digits) and
/// `label` (the task's natural label: `yes`/`no`, `even`/`odd`, ...). Labels are balanced within
/// each task (counts differ by at most one), and inputs are unique within a task.
pub fn class_tasks(seed: u64, per_task: usize) -> Vec<Record> {
    let per_task = per_task.min(MAX_PER_TASK);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut records = Vec::with_capacity(per_task * TASKS.len());
    for task in TASKS {
        let n_labels = task.labels.len();
        let target = |l: usize| per_task / n_labels + usize::from(l < per_task % n_labels);
        let mut counts = vec![0usize; n_labels];
        let mut seen = BTreeSet::new();
        let mut i = 0;
        while i < per_task {
            let input = (task.input)(&mut rng);
            let label = (task.label)(&input);
            let l = task
                .labels
                .iter()
                .position(|&x| x == label)
                .expect("a task's rule yields one of its labels");
            if counts[l] < target(l) && seen.insert(input.clone()) {
                counts[l] += 1;
                records.push(Record::new(
                    format!("class_tasks:{}:{i}", task.name),
                    fields(&[
                        ("task", task.name.to_string()),
                        ("input", input),
                        ("label", label.to_string()),
                    ]),
                ));
                i += 1;
            }
        }
    }
    records.shuffle(&mut rng);
    records
}

// ---------------------------------------------------------------------------------------------
// Linked documents
// ---------------------------------------------------------------------------------------------

/// A topic cluster: documents of one theme share its vocabulary.
struct Theme {
    place: &'static str,
    nouns: &'static [&'static str],
    adjectives: &'static [&'static str],
    verbs: &'static [&'static str],
}

const THEMES: &[Theme] = &[
    Theme {
        place: "Harbor",
        nouns: &[
            "boat", "sail", "net", "tide", "reef", "gull", "dock", "rope",
        ],
        adjectives: &["salty", "windy", "calm", "deep", "rough", "blue"],
        verbs: &[
            "guides", "shelters", "feeds", "watches", "carries", "follows",
        ],
    },
    Theme {
        place: "Bakery",
        nouns: &[
            "bread", "oven", "flour", "loaf", "crust", "tart", "bun", "dough",
        ],
        adjectives: &["warm", "sweet", "golden", "soft", "crisp", "fresh"],
        verbs: &["bakes", "sells", "shapes", "cools", "serves", "glazes"],
    },
    Theme {
        place: "Observatory",
        nouns: &[
            "star", "lens", "comet", "moon", "orbit", "planet", "dome", "chart",
        ],
        adjectives: &["bright", "distant", "faint", "vast", "dark", "clear"],
        verbs: &["tracks", "maps", "measures", "records", "studies", "finds"],
    },
    Theme {
        place: "Farm",
        nouns: &[
            "wheat", "barn", "goat", "field", "plow", "hen", "fence", "seed",
        ],
        adjectives: &["green", "dusty", "wide", "quiet", "muddy", "rich"],
        verbs: &["grows", "feeds", "plows", "guards", "harvests", "waters"],
    },
    Theme {
        place: "Hall",
        nouns: &[
            "drum", "flute", "song", "choir", "string", "bell", "tune", "stage",
        ],
        adjectives: &["loud", "gentle", "lively", "slow", "grand", "old"],
        verbs: &["plays", "tunes", "hosts", "rings", "echoes", "repeats"],
    },
    Theme {
        place: "Mine",
        nouns: &[
            "ore", "tunnel", "lamp", "cart", "shaft", "gem", "rock", "pick",
        ],
        adjectives: &["narrow", "cold", "hidden", "dim", "steep", "damp"],
        verbs: &["digs", "hauls", "lights", "cracks", "sorts", "lifts"],
    },
];

const NAME_ONSETS: &[&str] = &[
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
];
const NAME_VOWELS: &[&str] = &["a", "e", "i", "o", "u"];
const NAME_CODAS: &[&str] = &["", "l", "n", "r", "s"];
const SEASONS: &[&str] = &["spring", "summer", "autumn", "winter"];

fn pick<'a>(rng: &mut StdRng, words: &[&'a str]) -> &'a str {
    words[rng.random_range(0..words.len())]
}

fn place_name(rng: &mut StdRng) -> String {
    let mut name = String::new();
    for _ in 0..2 {
        name.push_str(pick(rng, NAME_ONSETS));
        name.push_str(pick(rng, NAME_VOWELS));
        name.push_str(pick(rng, NAME_CODAS));
    }
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn body_sentence(rng: &mut StdRng, theme: &Theme, title: &str) -> String {
    let noun = pick(rng, theme.nouns);
    let noun2 = pick(rng, theme.nouns);
    let adj = pick(rng, theme.adjectives);
    let verb = pick(rng, theme.verbs);
    match rng.random_range(0..5) {
        0 => format!("The {noun} here {verb} the {adj} {noun2}."),
        1 => format!("People of {title} say the {noun} is {adj}."),
        2 => format!(
            "Its {adj} {noun} {verb} the {noun2} in {}.",
            pick(rng, SEASONS)
        ),
        3 => format!(
            "One {adj} {noun} {verb} the {noun2} near the {}.",
            pick(rng, theme.nouns)
        ),
        _ => format!(
            "Every {} the {noun} {verb} a {adj} {noun2}.",
            pick(rng, SEASONS)
        ),
    }
}

fn link_sentence(rng: &mut StdRng, theme: &Theme, target: &str) -> String {
    let noun = pick(rng, theme.nouns);
    let adj = pick(rng, theme.adjectives);
    match rng.random_range(0..4) {
        0 => format!("It shares its {noun} with [[{target}]]."),
        1 => format!("Its {noun} is often compared with [[{target}]]."),
        2 => format!("Many visitors also go to [[{target}]]."),
        _ => format!("The {adj} {noun} came from [[{target}]]."),
    }
}

/// `n_docs` documents on invented places, with origin `linked_docs:<i>` and fields `title` (e.g.
/// `Velmar Harbor`, unique) and `text` (about 420-800 characters of sentences). Every document
/// belongs to one of a few themes whose vocabulary its sentences use, and links with
/// `[[Title]]` to 1-4 other documents (fewer when there are fewer), 80% of the time of the same
/// theme, so linked documents share vocabulary.
pub fn linked_docs(seed: u64, n_docs: usize) -> Vec<Record> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut theme_of: Vec<usize> = (0..n_docs).map(|i| i % THEMES.len()).collect();
    theme_of.shuffle(&mut rng);
    let mut by_theme: Vec<Vec<usize>> = vec![Vec::new(); THEMES.len()];
    for (i, &t) in theme_of.iter().enumerate() {
        by_theme[t].push(i);
    }
    let mut taken = BTreeSet::new();
    let titles: Vec<String> = theme_of
        .iter()
        .map(|&t| {
            loop {
                let title = format!("{} {}", place_name(&mut rng), THEMES[t].place);
                if taken.insert(title.clone()) {
                    break title;
                }
            }
        })
        .collect();
    let mut records = Vec::with_capacity(n_docs);
    for (i, title) in titles.iter().enumerate() {
        let theme = &THEMES[theme_of[i]];
        let n_links = rng.random_range(1..=4).min(n_docs - 1);
        let same: Vec<usize> = by_theme[theme_of[i]]
            .iter()
            .copied()
            .filter(|&j| j != i)
            .collect();
        let mut targets: Vec<usize> = Vec::with_capacity(n_links);
        while targets.len() < n_links {
            let j = match same.choose(&mut rng) {
                Some(&j) if rng.random_bool(0.8) => j,
                _ => rng.random_range(0..n_docs),
            };
            if j != i && !targets.contains(&j) {
                targets.push(j);
            }
        }
        let links: Vec<String> = targets
            .iter()
            .map(|&j| link_sentence(&mut rng, theme, &titles[j]))
            .collect();
        let target_len = rng.random_range(420..=700);
        let links_len: usize = links.iter().map(|s| s.len() + 1).sum();
        let mut sentences = vec![format!(
            "{title} is known for its {} {}.",
            pick(&mut rng, theme.adjectives),
            pick(&mut rng, theme.nouns)
        )];
        while sentences.iter().map(|s| s.len() + 1).sum::<usize>() + links_len < target_len {
            sentences.push(body_sentence(&mut rng, theme, title));
        }
        for link in links {
            let at = rng.random_range(1..=sentences.len());
            sentences.insert(at, link);
        }
        records.push(Record::new(
            format!("linked_docs:{i}"),
            fields(&[("title", title.clone()), ("text", sentences.join(" "))]),
        ));
    }
    records
}

// ---------------------------------------------------------------------------------------------
// Verifiable tasks
// ---------------------------------------------------------------------------------------------

/// A checker's verdict on one answer: whether it is right and, when it is not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The answer is right.
    pub pass: bool,
    /// Why it fails (or `ok`).
    pub reason: String,
}

impl Verdict {
    /// A right answer.
    pub fn ok() -> Self {
        Self {
            pass: true,
            reason: "ok".to_string(),
        }
    }

    /// A wrong answer, and why.
    pub fn fail(reason: impl Into<String>) -> Self {
        Self {
            pass: false,
            reason: reason.into(),
        }
    }
}

/// The most distinct problems [`arithmetic`] makes.
pub const MAX_ARITHMETIC: usize = 500_000;

fn operand(rng: &mut StdRng) -> u32 {
    match rng.random_range(1..=3) {
        1 => rng.random_range(0..=9),
        2 => rng.random_range(10..=99),
        _ => rng.random_range(100..=999),
    }
}

/// `n` distinct problems (at most [`MAX_ARITHMETIC`]) with origin `arithmetic:<i>` and fields
/// `prompt` (`a+b` or `a-b`, each operand of 1 to 3 digits, the digit count drawn uniformly;
/// a subtraction puts the larger operand first, so results are never negative) and `response`
/// (the exact result). The `sft` transform trains on them as they are.
pub fn arithmetic(seed: u64, n: usize) -> Vec<Record> {
    let n = n.min(MAX_ARITHMETIC);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = BTreeSet::new();
    let mut records = Vec::with_capacity(n);
    while records.len() < n {
        let (mut a, mut b) = (operand(&mut rng), operand(&mut rng));
        let add = rng.random_bool(0.5);
        if !add && a < b {
            std::mem::swap(&mut a, &mut b);
        }
        let (prompt, result) = if add {
            (format!("{a}+{b}"), a + b)
        } else {
            (format!("{a}-{b}"), a - b)
        };
        if seen.insert(prompt.clone()) {
            records.push(Record::new(
                format!("arithmetic:{}", records.len()),
                fields(&[("prompt", prompt), ("response", result.to_string())]),
            ));
        }
    }
    records
}

/// Checks `answer` to an [`arithmetic`] `prompt` (`a+b` or `a-b`): it must be the exact result
/// (surrounding whitespace ignored).
pub fn check_arithmetic(prompt: &str, answer: &str) -> Verdict {
    let prompt = prompt.trim();
    let Some(at) = prompt.find(['+', '-']) else {
        return Verdict::fail(format!("not an arithmetic problem: {prompt:?}"));
    };
    let (a, b) = (prompt[..at].trim(), prompt[at + 1..].trim());
    let (Ok(a), Ok(b)) = (a.parse::<i64>(), b.parse::<i64>()) else {
        return Verdict::fail(format!("not an arithmetic problem: {prompt:?}"));
    };
    let expected = if prompt.as_bytes()[at] == b'+' {
        a + b
    } else {
        a - b
    };
    let answer = answer.trim();
    match answer.parse::<i64>() {
        Err(_) => Verdict::fail(format!("not a number: {answer:?}")),
        Ok(got) if got != expected => Verdict::fail(format!("expected {expected}, got {got}")),
        // The exact result as written: no leading zeros or sign.
        Ok(_) if answer != expected.to_string() => {
            Verdict::fail(format!("expected {expected}, got {answer:?}"))
        }
        Ok(_) => Verdict::ok(),
    }
}

/// What a [`sort_letters`] prompt starts with.
pub const SORT_PREFIX: &str = "sort ";

/// `n` distinct problems with origin `sort_letters:<i>` and fields `prompt` (`sort ` and 3 to 8
/// lowercase letters, repeats allowed) and `response` (the same letters in alphabetical order).
pub fn sort_letters(seed: u64, n: usize) -> Vec<Record> {
    let n = n.min(MAX_ARITHMETIC);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = BTreeSet::new();
    let mut records = Vec::with_capacity(n);
    while records.len() < n {
        let word = letters(&mut rng);
        if seen.insert(word.clone()) {
            let mut sorted: Vec<char> = word.chars().collect();
            sorted.sort_unstable();
            records.push(Record::new(
                format!("sort_letters:{}", records.len()),
                fields(&[
                    ("prompt", format!("{SORT_PREFIX}{word}")),
                    ("response", sorted.into_iter().collect()),
                ]),
            ));
        }
    }
    records
}

/// Checks `answer` to a [`sort_letters`] `prompt`: the same letters, in alphabetical order.
pub fn check_sort_letters(prompt: &str, answer: &str) -> Verdict {
    let Some(word) = prompt.trim().strip_prefix(SORT_PREFIX) else {
        return Verdict::fail(format!("not a sorting problem: {prompt:?}"));
    };
    let answer = answer.trim();
    if let Some(c) = answer.chars().find(|c| !c.is_ascii_lowercase()) {
        return Verdict::fail(format!("{c:?} is not a lowercase letter"));
    }
    let count = |text: &str| {
        let mut n = [0usize; 26];
        for b in text.bytes().filter(u8::is_ascii_lowercase) {
            n[usize::from(b - b'a')] += 1;
        }
        n
    };
    let (want, got) = (count(word), count(answer));
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        let letter = char::from(b'a' + i as u8);
        if g < w {
            return Verdict::fail(format!("missing {letter:?}"));
        }
        if g > w {
            return Verdict::fail(format!("extra {letter:?}"));
        }
    }
    let bytes = answer.as_bytes();
    if let Some(i) = (1..bytes.len()).find(|&i| bytes[i - 1] > bytes[i]) {
        return Verdict::fail(format!(
            "out of order at {}: {:?} before {:?}",
            i,
            char::from(bytes[i - 1]),
            char::from(bytes[i])
        ));
    }
    Verdict::ok()
}

/// The arguments of one [`api_zoo`] function and the values each accepts, as its
/// documentation says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signature {
    /// `(argument, accepted values)`, in documentation order.
    args: Vec<(String, Vec<String>)>,
}

/// Parses `name(a, b): purpose. a: 2 to 8. b: red, blue or gold.` into the name and signature.
fn parse_document(document: &str) -> Option<(String, Signature)> {
    let open = document.find('(')?;
    let close = document.find("):")?;
    let name = document[..open].to_string();
    let names: Vec<&str> = document[open + 1..close]
        .split(", ")
        .filter(|a| !a.is_empty())
        .collect();
    let rest = &document[close..];
    let mut args = Vec::with_capacity(names.len());
    for arg in names {
        let key = format!(" {arg}: ");
        let at = rest.find(&key)? + key.len();
        let values = rest[at..].split('.').next()?.trim();
        let choices = if let Some((lo, hi)) = values.split_once(" to ") {
            let (lo, hi) = (lo.parse::<i64>().ok()?, hi.parse::<i64>().ok()?);
            (lo..=hi).map(|v| v.to_string()).collect()
        } else {
            values
                .replace(" or ", ", ")
                .split(", ")
                .map(str::to_string)
                .collect()
        };
        args.push((arg.to_string(), choices));
    }
    Some((name, Signature { args }))
}

/// Why an answer does not read as a call `name(k=v, k=v)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No parentheses around the arguments.
    #[error("not a call: {0:?}")]
    NotACall(String),
    /// Nothing before the opening parenthesis.
    #[error("no function name: {0:?}")]
    NoFunctionName(String),
    /// An argument without `name=`.
    #[error("argument without a name: {0:?}")]
    UnnamedArgument(String),
}

/// Parses `name(k=v, k=v)` into the name and its `(key, value)` arguments.
fn parse_call(call: &str) -> Result<(String, Vec<(String, String)>), CallError> {
    let call = call.trim();
    let (Some(open), true) = (call.find('('), call.ends_with(')')) else {
        return Err(CallError::NotACall(call.to_string()));
    };
    let name = call[..open].trim().to_string();
    if name.is_empty() {
        return Err(CallError::NoFunctionName(call.to_string()));
    }
    let inside = call[open + 1..call.len() - 1].trim();
    let mut args = Vec::new();
    for part in inside.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(CallError::UnnamedArgument(part.to_string()));
        };
        args.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok((name, args))
}

/// Checks calls to the functions of an [`api_zoo`]: the function must exist and be the one the
/// request asks for, every documented argument must be given once with an allowed value, and
/// the values must be the request's.
#[derive(Debug, Clone, Default)]
pub struct ApiZooChecker {
    functions: std::collections::BTreeMap<String, Signature>,
    /// The reference call of every request (`question`).
    requests: std::collections::BTreeMap<String, String>,
}

impl ApiZooChecker {
    /// A checker of the functions documented in `records` (fields `document`, `question` and
    /// `answer`, as [`api_zoo`] writes them); records without them are skipped.
    pub fn new(records: &[Record]) -> Self {
        let mut checker = Self::default();
        for r in records {
            if let Some((name, sig)) = r.get("document").and_then(parse_document) {
                checker.functions.insert(name, sig);
            }
            if let (Some(q), Some(a)) = (r.get("question"), r.get("answer")) {
                checker.requests.insert(q.to_string(), a.to_string());
            }
        }
        checker
    }

    /// Functions the checker knows.
    pub fn n_functions(&self) -> usize {
        self.functions.len()
    }

    /// Checks `answer` to the request `question`.
    pub fn check(&self, question: &str, answer: &str) -> Verdict {
        let (name, args) = match parse_call(answer) {
            Ok(call) => call,
            Err(reason) => return Verdict::fail(reason.to_string()),
        };
        let Some(sig) = self.functions.get(&name) else {
            return Verdict::fail(format!("unknown function {name}"));
        };
        let reference = self
            .requests
            .get(question.trim())
            .and_then(|r| parse_call(r).ok());
        if let Some((want, _)) = &reference
            && *want != name
        {
            return Verdict::fail(format!("wrong function {name}: the request is for {want}"));
        }
        for (i, (k, _)) in args.iter().enumerate() {
            if args[..i].iter().any(|(j, _)| j == k) {
                return Verdict::fail(format!("argument {k} given twice"));
            }
            if !sig.args.iter().any(|(a, _)| a == k) {
                return Verdict::fail(format!("extra argument {k}"));
            }
        }
        for (a, choices) in &sig.args {
            let Some((_, v)) = args.iter().find(|(k, _)| k == a) else {
                return Verdict::fail(format!("missing argument {a}"));
            };
            if !choices.contains(v) {
                return Verdict::fail(format!("{a}={v} is not allowed ({})", choices.join(", ")));
            }
        }
        if let Some((_, want)) = &reference {
            for (k, v) in want {
                if let Some((_, got)) = args.iter().find(|(a, _)| a == k)
                    && got != v
                {
                    return Verdict::fail(format!("{k}={got}: the request says {v}"));
                }
            }
        }
        Verdict::ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn field<'a>(r: &'a Record, name: &str) -> &'a str {
        r.get(name).unwrap()
    }

    #[test]
    fn generators_are_deterministic_per_seed() {
        assert_eq!(api_zoo(3, 300), api_zoo(3, 300));
        assert_ne!(api_zoo(3, 300), api_zoo(4, 300));
        assert_eq!(class_tasks(3, 50), class_tasks(3, 50));
        assert_ne!(class_tasks(3, 50), class_tasks(4, 50));
        assert_eq!(linked_docs(3, 60), linked_docs(3, 60));
        assert_ne!(linked_docs(3, 60), linked_docs(4, 60));
    }

    #[test]
    fn api_zoo_functions_are_unique_and_documented() {
        let recs = api_zoo(7, 300);
        assert_eq!(recs.len(), 300 * QUESTIONS_PER_FUNCTION);
        assert_eq!(
            api_zoo(7, 100_000).len(),
            MAX_FUNCTIONS * QUESTIONS_PER_FUNCTION
        );
        let names: BTreeSet<&str> = recs.iter().map(|r| field(r, "function")).collect();
        assert_eq!(names.len(), 300);
        let questions: BTreeSet<&str> = recs
            .iter()
            .map(|r| field(r, "question").split(':').next().unwrap())
            .collect();
        assert_eq!(questions.len(), 300, "every purpose is distinct");
        let requests: BTreeSet<&str> = recs.iter().map(|r| field(r, "question")).collect();
        assert!(
            requests.len() > 300 * 2,
            "requests for one function differ in their values"
        );
        for r in &recs {
            let name = field(r, "function");
            let doc = field(r, "document");
            let question = field(r, "question");
            let answer = field(r, "answer");
            let edited_doc = field(r, EDITED_DOCUMENT_FIELD);
            let edited_answer = field(r, EDITED_ANSWER_FIELD);
            for text in [doc, question, answer, edited_doc, edited_answer] {
                assert!(text.is_ascii(), "{text}");
            }
            assert!((35..=120).contains(&doc.len()), "{doc}");
            assert!(doc.starts_with(&format!("{name}(")), "{doc}");
            assert!(answer.starts_with(&format!("{name}(")), "{answer}");
            assert!(!question.contains(name), "{question}");
            // The question uses synonyms only: none of the purpose words of the document.
            let purpose = doc.split(": ").nth(1).unwrap().split('.').next().unwrap();
            for word in purpose.split(' ').filter(|w| w.len() > 1) {
                assert!(
                    !question.split([' ', ':', ',']).any(|q| q == word),
                    "{question} / {doc}"
                );
            }
            // Argument names are in the documentation and the answer, not the question.
            let args: Vec<&str> = answer[name.len() + 1..answer.len() - 1]
                .split(", ")
                .map(|kv| kv.split('=').next().unwrap())
                .collect();
            for a in &args {
                assert!(doc.contains(&format!("{a}:")), "{doc}");
                assert!(!question.contains(a), "{question}");
            }
            // The edit renames one argument, in both the documentation and the call.
            assert_ne!(edited_doc, doc);
            assert_ne!(edited_answer, answer);
            let edited_args: Vec<&str> = edited_answer[name.len() + 1..edited_answer.len() - 1]
                .split(", ")
                .map(|kv| kv.split('=').next().unwrap())
                .collect();
            let renamed: Vec<&&str> = edited_args.iter().filter(|a| !args.contains(a)).collect();
            assert_eq!(renamed.len(), 1, "{answer} / {edited_answer}");
            assert!(EDIT_NAMES.contains(renamed[0]));
            assert!(edited_doc.contains(&format!("{}:", renamed[0])));
        }
    }

    #[test]
    fn class_tasks_are_balanced_and_follow_their_rules() {
        let recs = class_tasks(11, 200);
        let names = task_names();
        assert!(names.len() >= 6);
        assert!(names.contains(&HELD_OUT_TASK));
        let mut counts: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
        let mut inputs: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for r in &recs {
            let (task, input, label) = (field(r, "task"), field(r, "input"), field(r, "label"));
            assert!(r.origin.starts_with(&format!("class_tasks:{task}:")));
            assert!(input.is_ascii());
            assert!(inputs.entry(task).or_default().insert(input), "{input}");
            *counts.entry(task).or_default().entry(label).or_default() += 1;
            let expected = match task {
                "contains_a" => yes_no(input.contains('a')),
                "ends_with_s" => yes_no(input.ends_with('s')),
                "length_even" if input.len() % 2 == 0 => "even",
                "length_even" => "odd",
                "starts_vowel" if "aeiou".contains(&input[..1]) => "vowel",
                "starts_vowel" => "consonant",
                _ => label,
            };
            assert_eq!(label, expected, "{task}: {input}");
        }
        assert_eq!(counts.len(), names.len());
        for (task, labels) in &counts {
            assert_eq!(labels.values().sum::<usize>(), 200, "{task}");
            let (lo, hi) = (labels.values().min(), labels.values().max());
            assert!(hi.unwrap() - lo.unwrap() <= 1, "{task}: {labels:?}");
        }
        assert_eq!(counts["length_band"].len(), 3);
    }

    #[test]
    fn linked_docs_link_to_existing_documents() {
        let recs = linked_docs(5, 120);
        let titles: BTreeSet<&str> = recs.iter().map(|r| field(r, "title")).collect();
        assert_eq!(titles.len(), 120);
        for r in &recs {
            let text = field(r, "text");
            assert!(text.is_ascii());
            assert!((380..=820).contains(&text.len()), "{}", text.len());
            let links: Vec<&str> = text
                .split("[[")
                .skip(1)
                .map(|s| s.split("]]").next().unwrap())
                .collect();
            assert!((1..=4).contains(&links.len()), "{text}");
            for l in links {
                assert!(titles.contains(l), "{l}");
                assert_ne!(l, field(r, "title"));
            }
        }
        assert_eq!(linked_docs(1, 1).len(), 1);
    }

    #[test]
    fn arithmetic_problems_are_distinct_and_their_checker_knows_the_result() {
        let recs = arithmetic(1, 500);
        assert_eq!(recs.len(), 500);
        assert_eq!(recs, arithmetic(1, 500));
        let prompts: BTreeSet<&str> = recs.iter().map(|r| field(r, "prompt")).collect();
        assert_eq!(prompts.len(), 500);
        for r in &recs {
            let (p, a) = (field(r, "prompt"), field(r, "response"));
            assert_eq!(check_arithmetic(p, a), Verdict::ok(), "{p} = {a}");
            assert!(a.parse::<u32>().is_ok(), "never negative: {p} = {a}");
            let digits: Vec<&str> = p.split(['+', '-']).collect();
            assert_eq!(digits.len(), 2);
            assert!(digits.iter().all(|d| (1..=3).contains(&d.len())), "{p}");
        }
        assert!(prompts.iter().any(|p| p.contains('-')));
        assert!(
            prompts.iter().any(|p| p.len() == 3),
            "single-digit operands"
        );
        assert_eq!(check_arithmetic("12+30", " 42\n"), Verdict::ok());
        assert_eq!(check_arithmetic("120-30", "90"), Verdict::ok());
        let wrong = check_arithmetic("12+30", "43");
        assert!(!wrong.pass);
        assert_eq!(wrong.reason, "expected 42, got 43");
        assert_eq!(
            check_arithmetic("7-9", "2").reason,
            "expected -2, got 2",
            "the checker reads the prompt as written"
        );
        assert_eq!(
            check_arithmetic("12+30", "4x").reason,
            "not a number: \"4x\""
        );
        assert!(!check_arithmetic("12+30", "").pass);
        assert_eq!(
            check_arithmetic("2+3", "05").reason,
            "expected 5, got \"05\"",
            "the exact result as written"
        );
        assert!(!check_arithmetic("2+3", "+5").pass);
        assert!(
            check_arithmetic("hello", "1")
                .reason
                .contains("not an arithmetic")
        );
    }

    #[test]
    fn sort_letters_checker_says_what_is_wrong() {
        let recs = sort_letters(2, 300);
        assert_eq!(recs.len(), 300);
        for r in &recs {
            let (p, a) = (field(r, "prompt"), field(r, "response"));
            assert!(p.starts_with(SORT_PREFIX));
            assert_eq!(check_sort_letters(p, a), Verdict::ok(), "{p} -> {a}");
        }
        assert!(check_sort_letters("sort dcba", "abcd\n").pass);
        assert!(check_sort_letters("sort bab", "abb").pass);
        assert_eq!(check_sort_letters("sort dcba", "abc").reason, "missing 'd'");
        assert_eq!(check_sort_letters("sort dcba", "abcde").reason, "extra 'e'");
        assert_eq!(
            check_sort_letters("sort dcba", "abdc").reason,
            "out of order at 3: 'd' before 'c'"
        );
        assert_eq!(
            check_sort_letters("sort dcba", "ab1d").reason,
            "'1' is not a lowercase letter"
        );
        assert!(!check_sort_letters("dcba", "abcd").pass);
    }

    #[test]
    fn api_zoo_checker_passes_reference_calls_and_names_each_fault() {
        let recs = api_zoo(5, 40);
        let checker = ApiZooChecker::new(&recs);
        assert_eq!(checker.n_functions(), 40);
        for r in &recs {
            let (q, a) = (field(r, "question"), field(r, "answer"));
            assert_eq!(checker.check(q, a), Verdict::ok(), "{q} -> {a}");
        }
        let r = &recs[0];
        let (q, a) = (field(r, "question"), field(r, "answer"));
        let (name, args) = parse_call(a).unwrap();
        let doc = field(r, "document");
        let (_, sig) = parse_document(doc).unwrap();
        let call = |args: &[(String, String)]| {
            let parts: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{name}({})", parts.join(", "))
        };
        let unknown = checker.check(q, &a.replacen(&name, "zzz_nothing", 1));
        assert_eq!(unknown.reason, "unknown function zzz_nothing");
        let other = field(&recs[QUESTIONS_PER_FUNCTION], "answer");
        let wrong = checker.check(q, other);
        assert!(
            wrong.reason.starts_with("wrong function"),
            "{}",
            wrong.reason
        );
        let missing = checker.check(q, &call(&args[1..]));
        assert_eq!(missing.reason, format!("missing argument {}", args[0].0));
        let mut extra = args.clone();
        extra.push(("bogus".to_string(), "1".to_string()));
        assert_eq!(
            checker.check(q, &call(&extra)).reason,
            "extra argument bogus"
        );
        let mut twice = args.clone();
        twice.push(args[0].clone());
        assert!(
            checker
                .check(q, &call(&twice))
                .reason
                .contains("given twice")
        );
        let mut bad = args.clone();
        bad[0].1 = "nonsense".to_string();
        let not_allowed = checker.check(q, &call(&bad));
        assert!(
            not_allowed
                .reason
                .starts_with(&format!("{}=nonsense is not allowed (", args[0].0)),
            "{}",
            not_allowed.reason
        );
        // An allowed value that the request did not ask for.
        let choices = &sig.args.iter().find(|(k, _)| *k == args[0].0).unwrap().1;
        let other_value = choices.iter().find(|c| **c != args[0].1).unwrap();
        let mut differs = args.clone();
        differs[0].1 = other_value.clone();
        assert_eq!(
            checker.check(q, &call(&differs)).reason,
            format!(
                "{}={other_value}: the request says {}",
                args[0].0, args[0].1
            )
        );
        assert!(
            checker
                .check(q, "no call here")
                .reason
                .starts_with("not a call")
        );
        // Without the request, a well-formed call with allowed values passes.
        assert!(checker.check("an unseen request", a).pass);
    }
}
