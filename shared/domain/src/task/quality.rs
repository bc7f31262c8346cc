//! The rule-based quality gate: scores an output 0–100 from what a reviewer checks
//! first, and says why.

use serde_json::Value;

use crate::identity::Category;
use crate::task::model::TaskInput;
use crate::task::templates;

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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
        Category::BugFix => &["fix", "patch", "diff", "bug", "cause", "change"],
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

/// Shape points for an output that is not an object with its template's fields: the
/// expected-terms heuristic, at most this (of 25).
pub const FREE_FORM_SHAPE_CAP: u32 = 15;

/// The shape of `output` for `task_type`, out of 25: the share of its template's required
/// output fields it has, present and well-typed; for a free-form output (or an object
/// without them) the expected terms, at most [`FREE_FORM_SHAPE_CAP`]. The higher of the
/// two counts, so adding a required field never lowers it.
fn shape(task_type: Category, output: &Value, text: &str, reasons: &mut Vec<String>) -> u32 {
    let template = templates::template(task_type);
    let required: Vec<_> = template.required_output().collect();
    if required.is_empty() {
        return 25;
    }
    let by_fields = match output.as_object() {
        Some(map) => {
            let mut missing = Vec::new();
            let mut good = 0;
            for field in &required {
                match map.get(field.name) {
                    Some(value) if field.kind.accepts_output(value) => good += 1,
                    Some(_) => reasons.push(format!(
                        "the output's `{}` should be {}, not empty",
                        field.name,
                        field.kind.described()
                    )),
                    None => missing.push(format!("`{}`", field.name)),
                }
            }
            if !missing.is_empty() {
                reasons.push(format!(
                    "the output lacks the {task_type} template's required {}: {}",
                    if missing.len() == 1 {
                        "field"
                    } else {
                        "fields"
                    },
                    missing.join(", ")
                ));
            }
            25 * good / required.len() as u32
        }
        None => {
            reasons.push(format!(
                "the output is free-form, not an object with the {task_type} template's fields"
            ));
            0
        }
    };
    if by_fields == 25 {
        return 25;
    }
    let terms = expected_terms(task_type);
    let found = terms.iter().filter(|t| text.contains(*t)).count();
    let by_terms = match found {
        0 => 0,
        1 => 10,
        _ => FREE_FORM_SHAPE_CAP,
    };
    if by_terms > by_fields {
        if found == 1 {
            reasons.push(format!(
                "the output only partly looks like a {task_type} result"
            ));
        }
    } else if by_fields == 0 {
        reasons.push(format!(
            "nothing in the output looks like a {task_type} result"
        ));
    }
    by_fields.max(by_terms)
}

/// Scores `output`: substance (up to 40), shape for the task type (25, by its template's
/// output fields), coverage of the files the input named (20) and the agent's own score,
/// weighed (15).
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

    let shape = shape(task_type, output, &text, &mut reasons);

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
            fields: Default::default(),
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

    fn shape_of(category: Category, output: &Value) -> Verdict {
        // No files and no self-score: substance + shape + 20 + 10.
        rule_based(category, &input(&[]), output, None)
    }

    #[test]
    fn the_demo_review_shape_scores_high() {
        // What scripts/demo-reviewer.py and the tests' agents send.
        let output = json!({
            "findings": "Reviewed 2 file(s) for: Review the auth module. auth.rs: the token comparison is not constant time",
            "issues": ["auth.rs: the token comparison is not constant time"],
            "recommendations": ["Add tests for the failure paths", "Prefer ? over unwrap() in handlers"],
        });
        let verdict = shape_of(Category::CodeReview, &output);
        assert!(verdict.passes(DEFAULT_PASS_MARK));
        // Full shape (25), no files to cover (20), no self-score (10): only brevity costs.
        assert_eq!(verdict.reasons.len(), 1, "{verdict:?}");
        assert!(verdict.reasons[0].contains("brief"));
    }

    #[test]
    fn a_missing_required_output_field_costs_shape_points_and_is_named() {
        let long = "the handler leaks a connection on every early return; ".repeat(10);
        let with = shape_of(Category::BugFix, &json!({"fix": long, "explanation": "x"}));
        let without = shape_of(
            Category::BugFix,
            &json!({"patch_notes": long, "explanation": "x"}),
        );
        assert!(
            with.reasons.iter().all(|r| !r.contains("lacks")),
            "{with:?}"
        );
        assert!(
            without
                .reasons
                .iter()
                .any(|r| r.contains("lacks the bug_fix template's required field: `fix`")),
            "{without:?}"
        );
        assert!(with.score >= without.score + 10, "{with:?} {without:?}");
    }

    #[test]
    fn a_wrongly_typed_required_field_counts_as_absent() {
        let long = "x ".repeat(300);
        let verdict = shape_of(Category::Testing, &json!({"tests": [], "results": long}));
        assert!(
            verdict
                .reasons
                .iter()
                .any(|r| r.contains("`tests` should be text")),
            "{verdict:?}"
        );
        let good = shape_of(
            Category::Testing,
            &json!({"tests": ["t1"], "results": long}),
        );
        assert!(good.score > verdict.score);
    }

    #[test]
    fn free_form_outputs_fall_back_to_the_terms_capped_lower() {
        let text = "Finding: the review found an issue; I recommend a fix. ".repeat(10);
        let free = shape_of(Category::CodeReview, &json!(text));
        let shaped = shape_of(Category::CodeReview, &json!({ "findings": text }));
        assert_eq!(
            shaped.score - free.score,
            (25 - FREE_FORM_SHAPE_CAP) as u8,
            "{free:?} {shaped:?}"
        );
        assert!(free.reasons.iter().any(|r| r.contains("free-form")));
        // Nothing like a review at all: no shape points.
        let unrelated = shape_of(
            Category::CodeReview,
            &json!("lorem ipsum dolor ".repeat(30)),
        );
        assert_eq!(free.score - unrelated.score, FREE_FORM_SHAPE_CAP as u8);
        assert!(
            unrelated
                .reasons
                .iter()
                .any(|r| r.contains("nothing in the output"))
        );
    }

    #[test]
    fn general_tasks_have_no_required_shape() {
        let verdict = shape_of(
            Category::General,
            &json!({"anything": "at all ".repeat(100)}),
        );
        assert_eq!(verdict.score, 40 + 25 + 20 + 10);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z ._{}]{0,40}".prop_map(Value::String),
            prop::sample::select(vec![
                "finding",
                "fix the bug",
                "test assert",
                "summary",
                "a.rs"
            ])
            .prop_map(|s| Value::String(s.to_owned())),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn category() -> impl Strategy<Value = Category> {
        prop::sample::select(Category::ALL.to_vec())
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_score_is_always_0_to_100(
            category in category(),
            output in json_value(),
            files in prop::collection::vec("[a-z]{1,4}\\.rs", 0..4),
            self_score in prop::option::of(any::<u8>()),
        ) {
            let files: Vec<&str> = files.iter().map(String::as_str).collect();
            let verdict = rule_based(category, &input(&files), &output, self_score);
            prop_assert!(verdict.score <= 100);
            prop_assert!(!verdict.reasons.is_empty());
        }

        #[test]
        fn adding_a_missing_required_output_field_never_lowers_the_score(
            category in category(),
            output in prop::collection::btree_map("[a-zA-Z]{1,8}", json_value(), 0..6),
            value in prop_oneof![
                "[a-z .]{1,60}".prop_filter("not blank", |s| !s.trim().is_empty()).prop_map(Value::String),
                prop::collection::vec("[a-z]{1,10}".prop_map(Value::String), 1..4).prop_map(Value::Array),
            ],
            files in prop::collection::vec("[a-z]{1,4}\\.rs", 0..4),
            self_score in prop::option::of(0u8..=100),
        ) {
            let template = templates::template(category);
            let files: Vec<&str> = files.iter().map(String::as_str).collect();
            let input = input(&files);
            for field in template.required_output() {
                let mut before: serde_json::Map<String, Value> = output.clone().into_iter().collect();
                before.remove(field.name);
                let mut after = before.clone();
                after.insert(field.name.to_owned(), value.clone());
                let before = rule_based(category, &input, &Value::Object(before), self_score);
                let after = rule_based(category, &input, &Value::Object(after), self_score);
                prop_assert!(after.score >= before.score, "{:?} → {:?}", before, after);
                let named = format!("`{}`", field.name);
                let still_named = after.reasons.iter().any(|r| r.contains(&named));
                prop_assert!(!still_named, "{:?}", after.reasons);
            }
        }
    }
}
