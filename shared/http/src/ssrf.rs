//! The SSRF guard's network half: resolve a webhook URL's host and check every address
//! it resolves to (`aicity_domain::webhooks::guard` holds the rules). The caller then
//! connects only to the address checked here (pinned), so a name that resolves to a
//! public address now and to a private one a moment later (DNS rebinding) gains nothing.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;

use aicity_domain::webhooks::guard::{self, Refusal, Target, TargetHost};

pub type ResolveFuture<'a> =
    Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>>;

/// Looks host names up.
pub trait Resolver: Send + Sync {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a>;
}

/// The system's resolver (`tokio::net::lookup_host`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// Fixed answers for some names, the system's for the rest (tests: a name that resolves
/// to a private address).
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    pub names: HashMap<String, Vec<IpAddr>>,
}

impl Resolver for StaticResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        Box::pin(async move {
            match self.names.get(host) {
                Some(ips) => Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect()),
                None => SystemResolver.resolve(host, port).await,
            }
        })
    }
}

/// A URL that passed every check, and the one address to connect to.
#[derive(Debug, Clone)]
pub struct Checked {
    pub target: Target,
    pub addr: SocketAddr,
}

impl Checked {
    /// The host name to pin to [`Checked::addr`] (`None` for an IP literal).
    pub fn name(&self) -> Option<&str> {
        match &self.target.host {
            TargetHost::Name(name) => Some(name),
            TargetHost::Ip(_) => None,
        }
    }
}

/// The static rules, then every address the host resolves to.
pub async fn check(
    raw: &str,
    allow_loopback: bool,
    resolver: &dyn Resolver,
) -> Result<Checked, Refusal> {
    let target = guard::parse(raw, allow_loopback)?;
    let addr = match &target.host {
        TargetHost::Ip(ip) => SocketAddr::new(*ip, target.port),
        TargetHost::Name(name) => {
            let addrs = resolver
                .resolve(name, target.port)
                .await
                .map_err(|_| Refusal::Unresolvable)?;
            let first = *addrs.first().ok_or(Refusal::Unresolvable)?;
            for addr in &addrs {
                // A name never earns the loopback exception: only the literal does.
                guard::check_address(addr.ip(), false)?;
            }
            first
        }
    };
    Ok(Checked { target, addr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_are_judged_by_every_address_they_resolve_to() {
        let mut resolver = StaticResolver::default();
        resolver.names.insert(
            "rebind.test".into(),
            vec!["8.8.8.8".parse().unwrap(), "10.0.0.5".parse().unwrap()],
        );
        resolver
            .names
            .insert("public.test".into(), vec!["8.8.4.4".parse().unwrap()]);
        resolver
            .names
            .insert("loop.test".into(), vec!["127.0.0.1".parse().unwrap()]);
        assert!(matches!(
            check("https://rebind.test/", false, &resolver).await,
            Err(Refusal::Address(_))
        ));
        assert!(matches!(
            check("https://loop.test/", true, &resolver).await,
            Err(Refusal::Address(_))
        ));
        let ok = check("https://public.test:8443/x", false, &resolver)
            .await
            .unwrap();
        assert_eq!(ok.addr, "8.8.4.4:8443".parse().unwrap());
        assert_eq!(ok.name(), Some("public.test"));
        let literal = check("http://127.0.0.1:9/x", true, &resolver)
            .await
            .unwrap();
        assert_eq!(literal.name(), None);
    }
}
