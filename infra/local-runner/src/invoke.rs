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

/// Body bytes as they arrive.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, InvokeError>> + Send>>;

/// A response-streaming function's answer: status and headers, then the body as it is
/// written.
pub struct Streamed {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: ByteStream,
}

/// Reads what the Lambda runtime sends for a streaming response (a JSON prelude with
/// `statusCode`, `headers` and `cookies`, eight NUL bytes, then the body) into a
/// [`Streamed`]. What a Function URL does in AWS.
pub async fn decode_prelude(function: &str, mut raw: ByteStream) -> Result<Streamed, InvokeError> {
    const DELIMITER: &[u8] = &[0; 8];
    let bad = |reason: &str| InvokeError::Function {
        function: function.to_owned(),
        error_type: "InvalidStreamingResponse".into(),
        message: reason.to_owned(),
    };
    let mut head = Vec::new();
    let split = loop {
        if let Some(at) = head.windows(DELIMITER.len()).position(|w| w == DELIMITER) {
            break at;
        }
        match raw.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(err)) => return Err(err),
            None => return Err(bad("the stream ended before its prelude")),
        }
        if head.len() > 64 * 1024 {
            return Err(bad("no prelude delimiter in the first 64 KiB"));
        }
    };
    let prelude: Value =
        serde_json::from_slice(&head[..split]).map_err(|_| bad("the prelude is not JSON"))?;
    let status = prelude
        .get("statusCode")
        .and_then(Value::as_u64)
        .unwrap_or(200) as u16;
    let mut headers = Vec::new();
    for (name, value) in prelude
        .get("headers")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        match value {
            Value::String(v) => headers.push((name.clone(), v.clone())),
            Value::Array(values) => headers.extend(
                values
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|v| (name.clone(), v.to_owned())),
            ),
            _ => {}
        }
    }
    for cookie in prelude
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        headers.push(("set-cookie".into(), cookie.to_owned()));
    }
    let rest = Bytes::copy_from_slice(&head[split + DELIMITER.len()..]);
    let body = futures::stream::once(async move { Ok(rest) }).chain(raw);
    Ok(Streamed {
        status,
        headers,
        body: Box::pin(body),
    })
}

/// Something that can run a function with a JSON event.
pub trait Invoker: Send + Sync + 'static {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        event: Value,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Value, InvokeError>> + Send + 'a>>;

    /// Runs a response-streaming HTTP function (API Gateway v2 event in); its output
    /// arrives as it is written.
    fn invoke_stream<'a>(
        &'a self,
        function: &'a str,
        _event: Value,
    ) -> Pin<Box<dyn Future<Output = Result<Streamed, InvokeError>> + Send + 'a>> {
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
    /// Through `cargo lambda watch`'s Function URL emulation (`/lambda-url/{name}/…`),
    /// which streams the function's response with its status and headers, as AWS does.
    fn invoke_stream<'a>(
        &'a self,
        function: &'a str,
        event: Value,
    ) -> Pin<Box<dyn Future<Output = Result<Streamed, InvokeError>> + Send + 'a>> {
        Box::pin(async move {
            let unreachable = |reason: String| InvokeError::Unreachable {
                function: function.to_owned(),
                reason,
            };
            let text = |pointer: &str| {
                event
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let method =
                reqwest::Method::from_bytes(text("/requestContext/http/method").as_bytes())
                    .unwrap_or(reqwest::Method::GET);
            let query = text("/rawQueryString");
            let mut url = format!(
                "{}/lambda-url/{function}{}",
                self.base_url,
                text("/rawPath")
            );
            if !query.is_empty() {
                url = format!("{url}?{query}");
            }
            let mut request = self.client.request(method, url);
            for (name, value) in event
                .get("headers")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if let Some(value) = value
                    .as_str()
                    .filter(|_| name != "host" && name != "content-length")
                {
                    request = request.header(name.as_str(), value);
                }
            }
            if let Some(body) = event.get("body").and_then(Value::as_str) {
                request = request.body(body.to_owned());
            }
            let response = request
                .send()
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .filter(|(name, _)| {
                    !matches!(
                        name.as_str(),
                        "transfer-encoding" | "content-length" | "connection"
                    )
                })
                .filter_map(|(name, value)| {
                    Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
                })
                .collect();
            let name = function.to_owned();
            let body = response.bytes_stream().map(move |chunk| {
                chunk.map_err(|e| InvokeError::Unreachable {
                    function: name.clone(),
                    reason: e.to_string(),
                })
            });
            Ok(Streamed {
                status,
                headers,
                body: Box::pin(body),
            })
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
