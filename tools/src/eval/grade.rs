//! Grading a path's text against a task's expected answer (the rules `kestrel eval --help`
//! states):
//! 1. The graded text is what follows the last end-of-thinking marker (`--think-end`), or the
//!    whole text when the marker does not occur.
//! 2. With `--answer-regex RE`, the graded text is narrowed to the last match of RE: its
//!    capture group 1 if the group took part, else the whole match (no match: no answer).
//! 3. If the expected answer is a number, the answer is the last number in that text (an
//!    optional minus sign, digits with optional thousands commas, an optional decimal part),
//!    compared numerically. Otherwise both are compared as text: trimmed, whitespace runs
//!    collapsed to one space, case-folded.
//!
//! A path's answer *key* is its normalised answer (the number as `f64` prints it, or the folded
//! text); votes group paths by key, and two paths with one key are both right or both wrong.

use regex::Regex;

/// A task's expected answer, normalised once.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    Number(f64),
    Text(String),
}

impl Expected {
    pub fn parse(answer: &str) -> Expected {
        match parse_number(answer.trim()) {
            Some(x) => Expected::Number(x),
            None => Expected::Text(fold(answer)),
        }
    }
}

/// One graded path.
#[derive(Debug, Clone, PartialEq)]
pub struct Graded {
    /// The normalised answer (`None`: no number / no regex match).
    pub key: Option<String>,
    pub correct: bool,
}

/// The grading rules of one run.
pub struct Grader {
    think_end: String,
    regex: Option<Regex>,
    number: Regex,
}

impl Grader {
    pub fn new(think_end: &str, answer_regex: Option<&str>) -> anyhow::Result<Grader> {
        let regex = answer_regex
            .map(|r| {
                Regex::new(r).map_err(|e| {
                    // regex's message spans lines (a caret under the pattern); errors are one.
                    let msg = e
                        .to_string()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    anyhow::anyhow!("--answer-regex: {msg}")
                })
            })
            .transpose()?;
        Ok(Grader {
            think_end: think_end.to_string(),
            regex,
            number: Regex::new(r"-?\d[\d,]*(?:\.\d+)?").map_err(anyhow::Error::from)?,
        })
    }

    /// Rule 1: the text after the last marker (all of it without one).
    pub fn graded_text<'t>(&self, text: &'t str) -> &'t str {
        if self.think_end.is_empty() {
            return text;
        }
        text.rsplit_once(&self.think_end).map_or(text, |(_, a)| a)
    }

    /// Rules 1–3 for one path's text.
    pub fn grade(&self, text: &str, expected: &Expected) -> Graded {
        let mut t = self.graded_text(text);
        if let Some(re) = &self.regex {
            match re.captures_iter(t).last() {
                Some(c) => {
                    t = c.get(1).or_else(|| c.get(0)).map_or("", |m| m.as_str());
                }
                None => {
                    return Graded {
                        key: None,
                        correct: false,
                    }
                }
            }
        }
        match expected {
            Expected::Number(want) => {
                let got = self
                    .number
                    .find_iter(t)
                    .filter_map(|m| parse_number(m.as_str()))
                    .last();
                Graded {
                    key: got.map(|x| x.to_string()),
                    correct: got.is_some_and(|x| same_number(x, *want)),
                }
            }
            Expected::Text(want) => {
                let key = fold(t);
                Graded {
                    correct: key == *want,
                    key: Some(key),
                }
            }
        }
    }
}

/// Trimmed, whitespace runs collapsed, lowercased.
fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A number as rule 3 spells it (thousands commas dropped, a trailing comma ignored).
fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim_end_matches(',').replace(',', "");
    let digits = s.strip_prefix('-').unwrap_or(&s);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    s.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Equal up to f64 rounding of decimal text (relative 1e-9).
fn same_number(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grade(g: &Grader, text: &str, want: &str) -> (Option<String>, bool) {
        let r = g.grade(text, &Expected::parse(want));
        (r.key, r.correct)
    }

    #[test]
    fn numbers_are_the_last_number_after_the_last_marker() {
        let g = Grader::new("</think>", None).unwrap();
        assert_eq!(Expected::parse(" 1,234 "), Expected::Number(1234.0));
        assert_eq!(Expected::parse("Paris"), Expected::Text("paris".into()));
        // The thinking span's numbers do not count; the last number after the marker does.
        let t = "7 and 9</think>So 12 - 5 = 7.0 is the answer.";
        assert_eq!(grade(&g, t, "7"), (Some("7".into()), true));
        assert_eq!(
            grade(&g, "x</think>a</think>costs $1,250.", "1250"),
            (Some("1250".into()), true)
        );
        assert_eq!(grade(&g, "It is -3", "-3"), (Some("-3".into()), true));
        assert_eq!(grade(&g, "9 then 8", "9"), (Some("8".into()), false));
        assert_eq!(grade(&g, "no numbers</think>none", "4"), (None, false));
        assert_eq!(grade(&g, "0.5", "1/2"), (Some("0.5".into()), false));
    }

    #[test]
    fn text_is_trimmed_collapsed_and_case_folded() {
        let g = Grader::new("</think>", None).unwrap();
        assert_eq!(
            grade(&g, "hmm</think>  New   York\n", "new york"),
            (Some("new york".into()), true)
        );
        assert_eq!(grade(&g, "Paris.", "paris"), (Some("paris.".into()), false));
    }

    #[test]
    fn the_regex_takes_group_one_of_the_last_match() {
        let g = Grader::new("</think>", Some(r"answer: (\w+)")).unwrap();
        assert_eq!(
            grade(&g, "answer: no</think>answer: 12 answer: 13", "13"),
            (Some("13".into()), true)
        );
        assert_eq!(
            grade(&g, "answer: Blue", "blue"),
            (Some("blue".into()), true)
        );
        assert_eq!(grade(&g, "no match", "blue"), (None, false));
        let whole = Grader::new("", Some(r"\d+ apples")).unwrap();
        assert_eq!(
            grade(&whole, "3 apples, 4 apples", "4"),
            (Some("4".into()), true)
        );
        assert!(Grader::new("", Some("(")).is_err());
    }
}
