use clap::Parser as _;
use serde_json::json;

use super::*;
use crate::cli::{Cli, Command, LintOutput};

fn args(extra: &[&str]) -> LintArgs {
    let mut argv = vec!["hawser", "lint", "-f", "-"];
    argv.extend_from_slice(extra);
    match Cli::try_parse_from(argv).unwrap().command {
        Command::Lint(args) => args,
        _ => unreachable!(),
    }
}

async fn lint_text(text: &str, extra: &[&str]) -> Report {
    let objects = input::objects("m.yaml", text).unwrap();
    lint(&args(extra), &objects, vec![]).await.unwrap()
}

const PRIVILEGED: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: agent, namespace: team-a}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec:
      containers:
      - name: agent
        image: busybox
        securityContext: {privileged: true}
";

#[tokio::test]
async fn a_bad_annotation_is_refused_naming_it_and_the_lint_fails() {
    let report = lint_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: db\n  annotations:\n    \
         vpce.hawser.io/service-name: not a service\nspec: {ports: [{port: 5432}]}\n",
        &[],
    )
    .await;
    let f = &report.objects[0];
    assert_eq!(f.verdict, Verdict::Refused);
    assert_eq!(f.namespace.as_deref(), Some("default"));
    let message = f.message.as_deref().unwrap();
    assert!(
        message
            .starts_with("annotation vpce.hawser.io/service-name: invalid value \"not a service\""),
        "{message}"
    );
    assert_eq!(report.status(), 1);
    let text = render(&report, LintOutput::Text, false);
    assert!(
        text.starts_with(
            "m.yaml: document 1: Service default/db: refused: annotation \
             vpce.hawser.io/service-name: invalid value"
        ),
        "{text}"
    );
    assert!(
        text.ends_with(
            "1 object: 0 admitted unchanged, 0 admitted with changes, 1 refused, 0 skipped; 0 warnings\n"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_privileged_container_is_neutralised_unless_the_namespace_in_the_input_allows_it() {
    let report = lint_text(PRIVILEGED, &[]).await;
    let f = &report.objects[0];
    assert_eq!(f.verdict, Verdict::Patched);
    let patch = f.patch.as_ref().unwrap().as_array().unwrap();
    assert!(
        patch.contains(&json!({
            "op": "add",
            "path": "/spec/template/spec/containers/0/securityContext/privileged",
            "value": false
        })),
        "{patch:?}"
    );
    assert!(
        f.warnings.iter().any(|w| w.contains("privileged")),
        "{:?}",
        f.warnings
    );
    // Nothing told lint about team-a.
    assert_eq!(
        report.unknown_namespaces,
        BTreeSet::from(["team-a".to_string()])
    );
    assert_eq!(report.status(), 0);

    let allowing = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n  annotations:\n    \
         security.hawser.io/allow-privileged: \"true\"\n---\n{PRIVILEGED}"
    );
    let report = lint_text(&allowing, &[]).await;
    let f = &report.objects[1];
    assert!(f.warnings.is_empty(), "{:?}", f.warnings);
    assert!(!f
        .patch
        .iter()
        .flat_map(|p| p.as_array().unwrap())
        .any(|op| op["path"].as_str().unwrap().ends_with("/privileged")));
    assert!(report.unknown_namespaces.is_empty());
    // The cluster's Namespaces count too.
    let objects = input::objects("m.yaml", PRIVILEGED).unwrap();
    let cluster = vec![(
        "team-a".to_string(),
        BTreeMap::from([(
            "security.hawser.io/allow-privileged".to_string(),
            "true".to_string(),
        )]),
    )];
    let report = lint(&args(&[]), &objects, cluster).await.unwrap();
    assert!(report.objects[0].warnings.is_empty());
    assert!(report.unknown_namespaces.is_empty());
}

#[tokio::test]
async fn json_output_and_the_mutations_show_what_the_webhook_would_do() {
    let report = lint_text(
        &format!("{PRIVILEGED}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n"),
        &["-n", "other"],
    )
    .await;
    let json: Value = serde_json::from_str(&render(&report, LintOutput::Json, false)).unwrap();
    assert_eq!(json["objects"][0]["verdict"], "patched");
    assert_eq!(json["objects"][0]["namespace"], "team-a");
    assert!(json["objects"][0]["patch"].is_array());
    assert_eq!(json["objects"][1]["verdict"], "skipped");
    assert_eq!(json["objects"][1]["kind"], "ConfigMap");
    assert_eq!(json["unknownNamespaces"], json!(["team-a"]));

    let text = render(&report, LintOutput::Text, true);
    assert!(
        text.contains(
            "  patch: {\"op\":\"add\",\"path\":\"/spec/template/spec/containers/0/securityContext/privileged\",\"value\":false}"
        ),
        "{text}"
    );
    assert!(
        text.contains("m.yaml: document 2: ConfigMap c: skipped: hawser admits only"),
        "{text}"
    );
    assert!(!render(&report, LintOutput::Text, false).contains("  patch: "));
}

#[tokio::test]
async fn excluded_namespaces_are_admitted_untouched() {
    let report = lint_text(&PRIVILEGED.replace("team-a", "kube-system"), &[]).await;
    assert_eq!(report.objects[0].verdict, Verdict::Allowed);
    assert!(report.unknown_namespaces.is_empty());
}

#[tokio::test]
async fn unreadable_input_exits_2() {
    let mut a = args(&[]);
    a.input.files = vec!["/nonexistent/manifests.yaml".into()];
    assert_eq!(run(&a).await, 2);
}
