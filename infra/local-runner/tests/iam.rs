//! Least privilege, read from `infra/template.yaml`: each function's DynamoDB writes are
//! limited to the partition-key prefixes it uses (`dynamodb:LeadingKeys`), the anonymous
//! health function can write only its probes and rate counters, each function sends only
//! to its own queues, and secrets come from SSM parameters named by the template.
//!
//! Honest limit: the local runner (and moto, and DynamoDB Local) ignore IAM entirely, so
//! nothing here proves AWS enforces these policies or that a function never needs more.
//! This checks the policy *text*; a write outside a function's prefixes shows up only
//! in AWS, as an `AccessDeniedException` in that function's logs.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;

/// DynamoDB actions that change items.
const WRITE_ACTIONS: &[&str] = &[
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
];

/// (function, write action) pairs allowed without a `LeadingKeys` condition, each with
/// its reason. Empty: every write of every function is narrowed.
const UNCONDITIONED_WRITES: &[(&str, &str, &str)] = &[];

/// The queues each function may send to (`sqs:SendMessage`), by logical id. Every
/// function of the template must be listed, so a new one is a decision, not a default.
fn expected_sends() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let webhook = "WebhookQueue";
    [
        ("AuthFunction", vec![]),
        ("AgentsFunction", vec![]),
        ("VaultFunction", vec![]),
        (
            "TasksFunction",
            vec!["RoutingQueue", "QualityQueue", webhook],
        ),
        ("CourtsFunction", vec![webhook]),
        ("RouterFunction", vec![webhook]),
        (
            "QualityFunction",
            vec!["SettlementQueue", "RoutingQueue", webhook],
        ),
        ("SettlementFunction", vec![webhook]),
        (
            "SweeperFunction",
            vec!["RoutingQueue", "QualityQueue", webhook],
        ),
        ("StreamFunction", vec![]),
        ("TrustFunction", vec![]),
        ("EmbassyFunction", vec!["RoutingQueue", webhook]),
        ("ExchangeFunction", vec![]),
        ("WebhooksFunction", vec![webhook]),
        ("WebhookDeliveryFunction", vec![webhook]),
        ("HealthFunction", vec!["CanaryQueue"]),
        ("DocsFunction", vec![]),
        ("CanaryFunction", vec!["CanaryQueue"]),
    ]
    .into_iter()
    .map(|(f, qs)| (f, qs.into_iter().collect()))
    .collect()
}

/// The secrets each function reads from SSM: env var → template parameter.
fn expected_secrets() -> BTreeMap<&'static str, Vec<(&'static str, &'static str)>> {
    let stripe = ("STRIPE_SECRET_KEY_PARAM", "StripeSecretKeyParam");
    let e2b = ("E2B_API_KEY_PARAM", "E2bApiKeyParam");
    let llm = ("LLM_JUDGE_API_KEY_PARAM", "LlmJudgeApiKeyParam");
    BTreeMap::from([
        ("VaultFunction", vec![stripe]),
        ("TasksFunction", vec![stripe, e2b]),
        ("SweeperFunction", vec![stripe, e2b]),
        ("QualityFunction", vec![llm]),
    ])
}

fn template() -> Value {
    let text = std::fs::read_to_string(aicity_testkit::template_path()).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// `!Tag value` → value; anything else as is.
fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(tagged) => &tagged.value,
        other => other,
    }
}

fn strings(value: &Value) -> Vec<String> {
    match untag(value) {
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    }
}

/// `!GetAtt X.Arn` (or the long form) → `X`.
fn getatt_target(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "!GetAtt" => tagged
            .value
            .as_str()
            .and_then(|s| s.split('.').next())
            .map(str::to_owned),
        Value::Mapping(m) => m
            .get("Fn::GetAtt")
            .and_then(|v| v.as_sequence())
            .and_then(|s| s.first())
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

fn resources(value: &Value) -> Vec<Value> {
    match value {
        Value::Sequence(items) => items.clone(),
        other => vec![other.clone()],
    }
}

struct Statement {
    actions: Vec<String>,
    resources: Vec<Value>,
    leading_keys: Option<Vec<String>>,
}

/// Every function's statements. Only inline `Statement` policies are allowed: a SAM
/// policy template (`SQSSendMessagePolicy`, `DynamoDBCrudPolicy`…) would hide actions
/// from this check.
fn functions() -> BTreeMap<String, (Value, Vec<Statement>)> {
    let template = template();
    let mut out = BTreeMap::new();
    for (id, resource) in template["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = id.as_str().unwrap().to_owned();
        let properties = resource["Properties"].clone();
        let mut statements = Vec::new();
        for policy in properties["Policies"]
            .as_sequence()
            .cloned()
            .unwrap_or_default()
        {
            let policy = policy.as_mapping().expect("a policy is a mapping");
            assert_eq!(
                policy
                    .keys()
                    .map(|k| k.as_str().unwrap())
                    .collect::<Vec<_>>(),
                vec!["Statement"],
                "{id}: only inline statements, so every action is visible here"
            );
            for statement in policy["Statement"].as_sequence().unwrap() {
                assert_eq!(statement["Effect"].as_str(), Some("Allow"), "{id}");
                let leading_keys = statement
                    .get("Condition")
                    .map(|c| &c["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])
                    .map(strings);
                statements.push(Statement {
                    actions: strings(&statement["Action"]),
                    resources: resources(&statement["Resource"]),
                    leading_keys,
                });
            }
        }
        out.insert(id, (properties, statements));
    }
    out
}

/// Every partition-key prefix the code builds (`"OWNER#`, `"TASK#`…), read from the
/// sources that build keys, so a policy cannot name a prefix nothing uses (a typo).
fn prefixes_in_code() -> BTreeSet<String> {
    let root = aicity_testkit::template_path()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let mut found = BTreeSet::new();
    for dir in [
        "shared/store/src",
        "shared/vault/src",
        "shared/tasks/src",
        "functions",
    ] {
        let mut stack = vec![root.join(dir)];
        while let Some(path) = stack.pop() {
            if path.is_dir() {
                stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, _) in text.match_indices('"') {
                    let rest = &text[i + 1..];
                    let word: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                        .collect();
                    if !word.is_empty() && rest[word.len()..].starts_with('#') {
                        found.insert(format!("{word}#"));
                    } else if word == "SYSTEM" && rest[word.len()..].starts_with('"') {
                        found.insert(word);
                    }
                }
            }
        }
    }
    found
}

#[test]
fn no_function_has_wildcard_actions_or_unconditioned_writes() {
    let known = prefixes_in_code();
    for (function, (_, statements)) in functions() {
        for statement in &statements {
            for action in &statement.actions {
                assert!(
                    !action.ends_with(":*") && action != "*",
                    "{function}: {action} is a wildcard"
                );
                if !WRITE_ACTIONS.contains(&action.as_str()) {
                    continue;
                }
                let exempt = UNCONDITIONED_WRITES
                    .iter()
                    .any(|(f, a, _)| *f == function && a == action);
                match &statement.leading_keys {
                    None => assert!(exempt, "{function}: {action} has no LeadingKeys condition"),
                    Some(prefixes) => {
                        assert!(!prefixes.is_empty(), "{function}: {action}");
                        for prefix in prefixes {
                            assert!(
                                prefix != "*" && !prefix.starts_with('*'),
                                "{function}: {action} on {prefix:?} is any key"
                            );
                            let base = prefix.trim_end_matches('*');
                            assert!(
                                known.contains(base),
                                "{function}: {action} on {prefix:?}, a prefix no code builds ({known:?})"
                            );
                        }
                    }
                }
                // Writes go to the table itself (LeadingKeys on an index means its key).
                for resource in &statement.resources {
                    assert_eq!(
                        getatt_target(resource).as_deref(),
                        Some("Table"),
                        "{function}: {action} on {resource:?}"
                    );
                }
            }
        }
    }
}

/// The anonymous health function: a probe (`PROBE#…`) and its per-IP rate counters
/// (`RATE#…`), nothing else; never a delete.
#[test]
fn the_health_function_can_write_only_its_probes_and_counters() {
    let functions = functions();
    let (_, statements) = &functions["HealthFunction"];
    let mut writes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for statement in statements {
        for action in &statement.actions {
            if action.starts_with("dynamodb:") && WRITE_ACTIONS.contains(&action.as_str()) {
                let prefixes = statement.leading_keys.clone().unwrap_or_default();
                writes.entry(action.clone()).or_default().extend(prefixes);
            }
            assert!(
                !action.starts_with("ssm:") && !action.starts_with("kms:"),
                "health reads no secrets: {action}"
            );
        }
    }
    let expected = BTreeMap::from([
        (
            "dynamodb:PutItem".to_owned(),
            BTreeSet::from(["PROBE#*".to_owned()]),
        ),
        (
            "dynamodb:UpdateItem".to_owned(),
            BTreeSet::from(["RATE#*".to_owned()]),
        ),
    ]);
    assert_eq!(writes, expected);
}

/// The anonymous docs function: its per-IP rate counters (`RATE#…`), nothing else; it
/// reads nothing from the table and no secrets.
#[test]
fn the_docs_function_writes_only_its_rate_counters() {
    let functions = functions();
    let (_, statements) = &functions["DocsFunction"];
    let mut actions = BTreeMap::new();
    for statement in statements {
        for action in &statement.actions {
            actions.insert(
                action.clone(),
                statement.leading_keys.clone().unwrap_or_default(),
            );
        }
    }
    assert_eq!(
        actions,
        BTreeMap::from([("dynamodb:UpdateItem".to_owned(), vec!["RATE#*".to_owned()])])
    );
}

#[test]
fn each_function_sends_only_to_its_queues() {
    let expected = expected_sends();
    let functions = functions();
    assert_eq!(
        functions
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        expected.keys().copied().collect::<BTreeSet<_>>(),
        "every function is listed in expected_sends"
    );
    for (function, (_, statements)) in &functions {
        let mut sends = BTreeSet::new();
        for statement in statements {
            for action in &statement.actions {
                if action.starts_with("sqs:SendMessage") {
                    for resource in &statement.resources {
                        let queue = getatt_target(resource)
                            .unwrap_or_else(|| panic!("{function}: {action} on {resource:?}"));
                        sends.insert(queue);
                    }
                }
            }
        }
        let want: BTreeSet<String> = expected[function.as_str()]
            .iter()
            .map(|q| (*q).to_owned())
            .collect();
        assert_eq!(sends, want, "{function}");
    }
}

#[test]
fn secrets_come_from_exactly_their_ssm_parameters() {
    let template = template();
    let expected = expected_secrets();
    // No plaintext secret parameter or variable anywhere.
    let text = std::fs::read_to_string(aicity_testkit::template_path()).unwrap();
    for plain in [
        "STRIPE_SECRET_KEY:",
        "E2B_API_KEY:",
        "LLM_JUDGE_API_KEY:",
        "StripeSecretKey:",
        "E2bApiKey:",
        "LlmJudgeApiKey:",
    ] {
        assert!(!text.contains(plain), "{plain} is in the template");
    }
    // A deployment must choose its payment provider.
    assert!(
        template["Parameters"]["PaymentProvider"]
            .get("Default")
            .is_none(),
        "PaymentProvider has no default"
    );
    for (function, (properties, statements)) in functions() {
        let want = expected.get(function.as_str()).cloned().unwrap_or_default();
        let variables = &properties["Environment"]["Variables"];
        let mut granted = BTreeSet::new();
        for statement in &statements {
            for action in &statement.actions {
                if !(action.starts_with("ssm:") || action.starts_with("kms:")) {
                    continue;
                }
                assert_eq!(action, "ssm:GetParameter", "{function}");
                for resource in &statement.resources {
                    let Value::Tagged(sub) = resource else {
                        panic!("{function}: {resource:?}")
                    };
                    let arn = sub.value.as_str().unwrap();
                    let parameter = arn
                        .strip_prefix(
                            "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${",
                        )
                        .and_then(|p| p.strip_suffix('}'))
                        .unwrap_or_else(|| panic!("{function}: {arn} is not one parameter"));
                    granted.insert(parameter.to_owned());
                }
            }
        }
        let wanted: BTreeSet<String> = want.iter().map(|(_, p)| (*p).to_owned()).collect();
        assert_eq!(granted, wanted, "{function}");
        for (variable, parameter) in want {
            let value = &variables[variable];
            assert!(
                matches!(value, Value::Tagged(t) if t.tag == "!Ref" && t.value.as_str() == Some(parameter)),
                "{function}: {variable} is !Ref {parameter}, got {value:?}"
            );
            let default = template["Parameters"][parameter]["Default"]
                .as_str()
                .unwrap_or_default();
            assert!(default.starts_with("/aicity/"), "{parameter}: {default}");
        }
    }
}
