//! Invoking a function the way AWS services do: the Lambda Invoke API.
//!
//! `cargo lambda watch` serves that API (`POST /2015-03-31/functions/{name}/invocations`)
//! and builds each function on its first call; real Lambda and LocalStack serve it too.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The function ran and reported an error (an unhandled error or a panic).
    #[error("function {function} failed: {error_type}: {message}")]
    Function {
        function: String,
        error_type: String,
        message: String,
    },
    /// The function could not be reached or did not answer in time.
    #[error("cannot invoke {function}: {reason}")]
    Unreachable { function: String, reason: String },
}

/// The raw bytes of a streamed response, as the Lambda runtime sends them: a JSON
/// prelude (`statusCode`, `headers`, `cookies`), eight NUL bytes, then the body.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, InvokeError>> + Send>>;

/// Something that can run a function with a JSON event.
pub trait Invoker: Send + Sync + 'static {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        event: Value,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Value, InvokeError>> + Send + 'a>>;

    /// Runs a response-streaming function; its output arrives as it is written.
    fn invoke_stream<'a>(
        &'a self,
        function: &'a str,
        _event: Value,
    ) -> Pin<Box<dyn Future<Output = Result<ByteStream, InvokeError>> + Send + 'a>> {
        Box::pin(async move {
            Err(InvokeError::Unreachable {
                function: function.to_owned(),
                reason: "this invoker cannot stream".into(),
            })
        })
    }
}

/// The Lambda Invoke API over HTTP.
#[derive(Clone, Debug)]
pub struct InvokeApi {
    base_url: String,
    client: reqwest::Client,
}

impl InvokeApi {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
        }
    }
}

/// AWS marks a failed invocation with `X-Amz-Function-Error`; cargo lambda answers
/// with a 500 and the runtime's `{errorType, errorMessage}` body. Both count.
fn function_error(function: &str, status: u16, flagged: bool, body: &[u8]) -> Option<InvokeError> {
    if !flagged && (200..300).contains(&status) {
        return None;
    }
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| parsed.get(*n).and_then(Value::as_str))
            .map(str::to_owned)
    };
    Some(InvokeError::Function {
        function: function.to_owned(),
        error_type: field(&["errorType", "title"]).unwrap_or_else(|| format!("HTTP {status}")),
        message: field(&["errorMessage", "detail"])
            .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(500).collect()),
    })
}

impl Invoker for InvokeApi {
    fn invoke_stream<'a>(
        &'a self,
        function: &'a str,
        event: Value,
    ) -> Pin<Box<dyn Future<Output = Result<ByteStream, InvokeError>> + Send + 'a>> {
        Box::pin(async move {
            let unreachable = |reason: String| InvokeError::Unreachable {
                function: function.to_owned(),
                reason,
            };
            let url = format!(
                "{}/2015-03-31/functions/{function}/response-streaming-invocations",
                self.base_url
            );
            let response = self
                .client
                .post(url)
                .json(&event)
                .send()
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let status = response.status().as_u16();
            if !(200..300).contains(&status) {
                let body = response.bytes().await.unwrap_or_default();
                return Err(function_error(function, status, true, &body)
                    .unwrap_or_else(|| unreachable(format!("HTTP {status}"))));
            }
            let name = function.to_owned();
            let stream = response.bytes_stream().map(move |chunk| {
                chunk.map_err(|e| InvokeError::Unreachable {
                    function: name.clone(),
                    reason: e.to_string(),
                })
            });
            Ok(Box::pin(stream) as ByteStream)
        })
    }

    fn invoke<'a>(
        &'a self,
        function: &'a str,
        event: Value,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Value, InvokeError>> + Send + 'a>> {
        Box::pin(async move {
            let unreachable = |reason: String| InvokeError::Unreachable {
                function: function.to_owned(),
                reason,
            };
            let url = format!(
                "{}/2015-03-31/functions/{function}/invocations",
                self.base_url
            );
            let response = self
                .client
                .post(url)
                .json(&event)
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let status = response.status().as_u16();
            let flagged = response.headers().contains_key("x-amz-function-error");
            let body = response
                .bytes()
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            if let Some(err) = function_error(function, status, flagged, &body) {
                return Err(err);
            }
            if body.is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_slice(&body)
                .map_err(|e| unreachable(format!("response is not JSON: {e}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_both_error_styles() {
        let body = br#"{"errorType":"Boom","errorMessage":"bad"}"#;
        match function_error("f", 500, false, body) {
            Some(InvokeError::Function {
                error_type,
                message,
                ..
            }) => {
                assert_eq!((error_type.as_str(), message.as_str()), ("Boom", "bad"));
            }
            other => panic!("{other:?}"),
        }
        assert!(function_error("f", 200, true, body).is_some());
        assert!(function_error("f", 200, false, b"{}").is_none());
    }
}
