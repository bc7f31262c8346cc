//! What DynamoDB on-demand bills for a request, computed from item sizes by AWS's
//! documented rules, because no emulator reports it faithfully: moto says 1 WCU for a
//! 3 KB put and nothing for transactions, and DynamoDB Local reports 4 WCU for a
//! transaction of one small item and the same 4 for three (see `docs/performance.md`).
//!
//! The rules (DynamoDB developer guide, "Read/write capacity mode" and "Item sizes"):
//! - a write unit is 1 KB of the item, rounded up per item: a put or update costs the
//!   larger of the item before and after, a delete the item deleted;
//! - a transactional write costs two units per KB per item (condition checks included);
//! - every global secondary index the item is (or was) in is written too, at the
//!   projected size: one write when the index key stays and the item changed, a delete
//!   plus a put when the key changes, one either way when the item enters or leaves it;
//! - a read unit is 4 KB, rounded up per item for GetItem/BatchGetItem and over the
//!   total for Query; eventually consistent reads cost half; transactional reads double;
//!   a read of nothing still costs its minimum.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// A global secondary index: its key attributes and projection (`ALL`, `KEYS_ONLY` or
/// `INCLUDE` with the attributes named).
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    pub name: String,
    pub pk: String,
    pub sk: Option<String>,
    pub projection: Projection,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Projection {
    All,
    KeysOnly,
    Include(Vec<String>),
}

pub type Item = HashMap<String, AttributeValue>;

/// The size DynamoDB counts for an item: attribute names plus values.
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn number_size(n: &str) -> usize {
    let digits = n
        .trim_start_matches(['-', '+'])
        .split(['e', 'E'])
        .next()
        .unwrap_or("")
        .replace('.', "");
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.div_ceil(2) + 1
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        _ => 0,
    }
}

/// Write units of `bytes`: 1 KB each, at least one.
pub fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// Read units of `bytes` read strongly consistently: 4 KB each, at least one.
pub fn read_units(bytes: usize) -> f64 {
    bytes.div_ceil(4096).max(1) as f64
}

impl Index {
    fn key(&self, item: &Item) -> Option<(AttributeValue, Option<AttributeValue>)> {
        let pk = item.get(&self.pk)?.clone();
        let sk = match &self.sk {
            Some(sk) => Some(item.get(sk)?.clone()),
            None => None,
        };
        Some((pk, sk))
    }

    fn projected_size(&self, item: &Item, table_keys: &[&str]) -> usize {
        match &self.projection {
            Projection::All => item_size(item),
            Projection::KeysOnly | Projection::Include(_) => item
                .iter()
                .filter(|(name, _)| {
                    table_keys.contains(&name.as_str())
                        || **name == self.pk
                        || self.sk.as_deref() == Some(name.as_str())
                        || matches!(&self.projection, Projection::Include(names) if names.contains(name))
                })
                .map(|(name, value)| name.len() + value_size(value))
                .sum(),
        }
    }

    /// Write units this index takes when an item goes from `before` to `after`.
    pub fn write_units(
        &self,
        before: Option<&Item>,
        after: Option<&Item>,
        table_keys: &[&str],
    ) -> f64 {
        let old = before.and_then(|item| self.key(item).map(|k| (k, item)));
        let new = after.and_then(|item| self.key(item).map(|k| (k, item)));
        match (old, new) {
            (None, None) => 0.0,
            (Some((_, item)), None) | (None, Some((_, item))) => {
                write_units(self.projected_size(item, table_keys))
            }
            (Some((old_key, old_item)), Some((new_key, new_item))) => {
                let old_size = self.projected_size(old_item, table_keys);
                let new_size = self.projected_size(new_item, table_keys);
                if old_key != new_key {
                    write_units(old_size) + write_units(new_size)
                } else if self.projection_changed(old_item, new_item, table_keys) {
                    write_units(old_size.max(new_size))
                } else {
                    0.0
                }
            }
        }
    }

    fn projection_changed(&self, old: &Item, new: &Item, table_keys: &[&str]) -> bool {
        let visible = |name: &str| match &self.projection {
            Projection::All => true,
            Projection::KeysOnly => false,
            Projection::Include(names) => names.iter().any(|n| n == name),
        } || table_keys.contains(&name);
        old.keys()
            .chain(new.keys())
            .filter(|name| visible(name))
            .any(|name| old.get(name) != new.get(name))
    }
}

/// Write units of one item written from `before` to `after` (either may be absent):
/// the table's share and the indexes' share.
pub fn item_write(
    before: Option<&Item>,
    after: Option<&Item>,
    transactional: bool,
    indexes: &[Index],
    table_keys: &[&str],
) -> (f64, f64) {
    let bytes = before
        .map(item_size)
        .unwrap_or(0)
        .max(after.map(item_size).unwrap_or(0));
    let table = write_units(bytes) * if transactional { 2.0 } else { 1.0 };
    let index = indexes
        .iter()
        .map(|index| index.write_units(before, after, table_keys))
        .sum();
    (table, index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, &str)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), AttributeValue::S((*v).to_owned())))
            .collect()
    }

    fn gsi() -> Index {
        Index {
            name: "GSI1".into(),
            pk: "G".into(),
            sk: None,
            projection: Projection::All,
        }
    }

    #[test]
    fn sizes_count_names_and_values() {
        assert_eq!(item_size(&item(&[("PK", "abc")])), 5);
        let mut numbers = Item::new();
        numbers.insert("n".into(), AttributeValue::N("12345".into()));
        assert_eq!(item_size(&numbers), 1 + 3 + 1);
        let mut nested = Item::new();
        nested.insert(
            "m".into(),
            AttributeValue::M(HashMap::from([("k".into(), AttributeValue::Bool(true))])),
        );
        assert_eq!(item_size(&nested), 1 + 3 + 1 + 1 + 1);
    }

    #[test]
    fn a_transaction_doubles_each_item_and_rounds_up_per_kb() {
        let small = item(&[("PK", "a")]);
        let big = item(&[("PK", "a"), ("d", &"x".repeat(1500))]);
        assert_eq!(
            item_write(None, Some(&small), false, &[], &["PK"]),
            (1.0, 0.0)
        );
        assert_eq!(
            item_write(None, Some(&small), true, &[], &["PK"]),
            (2.0, 0.0)
        );
        // An update of a small part of a big item pays for the big item.
        assert_eq!(
            item_write(Some(&big), Some(&big), false, &[], &["PK"]),
            (2.0, 0.0)
        );
        assert_eq!(item_write(Some(&big), None, true, &[], &["PK"]), (4.0, 0.0));
    }

    #[test]
    fn an_index_pays_a_delete_and_a_put_when_its_key_changes() {
        let before = item(&[("PK", "a"), ("G", "x"), ("v", "1")]);
        let moved = item(&[("PK", "a"), ("G", "y"), ("v", "1")]);
        let changed = item(&[("PK", "a"), ("G", "x"), ("v", "2")]);
        let out = item(&[("PK", "a"), ("v", "2")]);
        let keys = ["PK"];
        assert_eq!(gsi().write_units(Some(&before), Some(&moved), &keys), 2.0);
        assert_eq!(gsi().write_units(Some(&before), Some(&changed), &keys), 1.0);
        assert_eq!(gsi().write_units(Some(&before), Some(&before), &keys), 0.0);
        assert_eq!(gsi().write_units(Some(&before), Some(&out), &keys), 1.0);
        assert_eq!(gsi().write_units(Some(&out), Some(&out), &keys), 0.0);
        // Transactions do not double index writes: they propagate like any write.
        assert_eq!(
            item_write(Some(&before), Some(&moved), true, &[gsi()], &keys),
            (2.0, 2.0)
        );
    }

    #[test]
    fn keys_only_indexes_ignore_other_attributes() {
        let index = Index {
            projection: Projection::KeysOnly,
            ..gsi()
        };
        let before = item(&[("PK", "a"), ("G", "x"), ("v", &"x".repeat(3000))]);
        let after = item(&[("PK", "a"), ("G", "x"), ("v", "changed")]);
        assert_eq!(index.write_units(Some(&before), Some(&after), &["PK"]), 0.0);
        assert_eq!(index.write_units(None, Some(&before), &["PK"]), 1.0);
    }

    #[test]
    fn reads_are_four_kb_units_with_a_minimum() {
        assert_eq!(read_units(0), 1.0);
        assert_eq!(read_units(4096), 1.0);
        assert_eq!(read_units(4097), 2.0);
    }
}
