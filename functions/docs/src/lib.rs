//! `docs`: the API's OpenAPI document and a reference page that renders it.
//!
//! - `GET /api/v1/openapi.json`: the OpenAPI 3.1 document (`aicity_openapi`), built once
//!   per cold start.
//! - `GET /api/v1/docs`: an HTML page that renders the document with Redoc.
//! - `GET /api/v1/docs/{asset}`: Redoc's browser bundle, embedded in this binary at
//!   compile time (`build.rs`, pinned by `infra/docs/package-lock.json`), so the page
//!   makes no request outside this API: no CDN, no web fonts. Its
//!   `Content-Security-Policy` allows scripts from this origin only.
//!
//! All three are callable without credentials, like health: each client IP gets
//! `RATE_LIMIT_ANONYMOUS_PER_MINUTE` (60) of them a minute, then `429 RATE_LIMITED`
//! with `Retry-After`. A page view costs three (page, bundle, document); browsers keep
//! the bundle for an hour.

use std::sync::OnceLock;

use aicity_domain::{ApiError, ErrorCode};
use aicity_http::auth::source_ip;
use aicity_http::limiter;
use aicity_http::{path_param, route_key};
use aicity_store::{AwsClients, config};
use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use lambda_http::{Body, Request, Response};

/// What the function needs, built once per cold start.
#[derive(Clone, Debug)]
pub struct Docs {
    pub clients: AwsClients,
    pub table: String,
    /// Only `anonymous_per_minute` and the batching are read here.
    pub limits: aicity_http::Limits,
}

impl Docs {
    pub async fn from_env() -> Result<Self, config::MissingEnv> {
        // The document is built on its first request, not here: it takes ~25 ms (make
        // bench), most of this function's cold start, and the page and the Redoc bundle,
        // two of its three routes, do not need it.
        Ok(Self {
            clients: AwsClients::from_env().await,
            table: config::env_var("TABLE_NAME")?,
            limits: aicity_http::Limits::from_env()?,
        })
    }
}

/// The one asset `GET /api/v1/docs/{asset}` serves.
pub const BUNDLE: &str = "redoc.standalone.js";
/// The Redoc version embedded (`infra/docs/package-lock.json`).
pub const REDOC_VERSION: &str = env!("REDOC_VERSION");
const REDOC_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/redoc.standalone.js"));

/// The reference page: Redoc finds the `<redoc>` element and loads the document itself,
/// so the page carries no inline script.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>AI City API reference</title>
<link rel="icon" href="data:,">
</head>
<body>
<redoc spec-url="/api/v1/openapi.json" required-props-first="true"></redoc>
<script src="/api/v1/docs/redoc.standalone.js"></script>
</body>
</html>
"#;

/// Scripts from this origin only. Redoc's styles are injected `<style>` elements
/// (styled-components), its search index runs in a worker made from a `blob:` URL,
/// and it fetches the document from this origin; its "API docs by Redocly" image
/// (from a CDN) is refused, and Redoc drops it.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The document as served, built once per instance.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(aicity_openapi::json)
}

pub async fn handle(deps: &Docs, request: Request) -> Result<Response<Body>, ApiError> {
    let route = route_key(&request);
    let route = route.as_deref();
    if matches!(
        route,
        Some("GET /api/v1/openapi.json" | "GET /api/v1/docs" | "GET /api/v1/docs/{asset}")
    ) {
        limiter::anonymous(
            &deps.clients.dynamodb,
            &deps.table,
            &deps.limits,
            &source_ip(&request),
        )
        .await?;
    }
    match route {
        Some("GET /api/v1/openapi.json") => Ok(respond(
            "application/json",
            "public, max-age=300",
            document(),
        )),
        Some("GET /api/v1/docs") => {
            let mut response = respond("text/html; charset=utf-8", "public, max-age=300", PAGE);
            let headers = response.headers_mut();
            headers.insert("content-security-policy", http_value(PAGE_CSP));
            headers.insert("referrer-policy", http_value("no-referrer"));
            headers.insert("x-frame-options", http_value("DENY"));
            Ok(response)
        }
        Some("GET /api/v1/docs/{asset}") => {
            let asset = path_param(&request, "asset")?;
            if asset != BUNDLE {
                return Err(ApiError::with_message(
                    ErrorCode::NotFound,
                    format!("No asset {asset}"),
                ));
            }
            Ok(respond(
                "application/javascript; charset=utf-8",
                "public, max-age=3600",
                REDOC_JS,
            ))
        }
        _ => Err(ApiError::new(ErrorCode::NotFound)),
    }
}

fn http_value(value: &'static str) -> lambda_http::http::HeaderValue {
    lambda_http::http::HeaderValue::from_static(value)
}

fn respond(content_type: &'static str, cache: &'static str, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_owned()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, http_value(content_type));
    headers.insert(CACHE_CONTROL, http_value(cache));
    headers.insert("x-content-type-options", http_value("nosniff"));
    response
}
