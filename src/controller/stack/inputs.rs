//! What a pass reads besides the object's annotations: the credentials
//! and region of its stack (from its namespace) and the template text
//! (inline, or from a ConfigMap).

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{core::PartialObjectMeta, Api, ResourceExt};

use super::error::{Error, Failure};
use super::kind::StackObject;
use super::Context;
use crate::annotations::{
    keys::CFN_TEMPLATE_CONFIGMAP, parse_inline_template, ObjectKind, TemplateSource,
};
use crate::aws::{CfnProvider, Scope};
use crate::controller::{scope::scope_for, timeout};

pub async fn scope_of<K: StackObject, P: CfnProvider>(
    obj: &PartialObjectMeta<K>,
    ctx: &Context<P>,
) -> Result<Scope, Error> {
    let ns_annotations = if K::KIND == ObjectKind::Namespace {
        obj.annotations().clone()
    } else {
        let namespaces: Api<Namespace> = Api::all(ctx.base.client.clone());
        let home = K::home(obj);
        timeout::call("get the Namespace", namespaces.get_metadata(&home))
            .await?
            .metadata
            .annotations
            .unwrap_or_default()
    };
    // A stack has no region of its own: its namespace's, else the default.
    Ok(scope_for(
        &K::home(obj),
        &ns_annotations,
        None,
        &ctx.settings.default_region,
    )?)
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
    let api: Api<ConfigMap> = Api::namespaced(ctx.base.client.clone(), namespace);
    let get = api.get_opt(&reference.name);
    let Some(cm) = timeout::call("get template ConfigMap", get).await? else {
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
