//! The webhook delivery log over a real emulator: one delivery per (subscription, event),
//! attempts only while pending in their series, a long log keeping its newest attempts,
//! a redelivery superseding the old series.

use aicity_domain::webhooks::{
    Attempt, Delivery, DeliveryStatus, MAX_LOGGED_ATTEMPTS, WebhookEventType, delivery_id,
};
use aicity_store::webhooks::{self, DeliveryRecord};
use time::OffsetDateTime;

fn attempt(n: usize) -> Attempt {
    Attempt {
        at: format!("2026-01-01T00:00:{:02}Z", n % 60),
        status_code: Some(500),
        latency_ms: n as u64,
        error: Some("HTTP 500".into()),
    }
}

#[tokio::test]
async fn the_log_is_written_once_per_pair_and_only_while_pending() {
    let clients = aicity_testkit::clients().await;
    let table = aicity_testkit::fresh_table(&clients).await;
    let db = &clients.dynamodb;
    let now = OffsetDateTime::now_utc();
    let event = "evt_01ARZ3NDEKTSV4RRFFQ69G5FAV";
    let record = DeliveryRecord {
        delivery: Delivery {
            id: delivery_id(event),
            event_id: event.into(),
            event_type: WebhookEventType::TaskFailed,
            status: DeliveryStatus::Pending,
            attempts: vec![],
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        },
        subscription_id: "wh_1".into(),
        series: 1,
    };
    assert!(
        webhooks::create_delivery(db, &table, &record, now)
            .await
            .unwrap()
    );
    assert!(
        !webhooks::create_delivery(db, &table, &record, now)
            .await
            .unwrap()
    );

    // Fill the log past its limit: the newest attempts stay.
    let mut current = record.clone();
    for n in 0..MAX_LOGGED_ATTEMPTS + 3 {
        assert!(
            webhooks::record_attempt(db, &table, &current, &attempt(n), None, now)
                .await
                .unwrap()
        );
        current = webhooks::get_delivery(db, &table, "wh_1", &record.delivery.id)
            .await
            .unwrap();
    }
    assert_eq!(current.delivery.attempts.len(), MAX_LOGGED_ATTEMPTS);
    assert_eq!(current.delivery.attempts[0].latency_ms, 3);
    assert_eq!(
        current.delivery.attempts.last().unwrap().latency_ms,
        (MAX_LOGGED_ATTEMPTS + 2) as u64
    );

    // A redelivery starts series 2: a message of series 1 records nothing.
    let audit = aicity_store::embassy::audit_item(
        &table,
        &aicity_domain::embassy::AuditEntry {
            id: aicity_store::embassy::new_id(aicity_domain::embassy::AUDIT_PREFIX),
            at: "2026-01-01T00:00:00Z".into(),
            owner_id: aicity_domain::ids::OwnerId::new(),
            agent_id: None,
            actor: aicity_domain::embassy::AuditActor::platform(),
            action: "webhook.redelivered".into(),
            target: aicity_domain::embassy::AuditTarget::new("webhook", "wh_1"),
            request_id: None,
            details: serde_json::Value::Null,
        },
    )
    .unwrap();
    let restarted = webhooks::restart(db, &table, "wh_1", &record.delivery.id, audit, now)
        .await
        .unwrap();
    assert_eq!(restarted.series, 2);
    assert!(
        !webhooks::record_attempt(db, &table, &current, &attempt(0), None, now)
            .await
            .unwrap()
    );
    assert!(
        webhooks::record_attempt(
            db,
            &table,
            &restarted,
            &attempt(1),
            Some(DeliveryStatus::Delivered),
            now
        )
        .await
        .unwrap()
    );
    // Delivered: nothing more is recorded, nor failed.
    assert!(
        !webhooks::record_attempt(db, &table, &restarted, &attempt(2), None, now)
            .await
            .unwrap()
    );
    assert!(
        !webhooks::fail_pending(db, &table, &restarted, now)
            .await
            .unwrap()
    );
    let (page, more) = webhooks::deliveries_page(db, &table, "wh_1", None, 10)
        .await
        .unwrap();
    assert!(!more);
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].delivery.status, DeliveryStatus::Delivered);
}
