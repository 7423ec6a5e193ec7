//! The namespace controller against the real apiserver: routing keys,
//! the aws-auth entry and its RoleBinding, foreign entries kept byte for
//! byte, and removal of exactly hawser's entry.

use crate::support;

use std::time::Duration;

use k8s_openapi::api::{
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
    rbac::v1::RoleBinding,
};
use kube::{
    api::{Patch, PatchParams, PostParams},
    Api, ResourceExt,
};
use support::namespace::*;
use support::*;

#[tokio::test]
async fn routing_keys_are_created_once_survive_a_restart_and_rotate_once_per_value() {
    let mut bed = Bed::start("routing", &[]).await;
    let ns = bed
        .namespace(&[("env.hawser.io/routing-secret", "true")])
        .await;
    let first = bed.keys(&ns).await;
    for key in [&first.0, &first.1] {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap();
        assert_eq!(raw.len(), 32, "32 random bytes, base64");
    }
    assert_ne!(first.0, first.1);
    let secret = bed.secrets(&ns).get("routing").await.unwrap();
    assert_eq!(
        secret
            .labels()
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("hawser")
    );
    bed.wait_event(&ns, "RoutingSecretCreated").await;

    // A restart (SIGKILL) re-reconciles everything: the keys stay.
    bed.restart(&[]).await;
    let passes = r#"hawser_reconcile_total{controller="namespace",result="applied"}"#;
    eventually("a pass of the restarted hawser", WAIT, || async {
        (bed.hawser().metric(passes).await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(bed.keys(&ns).await, first, "unchanged across a restart");

    // Each new rotate-keys value rotates once, and is recorded.
    bed.annotate(&ns, "env.hawser.io/rotate-keys", Some("2024-01"))
        .await;
    let second = eventually("keys rotated", WAIT, || async {
        let k = bed.keys(&ns).await;
        (k != first).then_some(k)
    })
    .await;
    assert_ne!(second.0, first.0);
    assert_ne!(second.1, first.1);
    eventually("rotated-keys recorded", WAIT, || async {
        (bed.annotation(&ns, "env.hawser.io/rotated-keys")
            .await
            .as_deref()
            == Some("2024-01"))
        .then_some(())
    })
    .await;
    // Another restart and an unrelated change: no second rotation.
    bed.restart(&[]).await;
    eventually("a pass of the restarted hawser", WAIT, || async {
        (bed.hawser().metric(passes).await >= 1.0).then_some(())
    })
    .await;
    bed.annotate(&ns, "env.hawser.io/host-names", Some("api.example.com"))
        .await;
    eventually("the restarted hawser saw the change", WAIT, || async {
        (bed.hawser().metric(passes).await >= 2.0).then_some(())
    })
    .await;
    assert_eq!(bed.keys(&ns).await, second, "one value, one rotation");
    let rotations = bed
        .events(&ns)
        .await
        .into_iter()
        .filter(|(_, r, _)| r == "RoutingKeysRotated")
        .count();
    assert_eq!(rotations, 1);

    bed.annotate(&ns, "env.hawser.io/rotate-keys", Some("2024-02"))
        .await;
    let third = eventually("keys rotated again", WAIT, || async {
        let k = bed.keys(&ns).await;
        (k != second).then_some(k)
    })
    .await;
    assert_ne!(third, first);

    // Turning the annotation off leaves the Secret as it is.
    let skipped = r#"hawser_reconcile_total{controller="namespace",result="skipped"}"#;
    let before = bed.hawser().metric(skipped).await;
    bed.annotate(&ns, "env.hawser.io/rotate-keys", None).await;
    bed.annotate(&ns, "env.hawser.io/routing-secret", Some("false"))
        .await;
    eventually("a pass with nothing to do", WAIT, || async {
        (bed.hawser().metric(skipped).await > before).then_some(())
    })
    .await;
    assert_eq!(bed.keys(&ns).await, third);
}

#[tokio::test]
async fn a_foreign_routing_secret_is_left_alone_with_a_warning() {
    let mut bed = Bed::start("foreign", &[]).await;
    let ns = bed.namespace(&[]).await;
    let theirs: k8s_openapi::api::core::v1::Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "routing"},
        "stringData": {"public-api-key": "mine"},
    }))
    .unwrap();
    bed.secrets(&ns)
        .create(&PostParams::default(), &theirs)
        .await
        .unwrap();
    bed.annotate(&ns, "env.hawser.io/routing-secret", Some("true"))
        .await;
    let note = bed.wait_event(&ns, "RoutingSecretNotOwned").await;
    assert!(note.contains("leaves it alone"), "{note}");
    let s = bed.secrets(&ns).get("routing").await.unwrap();
    let data = s.data.unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data["public-api-key"].0, b"mine");
}

async fn allowed(client: &kube::Client, ns: &str, group: &str) -> bool {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some("someone-from-iam".into()),
            groups: Some(vec![group.into()]),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.into()),
                verb: Some("create".into()),
                group: Some("apps".into()),
                resource: Some("deployments".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let answer = api.create(&PostParams::default(), &review).await.unwrap();
    answer.status.unwrap().allowed
}

#[tokio::test]
async fn a_mapped_role_gets_its_entry_and_edit_in_its_namespace_only_and_foreign_bytes_stay() {
    let mut bed = Bed::start("iam", &[]).await;
    bed.seed_aws_auth(&[
        ("mapRoles", NODE_ROLES),
        ("mapUsers", MAP_USERS),
        ("mapAccounts", MAP_ACCOUNTS),
    ])
    .await;
    let group = format!("{}-devs", bed.id);
    let arn = role_arn(&bed.id);
    let ns = bed
        .namespace(&[
            ("iam.hawser.io/role-arn", &arn),
            ("iam.hawser.io/groups", &group),
        ])
        .await;
    let other = bed.namespace(&[]).await;

    let roles = bed
        .wait_map_roles("hawser's entry", |r| entry_for(r, &arn).is_some())
        .await;
    let entry = entry_for(&roles, &arn).unwrap();
    assert_eq!(
        entry["username"],
        format!("hawser:{ns}:{{{{SessionName}}}}")
    );
    assert_eq!(entry["groups"], serde_json::json!([group]));
    let text = bed.data("mapRoles").await.unwrap();
    assert!(
        text.starts_with(NODE_ROLES),
        "foreign entries first, unchanged:\n{text}"
    );
    assert_eq!(bed.data("mapUsers").await.as_deref(), Some(MAP_USERS));
    assert_eq!(bed.data("mapAccounts").await.as_deref(), Some(MAP_ACCOUNTS));
    let cm = bed.aws_auth().await.unwrap();
    assert_eq!(ownership(&cm), [(arn.clone(), ns.clone())].into());
    assert!(bed.finalizers(&ns).await.contains(&finalizer(&bed.id)));
    assert!(
        bed.finalizers(&other).await.is_empty(),
        "no finalizer without a role"
    );
    bed.wait_event(&ns, "AwsAuthMapped").await;

    let bindings: Api<RoleBinding> = Api::namespaced(bed.client.clone(), &ns);
    let rb = eventually("RoleBinding hawser-iam", WAIT, || async {
        bindings.get_opt("hawser-iam").await.ok()?
    })
    .await;
    assert_eq!(rb.role_ref.name, "edit");
    // The bound group may edit in the namespace, and only there.
    eventually("RBAC to allow the group", WAIT, || async {
        allowed(&bed.client, &ns, &group).await.then_some(())
    })
    .await;
    assert!(!allowed(&bed.client, &other, &group).await);
    assert!(!allowed(&bed.client, &ns, "another-group").await);

    // Removing the annotation removes exactly hawser's entry and binding.
    bed.annotate(&ns, "iam.hawser.io/groups", None).await;
    bed.annotate(&ns, "iam.hawser.io/role-arn", None).await;
    bed.wait_map_roles("the entry removed", |r| entry_for(r, &arn).is_none())
        .await;
    assert_eq!(bed.data("mapRoles").await.as_deref(), Some(NODE_ROLES));
    assert_eq!(bed.data("mapUsers").await.as_deref(), Some(MAP_USERS));
    assert_eq!(bed.data("mapAccounts").await.as_deref(), Some(MAP_ACCOUNTS));
    eventually("RoleBinding and finalizer gone", WAIT, || async {
        let rb = bindings.get_opt("hawser-iam").await.ok()?;
        (rb.is_none() && bed.finalizers(&ns).await.is_empty()).then_some(())
    })
    .await;
    assert!(!allowed(&bed.client, &ns, &group).await);
}

/// Two namespaces mapping roles `<id>-a` and `<id>-b`, both entries in
/// aws-auth: `(role a, namespace a, role b, namespace b)`.
async fn two_mapped(bed: &mut Bed) -> (String, String, String, String) {
    let (a, b) = (
        role_arn(&format!("{}-a", bed.id)),
        role_arn(&format!("{}-b", bed.id)),
    );
    let ns_a = bed.namespace(&[("iam.hawser.io/role-arn", &a)]).await;
    let ns_b = bed.namespace(&[("iam.hawser.io/role-arn", &b)]).await;
    bed.wait_map_roles("both entries", |r| {
        entry_for(r, &a).is_some() && entry_for(r, &b).is_some()
    })
    .await;
    (a, ns_a, b, ns_b)
}

#[tokio::test]
async fn deleting_a_namespace_removes_exactly_its_entry_and_aws_auth_is_created_if_absent() {
    let mut bed = Bed::start("delete", &[]).await;
    assert!(bed.aws_auth().await.is_none());
    let (a, ns_a, b, ns_b) = two_mapped(&mut bed).await;
    // A human adds a node role after hawser created aws-auth.
    let cm = bed.aws_auth().await.unwrap();
    let mut data = cm.data.clone().unwrap();
    let with_nodes = format!("{}{}", data["mapRoles"], NODE_ROLES);
    data.insert("mapRoles".into(), with_nodes.clone());
    let mut edited = cm.clone();
    edited.data = Some(data);
    bed.configmaps()
        .replace(&bed.aws_auth, &PostParams::default(), &edited)
        .await
        .unwrap();

    bed.delete_namespace(&ns_a).await;
    bed.gone(&ns_a).await;
    let text = bed.data("mapRoles").await.unwrap();
    let roles = bed.map_roles().await;
    assert!(entry_for(&roles, &a).is_none());
    assert!(entry_for(&roles, &b).is_some());
    assert!(text.ends_with(NODE_ROLES), "{text}");
    assert_eq!(roles.len(), 2, "{text}");
    let cm = bed.aws_auth().await.unwrap();
    assert_eq!(ownership(&cm), [(b.clone(), ns_b.clone())].into());

    // The last of hawser's entries going leaves the human's, byte for byte.
    bed.delete_namespace(&ns_b).await;
    bed.gone(&ns_b).await;
    assert_eq!(bed.data("mapRoles").await.as_deref(), Some(NODE_ROLES));
    assert!(ownership(&bed.aws_auth().await.unwrap()).is_empty());
}

#[tokio::test]
async fn an_unreadable_aws_auth_is_reported_and_never_replaced() {
    let mut bed = Bed::start("unreadable", &[]).await;
    let broken = "- rolearn: [unclosed\n";
    bed.seed_aws_auth(&[("mapRoles", broken)]).await;
    let arn = role_arn(&bed.id);
    let ns = bed.namespace(&[("iam.hawser.io/role-arn", &arn)]).await;
    let note = eventually("a ReconcileError about aws-auth", WAIT, || async {
        bed.events(&ns)
            .await
            .into_iter()
            .find(|(t, r, n)| {
                t == "Warning" && r == "ReconcileError" && n.contains("not valid YAML")
            })
            .map(|(_, _, n)| n)
    })
    .await;
    assert!(note.contains("leaves it as it is"), "{note}");
    assert_eq!(bed.data("mapRoles").await.as_deref(), Some(broken));
    let errors =
        r#"hawser_reconcile_errors_total{category="aws_auth_unreadable",controller="namespace"}"#;
    assert!(bed.hawser().metric(errors).await >= 1.0);

    // Repaired by a human: the next pass (a change to the namespace here)
    // maps the role, and the namespace can be deleted.
    let patch = serde_json::json!({"data": {"mapRoles": NODE_ROLES}});
    bed.configmaps()
        .patch(
            &bed.aws_auth,
            &Default::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    bed.annotate(&ns, "iam.hawser.io/groups", Some("retry"))
        .await;
    bed.wait_map_roles("the entry after the repair", |r| {
        entry_for(r, &arn).is_some()
    })
    .await;
    bed.delete_namespace(&ns).await;
    bed.gone(&ns).await;
    assert_eq!(bed.data("mapRoles").await.as_deref(), Some(NODE_ROLES));
}

#[tokio::test]
async fn a_role_mapped_by_someone_else_is_never_taken_over() {
    let mut bed = Bed::start("takeover", &[]).await;
    bed.seed_aws_auth(&[("mapRoles", NODE_ROLES)]).await;
    // A namespace asks to map the node role itself.
    let node_role = "arn:aws:iam::111122223333:role/eksctl-e2e-nodegroup-ng-1-NodeInstanceRole";
    let ns = bed
        .namespace(&[
            ("iam.hawser.io/role-arn", node_role),
            ("iam.hawser.io/groups", "devs"),
        ])
        .await;
    let note = eventually("a refusal", WAIT, || async {
        bed.events(&ns)
            .await
            .into_iter()
            .find(|(t, _, n)| t == "Warning" && n.contains("did not create"))
            .map(|(_, _, n)| n)
    })
    .await;
    assert!(note.contains(node_role), "{note}");
    assert_eq!(bed.data("mapRoles").await.as_deref(), Some(NODE_ROLES));
    assert!(ownership(&bed.aws_auth().await.unwrap()).is_empty());
    // Letting go removes nothing that was never hawser's.
    bed.annotate(&ns, "iam.hawser.io/groups", None).await;
    bed.annotate(&ns, "iam.hawser.io/role-arn", None).await;
    eventually("the finalizer released", WAIT, || async {
        bed.finalizers(&ns).await.is_empty().then_some(())
    })
    .await;
    assert_eq!(bed.data("mapRoles").await.as_deref(), Some(NODE_ROLES));
}

/// The namespace controller alone talks only to Kubernetes: hawser gets
/// ready and leads although AWS is unreachable (an endpoint nothing
/// listens on), where the vpce or stack controller would wait for STS.
#[tokio::test]
async fn the_namespace_controller_alone_needs_no_aws() {
    let hawser = Hawser::start(&[
        "--controllers=namespace",
        "--cluster-name=no-aws",
        "--aws-endpoint-url=http://127.0.0.1:9",
        "--namespace-selector=hawser-e2e=none",
    ])
    .await;
    eventually("hawser to lead", Duration::from_secs(30), || async {
        (hawser.metric("hawser_leader").await == 1.0).then_some(())
    })
    .await;
    assert_eq!(
        hawser.metric(r#"hawser_aws_api_calls_total{operation="GetCallerIdentity",outcome="success",service="sts"}"#).await
            + hawser.metric(r#"hawser_aws_api_calls_total{operation="GetCallerIdentity",outcome="unavailable",service="sts"}"#).await,
        0.0,
        "called STS"
    );
}

#[tokio::test]
async fn a_namespace_that_leaves_the_selector_keeps_its_mapping_until_it_lets_go() {
    // The bed's hawser runs with --namespace-selector hawser-e2e=<id>.
    let mut bed = Bed::start("leave", &[]).await;
    let (a, ns_a, b, ns_b) = two_mapped(&mut bed).await;
    let out_of_scope = serde_json::json!({"metadata": {"labels": {E2E_LABEL: "elsewhere"}}});
    for ns in [&ns_a, &ns_b] {
        bed.namespaces_api()
            .patch(ns, &PatchParams::default(), &Patch::Merge(&out_of_scope))
            .await
            .unwrap();
    }

    // Outside the selector, dropping the role still removes the entry,
    // the RoleBinding and the finalizer; the other entry stays.
    bed.annotate(&ns_a, "iam.hawser.io/role-arn", None).await;
    let roles = bed
        .wait_map_roles("a's entry removed", |r| entry_for(r, &a).is_none())
        .await;
    assert!(entry_for(&roles, &b).is_some(), "b's mapping is kept");
    eventually("a's finalizer removed", WAIT, || async {
        bed.finalizers(&ns_a).await.is_empty().then_some(())
    })
    .await;
    let bindings: Api<RoleBinding> = Api::namespaced(bed.client.clone(), &ns_a);
    assert!(bindings.get_opt("hawser-iam").await.unwrap().is_none());
    assert_eq!(bed.finalizers(&ns_b).await, [finalizer(&bed.id)]);

    // And deleting it is never held up by hawser's finalizer.
    bed.delete_namespace(&ns_b).await;
    bed.gone(&ns_b).await;
    assert!(entry_for(&bed.map_roles().await, &b).is_none());
}
