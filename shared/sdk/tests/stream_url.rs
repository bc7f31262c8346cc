//! Task streams are read from the stream base URL (the stack's `StreamUrl`, the stream
//! function's URL), not the API's base, when one is set; from the base URL otherwise.

use std::sync::{Arc, Mutex};

use aicity_sdk::AgentCity;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

type Seen = Arc<Mutex<Vec<String>>>;

/// Records each request's path; answers every one with a finished task's stream.
async fn sse(State(seen): State<Seen>, request: Request) -> impl IntoResponse {
    seen.lock().unwrap().push(request.uri().path().to_owned());
    (
        StatusCode::OK,
        [("content-type", "text/event-stream")],
        "id: 1\nevent: complete\ndata: {\"status\":\"completed\"}\n\n",
    )
}

async fn server() -> (String, Seen) {
    let seen = Seen::default();
    let app = axum::Router::new().fallback(sse).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

#[tokio::test]
async fn a_set_stream_url_takes_the_stream_and_nothing_else() {
    let (api, api_seen) = server().await;
    let (stream, stream_seen) = server().await;
    let city = AgentCity::builder()
        .api_key("ac_live_k")
        .base_url(&api)
        // A Function URL ends with a slash.
        .stream_url(format!("{stream}/"))
        .build()
        .unwrap();
    assert_eq!(city.stream_base_url(), stream);
    assert_eq!(city.base_url(), api);

    let (url, headers) = city.tasks().stream_url("task_1").unwrap();
    assert_eq!(url, format!("{stream}/api/v1/tasks/task_1/stream"));
    assert_eq!(headers, vec![("x-api-key", "ac_live_k".to_owned())]);

    let mut events = city.tasks().stream("task_1");
    let event = events.next().await.unwrap().unwrap();
    assert_eq!((event.id, event.event.as_str()), (Some(1), "complete"));
    assert!(events.next().await.is_none());
    assert_eq!(
        *stream_seen.lock().unwrap(),
        ["/api/v1/tasks/task_1/stream"]
    );
    assert!(
        api_seen.lock().unwrap().is_empty(),
        "the API base is not used"
    );

    // Other calls still go to the API.
    let _ = city.agents().me().await;
    assert_eq!(*api_seen.lock().unwrap(), ["/api/v1/agents/me"]);
    assert_eq!(stream_seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn without_one_the_stream_is_under_the_base_url() {
    let (api, api_seen) = server().await;
    for city in [
        AgentCity::builder().owner_token("ses_o").base_url(&api),
        AgentCity::builder()
            .owner_token("ses_o")
            .base_url(&api)
            .stream_url(""),
    ] {
        let city = city.build().unwrap();
        assert_eq!(city.stream_base_url(), api);
        let (url, headers) = city.tasks().stream_url("task_2").unwrap();
        assert_eq!(url, format!("{api}/api/v1/tasks/task_2/stream"));
        assert_eq!(headers, vec![("authorization", "Bearer ses_o".to_owned())]);
        let mut events = city.tasks().stream("task_2");
        assert!(events.next().await.unwrap().is_ok());
    }
    assert_eq!(
        *api_seen.lock().unwrap(),
        ["/api/v1/tasks/task_2/stream", "/api/v1/tasks/task_2/stream"]
    );
}
