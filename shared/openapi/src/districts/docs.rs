//! `functions/docs`: the document and its reference page, open to anyone, 60 requests
//! a minute per IP (as health).

use aicity_domain::ErrorCode::*;
use serde_json::json;

use crate::{ANYONE, Op, Registry};

pub fn operations(_r: &mut Registry) -> Vec<Op> {
    vec![
        Op::get("/api/v1/openapi.json", "getOpenApiDocument")
            .tag("Docs")
            .summary("This OpenAPI 3.1 document")
            .describe("Generated from the code (`shared/openapi`); the same document the reference page renders.")
            .auth(ANYONE)
            .raw(200, "application/json", json!({"type": "object"}))
            .errors(&[ServiceUnavailable]),
        Op::get("/api/v1/docs", "getReferencePage")
            .tag("Docs")
            .summary("The API reference page")
            .describe("An HTML page rendering this document with Redoc, served with its script from this API (no CDN): it works offline.")
            .auth(ANYONE)
            .raw(200, "text/html", json!({"type": "string"}))
            .errors(&[ServiceUnavailable]),
        Op::get("/api/v1/docs/{asset}", "getReferencePageAsset")
            .tag("Docs")
            .summary("A script of the reference page")
            .describe("`redoc.standalone.js`, Redoc's browser bundle; any other name is 404 NOT_FOUND.")
            .auth(ANYONE)
            .raw(200, "application/javascript", json!({"type": "string"}))
            .errors(&[NotFound, ServiceUnavailable]),
    ]
}
