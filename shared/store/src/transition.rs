//! Conditional status transitions on one item.
//!
//! A transition names the status it expects and, optionally, who may make it. DynamoDB
//! checks both atomically; a lost race comes back as a typed error built from the item
//! as it was (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), never as an overwrite.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use crate::{Key, StoreError};

/// The attribute every stateful item keeps its status in.
pub const STATUS: &str = "status";

pub type Item = HashMap<String, AttributeValue>;

/// One conditional status change, with any attributes to set alongside it.
#[derive(Debug, Clone)]
pub struct Transition {
    pub key: Key,
    pub from: String,
    pub to: String,
    /// `(attribute, value)` that must match, e.g. `("agentId", "ag_…")`.
    pub actor: Option<(String, String)>,
    /// More attributes to set in the same write.
    pub set: Vec<(String, AttributeValue)>,
}

impl Transition {
    pub fn new(key: Key, from: impl Into<String>, to: impl Into<String>) -> Self {
        Self {
            key,
            from: from.into(),
            to: to.into(),
            actor: None,
            set: Vec::new(),
        }
    }

    /// Only succeed if `attribute` equals `value` (who may make the change).
    pub fn by(mut self, attribute: impl Into<String>, value: impl Into<String>) -> Self {
        self.actor = Some((attribute.into(), value.into()));
        self
    }

    /// Also set `attribute` to `value`.
    pub fn set(mut self, attribute: impl Into<String>, value: AttributeValue) -> Self {
        self.set.push((attribute.into(), value));
        self
    }

    /// The update expression, condition and values, shared by the single-item and the
    /// transactional form so both enforce exactly the same rule.
    fn expression(&self) -> (String, String, HashMap<String, String>, Item) {
        let mut names = HashMap::from([("#status".to_owned(), STATUS.to_owned())]);
        let mut values = HashMap::from([
            (":from".to_owned(), AttributeValue::S(self.from.clone())),
            (":to".to_owned(), AttributeValue::S(self.to.clone())),
        ]);
        let mut assignments = vec!["#status = :to".to_owned()];
        for (i, (attribute, value)) in self.set.iter().enumerate() {
            names.insert(format!("#s{i}"), attribute.clone());
            values.insert(format!(":s{i}"), value.clone());
            assignments.push(format!("#s{i} = :s{i}"));
        }
        let mut condition = "attribute_exists(#status) AND #status = :from".to_owned();
        if let Some((attribute, value)) = &self.actor {
            names.insert("#actor".to_owned(), attribute.clone());
            values.insert(":actor".to_owned(), AttributeValue::S(value.clone()));
            condition.push_str(" AND #actor = :actor");
        }
        (
            format!("SET {}", assignments.join(", ")),
            condition,
            names,
            values,
        )
    }

    /// Explains why the condition failed, from the item as it was.
    fn explain(&self, old: Option<&Item>) -> StoreError {
        let Some(old) = old.filter(|item| !item.is_empty()) else {
            return StoreError::NotFound;
        };
        let current = old.get(STATUS).and_then(|v| v.as_s().ok()).cloned();
        if current.as_deref() != Some(self.from.as_str()) {
            return StoreError::Conflict { current };
        }
        match &self.actor {
            Some((attribute, value))
                if old.get(attribute).and_then(|v| v.as_s().ok()) != Some(value) =>
            {
                StoreError::ActorMismatch
            }
            // Condition failed but the old image satisfies it: the item changed twice
            // in between. Still a lost race.
            _ => StoreError::Conflict { current },
        }
    }

    /// Applies the transition on its own; returns the item as it is afterwards.
    pub async fn apply(&self, client: &Client, table: &str) -> Result<Item, StoreError> {
        let (update, condition, names, values) = self.expression();
        let result = client
            .update_item()
            .table_name(table)
            .set_key(Some(self.key.to_map()))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.attributes.unwrap_or_default()),
            Err(err) => match err.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(failed) => {
                    let old = failed.item().cloned();
                    // Emulators without ALL_OLD support: read the item to explain.
                    let old = match old {
                        Some(item) => Some(item),
                        None => self.read_current(client, table).await?,
                    };
                    Err(self.explain(old.as_ref()))
                }
                other => Err(StoreError::aws(other)),
            },
        }
    }

    async fn read_current(&self, client: &Client, table: &str) -> Result<Option<Item>, StoreError> {
        let output = client
            .get_item()
            .table_name(table)
            .set_key(Some(self.key.to_map()))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::aws)?;
        Ok(output.item)
    }

    /// The same transition as one item of a `TransactWriteItems`.
    pub fn to_transact_item(&self, table: &str) -> Result<TransactWriteItem, StoreError> {
        let (update, condition, names, values) = self.expression();
        let update = Update::builder()
            .table_name(table)
            .set_key(Some(self.key.to_map()))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(status: &str, agent: &str) -> Item {
        HashMap::from([
            (STATUS.to_owned(), AttributeValue::S(status.to_owned())),
            ("agentId".to_owned(), AttributeValue::S(agent.to_owned())),
        ])
    }

    fn transition() -> Transition {
        Transition::new(Key::new("TASK#1", "TASK"), "submitted", "executing").by("agentId", "ag_1")
    }

    #[test]
    fn explains_a_missing_item_as_not_found() {
        assert!(matches!(transition().explain(None), StoreError::NotFound));
        assert!(matches!(
            transition().explain(Some(&Item::new())),
            StoreError::NotFound
        ));
    }

    #[test]
    fn explains_another_status_as_a_conflict_naming_it() {
        let err = transition().explain(Some(&item("executing", "ag_1")));
        assert!(matches!(err, StoreError::Conflict { current: Some(s) } if s == "executing"));
    }

    #[test]
    fn explains_another_actor_as_a_mismatch() {
        let err = transition().explain(Some(&item("submitted", "ag_2")));
        assert!(matches!(err, StoreError::ActorMismatch));
    }

    #[test]
    fn condition_names_status_and_actor() {
        let t = transition().set("sandboxId", AttributeValue::S("sbx_1".into()));
        let (update, condition, names, values) = t.expression();
        assert_eq!(update, "SET #status = :to, #s0 = :s0");
        assert_eq!(
            condition,
            "attribute_exists(#status) AND #status = :from AND #actor = :actor"
        );
        assert_eq!(names["#actor"], "agentId");
        assert_eq!(values[":s0"], AttributeValue::S("sbx_1".into()));
    }
}
