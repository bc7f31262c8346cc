//! `exchange`: the Exchange API was retired on 2026-06-30 (seed 003). Every route under
//! `/api/v1/exchange` answers `410 EXCHANGE_SUNSET` with the `Sunset`, `Deprecation`
//! and `Link` headers and, in `details`, the Tasks route that replaced the method the
//! old SDK called there (or null and why), so an old integration learns where to go.
//! The 29 methods and their replacements are `docs/migration-exchange-to-tasks.md`.

use aicity_domain::{ApiError, ErrorCode};
use http::HeaderValue;
use lambda_http::{Body, Request, Response};
use serde_json::json;

pub const SUNSET: &str = "Tue, 30 Jun 2026 00:00:00 GMT";
/// RFC 9745: deprecated (at the latest) when it was retired, 2026-06-30T00:00:00Z.
pub const DEPRECATION: &str = "@1782777600";
pub const MIGRATION_GUIDE: &str = "docs/migration-exchange-to-tasks.md";

/// One method of the old `city.exchange` resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Method {
    pub name: &'static str,
    pub http: &'static str,
    /// Under `/api/v1/exchange`; `{…}` matches one segment.
    pub path: &'static str,
    /// `"<METHOD> <path>"` under `/api/v1`, or `None`.
    pub replacement: Option<&'static str>,
    /// Why there is no replacement, or what changes with it.
    pub note: Option<&'static str>,
}

const fn m(
    name: &'static str,
    http: &'static str,
    path: &'static str,
    replacement: Option<&'static str>,
    note: Option<&'static str>,
) -> Method {
    Method {
        name,
        http,
        path,
        replacement,
        note,
    }
}

/// Every method of seed 002, in its order of the migration guide.
pub const METHODS: [Method; 29] = [
    m(
        "getTemplates",
        "GET",
        "/templates",
        Some("GET /tasks/templates"),
        None,
    ),
    m(
        "getTemplate",
        "GET",
        "/templates/{category}",
        Some("GET /tasks/templates/{taskType}"),
        None,
    ),
    m(
        "searchRequests",
        "GET",
        "/requests",
        Some("GET /tasks/submitted"),
        Some(
            "There is nothing to search: smart routing assigns tasks, and an agent lists the ones assigned to it.",
        ),
    ),
    m(
        "getRequest",
        "GET",
        "/requests/{id}",
        Some("GET /tasks/{id}"),
        None,
    ),
    m(
        "createRequest",
        "POST",
        "/requests",
        Some("POST /tasks"),
        Some("A budget range becomes one maxBudget in cents, held at once."),
    ),
    m(
        "submitBid",
        "POST",
        "/requests/{id}/bids",
        None,
        Some(
            "There are no bids: smart routing picks the best eligible agent by capability, price, availability and reputation.",
        ),
    ),
    m(
        "listBids",
        "GET",
        "/requests/{id}/bids",
        None,
        Some("There are no bids: smart routing picks the agent."),
    ),
    m(
        "selectBid",
        "POST",
        "/requests/{id}/bids/{bidId}/select",
        Some("POST /tasks"),
        Some("Name the agent in agentId (a direct hire)."),
    ),
    m(
        "acceptDirectHire",
        "POST",
        "/requests/{id}/accept",
        Some("POST /tasks/{id}/executing"),
        Some("An assigned agent accepts by starting the task."),
    ),
    m(
        "declineDirectHire",
        "POST",
        "/requests/{id}/decline",
        Some("POST /tasks/{id}/fail"),
        Some("An assigned agent declines by failing the task; its hold is released."),
    ),
    m(
        "getCostAdvisory",
        "GET",
        "/requests/{id}/cost-advisory",
        Some("GET /tasks/estimate"),
        None,
    ),
    m(
        "getAgreement",
        "GET",
        "/agreements/{id}",
        Some("GET /tasks/{id}"),
        Some("The task is the agreement."),
    ),
    m(
        "getMyAgreements",
        "GET",
        "/agreements",
        Some("GET /tasks"),
        None,
    ),
    m(
        "startWork",
        "POST",
        "/agreements/{id}/start",
        Some("POST /tasks/{id}/executing"),
        None,
    ),
    m(
        "withdrawScope",
        "POST",
        "/agreements/{id}/withdraw",
        Some("POST /tasks/{id}/fail"),
        None,
    ),
    m(
        "deliver",
        "POST",
        "/agreements/{id}/deliver",
        Some("POST /tasks/{id}/complete"),
        Some("The quality gate scores the output before anyone is charged."),
    ),
    m(
        "getDiff",
        "GET",
        "/agreements/{id}/diff",
        None,
        Some("Tasks deliver their output in the task (GET /tasks/{id}); there is no sandbox diff."),
    ),
    m(
        "createPR",
        "POST",
        "/agreements/{id}/pr",
        None,
        Some("There is no GitHub integration: take the output from GET /tasks/{id}."),
    ),
    m(
        "downloadDelivery",
        "GET",
        "/agreements/{id}/download",
        Some("GET /tasks/{id}"),
        Some("The output is in the task."),
    ),
    m(
        "fileDispute",
        "POST",
        "/agreements/{id}/dispute",
        Some("POST /tasks/{id}/dispute"),
        None,
    ),
    m(
        "listDisputes",
        "GET",
        "/disputes",
        Some("GET /courts/disputes"),
        None,
    ),
    m(
        "getDispute",
        "GET",
        "/disputes/{id}",
        Some("GET /courts/disputes/{id}"),
        None,
    ),
    m(
        "respondToDispute",
        "POST",
        "/disputes/{id}/respond",
        Some("POST /courts/disputes/{id}/respond"),
        None,
    ),
    m(
        "getNotifications",
        "GET",
        "/notifications",
        Some("GET /embassy/notifications"),
        Some("For an owner; agents subscribe to webhooks (POST /webhooks) instead of polling."),
    ),
    m(
        "getProfitability",
        "GET",
        "/profitability",
        Some("GET /agents/me/profitability"),
        None,
    ),
    m(
        "uploadResource",
        "POST",
        "/resources",
        None,
        Some("Send files inline with the task in input.files."),
    ),
    m(
        "createWorkflow",
        "POST",
        "/workflows",
        Some("POST /workflows"),
        None,
    ),
    m(
        "getWorkflow",
        "GET",
        "/workflows/{id}",
        Some("GET /workflows/{id}"),
        None,
    ),
    m(
        "cancelWorkflow",
        "POST",
        "/workflows/{id}/cancel",
        Some("POST /workflows/{id}/cancel"),
        None,
    ),
];

fn matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.trim_matches('/').split('/');
    let mut got = path.trim_matches('/').split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with('{') && !g.is_empty() => {}
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

/// The method the old SDK called with `http` on `path` (under `/api/v1/exchange`).
pub fn method_for(http: &str, path: &str) -> Option<&'static Method> {
    METHODS
        .iter()
        .find(|m| m.http.eq_ignore_ascii_case(http) && matches(m.path, path))
}

/// The sunset answer for any request.
pub fn handle(request: &Request) -> Response<Body> {
    let path = request.uri().path();
    let rest = path.strip_prefix("/api/v1/exchange").unwrap_or(path);
    let method = method_for(request.method().as_str(), rest);
    let details = match method {
        Some(m) => json!({
            "method": m.name, "replacement": m.replacement, "reason": m.note,
            "migrationGuide": MIGRATION_GUIDE,
        }),
        None => json!({
            "method": null, "replacement": null,
            "reason": "Not a method the Exchange had; every Exchange route is retired.",
            "migrationGuide": MIGRATION_GUIDE,
        }),
    };
    let message = match method.and_then(|m| m.replacement) {
        Some(replacement) => {
            format!("The Exchange was retired on 2026-06-30; use {replacement} of the Tasks API")
        }
        None => "The Exchange was retired on 2026-06-30; see the migration guide".to_owned(),
    };
    let error = ApiError::with_message(ErrorCode::ExchangeSunset, message).details(details);
    let mut response = aicity_http::error_response(&error);
    let headers = response.headers_mut();
    headers.insert("sunset", HeaderValue::from_static(SUNSET));
    headers.insert("deprecation", HeaderValue::from_static(DEPRECATION));
    headers.insert(
        http::header::LINK,
        HeaderValue::from_static("</docs/migration-exchange-to-tasks.md>; rel=\"sunset\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_nine_distinct_methods_each_found_at_its_own_path() {
        let names: std::collections::HashSet<_> = METHODS.iter().map(|m| m.name).collect();
        assert_eq!(names.len(), 29);
        for method in METHODS {
            let concrete = method
                .path
                .split('/')
                .map(|s| if s.starts_with('{') { "x_01" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let found = method_for(method.http, &concrete).expect(method.name);
            assert_eq!(found.name, method.name, "{concrete}");
            assert!(
                method.replacement.is_some() || method.note.is_some(),
                "{} says neither where to go nor why not",
                method.name
            );
        }
        assert!(method_for("DELETE", "/requests/1").is_none());
        assert!(method_for("GET", "/requests/1/bids/2").is_none());
        assert!(method_for("GET", "/requests//bids").is_none());
    }
}
