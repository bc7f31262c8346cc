//! Clients and names, built once per cold start from the environment.

use std::sync::OnceLock;

use aws_config::{BehaviorVersion, ConfigLoader};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The AWS clients every function shares. Cheap to clone (reference counted).
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    /// Loads region, credentials and endpoint the standard way, so `AWS_ENDPOINT_URL`
    /// (moto, LocalStack, DynamoDB Local) or real AWS work unchanged.
    pub async fn from_env() -> Self {
        let shared = sdk_config_loader().load().await;
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&shared),
            sqs: aws_sdk_sqs::Client::new(&shared),
        }
    }
}

/// The SDK configuration every client of a function is built from (the SSM client of
/// [`crate::secrets`] too): the standard chain, with [`https_client`].
pub fn sdk_config_loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(https_client())
}

/// The SDK's own HTTPS client (hyper 1, rustls on aws-lc-rs) trusting Mozilla's root
/// certificates compiled into the binary (`webpki-root-certs`) rather than the system
/// store. The default client reads the system store when a client is built, that is in
/// every cold start: on this bench machine that is a bundle plus ~290 files in
/// `/etc/ssl/certs`, most of a function's init (docs/performance.md). AWS endpoints
/// chain to Amazon's roots, which Mozilla's list has. One client for the process: its
/// connection pool is shared by the DynamoDB, SQS and SSM clients.
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    static CLIENT: OnceLock<aws_sdk_dynamodb::config::SharedHttpClient> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let roots = TrustStore::empty().with_pem_certificate(webpki_roots_pem());
            let context = TlsContext::builder()
                .with_trust_store(roots)
                .build()
                .expect("a trust store of PEM certificates is a valid TLS context");
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .tls_context(context)
                .build_https()
        })
        .clone()
}

/// Mozilla's roots as one PEM bundle (the form the SDK's trust store takes).
fn webpki_roots_pem() -> Vec<u8> {
    let mut pem = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let encoded = STANDARD.encode(cert.as_ref());
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem.into_bytes()
}

/// Where things are: filled from the environment the template sets.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// The single table (`TABLE_NAME`).
    pub table: String,
}

/// A required environment variable was missing.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set")]
pub struct MissingEnv(pub &'static str);

/// Reads a required environment variable.
pub fn env_var(name: &'static str) -> Result<String, MissingEnv> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(MissingEnv(name))
}

impl StoreConfig {
    pub fn from_env() -> Result<Self, MissingEnv> {
        Ok(Self {
            table: env_var("TABLE_NAME")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_roots_make_a_pem_bundle_of_every_certificate() {
        let pem = String::from_utf8(webpki_roots_pem()).unwrap();
        assert_eq!(
            pem.matches("-----BEGIN CERTIFICATE-----").count(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.len()
        );
        assert!(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() > 100);
        assert!(pem.lines().all(|line| line.len() <= 64));
    }
}
