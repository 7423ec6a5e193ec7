//! A Helm release of the chart, and its Deployment's container started
//! as the kubelet would start it: from the host's binary, or from the
//! image hack/image.sh built (tests/e2e_install.rs, tests/e2e_image.rs).

use std::{collections::BTreeMap, path::Path, process::Command, time::Duration};

use serde_json::Value;

use super::{artefacts::CHART, image, metric_value, rbac, Process};

const WAIT: Duration = Duration::from_secs(60);

/// A Helm release, uninstalled on drop.
pub struct Release {
    pub name: String,
    pub namespace: String,
}

impl Release {
    pub fn install(name: &str, namespace: &str, set: &[String]) -> Self {
        let mut cmd = Command::new(rbac::helm());
        cmd.args(["install", name, CHART, "--namespace", namespace]);
        for s in set {
            cmd.args(["--set", s]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "helm install: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            name: name.into(),
            namespace: namespace.into(),
        }
    }

    /// What Helm applied, one value per object.
    pub fn manifest(&self) -> Vec<Value> {
        let out = Command::new(rbac::helm())
            .args([
                "get",
                "manifest",
                &self.name,
                "--namespace",
                &self.namespace,
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_yaml_ng::Deserializer::from_str(&String::from_utf8(out.stdout).unwrap())
            .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
            .filter(|v: &Value| !v.is_null())
            .collect()
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = Command::new(rbac::helm())
            .args(["uninstall", &self.name, "--namespace", &self.namespace])
            .output();
    }
}

/// Where the Deployment's container comes from.
pub enum Launch<'a> {
    /// The binary cargo built, on the host.
    Host,
    /// The image hack/image.sh built, run by buildah. `mounts` (host
    /// path, container path) stand for the pod's volumes: each of the
    /// container's `volumeMounts` must be among them, and more may be
    /// (an extra CA file in /etc/ssl/certs, say).
    Image {
        container: &'a image::Container,
        mounts: Vec<(&'a Path, &'a str)>,
    },
}

/// How far [`AsDeployed::start`] waits.
#[derive(PartialEq)]
pub enum Until {
    /// The liveness and readiness probes pass.
    Ready,
    /// The liveness probe passes (for a process that cannot get ready).
    Live,
}

/// The hawser container of the rendered Deployment, started here as the
/// kubelet would start it: the same args and env (field references
/// resolved), the ServiceAccount's token, the pod's volumes, nothing else.
/// Killed on drop.
pub struct AsDeployed {
    process: Process,
    pub admin_port: u16,
    pub webhook_port: u16,
    _dir: tempfile::TempDir,
}

impl AsDeployed {
    pub async fn start(
        release: &Release,
        deployment: &Value,
        launch: Launch<'_>,
        until: Until,
    ) -> Self {
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let args: Vec<&str> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let mut env = BTreeMap::new();
        for e in container["env"].as_array().unwrap() {
            let name = e["name"].as_str().unwrap().to_string();
            let value = match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.name") => "hawser-0".to_string(),
                Some("metadata.namespace") => release.namespace.clone(),
                Some(other) => panic!("{name}: field reference {other} not handled"),
                None => e["value"].as_str().unwrap().to_string(),
            };
            env.insert(name, value);
        }
        let volume_mounts: Vec<&str> = container["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| m["mountPath"].as_str().unwrap())
            .collect();
        let port = |name: &str| -> u16 {
            container["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .and_then(|p| p["containerPort"].as_u64())
                .unwrap_or_else(|| panic!("no port {name}")) as u16
        };
        let probe_port = |probe: &str| {
            container[probe]["httpGet"]["port"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(probe_port("readinessProbe"), "admin");
        assert_eq!(probe_port("livenessProbe"), "admin");

        let sa = pod["serviceAccountName"].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let log = dir.path().join("hawser.log");
        // What the pod's projected token and the in-cluster config give it.
        let config = rbac::kubeconfig_of(&release.namespace, sa).await;
        let process = match launch {
            Launch::Host => {
                assert!(
                    volume_mounts.is_empty(),
                    "the host's binary gets no volumes: {volume_mounts:?}"
                );
                std::fs::write(&kubeconfig, config).unwrap();
                let mut cmd = Command::new(super::hawser_bin());
                cmd.args(&args)
                    .env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .env("KUBECONFIG", &kubeconfig)
                    .envs(&env);
                Process::spawn(cmd, log)
            }
            Launch::Image { container, mounts } => {
                for path in &volume_mounts {
                    assert!(
                        mounts.iter().any(|(_, inside)| inside == path),
                        "the Deployment mounts {path}; give the test a directory for it"
                    );
                }
                // The image runs as 65532: the directory must be readable
                // by it, and the kubeconfig carries its CA inline.
                use std::os::unix::fs::PermissionsExt;
                std::fs::write(&kubeconfig, inline_ca(&config)).unwrap();
                std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                    .unwrap();
                std::fs::set_permissions(&kubeconfig, std::fs::Permissions::from_mode(0o644))
                    .unwrap();
                let config = container.config();
                // A pod's `args` follow the image's entrypoint.
                let mut argv: Vec<&str> = config["Entrypoint"]
                    .as_array()
                    .expect("the image has an entrypoint")
                    .iter()
                    .map(|a| a.as_str().unwrap())
                    .collect();
                argv.extend(&args);
                let mut env: Vec<(String, String)> = env.into_iter().collect();
                env.push(("KUBECONFIG".into(), "/hawser-e2e/kubeconfig".into()));
                let mut all = mounts.clone();
                all.push((dir.path(), "/hawser-e2e"));
                Process::spawn_group(container.run(&all, &env, &argv), log)
            }
        };
        let mut this = Self {
            process,
            admin_port: port("admin"),
            webhook_port: port("webhook"),
            _dir: dir,
        };
        let probes: &[&str] = match until {
            Until::Ready => &["livenessProbe", "readinessProbe"],
            Until::Live => &["livenessProbe"],
        };
        for probe in probes {
            let path = container[*probe]["httpGet"]["path"].as_str().unwrap();
            let url = format!("http://127.0.0.1:{}{path}", this.admin_port);
            this.process.wait_for(&url, WAIT).await;
        }
        this
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The process serving the admin port (inside the container, if any).
    pub fn pid(&self) -> u32 {
        image::listener_pid(self.admin_port).expect("a process listening on the admin port")
    }

    /// `hawser_webhooks_active`.
    pub async fn active(&self) -> f64 {
        let url = format!("http://127.0.0.1:{}/metrics", self.admin_port);
        let text = reqwest::get(url).await.unwrap().text().await.unwrap();
        metric_value(&text, "hawser_webhooks_active")
    }

    /// The HTTP status of `path` on the admin port.
    pub async fn admin_status(&self, path: &str) -> u16 {
        let url = format!("http://127.0.0.1:{}{path}", self.admin_port);
        reqwest::get(url).await.unwrap().status().as_u16()
    }
}

/// `kubeconfig` (JSON) with its cluster's CA file replaced by the file's
/// contents, for a process that cannot see the host's files.
fn inline_ca(kubeconfig: &str) -> String {
    use base64::Engine;
    let mut config: Value = serde_json::from_str(kubeconfig).unwrap();
    let cluster = &mut config["clusters"][0]["cluster"];
    let path = cluster["certificate-authority"]
        .as_str()
        .unwrap()
        .to_owned();
    let pem = std::fs::read(path).unwrap();
    let map = cluster.as_object_mut().unwrap();
    map.remove("certificate-authority");
    map.insert(
        "certificate-authority-data".into(),
        base64::engine::general_purpose::STANDARD.encode(pem).into(),
    );
    config.to_string()
}
