//! The HttpApi, locally: matches a request to a route of the template, invokes the
//! route's function with an API Gateway v2 (payload format 2.0) event and turns the
//! function's answer back into an HTTP response.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::invoke::{InvokeError, Invoker};
use crate::template::{EventSource, Template};

/// API Gateway's payload limit.
pub const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

/// How specific a match is: (literal segments, not greedy, named method). Higher wins.
type Rank = (usize, usize, bool);

/// One `METHOD /path` of the HttpApi and the function behind it.
#[derive(Debug, Clone)]
pub struct Route {
    pub route_key: String,
    pub method: String,
    pub function: String,
    /// Served from a response-streaming function (a Function URL in AWS).
    pub streaming: bool,
    segments: Vec<Segment>,
}

impl Route {
    pub fn new(method: &str, path: &str, function: &str) -> Self {
        let method = method.to_uppercase();
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => match name.strip_suffix('+') {
                        Some(greedy) => Segment::Greedy(greedy.to_owned()),
                        None => Segment::Param(name.to_owned()),
                    },
                    None => Segment::Literal(s.to_owned()),
                },
            )
            .collect();
        let route_key = format!("{} {path}", if method == "ANY" { "ANY" } else { &method });
        Self {
            route_key,
            method,
            function: function.to_owned(),
            streaming: false,
            segments,
        }
    }

    /// The path parameters if `path` matches, and how specific the match is: API
    /// Gateway prefers literal segments over parameters over a greedy tail, and a
    /// named method over ANY.
    fn matches(&self, method: &str, path: &str) -> Option<(BTreeMap<String, String>, Rank)> {
        if self.method != "ANY" && self.method != method {
            return None;
        }
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut params = BTreeMap::new();
        let mut literals = 0;
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(text) => {
                    if parts.get(i) != Some(&text.as_str()) {
                        return None;
                    }
                    literals += 1;
                }
                Segment::Param(name) => {
                    params.insert(name.clone(), (*parts.get(i)?).to_owned());
                }
                Segment::Greedy(name) => {
                    if i >= parts.len() {
                        return None;
                    }
                    params.insert(name.clone(), parts[i..].join("/"));
                    return Some((params, (literals, 0, self.method != "ANY")));
                }
            }
        }
        (parts.len() == self.segments.len())
            .then_some((params, (literals, 1, self.method != "ANY")))
    }
}

/// Every HttpApi route of the template, by the function's binary name.
pub fn routes(template: &Template) -> Vec<Route> {
    template
        .functions
        .iter()
        .flat_map(|f| {
            f.events.iter().filter_map(move |e| match e {
                EventSource::Http { method, path, .. } => Some(Route::new(method, path, &f.binary)),
                _ => None,
            })
        })
        .chain(template.functions.iter().flat_map(|f| {
            f.stream_routes.iter().map(move |(method, path)| Route {
                streaming: true,
                ..Route::new(method, path, &f.binary)
            })
        }))
        .collect()
}

/// The best matching route and its path parameters.
pub fn find_route<'a>(
    routes: &'a [Route],
    method: &str,
    path: &str,
) -> Option<(&'a Route, BTreeMap<String, String>)> {
    routes
        .iter()
        .filter_map(|r| {
            r.matches(method, path)
                .map(|(params, rank)| (r, params, rank))
        })
        .max_by_key(|(_, _, rank)| *rank)
        .map(|(r, params, _)| (r, params))
}

/// The request as API Gateway hands it to a function (payload format 2.0).
pub struct IncomingRequest<'a> {
    pub method: &'a str,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: String,
}

pub fn api_gateway_event(
    route: &Route,
    params: &BTreeMap<String, String>,
    request: &IncomingRequest<'_>,
) -> Value {
    let now = OffsetDateTime::now_utc();
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in request.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(value.split(';').map(|c| Value::String(c.trim().to_owned())));
            continue;
        }
        // API Gateway lowercases names and joins repeated headers with commas.
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let raw_query = request.uri.query().unwrap_or_default();
    let mut query = Map::new();
    for (key, value) in form_urlencoded::parse(raw_query.as_bytes()) {
        let (key, value) = (key.into_owned(), value.into_owned());
        match query.get_mut(&key) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                query.insert(key, Value::String(value));
            }
        }
    }
    let (body, is_base64) = match std::str::from_utf8(request.body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (BASE64.encode(request.body), true),
    };
    let request_id = ulid::Ulid::generate().to_string();
    let user_agent = headers.get("user-agent").cloned().unwrap_or(Value::Null);
    let mut event = json!({
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": request.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": crate::resources::LOCAL_ACCOUNT,
            "apiId": "local",
            "domainName": headers.get("host").cloned().unwrap_or(Value::Null),
            "domainPrefix": "local",
            "http": {
                "method": request.method,
                "path": request.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.format(&time::format_description::well_known::Rfc2822).unwrap_or_default(),
            "timeEpoch": (now.unix_timestamp_nanos() / 1_000_000) as i64,
        },
        "isBase64Encoded": is_base64,
    });
    let object = event.as_object_mut().expect("object literal");
    if !cookies.is_empty() {
        object.insert("cookies".into(), Value::Array(cookies));
    }
    if !query.is_empty() {
        object.insert("queryStringParameters".into(), Value::Object(query));
    }
    if !params.is_empty() {
        object.insert("pathParameters".into(), json!(params));
    }
    if !request.body.is_empty() {
        object.insert("body".into(), Value::String(body));
    }
    event
}

/// API Gateway's own error answers, which come without our envelope.
fn gateway_error(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(json!({ "message": message }).to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

/// Turns a function's answer (format 2.0) into the HTTP response.
pub fn http_response(output: Value) -> Response<Body> {
    let Some(object) = output.as_object().filter(|o| o.contains_key("statusCode")) else {
        // A bare value is a 200 JSON body, as API Gateway infers.
        let mut response = Response::new(Body::from(output.to_string()));
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        return response;
    };
    let status = object
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|s| StatusCode::from_u16(s as u16).ok());
    let Some(status) = status else {
        return gateway_error(StatusCode::BAD_GATEWAY, "Internal Server Error");
    };
    let body = object
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let body = if object.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        match BASE64.decode(body) {
            Ok(bytes) => bytes,
            Err(_) => return gateway_error(StatusCode::BAD_GATEWAY, "Internal Server Error"),
        }
    } else {
        body.as_bytes().to_vec()
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let single = object.get("headers").and_then(Value::as_object);
    for (name, value) in single.into_iter().flatten() {
        if let (Ok(name), Some(Ok(value))) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            value.as_str().map(HeaderValue::from_str),
        ) {
            headers.insert(name, value);
        }
    }
    let multi = object.get("multiValueHeaders").and_then(Value::as_object);
    for (name, values) in multi.into_iter().flatten() {
        let Ok(name) = axum::http::HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        for value in values
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.append(name.clone(), value);
            }
        }
    }
    for cookie in object
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append("set-cookie", value);
        }
    }
    response
}

/// A streamed answer, passed on as it arrives.
pub fn streamed_response(streamed: crate::invoke::Streamed) -> Response<Body> {
    use futures::StreamExt;
    let body = streamed
        .body
        .map(|chunk| chunk.map_err(std::io::Error::other));
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() =
        StatusCode::from_u16(streamed.status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (name, value) in streamed.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// What the gateway needs to serve.
pub struct Gateway {
    pub routes: Vec<Route>,
    pub invoker: Arc<dyn Invoker>,
    pub invoke_timeout: Duration,
}

async fn proxy(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let Some((route, params)) = find_route(&gateway.routes, method.as_str(), uri.path()) else {
        if method == Method::OPTIONS {
            return cors_preflight();
        }
        return gateway_error(StatusCode::NOT_FOUND, "Not Found");
    };
    let request = IncomingRequest {
        method: method.as_str(),
        uri: &uri,
        headers: &headers,
        body: &body,
        source_ip: peer.ip().to_string(),
    };
    let event = api_gateway_event(route, &params, &request);
    if route.streaming {
        return match gateway.invoker.invoke_stream(&route.function, event).await {
            Ok(streamed) => streamed_response(streamed),
            Err(err) => {
                tracing::error!(route = route.route_key, error = %err, "streaming function failed");
                gateway_error(StatusCode::BAD_GATEWAY, "Internal Server Error")
            }
        };
    }
    match gateway
        .invoker
        .invoke(&route.function, event, gateway.invoke_timeout)
        .await
    {
        Ok(output) => http_response(output),
        Err(err @ InvokeError::Function { .. }) => {
            tracing::error!(route = route.route_key, error = %err, "function failed");
            gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
        Err(err @ InvokeError::Unreachable { .. }) => {
            tracing::error!(route = route.route_key, error = %err, "function unreachable");
            gateway_error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        }
    }
}

/// API Gateway answers preflight requests itself when CORS is configured.
fn cors_preflight() -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    headers.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS"),
    );
    headers.insert(
        "access-control-allow-headers",
        HeaderValue::from_static(
            "authorization, content-type, idempotency-key, last-event-id, x-api-key, x-trust-api-key",
        ),
    );
    response
}

/// The gateway as an axum router (serve it with connect info).
pub fn router(gateway: Gateway) -> axum::Router {
    axum::Router::new()
        .fallback(proxy)
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD_BYTES))
        .with_state(Arc::new(gateway))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Vec<Route> {
        vec![
            Route::new("GET", "/api/v1/health", "health"),
            Route::new("GET", "/api/v1/tasks/{id}", "tasks"),
            Route::new("GET", "/api/v1/tasks/submitted", "tasks-submitted"),
            Route::new("ANY", "/{proxy+}", "fallback"),
        ]
    }

    #[test]
    fn literal_beats_parameter_beats_greedy() {
        let routes = table();
        let (r, p) = find_route(&routes, "GET", "/api/v1/tasks/submitted").unwrap();
        assert_eq!(r.function, "tasks-submitted");
        assert!(p.is_empty());
        let (r, p) = find_route(&routes, "GET", "/api/v1/tasks/task_1").unwrap();
        assert_eq!((r.function.as_str(), p["id"].as_str()), ("tasks", "task_1"));
        let (r, p) = find_route(&routes, "POST", "/api/v1/health").unwrap();
        assert_eq!(r.function, "fallback");
        assert_eq!(p["proxy"], "api/v1/health");
        assert_eq!(r.route_key, "ANY /{proxy+}");
    }

    #[test]
    fn builds_a_v2_event() {
        let routes = table();
        let (route, params) = find_route(&routes, "GET", "/api/v1/tasks/t1").unwrap();
        let uri: Uri = "/api/v1/tasks/t1?page=2&status=a%20b".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("X-API-Key", HeaderValue::from_static("k"));
        headers.insert("cookie", HeaderValue::from_static("a=1; b=2"));
        let event = api_gateway_event(
            route,
            &params,
            &IncomingRequest {
                method: "GET",
                uri: &uri,
                headers: &headers,
                body: b"",
                source_ip: "127.0.0.1".into(),
            },
        );
        assert_eq!(event["routeKey"], "GET /api/v1/tasks/{id}");
        assert_eq!(event["pathParameters"]["id"], "t1");
        assert_eq!(event["queryStringParameters"]["status"], "a b");
        assert_eq!(event["headers"]["x-api-key"], "k");
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(event["requestContext"]["http"]["sourceIp"], "127.0.0.1");
        // lambda_http must accept what we build.
        let parsed: aws_lambda_events::apigw::ApiGatewayV2httpRequest =
            serde_json::from_value(event).unwrap();
        assert_eq!(parsed.route_key.as_deref(), Some("GET /api/v1/tasks/{id}"));
    }

    #[test]
    fn maps_a_v2_response() {
        let response = http_response(json!({
            "statusCode": 201,
            "headers": {"content-type": "application/json", "x-request-id": "req_1"},
            "body": "{\"success\":true}",
            "isBase64Encoded": false,
            "cookies": ["s=1"],
        }));
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["x-request-id"], "req_1");
        assert_eq!(response.headers()["set-cookie"], "s=1");
        assert_eq!(http_response(json!({"statusCode": "x"})).status(), 502);
        assert_eq!(http_response(json!({"plain": true})).status(), 200);
    }
}
