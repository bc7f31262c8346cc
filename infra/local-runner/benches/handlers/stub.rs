//! A stub store: the real AWS SDK DynamoDB and SQS clients (request building, signing,
//! serialization, response parsing all run) over an in-memory HTTP client that answers
//! each request by its `X-Amz-Target`, so a bench measures the handlers' CPU and not
//! a network or an emulator.
//!
//! While it is *open*, puts (plain, batched or in a transaction) are kept and deletes
//! remove, so a bench sets its world up through the real handlers (sign-up, agent
//! registration, a submitted task) and every item later read is exactly what the store
//! wrote with its own serializers. [`Stub::freeze`] then stops keeping writes: every
//! measured request sees the same items, and memory stays flat over millions of
//! iterations. Conditions are not evaluated (every write succeeds) and updates change
//! nothing; an update that asks for values back gets the item as it is (a rate counter
//! reads one hit, so no limit is ever reached).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aicity_store::AwsClients;
use aws_sdk_dynamodb::config::http::{HttpRequest, HttpResponse};
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, RuntimeComponents};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use serde_json::{Map, Value, json};

type Item = Map<String, Value>;

#[derive(Debug, Default)]
struct State {
    /// (PK, SK) → item, in DynamoDB's JSON wire format.
    items: BTreeMap<(String, String), Item>,
    /// Bodies of the SQS messages sent while open, by queue URL.
    sent: Vec<(String, String)>,
    /// The operations asked for inside [`Stub::traced`].
    calls: Vec<String>,
}

/// The shared state behind the stub clients.
#[derive(Debug, Clone, Default)]
pub struct Stub {
    state: Arc<Mutex<State>>,
    frozen: Arc<AtomicBool>,
    tracing: Arc<AtomicBool>,
}

impl Stub {
    /// DynamoDB and SQS clients answered by this stub.
    pub fn clients(&self) -> AwsClients {
        let http = aws_sdk_dynamodb::config::SharedHttpClient::new(self.clone());
        let credentials = Credentials::new("stub", "stub", None, None, "stub");
        let dynamodb = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(credentials.clone())
            .endpoint_url("http://stub.invalid")
            .http_client(http.clone())
            .build();
        let sqs = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(credentials)
            .endpoint_url("http://stub.invalid")
            .http_client(http)
            .build();
        AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
            sqs: aws_sdk_sqs::Client::from_conf(sqs),
        }
    }

    /// From now on writes are answered but not kept.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    /// Keeps `item` (wire format) as if it had been put.
    pub fn put(&self, item: Item) {
        let mut state = self.state.lock().expect("stub lock");
        keep(&mut state, item);
    }

    /// The last message body sent to `queue_url` while open.
    pub fn last_sent(&self, queue_url: &str) -> Option<String> {
        let state = self.state.lock().expect("stub lock");
        state
            .sent
            .iter()
            .rev()
            .find(|(url, _)| url == queue_url)
            .map(|(_, body)| body.clone())
    }

    /// Runs `f` and returns what it asked for, e.g. `DynamoDB_20120810.GetItem` (only
    /// then are calls recorded: a measured loop must not grow a list).
    pub fn traced<T>(&self, f: impl FnOnce() -> T) -> (T, Vec<String>) {
        self.tracing.store(true, Ordering::SeqCst);
        let out = f();
        self.tracing.store(false, Ordering::SeqCst);
        let calls = std::mem::take(&mut self.state.lock().expect("stub lock").calls);
        (out, calls)
    }

    fn answer(&self, target: &str, request: &Value) -> Value {
        let open = !self.frozen.load(Ordering::SeqCst);
        let mut state = self.state.lock().expect("stub lock");
        if self.tracing.load(Ordering::SeqCst) {
            state.calls.push(target.to_owned());
        }
        let operation = target.rsplit('.').next().unwrap_or(target);
        if target.starts_with("AmazonSQS.") {
            return sqs(&mut state, open, operation, request);
        }
        match operation {
            "GetItem" => match find(&state, &request["Key"]) {
                Some(item) => json!({ "Item": item }),
                None => json!({}),
            },
            "PutItem" => {
                if open {
                    keep(&mut state, object(&request["Item"]));
                }
                json!({})
            }
            "DeleteItem" => {
                if open {
                    state.items.remove(&key_of(&request["Key"]));
                }
                json!({})
            }
            "UpdateItem" => {
                let wants_values = request["ReturnValues"]
                    .as_str()
                    .is_some_and(|r| r != "NONE");
                match find(&state, &request["Key"]) {
                    Some(item) if wants_values => json!({ "Attributes": item }),
                    None if wants_values && is_rate_counter(&request["Key"]) => {
                        json!({ "Attributes": { "hits": { "N": "1" } } })
                    }
                    _ => json!({}),
                }
            }
            "TransactWriteItems" => {
                for entry in array(&request["TransactItems"]) {
                    if !open {
                        break;
                    }
                    if let Some(put) = entry.get("Put") {
                        keep(&mut state, object(&put["Item"]));
                    } else if let Some(delete) = entry.get("Delete") {
                        state.items.remove(&key_of(&delete["Key"]));
                    }
                }
                json!({})
            }
            "TransactGetItems" => {
                let responses: Vec<Value> = array(&request["TransactItems"])
                    .iter()
                    .map(|entry| match find(&state, &entry["Get"]["Key"]) {
                        Some(item) => json!({ "Item": item }),
                        None => json!({}),
                    })
                    .collect();
                json!({ "Responses": responses })
            }
            "BatchGetItem" => {
                let mut responses = Map::new();
                for (table, asked) in object(&request["RequestItems"]) {
                    let found: Vec<Value> = array(&asked["Keys"])
                        .iter()
                        .filter_map(|key| find(&state, key).map(Value::Object))
                        .collect();
                    responses.insert(table, Value::Array(found));
                }
                json!({ "Responses": responses, "UnprocessedKeys": {} })
            }
            "BatchWriteItem" => {
                for (_, writes) in object(&request["RequestItems"]) {
                    for write in array(&writes) {
                        if !open {
                            break;
                        }
                        if let Some(put) = write.get("PutRequest") {
                            keep(&mut state, object(&put["Item"]));
                        } else if let Some(delete) = write.get("DeleteRequest") {
                            state.items.remove(&key_of(&delete["Key"]));
                        }
                    }
                }
                json!({ "UnprocessedItems": {} })
            }
            "Query" => query(&state, request),
            "Scan" => json!({ "Items": [], "Count": 0, "ScannedCount": 0 }),
            _ => json!({}),
        }
    }
}

fn sqs(state: &mut State, open: bool, operation: &str, request: &Value) -> Value {
    let url = request["QueueUrl"].as_str().unwrap_or_default().to_owned();
    match operation {
        "SendMessage" => {
            if open {
                let body = request["MessageBody"].as_str().unwrap_or_default();
                state.sent.push((url, body.to_owned()));
            }
            json!({ "MessageId": ulid::Ulid::generate().to_string() })
        }
        "SendMessageBatch" => {
            let successful: Vec<Value> = array(&request["Entries"])
                .iter()
                .map(|entry| {
                    if open {
                        let body = entry["MessageBody"].as_str().unwrap_or_default();
                        state.sent.push((url.clone(), body.to_owned()));
                    }
                    json!({ "Id": entry["Id"], "MessageId": ulid::Ulid::generate().to_string() })
                })
                .collect();
            json!({ "Successful": successful, "Failed": [] })
        }
        "ReceiveMessage" => json!({ "Messages": [] }),
        _ => json!({}),
    }
}

/// A query on the table or an index: the items whose partition key equals the
/// condition's first `= :value`, in sort-key order, `begins_with` on the sort key and
/// `Limit` honoured; filters are not (no bench route needs them).
fn query(state: &State, request: &Value) -> Value {
    let index = request["IndexName"].as_str();
    let (pk, sk) = match index {
        None => ("PK".to_owned(), "SK".to_owned()),
        Some(name) => (format!("{name}PK"), format!("{name}SK")),
    };
    let names = &request["ExpressionAttributeNames"];
    let values = &request["ExpressionAttributeValues"];
    let condition = request["KeyConditionExpression"]
        .as_str()
        .unwrap_or_default();
    let value_of = |token: &str| values[token.trim()]["S"].as_str().map(str::to_owned);
    let mut partition = None;
    let mut prefix = None;
    for clause in condition.split(" AND ") {
        let clause = clause.trim();
        if let Some(args) = clause
            .strip_prefix("begins_with(")
            .and_then(|c| c.strip_suffix(')'))
        {
            prefix = args.split(',').nth(1).and_then(value_of);
        } else if let Some((name, value)) = clause.split_once('=') {
            let name = name.trim();
            let name = names[name].as_str().unwrap_or(name);
            if name == pk {
                partition = value_of(value);
            }
        }
    }
    let sort = |item: &Item| {
        item.get(&sk)
            .and_then(|v| v["S"].as_str())
            .map(str::to_owned)
    };
    let mut items: Vec<&Item> = state
        .items
        .values()
        .filter(|item| item.get(&pk).and_then(|v| v["S"].as_str()) == partition.as_deref())
        .filter(|item| match &prefix {
            Some(prefix) => sort(item).is_some_and(|s| s.starts_with(prefix.as_str())),
            None => true,
        })
        .collect();
    items.sort_by_key(|item| sort(item));
    if request["ScanIndexForward"] == Value::Bool(false) {
        items.reverse();
    }
    if let Some(limit) = request["Limit"].as_u64() {
        items.truncate(limit as usize);
    }
    json!({ "Items": items, "Count": items.len(), "ScannedCount": items.len() })
}

fn keep(state: &mut State, item: Item) {
    let key = (string(&item, "PK"), string(&item, "SK"));
    state.items.insert(key, item);
}

fn find(state: &State, key: &Value) -> Option<Item> {
    state.items.get(&key_of(key)).cloned()
}

fn key_of(key: &Value) -> (String, String) {
    let key = object(key);
    (string(&key, "PK"), string(&key, "SK"))
}

fn is_rate_counter(key: &Value) -> bool {
    key["PK"]["S"]
        .as_str()
        .is_some_and(|pk| pk.starts_with("RATE#"))
}

fn string(item: &Item, name: &str) -> String {
    item.get(name)
        .and_then(|v| v["S"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn object(value: &Value) -> Item {
    value.as_object().cloned().unwrap_or_default()
}

fn array(value: &Value) -> Vec<Value> {
    value.as_array().cloned().unwrap_or_default()
}

impl HttpConnector for Stub {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request
            .headers()
            .get("x-amz-target")
            .unwrap_or_default()
            .to_owned();
        let body: Value = request
            .body()
            .bytes()
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or(Value::Null);
        let answer = self.answer(&target, &body);
        let mut response = HttpResponse::new(
            StatusCode::try_from(200).expect("200 is a status"),
            SdkBody::from(serde_json::to_vec(&answer).expect("JSON")),
        );
        // Both services speak awsJson1_0 (SQS since the SDK's JSON protocol switch).
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.0");
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for Stub {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}
