//! What a pass reads besides the object's annotations: the credentials
//! and region of its stack (from its namespace) and the template text
//! (inline, or from a ConfigMap).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{core::PartialObjectMeta, Api, ResourceExt};

use super::error::{Error, Failure};
use super::kind::StackObject;
use super::Context;
use crate::annotations::{
    keys::{AWS_REGION, AWS_ROLE_ARN, CFN_TEMPLATE_CONFIGMAP},
    parse_inline_template, parse_region, parse_role_arn, ObjectKind, TemplateSource,
};
use crate::aws::{CfnProvider, Scope};

/// The credentials and region of an object's stack: its namespace's
/// `aws.hawser.io/region` and `aws.hawser.io/role-arn`, else hawser's own
/// identity in the default region. Unreadable values fall back too (the
/// webhook refuses them first).
// merged with controller::scope at integration
fn stack_scope(namespace_annotations: &BTreeMap<String, String>, default_region: &str) -> Scope {
    let ann = namespace_annotations;
    Scope {
        region: ann
            .get(AWS_REGION)
            .and_then(|v| parse_region(AWS_REGION, v).ok())
            .unwrap_or_else(|| default_region.to_owned()),
        role_arn: ann
            .get(AWS_ROLE_ARN)
            .and_then(|v| parse_role_arn(AWS_ROLE_ARN, v).ok())
            .map(|arn| arn.to_string()),
    }
}

pub async fn scope_of<K: StackObject, P: CfnProvider>(
    obj: &PartialObjectMeta<K>,
    ctx: &Context<P>,
) -> Result<Scope, Error> {
    let ns_annotations = if K::KIND == ObjectKind::Namespace {
        obj.annotations().clone()
    } else {
        let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
        namespaces
            .get_metadata(&K::home(obj))
            .await?
            .metadata
            .annotations
            .unwrap_or_default()
    };
    Ok(stack_scope(&ns_annotations, &ctx.settings.default_region))
}

/// The template text, from the annotation or the ConfigMap it names; a
/// missing ConfigMap or key, or content that is not a template, is a
/// failure to report.
pub async fn template<P: CfnProvider>(
    ctx: &Context<P>,
    namespace: &str,
    source: &TemplateSource,
) -> Result<Result<String, Failure>, Error> {
    let reference = match source {
        TemplateSource::Inline(body) => return Ok(Ok(body.clone())),
        TemplateSource::ConfigMap(r) => r,
    };
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
    let Some(cm) = api.get_opt(&reference.name).await? else {
        return Ok(Err(Failure::Template(format!(
            "{CFN_TEMPLATE_CONFIGMAP}: ConfigMap {namespace}/{} does not exist; create it with \
             the template under key {:?}",
            reference.name, reference.key
        ))));
    };
    let Some(body) = cm.data.as_ref().and_then(|d| d.get(&reference.key)) else {
        return Ok(Err(Failure::Template(format!(
            "{CFN_TEMPLATE_CONFIGMAP}: ConfigMap {namespace}/{} has no key {:?} (it has: {})",
            reference.name,
            reference.key,
            cm.data
                .as_ref()
                .map(|d| d.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        ))));
    };
    let key = format!(
        "{CFN_TEMPLATE_CONFIGMAP} ({}/{})",
        reference.name, reference.key
    );
    Ok(parse_inline_template(&key, body).map_err(|e| Failure::Template(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_runs_in_its_namespaces_region_and_role() {
        let role = "arn:aws:iam::111122223333:role/team-a";
        let ann = BTreeMap::from([
            (AWS_REGION.to_owned(), "eu-west-1".to_owned()),
            (AWS_ROLE_ARN.to_owned(), role.to_owned()),
        ]);
        let scope = stack_scope(&ann, "us-west-2");
        assert_eq!(scope.region, "eu-west-1");
        assert_eq!(scope.role_arn.as_deref(), Some(role));
        let none = stack_scope(&BTreeMap::new(), "us-west-2");
        assert_eq!((none.region.as_str(), none.role_arn), ("us-west-2", None));
        let bad = BTreeMap::from([(AWS_REGION.to_owned(), "Mars".to_owned())]);
        assert_eq!(stack_scope(&bad, "us-west-2").region, "us-west-2");
    }
}
