//! In-memory cache of Namespace metadata: the process's one watch of
//! Namespaces. The webhook reads it to learn a namespace's annotations
//! without an API call per admission request; the stranded-resources
//! check and the controllers that reconcile Namespaces (namespace, stack)
//! are fed from it ([`NamespaceCache::changes`]).

use std::{collections::BTreeMap, collections::VecDeque, sync::Arc, time::Duration};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    core::PartialObjectMeta,
    runtime::{
        reflector::{self, ObjectRef, Store},
        watcher, WatchStreamExt,
    },
    Api, Client,
};

type NamespaceMeta = PartialObjectMeta<Namespace>;

#[derive(Clone)]
pub struct NamespaceCache {
    store: Store<NamespaceMeta>,
    /// For the one live look-up of a namespace the synced cache lacks.
    client: Option<Client>,
    /// Each Namespace the watch applies or deletes, for [`Self::changes`].
    /// A broadcast never waits for its receivers: a slow controller cannot
    /// hold up the webhook's cache.
    changed: tokio::sync::broadcast::Sender<Arc<NamespaceMeta>>,
    /// True once the first full list is in the store. Its own signal, not
    /// the store's readiness: kube-runtime's store wakes only the last task
    /// waiting on it, so with the controllers fed by this cache also
    /// waiting, the webhook's readiness could sleep forever (CI: a replica
    /// with the namespace controller never became ready).
    synced: tokio::sync::watch::Receiver<bool>,
}

/// Changes held for a subscriber that is behind; past this it reads the
/// whole cache again.
const CHANGES_BUFFER: usize = 1024;

/// How long the live look-up of a namespace the synced cache lacks may
/// take (at most `--namespace-wait`).
const LIVE_LOOKUP: Duration = Duration::from_millis(500);

/// What the webhook needs to know about a namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamespaceInfo {
    pub annotations: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

impl NamespaceCache {
    /// Starts a metadata-only watch of all Namespaces (annotations and labels
    /// are all we need, and metadata is a fraction of the object). The
    /// returned future drives the watch and must be spawned.
    pub fn watch(client: Client) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        let (reader, writer) = reflector::store();
        let (changed, _) = tokio::sync::broadcast::channel(CHANGES_BUFFER);
        let sender = changed.clone();
        let (synced_tx, synced) = tokio::sync::watch::channel(false);
        // Api<PartialObjectMeta<_>> makes metadata-only list and watch calls.
        let api: Api<NamespaceMeta> = Api::all(client.clone());
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(crate::cache::slim)
            .reflect(writer)
            .for_each(move |event| {
                match event {
                    Ok(
                        watcher::Event::Apply(ns)
                        | watcher::Event::InitApply(ns)
                        | watcher::Event::Delete(ns),
                    ) => {
                        // No receiver (no controller running) is fine.
                        let _ = sender.send(Arc::new(ns));
                    }
                    // The reflector has applied it: the store is complete.
                    Ok(watcher::Event::InitDone) => {
                        synced_tx.send_replace(true);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "namespace watch error; retrying with backoff")
                    }
                }
                std::future::ready(())
            });
        (
            Self {
                store: reader,
                client: Some(client),
                changed,
                synced,
            },
            stream,
        )
    }

    /// A cache filled once from a list, for tests and tools.
    pub fn from_list(namespaces: Vec<NamespaceMeta>) -> Self {
        let (reader, mut writer) = reflector::store();
        writer.apply_watcher_event(&watcher::Event::Init);
        for ns in namespaces {
            writer.apply_watcher_event(&watcher::Event::InitApply(ns));
        }
        writer.apply_watcher_event(&watcher::Event::InitDone);
        Self {
            store: reader,
            client: None,
            changed: tokio::sync::broadcast::channel(1).0,
            synced: tokio::sync::watch::channel(true).1,
        }
    }

    /// The store behind the cache, for a controller fed by [`Self::changes`].
    pub fn store(&self) -> Store<NamespaceMeta> {
        self.store.clone()
    }

    /// Every Namespace now in the cache, then each one the watch applies
    /// or deletes from here on: what a controller reconciling Namespaces
    /// looks at, so the one watch serves the webhook and the controllers.
    /// A subscriber that falls more than [`CHANGES_BUFFER`] changes behind
    /// reads the whole cache again, so no change is lost (a pass is
    /// idempotent). Subscribe only while consuming: each subscriber
    /// buffers what it has not read.
    pub fn changes(
        &self,
    ) -> impl Stream<Item = Result<NamespaceMeta, watcher::Error>> + Send + 'static {
        use tokio::sync::broadcast::error::RecvError;
        // Subscribed before the cache is read: nothing falls in between.
        let rx = self.changed.subscribe();
        let store = self.store.clone();
        let pending: VecDeque<Arc<NamespaceMeta>> = store.state().into();
        futures::stream::unfold(
            (rx, pending, store),
            |(mut rx, mut pending, store)| async move {
                loop {
                    if let Some(ns) = pending.pop_front() {
                        return Some((Ok((*ns).clone()), (rx, pending, store)));
                    }
                    match rx.recv().await {
                        Ok(ns) => return Some((Ok((*ns).clone()), (rx, pending, store))),
                        Err(RecvError::Lagged(missed)) => {
                            tracing::warn!(
                                missed,
                                "a namespace subscriber fell behind; reading the whole cache again"
                            );
                            pending.extend(store.state());
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            },
        )
    }

    /// Resolves once the first full list has been read: true, or false if
    /// the watch has stopped before that. Any number of tasks may wait.
    pub async fn synced(&self) -> bool {
        self.synced.clone().wait_for(|s| *s).await.is_ok()
    }

    /// Like [`synced`](Self::synced), waiting forever if the watch stops.
    pub async fn wait_synced(&self) {
        if !self.synced().await {
            std::future::pending::<()>().await;
        }
    }

    /// Whether the first full list is in, as a signal a controller fed by
    /// [`Self::changes`] can wait on without waiting on the store.
    pub fn synced_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.synced.clone()
    }

    fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    pub fn get(&self, name: &str) -> Option<NamespaceInfo> {
        self.store.get(&ObjectRef::new(name)).map(|ns| info(&ns))
    }

    /// Like [`get`](Self::get), for a namespace the cache may not have
    /// seen yet: `kubectl apply -f dir/` creates a Namespace and its first
    /// objects within milliseconds of each other. Before the cache's first
    /// full list, waits up to `wait` for it. After that, a namespace it
    /// lacks is looked up once on the API (at most 500 ms, and never past
    /// `wait`), so a request naming a namespace that does not exist is
    /// answered at once instead of after `wait` every time.
    pub async fn get_or_wait(&self, name: &str, wait: Duration) -> Option<NamespaceInfo> {
        if let Some(found) = self.get(name) {
            return Some(found);
        }
        let deadline = tokio::time::Instant::now() + wait;
        if self.is_synced() {
            let client = self.client.as_ref()?;
            let api: Api<Namespace> = Api::all(client.clone());
            let lookup = tokio::time::timeout(wait.min(LIVE_LOOKUP), api.get_metadata_opt(name));
            return match lookup.await {
                Ok(Ok(found)) => found.map(|ns| info(&ns)),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, namespace = name, "live namespace look-up failed");
                    None
                }
                Err(_) => None,
            };
        }
        let _ = tokio::time::timeout_at(deadline, self.wait_synced()).await;
        self.get(name)
    }

    pub fn all(&self) -> Vec<Arc<NamespaceMeta>> {
        self.store.state()
    }
}

fn info(ns: &NamespaceMeta) -> NamespaceInfo {
    NamespaceInfo {
        annotations: ns.metadata.annotations.clone().unwrap_or_default(),
        labels: ns.metadata.labels.clone().unwrap_or_default(),
    }
}

/// Builds namespace metadata, for tests.
pub fn namespace_meta(name: &str, annotations: &[(&str, &str)]) -> NamespaceMeta {
    use kube::core::ObjectMeta;
    let mut meta = NamespaceMeta {
        types: None,
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        _phantom: Default::default(),
    };
    if !annotations.is_empty() {
        meta.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }
    meta
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;

    #[tokio::test(start_paused = true)]
    async fn finds_namespaces_and_answers_a_missing_one_at_once_once_synced() {
        let cache = NamespaceCache::from_list(vec![namespace_meta("a", &[("k", "v")])]);
        assert!(cache.synced().await);
        assert_eq!(
            cache
                .get("a")
                .unwrap()
                .annotations
                .get("k")
                .map(String::as_str),
            Some("v")
        );
        let started = tokio::time::Instant::now();
        assert!(cache
            .get_or_wait("b", Duration::from_secs(2))
            .await
            .is_none());
        assert_eq!(started.elapsed(), Duration::ZERO, "no wait once synced");
    }

    #[tokio::test(start_paused = true)]
    async fn before_the_first_list_a_namespace_is_waited_for_up_to_the_wait() {
        let (reader, _writer) = reflector::store::<NamespaceMeta>();
        let (_synced_tx, synced) = tokio::sync::watch::channel(false);
        let cache = NamespaceCache {
            store: reader,
            client: None,
            changed: tokio::sync::broadcast::channel(1).0,
            synced,
        };
        let started = tokio::time::Instant::now();
        assert!(cache
            .get_or_wait("b", Duration::from_secs(2))
            .await
            .is_none());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(2) && waited < Duration::from_millis(2300),
            "{waited:?}"
        );
    }

    /// Every waiter learns of the first full list, whoever else waits on
    /// the store: kube-runtime's store wakes only its last waiter, and a
    /// controller fed by this cache waits on it after the webhook does.
    #[tokio::test]
    async fn every_waiter_learns_the_cache_is_synced() {
        let (reader, mut writer) = reflector::store::<NamespaceMeta>();
        let (synced_tx, synced) = tokio::sync::watch::channel(false);
        let cache = NamespaceCache {
            store: reader.clone(),
            client: None,
            changed: tokio::sync::broadcast::channel(1).0,
            synced,
        };
        let webhook = tokio::spawn({
            let cache = cache.clone();
            async move { cache.synced().await }
        });
        let second = tokio::spawn({
            let cache = cache.clone();
            async move { cache.wait_synced().await }
        });
        tokio::task::yield_now().await;
        // The controller's wait, registered last, as in the failing run.
        let controller = tokio::spawn(async move { reader.wait_until_ready().await.is_ok() });
        tokio::task::yield_now().await;
        writer.apply_watcher_event(&watcher::Event::Init);
        writer.apply_watcher_event(&watcher::Event::InitDone);
        synced_tx.send_replace(true);
        let within = Duration::from_secs(5);
        assert!(tokio::time::timeout(within, webhook)
            .await
            .unwrap()
            .unwrap());
        tokio::time::timeout(within, second).await.unwrap().unwrap();
        assert!(tokio::time::timeout(within, controller)
            .await
            .unwrap()
            .unwrap());
        assert!(cache.is_synced());
    }

    #[tokio::test]
    async fn changes_yield_the_cache_then_each_change_and_the_cache_again_when_behind() {
        let names = |v: Vec<Result<NamespaceMeta, watcher::Error>>| -> Vec<String> {
            v.into_iter().map(|n| n.unwrap().name_any()).collect()
        };
        let cache =
            NamespaceCache::from_list(vec![namespace_meta("a", &[]), namespace_meta("b", &[])]);
        let mut changes = Box::pin(cache.changes());
        let first: Vec<_> = (&mut changes).take(2).collect().await;
        let mut first = names(first);
        first.sort();
        assert_eq!(first, ["a", "b"], "the cache first");
        cache
            .changed
            .send(Arc::new(namespace_meta("c", &[])))
            .unwrap();
        assert_eq!(names((&mut changes).take(1).collect().await), ["c"]);

        // Two changes into a buffer of one: the subscriber is behind, and
        // reads the whole cache again instead of losing a change.
        let small = NamespaceCache {
            changed: tokio::sync::broadcast::channel(1).0,
            ..cache.clone()
        };
        let mut behind = Box::pin(small.changes());
        let _ = (&mut behind).take(2).collect::<Vec<_>>().await;
        for n in ["x", "y"] {
            small
                .changed
                .send(Arc::new(namespace_meta(n, &[])))
                .unwrap();
        }
        let mut again = names((&mut behind).take(3).collect().await);
        again.sort();
        assert_eq!(
            again,
            ["a", "b", "y"],
            "the cache again, then the newest change"
        );
    }
}
