//! The words of a dataset: tokens and their weights.

use std::collections::{HashMap, HashSet};

use crate::model::DatasetRecord;

/// Longest indexed token, in characters; longer runs are not indexed.
pub const MAX_TOKEN_CHARS: usize = 64;

/// Weight of a word in the title.
pub const TITLE_WEIGHT: u32 = 3;
/// Weight of a word in a keyword.
pub const KEYWORD_WEIGHT: u32 = 2;
/// Weight of a word in the description.
pub const DESCRIPTION_WEIGHT: u32 = 1;
/// Largest weight of one word.
pub const MAX_TERM_WEIGHT: u32 = TITLE_WEIGHT + KEYWORD_WEIGHT + DESCRIPTION_WEIGHT;

/// Each token of title, keywords and description with its weight: the sum
/// of the weights of the fields it appears in (repeating a word adds
/// nothing), so at most [`MAX_TERM_WEIGHT`].
pub fn weighted_terms(record: &DatasetRecord) -> Vec<(String, u32)> {
    let keywords = record.keywords.join(" ");
    let fields = [
        (record.title.as_str(), TITLE_WEIGHT),
        (keywords.as_str(), KEYWORD_WEIGHT),
        (record.description.as_str(), DESCRIPTION_WEIGHT),
    ];
    let mut weights: HashMap<String, u32> = HashMap::new();
    for (text, weight) in fields {
        let tokens: HashSet<String> = tokenize(text).into_iter().collect();
        for token in tokens {
            *weights.entry(token).or_default() += weight;
        }
    }
    weights.into_iter().collect()
}

/// The tokens of `text`: lower-case runs of letters and digits, each CJK
/// character on its own; runs longer than [`MAX_TOKEN_CHARS`] are dropped.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut length = 0_usize;
    let flush = |current: &mut String, length: &mut usize, tokens: &mut Vec<String>| {
        if !current.is_empty() && *length <= MAX_TOKEN_CHARS {
            tokens.push(std::mem::take(current));
        }
        current.clear();
        *length = 0;
    };
    for c in text.chars() {
        if is_cjk(c) {
            flush(&mut current, &mut length, &mut tokens);
            tokens.push(c.to_string());
        } else if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
            length += 1;
        } else {
            flush(&mut current, &mut length, &mut tokens);
        }
    }
    flush(&mut current, &mut length, &mut tokens);
    tokens
}

fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}'     // hiragana, katakana
        | '\u{3400}'..='\u{4DBF}'   // CJK extension A
        | '\u{4E00}'..='\u{9FFF}'   // CJK unified ideographs
        | '\u{F900}'..='\u{FAFF}'   // CJK compatibility ideographs
        | '\u{20000}'..='\u{2EBEF}' // CJK extensions B to F
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_words_and_cjk_characters() {
        assert_eq!(
            tokenize("Spindle-Vibration, 2024!"),
            ["spindle", "vibration", "2024"]
        );
        assert_eq!(tokenize("数据开放 list"), ["数", "据", "开", "放", "list"]);
        assert!(tokenize(&"x".repeat(MAX_TOKEN_CHARS + 1)).is_empty());
    }

    #[test]
    fn a_word_weighs_once_per_field() {
        let provider = crate::sample::SampleProvider::new("p").unwrap();
        let mut record = crate::search::tests::record(&provider, 1);
        record.title = "Pump pump PUMP".into();
        record.keywords = vec!["pump".into(), "pump".into()];
        record.description = "pump valve pump".into();
        let weights: HashMap<String, u32> = weighted_terms(&record).into_iter().collect();
        assert_eq!(weights["pump"], MAX_TERM_WEIGHT);
        assert_eq!(weights["valve"], DESCRIPTION_WEIGHT);
    }
}
