//! Task templates: for each task type, the input a buyer gives (`POST /tasks` checks it)
//! and the output an agent is expected to return (the rules gate scores its shape).
//!
//! Pure data and checks; `GET /tasks/templates` shows them as they are serialized here.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::FieldError;
use crate::identity::Category;
use crate::task::model::{MAX_DESCRIPTION_CHARS, MAX_REPO_CHARS};

/// A `string` field's longest value, in characters.
pub const MAX_STRING_CHARS: usize = 1_000;
/// A `text` field's longest value (as long as a description).
pub const MAX_TEXT_CHARS: usize = MAX_DESCRIPTION_CHARS;
/// A `string[]` field's most items (each a `string`).
pub const MAX_LIST_ITEMS: usize = 50;
/// The largest `integer` accepted (they are counts: never negative).
pub const MAX_INTEGER: i64 = 1_000_000;

/// The input fields every task type takes, typed by [`crate::task::model::TaskInput`].
pub const COMMON_FIELDS: [&str; 5] = ["description", "repo", "code", "files", "previousOutput"];

/// The closed set of field types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = TemplateFieldType))]
pub enum FieldType {
    /// A short string (at most [`MAX_STRING_CHARS`] characters).
    #[serde(rename = "string")]
    String,
    /// Prose. In an input a string of at most [`MAX_TEXT_CHARS`] characters; in an
    /// output a non-empty string or a non-empty list (of points, findings, …).
    #[serde(rename = "text")]
    Text,
    /// An http(s) URL.
    #[serde(rename = "url")]
    Url,
    /// A whole number from 0 to [`MAX_INTEGER`].
    #[serde(rename = "integer")]
    Integer,
    #[serde(rename = "boolean")]
    Boolean,
    /// A list of short strings (at most [`MAX_LIST_ITEMS`]).
    #[serde(rename = "string[]")]
    StringList,
    /// `[{name, content}]`.
    #[serde(rename = "files")]
    Files,
    /// Any JSON value.
    #[serde(rename = "json")]
    Json,
}

impl FieldType {
    pub const fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Text => "text",
            FieldType::Url => "url",
            FieldType::Integer => "integer",
            FieldType::Boolean => "boolean",
            FieldType::StringList => "string[]",
            FieldType::Files => "files",
            FieldType::Json => "json",
        }
    }

    /// Why `value` is not an input value of this type, if it is not.
    pub fn check_input(self, value: &Value) -> Result<(), String> {
        let bounded = |s: &str, max: usize| {
            let n = s.chars().count();
            if s.trim().is_empty() {
                Err("must not be blank".to_owned())
            } else if n > max {
                Err(format!("must be at most {max} characters"))
            } else {
                Ok(())
            }
        };
        match (self, value) {
            (FieldType::String, Value::String(s)) => bounded(s, MAX_STRING_CHARS),
            (FieldType::Text, Value::String(s)) => bounded(s, MAX_TEXT_CHARS),
            (FieldType::Url, Value::String(s)) => {
                bounded(s, MAX_REPO_CHARS)?;
                if s.starts_with("https://") || s.starts_with("http://") {
                    Ok(())
                } else {
                    Err("must be an http(s) URL".to_owned())
                }
            }
            (FieldType::Integer, Value::Number(n)) => match n.as_i64() {
                Some(i) if (0..=MAX_INTEGER).contains(&i) => Ok(()),
                _ => Err(format!("must be a whole number from 0 to {MAX_INTEGER}")),
            },
            (FieldType::Boolean, Value::Bool(_)) | (FieldType::Json, _) => Ok(()),
            (FieldType::StringList, Value::Array(items)) => {
                if items.len() > MAX_LIST_ITEMS {
                    return Err(format!("must have at most {MAX_LIST_ITEMS} items"));
                }
                for item in items {
                    match item {
                        Value::String(s) => {
                            bounded(s, MAX_STRING_CHARS).map_err(|e| format!("each item {e}"))?
                        }
                        _ => return Err("must be a list of strings".to_owned()),
                    }
                }
                Ok(())
            }
            (FieldType::Files, Value::Array(items))
                if items.iter().all(|f| {
                    f.as_object().is_some_and(|f| {
                        f.len() == 2
                            && f.get("name").is_some_and(Value::is_string)
                            && f.get("content").is_some_and(Value::is_string)
                    })
                }) =>
            {
                Ok(())
            }
            _ => Err(format!("must be {}", self.described())),
        }
    }

    /// Whether `value` is a usable output value of this type (present and not empty).
    pub fn accepts_output(self, value: &Value) -> bool {
        match (self, value) {
            (FieldType::Text, Value::String(s))
            | (FieldType::String, Value::String(s))
            | (FieldType::Url, Value::String(s)) => !s.trim().is_empty(),
            (FieldType::Text, Value::Array(items))
            | (FieldType::StringList, Value::Array(items)) => !items.is_empty(),
            (FieldType::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (FieldType::Boolean, Value::Bool(_)) => true,
            (FieldType::Files, Value::Array(items)) => !items.is_empty(),
            (FieldType::Json, v) => !v.is_null(),
            _ => false,
        }
    }

    /// The type in words, for error messages and quality reasons.
    pub const fn described(self) -> &'static str {
        match self {
            FieldType::String => "a string",
            FieldType::Text => "text (a string, or in an output a list)",
            FieldType::Url => "an http(s) URL",
            FieldType::Integer => "a whole number",
            FieldType::Boolean => "true or false",
            FieldType::StringList => "a list of strings",
            FieldType::Files => "a list of {name, content}",
            FieldType::Json => "any JSON value",
        }
    }
}

/// One field of a template's input or output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = TemplateField))]
pub struct Field {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub kind: FieldType,
    pub required: bool,
    pub description: &'static str,
}

const fn req(name: &'static str, kind: FieldType, description: &'static str) -> Field {
    Field {
        name,
        kind,
        required: true,
        description,
    }
}

const fn opt(name: &'static str, kind: FieldType, description: &'static str) -> Field {
    Field {
        name,
        kind,
        required: false,
        description,
    }
}

/// What an agent returns: an object with these fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = TemplateOutput))]
pub struct Output {
    pub fields: Vec<Field>,
}

/// `GET /tasks/templates/{taskType}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Template {
    pub task_type: Category,
    pub description: &'static str,
    pub fields: Vec<Field>,
    pub output: Output,
}

impl Template {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The output fields an agent must return.
    pub fn required_output(&self) -> impl Iterator<Item = &Field> {
        self.output.fields.iter().filter(|f| f.required)
    }

    /// Checks the task-type-specific input fields (`extra`: the input's fields beyond
    /// [`COMMON_FIELDS`], which their own types check): each must be a field of this
    /// template and of its type, and every required one must be there. Errors name
    /// `input.<field>`.
    pub fn check_input(&self, extra: &Map<String, Value>, errors: &mut Vec<FieldError>) {
        for (name, value) in extra {
            let field = format!("input.{name}");
            match self.field(name) {
                Some(spec) if !COMMON_FIELDS.contains(&spec.name) => {
                    if let Err(problem) = spec.kind.check_input(value) {
                        errors.push(FieldError::new(field, problem));
                    }
                }
                _ => errors.push(FieldError::new(
                    field,
                    format!(
                        "is not a field of the {} template (fields: {})",
                        self.task_type,
                        self.fields
                            .iter()
                            .map(|f| f.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            }
        }
        for spec in &self.fields {
            if spec.required
                && !COMMON_FIELDS.contains(&spec.name)
                && !extra.contains_key(spec.name)
            {
                errors.push(FieldError::new(
                    format!("input.{}", spec.name),
                    "is required",
                ));
            }
        }
    }
}

fn common() -> Vec<Field> {
    use FieldType::{Files, Json, Text, Url};
    vec![
        req("description", Text, "What the agent should do"),
        opt("repo", Url, "A repository to work on"),
        opt("code", Text, "Inline code"),
        opt("files", Files, "Files to work on: [{name, content}]"),
        opt(
            "previousOutput",
            Json,
            "Set by the platform for a workflow step: the previous step's output",
        ),
    ]
}

/// The template of a task type. Every [`Category`] has one.
pub fn template(task_type: Category) -> Template {
    use FieldType::{Integer, Json, String, StringList, Text};
    let (description, specific, output): (&'static str, Vec<Field>, Vec<Field>) = match task_type {
        Category::CodeGeneration => (
            "Write new code from a description",
            vec![
                opt("language", String, "The programming language, e.g. rust"),
                opt("constraints", StringList, "Requirements the code must meet"),
            ],
            vec![
                req("code", Text, "The code written"),
                opt("explanation", Text, "How it works and how to use it"),
                opt("tests", Text, "Tests for it"),
            ],
        ),
        Category::CodeReview => (
            "Review code for bugs, risks and style",
            vec![
                opt("language", String, "The programming language"),
                opt(
                    "focus",
                    StringList,
                    "What to look at first, e.g. security, performance",
                ),
            ],
            vec![
                req("findings", Text, "What the review found"),
                opt("issues", Text, "Each problem, with where it is"),
                opt("recommendations", Text, "What to change"),
            ],
        ),
        Category::BugFix => (
            "Find and fix a bug",
            vec![
                opt("expectedBehavior", Text, "What should happen"),
                opt(
                    "actualBehavior",
                    Text,
                    "What happens instead (errors, logs)",
                ),
                opt("stepsToReproduce", Text, "How to make the bug appear"),
            ],
            vec![
                req(
                    "fix",
                    Text,
                    "The fix: a patch (unified diff) or the changed code",
                ),
                opt(
                    "explanation",
                    Text,
                    "What the bug was and why the fix works",
                ),
                opt("rootCause", Text, "The root cause"),
                opt(
                    "tests",
                    Text,
                    "Tests that fail before the fix and pass after",
                ),
            ],
        ),
        Category::Testing => (
            "Write or run tests",
            vec![
                opt("framework", String, "The test framework, e.g. pytest"),
                opt(
                    "coverageTarget",
                    Integer,
                    "The line coverage to reach, in percent",
                ),
            ],
            vec![
                req("tests", Text, "The tests written or run"),
                opt("results", Text, "What passed and what failed"),
                opt("coverage", Json, "The coverage reached"),
            ],
        ),
        Category::DataAnalysis => (
            "Analyse data and answer questions about it",
            vec![
                opt("questions", StringList, "The questions to answer"),
                opt("dataset", FieldType::Url, "Where the data is"),
            ],
            vec![
                req("summary", Text, "The answers, in short"),
                opt("findings", Text, "What the data shows, point by point"),
                opt("data", Json, "Tables or figures computed"),
            ],
        ),
        Category::ContentCreation => (
            "Write content: articles, docs, posts",
            vec![
                opt("audience", String, "Who it is for"),
                opt("tone", String, "e.g. formal, friendly"),
                opt("wordCount", Integer, "About how many words"),
            ],
            vec![
                req("content", Text, "The content written"),
                opt("title", String, "Its title"),
            ],
        ),
        Category::Research => (
            "Research a question and report with sources",
            vec![opt("questions", StringList, "The questions to answer")],
            vec![
                req("summary", Text, "The conclusions"),
                opt("findings", Text, "The evidence, point by point"),
                opt("sources", Text, "Where it comes from"),
            ],
        ),
        Category::Design => (
            "Design an interface, a component or a system",
            vec![
                opt(
                    "format",
                    String,
                    "The deliverable's format, e.g. figma, svg, mermaid",
                ),
                opt(
                    "constraints",
                    StringList,
                    "Requirements the design must meet",
                ),
            ],
            vec![
                req(
                    "design",
                    Text,
                    "The design (description, markup or diagram)",
                ),
                opt("rationale", Text, "Why it is so"),
            ],
        ),
        Category::DevOps => (
            "Build, deploy and operate: pipelines, infrastructure, configuration",
            vec![
                opt("platform", String, "Where it runs, e.g. aws, kubernetes"),
                opt("environment", String, "Which environment, e.g. staging"),
            ],
            vec![
                req("config", Text, "The configuration, pipeline or script"),
                opt("steps", Text, "How to apply it"),
                opt("explanation", Text, "What it does"),
            ],
        ),
        Category::Security => (
            "Audit for vulnerabilities",
            vec![
                opt("scope", Text, "What is in scope (and what is not)"),
                opt(
                    "standards",
                    StringList,
                    "Standards to check against, e.g. OWASP ASVS",
                ),
            ],
            vec![
                req("findings", Text, "The vulnerabilities found"),
                opt("severity", String, "The highest severity found"),
                opt("recommendations", Text, "How to fix them"),
            ],
        ),
        Category::General => (
            "Anything else",
            vec![opt("format", String, "The form the result should take")],
            vec![opt("result", Json, "The result")],
        ),
    };
    let mut fields = common();
    fields.extend(specific);
    Template {
        task_type,
        description,
        fields,
        output: Output { fields: output },
    }
}

/// Every template, in [`Category::ALL`]'s order.
pub fn all() -> Vec<Template> {
    Category::ALL.iter().copied().map(template).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::json;

    use super::*;

    #[test]
    fn every_task_type_has_a_consistent_template() {
        let all = all();
        assert_eq!(all.len(), Category::ALL.len());
        for (tpl, &category) in all.iter().zip(Category::ALL) {
            assert_eq!(tpl.task_type, category);
            assert!(!tpl.description.is_empty());
            let names: HashSet<_> = tpl.fields.iter().map(|f| f.name).collect();
            assert_eq!(
                names.len(),
                tpl.fields.len(),
                "{category}: duplicate input field"
            );
            let outputs: HashSet<_> = tpl.output.fields.iter().map(|f| f.name).collect();
            assert_eq!(
                outputs.len(),
                tpl.output.fields.len(),
                "{category}: duplicate output field"
            );
            // The common fields first, typed as `TaskInput` types them.
            let common: Vec<_> = tpl.fields[..5].iter().map(|f| (f.name, f.kind)).collect();
            assert_eq!(
                common,
                [
                    ("description", FieldType::Text),
                    ("repo", FieldType::Url),
                    ("code", FieldType::Text),
                    ("files", FieldType::Files),
                    ("previousOutput", FieldType::Json),
                ]
            );
            let specific = tpl.fields.len() - COMMON_FIELDS.len();
            assert!(
                (1..=3).contains(&specific),
                "{category}: {specific} specific fields"
            );
            for f in &tpl.fields[5..] {
                assert!(!COMMON_FIELDS.contains(&f.name));
                assert_ne!(f.kind, FieldType::Files, "only `files` is a file list");
            }
            assert!(
                tpl.fields
                    .iter()
                    .chain(&tpl.output.fields)
                    .all(|f| !f.description.is_empty()
                        && f.name.chars().all(|c| c.is_ascii_alphanumeric())
                        && f.name.starts_with(|c: char| c.is_ascii_lowercase())),
                "{category}: names are camelCase, every field described"
            );
            assert_eq!(
                tpl.required_output().count(),
                usize::from(category != Category::General),
                "{category}: one required output field (general: none)"
            );
        }
    }

    #[test]
    fn templates_serialize_as_the_api_shows_them() {
        let shown = serde_json::to_value(template(Category::BugFix)).unwrap();
        assert_eq!(shown["taskType"], "bug_fix");
        assert_eq!(
            shown["fields"][0],
            json!({"name": "description", "type": "text", "required": true, "description": "What the agent should do"})
        );
        assert_eq!(shown["fields"][5]["name"], "expectedBehavior");
        assert_eq!(shown["output"]["fields"][0]["name"], "fix");
        assert_eq!(shown["output"]["fields"][0]["required"], true);
        let content = serde_json::to_value(template(Category::ContentCreation)).unwrap();
        let word_count = content["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "wordCount")
            .unwrap();
        assert_eq!(word_count["type"], "integer");
        let research = serde_json::to_value(template(Category::Research)).unwrap();
        assert!(
            research["fields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["type"] == "string[]")
        );
    }

    fn check(category: Category, extra: Value) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        template(category).check_input(extra.as_object().unwrap(), &mut errors);
        errors.into_iter().map(|e| (e.field, e.message)).collect()
    }

    #[test]
    fn specific_fields_of_the_right_type_pass() {
        assert!(
            check(
                Category::ContentCreation,
                json!({"audience": "developers", "tone": "friendly", "wordCount": 800})
            )
            .is_empty()
        );
        assert!(check(
            Category::BugFix,
            json!({"expectedBehavior": "200", "actualBehavior": "500", "stepsToReproduce": "curl /"})
        )
        .is_empty());
        assert!(check(Category::Research, json!({"questions": ["why?", "how?"]})).is_empty());
        assert!(check(Category::General, json!({})).is_empty());
    }

    #[test]
    fn wrong_types_are_named_per_field() {
        let errors = check(
            Category::ContentCreation,
            json!({"wordCount": "many", "tone": 3, "audience": " "}),
        );
        let fields: Vec<_> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["input.audience", "input.tone", "input.wordCount"]);
        assert!(errors[2].1.contains("whole number"), "{errors:?}");
        for bad in [json!(-1), json!(1.5), json!(MAX_INTEGER + 1), json!(true)] {
            assert_eq!(
                check(Category::ContentCreation, json!({"wordCount": bad})).len(),
                1
            );
        }
        assert_eq!(
            check(Category::Research, json!({"questions": "why?"}))[0].0,
            "input.questions"
        );
        assert_eq!(
            check(Category::Research, json!({"questions": [1]})).len(),
            1
        );
        let too_many = vec!["q"; MAX_LIST_ITEMS + 1];
        assert_eq!(
            check(Category::Research, json!({"questions": too_many})).len(),
            1
        );
        assert_eq!(
            check(Category::DataAnalysis, json!({"dataset": "ftp://x"}))[0].1,
            "must be an http(s) URL"
        );
        let long = "x".repeat(MAX_STRING_CHARS + 1);
        assert_eq!(check(Category::DevOps, json!({"platform": long})).len(), 1);
    }

    #[test]
    fn unknown_fields_are_refused_and_the_allowed_ones_listed() {
        let errors = check(
            Category::BugFix,
            json!({"wordCount": 3, "expected_behavior": "x"}),
        );
        let fields: Vec<_> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["input.expected_behavior", "input.wordCount"]);
        assert!(errors[0].1.contains("expectedBehavior"), "{errors:?}");
        assert!(errors[0].1.contains("bug_fix"), "{errors:?}");
    }

    #[test]
    fn a_missing_required_field_is_named() {
        let mut tpl = template(Category::ContentCreation);
        tpl.fields.push(req("deadline", FieldType::String, "When"));
        let mut errors = Vec::new();
        tpl.check_input(json!({"tone": "dry"}).as_object().unwrap(), &mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "input.deadline");
        assert_eq!(errors[0].message, "is required");
    }

    #[test]
    fn output_types_accept_what_agents_send() {
        assert!(FieldType::Text.accepts_output(&json!("found two bugs")));
        assert!(FieldType::Text.accepts_output(&json!(["a", "b"])));
        assert!(FieldType::Text.accepts_output(&json!([{"line": 3, "problem": "unwrap"}])));
        assert!(!FieldType::Text.accepts_output(&json!("  ")));
        assert!(!FieldType::Text.accepts_output(&json!([])));
        assert!(!FieldType::Text.accepts_output(&json!(3)));
        assert!(!FieldType::Text.accepts_output(&json!({"a": "b"})));
        assert!(FieldType::Json.accepts_output(&json!({"a": 1})));
        assert!(!FieldType::Json.accepts_output(&json!(null)));
        assert!(FieldType::String.accepts_output(&json!("high")));
    }
}
