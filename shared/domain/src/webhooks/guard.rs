//! The SSRF guard's pure half: which webhook URLs are acceptable, and which addresses a
//! delivery may connect to. The edge resolves the host (every address it resolves to
//! must pass [`check_address`]) and then connects only to an address it checked.
//!
//! Rules: `https` only, to public addresses; no userinfo; at most [`MAX_URL_LENGTH`]
//! characters; no `localhost` names; no loopback, private, link-local, metadata,
//! shared (CGNAT), unspecified, broadcast, multicast, documentation, benchmarking,
//! reserved or IPv6 unique-local addresses, nor the IPv4-mapped, -compatible, NAT64
//! or 6to4 IPv6 forms of any of them. With `allow_loopback` (`WEBHOOK_ALLOW_LOOPBACK=1`,
//! local development) the literal host `127.0.0.1` is also allowed, over `http` or
//! `https`; nothing else changes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const MAX_URL_LENGTH: usize = 2048;

/// What kind of non-public address it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Loopback,
    Private,
    LinkLocal,
    Metadata,
    SharedCgnat,
    Unspecified,
    Broadcast,
    Multicast,
    Documentation,
    Benchmarking,
    UniqueLocal,
    Reserved,
}

impl AddressClass {
    pub const fn as_str(self) -> &'static str {
        match self {
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::Metadata => "a cloud metadata address",
            AddressClass::SharedCgnat => "a shared (CGNAT) address",
            AddressClass::Unspecified => "an unspecified address",
            AddressClass::Broadcast => "a broadcast address",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Documentation => "a documentation address",
            AddressClass::Benchmarking => "a benchmarking address",
            AddressClass::UniqueLocal => "an IPv6 unique-local address",
            AddressClass::Reserved => "a reserved address",
        }
    }
}

/// Why a URL (or the address it resolved to) is refused. `Display` is the field error
/// shown to the subscriber and the error text of a refused delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooLong,
    Malformed,
    Scheme,
    Userinfo,
    NoHost,
    LocalName,
    Address(AddressClass),
    /// The host name did not resolve (or resolved to nothing).
    Unresolvable,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooLong => write!(f, "must be at most {MAX_URL_LENGTH} characters"),
            Refusal::Malformed => f.write_str("must be an absolute URL"),
            Refusal::Scheme => f.write_str("must use https"),
            Refusal::Userinfo => f.write_str("must not contain a user name or password"),
            Refusal::NoHost => f.write_str("must name a host"),
            Refusal::LocalName => f.write_str("must not name localhost"),
            Refusal::Address(class) => {
                write!(
                    f,
                    "must reach a public address; it reaches {}",
                    class.as_str()
                )
            }
            Refusal::Unresolvable => f.write_str("its host name does not resolve"),
        }
    }
}

/// The host of an accepted URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetHost {
    /// A DNS name (lower case, without a trailing dot): resolve it, check every address.
    Name(String),
    /// An IP literal, already checked.
    Ip(IpAddr),
}

/// A URL that passed the static checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: url::Url,
    pub host: TargetHost,
    pub port: u16,
}

fn is_loopback_exception(ip: IpAddr, allow_loopback: bool) -> bool {
    allow_loopback && ip == IpAddr::V4(Ipv4Addr::LOCALHOST)
}

/// The static checks: length, syntax, scheme, userinfo, host. An IP literal is checked
/// here; a name is checked after it is resolved ([`check_address`]).
pub fn parse(raw: &str, allow_loopback: bool) -> Result<Target, Refusal> {
    if raw.chars().count() > MAX_URL_LENGTH {
        return Err(Refusal::TooLong);
    }
    let url = url::Url::parse(raw.trim()).map_err(|_| Refusal::Malformed)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::Userinfo);
    }
    let host = match url.host() {
        None => return Err(Refusal::NoHost),
        Some(url::Host::Ipv4(ip)) => TargetHost::Ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => TargetHost::Ip(IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty() {
                return Err(Refusal::NoHost);
            }
            if name == "localhost" || name.ends_with(".localhost") {
                return Err(Refusal::LocalName);
            }
            TargetHost::Name(name)
        }
    };
    let loopback_literal =
        matches!(host, TargetHost::Ip(ip) if is_loopback_exception(ip, allow_loopback));
    match url.scheme() {
        "https" => {}
        "http" if loopback_literal => {}
        _ => return Err(Refusal::Scheme),
    }
    if let TargetHost::Ip(ip) = host {
        check_address(ip, allow_loopback)?;
    }
    let port = url.port_or_known_default().ok_or(Refusal::Malformed)?;
    Ok(Target { url, host, port })
}

/// Whether a delivery may connect to `ip`.
pub fn check_address(ip: IpAddr, allow_loopback: bool) -> Result<(), Refusal> {
    if is_loopback_exception(ip, allow_loopback) {
        return Ok(());
    }
    match classify(ip) {
        None => Ok(()),
        Some(class) => Err(Refusal::Address(class)),
    }
}

/// `None` for a public address; otherwise what it is.
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    use AddressClass as C;
    const RULES: &[([u8; 4], u32, AddressClass)] = &[
        ([169, 254, 169, 254], 32, C::Metadata),
        ([0, 0, 0, 0], 32, C::Unspecified),
        ([255, 255, 255, 255], 32, C::Broadcast),
        ([0, 0, 0, 0], 8, C::Reserved),
        ([10, 0, 0, 0], 8, C::Private),
        ([100, 64, 0, 0], 10, C::SharedCgnat),
        ([127, 0, 0, 0], 8, C::Loopback),
        ([169, 254, 0, 0], 16, C::LinkLocal),
        ([172, 16, 0, 0], 12, C::Private),
        // IETF protocol assignments (192.0.0.192 is a cloud metadata address too).
        ([192, 0, 0, 0], 24, C::Reserved),
        ([192, 0, 2, 0], 24, C::Documentation),
        ([192, 88, 99, 0], 24, C::Reserved),
        ([192, 168, 0, 0], 16, C::Private),
        ([198, 18, 0, 0], 15, C::Benchmarking),
        ([198, 51, 100, 0], 24, C::Documentation),
        ([203, 0, 113, 0], 24, C::Documentation),
        ([224, 0, 0, 0], 4, C::Multicast),
        ([240, 0, 0, 0], 4, C::Reserved),
    ];
    RULES
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, class)| *class)
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    (u128::from(ip) & mask) == (u128::from(net) & mask)
}

fn embedded_v4(bits: u128) -> Ipv4Addr {
    Ipv4Addr::from((bits & 0xffff_ffff) as u32)
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    use AddressClass as C;
    let bits = u128::from(ip);
    if ip == Ipv6Addr::UNSPECIFIED {
        return Some(C::Unspecified);
    }
    if ip == Ipv6Addr::LOCALHOST {
        return Some(C::Loopback);
    }
    let net = |s: &str| s.parse::<Ipv6Addr>().expect("a literal network");
    // IPv4 inside IPv6: judged as the IPv4 address it carries (a public one passes).
    // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible), 64:ff9b::a.b.c.d (NAT64).
    if in_v6(ip, net("::ffff:0:0"), 96)
        || in_v6(ip, net("::"), 96)
        || in_v6(ip, net("64:ff9b::"), 96)
    {
        return classify_v4(embedded_v4(bits));
    }
    // 6to4: 2002:a.b.c.d::/48.
    if in_v6(ip, net("2002::"), 16) {
        let v4 = Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32);
        return classify_v4(v4);
    }
    let rules: [(&str, u32, AddressClass); 9] = [
        ("fd00:ec2::254", 128, C::Metadata),
        ("fe80::", 10, C::LinkLocal),
        ("fec0::", 10, C::Private),
        ("fc00::", 7, C::UniqueLocal),
        ("ff00::", 8, C::Multicast),
        ("2001:db8::", 32, C::Documentation),
        ("2001:2::", 48, C::Benchmarking),
        ("2001::", 23, C::Reserved),
        ("100::", 64, C::Reserved),
    ];
    if let Some((_, _, class)) = rules
        .iter()
        .find(|(network, prefix, _)| in_v6(ip, net(network), *prefix))
    {
        return Some(*class);
    }
    // Only 2000::/3 is global unicast.
    if !in_v6(ip, net("2000::"), 3) {
        return Some(C::Reserved);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<AddressClass> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn ipv4_ranges() {
        use AddressClass as C;
        for (ip, want) in [
            ("127.0.0.1", Some(C::Loopback)),
            ("127.255.255.254", Some(C::Loopback)),
            ("10.0.0.1", Some(C::Private)),
            ("172.16.0.1", Some(C::Private)),
            ("172.31.255.255", Some(C::Private)),
            ("172.32.0.1", None),
            ("192.168.1.1", Some(C::Private)),
            ("169.254.169.254", Some(C::Metadata)),
            ("169.254.1.1", Some(C::LinkLocal)),
            ("100.64.0.1", Some(C::SharedCgnat)),
            ("100.127.255.255", Some(C::SharedCgnat)),
            ("100.128.0.1", None),
            ("0.0.0.0", Some(C::Unspecified)),
            ("0.1.2.3", Some(C::Reserved)),
            ("255.255.255.255", Some(C::Broadcast)),
            ("224.0.0.1", Some(C::Multicast)),
            ("239.255.255.250", Some(C::Multicast)),
            ("192.0.2.1", Some(C::Documentation)),
            ("198.51.100.7", Some(C::Documentation)),
            ("203.0.113.9", Some(C::Documentation)),
            ("198.18.0.1", Some(C::Benchmarking)),
            ("198.19.255.255", Some(C::Benchmarking)),
            ("192.0.0.192", Some(C::Reserved)),
            ("240.0.0.1", Some(C::Reserved)),
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("93.184.216.34", None),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv6_ranges_and_embedded_ipv4() {
        use AddressClass as C;
        for (ip, want) in [
            ("::1", Some(C::Loopback)),
            ("::", Some(C::Unspecified)),
            ("fe80::1", Some(C::LinkLocal)),
            ("febf::1", Some(C::LinkLocal)),
            ("fc00::1", Some(C::UniqueLocal)),
            ("fd12:3456::1", Some(C::UniqueLocal)),
            ("fd00:ec2::254", Some(C::Metadata)),
            ("ff02::1", Some(C::Multicast)),
            ("2001:db8::1", Some(C::Documentation)),
            ("2001:2::1", Some(C::Benchmarking)),
            ("::ffff:127.0.0.1", Some(C::Loopback)),
            ("::ffff:10.1.2.3", Some(C::Private)),
            ("::ffff:169.254.169.254", Some(C::Metadata)),
            ("::127.0.0.1", Some(C::Loopback)),
            ("::192.168.0.1", Some(C::Private)),
            ("64:ff9b::10.0.0.1", Some(C::Private)),
            ("2002:7f00:1::", Some(C::Loopback)),
            ("2002:a9fe:a9fe::", Some(C::Metadata)),
            ("::ffff:8.8.8.8", None),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001:82a::200e", None),
            ("4000::1", Some(C::Reserved)),
        ] {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn urls() {
        let refused = |url: &str, allow: bool| parse(url, allow).unwrap_err();
        assert!(parse("https://hooks.example.com/in", false).is_ok());
        assert!(parse("https://8.8.8.8/in", false).is_ok());
        assert_eq!(
            refused("http://hooks.example.com/in", false),
            Refusal::Scheme
        );
        assert_eq!(refused("ftp://hooks.example.com/", true), Refusal::Scheme);
        assert_eq!(refused("not a url", false), Refusal::Malformed);
        assert_eq!(
            refused("https://u:p@example.com/", false),
            Refusal::Userinfo
        );
        assert_eq!(refused("https://u@example.com/", false), Refusal::Userinfo);
        assert_eq!(refused("https://localhost/", false), Refusal::LocalName);
        assert_eq!(refused("https://LOCALHOST./", false), Refusal::LocalName);
        assert_eq!(refused("https://a.localhost/", false), Refusal::LocalName);
        assert_eq!(
            refused("https://127.0.0.1/", false),
            Refusal::Address(AddressClass::Loopback)
        );
        // Other spellings of 127.0.0.1 are normalised by the URL parser.
        assert_eq!(
            refused("https://2130706433/", false),
            Refusal::Address(AddressClass::Loopback)
        );
        assert_eq!(
            refused("https://0x7f.1/", false),
            Refusal::Address(AddressClass::Loopback)
        );
        assert_eq!(
            refused("https://[::ffff:169.254.169.254]/", false),
            Refusal::Address(AddressClass::Metadata)
        );
        assert_eq!(
            refused("https://10.0.0.1/", true),
            Refusal::Address(AddressClass::Private)
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LENGTH));
        assert_eq!(refused(&long, false), Refusal::TooLong);
        // The flag allows the literal 127.0.0.1 only, over http or https.
        assert!(parse("http://127.0.0.1:8080/hook", true).is_ok());
        assert!(parse("https://127.0.0.1:8443/hook", true).is_ok());
        assert_eq!(refused("http://127.0.0.1:8080/", false), Refusal::Scheme);
        assert_eq!(refused("http://127.0.0.2/", true), Refusal::Scheme);
        assert_eq!(
            refused("https://[::1]/", true),
            Refusal::Address(AddressClass::Loopback)
        );
        assert_eq!(refused("http://localhost:8080/", true), Refusal::LocalName);
        let target = parse("https://Hooks.Example.com./x", false).unwrap();
        assert_eq!(target.host, TargetHost::Name("hooks.example.com".into()));
        assert_eq!(target.port, 443);
    }

    #[test]
    fn resolved_addresses() {
        assert!(check_address("8.8.8.8".parse().unwrap(), false).is_ok());
        assert!(check_address("127.0.0.1".parse().unwrap(), false).is_err());
        assert!(check_address("127.0.0.1".parse().unwrap(), true).is_ok());
        assert!(check_address("127.0.0.2".parse().unwrap(), true).is_err());
        assert!(check_address("::1".parse().unwrap(), true).is_err());
    }
}
