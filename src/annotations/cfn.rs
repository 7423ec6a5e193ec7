//! CloudFormation values: template source, parameters, capabilities and
//! the outputs ConfigMap name.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::{quoted, AnnotationError};
use super::values::{is_dns1123_subdomain, ListRule};

/// CloudFormation's limit on an inline template (`TemplateBody`).
pub const TEMPLATE_BODY_MAX_BYTES: usize = 51_200;
/// CloudFormation's limit on parameters per template.
pub const MAX_PARAMETERS: usize = 200;
/// CloudFormation's limit on one parameter value.
pub const PARAMETER_VALUE_MAX_BYTES: usize = 4_096;
/// ConfigMap key read when `cfn.hawser.io/template-configmap` names none.
pub const DEFAULT_TEMPLATE_KEY: &str = "template";

/// Where a stack's template comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSource {
    /// `cfn.hawser.io/template`: the template text, unchanged, for
    /// `TemplateBody`.
    Inline(String),
    /// `cfn.hawser.io/template-configmap`: a ConfigMap in the object's
    /// namespace.
    ConfigMap(ConfigMapRef),
}

/// A key of a ConfigMap in the same namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMapRef {
    pub name: String,
    pub key: String,
}

const TEMPLATE_ALLOWED: &str = "a CloudFormation template in JSON or YAML (short-form tags such \
     as !Ref are fine) with a Resources section of at least one resource, at most 51,200 bytes \
     (CloudFormation's TemplateBody limit), e.g. \"Resources: {Queue: {Type: AWS::SQS::Queue}}\"";

/// Checks an inline template (`cfn.hawser.io/template`, or the content of
/// a template ConfigMap): at most 51,200 bytes, a JSON object or YAML
/// mapping, with a `Resources` mapping of at least one resource. Only the
/// shape is checked; CloudFormation validates the rest. Returns the text
/// unchanged.
pub fn parse_inline_template(key: &str, value: &str) -> Result<String, AnnotationError> {
    let err = |reason: String| AnnotationError::new(key, value, reason, TEMPLATE_ALLOWED);
    if value.len() > TEMPLATE_BODY_MAX_BYTES {
        return Err(err(format!(
            "{} bytes; CloudFormation accepts at most 51,200 bytes in a template body",
            value.len()
        )));
    }
    let document = parse_document(value).map_err(err)?;
    let Value::Object(top) = document else {
        return Err(err("not a JSON object or YAML mapping".to_owned()));
    };
    match top.get("Resources") {
        None => Err(err("no Resources section".to_owned())),
        Some(Value::Object(resources)) if !resources.is_empty() => Ok(value.to_owned()),
        Some(_) => Err(err(
            "Resources is not a mapping of at least one resource".to_owned()
        )),
    }
}

/// A template's resources as (logical id, type), by logical id; empty
/// when the text is not a template.
pub fn template_resources(text: &str) -> Vec<(String, String)> {
    let Ok(Value::Object(top)) = parse_document(text) else {
        return vec![];
    };
    let Some(Value::Object(resources)) = top.get("Resources") else {
        return vec![];
    };
    resources
        .iter()
        .map(|(id, r)| {
            let kind = r["Type"].as_str().unwrap_or("(no Type)");
            (id.clone(), kind.to_owned())
        })
        .collect()
}

fn parse_document(text: &str) -> Result<Value, String> {
    let json = if text.trim_start().starts_with('{') {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => return Ok(v),
            Err(e) => Some(format!("not valid JSON: {e}")),
        }
    } else {
        None
    };
    // Short-form tags (!Ref, !GetAtt ...) are dropped and their operand
    // kept, which is all a shape check needs. The template is at most
    // 51,200 bytes; the alias cap keeps an alias bomb that small too.
    let options = serde_saphyr::options! {
        alias_limits: serde_saphyr::alias_limits! { max_total_replayed_events: 20_000 },
    };
    serde_saphyr::from_str_with_options::<Value>(text, options).map_err(|e| {
        json.unwrap_or_else(|| {
            let first = e.to_string();
            let first = first.lines().next().unwrap_or_default();
            format!(
                "not valid YAML: {}",
                first.strip_prefix("error: ").unwrap_or(first)
            )
        })
    })
}

const CONFIGMAP_REF_ALLOWED: &str = "<configmap>[/<key>] naming a ConfigMap in the same namespace \
     (a DNS-1123 subdomain) and optionally its key (letters, digits, '-', '_', '.'; default \
     \"template\"), e.g. my-stack-template or my-stack-template/stack.yaml";

/// Parses `cfn.hawser.io/template-configmap: <name>[/<key>]`.
pub fn parse_template_configmap(key: &str, value: &str) -> Result<ConfigMapRef, AnnotationError> {
    let err = |reason: String| AnnotationError::new(key, value, reason, CONFIGMAP_REF_ALLOWED);
    let (name, cm_key) = match value.split_once('/') {
        Some((name, cm_key)) => (name, cm_key),
        None => (value, DEFAULT_TEMPLATE_KEY),
    };
    if !is_dns1123_subdomain(name) {
        return Err(err(format!(
            "ConfigMap name {} is not a DNS-1123 subdomain (lower-case letters, digits, \
             '-' and '.', at most 253)",
            quoted(name)
        )));
    }
    if !is_configmap_key(cm_key) {
        return Err(err(format!(
            "ConfigMap key {} is not 1 to 253 of letters, digits, '-', '_' and '.'",
            quoted(cm_key)
        )));
    }
    Ok(ConfigMapRef {
        name: name.to_owned(),
        key: cm_key.to_owned(),
    })
}

/// Whether `s` is a valid ConfigMap data key, as the API server checks it.
pub fn is_configmap_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._".contains(&c))
        && s != "."
        && !s.starts_with("..")
}

/// Parses `cfn.hawser.io/outputs-configmap`: a ConfigMap name.
pub fn parse_configmap_name(key: &str, value: &str) -> Result<String, AnnotationError> {
    if is_dns1123_subdomain(value) {
        return Ok(value.to_owned());
    }
    Err(AnnotationError::new(
        key,
        value,
        "not a DNS-1123 subdomain",
        "a ConfigMap name: lower-case letters, digits, '-' and '.', starting and ending with a \
         letter or digit, at most 253 characters, e.g. my-app-stack-outputs",
    ))
}

/// The outputs ConfigMap used when `cfn.hawser.io/outputs-configmap` is
/// absent: `<object>-stack-outputs`, the object name shortened if needed
/// to stay within 253 characters.
pub fn default_outputs_configmap(object_name: &str) -> String {
    const SUFFIX: &str = "-stack-outputs";
    let mut end = object_name.len().min(253 - SUFFIX.len());
    while !object_name.is_char_boundary(end) {
        end -= 1;
    }
    let base = object_name[..end].trim_end_matches(['-', '.']);
    format!("{base}{SUFFIX}")
}

const PARAMETERS_ALLOWED: &str = "a JSON object of at most 200 parameters whose names are 1 to \
     255 letters and digits and whose values are strings, numbers, booleans, or arrays of strings \
     and numbers for CommaDelimitedList parameters, e.g. \
     {\"InstanceType\":\"t3.small\",\"Subnets\":[\"subnet-0a1b2c3d\",\"subnet-4e5f6a7b\"]}";

/// Parses `cfn.hawser.io/parameters` into CloudFormation parameter values.
/// Numbers and booleans become their JSON text; arrays become a
/// comma-joined CommaDelimitedList value.
pub fn parse_parameters(
    key: &str,
    value: &str,
) -> Result<BTreeMap<String, String>, AnnotationError> {
    let err = |reason: String| AnnotationError::new(key, value, reason, PARAMETERS_ALLOWED);
    let object = match serde_json::from_str::<Value>(value) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Err(err("not a JSON object".to_owned())),
        Err(e) => return Err(err(format!("not valid JSON: {e}"))),
    };
    if object.len() > MAX_PARAMETERS {
        return Err(err(format!(
            "{} parameters; CloudFormation accepts at most 200",
            object.len()
        )));
    }
    let mut out = BTreeMap::new();
    for (name, v) in object {
        let valid_name =
            (1..=255).contains(&name.len()) && name.bytes().all(|c| c.is_ascii_alphanumeric());
        if !valid_name {
            return Err(err(format!(
                "parameter name {} is not 1 to 255 letters and digits",
                quoted(&name)
            )));
        }
        let text = parameter_value(&v).map_err(|what| err(format!("parameter {name:?} {what}")))?;
        if text.len() > PARAMETER_VALUE_MAX_BYTES {
            return Err(err(format!(
                "parameter {name:?} is {} bytes; CloudFormation accepts at most 4,096",
                text.len()
            )));
        }
        out.insert(name, text);
    }
    Ok(out)
}

fn parameter_value(v: &Value) -> Result<String, &'static str> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err("is null"),
        Value::Object(_) => Err("is an object"),
        Value::Array(items) => {
            let mut parts = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) if s.contains(',') => {
                        return Err("has a list element containing a comma")
                    }
                    Value::String(s) => parts.push(s.clone()),
                    Value::Number(n) => parts.push(n.to_string()),
                    _ => return Err("has a list element that is not a string or number"),
                }
            }
            Ok(parts.join(","))
        }
    }
}

/// A capability acknowledged on stack create and update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    Iam,
    NamedIam,
    AutoExpand,
}

impl Capability {
    pub const ALL: [Capability; 3] = [
        Capability::Iam,
        Capability::NamedIam,
        Capability::AutoExpand,
    ];

    /// The CloudFormation API name, e.g. `CAPABILITY_NAMED_IAM`.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Iam => "CAPABILITY_IAM",
            Capability::NamedIam => "CAPABILITY_NAMED_IAM",
            Capability::AutoExpand => "CAPABILITY_AUTO_EXPAND",
        }
    }
}

/// Parses `cfn.hawser.io/capabilities`: distinct capability names,
/// comma-separated.
pub fn parse_capabilities(key: &str, value: &str) -> Result<Vec<Capability>, AnnotationError> {
    let names = ListRule {
        key,
        nouns: "capabilities",
        max: Capability::ALL.len(),
        max_why: "",
        allowed: "CAPABILITY_IAM, CAPABILITY_NAMED_IAM and/or CAPABILITY_AUTO_EXPAND, \
                  comma-separated, each at most once, e.g. CAPABILITY_IAM,CAPABILITY_NAMED_IAM",
    }
    .parse(value, |item| {
        Capability::ALL
            .iter()
            .find(|c| c.as_str() == item)
            .map(|c| c.as_str().to_owned())
            .ok_or_else(|| format!("{} is not a CloudFormation capability", quoted(item)))
    })?;
    Ok(names
        .iter()
        .filter_map(|n| Capability::ALL.into_iter().find(|c| c.as_str() == n))
        .collect())
}
