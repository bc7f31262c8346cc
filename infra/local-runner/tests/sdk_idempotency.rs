//! The SDK never duplicates on retry: a submit whose answer is lost on the way back (the
//! server committed; the connection drops before the client reads a byte) is retried
//! under the same `Idempotency-Key` and ends as one task and one hold.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aicity_sdk::AgentCity;
use aicity_sdk::resources::SubmitTask;
use common::world::{Auth, World};
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy to `upstream` that, on its first connection, passes the request on and
/// then drops the connection as soon as the answer starts coming back: the server did
/// the work, the client never hears of it. Later connections pass both ways.
async fn lossy_proxy(upstream: std::net::SocketAddr) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let n = count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut server = TcpStream::connect(upstream).await.unwrap();
                if n > 0 {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    return;
                }
                let (mut client_read, _client_write) = client.split();
                let (mut server_read, mut server_write) = server.split();
                let mut request = vec![0u8; 64 * 1024];
                let mut answer = [0u8; 1];
                tokio::select! {
                    _ = async {
                        loop {
                            let read = client_read.read(&mut request).await.unwrap_or(0);
                            if read == 0 { break; }
                            server_write.write_all(&request[..read]).await.unwrap();
                        }
                    } => {}
                    _ = server_read.read_exact(&mut answer) => {}
                }
                // Both sockets drop here: the answer is lost.
            });
        }
    });
    (url, connections)
}

#[tokio::test]
async fn a_submit_whose_answer_is_lost_is_retried_into_one_task_and_one_hold() {
    let mut world = World::new().await;
    let buyer = world.owner(20_000).await;
    let seller = world.owner(0).await;
    world.reviewer(&seller, 2_500, 5).await;
    let upstream = world
        .running
        .base_url
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let (proxy, connections) = lossy_proxy(upstream).await;
    let city = AgentCity::builder()
        .owner_token(&buyer.token)
        .base_url(&proxy)
        .backoff(Duration::from_millis(50))
        .build()
        .unwrap();
    let task = city
        .tasks()
        .submit(
            &SubmitTask {
                task_type: "code_review".into(),
                max_budget: 5_000,
                input: json!({"description": "Review the Rust auth module"}),
                agent_id: None,
                parent_task_id: None,
            },
            None,
        )
        .await
        .expect("the retry gets the answer the first try lost");
    assert!(
        connections.load(Ordering::SeqCst) >= 2,
        "the first answer was dropped and the SDK tried again"
    );
    let (status, body) = world
        .call(Method::GET, "/tasks", Auth::Bearer(&buyer.token), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let tasks = body["data"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "one task: {body}");
    assert_eq!(tasks[0]["id"], json!(task.id.to_string()));
    let (_, pool) = world
        .call(Method::GET, "/vault/pool", Auth::Bearer(&buyer.token), None)
        .await;
    assert_eq!(pool["data"]["held"], 5_000, "one hold");
    assert_eq!(pool["data"]["available"], 15_000);
}
