//! Plain VADER against VADER with the crypto overlay, on the project's labelled set of
//! crypto headlines (`data/sentiment/headlines.tsv`). Prints accuracy and macro-F1 for
//! both; the overlay must not be worse on either.

use coinfold_projections::sentiment::{Label, Scorer, evaluate};

#[test]
fn the_crypto_overlay_is_not_worse_than_plain_vader() {
    let set = include_str!("../data/sentiment/headlines.tsv");
    let rows: Vec<(Label, &str)> = set
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty() && !l.starts_with("label\t"))
        .map(|l| {
            let (label, text) = l
                .split_once('\t')
                .unwrap_or_else(|| panic!("no tab: {l:?}"));
            (
                Label::parse(label).unwrap_or_else(|| panic!("label {label:?}")),
                text,
            )
        })
        .collect();
    assert!(rows.len() >= 300, "{} headlines", rows.len());
    let plain = Scorer::vader_only();
    let crypto = Scorer::crypto();
    let vader: Vec<(Label, Label)> = rows
        .iter()
        .map(|(t, h)| (*t, plain.score(h).label))
        .collect();
    let overlay: Vec<(Label, Label)> = rows
        .iter()
        .map(|(t, h)| (*t, crypto.score(h).label))
        .collect();
    let (v, o) = (evaluate(&vader), evaluate(&overlay));
    let count = |label| rows.iter().filter(|(t, _)| *t == label).count();
    println!(
        "sentiment evaluation: {} headlines ({} positive, {} negative, {} neutral)",
        v.n,
        count(Label::Positive),
        count(Label::Negative),
        count(Label::Neutral)
    );
    println!(
        "  plain VADER:            accuracy {:.3}, macro-F1 {:.3}",
        v.accuracy, v.macro_f1
    );
    println!(
        "  VADER + crypto overlay: accuracy {:.3}, macro-F1 {:.3}",
        o.accuracy, o.macro_f1
    );
    assert!(
        o.accuracy >= v.accuracy,
        "overlay accuracy {} < {}",
        o.accuracy,
        v.accuracy
    );
    assert!(
        o.macro_f1 >= v.macro_f1,
        "overlay macro-F1 {} < {}",
        o.macro_f1,
        v.macro_f1
    );
}
