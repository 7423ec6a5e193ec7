//! Network values: CIDR lists and host-name lists.

use std::net::IpAddr;

use super::error::{quoted, AnnotationError};
use super::values::ListRule;

/// The private ranges a generated endpoint security group admits when
/// `vpce.hawser.io/allowed-cidrs` is absent.
pub const DEFAULT_ALLOWED_CIDRS: &[&str] = &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

/// Parses `vpce.hawser.io/allowed-cidrs`: 1..=50 distinct IPv4 or IPv6
/// CIDRs, comma-separated, host bits zero. IPv6 is returned in its
/// canonical (compressed, lower-case) form. 50 is AWS's default limit of
/// inbound rules per security group.
pub fn parse_cidrs(key: &str, value: &str) -> Result<Vec<String>, AnnotationError> {
    ListRule {
        key,
        nouns: "CIDRs",
        max: 50,
        max_why: "AWS allows 50 inbound rules per security group",
        allowed: "1 to 50 distinct IPv4 or IPv6 CIDRs with the host bits zero, comma-separated, \
                  e.g. 10.0.0.0/8,fd00::/8",
    }
    .parse(value, cidr)
}

fn cidr(item: &str) -> Result<String, String> {
    let Some((addr, len)) = item.split_once('/') else {
        return Err(format!("{} has no /prefix-length", quoted(item)));
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("{} is not an IPv4 or IPv6 address", quoted(addr)))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix: u32 = match len.parse::<u32>() {
        // Refuse "/08" and "/+8": one spelling per prefix.
        Ok(p) if p <= max && p.to_string() == len => p,
        _ => return Err(format!("prefix length {} is not 0 to {max}", quoted(len))),
    };
    let host_bits_zero = match ip {
        IpAddr::V4(v4) => u32::from(v4).checked_shl(prefix).unwrap_or(0) == 0,
        IpAddr::V6(v6) => u128::from(v6).checked_shl(prefix).unwrap_or(0) == 0,
    };
    if !host_bits_zero {
        return Err(format!(
            "{} has host bits set; the network is {}",
            quoted(item),
            network(ip, prefix)
        ));
    }
    Ok(format!("{ip}/{prefix}"))
}

fn network(ip: IpAddr, prefix: u32) -> String {
    let net = match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            IpAddr::from((u32::from(v4) & mask).to_be_bytes())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            IpAddr::from((u128::from(v6) & mask).to_be_bytes())
        }
    };
    format!("{net}/{prefix}")
}

const HOSTS_ALLOWED: &str = "host names (RFC 1123, e.g. api.example.com) or IPv4/IPv6 addresses, \
     separated by spaces, e.g. \"api.example.com 10.0.0.7 2001:db8::1\"";

/// Parses a space-delimited host list (`env.hawser.io/host-names`,
/// `routing.hawser.io/public-hosts`, `routing.hawser.io/private-hosts`):
/// items are separated by any run of whitespace; each is an RFC 1123 host
/// name or an IPv4/IPv6 address. Host names are lower-cased and lose a
/// trailing dot; addresses are written in canonical form; duplicates are
/// dropped, keeping the first. An empty list is refused.
///
/// A name whose last label is all digits (`10.0.0.256`, `1.2.3`) is
/// refused: it is a mistyped address, not a host name. Wildcards are not
/// host names either.
pub fn parse_host_names(key: &str, value: &str) -> Result<Vec<String>, AnnotationError> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for item in value.split_whitespace() {
        let host = host(item).map_err(|r| AnnotationError::new(key, value, r, HOSTS_ALLOWED))?;
        if seen.insert(host.clone()) {
            out.push(host);
        }
    }
    if out.is_empty() {
        return Err(AnnotationError::new(
            key,
            value,
            "no host names",
            HOSTS_ALLOWED,
        ));
    }
    Ok(out)
}

/// The normalised form of a host list annotation, for the webhook to
/// patch in: hosts as [`parse_host_names`] returns them, joined by one
/// space.
pub fn normalize_host_names(key: &str, value: &str) -> Result<String, AnnotationError> {
    Ok(parse_host_names(key, value)?.join(" "))
}

fn host(item: &str) -> Result<String, String> {
    if let Ok(ip) = item.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let name = item.strip_suffix('.').unwrap_or(item).to_ascii_lowercase();
    if name.is_empty() || name.len() > 253 {
        return Err(format!("{} is not 1 to 253 characters", quoted(item)));
    }
    for label in name.split('.') {
        let ok = (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-');
        if !ok {
            return Err(format!(
                "{} is neither an IP address nor a host name (label {} is not 1 to \
                 63 letters, digits or inner hyphens)",
                quoted(item),
                quoted(label)
            ));
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|top| top.bytes().all(|c| c.is_ascii_digit()))
    {
        return Err(format!(
            "{} is neither an IP address nor a host name (it ends in a number)",
            quoted(item)
        ));
    }
    Ok(name)
}
