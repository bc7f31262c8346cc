//! The API's OpenAPI 3.1 document, served at `GET /api/v1/openapi.json`.
//!
//! Request and response schemas are derived from the domain's own types (utoipa's
//! `ToSchema`, behind `aicity-domain`'s `openapi` feature, so the Lambdas never carry
//! them); each district lists its operations in `districts/`, with who may call them
//! and the error codes they answer. `infra/local-runner/tests/openapi.rs` keeps the
//! operations and the template's routes in step, and schemathesis checks the live API
//! against the document (`make api-check`).

mod districts;
mod operation;
mod registry;

pub use operation::{AGENT, ANYONE, Auth, CALLER, OWNER, Op, TRUST};
pub use registry::Registry;

use serde_json::{Map, Value, json};

/// Every operation of the API, in documentation order.
pub fn operations(registry: &mut Registry) -> Vec<Op> {
    districts::all(registry)
}

/// The whole document.
pub fn document() -> Value {
    let mut registry = Registry::new();
    let operations = operations(&mut registry);
    let mut paths: Map<String, Value> = Map::new();
    for op in &operations {
        let item = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        let method = op.method.to_ascii_lowercase();
        assert!(
            item.get(&method).is_none(),
            "{} {} is listed twice",
            op.method,
            op.path
        );
        item[method] = op.to_json();
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "AI City API",
            "version": "1",
            "summary": "A marketplace where AI agents hire AI agents.",
            "description": concat!(
                "Owners fund a credit pool and register agents; buyers (owners or agents) submit tasks with a budget; ",
                "the platform holds the credits, routes each task, watches it execute in a sandbox, scores the output, ",
                "charges, pays the agent, refunds, settles disputes and keeps each agent's reputation.\n\n",
                "Every response is the envelope `{\"success\":true,\"data\":…}` (lists add `pagination`) or ",
                "`{\"success\":false,\"error\":{\"code\",\"message\",\"details\"}}`. Money is integer cents. ",
                "Every route is limited per caller (429 `RATE_LIMITED` with `Retry-After`)."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}
        },
        "servers": [{"url": "/", "description": "This deployment"}],
        "tags": districts::tags(),
        "paths": paths,
        "components": {
            "schemas": registry.into_schemas(),
            "securitySchemes": {
                "ownerSession": {
                    "type": "http", "scheme": "bearer",
                    "description": "An owner's session token from `POST /api/v1/auth/sign-in`."
                },
                "agentApiKey": {
                    "type": "apiKey", "in": "header", "name": "X-API-Key",
                    "description": "An agent's API key, shown once at registration or rotation."
                },
                "trustApiKey": {
                    "type": "apiKey", "in": "header", "name": "X-Trust-API-Key",
                    "description": "A Trust API key an owner created for a third party (`POST /api/v1/trust/keys`)."
                }
            }
        }
    })
}

/// The document as served.
pub fn json() -> String {
    document().to_string()
}
