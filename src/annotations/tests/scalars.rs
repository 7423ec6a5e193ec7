use super::super::*;
use super::refused;

#[test]
fn booleans() {
    assert!(parse_bool("vpce.hawser.io/private-dns", "true").unwrap());
    assert!(!parse_bool("vpce.hawser.io/private-dns", "false").unwrap());
    for bad in ["True", "yes", "1", "", " true"] {
        assert!(parse_bool("k", bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        refused(parse_bool("vpce.hawser.io/private-dns", "yes")),
        "annotation vpce.hawser.io/private-dns: invalid value \"yes\": not a boolean; allowed: \
         \"true\" or \"false\", exactly, lower-case (quote it in YAML so it stays a string)"
    );
}

#[test]
fn deletion_policy() {
    let key = "hawser.io/deletion-policy";
    assert_eq!(
        parse_deletion_policy(key, "retain").unwrap(),
        DeletionPolicy::Retain
    );
    assert_eq!(
        parse_deletion_policy(key, "delete").unwrap(),
        DeletionPolicy::Delete
    );
    assert_eq!(DeletionPolicy::default(), DeletionPolicy::Delete);
    assert_eq!(
        refused(parse_deletion_policy(key, "Retain")),
        "annotation hawser.io/deletion-policy: invalid value \"Retain\": not a deletion policy; \
         allowed: \"retain\" (keep AWS resources when the object is deleted) or \"delete\" (the \
         default)"
    );
}

#[test]
fn security_profile() {
    let key = "security.hawser.io/profile";
    assert_eq!(
        parse_security_profile(key, "restricted").unwrap(),
        SecurityProfile::Restricted
    );
    assert_eq!(
        parse_security_profile(key, "baseline").unwrap(),
        SecurityProfile::Baseline
    );
    assert_eq!(
        refused(parse_security_profile(key, "privileged")),
        "annotation security.hawser.io/profile: invalid value \"privileged\": not a security \
         profile; allowed: \"restricted\" (drop all capabilities, no privilege escalation, \
         RuntimeDefault seccomp, run as non-root) or \"baseline\" (no privileged containers \
         only); privileged containers are allowed per namespace with \
         security.hawser.io/allow-privileged: \"true\""
    );
    use SecurityProfile::{Baseline, Restricted};
    assert_eq!(SecurityProfile::effective(None, None), Baseline);
    assert_eq!(
        SecurityProfile::effective(Some(Restricted), Some(Baseline)),
        Restricted
    );
    assert_eq!(
        SecurityProfile::effective(None, Some(Restricted)),
        Restricted
    );
    assert_eq!(SecurityProfile::effective(Some(Baseline), None), Baseline);
}

#[test]
fn rotate_keys() {
    let key = "env.hawser.io/rotate-keys";
    assert_eq!(parse_rotate_keys(key, "2024-06-01").unwrap(), "2024-06-01");
    assert!(parse_rotate_keys(key, &"x".repeat(253)).is_ok());
    let allowed = "allowed: any non-empty string of at most 253 characters, e.g. a date such as \
                   2024-06-01; changing it rotates the routing keys once";
    assert_eq!(
        refused(parse_rotate_keys(key, "")),
        format!("annotation env.hawser.io/rotate-keys: invalid value \"\": empty; {allowed}")
    );
    let err = parse_rotate_keys(key, &"x".repeat(254)).unwrap_err();
    assert_eq!(err.reason, "254 characters long");
    assert_eq!(err.value, format!("{}…", "x".repeat(120)));
}

const USER: &str = "iam.hawser.io/username";
const USER_ALLOWED: &str = "allowed: 1 to 128 characters without whitespace or commas, \
     optionally using {{SessionName}}, {{SessionNameRaw}} or {{AccountID}}, e.g. \
     ci:{{SessionName}}";

#[test]
fn iam_username() {
    for ok in [
        "ci",
        "ci:{{SessionName}}",
        "acct-{{AccountID}}:{{SessionNameRaw}}",
        "{{SessionName}}{{AccountID}}",
    ] {
        assert_eq!(parse_iam_username(USER, ok).unwrap(), ok);
    }
    assert_eq!(
        default_iam_username("team-a"),
        "hawser:team-a:{{SessionName}}"
    );
    assert!(parse_iam_username(USER, &default_iam_username("team-a")).is_ok());
    let cases = [
        ("", "empty".to_owned()),
        ("a b", "contains whitespace".to_owned()),
        ("a,b", "contains a comma".to_owned()),
        (
            "node:{{EC2PrivateDNSName}}",
            "unknown template {{EC2PrivateDNSName}}".to_owned(),
        ),
        (
            "a{{SessionName",
            "\"{{\" without a closing \"}}\"".to_owned(),
        ),
        ("a}}", "\"}}\" without an opening \"{{\"".to_owned()),
    ];
    for (value, reason) in cases {
        assert_eq!(
            refused(parse_iam_username(USER, value)),
            format!("annotation {USER}: invalid value {value:?}: {reason}; {USER_ALLOWED}")
        );
    }
    assert_eq!(
        parse_iam_username(USER, &"u".repeat(129))
            .unwrap_err()
            .reason,
        "129 characters long"
    );
}

const GROUPS: &str = "iam.hawser.io/groups";

#[test]
fn iam_groups() {
    assert_eq!(
        parse_iam_groups(GROUPS, "team-a-developers, system:masters").unwrap(),
        ["team-a-developers", "system:masters"]
    );
    assert!(is_system_group("system:masters"));
    assert!(!is_system_group("team:system:x"));
    assert_eq!(
        refused(parse_iam_groups(GROUPS, "devs,devs")),
        "annotation iam.hawser.io/groups: invalid value \"devs,devs\": devs is listed twice; \
         allowed: 1 to 20 distinct group names, comma-separated, each 1 to 128 characters without \
         whitespace, e.g. team-a-developers,team-a-viewers"
    );
    assert_eq!(
        parse_iam_groups(GROUPS, "team a").unwrap_err().reason,
        "group \"team a\" contains whitespace"
    );
    let long = "g".repeat(129);
    assert_eq!(
        parse_iam_groups(GROUPS, &long).unwrap_err().reason,
        format!("group {long:?} is 129 characters long")
    );
    let many: Vec<String> = (0..21).map(|i| format!("g{i}")).collect();
    assert_eq!(
        parse_iam_groups(GROUPS, &many.join(","))
            .unwrap_err()
            .reason,
        "21 groups; at most 20"
    );
}
