//! Wiring: clients, registry, tasks, graceful shutdown.

use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::{
    admin::{self, Readiness},
    cli::{CertSource, ControllerKind, LogFormat, RunArgs},
    metrics::Metrics,
    namespaces::NamespaceCache,
    self_managed::{self, SelfManaged},
    tls::{self, CertReloader},
    webhook,
};

pub fn init_tracing(format: LogFormat) {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

const CHECK_NAMESPACE_CACHE: &str = "namespace-cache";
/// Fails from the first termination signal on, so no new traffic is sent
/// to a replica that is draining.
const CHECK_NOT_DRAINING: &str = "not-draining";

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new().context("creating metrics")?);
    let readiness = Arc::new(Readiness::default());
    readiness.require(CHECK_NAMESPACE_CACHE);
    let shutdown = CancellationToken::new();

    let client = kube::Client::try_default()
        .await
        .context("creating the Kubernetes client from kubeconfig or the in-cluster config")?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let serving = match args.certs.source {
        CertSource::Directory | CertSource::CertManager => {
            let reloader =
                CertReloader::start(&args.tls_cert_dir, provider.clone(), metrics.clone())
                    .with_context(|| {
                        format!(
                            "loading the serving certificate from {}",
                            args.tls_cert_dir.display()
                        )
                    })?;
            let cert = reloader.cert();
            tokio::spawn(reloader.run(args.tls_reload_interval, shutdown.clone()));
            cert
        }
        CertSource::SelfManaged => {
            let c = &args.certs;
            let cfg = self_managed::Config {
                namespace: c.namespace.clone(),
                secret_name: c.certs_secret.clone(),
                webhook_config_name: c.webhook_config_name.clone(),
                dns_names: crate::certs::service_dns_names(&c.webhook_service, &c.namespace),
                ips: c.cert_ips.clone(),
                validity: c.cert_validity,
                renew_before: c.cert_renew_before,
                grace: c.ca_rotation_grace,
                interval: args.tls_reload_interval,
            };
            let manager = SelfManaged::start(
                client.clone(),
                cfg,
                provider.clone(),
                metrics.clone(),
                readiness.clone(),
            )
            .await
            .context("loading or creating the self-managed certificate Secret")?;
            let cert = manager.cert();
            tokio::spawn(manager.run(shutdown.clone()));
            cert
        }
    };
    let tls_config = tls::server_config(serving, provider).context("building the TLS config")?;
    let (namespaces, drive) = NamespaceCache::watch(client.clone());
    tokio::spawn(drive);
    {
        let namespaces = namespaces.clone();
        let readiness = readiness.clone();
        tokio::spawn(async move {
            if namespaces.synced().await {
                tracing::info!("namespace cache synced");
                readiness.set(CHECK_NAMESPACE_CACHE, true);
            }
        });
    }

    let controller_config = args.controllers.config();
    let default_region = controller_config.aws.region.clone();
    let controllers = crate::controller::start(
        &controller_config,
        crate::controller::Shared {
            namespaces: namespaces.clone(),
            aws_auth: args.aws_auth.config(),
            allow_system_groups: args.allow_system_groups,
        },
        client.clone(),
        metrics.clone(),
        readiness.clone(),
        shutdown.clone(),
        &args.certs.namespace,
    )
    .await
    .context("starting the controllers")?;

    let ctx = Arc::new(webhook::Context {
        config: webhook::Config {
            allow_privileged_containers: args.allow_privileged_containers,
            allow_system_groups: args.allow_system_groups,
            controller_usernames: args.controller_usernames.clone(),
            excluded_namespaces: args.excluded_namespaces.clone(),
            namespace_wait: args.namespace_wait,
            aws_auth_guard: webhook::aws_auth_guard::GuardConfig {
                protection: crate::aws_auth::Protection::from_pattern(
                    args.aws_auth.protected_role_arn_pattern.as_deref(),
                )
                .context("--protected-role-arn-pattern")?,
                aws_auth_name: args.aws_auth.aws_auth_configmap.clone(),
            },
            managed: webhook::stranded::Managed {
                services: args.controllers.controllers.contains(&ControllerKind::Vpce),
                deployments: args
                    .controllers
                    .controllers
                    .contains(&ControllerKind::Stack),
                only_namespace: args.controllers.watch_namespace.clone(),
            },
            default_region: default_region.clone(),
        },
        namespaces,
        metrics: metrics.clone(),
        client: Some(client.clone()),
    });

    let webhook_handle = axum_server::Handle::new();
    // Hostile or stalled clients are cut: the handshake and each request
    // have 10 s (webhook::TLS_HANDSHAKE_TIMEOUT, REQUEST_READ_TIMEOUT).
    let acceptor = webhook::RequestDeadline::new(
        axum_server::tls_rustls::RustlsAcceptor::new(
            axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls_config)),
        )
        .handshake_timeout(webhook::TLS_HANDSHAKE_TIMEOUT),
        webhook::REQUEST_READ_TIMEOUT,
    );
    let webhook_server = axum_server::bind(args.webhook_addr)
        .acceptor(acceptor)
        .handle(webhook_handle.clone())
        .serve(webhook::router(ctx).into_make_service());

    let admin_listener = tokio::net::TcpListener::bind(args.admin_addr)
        .await
        .with_context(|| format!("binding the admin port {}", args.admin_addr))?;
    // The admin port outlives the rest, so probes and the last metrics
    // stay readable while the webhook drains and the Lease is released.
    let admin_stop = CancellationToken::new();
    let admin_server = {
        let stop = admin_stop.clone();
        axum::serve(admin_listener, admin::router(metrics, readiness.clone()))
            .with_graceful_shutdown(async move { stop.cancelled().await })
    };
    let admin_task = tokio::spawn(async move { admin_server.await });

    tracing::info!(webhook = %args.webhook_addr, admin = %args.admin_addr, "hawser serving");

    readiness.require(CHECK_NOT_DRAINING);
    readiness.set(CHECK_NOT_DRAINING, true);
    let grace = args.shutdown_grace;
    let signals = {
        let (handle, readiness) = (webhook_handle.clone(), readiness.clone());
        async move {
            wait_for_signal().await;
            tracing::info!(
                ?grace,
                "shutting down: no new admission connections; finishing in-flight requests"
            );
            readiness.set(CHECK_NOT_DRAINING, false);
            handle.graceful_shutdown(Some(grace));
        }
    };
    tokio::spawn(signals);

    // Order matters: admission requests in flight finish first (or the
    // grace runs out); only then do the controllers stop and the Lease get
    // released, so a replica never gives up leadership while it still
    // answers for objects it may be reconciling.
    let webhook_result = webhook_server.await;
    tracing::info!("admission server stopped");
    shutdown.cancel();
    if let Some(task) = controllers {
        // The elector bounds this (controllers get the lease grace to
        // stop, the release one grace more); the margin only guards
        // against a hung task.
        let wait = args.controllers.lease_duration + grace;
        if tokio::time::timeout(wait, task).await.is_err() {
            tracing::warn!(
                ?wait,
                "controllers and lease release did not finish in time"
            );
        }
    }
    admin_stop.cancel();
    let admin_result = admin_task.await.context("admin server task")?;
    webhook_result.context("admission server failed")?;
    admin_result.context("admin server failed")?;
    tracing::info!("hawser stopped");
    Ok(())
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops hawser");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
