//! An [`Invoker`] that runs function handlers in this process, converting events and
//! responses exactly as the Lambda runtime does (lambda_http's own adapter), so the
//! local runner can be tested end to end without building and spawning binaries.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aicity_domain::ApiError;
use aicity_local::invoke::{ByteStream, InvokeError, Invoker, Streamed, decode_prelude};
use futures::StreamExt;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Body, Context, LambdaEvent, Request, Response, Service, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

type BoxFuture = Pin<Box<dyn Future<Output = Result<Value, String>> + Send>>;
type Handler = Arc<dyn Fn(Value) -> BoxFuture + Send + Sync>;
type StreamFuture = Pin<Box<dyn Future<Output = Result<ByteStream, String>> + Send>>;
type Streamer = Arc<dyn Fn(Value) -> StreamFuture + Send + Sync>;

/// What a response-streaming HTTP handler answers.
pub type StreamingResponse =
    Response<http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, Infallible>>;

#[derive(Default, Clone)]
pub struct InProcess {
    handlers: HashMap<String, Handler>,
    streamers: HashMap<String, Streamer>,
    calls: Arc<std::sync::Mutex<HashMap<String, Arc<AtomicUsize>>>>,
}

impl InProcess {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an HTTP function (an `aicity_http` handler) under `name`.
    pub fn http<H, F>(mut self, name: &str, handler: H) -> Self
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Response<Body>, ApiError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let wrapped: Handler = Arc::new(move |event: Value| {
            let handler = handler.clone();
            Box::pin(async move {
                let request: LambdaRequest =
                    serde_json::from_value(event).map_err(|e| format!("bad HTTP event: {e}"))?;
                let mut adapter = Adapter::from(service_fn(move |request: Request| {
                    let handler = handler.clone();
                    async move {
                        Ok::<_, Infallible>(aicity_http::serve::handle(&*handler, request).await)
                    }
                }));
                let response = adapter
                    .call(LambdaEvent::new(request, Context::default()))
                    .await
                    .map_err(|e: Infallible| e.to_string())?;
                serde_json::to_value(response).map_err(|e| e.to_string())
            })
        });
        self.handlers.insert(name.to_owned(), wrapped);
        self
    }

    /// Registers an event function (`LambdaEvent<E>` payload in, `O` out).
    pub fn event<E, O, H, F>(mut self, name: &str, handler: H) -> Self
    where
        E: DeserializeOwned + Send + 'static,
        O: Serialize,
        H: Fn(E) -> F + Send + Sync + 'static,
        F: Future<Output = Result<O, lambda_http::Error>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let wrapped: Handler = Arc::new(move |event: Value| {
            let handler = handler.clone();
            Box::pin(async move {
                let event: E =
                    serde_json::from_value(event).map_err(|e| format!("bad event: {e}"))?;
                let output = handler(event).await.map_err(|e| e.to_string())?;
                serde_json::to_value(output).map_err(|e| e.to_string())
            })
        });
        self.handlers.insert(name.to_owned(), wrapped);
        self
    }

    /// Registers a response-streaming HTTP function; its output is framed exactly as
    /// the Lambda runtime frames it (lambda_http's own stream adapter): JSON prelude,
    /// eight NUL bytes, then the body as it is produced.
    pub fn streaming_http<H, F>(mut self, name: &str, handler: H) -> Self
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = StreamingResponse> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let wrapped: Streamer = Arc::new(move |event: Value| {
            let handler = handler.clone();
            Box::pin(async move {
                let request: LambdaRequest =
                    serde_json::from_value(event).map_err(|e| format!("bad HTTP event: {e}"))?;
                // The adapter is not Send (it names a non-Sync body type): make the call's
                // future and drop the adapter before awaiting.
                let call = {
                    let mut adapter =
                        lambda_http::StreamAdapter::from(service_fn(move |request: Request| {
                            let handler = handler.clone();
                            async move { Ok::<_, Infallible>(handler(request).await) }
                        }));
                    adapter.call(LambdaEvent::new(request, Context::default()))
                };
                let response = call.await.map_err(|e: Infallible| e.to_string())?;
                let prelude =
                    serde_json::to_vec(&response.metadata_prelude).map_err(|e| e.to_string())?;
                let head = futures::stream::iter([
                    Ok(bytes::Bytes::from(prelude)),
                    Ok(bytes::Bytes::from_static(&[0; 8])),
                ]);
                let body = response.stream.map(|chunk| {
                    chunk.map_err(|e| InvokeError::Unreachable {
                        function: "stream".into(),
                        reason: format!("{e:?}"),
                    })
                });
                Ok(Box::pin(head.chain(body)) as ByteStream)
            })
        });
        self.streamers.insert(name.to_owned(), wrapped);
        self
    }

    /// How many times `name` was invoked.
    pub fn calls(&self, name: &str) -> usize {
        self.counter(name).load(Ordering::SeqCst)
    }

    fn counter(&self, name: &str) -> Arc<AtomicUsize> {
        self.calls
            .lock()
            .expect("calls lock")
            .entry(name.to_owned())
            .or_default()
            .clone()
    }
}

impl Invoker for InProcess {
    fn invoke_stream<'a>(
        &'a self,
        function: &'a str,
        event: Value,
    ) -> Pin<Box<dyn Future<Output = Result<Streamed, InvokeError>> + Send + 'a>> {
        Box::pin(async move {
            self.counter(function).fetch_add(1, Ordering::SeqCst);
            let streamer =
                self.streamers
                    .get(function)
                    .ok_or_else(|| InvokeError::Unreachable {
                        function: function.to_owned(),
                        reason: "no such streaming function".into(),
                    })?;
            let raw = streamer(event)
                .await
                .map_err(|message| InvokeError::Function {
                    function: function.to_owned(),
                    error_type: "Unhandled".into(),
                    message,
                })?;
            // What the runtime sent, read the way a Function URL reads it.
            decode_prelude(function, raw).await
        })
    }

    fn invoke<'a>(
        &'a self,
        function: &'a str,
        event: Value,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Value, InvokeError>> + Send + 'a>> {
        Box::pin(async move {
            self.counter(function).fetch_add(1, Ordering::SeqCst);
            let handler = self
                .handlers
                .get(function)
                .ok_or_else(|| InvokeError::Unreachable {
                    function: function.to_owned(),
                    reason: "no such function".into(),
                })?;
            match tokio::time::timeout(timeout, handler(event)).await {
                Ok(Ok(output)) => Ok(output),
                Ok(Err(message)) => Err(InvokeError::Function {
                    function: function.to_owned(),
                    error_type: "Unhandled".into(),
                    message,
                }),
                Err(_) => Err(InvokeError::Unreachable {
                    function: function.to_owned(),
                    reason: "timed out".into(),
                }),
            }
        })
    }
}
