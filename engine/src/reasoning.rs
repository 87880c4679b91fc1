//! Test-time scaling around the decode loop: budget forcing of the thinking span, and the
//! aggregation of N reasoning paths (best-of-N by verifier score, majority vote, verifier-weighted
//! vote).

use std::collections::VecDeque;

use crate::error::{EngineError, Result};
use crate::head::sigmoid;

/// A thinking budget (budget forcing): at most `max_tokens` sampled tokens before the thinking
/// span ends. If a path has not produced the `end` token sequence by then, the engine forces it
/// (the next `end.len()` tokens are `end`, whatever the model would sample) and the path goes on
/// to its answer. Matching is on token ids: `end` should be the ids the model itself emits for
/// its end-of-thinking marker (e.g. `engine.encode("</think>")` without special tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinkingBudget {
    /// Sampled thinking tokens allowed (0 = close the span at once).
    pub max_tokens: usize,
    /// The end-of-thinking token sequence (not empty).
    pub end: Vec<u32>,
}

impl ThinkingBudget {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.end.is_empty() {
            return Err(EngineError::BadParameter(
                "the thinking budget's end sequence is empty".into(),
            ));
        }
        Ok(())
    }
}

/// Budget forcing state of one path.
#[derive(Debug, Clone)]
pub(crate) struct Thinking {
    budget: Option<ThinkingBudget>,
    /// Sampled tokens so far inside the thinking span.
    count: usize,
    /// The span has ended (the end sequence was produced, by the model or forced).
    done: bool,
    /// The last `end.len()` tokens, to spot the end sequence.
    tail: VecDeque<u32>,
    /// Tokens still to force.
    forced: VecDeque<u32>,
    /// Whether the budget ran out and the end was forced.
    pub was_forced: bool,
}

impl Thinking {
    pub fn new(budget: Option<&ThinkingBudget>) -> Thinking {
        let mut t = Thinking {
            budget: budget.cloned(),
            count: 0,
            done: budget.is_none(),
            tail: VecDeque::new(),
            forced: VecDeque::new(),
            was_forced: false,
        };
        if budget.is_some_and(|b| b.max_tokens == 0) {
            t.force();
        }
        t
    }

    fn force(&mut self) {
        if let Some(b) = &self.budget {
            self.forced = b.end.iter().copied().collect();
            self.was_forced = true;
        }
    }

    /// The token the path takes next, given what was sampled: a forced token while the end
    /// sequence is being forced, else `sampled`.
    pub fn choose(&mut self, sampled: u32) -> u32 {
        let forcing = !self.forced.is_empty();
        let id = self.forced.pop_front().unwrap_or(sampled);
        if self.done {
            return id;
        }
        let Some(b) = &self.budget else {
            return id;
        };
        self.tail.push_back(id);
        if self.tail.len() > b.end.len() {
            self.tail.pop_front();
        }
        if self.tail.iter().eq(b.end.iter()) {
            self.done = true;
            self.forced.clear();
        } else if !forcing {
            self.count += 1;
            if self.count >= b.max_tokens {
                self.force();
            }
        }
        id
    }
}

/// How N paths' answers become one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// The path with the highest verifier score.
    BestOfN,
    /// The most frequent answer (ties: the higher summed verifier score if there are scores,
    /// then the earlier path).
    MajorityVote,
    /// The answer with the largest sum of `sigmoid(score)` over the paths that gave it.
    WeightedVote,
}

/// The aggregated result.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The chosen path: the best-scored path with the winning answer (the earliest without
    /// scores).
    pub path: usize,
    /// The winning answer (normalized: trimmed, whitespace runs collapsed).
    pub answer: String,
    /// Paths that gave the winning answer.
    pub votes: usize,
    /// Its support: vote count (majority), summed `sigmoid(score)` (weighted), or the best
    /// path's `sigmoid(score)` (best-of-N).
    pub support: f32,
}

/// The answer part of a path's text: what follows the last `think_end` marker (the whole text
/// when there is none), trimmed, with whitespace runs collapsed to one space.
pub fn final_answer(text: &str, think_end: Option<&str>) -> String {
    let answer = match think_end.filter(|m| !m.is_empty()) {
        Some(m) => text.rsplit_once(m).map_or(text, |(_, a)| a),
        None => text,
    };
    answer.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Aggregate `answers` (one per path, already normalized with [`final_answer`]) with the paths'
/// verifier `scores` (logits; `None` without a verifier). Best-of-N and the weighted vote need
/// every score.
pub fn aggregate(answers: &[String], scores: &[Option<f32>], how: Aggregation) -> Result<Choice> {
    if answers.is_empty() || answers.len() != scores.len() {
        return Err(EngineError::BadParameter(format!(
            "aggregate: {} answers and {} scores",
            answers.len(),
            scores.len()
        )));
    }
    let need_scores = || -> Result<Vec<f32>> {
        scores
            .iter()
            .map(|s| {
                s.ok_or_else(|| {
                    EngineError::BadParameter(format!(
                        "{how:?} needs a verifier score for every path (load a verifier head)"
                    ))
                })
            })
            .collect()
    };
    // Paths with each distinct answer, in order of first appearance.
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, a) in answers.iter().enumerate() {
        match groups.iter_mut().find(|(g, _)| *g == a.as_str()) {
            Some((_, v)) => v.push(i),
            None => groups.push((a, vec![i])),
        }
    }
    let best_path = |paths: &[usize]| -> usize {
        paths
            .iter()
            .copied()
            .fold(paths[0], |b, p| match (scores[p], scores[b]) {
                (Some(sp), Some(sb)) if sp > sb => p,
                _ => b,
            })
    };
    let summed = |paths: &[usize], f: &dyn Fn(f32) -> f32| -> f32 {
        paths.iter().filter_map(|&p| scores[p]).map(f).sum()
    };
    let choice = |paths: &[usize], support: f32| {
        let path = best_path(paths);
        Choice {
            path,
            answer: answers[path].clone(),
            votes: paths.len(),
            support,
        }
    };
    match how {
        Aggregation::BestOfN => {
            let s = need_scores()?;
            let all: Vec<usize> = (0..answers.len()).collect();
            let path = best_path(&all);
            let votes = answers.iter().filter(|a| **a == answers[path]).count();
            Ok(Choice {
                path,
                answer: answers[path].clone(),
                votes,
                support: sigmoid(s[path]),
            })
        }
        Aggregation::MajorityVote => {
            // (votes, summed score); the first group wins ties.
            let win = winner(&groups, |g| (g.len() as f32, summed(g, &|x| x)));
            Ok(choice(win, win.len() as f32))
        }
        Aggregation::WeightedVote => {
            need_scores()?;
            let w = |paths: &[usize]| summed(paths, &sigmoid);
            let win = winner(&groups, |g| (w(g), 0.0));
            Ok(choice(win, w(win)))
        }
    }
}

/// The paths of the group with the largest `key` (compared lexicographically); the first group
/// wins ties.
fn winner<'g>(
    groups: &'g [(&str, Vec<usize>)],
    key: impl Fn(&[usize]) -> (f32, f32),
) -> &'g [usize] {
    let mut win = &groups[0].1;
    for (_, g) in &groups[1..] {
        let (kg, kw) = (key(g), key(win));
        if kg.0 > kw.0 || (kg.0 == kw.0 && kg.1 > kw.1) {
            win = g;
        }
    }
    win
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(t: &mut Thinking, sampled: &[u32]) -> Vec<u32> {
        sampled.iter().map(|&s| t.choose(s)).collect()
    }

    #[test]
    fn budget_forces_the_end_sequence_after_max_tokens() {
        let b = ThinkingBudget {
            max_tokens: 3,
            end: vec![90, 91],
        };
        let mut t = Thinking::new(Some(&b));
        assert_eq!(run(&mut t, &[1, 2, 3, 4, 5, 6, 7]), [1, 2, 3, 90, 91, 6, 7]);
        assert!(t.was_forced);
    }

    #[test]
    fn an_end_sequence_the_model_produces_ends_the_span_without_forcing() {
        let b = ThinkingBudget {
            max_tokens: 4,
            end: vec![90, 91],
        };
        let mut t = Thinking::new(Some(&b));
        assert_eq!(
            run(&mut t, &[1, 90, 91, 4, 5, 6, 7]),
            [1, 90, 91, 4, 5, 6, 7]
        );
        assert!(!t.was_forced);
        // A zero budget forces at once; no budget never forces.
        let mut t = Thinking::new(Some(&ThinkingBudget { max_tokens: 0, ..b }));
        assert_eq!(run(&mut t, &[1, 2, 3]), [90, 91, 3]);
        let mut t = Thinking::new(None);
        assert_eq!(run(&mut t, &[1, 2, 3]), [1, 2, 3]);
    }

    #[test]
    fn final_answer_takes_the_text_after_the_last_marker() {
        assert_eq!(
            final_answer("a</think> b </think>  42 \n", Some("</think>")),
            "42"
        );
        assert_eq!(final_answer("  no  marker ", Some("</think>")), "no marker");
        assert_eq!(final_answer("x y", None), "x y");
    }

    #[test]
    fn aggregation_rules() {
        let a: Vec<String> = ["7", "8", "7", "9"].iter().map(|s| s.to_string()).collect();
        let s = [Some(-2.0), Some(3.0), Some(-1.0), Some(0.5)];
        let best = aggregate(&a, &s, Aggregation::BestOfN).unwrap();
        assert_eq!((best.path, best.answer.as_str(), best.votes), (1, "8", 1));
        let maj = aggregate(&a, &s, Aggregation::MajorityVote).unwrap();
        // "7" has two votes; its better-scored path is 2.
        assert_eq!((maj.path, maj.answer.as_str(), maj.votes), (2, "7", 2));
        assert_eq!(maj.support, 2.0);
        // sigmoid(3) = 0.95 > sigmoid(-2) + sigmoid(-1) = 0.39
        let w = aggregate(&a, &s, Aggregation::WeightedVote).unwrap();
        assert_eq!((w.path, w.answer.as_str()), (1, "8"));
        // Without scores: majority works, ties go to the first answer; the others refuse.
        let none = [None; 4];
        let b: Vec<String> = ["x", "y", "y", "x"].iter().map(|s| s.to_string()).collect();
        let maj = aggregate(&b, &none, Aggregation::MajorityVote).unwrap();
        assert_eq!((maj.path, maj.answer.as_str()), (0, "x"));
        assert!(aggregate(&b, &none, Aggregation::BestOfN).is_err());
        assert!(aggregate(&b, &none, Aggregation::WeightedVote).is_err());
        assert!(aggregate(&b, &none[..3], Aggregation::MajorityVote).is_err());
    }
}
