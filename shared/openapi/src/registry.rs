//! The document's `components`: schemas derived from the domain's types (utoipa's
//! `ToSchema`, behind the domain's `openapi` feature), schemas written here for bodies
//! that have no type of their own, and the envelope every response is wrapped in.

use std::collections::BTreeMap;

use aicity_domain::ErrorCode;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// Collects the named schemas operations refer to.
#[derive(Default)]
pub struct Registry {
    schemas: BTreeMap<String, Value>,
}

/// `{"$ref": "#/components/schemas/<name>"}`
pub fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

impl Registry {
    pub fn new() -> Self {
        let mut registry = Self::default();
        registry.named("Error", error_schema());
        registry.named("Pagination", pagination_schema());
        registry.named("ErrorCode", error_code_schema());
        registry
    }

    /// A reference to `T`'s schema, registering it and every schema it refers to.
    pub fn of<T: ToSchema>(&mut self) -> Value {
        let name = T::name().into_owned();
        let mut nested = Vec::new();
        T::schemas(&mut nested);
        for (nested_name, schema) in nested {
            self.insert(nested_name, to_value(&schema));
        }
        self.insert(
            name.clone(),
            to_value(&<T as utoipa::PartialSchema>::schema()),
        );
        reference(&name)
    }

    /// A reference to a schema written by hand (a body with no Rust type of its own).
    pub fn named(&mut self, name: &str, schema: Value) -> Value {
        self.insert(name.to_owned(), schema);
        reference(name)
    }

    fn insert(&mut self, name: String, schema: Value) {
        if let Some(existing) = self.schemas.get(&name) {
            assert_eq!(
                existing, &schema,
                "two different schemas are both named {name}"
            );
        }
        self.schemas.insert(name, schema);
    }

    pub fn into_schemas(self) -> BTreeMap<String, Value> {
        self.schemas
    }
}

fn to_value(schema: &impl serde::Serialize) -> Value {
    serde_json::to_value(schema).expect("a schema serializes")
}

/// `{"success":false,"error":{"code","message","details"}}`
fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "Every failure: `success` false and the error's code, a safe message and details (e.g. the fields a validation error names).",
        "required": ["success", "error"],
        "properties": {
            "success": { "type": "boolean", "const": false },
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": reference("ErrorCode"),
                    "message": { "type": "string" },
                    "details": { "type": "object" }
                }
            }
        }
    })
}

fn error_code_schema() -> Value {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    json!({
        "type": "string",
        "description": "Every error code of the API; docs/errors.md says when each is answered.",
        "enum": codes
    })
}

fn pagination_schema() -> Value {
    json!({
        "type": "object",
        "description": "`total` and `totalPages` are exact when `nextCursor` is null; before the last page they are a lower bound (README, \"Paging\").",
        "required": ["page", "pageSize", "total", "totalPages", "nextCursor"],
        "properties": {
            "page": { "type": "integer", "minimum": 1 },
            "pageSize": { "type": "integer", "minimum": 1, "maximum": 100 },
            "total": { "type": "integer", "minimum": 0 },
            "totalPages": { "type": "integer", "minimum": 0 },
            "nextCursor": { "type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last." }
        }
    })
}

/// `{"success":true,"data":<data>}`
pub fn success(data: Value) -> Value {
    json!({
        "type": "object",
        "required": ["success", "data"],
        "properties": { "success": { "type": "boolean", "const": true }, "data": data }
    })
}

/// `{"success":true,"data":[<item>…],"pagination":{…}}`
pub fn page(item: Value) -> Value {
    json!({
        "type": "object",
        "required": ["success", "data", "pagination"],
        "properties": {
            "success": { "type": "boolean", "const": true },
            "data": { "type": "array", "items": item },
            "pagination": reference("Pagination")
        }
    })
}

/// The error envelope with `code` limited to `codes`.
pub fn failure(codes: &[ErrorCode]) -> Value {
    let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
    json!({
        "allOf": [
            reference("Error"),
            { "type": "object", "properties": { "error": { "type": "object", "properties": { "code": { "type": "string", "enum": names } } } } }
        ]
    })
}
