//! Running an HTTP handler on Lambda with the edge's guarantees.

use std::convert::Infallible;
use std::future::Future;
use std::time::Instant;

use aicity_domain::ApiError;
use aicity_domain::ids::RequestId;
use lambda_http::{Body, Request, Response, service_fn};

use crate::request::{gateway_request_id, route_key};
use crate::response::error_response;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request id [`handle`] gave a request, kept in its extensions so what the handler
/// records (audit entries) names the id the response carries.
#[derive(Debug, Clone)]
struct RequestIdExtension(String);

/// The id of this request, as `X-Request-Id` answers it.
pub fn request_id(request: &Request) -> Option<String> {
    request
        .extensions()
        .get::<RequestIdExtension>()
        .map(|id| id.0.clone())
        .or_else(|| gateway_request_id(request))
}

/// Runs `handler` for every request: errors become the error envelope, every response
/// carries `X-Request-Id`, and one log line records route, status and duration.
pub async fn serve<H, F>(handler: H) -> Result<(), lambda_http::Error>
where
    H: Fn(Request) -> F + Sync,
    F: Future<Output = Result<Response<Body>, ApiError>> + Send,
{
    crate::logging::init();
    let handler = &handler;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, Infallible>(handle(handler, request).await)
    }))
    .await
}

/// One request through `handler`, with the same guarantees as [`serve`]; tests call
/// this directly.
pub async fn handle<H, F>(handler: &H, mut request: Request) -> Response<Body>
where
    H: Fn(Request) -> F,
    F: Future<Output = Result<Response<Body>, ApiError>>,
{
    let started = Instant::now();
    let request_id = gateway_request_id(&request).unwrap_or_else(|| RequestId::new().to_string());
    let route = route_key(&request).unwrap_or_else(|| request.uri().path().to_owned());
    request
        .extensions_mut()
        .insert(RequestIdExtension(request_id.clone()));
    let mut response = match handler(request).await {
        Ok(response) => response,
        Err(err) => {
            if err.http_status() >= 500 {
                tracing::error!(request_id, route, code = %err.code, "request failed");
            }
            error_response(&err)
        }
    };
    if let Ok(value) = http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    tracing::info!(
        request_id,
        route,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use aicity_domain::ErrorCode;

    use super::*;
    use crate::response::ok;

    #[tokio::test]
    async fn errors_become_envelopes_with_a_request_id() {
        let handler = |_req: Request| async { Err(ApiError::new(ErrorCode::TaskNotFound)) };
        let response = handle(&handler, Request::default()).await;
        assert_eq!(response.status(), 404);
        let id = response.headers()[REQUEST_ID_HEADER].to_str().unwrap();
        assert!(id.starts_with("req_"));
    }

    #[tokio::test]
    async fn success_keeps_its_status_and_gets_a_request_id() {
        let handler = |_req: Request| async { ok("fine") };
        let response = handle(&handler, Request::default()).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key(REQUEST_ID_HEADER));
    }
}
