//! The aws-auth lockout guard, registered as `hawser manifests webhook
//! --aws-auth-guard` would, against the real apiserver (v1.20: the legacy
//! entry, by the opt-out label on kube-system, is the one that matches).

use crate::support;

use std::time::Duration;

use k8s_openapi::api::{
    admissionregistration::v1::ValidatingWebhookConfiguration, core::v1::ConfigMap,
};
use kube::{
    api::{DeleteParams, Patch, PatchParams, PostParams},
    Api,
};
use support::namespace::{MAP_USERS, NODE_ROLES};
use support::*;

const ADMIN: &str =
    "- rolearn: arn:aws:iam::111122223333:role/Admin\n  username: admin\n  groups: [ops]\n";

fn without_node(extra: &str) -> serde_json::Value {
    serde_json::json!({"data": {"mapRoles": format!("{ADMIN}{extra}")}})
}

fn denial(result: Result<ConfigMap, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(e)) => e.message,
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[tokio::test]
async fn the_guard_denies_removing_a_node_role_and_allows_everything_else() {
    let client = client().await;
    let id = unique("guard");
    let name = format!("aws-auth-{id}");
    let hawser = Hawser::start(&["--aws-auth-configmap", &name]).await;
    let mut opts = webhook_options(&hawser, &id);
    opts.aws_auth_guard = true;
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .create(
            &PostParams::default(),
            &hawser::manifests::validating(&opts),
        )
        .await
        .unwrap();
    let _hooks = Registration::named(&opts.name);

    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "data": {"mapRoles": format!("{NODE_ROLES}{ADMIN}"), "mapUsers": MAP_USERS},
    }))
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    let _cleanup = DeleteOnDrop(name.clone());

    // Dry runs reach validating webhooks without persisting anything:
    // wait until the guard answers one.
    let dry = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let msg = eventually(
        "the guard to take effect",
        Duration::from_secs(30),
        || async {
            match api
                .patch(&name, &dry, &Patch::Merge(&without_node("")))
                .await
            {
                Err(kube::Error::Api(e)) if e.message.contains("lockout guard") => Some(e.message),
                _ => None,
            }
        },
    )
    .await;
    assert!(
        msg.contains("eksctl-e2e-nodegroup-ng-1-NodeInstanceRole"),
        "{msg}"
    );

    // For real: removing the node role, weakening it, breaking the YAML,
    // deleting aws-auth: all refused.
    let p = PatchParams::default();
    denial(api.patch(&name, &p, &Patch::Merge(&without_node(""))).await);
    let weakened = NODE_ROLES.replace("  - system:nodes\n", "");
    let patch = serde_json::json!({"data": {"mapRoles": format!("{weakened}{ADMIN}")}});
    denial(api.patch(&name, &p, &Patch::Merge(&patch)).await);
    let patch = serde_json::json!({"data": {"mapRoles": "- rolearn: ["}});
    denial(api.patch(&name, &p, &Patch::Merge(&patch)).await);
    let patch = serde_json::json!({"data": {"mapRoles": null}});
    denial(api.patch(&name, &p, &Patch::Merge(&patch)).await);
    match api.delete(&name, &DeleteParams::default()).await {
        Err(kube::Error::Api(e)) => {
            assert!(e.message.contains("deleting aws-auth"), "{}", e.message)
        }
        other => panic!("delete went through: {other:?}"),
    }
    let kept = api.get(&name).await.unwrap();
    assert_eq!(
        kept.data.unwrap()["mapRoles"],
        format!("{NODE_ROLES}{ADMIN}")
    );

    // Everything else goes through: other keys, other entries, other
    // ConfigMaps in kube-system.
    let patch = serde_json::json!({"data": {"mapRoles": NODE_ROLES, "mapUsers": ""}});
    api.patch(&name, &p, &Patch::Merge(&patch))
        .await
        .expect("removing a non-node entry");
    let other: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("other-{id}")},
        "data": {"mapRoles": NODE_ROLES},
    }))
    .unwrap();
    api.create(&PostParams::default(), &other).await.unwrap();
    api.delete(&format!("other-{id}"), &DeleteParams::default())
        .await
        .expect("another ConfigMap is not guarded");

    // Deliberate removal takes two steps: the bypass annotation first.
    let bypass = serde_json::json!({"metadata": {"annotations": {"iam.hawser.io/allow-protected-removal": "true"}}});
    let both = serde_json::json!({
        "metadata": {"annotations": {"iam.hawser.io/allow-protected-removal": "true"}},
        "data": {"mapRoles": ADMIN},
    });
    denial(api.patch(&name, &p, &Patch::Merge(&both)).await);
    api.patch(&name, &p, &Patch::Merge(&bypass)).await.unwrap();
    // One-shot: a change that leaves the annotation in place is still
    // guarded; one that removes it in the same update goes through.
    denial(api.patch(&name, &p, &Patch::Merge(&without_node(""))).await);
    let consume = serde_json::json!({
        "metadata": {"annotations": {"iam.hawser.io/allow-protected-removal": null}},
        "data": {"mapRoles": ADMIN},
    });
    api.patch(&name, &p, &Patch::Merge(&consume))
        .await
        .expect("bypassed once");
    let left = api.get(&name).await.unwrap();
    assert!(
        !left
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("iam.hawser.io/allow-protected-removal"),
        "the bypass is still there"
    );

    let denied = r#"hawser_admission_requests_total{kind="ConfigMap",operation="UPDATE",result="denied",webhook="validate-aws-auth"}"#;
    assert!(
        hawser.metric(denied).await >= 6.0,
        "{}",
        hawser.metrics().await
    );
}

struct DeleteOnDrop(String);

impl Drop for DeleteOnDrop {
    /// The guard is still up: bypass it, as a person would, then delete.
    fn drop(&mut self) {
        let run = |args: &[&str]| {
            let _ = std::process::Command::new("kubectl")
                .args(["-n", "kube-system"])
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        };
        run(&[
            "annotate",
            "configmap",
            &self.0,
            "iam.hawser.io/allow-protected-removal=true",
            "--overwrite",
        ]);
        run(&[
            "delete",
            "configmap",
            &self.0,
            "--ignore-not-found",
            "--wait=false",
        ]);
    }
}
