//! Admission of Deployments: hardening on /mutate, the privileged guard on
//! /validate.

use json_patch::{jsonptr::PointerBuf, Patch};
use k8s_openapi::api::apps::v1::Deployment;
use kube::core::{
    admission::{AdmissionRequest, AdmissionResponse, Operation},
    DynamicObject,
};

use super::{
    hardening::{self, Policy},
    typed_object, Context, Webhook,
};

pub async fn review(
    ctx: &Context,
    webhook: Webhook,
    req: &AdmissionRequest<DynamicObject>,
) -> AdmissionResponse {
    let response = AdmissionResponse::from(req);
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return response;
    }
    let Some(obj) = req.object.as_ref() else {
        return response;
    };
    let deployment: Deployment = match typed_object(obj) {
        Ok(d) => d,
        Err(msg) => return response.deny(msg),
    };
    let namespace = req.namespace.clone().unwrap_or_default();
    let ns = ctx
        .namespaces
        .get_or_wait(&namespace, ctx.config.namespace_wait)
        .await;
    if ns.is_none() {
        tracing::warn!(%namespace, "namespace not in the cache; applying the default policy");
    }
    let policy = Policy::resolve(
        ctx.config.allow_privileged_containers,
        ns.as_ref().map(|n| &n.annotations),
        deployment.metadata.annotations.as_ref(),
    );
    let Some(pod_spec) = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
    else {
        return response;
    };
    let name = if req.name.is_empty() {
        deployment.metadata.name.clone().unwrap_or_default()
    } else {
        req.name.clone()
    };

    match webhook {
        Webhook::Mutate => {
            let path = PointerBuf::from_tokens(["spec", "template", "spec"]);
            let hardened = hardening::harden(pod_spec, &path, policy, &namespace);
            let mut response = response;
            if !hardened.warnings.is_empty() {
                response.warnings = Some(hardened.warnings);
            }
            if hardened.patch.is_empty() {
                return response;
            }
            match response.clone().with_patch(Patch(hardened.patch)) {
                Ok(r) => r,
                Err(e) => response.deny(format!("hawser could not encode its patch: {e}")),
            }
        }
        Webhook::Validate => {
            let violations =
                hardening::privileged_violations(pod_spec, policy, "Deployment", &name, &namespace);
            if violations.is_empty() {
                response
            } else {
                response.deny(violations.join("; "))
            }
        }
    }
}
