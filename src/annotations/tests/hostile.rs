//! Property tests: every parser on hostile strings (arbitrary unicode,
//! control, bidi and zero-width characters, mutated valid values, values
//! up to 120 KB). None may panic; every refusal names its annotation key
//! and stays bounded, whatever the size of the value. Case counts and
//! timings are in RELIABILITY.md.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngSeed};

use super::super::keys;
use super::super::*;

/// Cases per property; the suite's budget is in RELIABILITY.md.
const PARSER_CASES: u32 = 2_000;
const SPEC_CASES: u32 = 1_000;

/// A fixed seed, so CI runs the same cases every time; set
/// `PROPTEST_RNG_SEED` to explore others.
fn config(cases: u32) -> Config {
    let mut config = Config::with_cases(cases);
    config.failure_persistence = None;
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x6861_7773_6572);
    }
    config
}

/// Valid (or nearly valid) values of every annotation, for mutation.
const SEEDS: &[&str] = &[
    "vpc-0a1b2c3d",
    "subnet-0a1b2c3d,subnet-0a1b2c3d4e5f67890",
    "sg-0a1b2c3d,sg-0A1B2C3D",
    "10.0.0.0/8,fd00::/8,192.168.1.1/16",
    "com.amazonaws.us-west-2.s3",
    "com.amazonaws.vpce.us-west-2.vpce-svc-0abc437c186123456",
    "cn.com.amazonaws.cn-north-1.s3",
    "aws.sagemaker.us-east-1.notebook",
    "us-east-1",
    "eusc-de-east-1",
    "us-isob-east-1",
    "arn:aws:iam::123456789012:role/team/my-role",
    "arn:aws-cn:iam::123456789012:role/r",
    "arn:aws-us-gov:iam::123456789012:role/a/b/c",
    "api.example.com 10.0.0.7 2001:db8::1",
    "ci:{{SessionName}}:{{AccountID}}",
    "team-a-developers,system:masters",
    "true",
    "restricted",
    "retain",
    "2024-06-01",
    "Resources: {Queue: {Type: AWS::SQS::Queue}}",
    "{\"Resources\":{\"Q\":{\"Type\":\"AWS::SQS::Queue\"}}}",
    "Resources:\n  Q:\n    Type: !Ref X\n    Properties: {A: !GetAtt B.Arn}\n",
    "a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\nResources: {Q: *c}\n",
    "my-stack-template/stack.yaml",
    "{\"InstanceType\":\"t3.small\",\"Subnets\":[\"subnet-0a1b2c3d\",1]}",
    "CAPABILITY_IAM,CAPABILITY_NAMED_IAM",
];

/// Characters that break parsers: separators, quotes, YAML and JSON
/// syntax, controls, bidi overrides, zero-width and look-alike letters.
const NASTY: &[char] = &[
    '\0',
    '\n',
    '\r',
    '\t',
    '\u{7f}',
    '\u{85}',
    '\u{a0}',
    '\u{200b}',
    '\u{200d}',
    '\u{202e}',
    '\u{2066}',
    '\u{feff}',
    '\u{fffd}',
    '\u{10ffff}',
    ',',
    ' ',
    '/',
    ':',
    '.',
    '-',
    '{',
    '}',
    '[',
    ']',
    '"',
    '\'',
    '\\',
    '&',
    '*',
    '!',
    '#',
    '|',
    '>',
    '%',
    '@',
    '\u{430}',
    '\u{ff0c}',
    'é',
    'ß',
    '\u{1f600}',
];

fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        2 => any::<char>(),
        3 => select(NASTY),
        2 => proptest::char::range('a', 'z'),
        1 => proptest::char::range('0', '9'),
    ]
}

/// A seed with a few characters inserted, replaced or removed.
fn mutated_seed() -> impl Strategy<Value = String> {
    (
        select(SEEDS),
        proptest::collection::vec((any::<usize>(), 0u8..3, hostile_char()), 0..4),
    )
        .prop_map(|(seed, edits)| {
            let mut chars: Vec<char> = seed.chars().collect();
            for (at, op, c) in edits {
                let at = at % (chars.len() + 1);
                match op {
                    0 => chars.insert(at, c),
                    1 if at < chars.len() => chars[at] = c,
                    _ if at < chars.len() => {
                        chars.remove(at);
                    }
                    _ => chars.push(c),
                }
            }
            chars.into_iter().collect()
        })
}

/// 1 KB to 120 KB: one seed or one nasty character, repeated.
fn huge() -> impl Strategy<Value = String> {
    let unit = prop_oneof![
        select(SEEDS).prop_map(str::to_owned),
        select(NASTY).prop_map(String::from),
        Just("a".to_owned()),
        Just("subnet-0a1b2c3d,".to_owned()),
    ];
    (unit, 1_000usize..120_000).prop_map(|(unit, bytes)| unit.repeat(bytes / unit.len() + 1))
}

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::collection::vec(hostile_char(), 0..64)
            .prop_map(|v| v.into_iter().collect::<String>()),
        4 => mutated_seed(),
        1 => huge(),
    ]
}

type Check = fn(&str, &str) -> Result<(), AnnotationError>;

/// Every public parser, under the key(s) it is used for.
const PARSERS: &[(&str, Check)] = &[
    (keys::VPCE_SERVICE_NAME, |k, v| {
        parse_vpce_service_name(k, v).map(drop)
    }),
    (keys::VPCE_VPC_ID, |k, v| parse_vpc_id(k, v).map(drop)),
    (keys::VPCE_SUBNET_IDS, |k, v| {
        parse_subnet_ids(k, v).map(drop)
    }),
    (keys::VPCE_SECURITY_GROUP_IDS, |k, v| {
        parse_security_group_ids(k, v).map(drop)
    }),
    (keys::VPCE_ALLOWED_CIDRS, |k, v| parse_cidrs(k, v).map(drop)),
    (keys::VPCE_PRIVATE_DNS, |k, v| parse_bool(k, v).map(drop)),
    (keys::AWS_REGION, |k, v| parse_region(k, v).map(drop)),
    (keys::IAM_ROLE_ARN, |k, v| parse_role_arn(k, v).map(drop)),
    (keys::AWS_ROLE_ARN, |k, v| parse_role_arn(k, v).map(drop)),
    (keys::ENV_HOST_NAMES, |k, v| {
        parse_host_names(k, v).map(drop)
    }),
    (keys::ROUTING_PUBLIC_HOSTS, |k, v| {
        normalize_host_names(k, v).map(drop)
    }),
    (keys::ENV_ROTATE_KEYS, |k, v| {
        parse_rotate_keys(k, v).map(drop)
    }),
    (keys::IAM_USERNAME, |k, v| {
        parse_iam_username(k, v).map(drop)
    }),
    (keys::IAM_GROUPS, |k, v| parse_iam_groups(k, v).map(drop)),
    (keys::SECURITY_PROFILE, |k, v| {
        parse_security_profile(k, v).map(drop)
    }),
    (keys::DELETION_POLICY, |k, v| {
        parse_deletion_policy(k, v).map(drop)
    }),
    (keys::CFN_TEMPLATE, |k, v| {
        parse_inline_template(k, v).map(drop)
    }),
    (keys::CFN_TEMPLATE_CONFIGMAP, |k, v| {
        parse_template_configmap(k, v).map(drop)
    }),
    (keys::CFN_PARAMETERS, |k, v| {
        parse_parameters(k, v).map(drop)
    }),
    (keys::CFN_CAPABILITIES, |k, v| {
        parse_capabilities(k, v).map(drop)
    }),
    (keys::CFN_OUTPUTS_CONFIGMAP, |k, v| {
        parse_configmap_name(k, v).map(drop)
    }),
];

/// Longest refusal message accepted: the value is echoed cut to 120
/// characters and each quoted part of it to 130, so a refusal is a few
/// hundred bytes however large the value (escaping can make a character
/// up to 10 bytes: `\u{10ffff}`).
const MAX_MESSAGE_BYTES: usize = 4_096;

fn check_refusal(e: &AnnotationError, key: &str) -> Result<(), TestCaseError> {
    let message = e.to_string();
    prop_assert_eq!(&e.key, key);
    prop_assert!(
        message.starts_with(&format!("annotation {key}: invalid value ")),
        "{}",
        message
    );
    prop_assert!(!e.reason.is_empty() && !e.allowed.is_empty(), "{}", message);
    prop_assert!(e.value.chars().count() <= 121, "value echoed whole");
    prop_assert!(
        message.len() <= MAX_MESSAGE_BYTES,
        "a {} byte refusal: {}…",
        message.len(),
        message.chars().take(300).collect::<String>()
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(PARSER_CASES))]

    #[test]
    fn every_parser_survives_hostile_strings(value in hostile_string()) {
        for (key, parse) in PARSERS {
            if let Err(e) = parse(key, &value) {
                check_refusal(&e, key)?;
            }
        }
        // The predicates and defaults have no error to check, only panics.
        let _ = (is_region(&value), is_dns1123_label(&value), is_dns1123_subdomain(&value));
        let _ = (is_configmap_key(&value), is_system_group(&value), is_system_username(&value));
        prop_assert!(default_outputs_configmap(&value).len() <= 253 + "-stack-outputs".len());
        let _ = default_iam_username(&value);
    }
}

/// Up to 63 characters: the apiserver refuses a longer annotation name
/// (and a prefix that is not a DNS subdomain) before any webhook sees it.
fn short_string() -> impl Strategy<Value = String> {
    proptest::collection::vec(hostile_char(), 0..64).prop_map(|v| v.into_iter().collect())
}

/// Keys for the spec collectors: every input and output key, unknown keys
/// in hawser's families, a key outside them, and arbitrary short ones.
fn hostile_key() -> impl Strategy<Value = String> {
    let mut known: Vec<String> = keys::inputs().map(|(k, _)| k.to_string()).collect();
    known.extend(
        [
            keys::VPCE_STATE,
            keys::VPCE_ENDPOINT_ID,
            keys::CFN_STACK_ID,
            keys::ENV_ROTATED_KEYS,
            "vpce.hawser.io/unknown",
            "hawser.io/x",
            "evil.hawser.io/x",
            "example.com/unrelated",
        ]
        .map(str::to_owned),
    );
    prop_oneof![
        6 => select(known),
        1 => (select(keys::FAMILIES), short_string())
            .prop_map(|(family, name)| format!("{family}/{name}")),
        1 => short_string(),
    ]
}

proptest! {
    #![proptest_config(config(SPEC_CASES))]

    #[test]
    fn every_spec_collector_survives_hostile_annotations(
        map in proptest::collection::btree_map(hostile_key(), hostile_string(), 0..8)
    ) {
        let errors = [
            VpceSpec::from_annotations(&map).err(),
            NamespaceSpec::from_annotations(&map).err(),
            DeploymentSpec::from_annotations(&map).err(),
            Some(check_annotations(ObjectKind::Service, &map)),
            Some(check_annotations(ObjectKind::Namespace, &map)),
            Some(check_annotations(ObjectKind::Deployment, &map)),
        ];
        for e in errors.into_iter().flatten().flatten() {
            prop_assert!(map.contains_key(&e.key), "refusal for a key not set: {}", e);
            check_refusal(&e, &e.key.clone())?;
        }
    }
}

/// The 100 KB case the corpus also sends through the webhook, with the
/// exact message: the value cut to 120 characters, the item to 130.
#[test]
fn a_100_kb_host_name_is_refused_with_a_bounded_message() {
    let value = "a".repeat(100 * 1024);
    let e = parse_host_names(keys::ENV_HOST_NAMES, &value).unwrap_err();
    let (a120, a130) = ("a".repeat(120), "a".repeat(130));
    assert_eq!(
        e.to_string(),
        format!(
            "annotation env.hawser.io/host-names: invalid value \"{a120}…\": \"{a130}\"… is not \
             1 to 253 characters; allowed: host names (RFC 1123, e.g. api.example.com) or \
             IPv4/IPv6 addresses, separated by spaces, e.g. \"api.example.com 10.0.0.7 \
             2001:db8::1\""
        )
    );
}

#[test]
fn the_spec_collectors_take_a_map_of_every_key() {
    // Every input key at once, each with a value no parser accepts.
    let map: BTreeMap<String, String> = keys::inputs()
        .map(|(k, _)| (k.to_string(), "\u{202e}x\u{200b}".to_owned()))
        .collect();
    for kind in [
        ObjectKind::Service,
        ObjectKind::Namespace,
        ObjectKind::Deployment,
    ] {
        let errors = check_annotations(kind, &map);
        assert!(!errors.is_empty(), "{kind:?}");
        for e in errors {
            assert!(e.to_string().contains("\\u{202e}x\\u{200b}"), "{e}");
        }
    }
}
