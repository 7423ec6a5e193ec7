use super::super::*;
use super::refused;

const TEMPLATE: &str = "cfn.hawser.io/template";
const TEMPLATE_ALLOWED: &str = "allowed: a CloudFormation template in JSON or YAML (short-form \
     tags such as !Ref are fine) with a Resources section of at least one resource, at most \
     51,200 bytes (CloudFormation's TemplateBody limit), e.g. \"Resources: {Queue: {Type: \
     AWS::SQS::Queue}}\"";

const YAML_WITH_SHORT_FORMS: &str = "\
AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  Env: {Type: String}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub '${AWS::StackName}-jobs'
      DelaySeconds: !If [IsProd, 0, 5]
      Tags:
        - {Key: az, Value: !Select [0, !GetAZs '']}
  Policy:
    Type: AWS::SQS::QueuePolicy
    Properties:
      Queues: [!Ref Queue]
      PolicyDocument:
        Statement:
          - Resource: !GetAtt Queue.Arn
            Principal: {AWS: !Join ['', ['arn:aws:iam::', !Ref 'AWS::AccountId', ':root']]}
Outputs:
  QueueArn:
    Value: !GetAtt [Queue, Arn]
";

#[test]
fn inline_templates_accepted() {
    // Short-form tags must parse: they are how most YAML templates are written.
    assert_eq!(
        parse_inline_template(TEMPLATE, YAML_WITH_SHORT_FORMS).unwrap(),
        YAML_WITH_SHORT_FORMS
    );
    let json = r#"{"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}"#;
    assert_eq!(parse_inline_template(TEMPLATE, json).unwrap(), json);
    let flow = "{Resources: {Queue: {Type: AWS::SQS::Queue}}}";
    assert!(parse_inline_template(TEMPLATE, flow).is_ok());
    let padded = format!(
        "{YAML_WITH_SHORT_FORMS}#{}",
        " ".repeat(51_200 - 1 - YAML_WITH_SHORT_FORMS.len())
    );
    assert_eq!(padded.len(), TEMPLATE_BODY_MAX_BYTES);
    assert!(parse_inline_template(TEMPLATE, &padded).is_ok());
}

#[test]
fn inline_templates_refused() {
    let msg = |value: &str, reason: &str| {
        format!(
            "annotation {TEMPLATE}: invalid value {:?}: {reason}; {TEMPLATE_ALLOWED}",
            value
        )
    };
    let cases = [
        ("Outputs: {}", "no Resources section"),
        (
            "Resources: {}",
            "Resources is not a mapping of at least one resource",
        ),
        (
            "Resources: [a]",
            "Resources is not a mapping of at least one resource",
        ),
        ("- Resources", "not a JSON object or YAML mapping"),
        ("just text", "not a JSON object or YAML mapping"),
        (
            "{\"Resources\": {\"Q\": 1}",
            "not valid JSON: EOF while parsing an object at line 1 column 22",
        ),
    ];
    for (value, reason) in cases {
        assert_eq!(
            refused(parse_inline_template(TEMPLATE, value)),
            msg(value, reason)
        );
    }
    let err = parse_inline_template(TEMPLATE, "Resources: [1, 2").unwrap_err();
    assert!(
        err.reason.starts_with("not valid YAML: line 1 column 12"),
        "{}",
        err.reason
    );
    assert!(!err.reason.contains('\n'));

    let big = format!("{YAML_WITH_SHORT_FORMS}#{}", " ".repeat(51_200));
    assert_eq!(
        parse_inline_template(TEMPLATE, &big).unwrap_err().reason,
        format!(
            "{} bytes; CloudFormation accepts at most 51,200 bytes in a template body",
            big.len()
        )
    );
}

#[test]
fn alias_bomb_is_bounded() {
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (i, prev) in ('b'..='j').zip('a'..) {
        let refs = vec![format!("*{prev}"); 10].join(", ");
        bomb.push_str(&format!("{i}: &{i} [{refs}]\n"));
    }
    bomb.push_str("Resources: {Q: {Type: AWS::SQS::Queue}}\n");
    let err = parse_inline_template(TEMPLATE, &bomb).unwrap_err();
    assert!(
        err.reason.contains("alias replay limit exceeded"),
        "{}",
        err.reason
    );
}

const CM: &str = "cfn.hawser.io/template-configmap";
const CM_ALLOWED: &str = "allowed: <configmap>[/<key>] naming a ConfigMap in the same namespace \
     (a DNS-1123 subdomain) and optionally its key (letters, digits, '-', '_', '.'; default \
     \"template\"), e.g. my-stack-template or my-stack-template/stack.yaml";

#[test]
fn template_configmap() {
    assert_eq!(
        parse_template_configmap(CM, "my-stack-template").unwrap(),
        ConfigMapRef {
            name: "my-stack-template".into(),
            key: "template".into()
        }
    );
    assert_eq!(
        parse_template_configmap(CM, "stacks.v1/Stack_1.yaml").unwrap(),
        ConfigMapRef {
            name: "stacks.v1".into(),
            key: "Stack_1.yaml".into()
        }
    );
    let cases = [
        (
            "My-Template",
            "ConfigMap name \"My-Template\" is not a DNS-1123 subdomain (lower-case letters, \
             digits, '-' and '.', at most 253)",
        ),
        (
            "cm/a/b",
            "ConfigMap key \"a/b\" is not 1 to 253 of letters, digits, '-', '_' and '.'",
        ),
        (
            "cm/",
            "ConfigMap key \"\" is not 1 to 253 of letters, digits, '-', '_' and '.'",
        ),
        (
            "cm/..x",
            "ConfigMap key \"..x\" is not 1 to 253 of letters, digits, '-', '_' and '.'",
        ),
    ];
    for (value, reason) in cases {
        assert_eq!(
            refused(parse_template_configmap(CM, value)),
            format!("annotation {CM}: invalid value {value:?}: {reason}; {CM_ALLOWED}")
        );
    }
}

#[test]
fn outputs_configmap() {
    let key = "cfn.hawser.io/outputs-configmap";
    assert_eq!(
        parse_configmap_name(key, "app-outputs").unwrap(),
        "app-outputs"
    );
    assert_eq!(
        refused(parse_configmap_name(key, "App_Outputs")),
        "annotation cfn.hawser.io/outputs-configmap: invalid value \"App_Outputs\": not a \
         DNS-1123 subdomain; allowed: a ConfigMap name: lower-case letters, digits, '-' and '.', \
         starting and ending with a letter or digit, at most 253 characters, e.g. \
         my-app-stack-outputs"
    );
    assert_eq!(default_outputs_configmap("web"), "web-stack-outputs");
    let long = format!("{}-{}", "a".repeat(238), "b".repeat(14));
    let name = default_outputs_configmap(&long);
    assert_eq!(name, format!("{}-stack-outputs", "a".repeat(238)));
    assert!(is_dns1123_subdomain(&name));
}

const PARAMS: &str = "cfn.hawser.io/parameters";
const PARAMS_ALLOWED: &str = "allowed: a JSON object of at most 200 parameters whose names are 1 \
     to 255 letters and digits and whose values are strings, numbers, booleans, or arrays of \
     strings and numbers for CommaDelimitedList parameters, e.g. \
     {\"InstanceType\":\"t3.small\",\"Subnets\":[\"subnet-0a1b2c3d\",\"subnet-4e5f6a7b\"]}";

#[test]
fn parameters_accepted() {
    let parsed = parse_parameters(
        PARAMS,
        r#"{"InstanceType":"t3.small","Count":3,"Ratio":0.5,"Public":false,
            "Subnets":["subnet-0a1b2c3d","subnet-4e5f6a7b"],"Ports":[80,443],"Empty":[]}"#,
    )
    .unwrap();
    let expected: Vec<(&str, &str)> = vec![
        ("Count", "3"),
        ("Empty", ""),
        ("InstanceType", "t3.small"),
        ("Ports", "80,443"),
        ("Public", "false"),
        ("Ratio", "0.5"),
        ("Subnets", "subnet-0a1b2c3d,subnet-4e5f6a7b"),
    ];
    let got: Vec<(&str, &str)> = parsed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(got, expected);
    assert!(parse_parameters(PARAMS, "{}").unwrap().is_empty());
}

#[test]
fn parameters_refused() {
    let cases = [
        (r#"{"VpcId":null}"#, "parameter \"VpcId\" is null"),
        (r#"{"Tags":{"a":"b"}}"#, "parameter \"Tags\" is an object"),
        (
            r#"{"Flags":[true]}"#,
            "parameter \"Flags\" has a list element that is not a string or number",
        ),
        (
            r#"{"Cidrs":["10.0.0.0/8,172.16.0.0/12"]}"#,
            "parameter \"Cidrs\" has a list element containing a comma",
        ),
        (
            r#"{"my-param":"x"}"#,
            "parameter name \"my-param\" is not 1 to 255 letters and digits",
        ),
        (r#"["a"]"#, "not a JSON object"),
        (
            "{'a': 1}",
            "not valid JSON: key must be a string at line 1 column 2",
        ),
    ];
    for (value, reason) in cases {
        assert_eq!(
            refused(parse_parameters(PARAMS, value)),
            format!("annotation {PARAMS}: invalid value {value:?}: {reason}; {PARAMS_ALLOWED}")
        );
    }
    let many: Vec<String> = (0..201).map(|i| format!("\"P{i}\":1")).collect();
    let many = format!("{{{}}}", many.join(","));
    assert_eq!(
        parse_parameters(PARAMS, &many).unwrap_err().reason,
        "201 parameters; CloudFormation accepts at most 200"
    );
    let big = format!("{{\"Big\":\"{}\"}}", "x".repeat(4097));
    assert_eq!(
        parse_parameters(PARAMS, &big).unwrap_err().reason,
        "parameter \"Big\" is 4097 bytes; CloudFormation accepts at most 4,096"
    );
}

#[test]
fn capabilities() {
    let key = "cfn.hawser.io/capabilities";
    assert_eq!(
        parse_capabilities(key, "CAPABILITY_NAMED_IAM, CAPABILITY_IAM").unwrap(),
        [Capability::NamedIam, Capability::Iam]
    );
    assert_eq!(
        parse_capabilities(key, "CAPABILITY_AUTO_EXPAND").unwrap(),
        [Capability::AutoExpand]
    );
    let allowed = "allowed: CAPABILITY_IAM, CAPABILITY_NAMED_IAM and/or CAPABILITY_AUTO_EXPAND, \
                   comma-separated, each at most once, e.g. CAPABILITY_IAM,CAPABILITY_NAMED_IAM";
    assert_eq!(
        refused(parse_capabilities(key, "CAPABILITY_IAM,capability_iam")),
        format!(
            "annotation {key}: invalid value \"CAPABILITY_IAM,capability_iam\": \
             \"capability_iam\" is not a CloudFormation capability; {allowed}"
        )
    );
    assert_eq!(
        refused(parse_capabilities(key, "CAPABILITY_IAM,CAPABILITY_IAM")),
        format!(
            "annotation {key}: invalid value \"CAPABILITY_IAM,CAPABILITY_IAM\": CAPABILITY_IAM \
             is listed twice; {allowed}"
        )
    );
}
