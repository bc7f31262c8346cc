//! Trust API keys in the table, over the emulator: the live-key cap under racing
//! creates, revocation, lookup by hash, and the per-day counter's window.

use aicity_domain::identity::secrets::{generate_trust_key, hash_secret};
use aicity_domain::ids::OwnerId;
use aicity_domain::timestamps;
use aicity_domain::trust::TrustKey;
use aicity_store::StoreError;
use aicity_store::rate_limit::RateDecision;
use aicity_store::trust_keys::{self, Revocation, TrustKeyRecord};

fn record(owner: OwnerId) -> (TrustKeyRecord, String) {
    let secret = generate_trust_key();
    let record = TrustKeyRecord {
        key: TrustKey::new("k", "2026-03-10T00:00:00Z"),
        owner_id: owner,
        key_hash: hash_secret(&secret),
    };
    (record, secret)
}

#[tokio::test]
async fn racing_creates_never_pass_the_cap_and_revoking_frees_a_place() {
    let clients = aicity_testkit::clients().await;
    let table = aicity_testkit::fresh_table(&clients).await;
    let db = &clients.dynamodb;
    let owner = OwnerId::new();
    let records: Vec<TrustKeyRecord> = (0..8).map(|_| record(owner).0).collect();
    let results =
        futures::future::join_all(records.iter().map(|r| trust_keys::create(db, &table, r, 5)))
            .await;
    let created: Vec<&TrustKeyRecord> = records
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_ok())
        .map(|(k, _)| k)
        .collect();
    assert_eq!(created.len(), 5, "{results:?}");
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(err.failed_labels(), ["count"], "{err:?}");
    }
    let listed = trust_keys::list_by_owner(
        db,
        &table,
        &owner,
        &aicity_store::paging::PageAsk::new(1, 100, None),
    )
    .await
    .unwrap();
    assert_eq!(listed.total, 5);

    let revoked = trust_keys::revoke(db, &table, &owner, &created[0].key.id, "t1")
        .await
        .unwrap();
    assert!(
        matches!(revoked, Revocation::Revoked(ref r) if r.key.revoked_at.as_deref() == Some("t1"))
    );
    let (extra, _) = record(owner);
    trust_keys::create(db, &table, &extra, 5).await.unwrap();
    let (one_more, _) = record(owner);
    let err = trust_keys::create(db, &table, &one_more, 5)
        .await
        .unwrap_err();
    assert_eq!(err.failed_labels(), ["count"]);
}

#[tokio::test]
async fn a_key_is_found_by_its_hash_only_while_it_is_not_revoked() {
    let clients = aicity_testkit::clients().await;
    let table = aicity_testkit::fresh_table(&clients).await;
    let db = &clients.dynamodb;
    let owner = OwnerId::new();
    let (record, secret) = record(owner);
    trust_keys::create(db, &table, &record, 25).await.unwrap();

    let found = trust_keys::by_hash(db, &table, &hash_secret(&secret))
        .await
        .unwrap();
    assert_eq!(found, record);
    assert!(matches!(
        trust_keys::by_hash(db, &table, &hash_secret("tst_other")).await,
        Err(StoreError::NotFound)
    ));
    // Another owner cannot see or revoke it.
    let stranger = OwnerId::new();
    assert!(matches!(
        trust_keys::get(db, &table, &stranger, &record.key.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        trust_keys::revoke(db, &table, &stranger, &record.key.id, "t1")
            .await
            .unwrap(),
        Revocation::NotFound
    );

    trust_keys::touch(db, &table, &record, "t2").await.unwrap();
    let touched = trust_keys::get(db, &table, &owner, &record.key.id)
        .await
        .unwrap();
    assert_eq!(touched.key.last_used_at.as_deref(), Some("t2"));

    let outcomes = futures::future::join_all(
        (0..4).map(|_| trust_keys::revoke(db, &table, &owner, &record.key.id, "t3")),
    )
    .await;
    let won = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(Revocation::Revoked(_))))
        .count();
    assert_eq!(won, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Ok(Revocation::Revoked(_) | Revocation::AlreadyRevoked)))
    );
    assert!(matches!(
        trust_keys::by_hash(db, &table, &hash_secret(&secret)).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn the_request_counter_is_per_key_and_per_utc_day() {
    let clients = aicity_testkit::clients().await;
    let table = aicity_testkit::fresh_table(&clients).await;
    let db = &clients.dynamodb;
    let (a, _) = record(OwnerId::new());
    let (b, _) = record(OwnerId::new());
    let at = |text: &str| timestamps::parse(text).unwrap();

    let evening = at("2026-03-10T23:59:58Z");
    for expected in [1, 0] {
        assert_eq!(
            trust_keys::count_request(db, &table, &a.key.id, 2, evening)
                .await
                .unwrap(),
            RateDecision::Allowed {
                remaining: expected
            }
        );
    }
    assert_eq!(
        trust_keys::count_request(db, &table, &a.key.id, 2, evening)
            .await
            .unwrap(),
        RateDecision::Limited { retry_after: 2 }
    );
    assert!(matches!(
        trust_keys::count_request(db, &table, &b.key.id, 2, evening).await,
        Ok(RateDecision::Allowed { .. })
    ));
    let midnight = at("2026-03-11T00:00:00Z");
    assert!(matches!(
        trust_keys::count_request(db, &table, &a.key.id, 2, midnight).await,
        Ok(RateDecision::Allowed { remaining: 1 })
    ));
}
