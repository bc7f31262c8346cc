//! The three response shapes of the API.

use aicity_domain::{ApiError, ErrorCode, FieldError};
use aicity_store::paging::{Listed, PageAsk};
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

/// `total` and `totalPages` are exact when `nextCursor` is null (the request saw the
/// list's end); before that they are a lower bound (the items so far and one more):
/// lists are read a page at a time, never counted whole (README, "Paging").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    pub page: u32,
    pub page_size: u32,
    pub total: u64,
    pub total_pages: u64,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

impl Pagination {
    pub fn new(request: &PageRequest, total: u64) -> Self {
        Self {
            page: request.page,
            page_size: request.page_size,
            total,
            total_pages: total.div_ceil(u64::from(request.page_size)),
            next_cursor: None,
        }
    }

    /// The block of a page read by `aicity_store::paging`.
    pub fn of<T>(listed: &Listed<T>) -> Self {
        Self {
            page: listed.page,
            page_size: listed.page_size,
            total: listed.total,
            total_pages: listed.total.div_ceil(u64::from(listed.page_size.max(1))),
            next_cursor: listed.next_cursor.clone(),
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

/// `?page=&pageSize=&cursor=` with the API's defaults and limits. The cursor is
/// checked where it is used (`aicity_store::paging`), against the list asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub page_size: u32,
    pub cursor: Option<String>,
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
            Ok(Self {
                page,
                page_size,
                cursor: None,
            })
        } else {
            Err(ApiError::validation(errors))
        }
    }

    /// `page`, `pageSize` and `cursor` of a request. A cursor longer than any this API
    /// issues is refused here; `page` with a cursor is ignored (the cursor knows it).
    pub fn from_request(request: &lambda_http::Request) -> Result<Self, ApiError> {
        let param = |name| crate::request::query_param(request, name);
        let mut parsed = Self::parse(param("page").as_deref(), param("pageSize").as_deref())?;
        if let Some(cursor) = param("cursor") {
            if cursor.len() > aicity_store::paging::MAX_CURSOR_LEN {
                return Err(ApiError::invalid_field(
                    "cursor",
                    "must be a nextCursor value of this same list",
                ));
            }
            parsed.cursor = Some(cursor);
        }
        Ok(parsed)
    }

    /// What the store's paged reads take.
    pub fn ask(&self) -> PageAsk {
        PageAsk::new(self.page, self.page_size, self.cursor.clone())
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
        assert_eq!(Pagination::new(&request, 0).total_pages, 0);
        assert_eq!(Pagination::new(&request, 10).total_pages, 1);
        assert_eq!(Pagination::new(&request, 11).total_pages, 2);
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
    fn next_cursor_is_always_in_the_block() {
        let listed = Listed {
            items: vec![1, 2],
            page: 3,
            page_size: 20,
            total: 42,
            next_cursor: None,
        };
        let block = serde_json::to_value(Pagination::of(&listed)).unwrap();
        assert_eq!(
            block,
            serde_json::json!({"page": 3, "pageSize": 20, "total": 42, "totalPages": 3, "nextCursor": null})
        );
        let more = Listed {
            next_cursor: Some("abc".to_owned()),
            ..listed
        };
        assert_eq!(Pagination::of(&more).next_cursor.as_deref(), Some("abc"));
    }

    #[test]
    fn failure_always_has_details_object() {
        let body = serde_json::to_value(Failure::from(&ApiError::internal())).unwrap();
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "INTERNAL_ERROR");
        assert!(body["error"]["details"].is_object());
    }
}
