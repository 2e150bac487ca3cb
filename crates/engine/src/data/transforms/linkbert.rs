//! LinkBERT: segment pairs with a next / random / linked relation, over a link graph read
//! from wiki and Markdown links (or TF-IDF neighbours when nothing links).

use super::{TransformError, tokens};
use crate::data::record::{MissingField, Record, Relation, RelationPair};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Options of [`link_graph`] and [`linkbert_pairs`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinkOptions {
    /// Field holding a document's title, which `[[Title]]` and `[text](Title)` links name.
    pub title_field: String,
    /// Field holding a document's text, which is cut into segments.
    pub text_field: String,
    /// Target segment length in characters.
    pub segment_chars: usize,
    /// Seed of the relation, segment and document draws.
    pub seed: u64,
}

impl Default for LinkOptions {
    fn default() -> Self {
        Self {
            title_field: "title".to_string(),
            text_field: "text".to_string(),
            segment_chars: 120,
            seed: 0,
        }
    }
}

/// Out-links per document in the TF-IDF graph built for collections without links.
pub const TFIDF_NEIGHBOURS: usize = 5;

/// The targets of `[[Target]]` (`|alias` and `#section` dropped) and `[text](target)` links in
/// `text`, in order.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("[[") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("]]") else { break };
        let inner = &after[..end];
        out.push(
            inner
                .split(['|', '#'])
                .next()
                .unwrap_or_default()
                .to_string(),
        );
        rest = &after[end + 2..];
    }
    let mut rest = text;
    while let Some(p) = rest.find("](") {
        let before = &rest[..p];
        let after = &rest[p + 2..];
        let line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
        if let Some(end) = after.find(')')
            && line.contains('[')
        {
            let target = after[..end].split(['#', '?']).next().unwrap_or_default();
            let target = target.trim_matches(['<', '>']).replace("%20", " ");
            if !target.trim().is_empty() {
                out.push(target);
            }
        }
        rest = after;
    }
    out
}

/// The file name of `path` without its extension (a leading dot is kept).
fn file_stem(path: &str) -> &str {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    match name.rfind('.') {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    }
}

/// The file stem of a record's origin (`path:line` or `path`).
fn origin_stem(origin: &str) -> &str {
    let path = match origin.rsplit_once(':') {
        Some((path, line)) if !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) => path,
        _ => origin,
    };
    file_stem(path)
}

/// Finds the document a link target names: a title (first one wins), else a file stem of an
/// origin that only one document has; case-insensitive.
struct Resolver {
    by_title: BTreeMap<String, usize>,
    by_stem: BTreeMap<String, usize>,
}

impl Resolver {
    fn new(docs: &[Record], o: &LinkOptions) -> Self {
        let mut by_title = BTreeMap::new();
        let mut stems: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, d) in docs.iter().enumerate() {
            if let Some(title) = d.get(&o.title_field) {
                by_title.entry(title.trim().to_lowercase()).or_insert(i);
            }
            stems
                .entry(origin_stem(&d.origin).to_lowercase())
                .or_default()
                .push(i);
        }
        let by_stem = stems
            .into_iter()
            .filter(|(_, ids)| ids.len() == 1)
            .map(|(stem, ids)| (stem, ids[0]))
            .collect();
        Self { by_title, by_stem }
    }

    fn resolve(&self, target: &str) -> Option<usize> {
        let key = target.trim().to_lowercase();
        self.by_title
            .get(&key)
            .or_else(|| self.by_stem.get(&key))
            .or_else(|| self.by_stem.get(file_stem(&key)))
            .copied()
    }
}

/// Each document linked to its `k` most cosine-similar documents (TF-IDF vectors; only
/// documents sharing a token count), most similar first.
fn tfidf_graph(texts: &[&str], k: usize) -> Vec<Vec<usize>> {
    let n = texts.len();
    let mut vocab: BTreeMap<String, usize> = BTreeMap::new();
    let counts: Vec<BTreeMap<usize, f64>> = texts
        .iter()
        .map(|t| {
            let mut c = BTreeMap::new();
            for tok in tokens(t) {
                let next = vocab.len();
                let id = *vocab.entry(tok).or_insert(next);
                *c.entry(id).or_insert(0.0) += 1.0;
            }
            c
        })
        .collect();
    let mut df = vec![0usize; vocab.len()];
    for c in &counts {
        for &id in c.keys() {
            df[id] += 1;
        }
    }
    let mut postings: Vec<Vec<(usize, f64)>> = vec![Vec::new(); vocab.len()];
    let vectors: Vec<Vec<(usize, f64)>> = counts
        .iter()
        .enumerate()
        .map(|(d, c)| {
            let mut v: Vec<(usize, f64)> = c
                .iter()
                .map(|(&id, &tf)| {
                    let idf = ((1.0 + n as f64) / (1.0 + df[id] as f64)).ln() + 1.0;
                    (id, tf * idf)
                })
                .collect();
            let norm = v.iter().map(|(_, w)| w * w).sum::<f64>().sqrt();
            for (id, w) in &mut v {
                *w /= norm;
                postings[*id].push((d, *w));
            }
            v
        })
        .collect();
    vectors
        .iter()
        .enumerate()
        .map(|(d, v)| {
            let mut sim = vec![0.0; n];
            for &(id, w) in v {
                for &(e, w2) in &postings[id] {
                    sim[e] += w * w2;
                }
            }
            let mut ranked: Vec<usize> = (0..n).filter(|&e| e != d && sim[e] > 0.0).collect();
            ranked.sort_by(|&a, &b| sim[b].total_cmp(&sim[a]).then(a.cmp(&b)));
            ranked.truncate(k);
            ranked
        })
        .collect()
}

/// Out-links of every document (indices into `docs`, no self-links, no repeats): `[[Title]]`
/// wiki links and Markdown links `[text](target)` whose target is another document's title or
/// the file name of its origin (stem, case-insensitive). When no document links to another,
/// each links to its [`TFIDF_NEIGHBOURS`] most TF-IDF-similar documents instead.
pub fn link_graph(docs: &[Record], o: &LinkOptions) -> Vec<Vec<usize>> {
    let resolver = Resolver::new(docs, o);
    let texts: Vec<&str> = docs
        .iter()
        .map(|d| d.get(&o.text_field).unwrap_or_default())
        .collect();
    let graph: Vec<Vec<usize>> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let mut out = Vec::new();
            for target in link_targets(text) {
                if let Some(j) = resolver.resolve(&target)
                    && j != i
                    && !out.contains(&j)
                {
                    out.push(j);
                }
            }
            out
        })
        .collect();
    if graph.iter().all(Vec::is_empty) {
        tfidf_graph(&texts, TFIDF_NEIGHBOURS)
    } else {
        graph
    }
}

/// `text` with `[[Target]]` and `[[Target|alias]]` written as `Target` and `alias`.
fn strip_wiki_brackets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("[[") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("]]") else { break };
        out.push_str(&rest[..start]);
        let inner = &after[..end];
        out.push_str(inner.rsplit('|').next().unwrap_or(inner));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// `text` cut into trimmed, non-empty segments of at most `segment_chars` characters: each ends
/// at the last sentence end (`.`, `!` or `?` before whitespace, or a newline) in its second
/// half, else at the last whitespace there, else after `segment_chars` characters.
pub fn segments(text: &str, segment_chars: usize) -> Vec<String> {
    let limit = segment_chars.max(1);
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let byte_at = |i: usize| chars.get(i).map_or(text.len(), |&(b, _)| b);
    let sentence_end = |j: usize| {
        let c = chars[j].1;
        c == '\n'
            || (matches!(c, '.' | '!' | '?')
                && chars
                    .get(j + 1)
                    .is_none_or(|&(_, next)| next.is_whitespace()))
    };
    let mut out = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let end = if chars.len() - start <= limit {
            chars.len()
        } else {
            let window_end = start + limit;
            let min_cut = start + limit / 2;
            (min_cut..window_end)
                .rev()
                .find(|&j| sentence_end(j))
                .map(|j| j + 1)
                .or_else(|| {
                    (min_cut.max(start + 1)..=window_end)
                        .rev()
                        .find(|&j| chars[j].1.is_whitespace())
                })
                .unwrap_or(window_end)
        };
        let segment = text[byte_at(start)..byte_at(end)].trim();
        if !segment.is_empty() {
            out.push(segment.to_string());
        }
        start = end;
    }
    out
}

/// `n_pairs` LinkBERT pairs. Each takes segment `i` (not the last) of a document with at least
/// two segments as A, and a relation drawn uniformly: Next takes B = segment `i + 1`; Random a
/// segment of another random document; Linked a random segment of a document A's document
/// links to (see [`link_graph`]), linked documents drawn with probability proportional to
/// 1 / their in-degree, and A drawn among documents with links. Wiki-link brackets are removed
/// from the segments; the titles stay.
pub fn linkbert_pairs(
    docs: &[Record],
    o: &LinkOptions,
    n_pairs: usize,
) -> Result<Vec<RelationPair>, TransformError> {
    let segs: Vec<Vec<String>> = docs
        .iter()
        .map(|d| {
            let text = d.require(&o.text_field)?;
            Ok(segments(&strip_wiki_brackets(text), o.segment_chars))
        })
        .collect::<Result<_, MissingField>>()?;
    if n_pairs == 0 {
        return Ok(Vec::new());
    }
    let graph = link_graph(docs, o);
    let mut in_degree = vec![0usize; docs.len()];
    for &t in graph.iter().flatten() {
        in_degree[t] += 1;
    }
    let has_segments = |d: usize| !segs[d].is_empty();
    let starts: Vec<usize> = (0..docs.len()).filter(|&d| segs[d].len() >= 2).collect();
    let linked_starts: Vec<usize> = starts
        .iter()
        .copied()
        .filter(|&d| graph[d].iter().any(|&t| has_segments(t)))
        .collect();
    let with_segments: Vec<usize> = (0..docs.len()).filter(|&d| has_segments(d)).collect();
    if starts.is_empty() {
        return Err(TransformError::NoTwoSegmentDocument {
            segment_chars: o.segment_chars,
        });
    }
    if with_segments.len() < 2 {
        return Err(TransformError::TooFewDocuments);
    }
    if linked_starts.is_empty() {
        return Err(TransformError::NoLinkedDocument);
    }
    let mut rng = StdRng::seed_from_u64(o.seed);
    let mut pairs = Vec::with_capacity(n_pairs);
    for _ in 0..n_pairs {
        let relation = Relation::ALL[rng.random_range(0..Relation::ALL.len())];
        let candidates = if relation == Relation::Linked {
            &linked_starts
        } else {
            &starts
        };
        let a_doc = candidates[rng.random_range(0..candidates.len())];
        let i = rng.random_range(0..segs[a_doc].len() - 1);
        let b_doc = match relation {
            Relation::Next => a_doc,
            Relation::Random => loop {
                let d = with_segments[rng.random_range(0..with_segments.len())];
                if d != a_doc {
                    break d;
                }
            },
            Relation::Linked => {
                let targets: Vec<usize> = graph[a_doc]
                    .iter()
                    .copied()
                    .filter(|&t| has_segments(t))
                    .collect();
                *targets.choose_weighted(&mut rng, |&t| 1.0 / in_degree[t] as f64)?
            }
        };
        let b = if relation == Relation::Next {
            segs[a_doc][i + 1].clone()
        } else {
            segs[b_doc][rng.random_range(0..segs[b_doc].len())].clone()
        };
        pairs.push(RelationPair {
            a: segs[a_doc][i].clone(),
            b,
            relation,
            a_doc,
            b_doc,
        });
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::generators::linked_docs;
    use crate::data::transforms::rec;

    #[test]
    fn linkbert_relations_are_balanced_and_valid() {
        let docs = linked_docs(2, 120);
        let o = LinkOptions::default();
        let graph = link_graph(&docs, &o);
        let pairs = linkbert_pairs(&docs, &o, 3000).unwrap();
        assert_eq!(pairs.len(), 3000);
        for rel in Relation::ALL {
            let frac =
                pairs.iter().filter(|p| p.relation == rel).count() as f64 / pairs.len() as f64;
            assert!((frac - 1.0 / 3.0).abs() < 0.05, "{rel:?}: {frac}");
        }
        for p in &pairs {
            assert!(!p.a.contains("[[") && !p.b.contains("]]"));
            assert!(p.a.len() <= o.segment_chars && !p.a.is_empty());
            match p.relation {
                Relation::Next => assert_eq!(p.a_doc, p.b_doc),
                Relation::Random => assert_ne!(p.a_doc, p.b_doc),
                Relation::Linked => assert!(graph[p.a_doc].contains(&p.b_doc)),
            }
        }
        assert_eq!(linkbert_pairs(&docs, &o, 3000).unwrap(), pairs);
    }

    #[test]
    fn link_graph_reads_wiki_and_markdown_links() {
        let docs = vec![
            rec(
                "notes/Alpha.md",
                &[(
                    "text",
                    "See [[Beta|the second]] and [[beta]] and [[Alpha]].",
                )],
            ),
            rec(
                "notes/Beta.md",
                &[("text", "Back to [alpha](./Alpha.md#top).")],
            ),
            rec(
                "notes/gamma notes.md",
                &[
                    ("title", "Gamma"),
                    ("text", "Links [b](Beta) and [x](http://a.b/c)."),
                ],
            ),
            rec("notes/delta.md", &[("text", "A [link](gamma%20notes.md).")]),
        ];
        let g = link_graph(&docs, &LinkOptions::default());
        assert_eq!(g, vec![vec![1], vec![0], vec![1], vec![2]]);
        assert_eq!(
            strip_wiki_brackets("See [[Beta|the second]] and [[Gamma]]."),
            "See the second and Gamma."
        );
    }

    #[test]
    fn tfidf_graph_when_nothing_links() {
        let docs: Vec<Record> = linked_docs(3, 30)
            .into_iter()
            .map(|d| {
                let text = strip_wiki_brackets(d.get("text").unwrap());
                Record::new(d.origin.clone(), vec![("text".to_string(), text)])
            })
            .collect();
        let g = link_graph(&docs, &LinkOptions::default());
        for (i, out) in g.iter().enumerate() {
            assert_eq!(out.len(), TFIDF_NEIGHBOURS);
            assert!(!out.contains(&i));
        }
        assert!(linkbert_pairs(&docs, &LinkOptions::default(), 300).is_ok());
    }

    #[test]
    fn linked_documents_are_drawn_by_inverse_in_degree() {
        let long = |name: &str| format!("{name} is a place. It has many words in it. ");
        let text = |name: &str, links: &str| format!("{}{}{links}", long(name), long(name));
        // A links to Hub (in-degree 4) and Rare (in-degree 1).
        let docs = vec![
            rec(
                "a",
                &[("title", "A"), ("text", &text("A", "[[Hub]] [[Rare]]"))],
            ),
            rec("b", &[("title", "B"), ("text", &text("B", "[[Hub]]"))]),
            rec("c", &[("title", "C"), ("text", &text("C", "[[Hub]]"))]),
            rec("d", &[("title", "D"), ("text", &text("D", "[[Hub]]"))]),
            rec("hub", &[("title", "Hub"), ("text", &text("Hub", ""))]),
            rec("rare", &[("title", "Rare"), ("text", &text("Rare", ""))]),
        ];
        let o = LinkOptions {
            segment_chars: 40,
            ..LinkOptions::default()
        };
        let pairs = linkbert_pairs(&docs, &o, 6000).unwrap();
        let from_a = |b_doc| {
            pairs
                .iter()
                .filter(|p| p.relation == Relation::Linked && p.a_doc == 0 && p.b_doc == b_doc)
                .count()
        };
        let (hub, rare) = (from_a(4), from_a(5));
        // Expected 1/5 vs 4/5 of A's linked pairs.
        assert!(rare > 2 * hub && hub > 0, "hub {hub}, rare {rare}");
    }

    #[test]
    fn segments_cut_at_sentences_near_the_length() {
        let text = "One short sentence. Another one follows here. And a third sentence ends it. \
                    Then words without any stop at all go on and on for a while";
        let segs = segments(text, 50);
        assert!(
            segs.iter().all(|s| s.len() <= 50 && !s.is_empty()),
            "{segs:?}"
        );
        assert_eq!(segs[0], "One short sentence. Another one follows here.");
        assert_eq!(segs.join(" "), text);
        assert_eq!(segments("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(segments("", 10), Vec::<String>::new());
        let accented = segments("d\u{e9}j\u{e0} vu, d\u{e9}j\u{e0} vu", 6);
        assert!(
            accented.iter().all(|s| s.chars().count() <= 6),
            "{accented:?}"
        );
        assert_eq!(accented.join(" "), "d\u{e9}j\u{e0} vu, d\u{e9}j\u{e0} vu");
    }
}
