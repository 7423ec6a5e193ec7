//! gc: the judge alone, then one whole collection against the apiserver
//! stand-in and the in-memory EC2 and CloudFormation.

use std::time::{Duration, SystemTime};

use serde_json::json;

use super::judge::{
    date_groups, judge, owner_namespace, with_policy, Found, Keep, Owner, Owners, Resource, Rules,
    Verdict, Why,
};
use super::sweep::Action;
use super::*;
use crate::annotations::keys::{TAG_CLUSTER, TAG_OWNER, TAG_UID};
use crate::aws::fake::FakeEc2;
use crate::aws::fake_cfn::FakeCfn;
use crate::aws::{CreateEndpoint, CreateSecurityGroup, Ec2Api, StackRequest, Tags};
use crate::controller::stack::released::{self, PolicyMark};
use crate::testing::ApiServer;

const CLUSTER: &str = "prod";
const REGION: &str = "us-west-2";
const HOUR: Duration = Duration::from_secs(3600);

fn tags(owner: &str, uid: &str) -> Tags {
    Tags::from([
        (TAG_CLUSTER.to_owned(), CLUSTER.to_owned()),
        (TAG_OWNER.to_owned(), owner.to_owned()),
        (TAG_UID.to_owned(), uid.to_owned()),
    ])
}

fn found(resource: Resource, owner: &str, uid: &str, age: Option<Duration>) -> Found {
    Found {
        resource,
        id: "x-1".into(),
        name: None,
        scope: Scope::own(REGION),
        tags: tags(owner, uid),
        created: age.map(|a| SystemTime::now() - a),
    }
}

fn owner(uid: &str, wants: bool, scope: Option<Scope>) -> Owner {
    Owner {
        uid: uid.into(),
        wants,
        scope,
        recorded: Default::default(),
        plan_only: false,
    }
}

fn owners(reference: &str, o: Owner) -> Owners {
    Owners::from([(reference.to_owned(), o)])
}

const SVC: &str = "Service/team-a/db";

fn rules(older_than: Duration) -> Rules<'static> {
    Rules {
        now: SystemTime::now(),
        older_than,
        namespace: None,
    }
}

fn verdict(f: &Found, o: &Owners) -> Verdict {
    judge(f, o, rules(HOUR))
}

#[test]
fn with_a_namespace_only_its_owners_resources_are_judged() {
    assert_eq!(owner_namespace("Service/team-a/db"), Some("team-a"));
    assert_eq!(owner_namespace("Namespace//team-a"), Some("team-a"));
    assert_eq!(owner_namespace("Deployment/team-b/web"), Some("team-b"));
    assert_eq!(owner_namespace("nonsense"), None);
    let only_b = Rules {
        namespace: Some("team-b"),
        ..rules(Duration::ZERO)
    };
    let f = found(Resource::VpcEndpoint, SVC, "u1", None);
    assert_eq!(
        judge(&f, &Owners::new(), only_b),
        Verdict::Keep(Keep::OtherNamespace)
    );
    let theirs = found(Resource::Stack, "Namespace//team-b", "u1", None);
    assert_eq!(
        judge(&theirs, &Owners::new(), only_b),
        Verdict::Orphan(Why::OwnerGone)
    );
}

#[test]
fn a_resource_is_garbage_when_its_owner_is_gone_replaced_or_done_with_it() {
    let f = found(Resource::VpcEndpoint, SVC, "u1", Some(2 * HOUR));
    let here = Some(Scope::own(REGION));
    assert_eq!(verdict(&f, &Owners::new()), Verdict::Orphan(Why::OwnerGone));
    assert_eq!(
        verdict(&f, &owners(SVC, owner("u2", true, here.clone()))),
        Verdict::Orphan(Why::OwnerReplaced)
    );
    assert_eq!(
        verdict(&f, &owners(SVC, owner("u1", false, here.clone()))),
        Verdict::Orphan(Why::NoLongerAsked)
    );
    assert_eq!(
        verdict(&f, &owners(SVC, owner("u1", true, here))),
        Verdict::Keep(Keep::InUse)
    );
}

#[test]
fn a_resource_left_in_another_account_or_region_is_garbage_unless_that_is_unclear() {
    let f = found(Resource::SecurityGroup, SVC, "u1", None);
    let elsewhere = Scope {
        region: "eu-west-1".into(),
        role_arn: Some("arn:aws:iam::111122223333:role/team-a".into()),
        session_name: Some("hawser-team-a".into()),
    };
    assert_eq!(
        verdict(&f, &owners(SVC, owner("u1", true, Some(elsewhere)))),
        Verdict::Orphan(Why::Moved {
            now: "eu-west-1 as arn:aws:iam::111122223333:role/team-a".into()
        })
    );
    // Same account and region, another session name: the same place.
    let same = Scope {
        session_name: Some("other".into()),
        ..Scope::own(REGION)
    };
    assert_eq!(
        verdict(&f, &owners(SVC, owner("u1", true, Some(same)))),
        Verdict::Keep(Keep::InUse)
    );
    assert_eq!(
        verdict(&f, &owners(SVC, owner("u1", true, None))),
        Verdict::Keep(Keep::ScopeUnknown)
    );
}

#[test]
fn released_untagged_and_young_resources_are_kept() {
    let mut released = found(Resource::VpcEndpoint, SVC, "u1", Some(2 * HOUR));
    released
        .tags
        .insert("hawser.io/released-from".into(), SVC.into());
    assert_eq!(
        verdict(&released, &Owners::new()),
        Verdict::Keep(Keep::Released)
    );

    let mut untagged = found(Resource::VpcEndpoint, SVC, "u1", Some(2 * HOUR));
    untagged.tags.remove(TAG_UID);
    assert_eq!(
        verdict(&untagged, &Owners::new()),
        Verdict::Keep(Keep::NotOwned)
    );

    let young = found(
        Resource::Stack,
        "Namespace//team-a",
        "u1",
        Some(Duration::from_secs(60)),
    );
    assert!(matches!(
        verdict(&young, &Owners::new()),
        Verdict::Keep(Keep::TooYoung { age_seconds }) if (59..=61).contains(&age_seconds)
    ));
    // No creation time: as old as can be.
    let undated = found(Resource::SecurityGroup, SVC, "u1", None);
    assert_eq!(
        verdict(&undated, &Owners::new()),
        Verdict::Orphan(Why::OwnerGone)
    );
}

#[test]
fn a_stack_with_a_policy_is_kept_and_one_without_stays_garbage() {
    let garbage = Verdict::Orphan(Why::OwnerGone);
    assert_eq!(with_policy(garbage.clone(), PolicyMark::None), garbage);
    assert_eq!(
        with_policy(garbage.clone(), PolicyMark::Released),
        Verdict::Keep(Keep::Released)
    );
    assert_eq!(
        with_policy(garbage, PolicyMark::Other),
        Verdict::Keep(Keep::PolicySetOutsideHawser)
    );
    assert_eq!(
        with_policy(Verdict::Keep(Keep::InUse), PolicyMark::None),
        Verdict::Keep(Keep::InUse)
    );
}

#[test]
fn a_group_is_dated_by_the_oldest_endpoint_of_its_owner() {
    let mut all = vec![
        found(Resource::VpcEndpoint, SVC, "u1", Some(3 * HOUR)),
        found(Resource::VpcEndpoint, SVC, "u1", Some(HOUR)),
        found(Resource::SecurityGroup, SVC, "u1", None),
        found(Resource::SecurityGroup, SVC, "u9", None),
    ];
    date_groups(&mut all);
    assert_eq!(all[2].created, all[0].created);
    assert_eq!(all[3].created, None);
}

/// EC2 and CloudFormation in memory, one provider for both.
#[derive(Clone, Default)]
struct Aws {
    ec2: FakeEc2,
    cfn: FakeCfn,
}

impl crate::aws::Ec2Provider for Aws {
    type Ec2 = FakeEc2;
    async fn ec2(&self, _scope: &Scope) -> FakeEc2 {
        self.ec2.clone()
    }
}

impl crate::aws::CfnProvider for Aws {
    type Cfn = FakeCfn;
    async fn cfn(&self, _scope: &Scope) -> FakeCfn {
        self.cfn.clone()
    }
}

impl Aws {
    /// An endpoint and its group for `owner`/`uid`, as the vpce controller
    /// makes them; returns (endpoint id, group id).
    async fn endpoint(
        &self,
        owner: &str,
        uid: &str,
        tags_of: fn(&str, &str) -> Tags,
    ) -> (String, String) {
        let group = self
            .ec2
            .create_security_group(&CreateSecurityGroup {
                vpc_id: "vpc-1".into(),
                name: format!("hawser-{uid}"),
                description: "d".into(),
                tags: tags_of(owner, uid),
            })
            .await
            .unwrap();
        let endpoint = self
            .ec2
            .create_endpoint(&CreateEndpoint {
                vpc_id: "vpc-1".into(),
                service_name: "com.amazonaws.us-west-2.s3".into(),
                subnet_ids: vec!["subnet-1".into()],
                security_group_ids: vec![group.clone()],
                private_dns: false,
                client_token: uid.into(),
                tags: tags_of(owner, uid),
            })
            .await
            .unwrap();
        (endpoint.id, group)
    }

    async fn stack(&self, name: &str, tags: Tags) -> String {
        let id = self
            .cfn
            .create_stack(&StackRequest {
                stack_name: name.into(),
                template_body: "{}".into(),
                parameters: Default::default(),
                capabilities: vec![],
                tags,
            })
            .await
            .unwrap();
        // The fake finishes a create on the next describe.
        self.cfn.describe_stack(name).await.unwrap();
        id
    }
}

fn settings(dry_run: bool) -> Settings {
    Settings {
        cluster: CLUSTER.into(),
        default_region: REGION.into(),
        extra_regions: vec![],
        older_than: Duration::ZERO,
        dry_run,
        endpoints: true,
        stacks: true,
        namespace: None,
    }
}

fn cluster() -> ApiServer {
    let api = ApiServer::default();
    api.put(
        "/api/v1/namespaces/team-a",
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "team-a", "uid": "ns-uid"}}),
    );
    api.put(
        "/api/v1/namespaces/team-a/services/live",
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "live", "namespace": "team-a", "uid": "live-uid",
                            "annotations": {"vpce.hawser.io/service-name": "com.amazonaws.us-west-2.s3"}}}),
    );
    api
}

#[tokio::test]
async fn gc_deletes_what_lost_its_owner_and_nothing_else() {
    let api = cluster();
    let aws = Aws::default();
    let (live_e, live_g) = aws.endpoint("Service/team-a/live", "live-uid", tags).await;
    let (gone_e, gone_g) = aws.endpoint("Service/team-a/gone", "gone-uid", tags).await;
    let other_cluster = |o: &str, u: &str| {
        let mut t = tags(o, u);
        t.insert(TAG_CLUSTER.into(), "staging".into());
        t
    };
    let (foreign_e, _) = aws
        .endpoint("Service/team-a/gone", "staging-uid", other_cluster)
        .await;
    let gone_stack = aws
        .stack(
            "hawser-prod-team-a-web",
            tags("Deployment/team-a/web", "web-uid"),
        )
        .await;
    let kept_stack = aws
        .stack(
            "hawser-prod-team-a-api",
            tags("Deployment/team-a/api", "api-uid"),
        )
        .await;
    aws.cfn
        .set_stack_policy(&kept_stack, &released::with_mark(None).unwrap())
        .await
        .unwrap();
    aws.ec2.clear_calls();
    aws.cfn.clear_calls();
    let (client, dry_settings) = (api.client(), settings(true));
    let look = |r: &'static str| collect::owner_now(&client, r, &dry_settings);
    assert_eq!(look("Service/team-a/gone").await.unwrap(), None);
    assert_eq!(
        look("Service/team-a/live").await.unwrap().unwrap().uid,
        "live-uid"
    );
    assert_eq!(
        look("Namespace//team-a").await.unwrap().unwrap().uid,
        "ns-uid"
    );

    let dry = collect_garbage(&api.client(), &aws, &settings(true))
        .await
        .unwrap();
    let garbage: Vec<&str> = dry.garbage().map(|e| e.id.as_str()).collect();
    assert_eq!(
        garbage,
        [gone_e.as_str(), gone_g.as_str(), gone_stack.as_str()],
        "{dry:#?}"
    );
    assert!(dry.garbage().all(|e| e.action == Action::WouldDelete));
    assert!(aws.ec2.mutating_calls().is_empty() && aws.cfn.mutating_calls().is_empty());
    assert!(!dry.failed());
    let text = render_text(&dry);
    assert!(
        text.contains(&format!("would delete: vpc-endpoint {gone_e} in {REGION}, owner Service/team-a/gone: its owner no longer exists")),
        "{text}"
    );
    assert!(
        text.contains("kept 1: released by hawser.io/deletion-policy: retain"),
        "{text}"
    );
    assert!(text.contains("kept 2: in use"), "{text}");

    let report = collect_garbage(&api.client(), &aws, &settings(false))
        .await
        .unwrap();
    assert!(!report.failed(), "{report:#?}");
    let live: Vec<String> = aws.ec2.live_endpoints().into_iter().map(|e| e.id).collect();
    assert!(live.contains(&live_e) && live.contains(&foreign_e) && !live.contains(&gone_e));
    let groups: Vec<String> = aws.ec2.groups().into_iter().map(|g| g.id).collect();
    assert!(groups.contains(&live_g) && !groups.contains(&gone_g));
    assert_eq!(
        aws.cfn.mutating_calls(),
        ["DeleteStack"],
        "only the orphaned stack goes"
    );
    assert!(aws.cfn.peek("hawser-prod-team-a-api").is_some());
    let json = serde_json::to_value(&report).unwrap();
    let entry = json["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == gone_stack)
        .unwrap()
        .clone();
    assert_eq!(entry["garbage"], true);
    assert_eq!(entry["reason"], "owner-gone");
    assert_eq!(entry["detail"], "its owner no longer exists");
    assert_eq!(entry["action"], "delete-started");
}

#[tokio::test]
async fn an_owner_created_after_the_list_is_looked_up_again_before_anything_goes() {
    let api = cluster();
    let aws = Aws::default();
    // The Service is not in the list gc judges from, but exists by the
    // time its verdict is confirmed: the fresh look-up keeps it.
    let (e, _) = aws.endpoint("Service/team-a/late", "late-uid", tags).await;
    let mut owners = Owners::new();
    let found_now = collect::read_scope(&aws, &Scope::own(REGION), &settings(false))
        .await
        .unwrap();
    let ep = found_now.iter().find(|f| f.id == e).unwrap();
    assert_eq!(
        judge(ep, &owners, rules(Duration::ZERO)),
        Verdict::Orphan(Why::OwnerGone)
    );
    api.put(
        "/api/v1/namespaces/team-a/services/late",
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "late", "namespace": "team-a", "uid": "late-uid",
                            "finalizers": ["vpce.hawser.io/cleanup"]}}),
    );
    let fresh = collect::owner_now(&api.client(), "Service/team-a/late", &settings(false))
        .await
        .unwrap()
        .unwrap();
    owners.insert("Service/team-a/late".into(), fresh);
    assert_eq!(
        judge(ep, &owners, rules(Duration::ZERO)),
        Verdict::Keep(Keep::InUse)
    );
    let report = collect_garbage(&api.client(), &aws, &settings(false))
        .await
        .unwrap();
    assert_eq!(report.garbage().count(), 0, "{report:#?}");
    assert!(aws
        .ec2
        .mutating_calls()
        .iter()
        .all(|c| !c.starts_with("Delete")));
}

#[tokio::test]
async fn a_failed_deletion_is_reported_and_the_rest_still_goes() {
    let api = cluster();
    let aws = Aws::default();
    let (_, g1) = aws.endpoint("Service/team-a/one", "one-uid", tags).await;
    aws.ec2.fail_next(
        "DeleteSecurityGroup",
        "DependencyViolation",
        "resource sg has a dependent object",
    );
    let report = collect_garbage(&api.client(), &aws, &settings(false))
        .await
        .unwrap();
    assert!(report.failed());
    let failed = report.resources.iter().find(|e| e.id == g1).unwrap();
    assert!(
        matches!(&failed.action, Action::Failed { error } if error.contains("still in use")),
        "{failed:?}"
    );
    assert!(aws.ec2.live_endpoints().is_empty());
    // The next run finishes the job.
    let again = collect_garbage(&api.client(), &aws, &settings(false))
        .await
        .unwrap();
    assert!(!again.failed(), "{again:#?}");
    assert!(aws.ec2.groups().is_empty());
}

#[test]
fn what_its_owner_records_or_a_plan_only_owner_is_never_moved_garbage() {
    let f = found(Resource::VpcEndpoint, SVC, "u1", Some(2 * HOUR));
    // Seen through another identity or region than the owner's own
    // (hawser's role and a namespace's role in one account, or gc run with
    // another default region): the recorded id keeps it.
    let elsewhere = Some(Scope::own("eu-west-1"));
    let mut o = owner("u1", true, elsewhere);
    assert!(verdict(&f, &owners(SVC, o.clone())).is_garbage());
    o.recorded.insert(f.id.clone());
    assert_eq!(
        verdict(&f, &owners(SVC, o.clone())),
        Verdict::Keep(Keep::InUse)
    );
    // A plan-only owner whose region was edited to preview: nothing goes.
    o.recorded.clear();
    o.plan_only = true;
    assert_eq!(
        verdict(&f, &owners(SVC, o.clone())),
        Verdict::Keep(Keep::InUse)
    );
    o.wants = false;
    assert_eq!(verdict(&f, &owners(SVC, o)), Verdict::Keep(Keep::InUse));
}

#[test]
fn owner_tags_hawser_never_writes_are_not_owned() {
    for (resource, reference) in [
        (Resource::VpcEndpoint, "Service/team-a"),
        (Resource::VpcEndpoint, "Pod/team-a/x"),
        (Resource::VpcEndpoint, "Service//x"),
        (Resource::VpcEndpoint, "Service/team-a/"),
        (Resource::SecurityGroup, "Deployment/team-a/web"),
        (Resource::Stack, "Service/team-a/db"),
        (Resource::Stack, "Namespace/team-a/team-a"),
        (Resource::Stack, "Deployment/team-a/web/extra"),
    ] {
        let f = found(resource, reference, "u1", None);
        assert_eq!(
            verdict(&f, &Owners::new()),
            Verdict::Keep(Keep::NotOwned),
            "{reference}"
        );
    }
    let no_uid = found(Resource::Stack, "Namespace//team-a", "", None);
    assert_eq!(
        verdict(&no_uid, &Owners::new()),
        Verdict::Keep(Keep::NotOwned)
    );
}

#[tokio::test]
async fn an_owner_missing_from_the_list_but_there_now_keeps_its_resources() {
    let api = cluster();
    let aws = Aws::default();
    let (e, g) = aws.endpoint("Service/team-a/live", "live-uid", tags).await;
    aws.ec2.clear_calls();
    let found = collect::read_scope(&aws, &Scope::own(REGION), &settings(false))
        .await
        .unwrap();
    // As if the cluster had been listed before the Service existed.
    let listed_before = collect::Cluster {
        owners: Owners::new(),
        scopes: vec![Scope::own(REGION)],
    };
    let report = decide(
        &api.client(),
        &aws,
        &settings(false),
        &listed_before,
        found,
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(report.garbage().count(), 0, "{report:#?}");
    assert!(
        aws.ec2.mutating_calls().is_empty(),
        "{:?}",
        aws.ec2.mutating_calls()
    );
    let ids: Vec<&str> = report.resources.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [e.as_str(), g.as_str()]);
}

#[test]
fn a_resource_listed_twice_is_garbage_only_if_every_listing_says_so() {
    // One endpoint, seen through hawser's identity (where its owner's
    // resources belong) and through a role of the same account.
    let here = found(Resource::VpcEndpoint, SVC, "u1", Some(2 * HOUR));
    let through_role = Found {
        scope: Scope {
            region: REGION.into(),
            role_arn: Some("arn:aws:iam::123456789012:role/team-a".into()),
            session_name: None,
        },
        ..here.clone()
    };
    let o = owners(SVC, owner("u1", true, Some(Scope::own(REGION))));
    let all = [here, through_role];
    let mut verdicts: Vec<Verdict> = all.iter().map(|f| verdict(f, &o)).collect();
    assert!(
        verdicts[1].is_garbage(),
        "alone, the second listing looks moved"
    );
    super::judge::same_resource_once(&all, &mut verdicts);
    assert_eq!(
        verdicts,
        [Verdict::Keep(Keep::InUse), Verdict::Keep(Keep::InUse)]
    );
}
