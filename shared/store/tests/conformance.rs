//! Conformance of the store helpers over a real emulator connection: the rules the
//! whole system leans on (conditional transitions, all-or-nothing transactions) must
//! hold on moto, DynamoDB Local and DynamoDB alike.

use std::collections::HashMap;

use aicity_domain::ids::ProbeId;
use aicity_store::probe::{self, Probe, ProbeSource, ProbeStatus, Recorded};
use aicity_store::transact::Transaction;
use aicity_store::transition::{STATUS, Transition};
use aicity_store::{Key, StoreError};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use time::OffsetDateTime;

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

async fn put(client: &Client, table: &str, key: &Key, status: &str, agent: &str) {
    let mut item = key.to_map();
    item.insert(STATUS.into(), s(status));
    item.insert("agentId".into(), s(agent));
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .expect("put");
}

async fn status_of(client: &Client, table: &str, key: &Key) -> Option<String> {
    client
        .get_item()
        .table_name(table)
        .set_key(Some(key.to_map()))
        .consistent_read(true)
        .send()
        .await
        .expect("get")
        .item
        .and_then(|item| item.get(STATUS).and_then(|v| v.as_s().ok()).cloned())
}

fn unique_key() -> Key {
    Key::new(format!("TASK#{}", ulid::Ulid::generate()), "TASK")
}

#[tokio::test]
async fn a_transition_that_loses_the_race_is_a_typed_conflict() {
    let clients = aicity_testkit::clients().await;
    let table = aicity_testkit::fresh_table(&clients).await;
    let db = &clients.dynamodb;
    let key = unique_key();
    put(db, &table, &key, "submitted", "ag_1").await;

    let winner = Transition::new(key.clone(), "submitted", "executing")
        .by("agentId", "ag_1")
        .set("sandboxId", s("sbx_1"));
    let after = winner
        .apply(db, &table)
        .await
        .expect("first transition wins");
    assert_eq!(after[STATUS], s("executing"));
    assert_eq!(after["sandboxId"], s("sbx_1"));

    let loser = Transition::new(key.clone(), "submitted", "cancelled");
    match loser.apply(db, &table).await {
        Err(StoreError::Conflict { current }) => assert_eq!(current.as_deref(), Some("executing")),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        status_of(db, &table, &key).await.as_deref(),
        Some("executing")
    );
}

#[tokio::test]
async fn the_wrong_actor_and_a_missing_item_are_told_apart() {
    let clients = aicity_testkit::clients().await;
    let table = aicity_testkit::fresh_table(&clients).await;
    let db = &clients.dynamodb;
    let key = unique_key();
    put(db, &table, &key, "submitted", "ag_1").await;

    let stranger = Transition::new(key.clone(), "submitted", "executing").by("agentId", "ag_2");
    assert!(matches!(
        stranger.apply(db, &table).await,
        Err(StoreError::ActorMismatch)
    ));
    assert_eq!(
        status_of(db, &table, &key).await.as_deref(),
        Some("submitted")
    );

    let missing = Transition::new(unique_key(), "submitted", "executing");
    assert!(matches!(
        missing.apply(db, &table).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn of_32_concurrent_transitions_from_one_status_exactly_one_wins() {
    let clients = aicity_testkit::clients().await;
    let table = aicity_testkit::fresh_table(&clients).await;
    let key = unique_key();
    put(&clients.dynamodb, &table, &key, "submitted", "ag_1").await;

    let attempts = (0..32).map(|i| {
        let db = clients.dynamodb.clone();
        let table = table.clone();
        let transition = Transition::new(key.clone(), "submitted", "executing")
            .set("winner", AttributeValue::N(i.to_string()));
        tokio::spawn(async move { transition.apply(&db, &table).await })
    });
    let results = futures::future::join_all(attempts).await;
    let mut wins = 0;
    let mut conflicts = 0;
    for result in results {
        match result.expect("task") {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict { current }) => {
                assert_eq!(current.as_deref(), Some("executing"));
                conflicts += 1;
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!((wins, conflicts), (1, 31));
}

#[tokio::test]
async fn a_cancelled_transaction_writes_nothing_and_names_the_failing_item() {
    let clients = aicity_testkit::clients().await;
    let table = aicity_testkit::fresh_table(&clients).await;
    let db = &clients.dynamodb;
    let task = unique_key();
    let pool = Key::new(format!("OWNER#{}", ulid::Ulid::generate()), "POOL");
    let event = Key::new(task.pk.clone(), "EVENT#0000000001");
    put(db, &table, &task, "submitted", "ag_1").await;
    put(db, &table, &pool, "active", "-").await;

    let mut new_event = event.to_map();
    new_event.insert("type".into(), s("status"));
    let mut transaction = Transaction::new();
    transaction
        .push(
            "task",
            Transition::new(task.clone(), "submitted", "executing")
                .to_transact_item(&table)
                .unwrap(),
        )
        .push(
            "event",
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&table)
                        .set_item(Some(new_event))
                        .condition_expression("attribute_not_exists(PK)")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        // Expects the pool frozen, which it is not: this item fails.
        .push(
            "pool",
            Transition::new(pool.clone(), "frozen", "active")
                .to_transact_item(&table)
                .unwrap(),
        );
    let err = transaction.commit(db).await.expect_err("must be cancelled");
    assert_eq!(err.failed_labels(), vec!["pool"]);
    match &err {
        StoreError::TransactionCancelled { failed } => {
            assert_eq!(failed[0].index, 2);
            assert_eq!(failed[0].code, "ConditionalCheckFailed");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        status_of(db, &table, &task).await.as_deref(),
        Some("submitted")
    );
    let event_item = db
        .get_item()
        .table_name(&table)
        .set_key(Some(event.to_map()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item;
    assert_eq!(
        event_item, None,
        "no item of a cancelled transaction is written"
    );
}

#[tokio::test]
async fn expiring_items_carry_the_ttl_attribute_the_table_is_configured_for() {
    let clients = aicity_testkit::clients().await;
    let table = aicity_testkit::fresh_table(&clients).await;
    let db = &clients.dynamodb;
    let ttl = db
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let description = ttl.time_to_live_description().expect("TTL described");
    assert_eq!(
        description.attribute_name(),
        Some(aicity_store::schema::TTL_ATTRIBUTE)
    );

    let now = OffsetDateTime::now_utc();
    let probe = Probe::new(ProbeSource::Api, now);
    probe::create(db, &table, &probe, now).await.unwrap();
    let item = db
        .get_item()
        .table_name(&table)
        .set_key(Some(Key::probe(&probe.probe_id).to_map()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let expires: i64 = item[aicity_store::schema::TTL_ATTRIBUTE]
        .as_n()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        expires,
        aicity_store::ttl::expires_at(now, aicity_store::probe::PROBE_TTL)
    );
}

#[tokio::test]
async fn a_redelivered_probe_is_recorded_once() {
    let clients = aicity_testkit::clients().await;
    let table = aicity_testkit::fresh_table(&clients).await;
    let db = &clients.dynamodb;
    let now = OffsetDateTime::now_utc();
    let probe = Probe::new(ProbeSource::Schedule, now);
    probe::create(db, &table, &probe, now).await.unwrap();
    assert!(matches!(
        probe::create(db, &table, &probe, now).await,
        Err(StoreError::Conflict { .. })
    ));

    let first = probe::record_received(db, &table, &probe.probe_id, now)
        .await
        .unwrap();
    let later = now + std::time::Duration::from_secs(5);
    let again = probe::record_received(db, &table, &probe.probe_id, later)
        .await
        .unwrap();
    assert_eq!((first, again), (Recorded::New, Recorded::AlreadyRecorded));

    let stored = probe::get(db, &table, &probe.probe_id).await.unwrap();
    assert_eq!(stored.status, ProbeStatus::Received);
    assert_eq!(
        stored.received_at,
        Some(aicity_domain::timestamps::format(now)),
        "first delivery's time kept"
    );
    let summary = probe::summary(db, &table).await.unwrap().unwrap();
    assert_eq!(summary.last_probe_id, probe.probe_id);

    assert!(matches!(
        probe::record_received(db, &table, &ProbeId::new(), now).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn transactions_over_the_limit_are_refused_before_sending() {
    let clients = aicity_testkit::clients().await;
    let mut transaction = Transaction::new();
    for i in 0..=aicity_store::transact::MAX_ITEMS {
        let item: HashMap<String, AttributeValue> = Key::new(format!("X#{i}"), "X").to_map();
        transaction.push(
            format!("item{i}"),
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name("unused")
                        .set_item(Some(item))
                        .build()
                        .unwrap(),
                )
                .build(),
        );
    }
    assert!(matches!(
        transaction.commit(&clients.dynamodb).await,
        Err(StoreError::Invalid(_))
    ));
}

/// Racing transactions on one item: DynamoDB (and DynamoDB Local) cancel the losers
/// with `TransactionConflict`; the commit retries them, so every one lands and none is
/// reported as a failed condition.
#[tokio::test]
async fn racing_transactions_on_one_item_all_commit() {
    let clients = aicity_testkit::clients().await;
    let table = aicity_testkit::fresh_table(&clients).await;
    let counter = Key::new("COUNTER#1", "COUNTER");
    let racers: Vec<_> = (0..24)
        .map(|i| {
            let (client, table, counter) =
                (clients.dynamodb.clone(), table.clone(), counter.clone());
            tokio::spawn(async move {
                let add = aws_sdk_dynamodb::types::Update::builder()
                    .table_name(&table)
                    .set_key(Some(counter.to_map()))
                    .update_expression("ADD hits :one")
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .build()
                    .unwrap();
                let mut mark = Key::new(format!("MARK#{i}"), "MARK").to_map();
                mark.insert("n".into(), AttributeValue::N(i.to_string()));
                let put = Put::builder()
                    .table_name(&table)
                    .set_item(Some(mark))
                    .condition_expression("attribute_not_exists(PK)")
                    .build()
                    .unwrap();
                let mut transaction = Transaction::new();
                transaction
                    .push("counter", TransactWriteItem::builder().update(add).build())
                    .push("mark", TransactWriteItem::builder().put(put).build());
                transaction.commit(&client).await
            })
        })
        .collect();
    for racer in racers {
        racer
            .await
            .unwrap()
            .expect("contention is retried, not reported");
    }
    let item = clients
        .dynamodb
        .get_item()
        .table_name(&table)
        .set_key(Some(counter.to_map()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["hits"], AttributeValue::N("24".into()));
}

/// An idempotency claim lapses after a minute (a crashed request), keeps its operation
/// id for the retry that takes it over, and is released at once by a server error.
#[tokio::test]
async fn idempotency_claims_lapse_and_keep_their_operation() {
    use aicity_store::idempotency::{self, Begin, IN_PROGRESS_LEASE};
    let clients = aicity_testkit::clients().await;
    let table = aicity_testkit::fresh_table(&clients).await;
    let db = &clients.dynamodb;
    let t0 = OffsetDateTime::now_utc();
    let begin = |hash: &'static str, fresh: &'static str, at: OffsetDateTime| {
        let (db, table) = (db.clone(), table.clone());
        async move {
            idempotency::begin(&db, &table, "o:tasks", "k", hash, fresh, at)
                .await
                .unwrap()
        }
    };
    let first = begin("h1", "op1", t0).await;
    assert_eq!(
        first,
        Begin::Proceed {
            operation: "op1".into()
        }
    );
    assert_eq!(
        begin("h1", "op2", t0 + std::time::Duration::from_secs(30)).await,
        Begin::InProgress
    );
    assert_eq!(
        begin("h2", "op2", t0 + std::time::Duration::from_secs(30)).await,
        Begin::Mismatch
    );
    let lapsed = t0 + IN_PROGRESS_LEASE + std::time::Duration::from_secs(1);
    assert_eq!(
        begin("h2", "op2", lapsed).await,
        Begin::Mismatch,
        "only the same request takes over"
    );
    assert_eq!(
        begin("h1", "op3", lapsed).await,
        Begin::Proceed {
            operation: "op1".into()
        },
        "a crashed request's retry writes under the same operation"
    );
    idempotency::release(db, &table, "o:tasks", "k")
        .await
        .unwrap();
    assert_eq!(
        begin("h1", "op4", lapsed).await,
        Begin::Proceed {
            operation: "op1".into()
        }
    );
    idempotency::complete(db, &table, "o:tasks", "k", 201, "{}")
        .await
        .unwrap();
    assert_eq!(
        begin("h1", "op5", lapsed).await,
        Begin::Replay {
            status: 201,
            body: "{}".into()
        }
    );
}
