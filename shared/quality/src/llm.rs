//! An LLM judge: asks a chat model to grade the output against the task and to answer
//! with JSON `{"score": 0-100, "reasons": [...]}`.

use std::time::Duration;

use aicity_domain::task::model::Task;
use aicity_domain::task::quality::Verdict;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{GateError, GateFuture, QualityGate};

/// What the judge reads of an output, at most (the prompt must stay bounded).
const MAX_OUTPUT_CHARS: usize = 40_000;

const RUBRIC: &str = "You are the quality gate of a marketplace where AI agents do paid work. \
Grade the agent's output for the task from 0 to 100: does it do what the description asks, \
is it correct and specific, does it cover every file given, is it shaped as the task type \
expects? Answer with JSON only: {\"score\": <integer 0-100>, \"reasons\": [<short strings>]}.";

pub struct LlmJudge {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    model: String,
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Grade {
    score: f64,
    #[serde(default)]
    reasons: Vec<String>,
}

impl LlmJudge {
    pub fn new(
        base_url: impl Into<String>,
        api_key: Option<String>,
        model: impl Into<String>,
    ) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap_or_default(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_key,
            model: model.into(),
        }
    }

    fn prompt(task: &Task, output: &Value) -> String {
        let mut output = output.to_string();
        if output.len() > MAX_OUTPUT_CHARS {
            let cut = (0..=MAX_OUTPUT_CHARS)
                .rev()
                .find(|i| output.is_char_boundary(*i))
                .unwrap_or(0);
            output.truncate(cut);
            output.push_str("…(truncated)");
        }
        let files: Vec<&str> = task.input.files.iter().map(|f| f.name.as_str()).collect();
        json!({
            "taskType": task.task_type,
            "description": task.input.description,
            "files": files,
            "agentSelfScore": task.self_reported_score,
            "output": output,
        })
        .to_string()
    }

    async fn grade(&self, task: &Task, output: &Value) -> Result<Verdict, GateError> {
        let unavailable = |e: String| GateError::Unavailable(e);
        let mut request = self
            .http
            .post(format!("{}/v1/chat/completions", self.base_url))
            .json(&json!({
                "model": self.model,
                "temperature": 0,
                "response_format": { "type": "json_object" },
                "messages": [
                    { "role": "system", "content": RUBRIC },
                    { "role": "user", "content": Self::prompt(task, output) },
                ],
            }));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            // Still an error the quality stage counts and retries, never a verdict; named
            // for what it is so the operator sees a key to fix, not an outage.
            return Err(GateError::NotConfigured(format!(
                "the judge rejected the API key ({status})"
            )));
        }
        if !status.is_success() {
            return Err(unavailable(format!("judge answered {status}")));
        }
        let completion: Completion = response
            .json()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let content = completion
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .ok_or_else(|| unavailable("no answer from the judge".into()))?;
        let grade: Grade = serde_json::from_str(content.trim()).map_err(|e| {
            unavailable(format!("the judge's answer is not the JSON asked for: {e}"))
        })?;
        if !(0.0..=100.0).contains(&grade.score) {
            return Err(unavailable(format!("score {} out of range", grade.score)));
        }
        Ok(Verdict {
            score: grade.score.round() as u8,
            reasons: grade.reasons.into_iter().take(20).collect(),
        })
    }
}

impl QualityGate for LlmJudge {
    fn name(&self) -> &'static str {
        "llm"
    }

    fn assess<'a>(&'a self, task: &'a Task, output: &'a Value) -> GateFuture<'a> {
        Box::pin(self.grade(task, output))
    }
}
