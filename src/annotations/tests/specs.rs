use super::super::*;
use super::annotations;

fn messages(errors: Vec<AnnotationError>) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

#[test]
fn service_without_trigger() {
    let ann = annotations(&[
        ("app.kubernetes.io/name", "web"),
        ("vpce.hawser.io/state", "Available"),
        ("example.com/hawser.io", "x"),
    ]);
    assert_eq!(VpceSpec::from_annotations(&ann).unwrap(), None);
    assert!(check_annotations(ObjectKind::Service, &ann).is_empty());

    let ann = annotations(&[
        ("vpce.hawser.io/private-dns", "true"),
        ("hawser.io/deletion-policy", "retain"),
    ]);
    assert_eq!(
        messages(VpceSpec::from_annotations(&ann).unwrap_err()),
        [
            "annotation hawser.io/deletion-policy: invalid value \"retain\": has no effect without \
             vpce.hawser.io/service-name; allowed: set vpce.hawser.io/service-name as well, or \
             remove hawser.io/deletion-policy",
            "annotation vpce.hawser.io/private-dns: invalid value \"true\": has no effect without \
             vpce.hawser.io/service-name; allowed: set vpce.hawser.io/service-name as well, or \
             remove vpce.hawser.io/private-dns",
        ]
    );
}

#[test]
fn service_defaults_and_full() {
    let ann = annotations(&[("vpce.hawser.io/service-name", "com.amazonaws.us-west-2.s3")]);
    assert_eq!(
        VpceSpec::from_annotations(&ann).unwrap(),
        Some(VpceSpec {
            service_name: "com.amazonaws.us-west-2.s3".into(),
            vpc_id: None,
            subnet_ids: vec![],
            security_groups: SecurityGroups::Generated {
                allowed_cidrs: vec![
                    "10.0.0.0/8".into(),
                    "172.16.0.0/12".into(),
                    "192.168.0.0/16".into()
                ]
            },
            private_dns: false,
            region: None,
            deletion_policy: DeletionPolicy::Delete,
            plan_only: false,
        })
    );
    let ann = annotations(&[
        (
            "vpce.hawser.io/service-name",
            "com.amazonaws.vpce.us-west-2.vpce-svc-0abc437c186123456",
        ),
        ("vpce.hawser.io/vpc-id", "vpc-0a1b2c3d"),
        (
            "vpce.hawser.io/subnet-ids",
            "subnet-0a1b2c3d,subnet-1a1b2c3d",
        ),
        ("vpce.hawser.io/security-group-ids", "sg-0a1b2c3d"),
        ("vpce.hawser.io/private-dns", "true"),
        ("vpce.hawser.io/endpoint-id", "vpce-whatever"),
        ("aws.hawser.io/region", "us-west-2"),
        ("hawser.io/deletion-policy", "retain"),
    ]);
    let spec = VpceSpec::from_annotations(&ann).unwrap().unwrap();
    assert_eq!(spec.vpc_id.as_deref(), Some("vpc-0a1b2c3d"));
    assert_eq!(spec.subnet_ids, ["subnet-0a1b2c3d", "subnet-1a1b2c3d"]);
    assert_eq!(
        spec.security_groups,
        SecurityGroups::Provided(vec!["sg-0a1b2c3d".into()])
    );
    assert!(spec.private_dns);
    assert_eq!(spec.region.as_deref(), Some("us-west-2"));
    assert_eq!(spec.deletion_policy, DeletionPolicy::Retain);
}

#[test]
fn service_collects_every_error() {
    let ann = annotations(&[
        ("vpce.hawser.io/service-name", "s3"),
        ("vpce.hawser.io/vpc-id", "vpc-12"),
        ("vpce.hawser.io/subnet-id", "subnet-0a1b2c3d"),
        ("vpce.hawser.io/security-group-ids", "sg-0a1b2c3d"),
        ("vpce.hawser.io/allowed-cidrs", "10.0.0.0/8"),
        ("env.hawser.io/host-names", "a.example.com"),
        ("acme.hawser.io/x", "y"),
    ]);
    let errors = VpceSpec::from_annotations(&ann).unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "acme.hawser.io/x",
            "env.hawser.io/host-names",
            "vpce.hawser.io/allowed-cidrs",
            "vpce.hawser.io/service-name",
            "vpce.hawser.io/subnet-id",
            "vpce.hawser.io/vpc-id",
        ]
    );
    let text = messages(errors);
    assert_eq!(
        text[0],
        "annotation acme.hawser.io/x: invalid value \"y\": acme.hawser.io is not a hawser \
         annotation prefix; allowed: keys under vpce.hawser.io, env.hawser.io, iam.hawser.io, \
         aws.hawser.io, security.hawser.io, routing.hawser.io, cfn.hawser.io, custom-resource.hawser.io, hawser.io"
    );
    assert_eq!(
        text[1],
        "annotation env.hawser.io/host-names: invalid value \"a.example.com\": not used on a \
         Service; it belongs on a Namespace; allowed: remove it from the Service, or set it on a \
         Namespace"
    );
    assert_eq!(
        text[2],
        "annotation vpce.hawser.io/allowed-cidrs: invalid value \"10.0.0.0/8\": only used for a \
         generated security group, and vpce.hawser.io/security-group-ids provides the groups; \
         allowed: remove vpce.hawser.io/allowed-cidrs, or remove \
         vpce.hawser.io/security-group-ids to let hawser generate the group"
    );
    assert_eq!(
        text[4],
        "annotation vpce.hawser.io/subnet-id: invalid value \"subnet-0a1b2c3d\": unknown \
         vpce.hawser.io annotation; allowed: one of vpce.hawser.io/service-name, \
         vpce.hawser.io/vpc-id, vpce.hawser.io/subnet-ids, vpce.hawser.io/security-group-ids, \
         vpce.hawser.io/allowed-cidrs, vpce.hawser.io/private-dns"
    );
    assert_eq!(check_annotations(ObjectKind::Service, &ann).len(), 6);
}

#[test]
fn namespace_defaults_and_full() {
    assert_eq!(
        NamespaceSpec::from_annotations(&annotations(&[])).unwrap(),
        NamespaceSpec::default()
    );
    let ann = annotations(&[
        (
            "env.hawser.io/host-names",
            "API.example.com api.example.com 10.0.0.1",
        ),
        ("env.hawser.io/routing-secret", "true"),
        ("env.hawser.io/rotate-keys", "2024-06-01"),
        ("env.hawser.io/rotated-keys", "2024-01-01"),
        (
            "iam.hawser.io/role-arn",
            "arn:aws:iam::123456789012:role/team-a",
        ),
        ("iam.hawser.io/groups", "team-a-devs"),
        (
            "aws.hawser.io/role-arn",
            "arn:aws:iam::210987654321:role/hawser",
        ),
        ("aws.hawser.io/region", "eu-west-1"),
        ("security.hawser.io/allow-privileged", "true"),
        ("security.hawser.io/profile", "restricted"),
        ("cfn.hawser.io/template-configmap", "ns-stack"),
        ("cfn.hawser.io/capabilities", "CAPABILITY_IAM"),
        ("hawser.io/deletion-policy", "retain"),
    ]);
    let spec = NamespaceSpec::from_annotations(&ann).unwrap();
    assert_eq!(
        spec.host_names,
        Some(vec!["api.example.com".into(), "10.0.0.1".into()])
    );
    assert!(spec.routing_secret);
    assert_eq!(spec.rotate_keys.as_deref(), Some("2024-06-01"));
    let iam = spec.iam.unwrap();
    assert_eq!(iam.role_arn.name, "team-a");
    assert_eq!(iam.username, None);
    assert_eq!(iam.groups, ["team-a-devs"]);
    assert_eq!(spec.aws_role_arn.unwrap().account_id, "210987654321");
    assert_eq!(spec.region.as_deref(), Some("eu-west-1"));
    assert!(spec.allow_privileged);
    assert_eq!(spec.profile, Some(SecurityProfile::Restricted));
    assert_eq!(spec.deletion_policy, DeletionPolicy::Retain);
    let stack = spec.stack.unwrap();
    assert_eq!(
        stack.template,
        TemplateSource::ConfigMap(ConfigMapRef {
            name: "ns-stack".into(),
            key: "template".into()
        })
    );
    assert_eq!(stack.capabilities, [Capability::Iam]);
    assert!(stack.parameters.is_empty());
    assert_eq!(
        stack.outputs_configmap_name("team-a"),
        "team-a-stack-outputs"
    );
}

#[test]
fn namespace_dependents_without_their_trigger() {
    let ann = annotations(&[
        ("env.hawser.io/rotate-keys", "1"),
        ("iam.hawser.io/username", "ci"),
        ("iam.hawser.io/groups", "devs"),
        ("cfn.hawser.io/parameters", "{}"),
        ("cfn.hawser.io/outputs-configmap", "out"),
        ("vpce.hawser.io/service-name", "com.amazonaws.us-west-2.s3"),
        ("routing.hawser.io/inject-keys", "true"),
    ]);
    let errors = NamespaceSpec::from_annotations(&ann).unwrap_err();
    let reasons: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.key.as_str(), e.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "cfn.hawser.io/outputs-configmap",
                "has no effect without cfn.hawser.io/template or cfn.hawser.io/template-configmap"
            ),
            (
                "cfn.hawser.io/parameters",
                "has no effect without cfn.hawser.io/template or cfn.hawser.io/template-configmap"
            ),
            (
                "env.hawser.io/rotate-keys",
                "has no effect without env.hawser.io/routing-secret: \"true\""
            ),
            (
                "iam.hawser.io/groups",
                "has no effect without iam.hawser.io/role-arn"
            ),
            (
                "iam.hawser.io/username",
                "has no effect without iam.hawser.io/role-arn"
            ),
            (
                "routing.hawser.io/inject-keys",
                "not used on a Namespace; it belongs on a Deployment"
            ),
            (
                "vpce.hawser.io/service-name",
                "not used on a Namespace; it belongs on a Service"
            ),
        ]
    );
}

#[test]
fn stack_with_two_templates() {
    let ann = annotations(&[
        (
            "cfn.hawser.io/template",
            "Resources: {Q: {Type: AWS::SQS::Queue}}",
        ),
        ("cfn.hawser.io/template-configmap", "stack"),
    ]);
    assert_eq!(
        messages(NamespaceSpec::from_annotations(&ann).unwrap_err()),
        [
            "annotation cfn.hawser.io/template-configmap: invalid value \"stack\": \
          cfn.hawser.io/template is set too; a stack has one template; allowed: either \
          cfn.hawser.io/template or cfn.hawser.io/template-configmap, not both"
        ]
    );
}

#[test]
fn deployment_defaults_and_full() {
    assert_eq!(
        DeploymentSpec::from_annotations(&annotations(&[])).unwrap(),
        DeploymentSpec::default()
    );
    let template = "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n";
    let ann = annotations(&[
        ("routing.hawser.io/public-hosts", "Web.example.com"),
        ("routing.hawser.io/private-hosts", "web.internal 10.0.0.9"),
        ("routing.hawser.io/inject-keys", "true"),
        ("cfn.hawser.io/template", template),
        ("cfn.hawser.io/parameters", r#"{"Env":"prod"}"#),
        ("cfn.hawser.io/outputs-configmap", "web-out"),
        ("cfn.hawser.io/inject-outputs", "true"),
        ("cfn.hawser.io/stack-status", "CREATE_COMPLETE"),
        ("security.hawser.io/profile", "baseline"),
    ]);
    let spec = DeploymentSpec::from_annotations(&ann).unwrap();
    assert_eq!(spec.public_hosts, Some(vec!["web.example.com".into()]));
    assert_eq!(
        spec.private_hosts,
        Some(vec!["web.internal".into(), "10.0.0.9".into()])
    );
    assert!(spec.inject_keys);
    assert!(spec.inject_outputs);
    assert_eq!(spec.profile, Some(SecurityProfile::Baseline));
    let stack = spec.stack.unwrap();
    assert_eq!(stack.template, TemplateSource::Inline(template.into()));
    assert_eq!(stack.parameters["Env"], "prod");
    assert_eq!(stack.outputs_configmap_name("web"), "web-out");
}

#[test]
fn deployment_errors() {
    let ann = annotations(&[
        ("cfn.hawser.io/inject-outputs", "true"),
        ("security.hawser.io/allow-privileged", "true"),
        ("routing.hawser.io/public-hosts", ""),
        ("hawser.io/deletion-policy", "keep"),
    ]);
    assert_eq!(
        messages(DeploymentSpec::from_annotations(&ann).unwrap_err()),
        [
            "annotation cfn.hawser.io/inject-outputs: invalid value \"true\": has no effect \
             without cfn.hawser.io/template or cfn.hawser.io/template-configmap on this \
             Deployment; allowed: set cfn.hawser.io/template or cfn.hawser.io/template-configmap \
             on this Deployment as well, or remove cfn.hawser.io/inject-outputs",
            "annotation hawser.io/deletion-policy: invalid value \"keep\": not a deletion policy; \
             allowed: \"retain\" (keep AWS resources when the object is deleted) or \"delete\" \
             (the default)",
            "annotation routing.hawser.io/public-hosts: invalid value \"\": no host names; \
             allowed: host names (RFC 1123, e.g. api.example.com) or IPv4/IPv6 addresses, \
             separated by spaces, e.g. \"api.example.com 10.0.0.7 2001:db8::1\"",
            "annotation security.hawser.io/allow-privileged: invalid value \"true\": not used on \
             a Deployment; it belongs on a Namespace; allowed: remove it from the Deployment, or \
             set it on a Namespace",
        ]
    );
    // `false` needs no stack.
    let ann = annotations(&[("cfn.hawser.io/inject-outputs", "false")]);
    assert!(DeploymentSpec::from_annotations(&ann).is_ok());
}

#[test]
fn keys_are_consistent() {
    use super::super::keys::*;
    for key in output_keys() {
        assert!(
            hawser_family(key).is_some_and(|f| FAMILIES.contains(&f)),
            "{key}"
        );
        assert!(!inputs().any(|(k, _)| k == key), "{key}");
    }
    for (key, kinds) in inputs() {
        assert!(
            hawser_family(key).is_some_and(|f| FAMILIES.contains(&f)),
            "{key}"
        );
        assert!(!kinds.is_empty());
    }
    assert_eq!(VPCE_SERVICE_NAME, "vpce.hawser.io/service-name");
    assert_eq!(SECURITY_PROFILE, "security.hawser.io/profile");
    assert_eq!(VPCE_FINALIZER, "vpce.hawser.io/cleanup");
    assert!(is_output(ENV_ROTATED_KEYS));
    assert_eq!(
        hawser_family("hawser.io/deletion-policy"),
        Some("hawser.io")
    );
    assert_eq!(hawser_family("nothawser.io/x"), None);
    assert_eq!(hawser_family("example.com/hawser.io"), None);
    assert_eq!(input_keys(ObjectKind::Service).count(), 9);
    let err = AnnotationError::new("k", "v", "r", "a");
    assert_eq!(err.category(), "invalid_annotation");
}

#[test]
fn odd_input_never_panics() {
    let odd = [
        "",
        " ",
        ",",
        "/",
        "//",
        "/x/",
        "é",
        "ü.example.com",
        "{{",
        "}}",
        "{{}}",
        ":",
        ":::::",
        "arn:aws:iam::123456789012:role",
        "arn:aws:iam::123456789012:role/",
        "a/ b",
        "\u{0}",
        "[",
        "{",
        "-",
        ".",
        "..",
        "-.-",
        "1.2.3.4/",
        "::/",
        "cn.com.amazonaws.",
        "aws.sagemaker.",
        "com.amazonaws.vpce.",
        "eusc-",
        "%",
        "\"",
        "\\",
    ];
    let key = "k";
    for value in odd {
        let long = value.repeat(300);
        for v in [value, long.as_str()] {
            let _ = parse_vpc_id(key, v);
            let _ = parse_subnet_ids(key, v);
            let _ = parse_security_group_ids(key, v);
            let _ = parse_vpce_service_name(key, v);
            let _ = parse_region(key, v);
            let _ = parse_role_arn(key, v);
            let _ = parse_cidrs(key, v);
            let _ = parse_host_names(key, v);
            let _ = parse_iam_username(key, v);
            let _ = parse_iam_groups(key, v);
            let _ = parse_parameters(key, v);
            let _ = parse_capabilities(key, v);
            let _ = parse_inline_template(key, v);
            let _ = parse_template_configmap(key, v);
            let _ = parse_configmap_name(key, v);
            let _ = parse_rotate_keys(key, v);
            assert!(default_outputs_configmap(v).len() <= 253);
            for k in super::super::keys::inputs().map(|(k, _)| k) {
                let ann = annotations(&[(k, v)]);
                for kind in [
                    ObjectKind::Service,
                    ObjectKind::Namespace,
                    ObjectKind::Deployment,
                ] {
                    let _ = check_annotations(kind, &ann);
                }
            }
        }
    }
}
