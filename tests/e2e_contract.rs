//! The webhook side of the annotation contract against the real apiserver:
//! every example applied and mutated as documented, refusals reaching
//! kubectl with their messages, output annotations protected, idempotent
//! re-applies, dry-run leniency.

use crate::support;

use std::collections::BTreeMap;

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Namespace, Service},
};
use kube::{Api, Client};
use support::*;

/// The test bed's admin identity stands in for hawser's controller here.
const CONTROLLER: &str = "--controller-username=testenv-admin";

fn ann(meta: &kube::core::ObjectMeta) -> BTreeMap<String, String> {
    meta.annotations.clone().unwrap_or_default()
}

async fn service(client: &Client, ns: &str, name: &str) -> Service {
    Api::<Service>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap()
}

async fn deployment(client: &Client, ns: &str, name: &str) -> Deployment {
    Api::<Deployment>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap()
}

fn assert_ok(out: &KubectlOutput) {
    assert!(
        out.success,
        "kubectl failed:\nstdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
}

fn assert_refused(out: &KubectlOutput, message: &str) {
    assert!(!out.success, "kubectl was not refused: {}", out.stdout);
    assert!(
        out.stderr.contains(message),
        "expected {message:?} in:\n{}",
        out.stderr
    );
}

#[tokio::test]
async fn every_example_is_admitted_and_mutated_as_documented() {
    let client = client().await;
    let id = unique("ex");
    let (_hawser, _probe, _hooks) = hawser_with_hooks(&client, &id, &[CONTROLLER]).await;
    let mut ex = Examples::new(&id);

    for file in EXAMPLE_FILES {
        let out = ex.apply(file);
        assert_ok(&out);
        // Applying the same file again stores nothing new. (kubectl may
        // still say "configured" where a manifest asks for what hawser
        // normalises or overrides; the mutation makes that a no-op.)
        let before = ex.stored(file);
        let again = ex.apply(file);
        assert_ok(&again);
        assert_eq!(
            ex.stored(file),
            before,
            "{file}: re-apply changed a stored object"
        );
    }

    // Environment: host names lower-cased and de-duplicated.
    let env_ns = ex.ns("hawser-demo-env");
    let ns = Api::<Namespace>::all(client.clone())
        .get(&env_ns)
        .await
        .unwrap();
    assert_eq!(
        ann(&ns.metadata)["env.hawser.io/host-names"],
        "shop.example.com 10.0.12.7 2001:db8::7"
    );

    // Routing: hosts normalised and copied to the pod template, keys
    // injected, and the namespace's restricted profile applied.
    let d = deployment(&client, &env_ns, "storefront").await;
    assert_eq!(
        ann(&d.metadata)["routing.hawser.io/public-hosts"],
        "shop.example.com www.shop.example.com"
    );
    let tpl = d.spec.unwrap().template;
    let tpl_ann = tpl.metadata.unwrap().annotations.unwrap();
    assert_eq!(
        tpl_ann["routing.hawser.io/public-hosts"],
        "shop.example.com www.shop.example.com"
    );
    assert_eq!(
        tpl_ann["routing.hawser.io/private-hosts"],
        "storefront.internal"
    );
    let c = &tpl.spec.unwrap().containers[0];
    let env: Vec<(String, String, String)> = c
        .env
        .iter()
        .flatten()
        .map(|e| {
            let r = e
                .value_from
                .as_ref()
                .unwrap()
                .secret_key_ref
                .as_ref()
                .unwrap();
            (e.name.clone(), r.name.clone(), r.key.clone())
        })
        .collect();
    assert_eq!(
        env,
        vec![
            (
                "ROUTING_PUBLIC_API_KEY".into(),
                "routing".into(),
                "public-api-key".into()
            ),
            (
                "ROUTING_PRIVATE_API_KEY".into(),
                "routing".into(),
                "private-api-key".into()
            ),
        ]
    );
    assert_eq!(
        c.security_context.as_ref().unwrap().run_as_non_root,
        Some(true)
    );

    // Stack: the Deployment's containers read the outputs ConfigMap.
    let d = deployment(&client, &ex.ns("hawser-demo-stack"), "worker").await;
    let c = &d.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(
        c.env_from.as_ref().unwrap()[0]
            .config_map_ref
            .as_ref()
            .unwrap()
            .name,
        "worker-stack-outputs"
    );

    // VPC endpoint Services: ExternalName placeholder, finalizer, Pending.
    let demo = ex.ns("hawser-demo");
    for name in ["payments-api", "s3"] {
        let s = service(&client, &demo, name).await;
        let spec = s.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("ExternalName"), "{name}");
        assert_eq!(
            spec.external_name.as_deref(),
            Some("pending.vpce.hawser.invalid"),
            "{name}"
        );
        assert_eq!(spec.cluster_ip, None, "{name}");
        assert_eq!(
            s.metadata.finalizers,
            Some(vec!["vpce.hawser.io/cleanup".to_string()]),
            "{name}"
        );
        assert_eq!(
            ann(&s.metadata)["vpce.hawser.io/state"],
            "Pending",
            "{name}"
        );
    }
}

#[tokio::test]
async fn an_existing_cluster_ip_service_is_converted_on_update() {
    let client = client().await;
    let id = unique("conv");
    let (_hawser, _probe, _hooks) = hawser_with_hooks(&client, &id, &[CONTROLLER]).await;
    let mut ex = Examples::new(&id);
    let ns = ex.ns("hawser-demo");
    assert_ok(&ex.apply("examples/hardening/00-namespace.yaml"));
    let plain = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: db, namespace: {ns}}}\nspec:\n  ports: [{{port: 5432}}]\n  selector: {{app: db}}\n"
    );
    assert_ok(&kubectl_apply(&plain));
    assert!(service(&client, &ns, "db")
        .await
        .spec
        .unwrap()
        .cluster_ip
        .is_some());

    let annotated = plain.replace(
        "namespace: ",
        "annotations: {vpce.hawser.io/service-name: com.amazonaws.us-west-2.rds}, namespace: ",
    );
    assert_ok(&kubectl_apply(&annotated));
    let s = service(&client, &ns, "db").await;
    let spec = s.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ExternalName"));
    assert_eq!(
        spec.cluster_ip, None,
        "the allocated cluster IP is released"
    );
    assert_eq!(
        spec.external_name.as_deref(),
        Some("pending.vpce.hawser.invalid")
    );
    assert_eq!(
        s.metadata.finalizers,
        Some(vec!["vpce.hawser.io/cleanup".to_string()])
    );
}

#[tokio::test]
async fn refusals_reach_kubectl_with_their_messages() {
    let client = client().await;
    let id = unique("deny");
    let (_hawser, _probe, _hooks) = hawser_with_hooks(&client, &id, &[CONTROLLER]).await;
    let mut ex = Examples::new(&id);
    let ns = ex.ns("hawser-demo");
    assert_ok(&ex.apply("examples/hardening/00-namespace.yaml"));

    let svc = |annotations: &str| {
        format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: db\n  namespace: {ns}\n  annotations: {{{annotations}}}\nspec:\n  ports: [{{port: 5432}}]\n")
    };
    // A malformed input names the annotation, the value and what is allowed.
    let bad = svc(
        r#""vpce.hawser.io/service-name": com.amazonaws.us-west-2.s3, "vpce.hawser.io/vpc-id": vpc-12"#,
    );
    assert_refused(
        &kubectl_apply(&bad),
        r#"admission webhook "validate.hawser.io" denied the request: annotation vpce.hawser.io/vpc-id: invalid value "vpc-12""#,
    );
    // A server-side dry run is not refused for syntax; it gets warnings.
    let dry = kubectl(&["apply", "--dry-run=server", "-f", "-"], &bad);
    assert_ok(&dry);
    assert!(
        dry.stderr
            .contains(r#"Warning: annotation vpce.hawser.io/vpc-id: invalid value "vpc-12""#),
        "{}",
        dry.stderr
    );

    // system: groups, and a role another namespace already maps.
    let ns_yaml = |name: &str, annotations: &str| {
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels: {{{E2E_LABEL}: {id}}}\n  annotations: {{{annotations}}}\n")
    };
    let (a, b) = (ex.ns("iam-a"), ex.ns("iam-b"));
    assert_refused(
        &kubectl_apply(&ns_yaml(
            &a,
            r#""iam.hawser.io/role-arn": "arn:aws:iam::123456789012:role/dev", "iam.hawser.io/groups": "system:masters""#,
        )),
        r#"annotation iam.hawser.io/groups: invalid value "system:masters": groups starting with "system:""#,
    );
    assert_ok(&kubectl_apply(&ns_yaml(
        &a,
        r#""iam.hawser.io/role-arn": "arn:aws:iam::123456789012:role/dev""#,
    )));
    let claimed =
        format!(r#"role arn:aws:iam::123456789012:role/dev is already mapped by namespace "{a}""#);
    let second = ns_yaml(
        &b,
        r#""iam.hawser.io/role-arn": "arn:aws:iam::123456789012:role/team/dev""#,
    );
    // The namespace cache may lag the first namespace by a moment.
    eventually(
        "the duplicate role to be refused",
        std::time::Duration::from_secs(10),
        || {
            let out = kubectl_apply(&second);
            let refused = !out.success && out.stderr.contains(&claimed);
            async move { refused.then_some(()) }
        },
    )
    .await;

    // Outputs: written by hawser's identity (here the admin), protected
    // from everyone else (alice, impersonated with full RBAC rights).
    assert_ok(&kubectl_apply(&svc(
        r#""vpce.hawser.io/service-name": com.amazonaws.us-west-2.s3, "vpce.hawser.io/vpc-id": vpc-0a1b2c3d"#,
    )));
    assert_ok(&kubectl(
        &[
            "-n",
            &ns,
            "annotate",
            "svc",
            "db",
            "--overwrite",
            "vpce.hawser.io/state=Available",
            "vpce.hawser.io/endpoint-id=vpce-0123456789abcdef0",
        ],
        "",
    ));
    let as_alice = ["--as=alice", "--as-group=system:masters"];
    let alice = |args: &[&str]| {
        let mut all = as_alice.to_vec();
        all.extend_from_slice(args);
        kubectl(&all, "")
    };
    assert_refused(
        &alice(&[
            "-n",
            &ns,
            "annotate",
            "svc",
            "db",
            "--overwrite",
            "vpce.hawser.io/state=Failed",
        ]),
        r#"annotation vpce.hawser.io/state is an output written by hawser and cannot be changed from "Available" to "Failed" by "alice""#,
    );
    assert_refused(
        &alice(&[
            "-n",
            &ns,
            "annotate",
            "svc",
            "db",
            "--overwrite",
            "vpce.hawser.io/vpc-id=vpc-0a1b2c3e",
        ]),
        r#"annotation vpce.hawser.io/vpc-id: invalid value "vpc-0a1b2c3e": endpoint vpce-0123456789abcdef0 already exists in VPC "vpc-0a1b2c3d", and its VPC cannot change"#,
    );
    assert_refused(
        &alice(&[
            "-n",
            &ns,
            "annotate",
            "svc",
            "db",
            "aws.hawser.io/region=eu-west-1",
        ]),
        r#"annotation aws.hawser.io/region: invalid value "eu-west-1": endpoint vpce-0123456789abcdef0 already exists in region unset"#,
    );
    // A replace that drops the outputs keeps them, with a warning.
    let mut live: serde_json::Value =
        serde_json::to_value(service(&client, &ns, "db").await).unwrap();
    let annotations = live["metadata"]["annotations"].as_object_mut().unwrap();
    annotations.remove("vpce.hawser.io/state");
    annotations.remove("vpce.hawser.io/endpoint-id");
    let mut args = as_alice.to_vec();
    args.extend_from_slice(&["replace", "-f", "-"]);
    let replaced = kubectl(&args, &live.to_string());
    assert_ok(&replaced);
    assert!(replaced.stderr.contains(r#"Warning: hawser kept its output annotation vpce.hawser.io/endpoint-id="vpce-0123456789abcdef0""#), "{}", replaced.stderr);
    let kept = ann(&service(&client, &ns, "db").await.metadata);
    assert_eq!(kept["vpce.hawser.io/state"], "Available");
    assert_eq!(kept["vpce.hawser.io/endpoint-id"], "vpce-0123456789abcdef0");
}
