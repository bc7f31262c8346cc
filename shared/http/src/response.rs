//! Building responses in the envelope shapes.

use aicity_domain::ApiError;
use lambda_http::{Body, Response};
use serde::Serialize;

use crate::envelope::{Failure, Page, Pagination, Success};

fn json_response(status: u16, body: &impl Serialize) -> Response<Body> {
    match serde_json::to_string(body) {
        Ok(text) => Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::Text(text))
            .unwrap_or_else(|_| fallback_internal()),
        Err(err) => {
            tracing::error!(error = %err, "response serialization failed");
            fallback_internal()
        }
    }
}

/// A 500 built without anything that can fail.
fn fallback_internal() -> Response<Body> {
    let mut response = Response::new(Body::Text(
        r#"{"success":false,"error":{"code":"INTERNAL_ERROR","message":"An unexpected error occurred","details":{}}}"#
            .to_owned(),
    ));
    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// 200 `{"success":true,"data":…}`
pub fn ok(data: impl Serialize) -> Result<Response<Body>, ApiError> {
    Ok(json_response(
        200,
        &Success {
            success: true,
            data,
        },
    ))
}

/// 201 `{"success":true,"data":…}`
pub fn created(data: impl Serialize) -> Result<Response<Body>, ApiError> {
    Ok(json_response(
        201,
        &Success {
            success: true,
            data,
        },
    ))
}

/// 200 `{"success":true,"data":…}` with `top`'s fields beside `success` and `data`, for
/// clients that read them there (a sign-in's `token`, as Better Auth answers); the
/// envelope's own fields win over `top`'s.
pub fn ok_with_top_level(
    data: impl Serialize,
    top: serde_json::Map<String, serde_json::Value>,
) -> Result<Response<Body>, ApiError> {
    let envelope = Success {
        success: true,
        data,
    };
    match serde_json::to_value(&envelope) {
        Ok(serde_json::Value::Object(mut body)) => {
            for (name, value) in top {
                body.entry(name).or_insert(value);
            }
            Ok(json_response(200, &body))
        }
        Ok(_) => Ok(fallback_internal()),
        Err(err) => {
            tracing::error!(error = %err, "response serialization failed");
            Ok(fallback_internal())
        }
    }
}

/// 200 with a page of items and its pagination block.
pub fn paginated<T: Serialize>(
    data: Vec<T>,
    pagination: Pagination,
) -> Result<Response<Body>, ApiError> {
    Ok(json_response(
        200,
        &Page {
            success: true,
            data,
            pagination,
        },
    ))
}

/// 200 with a page read by `aicity_store::paging`.
pub fn listed<T: Serialize>(
    page: aicity_store::paging::Listed<T>,
) -> Result<Response<Body>, ApiError> {
    let pagination = Pagination::of(&page);
    paginated(page.items, pagination)
}

/// The error envelope with the code's status; 429 adds `Retry-After` when the details
/// carry `retryAfter` seconds.
pub fn error_response(err: &ApiError) -> Response<Body> {
    let mut response = json_response(err.http_status(), &Failure::from(err));
    let retry_after = err
        .details
        .as_ref()
        .and_then(|d| d.get("retryAfter"))
        .and_then(|v| v.as_u64());
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
    }
    response
}

#[cfg(test)]
mod tests {
    use aicity_domain::ErrorCode;
    use serde_json::{Value, json};

    use super::*;

    fn body_json(response: &Response<Body>) -> Value {
        match response.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap(),
            other => panic!("unexpected body {other:?}"),
        }
    }

    #[test]
    fn success_envelope() {
        let response = created(json!({"id": "task_1"})).unwrap();
        assert_eq!(response.status(), 201);
        assert_eq!(
            body_json(&response),
            json!({"success": true, "data": {"id": "task_1"}})
        );
    }

    #[test]
    fn top_level_fields_sit_beside_the_envelope() {
        let top = json!({"token": "ses_1", "success": false, "data": null});
        let response =
            ok_with_top_level(json!({"token": "ses_1"}), top.as_object().unwrap().clone()).unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            body_json(&response),
            json!({"success": true, "data": {"token": "ses_1"}, "token": "ses_1"}),
            "the envelope's own fields are never replaced"
        );
    }

    #[test]
    fn rate_limit_sets_retry_after() {
        let err = ApiError::new(ErrorCode::RateLimited).details(json!({"retryAfter": 7}));
        let response = error_response(&err);
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "7");
        assert_eq!(body_json(&response)["error"]["code"], "RATE_LIMITED");
    }
}
