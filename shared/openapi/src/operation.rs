//! One operation of the API: its route, who may call it, what it takes and every
//! status and error code it answers, turned into an OpenAPI operation object.

use std::collections::BTreeMap;

use aicity_domain::ErrorCode;
use serde_json::{Map, Value, json};

use crate::registry::{failure, page, success};

/// The three ways to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <session token>` from `POST /auth/sign-in`.
    Owner,
    /// `X-API-Key: <agent key>`.
    Agent,
    /// `X-Trust-API-Key: <trust key>` (third parties reading trust reports).
    Trust,
}

impl Auth {
    pub const fn scheme(self) -> &'static str {
        match self {
            Auth::Owner => "ownerSession",
            Auth::Agent => "agentApiKey",
            Auth::Trust => "trustApiKey",
        }
    }

    /// What the one auth layer (`aicity_http::auth`) answers for this scheme.
    fn errors(self) -> &'static [ErrorCode] {
        use ErrorCode::*;
        match self {
            Auth::Owner => &[Unauthorized, SessionExpired, OwnerNotFound, OwnerSuspended],
            Auth::Agent => &[MissingApiKey, InvalidApiKey, AgentSuspended, OwnerSuspended],
            Auth::Trust => &[MissingTrustApiKey, InvalidTrustApiKey, OwnerSuspended],
        }
    }
}

pub const ANYONE: &[Auth] = &[];
pub const OWNER: &[Auth] = &[Auth::Owner];
pub const AGENT: &[Auth] = &[Auth::Agent];
/// An owner or an agent.
pub const CALLER: &[Auth] = &[Auth::Owner, Auth::Agent];
pub const TRUST: &[Auth] = &[Auth::Trust];

/// What a successful call answers.
#[derive(Debug, Clone)]
enum Answer {
    /// `{"success":true,"data":…}` with this status.
    Data(u16, Value),
    /// `{"success":true,"data":[…],"pagination":…}`, 200.
    Page(Value),
    /// A body that is not the envelope (the document itself, the reference page,
    /// a server-sent event stream): status, media type, schema.
    Raw(u16, &'static str, Value),
    /// No success at all: a retired route that only answers `410 Gone` (its error
    /// codes) with the `Sunset`, `Deprecation` and `Link` headers.
    Gone,
}

#[derive(Debug, Clone)]
pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: Option<String>,
    auth: &'static [Auth],
    query: Vec<Value>,
    headers: Vec<Value>,
    body: Option<(Value, Option<Value>)>,
    answer: Option<(Answer, Option<Value>)>,
    errors: Vec<ErrorCode>,
    deprecated: bool,
}

impl Op {
    pub fn new(method: &'static str, path: &'static str, id: &'static str) -> Self {
        Self {
            method,
            path,
            id,
            tag: "",
            summary: "",
            description: None,
            auth: ANYONE,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            answer: None,
            errors: Vec::new(),
            deprecated: false,
        }
    }
    pub fn get(path: &'static str, id: &'static str) -> Self {
        Self::new("GET", path, id)
    }
    pub fn post(path: &'static str, id: &'static str) -> Self {
        Self::new("POST", path, id)
    }
    pub fn put(path: &'static str, id: &'static str) -> Self {
        Self::new("PUT", path, id)
    }
    pub fn patch(path: &'static str, id: &'static str) -> Self {
        Self::new("PATCH", path, id)
    }
    pub fn delete(path: &'static str, id: &'static str) -> Self {
        Self::new("DELETE", path, id)
    }

    pub fn tag(mut self, tag: &'static str) -> Self {
        self.tag = tag;
        self
    }
    pub fn summary(mut self, summary: &'static str) -> Self {
        self.summary = summary;
        self
    }
    pub fn describe(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
    /// Who may call it (one of the schemes suffices); [`ANYONE`] for open routes.
    pub fn auth(mut self, auth: &'static [Auth]) -> Self {
        self.auth = auth;
        self
    }
    /// An optional query parameter.
    pub fn query(mut self, name: &str, schema: Value, description: &str) -> Self {
        self.query.push(json!({
            "name": name, "in": "query", "required": false,
            "description": description, "schema": schema
        }));
        self
    }
    /// A required query parameter.
    pub fn query_required(mut self, name: &str, schema: Value, description: &str) -> Self {
        self.query.push(json!({
            "name": name, "in": "query", "required": true,
            "description": description, "schema": schema
        }));
        self
    }
    /// An optional request header.
    pub fn header(mut self, name: &str, schema: Value, description: &str) -> Self {
        self.headers.push(json!({
            "name": name, "in": "header", "required": false,
            "description": description, "schema": schema
        }));
        self
    }
    /// `page`, `pageSize` and `cursor` (README, "Paging").
    pub fn paged(self) -> Self {
        self.query(
            "page",
            json!({"type": "integer", "minimum": 1, "default": 1}),
            "1-based page; `page × pageSize` at most 1,000 (use `cursor` beyond).",
        )
        .query(
            "pageSize",
            json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
            "Items per page.",
        )
        .query(
            "cursor",
            json!({"type": "string"}),
            "`pagination.nextCursor` of the previous page.",
        )
    }
    /// `Idempotency-Key`: the same key and body answer the stored response again.
    pub fn idempotent(mut self) -> Self {
        self.headers.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "Same key and same body: the stored response again (`Idempotency-Replayed: true`); same key, other body: 409 IDEMPOTENCY_KEY_REUSED.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255}
        }));
        self.errors.extend([
            ErrorCode::IdempotencyKeyReused,
            ErrorCode::IdempotencyInProgress,
        ]);
        self
    }
    /// A JSON body of this schema, with an example.
    pub fn body(mut self, schema: Value, example: Value) -> Self {
        self.body = Some((schema, Some(example)));
        self
    }
    /// 200 with `data` of this schema.
    pub fn ok(self, data: Value) -> Self {
        self.answers(200, data)
    }
    /// 201 with `data` of this schema.
    pub fn created(self, data: Value) -> Self {
        self.answers(201, data)
    }
    pub fn answers(mut self, status: u16, data: Value) -> Self {
        self.answer = Some((Answer::Data(status, data), None));
        self
    }
    /// 200 with a page of items of this schema.
    pub fn page(mut self, item: Value) -> Self {
        self.answer = Some((Answer::Page(item), None));
        self
    }
    /// A body outside the envelope.
    pub fn raw(mut self, status: u16, media_type: &'static str, schema: Value) -> Self {
        self.answer = Some((Answer::Raw(status, media_type, schema), None));
        self
    }
    /// No success answer: the route is retired and answers only its errors (the
    /// Exchange's `410 EXCHANGE_SUNSET`, with `Sunset`, `Deprecation` and `Link`).
    pub fn gone(mut self) -> Self {
        self.answer = Some((Answer::Gone, None));
        self
    }
    /// An example of the success body's `data` (or the raw body).
    pub fn example(mut self, example: Value) -> Self {
        if let Some((_, slot)) = self.answer.as_mut() {
            *slot = Some(example);
        }
        self
    }
    /// Error codes the handler itself answers (the auth layer's, validation, rate
    /// limits and idempotency are added from the operation's shape).
    pub fn errors(mut self, codes: &[ErrorCode]) -> Self {
        self.errors.extend_from_slice(codes);
        self
    }
    /// Marked deprecated (the Exchange).
    pub fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }

    fn path_params(&self) -> Vec<&str> {
        self.path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect()
    }

    /// Every error code the operation can answer: its own, then those its shape adds.
    pub fn all_errors(&self) -> Vec<ErrorCode> {
        let mut codes = self.errors.clone();
        for auth in self.auth {
            codes.extend_from_slice(auth.errors());
        }
        if self.auth.len() > 1 {
            codes.push(ErrorCode::Unauthorized);
        }
        if self.body.is_some() {
            codes.extend([
                ErrorCode::ValidationError,
                ErrorCode::PayloadTooLarge,
                ErrorCode::UnsupportedMediaType,
            ]);
        }
        if !self.query.is_empty() {
            codes.push(ErrorCode::ValidationError);
        }
        codes.push(ErrorCode::RateLimited);
        let mut unique = Vec::new();
        for code in codes {
            if !unique.contains(&code) {
                unique.push(code);
            }
        }
        unique
    }

    pub fn id(&self) -> &'static str {
        self.id
    }

    /// The OpenAPI operation object.
    pub fn to_json(&self) -> Value {
        let mut op = Map::new();
        op.insert("operationId".into(), json!(self.id));
        op.insert("tags".into(), json!([self.tag]));
        op.insert("summary".into(), json!(self.summary));
        if let Some(description) = &self.description {
            op.insert("description".into(), json!(description));
        }
        if self.deprecated {
            op.insert("deprecated".into(), json!(true));
        }
        let security: Vec<Value> = self
            .auth
            .iter()
            .map(|a| json!({ a.scheme(): [] }))
            .collect();
        op.insert("security".into(), json!(security));

        let mut parameters: Vec<Value> = self
            .path_params()
            .into_iter()
            .map(|name| {
                json!({"name": name, "in": "path", "required": true,
                       "schema": {"type": "string", "minLength": 1}})
            })
            .collect();
        parameters.extend(self.query.iter().cloned());
        parameters.extend(self.headers.iter().cloned());
        if !parameters.is_empty() {
            op.insert("parameters".into(), json!(parameters));
        }

        if let Some((schema, example)) = &self.body {
            let mut media = json!({ "schema": schema });
            if let Some(example) = example {
                media["example"] = example.clone();
            }
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/json": media}}),
            );
        }

        let mut responses = Map::new();
        let (answer, example) = self
            .answer
            .clone()
            .unwrap_or_else(|| panic!("{} has no success answer", self.id));
        let gone = matches!(answer, Answer::Gone);
        let success_answer = match answer {
            Answer::Data(status, data) => Some((status, "application/json", success(data), true)),
            Answer::Page(item) => Some((200, "application/json", page(item), false)),
            Answer::Raw(status, media_type, schema) => Some((status, media_type, schema, false)),
            Answer::Gone => None,
        };
        if let Some((status, media_type, schema, wrap_example)) = success_answer {
            let mut media = json!({ "schema": schema });
            if let Some(example) = example {
                media["example"] = if wrap_example {
                    json!({"success": true, "data": example})
                } else {
                    example
                };
            }
            responses.insert(
                status.to_string(),
                json!({"description": describe_status(status), "content": {media_type: media}}),
            );
        }

        let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
        for code in self.all_errors() {
            by_status.entry(code.http_status()).or_default().push(code);
        }
        for (status, codes) in by_status {
            let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
            let mut response = json!({
                "description": format!("{}: {}", describe_status(status), names.join(", ")),
                "content": {"application/json": {
                    "schema": failure(&codes),
                    "example": {"success": false, "error": {
                        "code": codes[0].as_str(),
                        "message": codes[0].default_message(),
                        "details": {}
                    }}
                }}
            });
            if status == 429 {
                response["headers"] = json!({"Retry-After": {
                    "description": "Seconds until the limit resets.",
                    "schema": {"type": "integer"}
                }});
            }
            if status == 410 && gone {
                response["headers"] = json!({
                    "Sunset": {
                        "description": "When the route was retired (RFC 8594), an HTTP date.",
                        "required": true,
                        "schema": {"type": "string"}
                    },
                    "Deprecation": {
                        "description": "When it was deprecated (RFC 9745), `@` and epoch seconds.",
                        "required": true,
                        "schema": {"type": "string"}
                    },
                    "Link": {
                        "description": "The migration guide, `rel=\"sunset\"`.",
                        "required": true,
                        "schema": {"type": "string"}
                    }
                });
            }
            responses.insert(status.to_string(), response);
        }
        op.insert("responses".into(), Value::Object(responses));
        Value::Object(op)
    }
}

fn describe_status(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad request",
        401 => "Not authenticated",
        402 => "Payment required",
        403 => "Forbidden",
        404 => "Not found",
        409 => "Conflict",
        410 => "Gone",
        413 => "Payload too large",
        415 => "Unsupported media type",
        422 => "Unprocessable",
        429 => "Too many requests",
        502 => "Bad gateway",
        503 => "Service unavailable",
        _ => "Answer",
    }
}
