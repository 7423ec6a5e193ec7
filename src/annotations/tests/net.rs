use super::super::*;
use super::refused;

const CIDRS: &str = "vpce.hawser.io/allowed-cidrs";
const CIDRS_ALLOWED: &str = "allowed: 1 to 50 distinct IPv4 or IPv6 CIDRs with the host bits \
     zero, comma-separated, e.g. 10.0.0.0/8,fd00::/8";

#[test]
fn cidrs_accepted_and_canonical() {
    assert_eq!(
        parse_cidrs(CIDRS, "10.0.0.0/8, 192.168.1.128/25,0.0.0.0/0,10.1.2.3/32").unwrap(),
        ["10.0.0.0/8", "192.168.1.128/25", "0.0.0.0/0", "10.1.2.3/32"]
    );
    assert_eq!(
        parse_cidrs(CIDRS, "FD00:0:0::/8,::/0,2001:db8::1/128").unwrap(),
        ["fd00::/8", "::/0", "2001:db8::1/128"]
    );
    let fifty: Vec<String> = (0..50).map(|i| format!("10.{i}.0.0/16")).collect();
    assert_eq!(parse_cidrs(CIDRS, &fifty.join(",")).unwrap(), fifty);
}

#[test]
fn cidrs_refused() {
    let msg = |value: &str, reason: &str| {
        format!("annotation {CIDRS}: invalid value {value:?}: {reason}; {CIDRS_ALLOWED}")
    };
    let cases = [
        (
            "10.0.0.1/8",
            "\"10.0.0.1/8\" has host bits set; the network is 10.0.0.0/8",
        ),
        (
            "fd00::1/8",
            "\"fd00::1/8\" has host bits set; the network is fd00::/8",
        ),
        ("10.0.0.0", "\"10.0.0.0\" has no /prefix-length"),
        ("10.0.0.0/33", "prefix length \"33\" is not 0 to 32"),
        ("10.0.0.0/08", "prefix length \"08\" is not 0 to 32"),
        ("fd00::/129", "prefix length \"129\" is not 0 to 128"),
        (
            "10.0.0.256/32",
            "\"10.0.0.256\" is not an IPv4 or IPv6 address",
        ),
        ("10.0.0.0/8,10.0.0.0/8", "10.0.0.0/8 is listed twice"),
        ("fd00::/8,FD00:0::/8", "fd00::/8 is listed twice"),
    ];
    for (value, reason) in cases {
        assert_eq!(refused(parse_cidrs(CIDRS, value)), msg(value, reason));
    }
    let fifty_one: Vec<String> = (0..51).map(|i| format!("10.{i}.0.0/16")).collect();
    assert_eq!(
        parse_cidrs(CIDRS, &fifty_one.join(",")).unwrap_err().reason,
        "51 CIDRs; at most 50 (AWS allows 50 inbound rules per security group)"
    );
}

const HOSTS: &str = "env.hawser.io/host-names";
const HOSTS_ALLOWED: &str = "allowed: host names (RFC 1123, e.g. api.example.com) or IPv4/IPv6 \
     addresses, separated by spaces, e.g. \"api.example.com 10.0.0.7 2001:db8::1\"";

#[test]
fn host_names_normalised() {
    assert_eq!(
        parse_host_names(
            HOSTS,
            "  API.Example.com.\t10.0.0.7\n2001:DB8:0::1 api.example.com 1-a.b "
        )
        .unwrap(),
        ["api.example.com", "10.0.0.7", "2001:db8::1", "1-a.b"]
    );
    assert_eq!(
        normalize_host_names(HOSTS, "b.example.com  A.example.com b.example.com.").unwrap(),
        "b.example.com a.example.com"
    );
    let label = "a".repeat(63);
    let long = [label.as_str(); 4].join(".");
    assert_eq!(long.len(), 255);
    assert!(parse_host_names(HOSTS, &long[2..]).is_ok());
    assert!(parse_host_names(HOSTS, "localhost").is_ok());
}

#[test]
fn host_names_refused() {
    let msg = |value: &str, reason: &str| {
        format!("annotation {HOSTS}: invalid value {value:?}: {reason}; {HOSTS_ALLOWED}")
    };
    let cases = [
        (" \t", "no host names".to_owned()),
        (
            "api.example.com -bad.example.com",
            "\"-bad.example.com\" is neither an IP address nor a host name (label \"-bad\" is not \
             1 to 63 letters, digits or inner hyphens)"
                .to_owned(),
        ),
        (
            "*.example.com",
            "\"*.example.com\" is neither an IP address nor a host name (label \"*\" is not 1 to \
             63 letters, digits or inner hyphens)"
                .to_owned(),
        ),
        (
            "a,b",
            "\"a,b\" is neither an IP address nor a host name (label \"a,b\" is not 1 to 63 \
             letters, digits or inner hyphens)"
                .to_owned(),
        ),
        (
            "10.0.0.256",
            "\"10.0.0.256\" is neither an IP address nor a host name (it ends in a number)"
                .to_owned(),
        ),
        (
            "a..b",
            "\"a..b\" is neither an IP address nor a host name (label \"\" is not 1 to 63 \
             letters, digits or inner hyphens)"
                .to_owned(),
        ),
        (".", "\".\" is not 1 to 253 characters".to_owned()),
    ];
    for (value, reason) in cases {
        assert_eq!(refused(parse_host_names(HOSTS, value)), msg(value, &reason));
    }
    let label = "a".repeat(63);
    let too_long = [label.as_str(); 4].join(".");
    assert!(parse_host_names(HOSTS, &too_long).is_err());
    assert!(parse_host_names(HOSTS, &format!("{}.com", "a".repeat(64))).is_err());
}

#[test]
fn dns1123() {
    assert!(is_dns1123_label("my-ns-1"));
    assert!(!is_dns1123_label("My-ns"));
    assert!(!is_dns1123_label("-ns"));
    assert!(!is_dns1123_label("ns-"));
    assert!(!is_dns1123_label(""));
    assert!(!is_dns1123_label("a.b"));
    assert!(!is_dns1123_label(&"a".repeat(64)));
    assert!(is_dns1123_subdomain("my.config-map.v1"));
    assert!(is_dns1123_subdomain(&"a".repeat(253)));
    assert!(!is_dns1123_subdomain(&"a".repeat(254)));
    assert!(!is_dns1123_subdomain("a..b"));
    assert!(!is_dns1123_subdomain("a_b"));
    assert!(!is_dns1123_subdomain("a."));
}
