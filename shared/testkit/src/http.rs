//! Calling an HTTP function's handler the way API Gateway does: a payload 2.0 event
//! with route key, path parameters and source IP, parsed by lambda_http itself.

use std::future::Future;

use aicity_domain::ApiError;
use lambda_http::{Body, Request, Response};
use serde_json::{Map, Value, json};

/// One request to a route, e.g. `Call::new("GET", "/api/v1/agents/{id}", "/api/v1/agents/ag_1")`.
#[derive(Debug, Clone)]
pub struct Call {
    method: String,
    route: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Map<String, Value>,
    body: Option<String>,
    source_ip: String,
}

impl Call {
    pub fn new(method: &str, route: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            route: route.to_owned(),
            path: path.to_owned(),
            query: Vec::new(),
            headers: Map::new(),
            body: None,
            source_ip: "203.0.113.7".to_owned(),
        }
    }

    /// A route without parameters: the path is the route.
    pub fn at(method: &str, route: &str) -> Self {
        Self::new(method, route, route)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .insert(name.to_ascii_lowercase(), Value::String(value.to_owned()));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn api_key(self, key: &str) -> Self {
        self.header("x-api-key", key)
    }

    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn json(self, body: Value) -> Self {
        self.raw_body(&body.to_string())
            .header("content-type", "application/json")
    }

    pub fn raw_body(mut self, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self
    }

    pub fn from_ip(mut self, ip: &str) -> Self {
        self.source_ip = ip.to_owned();
        self
    }

    fn path_parameters(&self) -> Map<String, Value> {
        let route: Vec<&str> = self.route.split('/').collect();
        let path: Vec<&str> = self.path.split('/').collect();
        route
            .iter()
            .zip(path.iter())
            .filter_map(|(r, p)| {
                let name = r.strip_prefix('{')?.strip_suffix('}')?;
                Some((name.to_owned(), Value::String((*p).to_owned())))
            })
            .collect()
    }

    pub fn to_request(&self) -> Request {
        let route_key = format!("{} {}", self.method, self.route);
        let mut query = Map::new();
        for (name, value) in &self.query {
            query.insert(name.clone(), Value::String(value.clone()));
        }
        let raw_query: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut event = json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": self.path,
            "rawQueryString": raw_query.join("&"),
            "headers": self.headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "test",
                "domainName": "localhost",
                "domainPrefix": "localhost",
                "http": {
                    "method": self.method,
                    "path": self.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": self.source_ip,
                    "userAgent": "testkit",
                },
                "requestId": format!("test-{}", ulid::Ulid::generate()),
                "routeKey": route_key,
                "stage": "$default",
                "time": "22/Nov/2026:00:00:00 +0000",
                "timeEpoch": 0,
            },
            "isBase64Encoded": false,
        });
        let object = event.as_object_mut().expect("object");
        if !query.is_empty() {
            object.insert("queryStringParameters".into(), Value::Object(query));
        }
        let params = self.path_parameters();
        if !params.is_empty() {
            object.insert("pathParameters".into(), Value::Object(params));
        }
        if let Some(body) = &self.body {
            object.insert("body".into(), Value::String(body.clone()));
        }
        lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
    }
}

/// A response, read.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// `data` of a success envelope.
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// `error.code` of an error envelope.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    /// The fields named in a `VALIDATION_ERROR`.
    pub fn fields(&self) -> Vec<String> {
        self.body["error"]["details"]["fields"]
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|f| f["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Sends `call` through `handler` with the HTTP edge's guarantees (as `serve` does).
pub async fn send<H, F>(handler: &H, call: &Call) -> Answer
where
    H: Fn(Request) -> F,
    F: Future<Output = Result<Response<Body>, ApiError>>,
{
    let response = aicity_http::serve::handle(handler, call.to_request()).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::String(text.clone())),
        Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    Answer {
        status,
        headers,
        body,
    }
}
