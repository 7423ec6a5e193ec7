//! What the process keeps of the objects it watches.

use kube::Resource;

/// The annotation `kubectl apply` keeps a copy of the whole manifest in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what no part of hawser reads from a cached object: its managed
/// fields and `kubectl apply`'s copy of the manifest, together most of a
/// plain object's metadata. Every watch slims its objects before they are
/// stored, so a cache of many objects hawser has nothing to do with stays
/// small.
pub fn slim<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::core::v1::Service, apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry,
    };
    use kube::core::{ObjectMeta, PartialObjectMeta};

    #[test]
    fn slimming_keeps_what_hawser_reads() {
        let mut obj = PartialObjectMeta::<Service> {
            metadata: ObjectMeta {
                name: Some("s3".into()),
                annotations: Some(
                    [
                        (super::LAST_APPLIED.to_string(), "{...}".to_string()),
                        ("vpce.hawser.io/service-name".into(), "x".into()),
                    ]
                    .into(),
                ),
                finalizers: Some(vec!["vpce.hawser.io/cleanup".into()]),
                managed_fields: Some(vec![ManagedFieldsEntry::default()]),
                ..Default::default()
            },
            ..Default::default()
        };
        super::slim(&mut obj);
        let meta = &obj.metadata;
        assert_eq!(meta.managed_fields, None);
        assert_eq!(
            meta.annotations
                .as_ref()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["vpce.hawser.io/service-name"]
        );
        assert_eq!(meta.name.as_deref(), Some("s3"));
        assert_eq!(meta.finalizers.as_ref().unwrap().len(), 1);
    }
}
