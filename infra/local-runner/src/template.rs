//! Reads the parts of a SAM template the local runner acts on: tables, queues, and
//! functions with their environment and event sources (HttpApi, SQS, Schedule).
//!
//! Intrinsics (`!Ref`, `!GetAtt`, `!Sub`, and their long forms) are kept as
//! [`Intrinsic`] values and resolved later against what was provisioned.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml::Value;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> TemplateError {
    TemplateError::Invalid(message.into())
}

/// A value that may be an intrinsic function.
#[derive(Debug, Clone, PartialEq)]
pub enum Intrinsic {
    Literal(String),
    Ref(String),
    GetAtt(String, String),
    Sub(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyElement {
    pub attribute: String,
    pub hash: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    pub name: String,
    pub keys: Vec<KeyElement>,
    pub projection: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    pub logical_id: String,
    pub attributes: Vec<(String, String)>,
    pub keys: Vec<KeyElement>,
    pub indexes: Vec<IndexSpec>,
    pub ttl_attribute: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    pub logical_id: String,
    pub visibility_timeout: Option<u32>,
    pub delay_seconds: Option<u32>,
    pub retention_seconds: Option<u32>,
    /// `(dead-letter queue logical id, maxReceiveCount)`.
    pub redrive: Option<(String, u32)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventSource {
    Http {
        name: String,
        method: String,
        path: String,
    },
    Sqs {
        name: String,
        queue: String,
        batch_size: u32,
        report_batch_item_failures: bool,
    },
    Schedule {
        name: String,
        expression: String,
        enabled: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    pub logical_id: String,
    /// The cargo binary: the function's name under `cargo lambda watch`.
    pub binary: String,
    pub timeout_seconds: u32,
    /// Globals merged with the function's own variables.
    pub environment: BTreeMap<String, Intrinsic>,
    pub events: Vec<EventSource>,
    /// `METHOD /path` routes the runner serves by streaming from this function: for a
    /// function whose `FunctionUrlConfig` streams (`InvokeMode: RESPONSE_STREAM`), listed
    /// in its `Metadata.LocalStreamRoutes` (AWS serves them at the Function URL).
    pub stream_routes: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template {
    pub parameters: BTreeMap<String, String>,
    pub tables: Vec<TableSpec>,
    pub queues: Vec<QueueSpec>,
    pub functions: Vec<FunctionSpec>,
}

/// The environment variable that overrides a parameter locally: its name in
/// SCREAMING_SNAKE_CASE (`AdminEmails` → `ADMIN_EMAILS`, `E2bApiKey` → `E2B_API_KEY`),
/// which is also the name of the function variable the template feeds from it.
pub fn parameter_env_name(parameter: &str) -> String {
    let mut name = String::new();
    let mut previous: Option<char> = None;
    for c in parameter.chars() {
        if c.is_ascii_uppercase()
            && previous.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
        {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
        previous = Some(c);
    }
    name
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        Self::load_with(path, |_| None)
    }

    /// [`Template::load`], each parameter taking the value `overrides` gives for it
    /// (by its name) instead of its `Default`, as `sam deploy --parameter-overrides`.
    pub fn load_with(
        path: &Path,
        overrides: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse_with(&text, overrides)
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        Self::parse_with(text, |_| None)
    }

    pub fn parse_with(
        text: &str,
        overrides: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TemplateError> {
        let root: Value = serde_yaml::from_str(text)?;
        let mut template = Template::default();

        if let Some(params) = root.get("Parameters").and_then(Value::as_mapping) {
            for (name, spec) in params {
                let Some(name) = name.as_str() else { continue };
                // Overridden before anything reads them, so a queue's `!Ref` delay and
                // a function's variable see the same value.
                // A parameter with no `Default` that nobody set is empty locally (`sam
                // deploy` would refuse it): the functions see it unset, e.g. no payment
                // provider until `PAYMENT_PROVIDER` is given.
                let value = overrides(name)
                    .or_else(|| spec.get("Default").map(|d| scalar(d).unwrap_or_default()))
                    .unwrap_or_default();
                template.parameters.insert(name.to_owned(), value);
            }
        }

        let globals = root.get("Globals").and_then(|g| g.get("Function"));
        let resources = root
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| invalid("template has no Resources"))?;
        for (id, resource) in resources {
            let id = id
                .as_str()
                .ok_or_else(|| invalid("non-string resource id"))?;
            let props = resource.get("Properties").cloned().unwrap_or(Value::Null);
            match resource.get("Type").and_then(Value::as_str) {
                Some("AWS::DynamoDB::Table") => template.tables.push(parse_table(id, &props)?),
                Some("AWS::SQS::Queue") => {
                    template
                        .queues
                        .push(parse_queue(id, &props, &template.parameters)?)
                }
                Some("AWS::Serverless::Function") => template
                    .functions
                    .push(parse_function(id, resource, &props, globals)?),
                _ => {}
            }
        }
        Ok(template)
    }

    pub fn function(&self, logical_id: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.logical_id == logical_id)
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn u32_field(value: &Value, field: &str) -> Result<Option<u32>, TemplateError> {
    match value.get(field) {
        None => Ok(None),
        Some(v) => scalar(v)
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or_else(|| invalid(format!("{field} must be a whole number"))),
    }
}

/// `!Ref X`, `{Ref: X}`, `!GetAtt X.Y`, `{Fn::GetAtt: [X, Y]}`, `!Sub "…"`, or a scalar.
pub fn intrinsic(value: &Value) -> Result<Intrinsic, TemplateError> {
    if let Value::Tagged(tagged) = value {
        let inner = &tagged.value;
        let tag = tagged.tag.to_string();
        return match tag.trim_start_matches('!') {
            "Ref" => Ok(Intrinsic::Ref(
                scalar(inner).ok_or_else(|| invalid("!Ref needs a name"))?,
            )),
            "GetAtt" => get_att(inner),
            "Sub" => Ok(Intrinsic::Sub(scalar(inner).ok_or_else(|| {
                invalid("only the one-string form of !Sub is supported")
            })?)),
            other => Err(invalid(format!("unsupported intrinsic !{other}"))),
        };
    }
    if let Some(map) = value.as_mapping().filter(|m| m.len() == 1) {
        let (key, inner) = map.iter().next().expect("one entry");
        return match key.as_str() {
            Some("Ref") => Ok(Intrinsic::Ref(
                scalar(inner).ok_or_else(|| invalid("Ref needs a name"))?,
            )),
            Some("Fn::GetAtt") => get_att(inner),
            Some("Fn::Sub") => {
                Ok(Intrinsic::Sub(scalar(inner).ok_or_else(|| {
                    invalid("only the one-string form of Fn::Sub is supported")
                })?))
            }
            _ => Err(invalid(format!("unsupported value {value:?}"))),
        };
    }
    scalar(value)
        .map(Intrinsic::Literal)
        .ok_or_else(|| invalid(format!("unsupported value {value:?}")))
}

fn get_att(inner: &Value) -> Result<Intrinsic, TemplateError> {
    let parts: Vec<String> = match inner {
        Value::Sequence(items) => items.iter().filter_map(scalar).collect(),
        other => scalar(other)
            .map(|s| s.splitn(2, '.').map(str::to_owned).collect())
            .unwrap_or_default(),
    };
    match parts.as_slice() {
        [resource, attribute] => Ok(Intrinsic::GetAtt(resource.clone(), attribute.clone())),
        _ => Err(invalid(format!(
            "GetAtt needs Resource.Attribute, got {inner:?}"
        ))),
    }
}

fn logical_id_of(value: &Value, what: &str) -> Result<String, TemplateError> {
    match intrinsic(value)? {
        Intrinsic::Ref(id) | Intrinsic::GetAtt(id, _) => Ok(id),
        other => Err(invalid(format!(
            "{what} must reference a resource, got {other:?}"
        ))),
    }
}

fn key_schema(value: Option<&Value>) -> Result<Vec<KeyElement>, TemplateError> {
    value
        .and_then(Value::as_sequence)
        .ok_or_else(|| invalid("KeySchema missing"))?
        .iter()
        .map(|element| {
            let attribute = element
                .get("AttributeName")
                .and_then(scalar)
                .ok_or_else(|| invalid("KeySchema element without AttributeName"))?;
            let hash = element.get("KeyType").and_then(Value::as_str) == Some("HASH");
            Ok(KeyElement { attribute, hash })
        })
        .collect()
}

fn parse_table(id: &str, props: &Value) -> Result<TableSpec, TemplateError> {
    let attributes = props
        .get("AttributeDefinitions")
        .and_then(Value::as_sequence)
        .ok_or_else(|| invalid(format!("{id}: AttributeDefinitions missing")))?
        .iter()
        .map(|a| {
            Ok((
                a.get("AttributeName")
                    .and_then(scalar)
                    .ok_or_else(|| invalid(format!("{id}: attribute without name")))?,
                a.get("AttributeType")
                    .and_then(scalar)
                    .ok_or_else(|| invalid(format!("{id}: attribute without type")))?,
            ))
        })
        .collect::<Result<_, TemplateError>>()?;
    let indexes = props
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
        .map(|indexes| {
            indexes
                .iter()
                .map(|index| {
                    Ok(IndexSpec {
                        name: index
                            .get("IndexName")
                            .and_then(scalar)
                            .ok_or_else(|| invalid(format!("{id}: index without name")))?,
                        keys: key_schema(index.get("KeySchema"))?,
                        projection: index
                            .get("Projection")
                            .and_then(|p| p.get("ProjectionType"))
                            .and_then(scalar)
                            .unwrap_or_else(|| "ALL".to_owned()),
                    })
                })
                .collect::<Result<Vec<_>, TemplateError>>()
        })
        .transpose()?
        .unwrap_or_default();
    let ttl = props.get("TimeToLiveSpecification");
    let ttl_attribute = ttl
        .filter(|t| t.get("Enabled").and_then(Value::as_bool).unwrap_or(false))
        .and_then(|t| t.get("AttributeName"))
        .and_then(scalar);
    Ok(TableSpec {
        logical_id: id.to_owned(),
        attributes,
        keys: key_schema(props.get("KeySchema"))?,
        indexes,
        ttl_attribute,
    })
}

/// A whole number that may be a `!Ref` to a parameter (resolved to its default).
fn number_or_parameter(
    value: &Value,
    field: &str,
    parameters: &BTreeMap<String, String>,
) -> Result<Option<u32>, TemplateError> {
    let Some(raw) = value.get(field) else {
        return Ok(None);
    };
    let text = match intrinsic(raw)? {
        Intrinsic::Literal(text) => text,
        Intrinsic::Ref(name) => parameters
            .get(&name)
            .cloned()
            .ok_or_else(|| invalid(format!("{field}: no parameter {name}")))?,
        other => return Err(invalid(format!("{field}: unsupported {other:?}"))),
    };
    text.parse()
        .map(Some)
        .map_err(|_| invalid(format!("{field} must be a whole number")))
}

fn parse_queue(
    id: &str,
    props: &Value,
    parameters: &BTreeMap<String, String>,
) -> Result<QueueSpec, TemplateError> {
    let redrive = match props.get("RedrivePolicy") {
        None => None,
        Some(policy) => {
            let target = policy.get("deadLetterTargetArn").ok_or_else(|| {
                invalid(format!("{id}: RedrivePolicy without deadLetterTargetArn"))
            })?;
            let max = u32_field(policy, "maxReceiveCount")?
                .ok_or_else(|| invalid(format!("{id}: RedrivePolicy without maxReceiveCount")))?;
            Some((logical_id_of(target, "deadLetterTargetArn")?, max))
        }
    };
    Ok(QueueSpec {
        logical_id: id.to_owned(),
        visibility_timeout: number_or_parameter(props, "VisibilityTimeout", parameters)?,
        delay_seconds: number_or_parameter(props, "DelaySeconds", parameters)?,
        retention_seconds: number_or_parameter(props, "MessageRetentionPeriod", parameters)?,
        redrive,
    })
}

fn environment(
    props: Option<&Value>,
    into: &mut BTreeMap<String, Intrinsic>,
) -> Result<(), TemplateError> {
    let variables = props
        .and_then(|p| p.get("Environment"))
        .and_then(|e| e.get("Variables"))
        .and_then(Value::as_mapping);
    for (name, value) in variables.into_iter().flatten() {
        let name = name
            .as_str()
            .ok_or_else(|| invalid("non-string variable name"))?;
        into.insert(name.to_owned(), intrinsic(value)?);
    }
    Ok(())
}

fn parse_function(
    id: &str,
    resource: &Value,
    props: &Value,
    globals: Option<&Value>,
) -> Result<FunctionSpec, TemplateError> {
    let binary = resource
        .get("Metadata")
        .and_then(|m| m.get("BuildProperties"))
        .and_then(|b| b.get("Binary"))
        .and_then(scalar)
        .ok_or_else(|| invalid(format!("{id}: Metadata.BuildProperties.Binary is required")))?;
    let timeout_seconds = u32_field(props, "Timeout")?
        .or(globals
            .map(|g| u32_field(g, "Timeout"))
            .transpose()?
            .flatten())
        .unwrap_or(3);
    let mut env = BTreeMap::new();
    environment(globals, &mut env)?;
    environment(Some(props), &mut env)?;

    let mut events = Vec::new();
    for (name, event) in props
        .get("Events")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
    {
        let name = name.as_str().unwrap_or_default().to_owned();
        let event_props = event.get("Properties").cloned().unwrap_or(Value::Null);
        let field = |f: &str| event_props.get(f).and_then(scalar);
        match event.get("Type").and_then(Value::as_str) {
            Some("HttpApi") => events.push(EventSource::Http {
                method: field("Method")
                    .unwrap_or_else(|| "ANY".into())
                    .to_uppercase(),
                path: field("Path").ok_or_else(|| invalid(format!("{id}.{name}: Path missing")))?,
                name,
            }),
            Some("SQS") => events.push(EventSource::Sqs {
                queue: logical_id_of(
                    event_props
                        .get("Queue")
                        .ok_or_else(|| invalid(format!("{id}.{name}: Queue missing")))?,
                    "Queue",
                )?,
                batch_size: u32_field(&event_props, "BatchSize")?.unwrap_or(10),
                report_batch_item_failures: event_props
                    .get("FunctionResponseTypes")
                    .and_then(Value::as_sequence)
                    .is_some_and(|types| {
                        types
                            .iter()
                            .any(|t| t.as_str() == Some("ReportBatchItemFailures"))
                    }),
                name,
            }),
            Some("Schedule" | "ScheduleV2") => events.push(EventSource::Schedule {
                expression: field("Schedule")
                    .or_else(|| field("ScheduleExpression"))
                    .ok_or_else(|| invalid(format!("{id}.{name}: Schedule missing")))?,
                enabled: event_props
                    .get("Enabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
                name,
            }),
            other => {
                tracing::warn!(function = id, event = name, kind = ?other, "event type not run locally")
            }
        }
    }
    let streams = props
        .get("FunctionUrlConfig")
        .and_then(|c| c.get("InvokeMode"))
        .and_then(Value::as_str)
        == Some("RESPONSE_STREAM");
    let mut stream_routes = Vec::new();
    if streams {
        for route in resource
            .get("Metadata")
            .and_then(|m| m.get("LocalStreamRoutes"))
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let text = scalar(route).unwrap_or_default();
            let (method, path) = text.split_once(' ').ok_or_else(|| {
                invalid(format!(
                    "{id}: LocalStreamRoutes entries are \"METHOD /path\""
                ))
            })?;
            stream_routes.push((method.to_uppercase(), path.to_owned()));
        }
    }
    Ok(FunctionSpec {
        logical_id: id.to_owned(),
        binary,
        timeout_seconds,
        environment: env,
        events,
        stream_routes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  LogLevel: { Type: String, Default: debug }
Globals:
  Function:
    Timeout: 7
    Environment:
      Variables:
        TABLE_NAME: !Ref Table
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{ AttributeName: PK, AttributeType: S }]
      KeySchema: [{ AttributeName: PK, KeyType: HASH }]
      TimeToLiveSpecification: { AttributeName: expiresAt, Enabled: true }
  Dlq: { Type: AWS::SQS::Queue }
  Work:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 30
      RedrivePolicy: { deadLetterTargetArn: !GetAtt Dlq.Arn, maxReceiveCount: 3 }
  Fn:
    Type: AWS::Serverless::Function
    Metadata: { BuildProperties: { Binary: worker } }
    Properties:
      Environment:
        Variables:
          QUEUE_URL: { Ref: Work }
          ARN: { "Fn::GetAtt": [Work, Arn] }
          LEVEL: !Ref LogLevel
          PLAIN: 5
      Events:
        Get: { Type: HttpApi, Properties: { Path: "/x/{id}", Method: get } }
        Q: { Type: SQS, Properties: { Queue: !GetAtt Work.Arn, BatchSize: 5, FunctionResponseTypes: [ReportBatchItemFailures] } }
        Tick: { Type: Schedule, Properties: { Schedule: rate(1 minute) } }
"#;

    #[test]
    fn reads_tables_queues_and_functions() {
        let t = Template::parse(TEMPLATE).unwrap();
        assert_eq!(t.parameters["LogLevel"], "debug");
        assert_eq!(t.tables[0].ttl_attribute.as_deref(), Some("expiresAt"));
        let work = t.queues.iter().find(|q| q.logical_id == "Work").unwrap();
        assert_eq!(work.redrive, Some(("Dlq".into(), 3)));
        assert_eq!(work.visibility_timeout, Some(30));

        let f = t.function("Fn").unwrap();
        assert_eq!(f.binary, "worker");
        assert_eq!(f.timeout_seconds, 7);
        assert_eq!(f.environment["TABLE_NAME"], Intrinsic::Ref("Table".into()));
        assert_eq!(f.environment["QUEUE_URL"], Intrinsic::Ref("Work".into()));
        assert_eq!(
            f.environment["ARN"],
            Intrinsic::GetAtt("Work".into(), "Arn".into())
        );
        assert_eq!(f.environment["PLAIN"], Intrinsic::Literal("5".into()));
        assert_eq!(
            f.events,
            vec![
                EventSource::Http {
                    name: "Get".into(),
                    method: "GET".into(),
                    path: "/x/{id}".into()
                },
                EventSource::Sqs {
                    name: "Q".into(),
                    queue: "Work".into(),
                    batch_size: 5,
                    report_batch_item_failures: true
                },
                EventSource::Schedule {
                    name: "Tick".into(),
                    expression: "rate(1 minute)".into(),
                    enabled: true
                },
            ]
        );
    }

    #[test]
    fn a_function_without_a_binary_is_an_error() {
        let err = Template::parse(
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties: {}\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("Binary"));
    }

    #[test]
    fn parameters_take_overrides_before_anything_reads_them() {
        assert_eq!(parameter_env_name("AdminEmails"), "ADMIN_EMAILS");
        assert_eq!(parameter_env_name("E2bApiKey"), "E2B_API_KEY");
        assert_eq!(
            parameter_env_name("RefundWindowSeconds"),
            "REFUND_WINDOW_SECONDS"
        );
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let t = Template::load_with(&path, |name| {
            (parameter_env_name(name) == "ADMIN_EMAILS").then(|| "admin@aicity.local".to_owned())
        })
        .unwrap();
        assert_eq!(t.parameters["AdminEmails"], "admin@aicity.local");
        assert_eq!(Template::load(&path).unwrap().parameters["AdminEmails"], "");
    }

    #[test]
    fn reads_the_project_template() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let t = Template::load(&path).unwrap();
        assert!(t.function("HealthFunction").is_some());
        assert!(t.function("CanaryFunction").is_some());
    }
}
