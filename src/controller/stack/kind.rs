//! The two kinds of object that own a stack, Namespace and Deployment,
//! behind one trait so one reconcile serves both.

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Namespace};
use kube::{core::PartialObjectMeta, runtime::watcher, Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::annotations::{DeploymentSpec, NamespaceSpec, ObjectKind, StackSpec};
use crate::controller::reconciler::Source;
use crate::namespaces::NamespaceCache;

pub trait StackObject:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static
{
    const KIND: ObjectKind;

    /// The namespace the object's stack belongs to and its outputs
    /// ConfigMap lives in: a Namespace's own name, a Deployment's
    /// namespace.
    fn home(obj: &PartialObjectMeta<Self>) -> String;

    /// Metadata access to the object (finalizer, release patch).
    fn meta_api(client: Client, home: &str) -> Api<PartialObjectMeta<Self>>;

    /// Typed access to the object (server-side apply of its annotations).
    fn typed_api(client: Client, home: &str) -> Api<Self>;

    /// Where the controller's objects come from: every object, or the one
    /// namespace of `--watch-namespace`.
    fn source(client: Client, namespace: Option<&str>, namespaces: &NamespaceCache)
        -> Source<Self>;

    /// The stack this object asks for, if any; a refusal in the parser's
    /// words otherwise.
    fn stack_spec(ann: &BTreeMap<String, String>) -> Result<Option<StackSpec>, String>;
}

/// Annotation errors as one message, `; `-separated.
pub fn joined(errors: Vec<crate::annotations::AnnotationError>) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl StackObject for Namespace {
    const KIND: ObjectKind = ObjectKind::Namespace;

    fn home(obj: &PartialObjectMeta<Self>) -> String {
        obj.name_any()
    }

    fn meta_api(client: Client, _home: &str) -> Api<PartialObjectMeta<Self>> {
        Api::all(client)
    }

    fn typed_api(client: Client, _home: &str) -> Api<Self> {
        Api::all(client)
    }

    /// The process's one Namespace watch (the webhook's cache), not one
    /// of its own.
    fn source(
        _client: Client,
        namespace: Option<&str>,
        namespaces: &NamespaceCache,
    ) -> Source<Self> {
        let only = namespace.map(str::to_owned);
        let changes = namespaces.changes().filter(move |ns| {
            let wanted = match (&only, ns) {
                (Some(only), Ok(ns)) => &ns.name_any() == only,
                _ => true,
            };
            std::future::ready(wanted)
        });
        Source::Shared {
            store: namespaces.store(),
            changes: changes.boxed(),
            synced: namespaces.synced_signal(),
        }
    }

    fn stack_spec(ann: &BTreeMap<String, String>) -> Result<Option<StackSpec>, String> {
        NamespaceSpec::from_annotations(ann)
            .map(|s| s.stack)
            .map_err(joined)
    }
}

impl StackObject for Deployment {
    const KIND: ObjectKind = ObjectKind::Deployment;

    fn home(obj: &PartialObjectMeta<Self>) -> String {
        obj.namespace().unwrap_or_default()
    }

    fn meta_api(client: Client, home: &str) -> Api<PartialObjectMeta<Self>> {
        Api::namespaced(client, home)
    }

    fn typed_api(client: Client, home: &str) -> Api<Self> {
        Api::namespaced(client, home)
    }

    fn source(
        client: Client,
        namespace: Option<&str>,
        _namespaces: &NamespaceCache,
    ) -> Source<Self> {
        let api = match namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        };
        Source::Watch {
            api,
            config: watcher::Config::default(),
        }
    }

    fn stack_spec(ann: &BTreeMap<String, String>) -> Result<Option<StackSpec>, String> {
        DeploymentSpec::from_annotations(ann)
            .map(|s| s.stack)
            .map_err(joined)
    }
}
