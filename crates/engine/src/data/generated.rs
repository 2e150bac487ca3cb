//! Built-in generated text, so a first launch can train without any file.
//!
//! The generator writes small sentences from a fixed grammar with a seeded RNG. The text has
//! real structure (agreement, recurring phrases, punctuation) that a small model learns within
//! a few hundred steps, and a count model cannot fully exploit.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SUBJECTS: &[&str] = &[
    "the cat",
    "the dog",
    "a bird",
    "the old man",
    "my sister",
    "the baker",
    "a child",
    "the captain",
    "our teacher",
    "the queen",
];
const VERBS: &[&str] = &[
    "sees",
    "finds",
    "likes",
    "paints",
    "follows",
    "carries",
    "remembers",
    "greets",
];
const OBJECTS: &[&str] = &[
    "the red ball",
    "a small boat",
    "the garden",
    "an apple",
    "the letter",
    "a silver key",
    "the river",
    "the market",
];
const PLACES: &[&str] = &[
    "in the morning",
    "at night",
    "near the sea",
    "after the rain",
    "by the window",
    "before dinner",
];

/// Generates about `n_chars` characters of text from `seed`.
pub fn story_text(seed: u64, n_chars: usize) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = String::with_capacity(n_chars + 128);
    let pick = |rng: &mut StdRng, words: &[&'static str]| words[rng.random_range(0..words.len())];
    while out.len() < n_chars {
        let subject = pick(&mut rng, SUBJECTS);
        let verb = pick(&mut rng, VERBS);
        let object = pick(&mut rng, OBJECTS);
        let mut sentence = format!("{subject} {verb} {object}");
        if rng.random_bool(0.5) {
            sentence.push(' ');
            sentence.push_str(pick(&mut rng, PLACES));
        }
        if rng.random_bool(0.3) {
            // A second clause whose pronoun agrees with the subject's verb form.
            sentence.push_str(", and then ");
            sentence.push_str(pick(&mut rng, VERBS));
            sentence.push(' ');
            sentence.push_str(pick(&mut rng, OBJECTS));
        }
        let mut chars = sentence.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
        out.push_str(if rng.random_bool(0.15) { ".\n" } else { ". " });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_text_is_seeded() {
        let a = story_text(7, 2_000);
        assert_eq!(a, story_text(7, 2_000), "same seed, same text");
        assert_ne!(a, story_text(8, 2_000), "another seed, other text");
        assert!(a.len() >= 2_000);
    }
}
