//! The document's frame, its error codes, and id schemas that accept the ids the code makes.

use aicity_domain::ids::{AgentId, TaskId};
use serde_json::Value;

/// The document's frame; the whole is checked as OpenAPI by schemathesis, which loads
/// and validates it (`make api-check`), and its routes and references by
/// `infra/local-runner/tests/openapi.rs`.
#[test]
fn the_document_is_openapi_3_1_with_the_three_schemes() {
    let document = aicity_openapi::document();
    assert_eq!(document["openapi"], Value::from("3.1.0"));
    assert!(document["paths"].as_object().is_some_and(|p| !p.is_empty()));
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["ownerSession"]["scheme"], "bearer");
    assert_eq!(schemes["agentApiKey"]["name"], "X-API-Key");
    assert_eq!(schemes["trustApiKey"]["name"], "X-Trust-API-Key");
}

#[test]
fn every_error_code_is_in_the_error_code_schema() {
    let document = aicity_openapi::document();
    let codes = document["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(codes, aicity_domain::ErrorCode::ALL.len());
}

#[test]
fn id_patterns_accept_fresh_ids() {
    let mut registry = aicity_openapi::Registry::new();
    registry.of::<AgentId>();
    registry.of::<TaskId>();
    let schemas = registry.into_schemas();
    for (name, id) in [
        ("AgentId", AgentId::new().to_string()),
        ("TaskId", TaskId::new().to_string()),
    ] {
        let pattern = schemas[name]["pattern"].as_str().unwrap();
        let body = pattern.trim_start_matches('^').trim_end_matches('$');
        let (prefix, _) = body.split_once("[0-7]").unwrap();
        assert!(id.starts_with(prefix), "{id} vs {pattern}");
        assert_eq!(id.len(), prefix.len() + 26, "{id} vs {pattern}");
        assert!(id.as_bytes()[prefix.len()] <= b'7', "{id} vs {pattern}");
        assert!(
            id[prefix.len()..]
                .chars()
                .all(|c| c.is_ascii_digit() || (c.is_ascii_uppercase() && !"ILOU".contains(c))),
            "{id} vs {pattern}"
        );
    }
}
