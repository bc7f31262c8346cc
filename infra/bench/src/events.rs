//! The first event each function is handed: a cheap request that still goes through the
//! function's real path to DynamoDB (an auth lookup, a rate counter, a missing item), so
//! the first invocation includes the first connection to the table.

use serde_json::{Value, json};

/// What kind of event source a function has (and so what event it gets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// API Gateway v2 (payload 2.0): method and path.
    Http(&'static str, &'static str),
    /// An SQS batch of one message with this body.
    Sqs(&'static str),
    /// An EventBridge scheduled event.
    Schedule,
    /// Any JSON, echoed (the hello-world baseline).
    Echo,
}

/// The baseline's name in every table.
pub const HELLO: &str = "hello-lambda";

/// Every function binary of the template and how the bench invokes it. HTTP requests
/// carry an unknown API key and session token: the auth layer looks them up in the
/// table, counts the failure against the client IP and answers 401.
pub const FUNCTIONS: &[(&str, Trigger)] = &[
    ("agents", Trigger::Http("GET", "/api/v1/agents")),
    ("auth", Trigger::Http("GET", "/api/v1/auth/session")),
    (
        "canary",
        Trigger::Sqs(r#"{"probeId":"prb_01JFZZZZZZZZZZZZZZZZZZZZZZ"}"#),
    ),
    ("courts", Trigger::Http("GET", "/api/v1/courts/disputes")),
    // Anonymous: a rate counter per client IP, then the document.
    ("docs", Trigger::Http("GET", "/api/v1/openapi.json")),
    (
        "embassy",
        Trigger::Http("GET", "/api/v1/embassy/agents/{agentId}/policy"),
    ),
    // No table at all: 410 for every method.
    ("exchange", Trigger::Http("GET", "/api/v1/exchange/tasks")),
    ("health", Trigger::Http("GET", "/api/v1/health")),
    (
        "quality",
        Trigger::Sqs(r#"{"taskId":"task_01JFZZZZZZZZZZZZZZZZZZZZZZ"}"#),
    ),
    (
        "router",
        Trigger::Sqs(r#"{"taskId":"task_01JFZZZZZZZZZZZZZZZZZZZZZZ"}"#),
    ),
    (
        "settlement",
        Trigger::Sqs(r#"{"taskId":"task_01JFZZZZZZZZZZZZZZZZZZZZZZ"}"#),
    ),
    ("stream", Trigger::Http("GET", "/api/v1/tasks/{id}/stream")),
    // A sweep of an empty table: every query it makes, nothing to do.
    ("sweeper", Trigger::Schedule),
    ("tasks", Trigger::Http("GET", "/api/v1/tasks")),
    ("trust", Trigger::Http("GET", "/api/v1/trust/keys")),
    ("vault", Trigger::Http("GET", "/api/v1/vault/pool")),
    (
        "webhook-delivery",
        Trigger::Sqs(r#"{"eventId":"whe_01JFZZZZZZZZZZZZZZZZZZZZZZ"}"#),
    ),
    ("webhooks", Trigger::Http("GET", "/api/v1/webhooks")),
];

/// The trigger of `name` (`None` for a name the bench does not know).
pub fn trigger(name: &str) -> Option<Trigger> {
    if name == HELLO {
        return Some(Trigger::Echo);
    }
    FUNCTIONS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The event for run number `run`. Each run comes from its own client IP, so the
/// per-IP counters (failed authentications, anonymous requests) never reach their
/// limit and every run does the same work.
pub fn event(trigger: Trigger, run: u32) -> Value {
    match trigger {
        Trigger::Http(method, route) => http(method, route, run),
        Trigger::Sqs(body) => sqs(body),
        Trigger::Schedule => schedule(),
        Trigger::Echo => json!({ "hello": "bench", "run": run }),
    }
}

fn http(method: &str, route: &str, run: u32) -> Value {
    let ids = [
        ("{agentId}", "agentId", "agt_01JFZZZZZZZZZZZZZZZZZZZZZZ"),
        ("{id}", "id", "task_01JFZZZZZZZZZZZZZZZZZZZZZZ"),
    ];
    let mut path = route.to_owned();
    let mut parameters = serde_json::Map::new();
    for (placeholder, name, value) in ids {
        if path.contains(placeholder) {
            path = path.replace(placeholder, value);
            parameters.insert(name.to_owned(), json!(value));
        }
    }
    let source_ip = format!(
        "10.{}.{}.{}",
        (run >> 16) & 255,
        (run >> 8) & 255,
        run & 255
    );
    let route_key = format!("{method} {route}");
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "accept": "application/json",
            "host": "bench.local",
            "user-agent": "aicity-bench",
            "x-api-key": "ac_live_benchbenchbenchbenchbenchbench00",
            "authorization": "Bearer bench-session-token-that-does-not-exist",
            "x-forwarded-for": source_ip,
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "bench.local",
            "domainPrefix": "bench",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": "aicity-bench",
            },
            "requestId": format!("bench-{run}"),
            "routeKey": route_key,
            "stage": "$default",
            "time": "23/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1_795_435_200_000_u64,
        },
        "isBase64Encoded": false,
    });
    if !parameters.is_empty() {
        event["pathParameters"] = Value::Object(parameters);
    }
    event
}

fn sqs(body: &str) -> Value {
    json!({
        "Records": [{
            "messageId": "5b1f2a3c-0000-4000-8000-00000000be01",
            "receiptHandle": "bench-receipt-1",
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1795435200000",
                "SenderId": "123456789012",
                "ApproximateFirstReceiveTimestamp": "1795435200001",
            },
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench",
            "awsRegion": "us-east-1",
        }]
    })
}

fn schedule() -> Value {
    json!({
        "version": "0",
        "id": "01JFZZZZZZZZZZZZZZZZZZZZZZ",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-23T12:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/bench"],
        "detail": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_events_fill_path_parameters_and_vary_the_client_ip() {
        let first = event(trigger("embassy").unwrap(), 1);
        let second = event(trigger("embassy").unwrap(), 2);
        assert_eq!(
            first["rawPath"],
            "/api/v1/embassy/agents/agt_01JFZZZZZZZZZZZZZZZZZZZZZZ/policy"
        );
        assert_eq!(
            first["pathParameters"]["agentId"],
            "agt_01JFZZZZZZZZZZZZZZZZZZZZZZ"
        );
        assert_ne!(
            first["requestContext"]["http"]["sourceIp"],
            second["requestContext"]["http"]["sourceIp"]
        );
    }

    #[test]
    fn every_function_of_the_workspace_has_a_trigger() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../functions");
        for entry in std::fs::read_dir(root).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(trigger(&name).is_some(), "no bench event for {name}");
        }
    }
}
