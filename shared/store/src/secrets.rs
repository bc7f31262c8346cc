//! Secrets (the Stripe, E2B and LLM judge keys), resolved once per cold start.
//!
//! A secret `NAME` is the environment variable `NAME` when it is set and not empty
//! (local development: `make dev` and the tests pass the developer's own value), else
//! the SSM Parameter Store parameter that `NAME_PARAM` names (a `SecureString`, read
//! with decryption; the template passes the parameter's name, never its value), else
//! unset. Each parameter is fetched once per process and cached; the SSM client is
//! built once, from the same configuration chain as the other clients (so
//! `AWS_ENDPOINT_URL` sends it to moto locally).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use tokio::sync::OnceCell;

/// Reading a secret from SSM failed for another reason than its absence (no access,
/// no network): the function should not start half-configured.
#[derive(Debug, thiserror::Error)]
#[error("could not read the SSM parameter {parameter}: {cause}")]
pub struct SecretError {
    pub parameter: String,
    pub cause: String,
}

fn cache() -> &'static Mutex<HashMap<String, Option<String>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<String>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

async fn ssm() -> &'static aws_sdk_ssm::Client {
    static CLIENT: OnceCell<aws_sdk_ssm::Client> = OnceCell::const_new();
    CLIENT
        .get_or_init(|| async {
            let shared = crate::config::sdk_config_loader().load().await;
            aws_sdk_ssm::Client::new(&shared)
        })
        .await
}

/// The secret `name` from the process environment (see the module docs).
pub async fn resolve(name: &str) -> Result<Option<String>, SecretError> {
    resolve_with(|var| std::env::var(var).ok(), name).await
}

/// [`resolve`] only when the variable `selector` is `choice` (the E2B key only with
/// `SANDBOX_PROVIDER=e2b`): a function that does not use the secret never asks SSM.
pub async fn resolve_for(
    selector: &str,
    choice: &str,
    name: &str,
) -> Result<Option<String>, SecretError> {
    match std::env::var(selector) {
        Ok(value) if value.trim() == choice => resolve(name).await,
        _ => Ok(None),
    }
}

/// [`resolve`] with the variables read through `var` (tests pass their own).
pub async fn resolve_with(
    var: impl Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<String>, SecretError> {
    let set = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if let Some(plain) = set(var(name)) {
        return Ok(Some(plain));
    }
    let Some(parameter) = set(var(&format!("{name}_PARAM"))) else {
        return Ok(None);
    };
    if let Some(cached) = cache().lock().ok().and_then(|c| c.get(&parameter).cloned()) {
        return Ok(cached);
    }
    let value = parameter_value(ssm().await, &parameter).await?;
    if let Ok(mut cache) = cache().lock() {
        cache.insert(parameter, value.clone());
    }
    Ok(value)
}

/// The decrypted value of one parameter; `None` when it does not exist (logged: the
/// feature that needs it then answers 503, as with no key at all).
pub async fn parameter_value(
    client: &aws_sdk_ssm::Client,
    parameter: &str,
) -> Result<Option<String>, SecretError> {
    match client
        .get_parameter()
        .name(parameter)
        .with_decryption(true)
        .send()
        .await
    {
        Ok(answer) => Ok(answer
            .parameter
            .and_then(|p| p.value)
            .filter(|v| !v.trim().is_empty())),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) =>
        {
            tracing::error!(parameter, "SSM parameter not found; the secret stays unset");
            Ok(None)
        }
        Err(err) => Err(SecretError {
            parameter: parameter.to_owned(),
            cause: aws_sdk_ssm::error::DisplayErrorContext(&err).to_string(),
        }),
    }
}
