//! Task files: JSON Lines, one problem per line.
//!
//! `{"id": ..., "prompt": "..." | "messages": [{"role", "content"}...], "answer": ..., "kind":
//! "chat" | "reasoning"}`. `id` (a string or a number; default: the line number) names the
//! problem in records and must be unique; `answer` is a string or a number; `kind`, optional, is
//! the routing label auto mode is judged against (and what a switcher is trained on). A
//! `prompt` is one user message; both forms are rendered through the model's chat template with
//! the generation prompt, as `kestrel generate --chat` renders its prompt.

use std::path::Path;

use anyhow::{bail, Context};
use kestrel::Message;
use serde::Deserialize;
use serde_json::Value;

/// The routing label of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    Chat,
    Reasoning,
}

impl TaskKind {
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Chat => "chat",
            TaskKind::Reasoning => "reasoning",
        }
    }
}

/// One problem.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    pub messages: Vec<Message>,
    /// The expected answer (`None` where the file gives none: switcher training data).
    pub answer: Option<String>,
    pub kind: Option<TaskKind>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: Option<Value>,
    prompt: Option<String>,
    messages: Option<Vec<MessageLine>>,
    answer: Option<Value>,
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageLine {
    role: String,
    content: String,
}

/// A JSON string or number as text (numbers as JSON writes them).
fn scalar(v: &Value, what: &str) -> anyhow::Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => bail!("{what} must be a string or a number, found {v}"),
    }
}

/// Parses one task line (`n` = its 1-based line number).
fn parse_line(text: &str, n: usize) -> anyhow::Result<Task> {
    let line: Line = serde_json::from_str(text)?;
    let id = match &line.id {
        Some(v) => scalar(v, "id")?,
        None => n.to_string(),
    };
    let messages = match (line.prompt, line.messages) {
        (Some(p), None) => vec![Message::new("user", &p)],
        (None, Some(m)) if !m.is_empty() => m
            .into_iter()
            .map(|m| Message::new(&m.role, &m.content))
            .collect(),
        (None, Some(_)) => bail!("`messages` is empty"),
        (Some(_), Some(_)) => bail!("give `prompt` or `messages`, not both"),
        (None, None) => bail!("no `prompt` or `messages`"),
    };
    let answer = match &line.answer {
        None | Some(Value::Null) => None,
        Some(v) => {
            let a = scalar(v, "answer")?;
            if a.trim().is_empty() {
                bail!("`answer` is empty");
            }
            Some(a)
        }
    };
    let kind = match line.kind.as_deref() {
        None => None,
        Some("chat") => Some(TaskKind::Chat),
        Some("reasoning") => Some(TaskKind::Reasoning),
        Some(k) => bail!("`kind` is \"chat\" or \"reasoning\", found {k:?}"),
    };
    Ok(Task {
        id,
        messages,
        answer,
        kind,
    })
}

/// Parses a task file's text (blank lines skipped); ids must be unique.
pub fn parse(text: &str) -> anyhow::Result<Vec<Task>> {
    let mut tasks: Vec<Task> = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let task = parse_line(line, i + 1).with_context(|| format!("line {}", i + 1))?;
        if !ids.insert(task.id.clone()) {
            bail!("line {}: duplicate id {:?}", i + 1, task.id);
        }
        tasks.push(task);
    }
    if tasks.is_empty() {
        bail!("no tasks");
    }
    Ok(tasks)
}

/// Reads and parses a task file.
pub fn load(path: &Path) -> anyhow::Result<Vec<Task>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("{}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_prompt_forms_and_refuses_bad_lines() {
        let t = parse(
            "{\"id\": 7, \"prompt\": \"2+2?\", \"answer\": 4, \"kind\": \"reasoning\"}\n\n\
             {\"messages\": [{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", \"content\": \"hi\"}], \"answer\": \"Hello\"}\n",
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].id.as_str(), t[0].answer.as_deref()), ("7", Some("4")));
        assert_eq!(t[0].kind, Some(TaskKind::Reasoning));
        assert_eq!(t[0].messages[0].content, "2+2?");
        assert_eq!((t[1].id.as_str(), t[1].messages.len()), ("3", 2));
        for bad in [
            "{\"prompt\": \"x\", \"kind\": \"maybe\"}",
            "{\"answer\": 1}",
            "{\"prompt\": \"x\", \"answer\": \" \"}",
            "{\"prompt\": \"x\", \"extra\": 1}",
            "{\"id\": 1, \"prompt\": \"x\"}\n{\"id\": 1, \"prompt\": \"y\"}",
            "not json",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
