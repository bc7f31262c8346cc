//! `GET /tasks/:id/stream` through the runner's gateway, which streams from the stream
//! function exactly as a Function URL would: full replay, replay from Last-Event-ID,
//! live events with heartbeats, the terminal close, the bounded connection, and refusals.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Knobs;
use common::world::{Auth, World, good_review, template};
use futures::StreamExt;
use serde_json::{Value, json};

/// One parsed SSE frame: id, event name, data (or a comment).
#[derive(Debug, Clone, PartialEq)]
enum Frame {
    Event {
        id: Option<u64>,
        name: String,
        data: Value,
    },
    Comment(String),
}

/// Reads frames until the server closes or `limit` passes.
async fn read_frames(response: reqwest::Response, limit: Duration) -> (Vec<Frame>, bool) {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut frames = Vec::new();
    let closed = loop {
        match tokio::time::timeout(limit, body.next()).await {
            Ok(Some(Ok(chunk))) => buffer.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(None) => break true,
            Ok(Some(Err(_))) | Err(_) => break false,
        }
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut id, mut name, mut data) = (None, String::from("message"), None);
            for line in block.lines() {
                if let Some(comment) = line.strip_prefix(':') {
                    frames.push(Frame::Comment(comment.trim().to_owned()));
                } else if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse().ok();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(v).ok();
                }
            }
            if let Some(data) = data {
                frames.push(Frame::Event { id, name, data });
            }
        }
    };
    (frames, closed)
}

fn events(frames: &[Frame]) -> Vec<(u64, String)> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Event {
                id: Some(id), name, ..
            } => Some((*id, name.clone())),
            _ => None,
        })
        .collect()
}

async fn open(
    world: &World,
    id: &str,
    token: &str,
    last_event_id: Option<u64>,
) -> reqwest::Response {
    let mut request = world
        .http
        .get(format!(
            "{}/api/v1/tasks/{id}/stream",
            world.running.base_url
        ))
        .bearer_auth(token);
    if let Some(last) = last_event_id {
        request = request.header("Last-Event-ID", last.to_string());
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_finished_task_replays_in_full_or_from_the_last_event_id_and_closes() {
    let mut world = World::new().await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 2_500, 2).await;
    let id = world.submit(&buyer, 5_000).await;
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    world.start(&id, &key).await;
    world.complete(&id, &key, good_review()).await;
    world
        .wait_status(&id, Auth::Bearer(&buyer.token), "completed")
        .await;

    let response = open(&world, &id, &buyer.token, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let (frames, closed) = read_frames(response, Duration::from_secs(10)).await;
    assert!(closed, "the stream closes after the terminal event");
    let all = events(&frames);
    let ids: Vec<u64> = all.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        (1..=all.len() as u64).collect::<Vec<_>>(),
        "every event, in order, with its id"
    );
    assert_eq!(all.last().unwrap().1, "complete");
    let Some(Frame::Event { data, .. }) = frames
        .iter()
        .rev()
        .find(|f| matches!(f, Frame::Event { .. }))
    else {
        panic!()
    };
    assert_eq!(data["output"], good_review());
    assert!(data["qualityScore"].as_u64().unwrap() >= 70);

    let response = open(&world, &id, &buyer.token, Some(4)).await;
    let (frames, closed) = read_frames(response, Duration::from_secs(10)).await;
    assert!(closed);
    let resumed = events(&frames);
    assert_eq!(resumed.first().unwrap().0, 5, "resumes after Last-Event-ID");
    assert_eq!(resumed, all[4..].to_vec());

    let as_agent = world
        .http
        .get(format!(
            "{}/api/v1/tasks/{id}/stream?lastEventId=7",
            world.running.base_url
        ))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    let (frames, _) = read_frames(as_agent, Duration::from_secs(10)).await;
    assert_eq!(
        events(&frames),
        all[7..].to_vec(),
        "the assigned agent may watch too"
    );
}

#[tokio::test]
async fn live_events_arrive_as_they_happen_with_heartbeats_between() {
    let mut world = World::new().await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 2_500, 2).await;
    let id = world.submit(&buyer, 5_000).await;
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    world.start(&id, &key).await;

    let response = open(&world, &id, &buyer.token, None).await;
    let reader = tokio::spawn(read_frames(response, Duration::from_secs(15)));
    tokio::time::sleep(Duration::from_millis(1_200)).await; // long enough for a heartbeat
    let path = format!("/tasks/{id}/progress");
    world
        .call(
            reqwest::Method::POST,
            &path,
            Auth::Key(&key),
            Some(json!({"message": "half way", "percent": 50})),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    world.complete(&id, &key, good_review()).await;
    let (frames, closed) = reader.await.unwrap();
    assert!(closed, "closed once the task finished");
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, Frame::Comment(c) if c == "heartbeat")),
        "{frames:?}"
    );
    let names: Vec<String> = events(&frames).into_iter().map(|(_, n)| n).collect();
    let progress = names
        .iter()
        .position(|n| n == "progress")
        .expect("progress streamed");
    assert_eq!(names.last().map(String::as_str), Some("complete"));
    assert!(progress < names.len() - 1);
    let Some(Frame::Event { data, .. }) = frames
        .iter()
        .find(|f| matches!(f, Frame::Event { name, .. } if name == "progress"))
    else {
        panic!()
    };
    assert_eq!(
        (data["message"].clone(), data["percent"].clone()),
        (json!("half way"), json!(50))
    );
}

#[tokio::test]
async fn a_connection_ends_after_its_time_with_a_reconnect_event() {
    let knobs = Knobs {
        stream_limits: Some(stream::StreamLimits {
            poll: Duration::from_millis(100),
            heartbeat: Duration::from_secs(5),
            max_duration: Duration::from_millis(800),
        }),
        ..Knobs::default()
    };
    let (running, parts, clients) = common::start_full(template(), knobs, |f| Arc::new(f)).await;
    let mut world = World::from((running, parts.functions.clone(), clients));
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    world.reviewer(&seller, 2_500, 2).await;
    let id = world.submit(&buyer, 5_000).await;
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;
    let (frames, closed) = read_frames(
        open(&world, &id, &buyer.token, None).await,
        Duration::from_secs(10),
    )
    .await;
    assert!(closed, "bounded even though the task goes on");
    let last_seq = events(&frames).last().unwrap().0;
    let Some(Frame::Event { name, data, .. }) = frames.last() else {
        panic!("{frames:?}")
    };
    assert_eq!(name, "reconnect");
    assert_eq!(data["lastEventId"], last_seq);
}

#[tokio::test]
async fn strangers_and_anonymous_callers_are_refused() {
    let mut world = World::new().await;
    let buyer = world.owner(10_000).await;
    let stranger = world.owner(0).await;
    let seller = world.owner(0).await;
    world.reviewer(&seller, 2_500, 2).await;
    let id = world.submit(&buyer, 5_000).await;

    let anonymous = world
        .http
        .get(format!(
            "{}/api/v1/tasks/{id}/stream",
            world.running.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");

    let forbidden = open(&world, &id, &stranger.token, None).await;
    assert_eq!(forbidden.status(), 403);
    let body: Value = forbidden.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TASK_FORBIDDEN");

    let missing = open(
        &world,
        "task_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        &buyer.token,
        None,
    )
    .await;
    assert_eq!(missing.status(), 404);

    // A bad resume: a Last-Event-ID that is not an event sequence number, in the header
    // (as EventSource sends it) or in `?lastEventId=`, is refused with 400 and the error
    // envelope naming the field, never answered with a stream (from the start or not).
    for (header, query) in [
        (Some("abc"), None),
        (Some("-1"), None),
        (Some("4.5"), None),
        (None, Some("abc")),
        (None, Some("-1")),
    ] {
        let mut request = world
            .http
            .get(format!(
                "{}/api/v1/tasks/{id}/stream{}",
                world.running.base_url,
                query.map_or(String::new(), |q| format!("?lastEventId={q}"))
            ))
            .bearer_auth(&buyer.token);
        if let Some(header) = header {
            request = request.header("Last-Event-ID", header);
        }
        let bad_resume = request.send().await.unwrap();
        let case = format!("Last-Event-ID {header:?}, ?lastEventId={query:?}");
        assert_eq!(bad_resume.status(), 400, "{case}");
        let content_type = bad_resume.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("application/json"),
            "{case}: {content_type}"
        );
        let body: Value = bad_resume.json().await.unwrap();
        assert_eq!(body["success"], false, "{case}: {body}");
        assert_eq!(body["error"]["code"], "VALIDATION_ERROR", "{case}: {body}");
        assert_eq!(
            body["error"]["details"]["fields"][0]["field"], "Last-Event-ID",
            "{case}: {body}"
        );
    }
}

#[tokio::test]
async fn the_sdk_stream_resumes_after_each_bounded_connection_without_losing_or_repeating() {
    let knobs = Knobs {
        stream_limits: Some(stream::StreamLimits {
            poll: Duration::from_millis(100),
            heartbeat: Duration::from_secs(5),
            max_duration: Duration::from_millis(700),
        }),
        ..Knobs::default()
    };
    let (running, parts, clients) = common::start_full(template(), knobs, |f| Arc::new(f)).await;
    let mut world = World::from((running, parts.functions.clone(), clients));
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 2_500, 2).await;
    let id = world.submit(&buyer, 5_000).await;
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;

    let city = aicity_sdk::AgentCity::builder()
        .base_url(&world.running.base_url)
        .owner_token(&buyer.token)
        .build()
        .unwrap();
    let mut stream = city.tasks().stream(&id);
    let reader = tokio::spawn(async move {
        let mut ids = Vec::new();
        while let Some(event) = stream.next().await {
            let event = event.unwrap();
            ids.push((event.id.unwrap_or(0), event.event));
        }
        ids
    });
    // Several connections end while the task goes on.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    world.start(&id, &key).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    world.complete(&id, &key, good_review()).await;
    let seen = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the stream ended")
        .unwrap();
    let ids: Vec<u64> = seen.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        (1..=seen.len() as u64).collect::<Vec<_>>(),
        "every event exactly once: {seen:?}"
    );
    assert_eq!(seen.last().unwrap().1, "complete");
    assert!(world.functions.calls("stream") >= 3, "it reconnected");
}
