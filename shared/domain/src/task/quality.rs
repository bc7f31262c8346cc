//! The rule-based quality gate: scores an output 0–100 from what a reviewer checks
//! first, and says why.

use serde_json::Value;

use crate::identity::Category;
use crate::task::model::TaskInput;

/// The default pass mark; configurable between these bounds.
use crate::task::model::{MAX_QUALITY_REASON_CHARS, MAX_QUALITY_REASONS};

pub const DEFAULT_PASS_MARK: u8 = 70;
pub const MIN_PASS_MARK: u8 = 30;
pub const MAX_PASS_MARK: u8 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub score: u8,
    pub reasons: Vec<String>,
}

/// The quality gate's record of one assessment, kept for Courts
/// (`GET /courts/assessments/:taskId`): what the buyer and the seller argue about.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assessment {
    pub task_id: crate::ids::TaskId,
    pub score: u8,
    pub passed: bool,
    pub pass_mark: u8,
    /// Which gate scored: `rules` or `llm`.
    pub gate: String,
    pub reasons: Vec<String>,
    pub assessed_at: String,
}

impl Verdict {
    pub fn passes(&self, pass_mark: u8) -> bool {
        self.score >= pass_mark
    }

    /// The record of this verdict on `task`.
    pub fn assessment(
        &self,
        task: crate::ids::TaskId,
        pass_mark: u8,
        gate: &str,
        at: String,
    ) -> Assessment {
        Assessment {
            task_id: task,
            score: self.score,
            passed: self.passes(pass_mark),
            pass_mark,
            gate: gate.to_owned(),
            reasons: self.bounded_reasons(),
            assessed_at: at,
        }
    }

    /// The reasons as stored on the task: at most [`MAX_QUALITY_REASONS`], each cut to
    /// [`MAX_QUALITY_REASON_CHARS`] characters (a judge may say more; the item may not).
    pub fn bounded_reasons(&self) -> Vec<String> {
        self.reasons
            .iter()
            .take(MAX_QUALITY_REASONS)
            .map(|r| r.chars().take(MAX_QUALITY_REASON_CHARS).collect())
            .collect()
    }
}

/// All the text in a JSON value, keys included, for content checks.
fn text_of(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push_str(s);
            out.push(' ');
        }
        Value::Array(items) => items.iter().for_each(|v| text_of(v, out)),
        Value::Object(map) => {
            for (key, v) in map {
                out.push_str(key);
                out.push(' ');
                text_of(v, out);
            }
        }
        Value::Number(n) => {
            out.push_str(&n.to_string());
            out.push(' ');
        }
        Value::Bool(_) | Value::Null => {}
    }
}

/// Words an output of each task type is expected to contain (as keys or in its text).
fn expected_terms(task_type: Category) -> &'static [&'static str] {
    match task_type {
        Category::CodeReview => &["finding", "issue", "recommend", "suggest", "bug", "review"],
        Category::Security => &[
            "vulnerab",
            "finding",
            "risk",
            "issue",
            "recommend",
            "security",
        ],
        Category::CodeGeneration => &["fn ", "def ", "function", "class ", "code", "{"],
        Category::Testing => &["test", "assert", "case", "coverage"],
        Category::DataAnalysis => &["analysis", "summary", "result", "trend", "mean", "total"],
        Category::ContentCreation => &["content", "title", "draft", "text", "section"],
        Category::Research => &["finding", "summary", "source", "conclusion", "evidence"],
        Category::Design => &["design", "layout", "component", "diagram", "mockup"],
        Category::DevOps => &["deploy", "pipeline", "config", "step", "docker", "infra"],
        Category::General => &[],
    }
}

/// Scores `output`: substance (up to 40), shape for the task type (25), coverage of the
/// files the input named (20) and the agent's own score, weighed (15).
pub fn rule_based(
    task_type: Category,
    input: &TaskInput,
    output: &Value,
    self_score: Option<u8>,
) -> Verdict {
    let mut reasons = Vec::new();
    let mut text = String::new();
    text_of(output, &mut text);
    let text = text.to_lowercase();
    let chars = text.split_whitespace().map(str::len).sum::<usize>();
    if chars == 0 {
        return Verdict {
            score: 0,
            reasons: vec!["the output is empty".into()],
        };
    }

    let substance = (chars / 10).min(40) as u32;
    reasons.push(match substance {
        40 => "the output is substantive".to_owned(),
        s if s < 10 => format!("the output is very short ({chars} characters)"),
        _ => format!("the output is brief ({chars} characters)"),
    });

    let terms = expected_terms(task_type);
    let shape = if terms.is_empty() {
        25
    } else {
        let found = terms.iter().filter(|t| text.contains(*t)).count();
        match found {
            0 => {
                reasons.push(format!(
                    "nothing in the output looks like a {} result",
                    task_type
                ));
                0
            }
            1 => {
                reasons.push(format!(
                    "the output only partly looks like a {} result",
                    task_type
                ));
                15
            }
            _ => 25,
        }
    };

    let coverage = if input.files.is_empty() {
        20
    } else {
        let named: Vec<String> = input.files.iter().map(|f| f.name.to_lowercase()).collect();
        let covered = named.iter().filter(|n| text.contains(n.as_str())).count();
        if covered < named.len() {
            reasons.push(format!(
                "the output covers {covered} of the {} files given",
                named.len()
            ));
        }
        (20 * covered / named.len()) as u32
    };

    let own = match self_score {
        Some(s) => u32::from(s.min(100)) * 15 / 100,
        None => 10,
    };

    Verdict {
        score: (substance + shape + coverage + own).min(100) as u8,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::task::model::InputFile;

    fn input(files: &[&str]) -> TaskInput {
        TaskInput {
            previous_output: None,
            description: "Review".into(),
            repo: None,
            code: None,
            files: files
                .iter()
                .map(|f| InputFile {
                    name: f.to_string(),
                    content: String::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_thorough_review_passes() {
        let output = json!({
            "findings": "Found 3 security issues in auth.rs and db.rs: the token check is not constant time, \
                         queries are built by string concatenation, and sessions never expire.",
            "recommendations": ["Use parameterized queries", "Add rate limiting", "Rotate API keys regularly"],
        });
        let verdict = rule_based(
            Category::CodeReview,
            &input(&["auth.rs", "db.rs"]),
            &output,
            Some(90),
        );
        assert!(verdict.passes(DEFAULT_PASS_MARK), "{verdict:?}");
        // Shape (25), both files covered (20) and the self-score (90 → 13) in full;
        // substance is a tenth of the characters, capped at 40.
        assert!(
            !verdict
                .reasons
                .iter()
                .any(|r| r.contains("files") || r.contains("looks like"))
        );
        assert!((25 + 20 + 13..=40 + 25 + 20 + 13).contains(&verdict.score));
    }

    #[test]
    fn empty_or_thin_outputs_fail_and_say_why() {
        assert_eq!(
            rule_based(Category::CodeReview, &input(&[]), &json!(null), None).score,
            0
        );
        assert_eq!(
            rule_based(Category::CodeReview, &input(&[]), &json!({}), None).reasons,
            ["the output is empty"]
        );
        let thin = rule_based(
            Category::CodeReview,
            &input(&["a.rs", "b.rs"]),
            &json!("ok"),
            Some(100),
        );
        assert!(!thin.passes(DEFAULT_PASS_MARK));
        assert!(thin.reasons.iter().any(|r| r.contains("very short")));
        assert!(
            thin.reasons
                .iter()
                .any(|r| r.contains("covers 0 of the 2 files"))
        );
    }

    #[test]
    fn missing_files_cost_points() {
        let long = "finding: ".to_owned() + &"the handler leaks a connection; ".repeat(20);
        let all = rule_based(
            Category::CodeReview,
            &input(&["a.rs", "b.rs"]),
            &json!(format!("{long} a.rs b.rs")),
            None,
        );
        let half = rule_based(
            Category::CodeReview,
            &input(&["a.rs", "b.rs"]),
            &json!(format!("{long} a.rs")),
            None,
        );
        assert_eq!(all.score - half.score, 10);
    }
}
