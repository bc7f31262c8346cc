//! Reading a request: route, path and query values, and a JSON body within limits.

use aicity_domain::validate::Validate;
use aicity_domain::{ApiError, ErrorCode, FieldError};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use serde::de::DeserializeOwned;

/// The largest JSON body any route accepts (API Gateway allows 10 MB; nothing we
/// take needs more than this).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The matched route, as API Gateway names it: `"GET /api/v1/tasks/{id}"`.
pub fn route_key(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.route_key.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// API Gateway's id for this request, when there is one.
pub fn gateway_request_id(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.request_id.clone(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// A required path parameter (`{id}` in the route).
pub fn path_param(request: &Request, name: &str) -> Result<String, ApiError> {
    request
        .path_parameters_ref()
        .and_then(|params| params.first(name))
        .map(str::to_owned)
        .ok_or_else(|| ApiError::invalid_field(name, "is required"))
}

/// An optional query value; blank counts as absent.
pub fn query_param(request: &Request, name: &str) -> Option<String> {
    request
        .query_string_parameters_ref()
        .and_then(|params| params.first(name))
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

fn body_bytes(body: &Body) -> &[u8] {
    match body {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        #[allow(unreachable_patterns)]
        _ => &[],
    }
}

/// Parses and validates a JSON body of at most `limit` bytes.
///
/// Every failure is a client error naming the field: wrong type and missing field from
/// the parser (with the full path, e.g. `input.files[1].name`), then every rule the
/// type's [`Validate`] checks, all at once.
pub fn json_body<T: DeserializeOwned + Validate>(
    request: &Request,
    limit: usize,
) -> Result<T, ApiError> {
    if let Some(content_type) = request.headers().get(http::header::CONTENT_TYPE) {
        let content_type = content_type
            .to_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !content_type.starts_with("application/json") {
            return Err(ApiError::with_message(
                ErrorCode::UnsupportedMediaType,
                "Content-Type must be application/json",
            ));
        }
    }
    let bytes = body_bytes(request.body());
    if bytes.len() > limit {
        return Err(ApiError::with_message(
            ErrorCode::PayloadTooLarge,
            format!("Request body exceeds {limit} bytes"),
        )
        .details(serde_json::json!({ "limit": limit, "size": bytes.len() })));
    }
    parse_json(bytes)
}

/// The parsing half of [`json_body`], separate so it is testable on bytes.
pub fn parse_json<T: DeserializeOwned + Validate>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_field("body", "a JSON body is required"));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        ApiError::validation(vec![field_error_from_serde(&path, &inner)])
    })?;
    let mut errors = Vec::new();
    value.validate(&mut errors);
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Turns serde's message into a field error; serde reports a missing field at its
/// parent's path, so the field's name is appended here.
fn field_error_from_serde(path: &str, err: &serde_json::Error) -> FieldError {
    use serde_json::error::Category;
    let message = err.to_string();
    // serde_json appends " at line L column C"; the field name says more.
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_owned();
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            FieldError::new("body", format!("malformed JSON: {message}"))
        }
        Category::Data => {
            if let Some(missing) = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.strip_suffix('`'))
            {
                let field = if path == "." || path.is_empty() {
                    missing.to_owned()
                } else {
                    format!("{path}.{missing}")
                };
                FieldError::new(field, "is required")
            } else {
                let field = if path == "." { "body" } else { path };
                FieldError::new(field, message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Submit {
        task_type: String,
        max_budget: i64,
        input: Input,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Input {
        description: String,
        #[serde(default)]
        #[allow(dead_code)]
        files: Vec<File>,
    }

    #[derive(Debug, Deserialize)]
    struct File {
        #[allow(dead_code)]
        name: String,
    }

    impl Validate for Submit {
        fn validate(&self, errors: &mut Vec<FieldError>) {
            aicity_domain::validate::check_length(errors, "taskType", &self.task_type, 1, 64);
            aicity_domain::validate::check_range(errors, "maxBudget", self.max_budget, 1, 1_000);
            aicity_domain::validate::check_length(
                errors,
                "input.description",
                &self.input.description,
                1,
                10,
            );
        }
    }

    fn fields(err: &ApiError) -> Vec<(String, String)> {
        err.details.as_ref().unwrap()["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["field"].as_str().unwrap().to_owned(),
                    f["message"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn names_a_missing_nested_field() {
        let err =
            parse_json::<Submit>(br#"{"taskType":"x","maxBudget":1,"input":{}}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::ValidationError);
        assert_eq!(
            fields(&err),
            vec![("input.description".into(), "is required".into())]
        );
    }

    #[test]
    fn names_a_wrongly_typed_field_with_its_path() {
        let err = parse_json::<Submit>(
            br#"{"taskType":"x","maxBudget":1,"input":{"description":"d","files":[{"name":"a"},{"name":3}]}}"#,
        )
        .unwrap_err();
        assert_eq!(fields(&err)[0].0, "input.files[1].name");
    }

    #[test]
    fn fractional_money_is_a_type_error() {
        let err = parse_json::<Submit>(
            br#"{"taskType":"x","maxBudget":1.5,"input":{"description":"d"}}"#,
        )
        .unwrap_err();
        assert_eq!(fields(&err)[0].0, "maxBudget");
    }

    #[test]
    fn malformed_and_empty_bodies_are_validation_errors() {
        let err = parse_json::<Submit>(b"{\"taskType\":").unwrap_err();
        assert_eq!(fields(&err)[0].0, "body");
        assert!(fields(&err)[0].1.starts_with("malformed JSON"));
        let err = parse_json::<Submit>(b"  ").unwrap_err();
        assert_eq!(
            fields(&err)[0],
            ("body".into(), "a JSON body is required".into())
        );
    }

    #[test]
    fn reports_every_rule_violation_at_once() {
        let err = parse_json::<Submit>(
            br#"{"taskType":"","maxBudget":0,"input":{"description":"far too long here"}}"#,
        )
        .unwrap_err();
        let names: Vec<_> = fields(&err).into_iter().map(|(f, _)| f).collect();
        assert_eq!(names, ["taskType", "maxBudget", "input.description"]);
    }

    #[test]
    fn unknown_fields_are_named() {
        let err = parse_json::<Submit>(
            br#"{"taskType":"x","maxBudget":1,"input":{"description":"d"},"bogus":1}"#,
        )
        .unwrap_err();
        assert!(fields(&err)[0].1.contains("bogus"), "{:?}", fields(&err));
    }

    #[test]
    fn oversized_and_non_json_bodies_are_refused() {
        let request = http::Request::builder()
            .header("content-type", "application/json")
            .body(Body::Text("x".repeat(11)))
            .unwrap();
        let err = json_body::<Submit>(&request, 10).unwrap_err();
        assert_eq!(err.code, ErrorCode::PayloadTooLarge);
        assert_eq!(err.http_status(), 413);

        let request = http::Request::builder()
            .header("content-type", "text/plain")
            .body(Body::Text("{}".into()))
            .unwrap();
        let err = json_body::<Submit>(&request, 10).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnsupportedMediaType);
    }
}
