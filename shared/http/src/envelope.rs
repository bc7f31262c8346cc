//! The three response shapes of the API.

use aicity_domain::{ApiError, ErrorCode, FieldError};
use serde::Serialize;
use serde_json::Value;

/// `{"success":true,"data":…}`
#[derive(Debug, Serialize)]
pub struct Success<T> {
    pub success: bool,
    pub data: T,
}

/// `{"success":true,"data":[…],"pagination":{…}}`
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub success: bool,
    pub data: Vec<T>,
    pub pagination: Pagination,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    pub page: u32,
    pub page_size: u32,
    pub total: u64,
    pub total_pages: u64,
}

impl Pagination {
    pub fn new(request: PageRequest, total: u64) -> Self {
        Self {
            page: request.page,
            page_size: request.page_size,
            total,
            total_pages: total.div_ceil(u64::from(request.page_size)),
        }
    }
}

/// `{"success":false,"error":{"code","message","details"}}`
#[derive(Debug, Serialize)]
pub struct Failure {
    pub success: bool,
    pub error: ErrorBody,
}

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    pub details: Value,
}

impl From<&ApiError> for Failure {
    fn from(err: &ApiError) -> Self {
        Failure {
            success: false,
            error: ErrorBody {
                code: err.code,
                message: err.message.clone(),
                details: err
                    .details
                    .clone()
                    .unwrap_or_else(|| Value::Object(Default::default())),
            },
        }
    }
}

/// `?page=&pageSize=` with the API's defaults and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub page_size: u32,
}

impl PageRequest {
    pub const DEFAULT_PAGE_SIZE: u32 = 20;
    pub const MAX_PAGE_SIZE: u32 = 100;

    /// Parses the two optional query values; anything else is a field error.
    pub fn parse(page: Option<&str>, page_size: Option<&str>) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let page = parse_bounded(&mut errors, "page", page, 1, 1, u32::MAX);
        let page_size = parse_bounded(
            &mut errors,
            "pageSize",
            page_size,
            Self::DEFAULT_PAGE_SIZE,
            1,
            Self::MAX_PAGE_SIZE,
        );
        if errors.is_empty() {
            Ok(Self { page, page_size })
        } else {
            Err(ApiError::validation(errors))
        }
    }

    /// Items to skip before this page.
    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.page_size)
    }
}

fn parse_bounded(
    errors: &mut Vec<FieldError>,
    field: &str,
    raw: Option<&str>,
    default: u32,
    min: u32,
    max: u32,
) -> u32 {
    let Some(raw) = raw else { return default };
    match raw.trim().parse::<u32>() {
        Ok(value) if (min..=max).contains(&value) => value,
        _ => {
            errors.push(FieldError::new(
                field,
                format!("must be an integer between {min} and {max}"),
            ));
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_pages_rounds_up() {
        let request = PageRequest::parse(Some("2"), Some("10")).unwrap();
        assert_eq!(Pagination::new(request, 0).total_pages, 0);
        assert_eq!(Pagination::new(request, 10).total_pages, 1);
        assert_eq!(Pagination::new(request, 11).total_pages, 2);
        assert_eq!(request.offset(), 10);
    }

    #[test]
    fn page_size_is_limited() {
        assert_eq!(PageRequest::parse(None, None).unwrap().page_size, 20);
        let err = PageRequest::parse(Some("0"), Some("101")).unwrap_err();
        let fields = &err.details.unwrap()["fields"];
        assert_eq!(fields[0]["field"], "page");
        assert_eq!(fields[1]["field"], "pageSize");
        assert!(PageRequest::parse(Some("x"), None).is_err());
    }

    #[test]
    fn failure_always_has_details_object() {
        let body = serde_json::to_value(Failure::from(&ApiError::internal())).unwrap();
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "INTERNAL_ERROR");
        assert!(body["error"]["details"].is_object());
    }
}
