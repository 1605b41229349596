//! Sentiment of news: VADER with a crypto overlay, and the worker that scores articles.
//!
//! VADER (through `vader-parity`, which matches the reference Python package) gives a
//! compound score in [-1, 1]. Plain VADER misreads market news: it does not know
//! "exploit", "depeg" or "inflows", and it reads "fine" and "support" as praise. The
//! overlay (`data/sentiment/crypto_overlay.tsv`, documented in its header) corrects
//! that: VADER's compound is turned back into its raw sum (the inverse of
//! x / √(x² + 15)), each overlay phrase found adds its valence minus what VADER gave
//! the phrase on its own (negated phrases count −0.74 times), and the sum is
//! normalized again. Labels use VADER's usual thresholds: ≥ 0.05 positive, ≤ −0.05
//! negative, neutral between.
//!
//! `tests/sentiment_eval.rs` measures both on `data/sentiment/headlines.tsv` (359
//! headlines written and labelled for this project) and prints accuracy and macro-F1.

pub mod worker;

use serde::{Deserialize, Serialize};
use vader_parity::SentimentIntensityAnalyzer;

/// The overlay shipped with coinfold.
pub const CRYPTO_OVERLAY: &str = include_str!("../data/sentiment/crypto_overlay.tsv");

/// VADER's normalization constant.
const ALPHA: f64 = 15.0;
/// VADER's factor for a negated word.
const NEGATION: f64 = -0.74;
const NEGATORS: &[&str] = &[
    "not",
    "no",
    "never",
    "without",
    "fails",
    "failed",
    "fail",
    "rejects",
    "rejected",
    "denies",
    "denied",
    "delays",
    "delayed",
    "postpones",
    "postponed",
    "isn",
    "won",
    "doesn",
    "didn",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Positive,
    Negative,
    Neutral,
}

impl Label {
    pub fn of(compound: f64) -> Self {
        if compound >= 0.05 {
            Label::Positive
        } else if compound <= -0.05 {
            Label::Negative
        } else {
            Label::Neutral
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "positive" => Some(Label::Positive),
            "negative" => Some(Label::Negative),
            "neutral" => Some(Label::Neutral),
            _ => None,
        }
    }
}

/// One text's scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Plain VADER.
    pub vader: f64,
    /// VADER with the overlay.
    pub compound: f64,
    pub label: Label,
}

#[derive(Debug, Clone)]
struct Entry {
    words: Vec<String>,
    /// Valence minus VADER's own valence of the phrase.
    delta: f64,
}

/// A scorer: VADER and an overlay.
pub struct Scorer {
    vader: SentimentIntensityAnalyzer,
    /// Longest phrases first, so "etf approval" wins over "approval".
    overlay: Vec<Entry>,
}

#[derive(Debug, thiserror::Error)]
#[error("overlay line {line}: {reason}")]
pub struct OverlayError {
    pub line: usize,
    pub reason: String,
}

fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn raw_sum(compound: f64) -> f64 {
    let c = compound.clamp(-0.9999, 0.9999);
    c * ALPHA.sqrt() / (1.0 - c * c).sqrt()
}

fn normalize(sum: f64) -> f64 {
    (sum / (sum * sum + ALPHA).sqrt()).clamp(-1.0, 1.0)
}

impl Scorer {
    /// Plain VADER, no overlay.
    pub fn vader_only() -> Self {
        Self {
            vader: SentimentIntensityAnalyzer::new(),
            overlay: Vec::new(),
        }
    }

    /// VADER with coinfold's crypto overlay.
    pub fn crypto() -> Self {
        Self::with_overlay(CRYPTO_OVERLAY).unwrap_or_else(|_| Self::vader_only())
    }

    /// VADER with an overlay in the TSV form of [`CRYPTO_OVERLAY`].
    pub fn with_overlay(tsv: &str) -> Result<Self, OverlayError> {
        let vader = SentimentIntensityAnalyzer::new();
        let mut overlay = Vec::new();
        for (index, line) in tsv.lines().enumerate() {
            let line_no = index + 1;
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let (phrase, valence) = line.split_once('\t').ok_or(OverlayError {
                line: line_no,
                reason: "expected phrase<TAB>valence".to_owned(),
            })?;
            let valence: f64 = valence.trim().parse().map_err(|_| OverlayError {
                line: line_no,
                reason: format!("{valence:?} is not a number"),
            })?;
            if !(-4.0..=4.0).contains(&valence) {
                return Err(OverlayError {
                    line: line_no,
                    reason: format!("valence {valence} is outside -4 … 4"),
                });
            }
            let words = tokens(phrase);
            if words.is_empty() {
                return Err(OverlayError {
                    line: line_no,
                    reason: "empty phrase".to_owned(),
                });
            }
            let own = raw_sum(vader.polarity_scores(&words.join(" ")).compound);
            overlay.push(Entry {
                words,
                delta: valence - own,
            });
        }
        overlay.sort_by_key(|entry| std::cmp::Reverse(entry.words.len()));
        Ok(Self { vader, overlay })
    }

    pub fn score(&self, text: &str) -> Score {
        let vader = self.vader.polarity_scores(text).compound;
        if self.overlay.is_empty() {
            return Score {
                vader,
                compound: vader,
                label: Label::of(vader),
            };
        }
        let words = tokens(text);
        let mut used = vec![false; words.len()];
        let mut adjustment = 0.0;
        for entry in &self.overlay {
            let n = entry.words.len();
            let mut at = 0;
            while at + n <= words.len() {
                if used[at..at + n].iter().all(|u| !u) && words[at..at + n] == entry.words[..] {
                    let negated = words[at.saturating_sub(3)..at]
                        .iter()
                        .any(|w| NEGATORS.contains(&w.as_str()));
                    adjustment += if negated {
                        NEGATION * entry.delta
                    } else {
                        entry.delta
                    };
                    used[at..at + n].iter_mut().for_each(|u| *u = true);
                    at += n;
                } else {
                    at += 1;
                }
            }
        }
        let compound = if adjustment == 0.0 {
            vader
        } else {
            normalize(raw_sum(vader) + adjustment)
        };
        Score {
            vader,
            compound,
            label: Label::of(compound),
        }
    }
}

/// Accuracy and macro-F1 of predictions against labels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    pub n: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
}

pub fn evaluate(pairs: &[(Label, Label)]) -> Evaluation {
    let n = pairs.len();
    let correct = pairs.iter().filter(|(truth, guess)| truth == guess).count();
    let f1s: Vec<f64> = [Label::Positive, Label::Negative, Label::Neutral]
        .iter()
        .map(|label| {
            let tp = pairs
                .iter()
                .filter(|(t, g)| t == label && g == label)
                .count() as f64;
            let fp = pairs
                .iter()
                .filter(|(t, g)| t != label && g == label)
                .count() as f64;
            let fn_ = pairs
                .iter()
                .filter(|(t, g)| t == label && g != label)
                .count() as f64;
            if tp == 0.0 {
                0.0
            } else {
                let precision = tp / (tp + fp);
                let recall = tp / (tp + fn_);
                2.0 * precision * recall / (precision + recall)
            }
        })
        .collect();
    Evaluation {
        n,
        accuracy: if n == 0 {
            0.0
        } else {
            correct as f64 / n as f64
        },
        macro_f1: f1s.iter().sum::<f64>() / 3.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overlay_reads_market_words_and_negations() {
        let plain = Scorer::vader_only();
        let crypto = Scorer::crypto();
        let text = "Exchange delists token after stablecoin depegs";
        assert_eq!(plain.score(text).label, Label::Neutral);
        assert_eq!(crypto.score(text).label, Label::Negative);
        assert_eq!(
            crypto.score("Spot Bitcoin ETF inflows hit a record").label,
            Label::Positive
        );
        assert_eq!(
            crypto.score("Token burn cuts supply by 2%").label,
            Label::Positive
        );
        assert_eq!(
            crypto.score("SEC does not approve the fund").label,
            Label::Negative
        );
        assert_eq!(
            crypto
                .score("Crypto Fear and Greed Index stands at 50")
                .label,
            Label::Neutral
        );
        // Text without an overlay phrase keeps VADER's score.
        let neutral = "Conference schedule announced for March";
        assert_eq!(
            crypto.score(neutral).compound,
            plain.score(neutral).compound
        );
    }

    #[test]
    fn raw_sums_invert_the_normalization() {
        for x in [-6.0, -1.0, 0.0, 0.3, 2.5] {
            assert!((raw_sum(normalize(x)) - x).abs() < 1e-9);
        }
    }

    #[test]
    fn a_bad_overlay_names_its_line() {
        let error = Scorer::with_overlay("# c\nhack\t-9\n").err().unwrap();
        assert_eq!(error.line, 2);
        assert!(Scorer::with_overlay("hack -2").is_err());
        assert!(Scorer::with_overlay(CRYPTO_OVERLAY).is_ok());
    }

    #[test]
    fn macro_f1_averages_the_three_classes() {
        use Label::*;
        let pairs = [
            (Positive, Positive),
            (Negative, Negative),
            (Neutral, Positive),
            (Neutral, Neutral),
        ];
        let e = evaluate(&pairs);
        assert_eq!(e.accuracy, 0.75);
        // positive: p=1/2 r=1 f=2/3; negative: 1; neutral: p=1 r=1/2 f=2/3.
        assert!((e.macro_f1 - (2.0 / 3.0 + 1.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
    }
}
