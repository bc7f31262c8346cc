//! The per-principal cap on open task streams, on a real emulator: racing opens never
//! pass it, a lease given back or run out frees its slot, a lost lease is not renewed.

use std::time::Duration;

use aicity_store::stream_slots::{self, Acquire};
use time::OffsetDateTime;

fn principal() -> String {
    format!("usr_{}", ulid::Ulid::generate())
}

#[tokio::test]
async fn racing_opens_never_pass_the_cap() {
    let clients = aicity_testkit::clients().await;
    let table = aicity_testkit::fresh_table(&clients).await;
    let db = &clients.dynamodb;
    let who = principal();
    let now = OffsetDateTime::now_utc();
    let racers = (0..16).map(|i| {
        let (db, table, who) = (db.clone(), table.clone(), who.clone());
        async move {
            Box::pin(stream_slots::acquire(
                &db,
                &table,
                &who,
                &format!("lease-{i}"),
                5,
                Duration::from_secs(60),
                now,
            ))
            .await
            .unwrap()
        }
    });
    let answers = futures::future::join_all(racers).await;
    let granted = answers.iter().filter(|a| **a == Acquire::Granted).count();
    assert!((1..=5).contains(&granted), "{answers:?}");
    // Whatever the race left, opens one after another fill it to exactly the cap.
    let mut more = 0;
    for i in 0..10 {
        let lease = format!("later-{i}");
        let answer =
            stream_slots::acquire(db, &table, &who, &lease, 5, Duration::from_secs(60), now)
                .await
                .unwrap();
        if answer == Acquire::Granted {
            more += 1;
        } else {
            assert!(matches!(answer, Acquire::Full { retry_after } if retry_after <= 60));
        }
    }
    assert_eq!(granted + more, 5);
}

#[tokio::test]
async fn a_lease_given_back_or_run_out_frees_its_slot_and_a_lost_lease_is_not_renewed() {
    let clients = aicity_testkit::clients().await;
    let table = aicity_testkit::fresh_table(&clients).await;
    let db = &clients.dynamodb;
    let who = principal();
    let lease = Duration::from_secs(60);
    let now = OffsetDateTime::now_utc();
    let open = |id: &'static str, at: OffsetDateTime| {
        let (db, table, who) = (db.clone(), table.clone(), who.clone());
        async move {
            stream_slots::acquire(&db, &table, &who, id, 2, lease, at)
                .await
                .unwrap()
        }
    };
    assert_eq!(open("a", now).await, Acquire::Granted);
    assert_eq!(open("b", now).await, Acquire::Granted);
    assert_eq!(
        open("c", now).await,
        Acquire::Full { retry_after: 60 },
        "the cap"
    );
    // Another principal has its own slots.
    assert_eq!(
        stream_slots::acquire(db, &table, &principal(), "x", 2, lease, now)
            .await
            .unwrap(),
        Acquire::Granted
    );

    // Given back: the slot is free at once; giving back twice is harmless.
    stream_slots::release(db, &table, &who, "a").await.unwrap();
    stream_slots::release(db, &table, &who, "a").await.unwrap();
    assert_eq!(open("c", now).await, Acquire::Granted);
    assert!(matches!(open("d", now).await, Acquire::Full { .. }));

    // Renewed leases stay; a lease that was given back cannot be renewed.
    let later = now + Duration::from_secs(30);
    assert!(
        stream_slots::renew(db, &table, &who, "b", lease, later)
            .await
            .unwrap()
    );
    assert!(
        !stream_slots::renew(db, &table, &who, "a", lease, later)
            .await
            .unwrap()
    );

    // A minute on, "c" (never renewed, its function died) ran out; "b" was renewed.
    let after_c = now + Duration::from_secs(61);
    assert_eq!(open("e", after_c).await, Acquire::Granted);
    assert!(matches!(open("f", after_c).await, Acquire::Full { .. }));
    // "c" was dropped by that open: it cannot come back by renewing.
    assert!(
        !stream_slots::renew(db, &table, &who, "c", lease, after_c)
            .await
            .unwrap()
    );
}
