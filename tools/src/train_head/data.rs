//! Training examples and the `--features-out` / `--features-in` cache.
//!
//! The cache is JSON Lines: a header `{"kestrel_features": 1, "kind", "pooling", "base_hash",
//! "hidden"}`, then one example per line `{"group", "label", "answer", "x": [hidden floats]}`.
//! Floats are written in shortest round-trip form, so a fit from the cache equals the fit from
//! the generation that wrote it.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// One example: the features of a prompt (switcher) or a path (verifier), and its label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// The problem it belongs to (the split keeps a problem's paths together).
    pub group: String,
    /// Reasoning (switcher) or correct (verifier).
    pub label: bool,
    /// The verifier's normalised answer (votes group by it).
    pub answer: Option<String>,
    pub x: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub kestrel_features: u32,
    pub kind: String,
    pub pooling: String,
    pub base_hash: String,
    pub hidden: usize,
}

pub fn write(path: &Path, header: &Header, examples: &[Example]) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    serde_json::to_writer(&mut f, header)?;
    f.write_all(b"\n")?;
    for e in examples {
        serde_json::to_writer(&mut f, e)?;
        f.write_all(b"\n")?;
    }
    f.flush()?;
    Ok(())
}

pub fn read(path: &Path) -> anyhow::Result<(Header, Vec<Example>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, first) = lines
        .next()
        .with_context(|| format!("{} is empty", path.display()))?;
    let header: Header = serde_json::from_str(first)
        .with_context(|| format!("{}: not a features file (line 1)", path.display()))?;
    if header.kestrel_features != 1 {
        bail!(
            "{}: features format {} (this tool reads 1)",
            path.display(),
            header.kestrel_features
        );
    }
    let mut out = Vec::new();
    for (i, l) in lines {
        let e: Example = serde_json::from_str(l)
            .with_context(|| format!("{} line {}", path.display(), i + 1))?;
        if e.x.len() != header.hidden || e.x.iter().any(|v| !v.is_finite()) {
            bail!(
                "{} line {}: features are not {} finite numbers",
                path.display(),
                i + 1,
                header.hidden
            );
        }
        out.push(e);
    }
    Ok((header, out))
}

/// Splits the examples' groups into train and validation: `fraction` of the groups (at least
/// one when there are two or more and `fraction > 0`, never all), chosen by a seeded shuffle.
pub fn split(examples: &[Example], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut groups: Vec<&str> = Vec::new();
    for e in examples {
        if !groups.contains(&e.group.as_str()) {
            groups.push(&e.group);
        }
    }
    // Fisher–Yates with splitmix64.
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..groups.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        groups.swap(i, j);
    }
    let mut n_val = (fraction * groups.len() as f64).round() as usize;
    if fraction > 0.0 && groups.len() >= 2 {
        n_val = n_val.clamp(1, groups.len() - 1);
    }
    let val: std::collections::HashSet<&str> =
        groups[..n_val.min(groups.len())].iter().copied().collect();
    (0..examples.len()).partition(|&i| !val.contains(examples[i].group.as_str()))
}

/// The area under the ROC curve of `scores` for `labels` (ties count half); `None` without both
/// classes.
pub fn auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let pos: Vec<f64> = scores
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l)
        .map(|(s, _)| *s)
        .collect();
    let neg: Vec<f64> = scores
        .iter()
        .zip(labels)
        .filter(|(_, &l)| !l)
        .map(|(s, _)| *s)
        .collect();
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let mut wins = 0.0;
    for p in &pos {
        for n in &neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    Some(wins / (pos.len() * neg.len()) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(group: &str) -> Example {
        Example {
            group: group.into(),
            label: false,
            answer: None,
            x: vec![],
        }
    }

    #[test]
    fn split_keeps_groups_together() {
        let e: Vec<Example> = ["a", "a", "b", "c", "c", "d", "e"]
            .iter()
            .map(|g| ex(g))
            .collect();
        let (train, val) = split(&e, 0.4, 3);
        assert_eq!(train.len() + val.len(), 7);
        let groups = |ix: &[usize]| {
            ix.iter()
                .map(|&i| e[i].group.clone())
                .collect::<std::collections::HashSet<_>>()
        };
        assert!(groups(&train).is_disjoint(&groups(&val)));
        assert_eq!(groups(&val).len(), 2);
        assert_eq!(split(&e, 0.4, 3), (train, val));
        assert_eq!(split(&e, 0.0, 3).1.len(), 0);
        assert!(!split(&e, 1.0, 3).0.is_empty());
    }

    #[test]
    fn auc_counts_ordered_pairs() {
        assert_eq!(
            auc(&[0.9, 0.1, 0.8, 0.3], &[true, false, true, false]),
            Some(1.0)
        );
        assert_eq!(auc(&[0.1, 0.9], &[true, false]), Some(0.0));
        assert_eq!(auc(&[0.5, 0.5, 0.7], &[true, false, false]), Some(0.25));
        assert_eq!(auc(&[0.5], &[true]), None);
    }

    #[test]
    fn the_cache_round_trips_exactly() {
        let p = std::env::temp_dir().join(format!("kestrel_features_{}.jsonl", std::process::id()));
        let h = Header {
            kestrel_features: 1,
            kind: "verifier".into(),
            pooling: "last".into(),
            base_hash: "ab".into(),
            hidden: 2,
        };
        let e = vec![Example {
            group: "g".into(),
            label: true,
            answer: Some("4".into()),
            x: vec![0.1, -3.4028235e38],
        }];
        write(&p, &h, &e).unwrap();
        assert_eq!(read(&p).unwrap(), (h, e));
        let _ = std::fs::remove_file(p);
    }
}
