//! What `hawser gc` reads: the cluster's owners (metadata only), the
//! accounts and regions they reach, and every resource tagged for this
//! cluster there. Nothing here writes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Namespace, core::v1::Service};
use kube::{
    api::ListParams,
    core::{PartialObjectMeta, Resource as KubeResource},
    Api, Client, ResourceExt,
};
use serde::de::DeserializeOwned;

use super::judge::{Found, Owner, Owners, Resource};
use super::Settings;
use crate::annotations::keys::{
    AWS_REGION, CFN_FINALIZER, CFN_STACK_ID, CFN_TEMPLATE, CFN_TEMPLATE_CONFIGMAP, TAG_CLUSTER,
    VPCE_ENDPOINT_ID, VPCE_FINALIZER, VPCE_SECURITY_GROUP_ID, VPCE_SERVICE_NAME,
};
use crate::annotations::parse_region;
use crate::aws::{CfnProvider, CloudFormationApi, Ec2Api, Ec2Provider, Scope, StackStatus, Tags};
use crate::controller::planned;
use crate::controller::scope::scope_for;
use crate::controller::stack::desired::stack_name;

/// The cluster as gc needs it.
#[derive(Debug, Default)]
pub struct Cluster {
    pub owners: Owners,
    /// Where resources may be: hawser's own identity and every
    /// namespace's role, each in every region named anywhere.
    pub scopes: Vec<Scope>,
}

/// Every object of kind `K`, metadata only, 500 at a time.
async fn list_all<K>(api: Api<K>) -> Result<Vec<PartialObjectMeta<K>>, kube::Error>
where
    K: KubeResource + Clone + DeserializeOwned + Debug,
{
    let mut out = Vec::new();
    let mut lp = ListParams::default().limit(500);
    loop {
        let page = api.list_metadata(&lp).await?;
        out.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => lp = lp.continue_token(&token),
            _ => return Ok(out),
        }
    }
}

/// Whether the object carries finalizer `name`.
pub fn has_finalizer<K>(obj: &PartialObjectMeta<K>, name: &str) -> bool {
    obj.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == name))
}

fn asks_for_stack(ann: &BTreeMap<String, String>) -> bool {
    ann.contains_key(CFN_TEMPLATE) || ann.contains_key(CFN_TEMPLATE_CONFIGMAP)
}

/// A Service's owner entry: its namespace's role and region, its own
/// region first (as the VPC endpoint controller resolves them).
fn service_owner(
    svc: &PartialObjectMeta<Service>,
    ns_annotations: &BTreeMap<String, String>,
    default_region: &str,
) -> Owner {
    let ns = svc.namespace().unwrap_or_default();
    let own_region = svc
        .annotations()
        .get(AWS_REGION)
        .map(|v| parse_region(AWS_REGION, v));
    let scope = match own_region {
        Some(Err(_)) => None,
        Some(Ok(r)) => scope_for(&ns, ns_annotations, Some(&r), default_region).ok(),
        None => scope_for(&ns, ns_annotations, None, default_region).ok(),
    };
    let ann = svc.annotations();
    Owner {
        uid: svc.uid().unwrap_or_default(),
        wants: ann.contains_key(VPCE_SERVICE_NAME) || has_finalizer(svc, VPCE_FINALIZER),
        scope,
        recorded: [VPCE_ENDPOINT_ID, VPCE_SECURITY_GROUP_ID]
            .iter()
            .filter_map(|k| ann.get(*k).cloned())
            .collect(),
        plan_only: planned::plan_only(ann, false),
    }
}

/// A Namespace's or Deployment's owner entry: its stack belongs where its
/// namespace `home` (annotations `home_annotations`) says.
fn stack_owner<K: KubeResource>(
    obj: &PartialObjectMeta<K>,
    home: &str,
    home_annotations: &BTreeMap<String, String>,
    default_region: &str,
) -> Owner {
    let ann = obj.annotations();
    Owner {
        uid: obj.uid().unwrap_or_default(),
        wants: asks_for_stack(ann) || has_finalizer(obj, CFN_FINALIZER),
        scope: scope_for(home, home_annotations, None, default_region).ok(),
        recorded: ann.get(CFN_STACK_ID).cloned().into_iter().collect(),
        plan_only: planned::plan_only(ann, false),
    }
}

/// The owners: Namespaces always (they own stacks, and say where every
/// object's resources go), Services with endpoints, Deployments with
/// stacks.
pub async fn read_cluster(client: &Client, settings: &Settings) -> Result<Cluster, kube::Error> {
    let namespaces = list_all(Api::<Namespace>::all(client.clone())).await?;
    let ns_annotations: BTreeMap<String, BTreeMap<String, String>> = namespaces
        .iter()
        .map(|n| (n.name_any(), n.annotations().clone()))
        .collect();
    let empty = BTreeMap::new();
    let ns_of = |ns: &str| ns_annotations.get(ns).unwrap_or(&empty);
    let default_region = settings.default_region.as_str();
    let mut owners = Owners::new();
    for n in &namespaces {
        let name = n.name_any();
        let owner = stack_owner(n, &name, n.annotations(), default_region);
        owners.insert(format!("Namespace//{name}"), owner);
    }
    let api = |client: &Client| match &settings.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let (services, deployments): (Api<Service>, Api<Deployment>) = api(client);
    if settings.endpoints {
        for s in list_all(services).await? {
            let ns = s.namespace().unwrap_or_default();
            let owner = service_owner(&s, ns_of(&ns), default_region);
            owners.insert(format!("Service/{ns}/{}", s.name_any()), owner);
        }
    }
    if settings.stacks {
        for d in list_all(deployments).await? {
            let ns = d.namespace().unwrap_or_default();
            let owner = stack_owner(&d, &ns, ns_of(&ns), default_region);
            owners.insert(format!("Deployment/{ns}/{}", d.name_any()), owner);
        }
    }
    let scopes = scopes(&owners, settings);
    Ok(Cluster { owners, scopes })
}

/// Every identity (hawser's own, each role named by a namespace) in
/// every region (the default, `--scan-region`, each one named), once.
fn scopes(owners: &Owners, settings: &Settings) -> Vec<Scope> {
    let mut regions: BTreeSet<String> = BTreeSet::from([settings.default_region.clone()]);
    regions.extend(settings.extra_regions.iter().cloned());
    // A role's first session name is as good as any for reading.
    let mut roles: BTreeMap<String, Option<String>> = BTreeMap::new();
    for scope in owners.values().filter_map(|o| o.scope.as_ref()) {
        regions.insert(scope.region.clone());
        if let Some(role) = &scope.role_arn {
            roles
                .entry(role.clone())
                .or_insert_with(|| scope.session_name.clone());
        }
    }
    let mut out = Vec::new();
    for region in &regions {
        out.push(Scope::own(region.clone()));
        for (role, session) in &roles {
            out.push(Scope {
                region: region.clone(),
                role_arn: Some(role.clone()),
                session_name: session.clone(),
            });
        }
    }
    out
}

/// The object `name` of kind `K` (in `api`'s namespace), if it exists:
/// a list by name, which needs only the `list` the controllers' watches
/// are granted already.
async fn one<K>(api: Api<K>, name: &str) -> Result<Option<PartialObjectMeta<K>>, kube::Error>
where
    K: KubeResource + Clone + DeserializeOwned + Debug,
{
    let lp = ListParams::default().fields(&format!("metadata.name={name}"));
    Ok(api.list_metadata(&lp).await?.items.into_iter().next())
}

/// The object named by an owner reference, looked up again now; `None`
/// when it is gone.
pub async fn owner_now(
    client: &Client,
    reference: &str,
    settings: &Settings,
) -> Result<Option<Owner>, kube::Error> {
    let mut parts = reference.splitn(3, '/');
    let (kind, ns, name) = match (parts.next(), parts.next(), parts.next()) {
        (Some(k), Some(ns), Some(n)) => (k, ns, n),
        _ => return Ok(None),
    };
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let default_region = settings.default_region.as_str();
    let ns_annotations = || async {
        Ok::<_, kube::Error>(
            one(namespaces.clone(), ns)
                .await?
                .map(|n| n.annotations().clone())
                .unwrap_or_default(),
        )
    };
    Ok(match kind {
        "Service" => match one(Api::<Service>::namespaced(client.clone(), ns), name).await? {
            None => None,
            Some(s) => Some(service_owner(&s, &ns_annotations().await?, default_region)),
        },
        "Deployment" => match one(Api::<Deployment>::namespaced(client.clone(), ns), name).await? {
            None => None,
            Some(d) => Some(stack_owner(
                &d,
                ns,
                &ns_annotations().await?,
                default_region,
            )),
        },
        "Namespace" => one(namespaces.clone(), name)
            .await?
            .map(|n| stack_owner(&n, name, n.annotations(), default_region)),
        _ => None,
    })
}

/// A scope that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScanError {
    pub scope: String,
    pub error: String,
}

/// Everything tagged `hawser.io/cluster=<cluster>` in `scope`: endpoints
/// (not yet deleted) and groups by tag; stacks by hawser's name prefix
/// (ListStacks), then their tags (DescribeStacks).
pub async fn read_scope<P: Ec2Provider + CfnProvider>(
    aws: &P,
    scope: &Scope,
    settings: &Settings,
) -> Result<Vec<Found>, crate::aws::AwsError> {
    let cluster_tag = Tags::from([(TAG_CLUSTER.to_owned(), settings.cluster.clone())]);
    let mut found = Vec::new();
    let at = |resource, id: String, name, tags, created| Found {
        resource,
        id,
        name,
        scope: scope.clone(),
        tags,
        created,
    };
    if settings.endpoints {
        let ec2 = aws.ec2(scope).await;
        for e in ec2.find_endpoints(&cluster_tag).await? {
            if !e.state.is_gone() {
                found.push(at(Resource::VpcEndpoint, e.id, None, e.tags, e.created));
            }
        }
        for g in ec2.find_security_groups(&cluster_tag).await? {
            found.push(at(
                Resource::SecurityGroup,
                g.id,
                Some(g.name),
                g.tags,
                None,
            ));
        }
    }
    if settings.stacks {
        let cfn = aws.cfn(scope).await;
        let prefix = stack_name(&settings.cluster, "", None);
        for summary in cfn.list_stacks().await? {
            if !summary.name.starts_with(&prefix) || summary.status == StackStatus::DeleteInProgress
            {
                continue;
            }
            let Some(stack) = cfn.describe_stack(&summary.name).await? else {
                continue;
            };
            if stack.tags.get(TAG_CLUSTER) == Some(&settings.cluster)
                && stack.status != StackStatus::DeleteInProgress
                && stack.status != StackStatus::DeleteComplete
            {
                found.push(at(
                    Resource::Stack,
                    stack.id,
                    Some(stack.name),
                    stack.tags,
                    summary.created,
                ));
            }
        }
    }
    Ok(found)
}
