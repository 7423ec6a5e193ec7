//! One Prometheus registry, passed explicitly. Every name starts with
//! `hawser_`; label values come from closed sets (webhook, kind, operation,
//! result, controller, AWS service and operation, error category), never
//! from object names.

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub admission_requests: IntCounterVec,
    pub admission_duration: HistogramVec,
    pub cert_expiry: Gauge,
    pub cert_reloads: IntCounterVec,
    pub webhooks_active: prometheus::IntGauge,
    pub leader: prometheus::IntGauge,
    pub reconcile_total: IntCounterVec,
    pub reconcile_errors: IntCounterVec,
    pub reconcile_duration: HistogramVec,
    pub aws_api_calls: IntCounterVec,
    pub managed_objects: IntGaugeVec,
    pub aws_auth_writes: IntCounterVec,
    pub cfn_requests: IntCounterVec,
    pub gc_resources: IntCounterVec,
}

/// A counter with `labels`, registered in `registry`.
fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let counter = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(counter.clone()))?;
    Ok(counter)
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let admission_requests = counter(
            &registry,
            "hawser_admission_requests_total",
            "Admission requests answered, by webhook path, object kind, operation and result (allowed, patched, denied, invalid).",
            &["webhook", "kind", "operation", "result"],
        )?;
        let admission_duration = HistogramVec::new(
            HistogramOpts::new(
                "hawser_admission_duration_seconds",
                "Time to answer an admission request, from decoded body to encoded response.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["webhook"],
        )?;
        let cert_expiry = Gauge::new(
            "hawser_webhook_cert_expiry_timestamp_seconds",
            "Expiry (Unix time) of the serving certificate in use.",
        )?;
        let cert_reloads = counter(
            &registry,
            "hawser_webhook_cert_reloads_total",
            "Attempts to load a changed serving certificate, by result (success, error).",
            &["result"],
        )?;
        let reconcile_total = counter(
            &registry,
            "hawser_reconcile_total",
            "Reconciliations finished, by controller and result (applied, pending, cleaned_up, failed, error, skipped).",
            &["controller", "result"],
        )?;
        let reconcile_errors = counter(
            &registry,
            "hawser_reconcile_errors_total",
            "Reconciliations that failed, by controller and error category.",
            &["controller", "category"],
        )?;
        let reconcile_duration = HistogramVec::new(
            HistogramOpts::new(
                "hawser_reconcile_duration_seconds",
                "Time one reconciliation took, AWS calls included.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["controller"],
        )?;
        let aws_api_calls = counter(
            &registry,
            "hawser_aws_api_calls_total",
            "AWS API calls, by service, operation and outcome (success or an error category).",
            &["service", "operation", "outcome"],
        )?;
        let managed_objects = IntGaugeVec::new(
            Opts::new(
                "hawser_managed_objects",
                "Objects a controller manages, by the state it last wrote.",
            ),
            &["controller", "state"],
        )?;
        let aws_auth_writes = counter(
            &registry,
            "hawser_aws_auth_writes_total",
            "Batches of namespace changes to kube-system/aws-auth, by result (written, unchanged, conflict, or an error category).",
            &["result"],
        )?;
        let cfn_requests = counter(
            &registry,
            "hawser_cfn_requests_total",
            "CloudFormation custom-resource requests taken from the queue, by type (Create, Update, Delete, unknown) and result (success, failed: answered so; dropped: no ResponseURL to answer; duplicate: already answered; retry: the answer could not be delivered).",
            &["type", "result"],
        )?;
        let gc_resources = counter(
            &registry,
            "hawser_gc_resources_total",
            "Garbage collection (--gc-period): AWS resources tagged for this cluster whose owner is gone, by resource (vpc-endpoint, security-group, stack) and result (deleted, failed, young: left for a later run).",
            &["resource", "result"],
        )?;
        // Present from the start, so dashboards and alerts see zeroes
        // rather than absent series.
        for webhook in ["mutate", "validate", "validate-aws-auth"] {
            admission_duration.with_label_values(&[webhook]);
        }
        let webhooks_active = prometheus::IntGauge::new(
            "hawser_webhooks_active",
            "Self-managed mode: 1 once both webhook configurations exist and admit (caBundle in place, namespaceSelector from hawser.io/namespace-selector), 0 while they are absent or wait for activation.",
        )?;
        registry.register(Box::new(webhooks_active.clone()))?;
        let leader = prometheus::IntGauge::new(
            "hawser_leader",
            "1 while this replica holds the controllers' Lease, 0 otherwise.",
        )?;
        registry.register(Box::new(leader.clone()))?;
        registry.register(Box::new(admission_duration.clone()))?;
        registry.register(Box::new(cert_expiry.clone()))?;
        registry.register(Box::new(reconcile_duration.clone()))?;
        registry.register(Box::new(managed_objects.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self {
            registry,
            admission_requests,
            admission_duration,
            cert_expiry,
            cert_reloads,
            webhooks_active,
            leader,
            reconcile_total,
            reconcile_errors,
            reconcile_duration,
            aws_api_calls,
            managed_objects,
            aws_auth_writes,
            cfn_requests,
            gc_resources,
        })
    }

    /// The registry in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_their_labels() {
        let m = Metrics::new().unwrap();
        m.admission_requests
            .with_label_values(&["mutate", "Deployment", "CREATE", "patched"])
            .inc();
        let text = m.render();
        assert!(text.contains(
            r#"hawser_admission_requests_total{kind="Deployment",operation="CREATE",result="patched",webhook="mutate"} 1"#
        ), "{text}");
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
    }
}
