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

/// Reads frames until the server closes or `limit` passes without a chunk.
async fn read_frames(response: reqwest::Response, limit: Duration) -> (Vec<Frame>, bool) {
    read_frames_until(response, limit, None).await
}

/// Reads frames for `span` at most, however often they come: heartbeats come more
/// often than [`read_frames`]' per-chunk limit, which would wait for the stream's end.
async fn read_frames_for(response: reqwest::Response, span: Duration) -> Vec<Frame> {
    let deadline = tokio::time::Instant::now() + span;
    read_frames_until(response, span, Some(deadline)).await.0
}

async fn read_frames_until(
    response: reqwest::Response,
    limit: Duration,
    deadline: Option<tokio::time::Instant>,
) -> (Vec<Frame>, bool) {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut frames = Vec::new();
    let closed = loop {
        let limit = match deadline {
            Some(deadline) => {
                limit.min(deadline.saturating_duration_since(tokio::time::Instant::now()))
            }
            None => limit,
        };
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
            ..stream::StreamLimits::default()
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
            ..stream::StreamLimits::default()
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

/// A world whose stream function polls fast and checks credentials every poll or so.
async fn fast_world(max_per_caller: u32) -> World {
    let knobs = Knobs {
        stream_limits: Some(stream::StreamLimits {
            poll: Duration::from_millis(100),
            heartbeat: Duration::from_millis(200),
            max_duration: Duration::from_secs(60),
            recheck: Duration::from_millis(200),
            max_per_caller,
            lease: Duration::from_secs(60),
        }),
        ..Knobs::default()
    };
    let (running, parts, clients) = common::start_full(template(), knobs, |f| Arc::new(f)).await;
    World::from((running, parts.functions.clone(), clients))
}

/// An owner signed in twice: two session tokens of one principal.
async fn owner_with_two_sessions(world: &mut World, funds: i64) -> (String, String) {
    let email = format!(
        "{}@example.com",
        ulid::Ulid::generate().to_string().to_lowercase()
    );
    let url = format!("{}/api/v1/auth", world.running.base_url);
    let up = world
        .http
        .post(format!("{url}/sign-up"))
        .json(&json!({"name": "P", "email": email, "password": "long-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 201);
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let signed: Value = world
            .http
            .post(format!("{url}/sign-in"))
            .json(&json!({"email": email, "password": "long-password"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(signed["data"]["token"].as_str().unwrap().to_owned());
    }
    assert_ne!(tokens[0], tokens[1], "two sessions");
    let (status, body) = world
        .call(
            reqwest::Method::POST,
            "/vault/pool/top-up",
            Auth::Bearer(&tokens[0]),
            Some(json!({"amount": funds})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (tokens.remove(0), tokens.remove(0))
}

async fn open_as_agent(world: &World, id: &str, key: &str) -> reqwest::Response {
    world
        .http
        .get(format!(
            "{}/api/v1/tasks/{id}/stream",
            world.running.base_url
        ))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
}

/// The last event frame, which must be the `error` that ended the stream.
fn closing_error(frames: &[Frame]) -> Value {
    match frames
        .iter()
        .rev()
        .find(|f| matches!(f, Frame::Event { .. }))
    {
        Some(Frame::Event {
            id: None,
            name,
            data,
        }) if name == "error" => data.clone(),
        other => panic!("the stream did not end with an error event: {other:?} in {frames:?}"),
    }
}

#[tokio::test]
async fn at_most_ten_streams_per_caller_whatever_the_token_and_a_closed_one_frees_its_slot() {
    let mut world = fast_world(10).await;
    let (first, second) = owner_with_two_sessions(&mut world, 10_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 2_500, 2).await;
    let buyer = common::world::Party {
        token: first.clone(),
    };
    let id = world.submit(&buyer, 5_000).await;
    world.wait_assigned(&id, Auth::Bearer(&first)).await;

    // Ten open, five on each of the owner's sessions: one principal.
    let mut open_streams = Vec::new();
    for i in 0..10 {
        let token = if i % 2 == 0 { &first } else { &second };
        let response = open(&world, &id, token, None).await;
        assert_eq!(response.status(), 200, "stream {i}");
        open_streams.push(response);
    }
    for token in [&first, &second] {
        let refused = open(&world, &id, token, None).await;
        assert_eq!(refused.status(), 429);
        let retry_after: u64 = refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
        assert_eq!(body["error"]["details"]["limit"], 10, "{body}");
        assert_eq!(
            body["error"]["details"]["retryAfter"], retry_after,
            "{body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("At most 10 task streams"),
            "{body}"
        );
    }
    // The assigned agent is another principal, with its own slots.
    let agent_stream = open_as_agent(&world, &id, &key).await;
    assert_eq!(agent_stream.status(), 200);

    // A client goes away: its slot comes back, and only one.
    drop(open_streams.pop());
    let started = std::time::Instant::now();
    let reopened = loop {
        let response = open(&world, &id, &second, None).await;
        if response.status() == 200 {
            break response;
        }
        assert_eq!(response.status(), 429);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the closed stream's slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(open(&world, &id, &first, None).await.status(), 429);

    // The streams still stream (heartbeats), and a stream that ends by itself (the task
    // finished) gives its slot back too.
    let frames = read_frames_for(reopened, Duration::from_millis(500)).await;
    assert!(
        frames.iter().any(|f| matches!(f, Frame::Comment(_))),
        "{frames:?}"
    );
    world.start(&id, &key).await;
    world.complete(&id, &key, good_review()).await;
    world
        .wait_status(&id, Auth::Bearer(&first), "completed")
        .await;
    let (frames, closed) = read_frames(open_streams.pop().unwrap(), Duration::from_secs(10)).await;
    assert!(closed, "closed once the task finished");
    assert_eq!(events(&frames).last().unwrap().1, "complete", "{frames:?}");
    // Every other stream ends the same way; then all ten slots are free again.
    for response in open_streams {
        let (_, closed) = read_frames(response, Duration::from_secs(10)).await;
        assert!(closed);
    }
    for i in 0..10 {
        let response = open(&world, &id, &first, None).await;
        assert_eq!(response.status(), 200, "stream {i} after the others ended");
        let (_, closed) = read_frames(response, Duration::from_secs(10)).await;
        assert!(closed, "a finished task's stream replays and closes");
    }
}

#[tokio::test]
async fn a_rotated_key_or_a_signed_out_session_ends_a_running_stream_with_an_error_event() {
    let mut world = fast_world(10).await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (agent, key) = world.reviewer(&seller, 2_500, 2).await;
    let id = world.submit(&buyer, 5_000).await;
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;

    // The agent watches its task; its owner rotates the key.
    let as_agent = open_as_agent(&world, &id, &key).await;
    assert_eq!(as_agent.status(), 200);
    let reader = tokio::spawn(read_frames(as_agent, Duration::from_secs(10)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = world
        .call(
            reqwest::Method::POST,
            &format!("/agents/{agent}/rotate-key"),
            Auth::Bearer(&seller.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let rotated_at = std::time::Instant::now();
    let (frames, closed) = reader.await.unwrap();
    assert!(closed, "the stream closed: {frames:?}");
    assert!(
        rotated_at.elapsed() < Duration::from_secs(3),
        "promptly: {:?}",
        rotated_at.elapsed()
    );
    let error = closing_error(&frames);
    assert_eq!(error["code"], "INVALID_API_KEY", "{error}");
    // As the API answers the old key now.
    let again = open_as_agent(&world, &id, &key).await;
    assert_eq!(again.status(), 401);

    // The buyer watches; the buyer signs out.
    let as_buyer = open(&world, &id, &buyer.token, None).await;
    assert_eq!(as_buyer.status(), 200);
    let reader = tokio::spawn(read_frames(as_buyer, Duration::from_secs(10)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = world
        .call(
            reqwest::Method::POST,
            "/auth/sign-out",
            Auth::Bearer(&buyer.token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let signed_out_at = std::time::Instant::now();
    let (frames, closed) = reader.await.unwrap();
    assert!(closed, "the stream closed: {frames:?}");
    assert!(signed_out_at.elapsed() < Duration::from_secs(3));
    let error = closing_error(&frames);
    assert_eq!(error["code"], "UNAUTHORIZED", "{error}");
    assert_eq!(open(&world, &id, &buyer.token, None).await.status(), 401);
}

#[tokio::test]
async fn a_task_routed_to_another_agent_ends_the_first_agents_stream() {
    let mut world = fast_world(10).await;
    let buyer = world.owner(10_000).await;
    let seller = world.owner(0).await;
    let (_, key) = world.reviewer(&seller, 2_500, 2).await;
    let id = world.submit(&buyer, 5_000).await;
    world.wait_assigned(&id, Auth::Bearer(&buyer.token)).await;

    let as_agent = open_as_agent(&world, &id, &key).await;
    assert_eq!(as_agent.status(), 200);
    let reader = tokio::spawn(read_frames(as_agent, Duration::from_secs(10)));
    tokio::time::sleep(Duration::from_millis(400)).await;
    // What a re-route writes: another agent on the task and, in the same transaction,
    // the `status` event that every re-route appends (the router's assignment names the
    // new agent; the sweeper's return to routing names none). The stream re-checks the
    // task's parties only when new events arrive, so the event is what ends it: a bare
    // write of `agentId` is no step the API ever takes.
    let task: aicity_domain::ids::TaskId = id.parse().unwrap();
    let other = aicity_domain::ids::AgentId::new();
    let table = world.table().to_owned();
    let db = world.clients.dynamodb.clone();
    // Boxed: the SDK's futures are large for a debug build's test thread.
    let before = Box::pin(aicity_store::tasks::get(&db, &table, &task))
        .await
        .unwrap();
    let mut after = before.task.clone();
    after.agent_id = Some(other);
    let (items, _) = aicity_store::tasks::save_items(
        &table,
        &before,
        after,
        vec![(
            aicity_domain::task::model::EventType::Status,
            json!({ "status": before.task.status, "agentId": other }),
        )],
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    Box::pin(
        db.transact_write_items()
            .set_transact_items(Some(items.into_iter().map(|(_, item)| item).collect()))
            .send(),
    )
    .await
    .unwrap();
    let (frames, closed) = reader.await.unwrap();
    assert!(closed, "{frames:?}");
    let error = closing_error(&frames);
    assert_eq!(error["code"], "TASK_FORBIDDEN", "{error}");
    // The re-route's own event is the new parties' to see, not the old agent's.
    assert!(
        events(&frames)
            .iter()
            .all(|(seq, _)| *seq <= before.last_event_seq),
        "{frames:?}"
    );
    // The buyer still may watch.
    let as_buyer = open(&world, &id, &buyer.token, None).await;
    assert_eq!(as_buyer.status(), 200);
}
