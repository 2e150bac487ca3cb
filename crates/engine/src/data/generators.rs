//! Built-in structured datasets, so every transform can be tried with nothing downloaded.
//!
//! - [`api_zoo`]: invented functions with documentation, paraphrased instructions and calls, for
//!   retrieval-aware fine-tuning (RAFT).
//! - [`class_tasks`]: families of small classification tasks with checkable rules, for symbol
//!   tuning.
//! - [`linked_docs`]: documents on invented topics that link to each other, for LinkBERT.
//!
//! Every generator is deterministic given its seed and writes ASCII text only.

use super::record::Record;
use super::transforms::{EDITED_ANSWER_FIELD, EDITED_DOCUMENT_FIELD};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
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
}
