//! Creates the template's tables and queues in the emulator (or any AWS endpoint)
//! and resolves intrinsics against what exists.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::template::{Intrinsic, KeyElement, QueueSpec, TableSpec, Template};

/// The account id the emulator reports in ARNs.
pub const LOCAL_ACCOUNT: &str = "123456789012";

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("AWS call failed: {0}")]
    Aws(String),
    #[error("cannot resolve {0}")]
    Unresolved(String),
    #[error("invalid template: {0}")]
    Invalid(String),
}

fn aws(err: impl std::error::Error) -> ResourceError {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    ResourceError::Aws(text)
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueInfo {
    pub name: String,
    pub url: String,
    pub arn: String,
    pub visibility_timeout: u32,
    pub max_receive_count: Option<u32>,
    pub dead_letter_url: Option<String>,
}

/// What exists for the template, by logical id.
#[derive(Debug, Clone, Default)]
pub struct Resources {
    pub region: String,
    pub stack_name: String,
    pub parameters: BTreeMap<String, String>,
    pub tables: HashMap<String, String>,
    pub queues: HashMap<String, QueueInfo>,
}

impl Resources {
    pub fn queue(&self, logical_id: &str) -> Result<&QueueInfo, ResourceError> {
        self.queues
            .get(logical_id)
            .ok_or_else(|| ResourceError::Unresolved(format!("queue {logical_id}")))
    }

    pub fn resolve(&self, value: &Intrinsic) -> Result<String, ResourceError> {
        match value {
            Intrinsic::Literal(s) => Ok(s.clone()),
            Intrinsic::Ref(id) => self.reference(id),
            Intrinsic::GetAtt(id, attribute) => self.attribute(id, attribute),
            Intrinsic::Sub(text) => self.substitute(text),
        }
    }

    fn reference(&self, id: &str) -> Result<String, ResourceError> {
        match id {
            "AWS::Region" => return Ok(self.region.clone()),
            "AWS::StackName" => return Ok(self.stack_name.clone()),
            "AWS::AccountId" => return Ok(LOCAL_ACCOUNT.to_owned()),
            "AWS::URLSuffix" => return Ok("amazonaws.com".to_owned()),
            "AWS::Partition" => return Ok("aws".to_owned()),
            _ => {}
        }
        if let Some(value) = self.parameters.get(id) {
            return Ok(value.clone());
        }
        if let Some(table) = self.tables.get(id) {
            return Ok(table.clone());
        }
        if let Some(queue) = self.queues.get(id) {
            return Ok(queue.url.clone());
        }
        Err(ResourceError::Unresolved(format!("!Ref {id}")))
    }

    fn attribute(&self, id: &str, attribute: &str) -> Result<String, ResourceError> {
        if let Some(table) = self.tables.get(id) {
            if attribute == "Arn" {
                return Ok(format!(
                    "arn:aws:dynamodb:{}:{LOCAL_ACCOUNT}:table/{table}",
                    self.region
                ));
            }
        }
        if let Some(queue) = self.queues.get(id) {
            match attribute {
                "Arn" => return Ok(queue.arn.clone()),
                "QueueName" => return Ok(queue.name.clone()),
                "QueueUrl" => return Ok(queue.url.clone()),
                _ => {}
            }
        }
        Err(ResourceError::Unresolved(format!(
            "!GetAtt {id}.{attribute}"
        )))
    }

    /// `${Name}` and `${Name.Attribute}` references inside a string.
    fn substitute(&self, text: &str) -> Result<String, ResourceError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| ResourceError::Invalid(format!("unclosed ${{ in {text}")))?;
            let name = &rest[start + 2..start + end];
            let value = match name.split_once('.') {
                Some((id, attribute)) if !id.starts_with("AWS::") => {
                    self.attribute(id, attribute)?
                }
                _ => self.reference(name)?,
            };
            out.push_str(&value);
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The environment of a function, every intrinsic resolved.
    pub fn environment(
        &self,
        variables: &BTreeMap<String, Intrinsic>,
    ) -> Result<BTreeMap<String, String>, ResourceError> {
        variables
            .iter()
            .map(|(name, value)| Ok((name.clone(), self.resolve(value)?)))
            .collect()
    }
}

/// Creates (or finds) every table and queue of `template`, named `{prefix}{LogicalId}`.
pub async fn provision(
    template: &Template,
    dynamodb: &aws_sdk_dynamodb::Client,
    sqs: &aws_sdk_sqs::Client,
    prefix: &str,
    region: &str,
) -> Result<Resources, ResourceError> {
    let mut resources = Resources {
        region: region.to_owned(),
        stack_name: prefix.trim_end_matches(['-', '_']).to_owned(),
        parameters: template.parameters.clone(),
        ..Default::default()
    };
    for table in &template.tables {
        let name = format!("{prefix}{}", table.logical_id);
        create_table(dynamodb, table, &name).await?;
        resources.tables.insert(table.logical_id.clone(), name);
    }
    // Dead-letter queues first: a queue's redrive policy names its DLQ's ARN.
    let mut pending: Vec<&QueueSpec> = template.queues.iter().collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut waiting = Vec::new();
        for queue in pending {
            let ready = queue
                .redrive
                .as_ref()
                .is_none_or(|(dlq, _)| resources.queues.contains_key(dlq));
            if ready {
                let info = create_queue(sqs, queue, prefix, &resources).await?;
                resources.queues.insert(queue.logical_id.clone(), info);
            } else {
                waiting.push(queue);
            }
        }
        if waiting.len() == before {
            return Err(ResourceError::Invalid(
                "dead-letter queues form a cycle or name a missing queue".into(),
            ));
        }
        pending = waiting;
    }
    Ok(resources)
}

fn key_element(key: &KeyElement) -> Result<KeySchemaElement, ResourceError> {
    KeySchemaElement::builder()
        .attribute_name(&key.attribute)
        .key_type(if key.hash {
            KeyType::Hash
        } else {
            KeyType::Range
        })
        .build()
        .map_err(aws)
}

/// Creates one table exactly as the template declares it (on-demand billing) and waits
/// until it is ACTIVE. An existing table of that name is left as it is.
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    spec: &TableSpec,
    name: &str,
) -> Result<(), ResourceError> {
    let exists = client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .is_ok();
    if !exists {
        let mut request = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest);
        for (attribute, kind) in &spec.attributes {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attribute)
                    .attribute_type(ScalarAttributeType::from(kind.as_str()))
                    .build()
                    .map_err(aws)?,
            );
        }
        for key in &spec.keys {
            request = request.key_schema(key_element(key)?);
        }
        for index in &spec.indexes {
            let mut gsi = GlobalSecondaryIndex::builder()
                .index_name(&index.name)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(index.projection.as_str()))
                        .build(),
                );
            for key in &index.keys {
                gsi = gsi.key_schema(key_element(key)?);
            }
            request = request.global_secondary_indexes(gsi.build().map_err(aws)?);
        }
        request.send().await.map_err(aws)?;
    }
    for _ in 0..300 {
        let described = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(aws)?;
        if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if let (Some(attribute), false) = (&spec.ttl_attribute, exists) {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(attribute)
                    .build()
                    .map_err(aws)?,
            )
            .send()
            .await
            .map_err(aws)?;
    }
    Ok(())
}

async fn create_queue(
    client: &aws_sdk_sqs::Client,
    spec: &QueueSpec,
    prefix: &str,
    resources: &Resources,
) -> Result<QueueInfo, ResourceError> {
    let name = format!("{prefix}{}", spec.logical_id);
    let mut request = client.create_queue().queue_name(&name);
    let visibility_timeout = spec.visibility_timeout.unwrap_or(30);
    request = request.attributes(
        QueueAttributeName::VisibilityTimeout,
        visibility_timeout.to_string(),
    );
    if let Some(delay) = spec.delay_seconds {
        request = request.attributes(QueueAttributeName::DelaySeconds, delay.to_string());
    }
    if let Some(retention) = spec.retention_seconds {
        request = request.attributes(
            QueueAttributeName::MessageRetentionPeriod,
            retention.to_string(),
        );
    }
    let mut dead_letter_url = None;
    if let Some((dlq, max_receive_count)) = &spec.redrive {
        let target = resources.queue(dlq)?;
        dead_letter_url = Some(target.url.clone());
        request = request.attributes(
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({
                "deadLetterTargetArn": target.arn,
                "maxReceiveCount": max_receive_count.to_string(),
            })
            .to_string(),
        );
    }
    let url = request
        .send()
        .await
        .map_err(aws)?
        .queue_url
        .ok_or_else(|| ResourceError::Aws("CreateQueue returned no URL".into()))?;
    let attributes = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(aws)?;
    let arn = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| ResourceError::Aws("queue has no ARN".into()))?;
    Ok(QueueInfo {
        name,
        url,
        arn,
        visibility_timeout,
        max_receive_count: spec.redrive.as_ref().map(|(_, max)| *max),
        dead_letter_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources() -> Resources {
        Resources {
            region: "us-east-1".into(),
            stack_name: "local".into(),
            parameters: BTreeMap::from([("LogLevel".into(), "info".into())]),
            tables: HashMap::from([("Table".into(), "local-Table".into())]),
            queues: HashMap::from([(
                "Q".into(),
                QueueInfo {
                    name: "local-Q".into(),
                    url: "http://sqs/local-Q".into(),
                    arn: "arn:aws:sqs:us-east-1:123456789012:local-Q".into(),
                    visibility_timeout: 30,
                    max_receive_count: None,
                    dead_letter_url: None,
                },
            )]),
        }
    }

    #[test]
    fn resolves_refs_attributes_and_subs() {
        let r = resources();
        assert_eq!(
            r.resolve(&Intrinsic::Ref("Table".into())).unwrap(),
            "local-Table"
        );
        assert_eq!(
            r.resolve(&Intrinsic::Ref("Q".into())).unwrap(),
            "http://sqs/local-Q"
        );
        assert_eq!(
            r.resolve(&Intrinsic::Ref("LogLevel".into())).unwrap(),
            "info"
        );
        assert_eq!(
            r.resolve(&Intrinsic::GetAtt("Table".into(), "Arn".into()))
                .unwrap(),
            "arn:aws:dynamodb:us-east-1:123456789012:table/local-Table"
        );
        assert_eq!(
            r.resolve(&Intrinsic::Sub("${Q.QueueName} in ${AWS::Region}".into()))
                .unwrap(),
            "local-Q in us-east-1"
        );
        assert!(r.resolve(&Intrinsic::Ref("Nope".into())).is_err());
    }
}
