//! A Kubernetes client for the offline subcommands (`lint`, `gc`): from
//! `--kubeconfig`, else kube's own inference (`KUBECONFIG`,
//! `~/.kube/config`, the in-cluster ServiceAccount).

use std::path::Path;

use anyhow::Context;

pub async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    let Some(path) = kubeconfig else {
        return kube::Client::try_default()
            .await
            .context("no Kubernetes client configuration (pass --kubeconfig, or set KUBECONFIG)");
    };
    let file = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(file, &Default::default())
        .await
        .with_context(|| format!("{}", path.display()))?;
    Ok(kube::Client::try_from(config)?)
}
