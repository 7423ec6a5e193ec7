//! `hawser plan` against the real apiserver and moto, through the fault
//! proxy (which logs every AWS action): the exact actions for a new, an
//! edited and an unchanged Service, and for a new and an edited stack;
//! no AWS write but a stack's transient change set.

use crate::support;

use kube::ResourceExt;
use support::fault_proxy::FaultProxy;
use support::*;

/// `hawser plan` as a user runs it: the test bed's (admin) kubeconfig,
/// AWS through `proxy` (served by this test's runtime, so the process is
/// waited for off it); returns (exit code, stdout).
async fn plan(proxy: &FaultProxy, cluster: &str, manifest: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("manifest.yaml");
    std::fs::write(&file, manifest).unwrap();
    let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG (the test bed's env file)");
    let mut cmd = std::process::Command::new(hawser_bin());
    cmd.arg("plan")
        .arg("-f")
        .arg(&file)
        .args(["--kubeconfig", &kubeconfig, "--cluster-name", cluster])
        .args(["--region", moto::REGION, "--aws-endpoint-url", &proxy.url])
        .args(extra);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("run hawser plan");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.code().is_some(),
        "hawser plan was killed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap(), stdout)
}

/// Every action the proxy saw that changes something in AWS, by name.
fn writes(proxy: &FaultProxy) -> Vec<(String, u32)> {
    hawser::aws::ops::ALL
        .iter()
        .filter(|op| op.writes)
        .map(|op| (op.name.to_owned(), proxy.seen(op.name)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn service(name: &str, ns: &str, annotations: &[(&str, &str)]) -> String {
    let ann: String = annotations
        .iter()
        .map(|(k, v)| format!("\n    {k}: \"{v}\""))
        .collect();
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations:{ann}\nspec:\n  ports: [{{port: 443}}]\n---\n"
    )
}

#[tokio::test]
async fn plan_shows_new_edited_and_unchanged_services_exactly_and_writes_nothing() {
    use support::vpce::{ann, Bed, ENDPOINT_ID, GROUP_ID, SERVICE_NAME};
    let bed = Bed::start("10m").await;
    let (a, b) = (bed.net.subnets[0].clone(), bed.net.subnets[1].clone());
    let same = bed.available_endpoint("same").await;
    let edited = bed.available_endpoint("edited").await;
    let (edited_id, edited_group) = (
        ann(&edited, ENDPOINT_ID).unwrap().to_owned(),
        ann(&edited, GROUP_ID).unwrap().to_owned(),
    );
    assert!(ann(&same, ENDPOINT_ID).is_some());
    let proxy = FaultProxy::start(&moto::endpoint_url()).await;
    let ns = bed.ns.name.clone();
    let svc = "vpce.hawser.io/service-name";
    let subnets = "vpce.hawser.io/subnet-ids";
    let manifest = [
        service(
            "fresh",
            &ns,
            &[
                (svc, SERVICE_NAME),
                (subnets, &a),
                ("vpce.hawser.io/allowed-cidrs", "10.1.0.0/16"),
            ],
        ),
        service("same", &ns, &[(svc, SERVICE_NAME), (subnets, &a)]),
        service("edited", &ns, &[(svc, SERVICE_NAME), (subnets, &b)]),
    ]
    .concat();
    let vpc = bed.net.vpc_id.clone();
    let (code, out) = plan(&proxy, &bed.cluster, &manifest, &["--default-vpc-id", &vpc]).await;
    assert_eq!(code, 0, "{out}");
    let region = moto::REGION;
    let expected = format!(
        "manifest.yaml: document 1: Service {ns}/fresh: 2 change(s) in {region}\n\
         \x20 create security-group: hawser-{ns}-fresh in {vpc}, all traffic from 10.1.0.0/16\n\
         \x20 create vpc-endpoint: {SERVICE_NAME} in {vpc}, subnets {a}, security groups (the new group), private DNS off\n\
         manifest.yaml: document 2: Service {ns}/same: no change\n\
         manifest.yaml: document 3: Service {ns}/edited: 1 change(s) in {region}\n\
         \x20 modify vpc-endpoint {edited_id}: added subnets {b}; removed subnets {a}\n\
         3 object(s), 3 AWS change(s)\n"
    );
    // The file is named by its path; compare from its name on.
    let shown: String = out
        .lines()
        .map(|l| match l.find("manifest.yaml") {
            Some(i) => l[i..].to_owned(),
            None => l.to_owned(),
        })
        .map(|l| l + "\n")
        .collect();
    assert_eq!(shown, expected);
    assert_eq!(writes(&proxy), vec![], "a plan of Services writes nothing");
    assert!(
        proxy.seen("DescribeVpcEndpoints") >= 2,
        "the live Services' endpoints were read"
    );

    // Nothing changed: the edited Service's endpoint is where it was.
    let live = bed.net.live_endpoints(&bed.ec2).await;
    let e = live
        .iter()
        .find(|e| e.vpc_endpoint_id() == Some(edited_id.as_str()))
        .unwrap();
    assert_eq!(e.subnet_ids(), std::slice::from_ref(&a));
    assert_eq!(moto::group_ids(e), [edited_group]);
    assert_eq!(live.len(), 2, "no endpoint for the new Service");
}

#[tokio::test]
async fn plan_shows_a_new_stack_and_an_edits_resource_changes_through_a_deleted_change_set() {
    use support::stack::{Bed, QUEUE_TEMPLATE, STACK_STATUS};
    let bed = Bed::start("10m").await;
    let queue = unique("planq");
    let params = format!(r#"{{"QueueName":"{queue}"}}"#);
    bed.create_deployment(
        "web",
        &[
            ("cfn.hawser.io/template", QUEUE_TEMPLATE),
            ("cfn.hawser.io/parameters", &params),
        ],
    )
    .await;
    bed.deployment_where("web", "CREATE_COMPLETE", |a| {
        a.get(STACK_STATUS).map(String::as_str) == Some("CREATE_COMPLETE")
    })
    .await;
    let with_bucket =
        QUEUE_TEMPLATE.replace("Outputs:", "  Bucket:\n    Type: AWS::S3::Bucket\nOutputs:");
    let deployment = |name: &str, template: &str| {
        let template: String = template.lines().map(|l| format!("\n      {l}")).collect();
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations:\n    cfn.hawser.io/parameters: '{params}'\n    cfn.hawser.io/template: |{template}\n\
             spec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: app, image: busybox:1.36}}]\n---\n",
            ns = bed.ns
        )
    };
    let manifest = [
        deployment("web", &with_bucket),
        deployment("api", QUEUE_TEMPLATE),
    ]
    .concat();
    let proxy = FaultProxy::start(&moto::endpoint_url()).await;
    let (code, out) = plan(&proxy, &bed.cluster, &manifest, &["-o", "json"]).await;
    assert_eq!(code, 0, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("a JSON report");
    let objects = report["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 2, "{report:#}");
    let (web, api) = (bed.stack_name(Some("web")), bed.stack_name(Some("api")));
    assert_eq!(
        objects[0]["actions"],
        serde_json::json!([{"action": "modify", "resource": "stack", "id": web,
            "detail": "Add Bucket (AWS::S3::Bucket)"}]),
        "{report:#}"
    );
    assert_eq!(
        objects[1]["actions"],
        serde_json::json!([{"action": "create", "resource": "stack",
            "detail": format!("{api}: add Queue (AWS::SQS::Queue)")}]),
        "{report:#}"
    );
    assert_eq!(objects[1]["status"], "changes");
    assert_eq!(
        writes(&proxy),
        vec![
            ("CreateChangeSet".to_owned(), 1),
            ("DeleteChangeSet".to_owned(), 1)
        ],
        "the only writes are the transient change set's"
    );
    // The stack is as it was, with no change set left behind.
    let stack = bed.stack(&web).await.expect("the stack");
    assert_eq!(stack.stack_status().unwrap().as_str(), "CREATE_COMPLETE");
    // moto lists every stack's change sets, whatever StackName says.
    let sets = bed
        .cfn
        .list_change_sets()
        .stack_name(&web)
        .send()
        .await
        .unwrap();
    let left: Vec<_> = sets
        .summaries()
        .iter()
        .filter(|s| s.stack_name() == Some(web.as_str()))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(
        bed.stack(&api).await.is_none(),
        "no stack for the new Deployment"
    );
}

/// Calls hawser made that change something in AWS, from its own
/// `hawser_aws_api_calls_total`, by operation.
async fn aws_writes(hawser: &Hawser) -> Vec<(String, f64)> {
    let text = hawser.metrics().await;
    hawser::aws::ops::ALL
        .iter()
        .filter(|op| op.writes)
        .map(|op| {
            let needle = format!("operation=\"{}\"", op.name);
            let total: f64 = text
                .lines()
                .filter(|l| l.starts_with("hawser_aws_api_calls_total{") && l.contains(&needle))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum();
            (op.name.to_owned(), total)
        })
        .filter(|(_, n)| *n > 0.0)
        .collect()
}

#[tokio::test]
async fn a_plan_only_service_is_planned_with_no_aws_write_until_the_annotation_goes() {
    use support::vpce::{Bed, WAIT};
    let bed = Bed::start("10m").await;
    bed.create(
        "db",
        &[
            ("vpce.hawser.io/subnet-ids", &bed.net.subnets[0]),
            ("hawser.io/plan-only", "true"),
        ],
    )
    .await;
    let plan = eventually("hawser.io/plan on the Service", WAIT, || async {
        let svc = bed.services().get("db").await.ok()?;
        svc.annotations().get("hawser.io/plan").cloned()
    })
    .await;
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    let steps: Vec<(&str, &str)> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap(),
                a["resource"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [("create", "security-group"), ("create", "vpc-endpoint")]
    );
    let note = bed.wait_event("db", "Planned").await;
    assert!(note.contains("create vpc-endpoint"), "{note}");
    assert_eq!(aws_writes(bed.hawser()).await, vec![]);
    assert!(bed.net.live_endpoints(&bed.ec2).await.is_empty());

    // The annotation goes: hawser acts, and the plan goes.
    let patch = serde_json::json!({"metadata": {"annotations": {"hawser.io/plan-only": null}}});
    bed.services()
        .patch(
            "db",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    let svc = bed.available("db").await;
    assert!(!svc.annotations().contains_key("hawser.io/plan"));
    let writes = aws_writes(bed.hawser()).await;
    assert!(
        writes
            .iter()
            .any(|(op, n)| op == "CreateVpcEndpoint" && *n == 1.0),
        "{writes:?}"
    );
}

#[tokio::test]
async fn a_plan_only_deployment_gets_its_stack_only_once_the_annotation_goes() {
    use support::stack::{Bed, QUEUE_TEMPLATE, STACK_STATUS};
    let bed = Bed::start("10m").await;
    let params = format!(r#"{{"QueueName":"{}"}}"#, unique("planonly"));
    bed.create_deployment(
        "web",
        &[
            ("cfn.hawser.io/template", QUEUE_TEMPLATE),
            ("cfn.hawser.io/parameters", &params),
            ("hawser.io/plan-only", "true"),
        ],
    )
    .await;
    let d = bed
        .deployment_where("web", "hawser.io/plan", |a| {
            a.contains_key("hawser.io/plan")
        })
        .await;
    let plan: serde_json::Value = serde_json::from_str(&d.annotations()["hawser.io/plan"]).unwrap();
    let name = bed.stack_name(Some("web"));
    assert_eq!(
        plan,
        serde_json::json!([{"action": "create", "resource": "stack",
            "detail": format!("{name}: add Queue (AWS::SQS::Queue)")}])
    );
    assert_eq!(aws_writes(bed.hawser()).await, vec![]);
    assert!(bed.stack(&name).await.is_none());

    let patch = serde_json::json!({"metadata": {"annotations": {"hawser.io/plan-only": "false"}}});
    bed.deployments()
        .patch(
            "web",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    bed.deployment_where("web", "CREATE_COMPLETE", |a| {
        a.get(STACK_STATUS).map(String::as_str) == Some("CREATE_COMPLETE")
    })
    .await;
    assert!(bed.stack(&name).await.is_some());
    eventually("the plan removed", support::stack::WAIT, || async {
        let d = bed.deployments().get("web").await.ok()?;
        (!d.annotations().contains_key("hawser.io/plan")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn plan_reads_aws_auth_and_names_the_entry_and_binding_or_the_refusal() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let client = client().await;
    let configmap = unique("aws-auth-plan");
    let foreign = "arn:aws:iam::111122223333:role/someone-elses";
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": configmap, "namespace": "kube-system"},
        "data": {"mapRoles": format!("- rolearn: {foreign}\n  username: them\n  groups: [ops]\n")},
    }))
    .unwrap();
    let cms: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), "kube-system");
    cms.create(&Default::default(), &cm).await.unwrap();
    let (a, b) = (unique("iam-a"), unique("iam-b"));
    let ns = |name: &str, role: &str| {
        format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  annotations:\n    iam.hawser.io/role-arn: {role}\n    iam.hawser.io/groups: dev\n---\n"
        )
    };
    let mine = "arn:aws:iam::111122223333:role/team-a";
    let manifest = [ns(&a, mine), ns(&b, foreign)].concat();
    let proxy = FaultProxy::start(&moto::endpoint_url()).await;
    let (code, out) = plan(
        &proxy,
        "e2e",
        &manifest,
        &["-o", "json", "--aws-auth-configmap", &configmap],
    )
    .await;
    let _ = cms.delete(&configmap, &Default::default()).await;
    assert_eq!(code, 1, "a refusal is a finding: {out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let objects = report["objects"].as_array().unwrap();
    assert_eq!(
        objects[0]["actions"],
        serde_json::json!([
            {"action": "create", "resource": "aws-auth-entry", "id": mine,
             "detail": format!("username hawser:{a}:{{{{SessionName}}}}, groups [dev]")},
            {"action": "create", "resource": "role-binding", "id": format!("{a}/hawser-iam"),
             "detail": "groups [dev] bound to ClusterRole edit"},
        ]),
        "{report:#}"
    );
    assert_eq!(objects[1]["status"], "error");
    assert!(
        objects[1]["message"]
            .as_str()
            .unwrap()
            .contains("an entry hawser did not create"),
        "{report:#}"
    );
    assert_eq!(writes(&proxy), vec![]);
}
