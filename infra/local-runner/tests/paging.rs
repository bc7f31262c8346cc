//! Cursor paging over partitions larger than a page, through the runner's gateway:
//! following `nextCursor` returns every item exactly once in a stable order, the last
//! page says `nextCursor: null`, `page` still works, and a cursor only moves along the
//! list it was issued for.

mod common;

use std::collections::HashSet;

use common::world::{Auth, World};
use reqwest::Method;
use serde_json::{Value, json};

/// Every page of `path` (which already has a query), following `nextCursor`.
async fn walk(world: &World, path: &str, auth: Auth<'_>) -> (Vec<Value>, Vec<Value>) {
    let mut items = Vec::new();
    let mut blocks = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let url = match &cursor {
            Some(cursor) => format!("{path}&cursor={cursor}"),
            None => path.to_owned(),
        };
        let (status, body) = world.call(Method::GET, &url, auth, None).await;
        assert_eq!(status, 200, "{url}: {body}");
        items.extend(body["data"].as_array().unwrap().iter().cloned());
        blocks.push(body["pagination"].clone());
        match body["pagination"]["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (items, blocks),
        }
    }
    panic!("{path} did not end");
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

fn refused(status: u16, body: &Value, field: &str) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR", "{body}");
    assert_eq!(
        body["error"]["details"]["fields"][0]["field"], field,
        "{body}"
    );
}

#[tokio::test]
async fn a_hire_then_cancel_loop_pages_with_cursors() {
    let mut world = World::new().await;
    let attacker = world.owner(1_000_000).await;
    let victim = world.owner(0).await;
    let (victim_agent, victim_key) = world.reviewer(&victim, 100, 50).await;

    let mut created = Vec::new();
    for _ in 0..45 {
        let (status, body) = world
            .call(
                Method::POST,
                "/tasks",
                Auth::Bearer(&attacker.token),
                Some(json!({
                    "taskType": "code_review", "maxBudget": 500, "agentId": victim_agent,
                    "input": {"description": "Review this", "files": [{"name": "a.rs", "content": "fn a() {}"}]},
                })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["data"]["id"].as_str().unwrap().to_owned();
        // Routed to the victim, then cancelled: it stays in the victim's list.
        world
            .wait_assigned(&id, Auth::Bearer(&attacker.token))
            .await;
        let (status, body) = world
            .call(
                Method::POST,
                &format!("/tasks/{id}/cancel"),
                Auth::Bearer(&attacker.token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        created.push(id);
    }
    let mut newest_first = created.clone();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));

    // The victim agent's list, by cursor: 20, 20, 5, each task once, newest first.
    for path in [
        "/tasks?role=assigned&pageSize=20",
        "/tasks?pageSize=20",
        "/tasks?role=assigned&status=cancelled&pageSize=20",
    ] {
        let (items, blocks) = walk(&world, path, Auth::Key(&victim_key)).await;
        assert_eq!(ids(&items), newest_first, "{path}");
        assert_eq!(blocks.len(), 3, "{path}: {blocks:?}");
        assert_eq!(blocks[0]["page"], 1);
        assert_eq!(blocks[1]["page"], 2);
        assert_eq!(blocks[2]["page"], 3);
        assert!(blocks[2]["nextCursor"].is_null());
        assert_eq!(blocks[2]["total"], 45, "exact at the end");
        assert_eq!(blocks[2]["totalPages"], 3);
    }
    // The buyer's side too, and the same pages by number.
    let (items, _) = walk(&world, "/tasks?pageSize=20", Auth::Bearer(&attacker.token)).await;
    assert_eq!(ids(&items), newest_first);
    let (status, page2) = world
        .call(
            Method::GET,
            "/tasks?page=2&pageSize=20",
            Auth::Key(&victim_key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page2}");
    assert_eq!(
        ids(page2["data"].as_array().unwrap()),
        newest_first[20..40].to_vec()
    );
    assert_eq!(page2["pagination"]["page"], 2);
    assert!(page2["pagination"]["nextCursor"].is_string());
    let (status, page3) = world
        .call(
            Method::GET,
            "/tasks?page=3&pageSize=20",
            Auth::Key(&victim_key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page3}");
    assert_eq!(
        ids(page3["data"].as_array().unwrap()),
        newest_first[40..].to_vec()
    );
    assert!(page3["pagination"]["nextCursor"].is_null());
    assert_eq!(page3["pagination"]["total"], 45);

    // Bounds and bad cursors.
    let (status, body) = world
        .call(
            Method::GET,
            "/tasks?pageSize=101",
            Auth::Key(&victim_key),
            None,
        )
        .await;
    refused(status, &body, "pageSize");
    let (status, body) = world
        .call(
            Method::GET,
            "/tasks?page=60&pageSize=20",
            Auth::Key(&victim_key),
            None,
        )
        .await;
    refused(status, &body, "page");
    let (_, first) = world
        .call(
            Method::GET,
            "/tasks?pageSize=20",
            Auth::Bearer(&attacker.token),
            None,
        )
        .await;
    let attackers = first["pagination"]["nextCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, first) = world
        .call(
            Method::GET,
            "/tasks?role=assigned&pageSize=20",
            Auth::Key(&victim_key),
            None,
        )
        .await;
    let victims = first["pagination"]["nextCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tampered = victims.clone().into_bytes();
    let last = tampered.len() / 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let other = world.owner(0).await;
    for (list, cursor, auth) in [
        // Another owner's list, and another list of the same caller.
        ("/tasks?", attackers.clone(), Auth::Bearer(&other.token)),
        (
            "/tasks?role=assigned&",
            attackers.clone(),
            Auth::Key(&victim_key),
        ),
        ("/tasks?", victims.clone(), Auth::Bearer(&attacker.token)),
        (
            "/tasks?role=submitted&",
            victims.clone(),
            Auth::Key(&victim_key),
        ),
        ("/tasks?role=assigned&", tampered, Auth::Key(&victim_key)),
        (
            "/tasks?role=assigned&",
            "not-a-cursor".to_owned(),
            Auth::Key(&victim_key),
        ),
    ] {
        let path = format!("{list}cursor={cursor}");
        let (status, body) = world.call(Method::GET, &path, auth, None).await;
        refused(status, &body, "cursor");
    }
    // The victim's own cursor still works where it came from.
    let (status, body) = world
        .call(
            Method::GET,
            &format!("/tasks?role=assigned&pageSize=20&cursor={victims}"),
            Auth::Key(&victim_key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        ids(body["data"].as_array().unwrap()),
        newest_first[20..40].to_vec()
    );
    // The agent's work queue is one bounded page too.
    let (status, waiting) = world
        .call(
            Method::GET,
            "/tasks/submitted",
            Auth::Key(&victim_key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{waiting}");
    assert_eq!(waiting["data"], json!([]), "all cancelled");
}

#[tokio::test]
async fn ledger_entries_page_with_cursors() {
    let mut world = World::new().await;
    let owner = world.owner(0).await;
    let other = world.owner(1_000).await;
    for amount in 1..=45 {
        let (status, body) = world
            .call(
                Method::POST,
                "/vault/pool/top-up",
                Auth::Bearer(&owner.token),
                Some(json!({"amount": 500 + amount})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (all, blocks) = walk(
        &world,
        "/vault/transactions?pageSize=20",
        Auth::Bearer(&owner.token),
    )
    .await;
    assert_eq!(all.len(), 45, "{blocks:?}");
    let unique: HashSet<String> = ids(&all).into_iter().collect();
    assert_eq!(unique.len(), 45, "each entry once");
    let amounts: Vec<i64> = all.iter().map(|e| e["amount"].as_i64().unwrap()).collect();
    let expected: Vec<i64> = (1..=45).rev().map(|a| 500 + a).collect();
    assert_eq!(amounts, expected, "newest first");
    assert_eq!(blocks.len(), 3);
    assert!(blocks[2]["nextCursor"].is_null());
    assert_eq!(blocks[2]["total"], 45);
    // A filtered walk reads the same way.
    let (top_ups, _) = walk(
        &world,
        "/vault/transactions?type=top_up&pageSize=7",
        Auth::Bearer(&owner.token),
    )
    .await;
    assert_eq!(ids(&top_ups), ids(&all));
    // Again, identically (a stable order).
    let (again, _) = walk(
        &world,
        "/vault/transactions?pageSize=20",
        Auth::Bearer(&owner.token),
    )
    .await;
    assert_eq!(ids(&again), ids(&all));

    let (_, first) = world
        .call(
            Method::GET,
            "/vault/transactions?pageSize=20",
            Auth::Bearer(&owner.token),
            None,
        )
        .await;
    let cursor = first["pagination"]["nextCursor"].as_str().unwrap();
    let (status, body) = world
        .call(
            Method::GET,
            &format!("/vault/transactions?cursor={cursor}"),
            Auth::Bearer(&other.token),
            None,
        )
        .await;
    refused(status, &body, "cursor");
    let (status, body) = world
        .call(
            Method::GET,
            &format!("/vault/transactions?type=top_up&cursor={cursor}"),
            Auth::Bearer(&owner.token),
            None,
        )
        .await;
    refused(status, &body, "cursor");
    let (status, body) = world
        .call(
            Method::GET,
            "/vault/transactions?pageSize=101",
            Auth::Bearer(&owner.token),
            None,
        )
        .await;
    refused(status, &body, "pageSize");
    let (status, page2) = world
        .call(
            Method::GET,
            "/vault/transactions?page=2&pageSize=20",
            Auth::Bearer(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page2}");
    assert_eq!(
        ids(page2["data"].as_array().unwrap()),
        ids(&all)[20..40].to_vec()
    );
}
