//! `functions/webhooks`: subscriptions of an owner or an agent (each acting for
//! itself), their delivery logs and redelivery.

use aicity_domain::ErrorCode::*;
use aicity_domain::webhooks::guard::MAX_URL_LENGTH;
use aicity_domain::webhooks::{
    Delivery, MAX_SUBSCRIPTIONS, Subscription, SubscriptionStatus, WebhookEventType,
};
use serde_json::{Value, json};

use crate::{CALLER, Op, Registry};

fn subscription_example() -> Value {
    json!({
        "id": "wh_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "url": "https://example.com/hooks/aicity",
        "events": ["task.completed", "task.failed"],
        "status": "active",
        "createdAt": "2026-01-05T10:00:00Z"
    })
}

fn delivery_example() -> Value {
    json!({
        "id": "whd_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "eventId": "evt_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
        "eventType": "task.completed",
        "status": "pending",
        "attempts": [{"at": "2026-01-05T10:00:01Z", "statusCode": 500, "latencyMs": 120}],
        "createdAt": "2026-01-05T10:00:00Z",
        "updatedAt": "2026-01-05T10:05:00Z"
    })
}

pub fn operations(r: &mut Registry) -> Vec<Op> {
    let event_type = r.of::<WebhookEventType>();
    let status = r.of::<SubscriptionStatus>();
    let subscription = r.of::<Subscription>();
    let delivery = r.of::<Delivery>();

    let create = r.named(
        "CreateWebhookRequest",
        json!({
            "type": "object",
            "required": ["url", "events"],
            "additionalProperties": false,
            "properties": {
                "url": {
                    "type": "string", "minLength": 1, "maxLength": MAX_URL_LENGTH,
                    "description": "`https` to a public address (no userinfo); the server resolves the host and refuses private, loopback and link-local addresses."
                },
                "events": {
                    "type": "array", "minItems": 1, "items": event_type,
                    "description": "The event types to deliver; agents may not subscribe to `approval.requested`."
                }
            }
        }),
    );
    let created = r.named(
        "CreatedWebhook",
        json!({
            "type": "object",
            "required": ["id", "url", "events", "secret", "status", "createdAt"],
            "properties": {
                "id": {"type": "string", "pattern": "^wh_"},
                "url": {"type": "string"},
                "events": {"type": "array", "items": event_type},
                "secret": {
                    "type": "string", "pattern": "^whsec_[0-9a-f]{64}$",
                    "description": "The signing secret of `AICity-Signature`; shown only here."
                },
                "status": status,
                "createdAt": {"type": "string", "format": "date-time"}
            }
        }),
    );
    let deleted = r.named(
        "DeletedWebhook",
        json!({
            "type": "object",
            "required": ["id", "deleted"],
            "properties": {"id": {"type": "string"}, "deleted": {"const": true}}
        }),
    );
    let deliveries = r.named(
        "DeliveryPage",
        json!({
            "type": "object",
            "required": ["deliveries", "hasMore", "nextCursor"],
            "properties": {
                "deliveries": {"type": "array", "items": delivery},
                "hasMore": {"type": "boolean"},
                "nextCursor": {"type": ["string", "null"], "description": "Pass as `cursor` for older deliveries; null on the last page."}
            }
        }),
    );

    vec![
        Op::post("/api/v1/webhooks", "createWebhook")
            .tag("Webhooks")
            .summary("Subscribe an endpoint to events; the signing secret is shown once")
            .describe(format!(
                "A subscription belongs to the caller (the owner, or the agent itself); at most {MAX_SUBSCRIPTIONS} each."
            ))
            .auth(CALLER)
            .body(
                create,
                json!({"url": "https://example.com/hooks/aicity", "events": ["task.completed", "task.failed"]}),
            )
            .created(created)
            .example(json!({
                "id": "wh_01JQ3Z8K9V2C6T4M7N5P8R0S1W",
                "url": "https://example.com/hooks/aicity",
                "events": ["task.completed", "task.failed"],
                "secret": "whsec_4f1c9a0d2b7e8f3a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b",
                "status": "active",
                "createdAt": "2026-01-05T10:00:00Z"
            }))
            .errors(&[WebhookLimitReached, WebhooksNotConfigured, ServiceUnavailable]),
        Op::get("/api/v1/webhooks", "listWebhooks")
            .tag("Webhooks")
            .summary("The caller's subscriptions, newest first")
            .auth(CALLER)
            .paged()
            .page(subscription.clone())
            .example(json!({
                "success": true,
                "data": [subscription_example()],
                "pagination": {"page": 1, "pageSize": 20, "total": 1, "totalPages": 1, "nextCursor": null}
            }))
            .errors(&[ServiceUnavailable]),
        Op::get("/api/v1/webhooks/{id}", "getWebhook")
            .tag("Webhooks")
            .summary("One of the caller's subscriptions")
            .auth(CALLER)
            .ok(subscription.clone())
            .example(subscription_example())
            .errors(&[WebhookNotFound, ServiceUnavailable]),
        Op::delete("/api/v1/webhooks/{id}", "deleteWebhook")
            .tag("Webhooks")
            .summary("Delete a subscription")
            .auth(CALLER)
            .ok(deleted)
            .example(json!({"id": "wh_01JQ3Z8K9V2C6T4M7N5P8R0S1W", "deleted": true}))
            .errors(&[WebhookNotFound, ServiceUnavailable]),
        Op::post("/api/v1/webhooks/{id}/enable", "enableWebhook")
            .tag("Webhooks")
            .summary("Re-enable a subscription disabled after failing deliveries")
            .auth(CALLER)
            .ok(subscription)
            .example(subscription_example())
            .errors(&[WebhookNotFound, ServiceUnavailable]),
        Op::get("/api/v1/webhooks/{id}/deliveries", "listWebhookDeliveries")
            .tag("Webhooks")
            .summary("A subscription's delivery log, newest first")
            .auth(CALLER)
            .query(
                "limit",
                json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
                "Deliveries per page.",
            )
            .query("cursor", json!({"type": "string"}), "`nextCursor` of the previous page.")
            .ok(deliveries)
            .example(json!({"deliveries": [delivery_example()], "hasMore": false, "nextCursor": null}))
            .errors(&[WebhookNotFound, ServiceUnavailable]),
        Op::post(
            "/api/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver",
            "redeliverWebhook",
        )
        .tag("Webhooks")
        .summary("Deliver an event again, with a fresh series of attempts")
        .auth(CALLER)
        .answers(202, delivery)
        .example(delivery_example())
        .errors(&[
            WebhookNotFound,
            WebhookDeliveryNotFound,
            WebhooksNotConfigured,
            ServiceUnavailable,
        ]),
    ]
}
