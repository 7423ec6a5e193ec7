//! One object's plan: what its controller would do, from its manifest and
//! what exists (the cluster with `--kubeconfig`, AWS).

use std::collections::BTreeMap;

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Namespace, Service},
    rbac::v1::RoleBinding,
};
use kube::{core::PartialObjectMeta, Api, Client, ResourceExt};
use tokio::sync::OnceCell;

use super::preview;
use crate::annotations::keys::{AWS_REGION, CFN_FINALIZER, VPCE_FINALIZER};
use crate::annotations::{
    cleanup_deletion_policy, parse_inline_template, parse_region, NamespaceSpec, StackSpec,
    TemplateSource, VpceSpec,
};
use crate::aws::{AwsClients, AwsSettings, CfnProvider, CloudFormationApi, Ec2Provider, Scope};
use crate::aws_auth::{self, Protection};
use crate::cli::PlanArgs;
use crate::controller::namespace::{
    iam::{desired_binding, desired_entry, ROLE_BINDING},
    plan as ns_plan,
};
use crate::controller::planned::{Action, Verb};
use crate::controller::scope::scope_for;
use crate::controller::stack::{
    self,
    desired::{is_owned, Owner as StackOwner},
    kind::StackObject,
    machine::{phase, Phase},
};
use crate::controller::vpce::{
    self,
    apply::{observe, Recorded},
    desired::{Defaults, Owner as VpceOwner},
    plan::{actions, plan as vpce_plan, Observed},
    status::Current,
};
use crate::gc::{collect::has_finalizer, judge::describe_scope};
use crate::lint::Object;

pub struct Context<'a> {
    pub args: &'a PlanArgs,
    pub client: Option<Client>,
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    pub objects: &'a [Object],
    pub aws: OnceCell<AwsClients>,
}

impl Context<'_> {
    /// The AWS clients, loaded on first use: input without AWS
    /// annotations needs no region.
    async fn aws(&self) -> Result<&AwsClients, String> {
        self.aws
            .get_or_try_init(|| async {
                let region = crate::annotations::default_region(self.args.region.as_deref(), |k| {
                    std::env::var(k).ok()
                });
                let metrics = crate::metrics::Metrics::new().map_err(|e| e.to_string())?;
                AwsClients::load(
                    &AwsSettings {
                        region,
                        endpoint_url: self.args.aws_endpoint_url.clone(),
                        ..AwsSettings::default()
                    },
                    &metrics,
                )
                .await
                .map_err(|e| e.to_string())
            })
            .await
    }

    /// Where an object of `namespace` with its own `region` acts.
    async fn scope(&self, namespace: &str, region: Option<&str>) -> Result<Scope, String> {
        let aws = self.aws().await?;
        let empty = BTreeMap::new();
        let ann = self.namespaces.get(namespace).unwrap_or(&empty);
        scope_for(namespace, ann, region, aws.default_region()).map_err(|e| e.to_string())
    }

    /// The object as the cluster holds it (metadata), with a kubeconfig.
    async fn live<K>(
        &self,
        api: impl Fn(Client) -> Api<K>,
        name: &str,
    ) -> Result<Option<PartialObjectMeta<K>>, String>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let Some(client) = &self.client else {
            return Ok(None);
        };
        api(client.clone())
            .get_metadata_opt(name)
            .await
            .map_err(|e| format!("reading {name} from the cluster: {e}"))
    }

    /// A template ConfigMap's key: from the input, else the cluster.
    async fn configmap_key(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<String, String> {
        let from_input = self.objects.iter().find(|o| {
            o.kind() == "ConfigMap"
                && o.name() == name
                && o.namespace().unwrap_or(&self.args.input.namespace) == namespace
        });
        let data = match (from_input, &self.client) {
            (Some(o), _) => o.value["data"][key].as_str().map(str::to_owned),
            (None, Some(client)) => Api::<ConfigMap>::namespaced(client.clone(), namespace)
                .get_opt(name)
                .await
                .map_err(|e| format!("reading ConfigMap {namespace}/{name}: {e}"))?
                .and_then(|cm| cm.data?.get(key).cloned()),
            (None, None) => {
                return Err(format!(
                    "template ConfigMap {namespace}/{name} is neither in the input nor readable (no --kubeconfig)"
                ))
            }
        };
        data.ok_or_else(|| format!("ConfigMap {namespace}/{name} has no key {key:?}"))
    }
}

/// The scope (as words) and actions for `o`; `None` when no controller
/// acts on it.
pub async fn plan(
    ctx: &Context<'_>,
    o: &Object,
    namespace: Option<&str>,
) -> Result<Option<(String, Vec<Action>)>, String> {
    let ann = o.annotations();
    match (o.kind(), namespace) {
        ("Service", Some(ns)) => service(ctx, o.name(), ns, &ann).await,
        ("Deployment", Some(ns)) => {
            let live = ctx
                .live(|c| Api::<Deployment>::namespaced(c, ns), o.name())
                .await?;
            stack_object::<Deployment>(ctx, o.name(), ns, &ann, live).await
        }
        ("Namespace", _) => {
            let live = ctx.live(Api::<Namespace>::all, o.name()).await?;
            let stack = stack_object::<Namespace>(ctx, o.name(), o.name(), &ann, live).await?;
            let iam = namespace_iam(ctx, o.name(), &ann).await?;
            Ok(match (stack, iam) {
                (None, None) => None,
                (Some((scope, mut actions)), iam) => {
                    actions.extend(iam.unwrap_or_default());
                    Some((scope, actions))
                }
                (None, Some(iam)) => Some(("the cluster".to_owned(), iam)),
            })
        }
        _ => Ok(None),
    }
}

async fn service(
    ctx: &Context<'_>,
    name: &str,
    ns: &str,
    ann: &BTreeMap<String, String>,
) -> Result<Option<(String, Vec<Action>)>, String> {
    let live = ctx
        .live(|c| Api::<Service>::namespaced(c, ns), name)
        .await?;
    let owner = VpceOwner {
        namespace: ns.to_owned(),
        name: name.to_owned(),
        uid: live.as_ref().and_then(|l| l.uid()).unwrap_or_default(),
    };
    let cluster = &ctx.args.cluster_name;
    let Some(spec) = VpceSpec::from_annotations(ann).map_err(stack::kind::joined)? else {
        // No endpoint asked for: a Service that has one loses it.
        let Some(live) = live.filter(|l| has_finalizer(l, VPCE_FINALIZER)) else {
            return Ok(None);
        };
        let region = live
            .annotations()
            .get(AWS_REGION)
            .and_then(|v| parse_region(AWS_REGION, v).ok());
        let scope = ctx.scope(ns, region.as_deref()).await?;
        let ec2 = ctx.aws().await?.ec2(&scope).await;
        let tags = owner.ownership_tags(cluster);
        let out = vpce::cleanup::planned(&ec2, &tags, cleanup_deletion_policy(live.annotations()))
            .await
            .map_err(|e| e.to_string())?;
        return Ok(Some((describe_scope(&scope), out)));
    };
    let defaults = Defaults {
        vpc_id: ctx.args.default_vpc_id.clone(),
        subnet_ids: ctx.args.default_subnet_ids.clone(),
        tags: ctx.args.default_tags.clone().unwrap_or_default(),
    };
    let d = vpce::desired::desired(&spec, &owner, cluster, &defaults).map_err(|e| e.to_string())?;
    let scope = ctx.scope(ns, spec.region.as_deref()).await?;
    let planned = match &live {
        // New: nothing in AWS can be its (the uid is not known yet).
        None => vpce_plan(&d, &Observed::default(), &Recorded::default(), ""),
        Some(live) => {
            let current = Current::read(live.annotations());
            let recorded = Recorded {
                endpoint_id: current.endpoint_id,
                group_id: current.group_id,
            };
            let ec2 = ctx.aws().await?.ec2(&scope).await;
            let observed = observe(&ec2, &d, &recorded)
                .await
                .map_err(|e| e.to_string())?;
            vpce_plan(&d, &observed, &recorded, &owner.uid)
        }
    };
    Ok(Some((describe_scope(&scope), actions(&d, &planned))))
}

async fn stack_object<K: StackObject>(
    ctx: &Context<'_>,
    name: &str,
    home: &str,
    ann: &BTreeMap<String, String>,
    live: Option<PartialObjectMeta<K>>,
) -> Result<Option<(String, Vec<Action>)>, String> {
    let cluster = &ctx.args.cluster_name;
    let owner = StackOwner {
        kind: K::KIND,
        namespace: home.to_owned(),
        name: name.to_owned(),
        uid: live.as_ref().and_then(|l| l.uid()).unwrap_or_default(),
    };
    let stack_name = owner.stack_name(cluster);
    let spec: Option<StackSpec> = K::stack_spec(ann)?;
    let scope = match (&spec, &live) {
        (None, None) => return Ok(None),
        (None, Some(l)) if !has_finalizer(l, CFN_FINALIZER) => return Ok(None),
        _ => ctx.scope(home, None).await?,
    };
    let cfn = ctx.aws().await?.cfn(&scope).await;
    let stack = cfn
        .describe_stack(&stack_name)
        .await
        .map_err(|e| e.to_string())?
        .filter(|s| phase(&s.status) != Phase::Deleted);
    let Some(spec) = spec else {
        // No stack asked for: an object that has one loses it.
        let live = live.expect("checked above");
        let out = stack::plan::cleanup(
            stack.as_ref(),
            &owner.ownership_tags(cluster),
            cleanup_deletion_policy(live.annotations()),
        );
        return Ok(Some((describe_scope(&scope), out)));
    };
    let body = match &spec.template {
        TemplateSource::Inline(body) => body.clone(),
        TemplateSource::ConfigMap(r) => {
            let text = ctx.configmap_key(home, &r.name, &r.key).await?;
            parse_inline_template(&format!("ConfigMap {home}/{}", r.name), &text)
                .map_err(|e| e.to_string())?
        }
    };
    let default_tags = ctx.args.default_tags.clone().unwrap_or_default();
    let want = stack::desired::desired(&spec, &body, &owner, cluster, &default_tags);
    let create = || stack::plan::create(&want);
    let actions = match stack {
        None => vec![create()],
        Some(s) if !is_owned(&s, &want.ownership) => {
            return Err(format!(
                "stack {stack_name} exists and is not this object's (its hawser.io/ tags name another owner, or the object is not in the cluster yet): hawser would leave it alone and report StackForeign"
            ))
        }
        Some(s) => match phase(&s.status) {
            Phase::InProgress => {
                return Err(format!(
                    "stack {stack_name} is {}: CloudFormation is working on it; plan again once it is done",
                    s.status.as_str()
                ))
            }
            Phase::Review | Phase::CreateFailed | Phase::DeleteFailed => vec![
                Action::new(Verb::Delete, "stack", Some(&s.name), format!("dead ({})", s.status.as_str())),
                create(),
            ],
            _ => {
                let changes = preview::preview(&cfn, &want).await?;
                match changes.is_empty() {
                    true => vec![],
                    false => vec![Action::new(
                        Verb::Modify,
                        "stack",
                        Some(&s.name),
                        preview::describe(&changes),
                    )],
                }
            }
        },
    };
    Ok(Some((describe_scope(&scope), actions)))
}

/// The namespace controller's IAM mapping changes: the `aws-auth` entry
/// and RoleBinding `hawser-iam`; `None` when the namespace neither asks
/// for a mapping nor has one.
async fn namespace_iam(
    ctx: &Context<'_>,
    ns: &str,
    ann: &BTreeMap<String, String>,
) -> Result<Option<Vec<Action>>, String> {
    let spec = NamespaceSpec::from_annotations(ann).map_err(stack::kind::joined)?;
    let protection = Protection::default();
    let desired = spec
        .iam
        .as_ref()
        .map(|m| desired_entry(ns, m, ctx.args.allow_system_groups, &protection))
        .transpose()
        .map_err(|e| e.to_string())?;
    let wanted = spec
        .iam
        .as_ref()
        .and_then(|m| desired_binding(ns, &m.groups, &ctx.args.iam_cluster_role));
    let Some(client) = &ctx.client else {
        if desired.is_none() {
            return Ok(None);
        }
        let mut out = ns_plan::aws_auth(ns, desired.as_ref(), None)?;
        out.extend(ns_plan::binding(ns, wanted.as_ref(), None));
        return Ok(Some(out));
    };
    let cm = Api::<ConfigMap>::namespaced(client.clone(), aws_auth::NAMESPACE)
        .get_opt(&ctx.args.aws_auth_configmap)
        .await
        .map_err(|e| {
            format!(
                "reading {}/{}: {e}",
                aws_auth::NAMESPACE,
                ctx.args.aws_auth_configmap
            )
        })?;
    let map_roles = cm
        .as_ref()
        .and_then(|c| c.data.as_ref()?.get(aws_auth::MAP_ROLES).cloned())
        .unwrap_or_default();
    let record = cm.as_ref().and_then(|c| {
        c.metadata
            .annotations
            .as_ref()?
            .get(aws_auth::OWNERSHIP_ANNOTATION)
            .cloned()
    });
    let ownership = aws_auth::Ownership::parse(record.as_deref()).map_err(|e| e.to_string())?;
    let now_binding = Api::<RoleBinding>::namespaced(client.clone(), ns)
        .get_opt(ROLE_BINDING)
        .await
        .map_err(|e| format!("reading RoleBinding {ns}/{ROLE_BINDING}: {e}"))?;
    if desired.is_none() && ownership.roles_of(ns).next().is_none() && now_binding.is_none() {
        return Ok(None);
    }
    let now = ns_plan::AwsAuthNow {
        map_roles: &map_roles,
        ownership: &ownership,
    };
    let mut out = ns_plan::aws_auth(ns, desired.as_ref(), Some(now))?;
    out.extend(ns_plan::binding(ns, wanted.as_ref(), now_binding.as_ref()));
    Ok(Some(out))
}
