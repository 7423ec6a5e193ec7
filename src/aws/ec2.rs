//! The EC2 surface hawser uses, as a trait over plain types: the
//! controllers never see SDK types, and their tests run against
//! [`super::fake::FakeEc2`].

use std::{collections::BTreeMap, future::Future, time::SystemTime};

use super::AwsResult;

/// Tags by key.
pub type Tags = BTreeMap<String, String>;

/// The tags a resource is created with: `defaults` (`--default-tags`)
/// with hawser's `own` over them, so hawser's keys always hold its values.
pub fn with_default_tags(defaults: &Tags, own: &Tags) -> Tags {
    let mut tags = defaults.clone();
    tags.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    tags
}

/// Whether `have` carries every tag of `want`, with its value: how a
/// resource is found by its ownership tags (as EC2's tag filters do).
pub fn carries(have: &Tags, want: &Tags) -> bool {
    want.iter().all(|(k, v)| have.get(k) == Some(v))
}

/// The lifecycle state of a VPC endpoint, read case-insensitively
/// (moto sends `available`, AWS `Available`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointState {
    PendingAcceptance,
    Pending,
    Available,
    Deleting,
    Deleted,
    Rejected,
    Failed,
    Expired,
    Other(String),
}

impl EndpointState {
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "pendingacceptance" => Self::PendingAcceptance,
            "pending" => Self::Pending,
            "available" => Self::Available,
            "deleting" => Self::Deleting,
            "deleted" => Self::Deleted,
            "rejected" => Self::Rejected,
            "failed" => Self::Failed,
            "expired" => Self::Expired,
            _ => Self::Other(s.to_owned()),
        }
    }

    /// Gone, or on its way: such an endpoint is no longer adopted.
    pub fn is_gone(&self) -> bool {
        matches!(self, Self::Deleting | Self::Deleted)
    }
}

/// An interface VPC endpoint as DescribeVpcEndpoints reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub vpc_id: String,
    pub service_name: String,
    pub state: EndpointState,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    pub private_dns: bool,
    /// DNS names in AWS's order; the first is the regional name.
    pub dns_names: Vec<String>,
    pub tags: Tags,
    /// CreationTimestamp; `None` when AWS did not say.
    pub created: Option<SystemTime>,
}

/// One ingress rule from a CIDR block (IPv4 or IPv6). Rules that name
/// security groups or prefix lists are not hawser's and are left alone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CidrRule {
    /// `-1` for all protocols, else `tcp`, `udp`, `icmp` or a number.
    pub protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub cidr: String,
}

impl CidrRule {
    /// All protocols, all ports, from `cidr`: the rule hawser writes.
    pub fn all_from(cidr: &str) -> Self {
        Self {
            protocol: "-1".into(),
            from_port: None,
            to_port: None,
            cidr: cidr.to_owned(),
        }
    }

    pub fn is_all_traffic(&self) -> bool {
        self.protocol == "-1"
    }
}

/// A security group as DescribeSecurityGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub vpc_id: String,
    pub ingress: Vec<CidrRule>,
    pub egress: Vec<CidrRule>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateEndpoint {
    pub vpc_id: String,
    pub service_name: String,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    pub private_dns: bool,
    /// Idempotency token (AWS: at most 64 ASCII characters).
    pub client_token: String,
    pub tags: Tags,
}

/// A ModifyVpcEndpoint request; empty lists and `None` change nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModifyEndpoint {
    pub endpoint_id: String,
    pub add_subnet_ids: Vec<String>,
    pub remove_subnet_ids: Vec<String>,
    pub add_security_group_ids: Vec<String>,
    pub remove_security_group_ids: Vec<String>,
    pub private_dns: Option<bool>,
}

impl ModifyEndpoint {
    pub fn is_empty(&self) -> bool {
        self.add_subnet_ids.is_empty()
            && self.remove_subnet_ids.is_empty()
            && self.add_security_group_ids.is_empty()
            && self.remove_security_group_ids.is_empty()
            && self.private_dns.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSecurityGroup {
    pub vpc_id: String,
    pub name: String,
    pub description: String,
    pub tags: Tags,
}

/// The EC2 calls the VPC endpoint controller makes. Every `find_*` is one
/// Describe call filtered by tags (server-side), so it costs one request
/// however many resources the account holds.
pub trait Ec2Api: Send + Sync {
    /// Endpoints carrying every one of `tags`, in any state.
    fn find_endpoints(&self, tags: &Tags) -> impl Future<Output = AwsResult<Vec<Endpoint>>> + Send;

    fn create_endpoint(
        &self,
        req: &CreateEndpoint,
    ) -> impl Future<Output = AwsResult<Endpoint>> + Send;

    fn modify_endpoint(&self, req: &ModifyEndpoint) -> impl Future<Output = AwsResult<()>> + Send;

    /// Deletes one endpoint; an endpoint that does not exist is success.
    fn delete_endpoint(&self, id: &str) -> impl Future<Output = AwsResult<()>> + Send;

    /// Security groups carrying every one of `tags`.
    fn find_security_groups(
        &self,
        tags: &Tags,
    ) -> impl Future<Output = AwsResult<Vec<SecurityGroup>>> + Send;

    /// Creates a group (AWS adds the all-traffic egress rule) and returns
    /// its id.
    fn create_security_group(
        &self,
        req: &CreateSecurityGroup,
    ) -> impl Future<Output = AwsResult<String>> + Send;

    fn authorize_ingress(
        &self,
        group_id: &str,
        rules: &[CidrRule],
    ) -> impl Future<Output = AwsResult<()>> + Send;

    fn revoke_ingress(
        &self,
        group_id: &str,
        rules: &[CidrRule],
    ) -> impl Future<Output = AwsResult<()>> + Send;

    fn authorize_egress(
        &self,
        group_id: &str,
        rules: &[CidrRule],
    ) -> impl Future<Output = AwsResult<()>> + Send;

    /// Deletes a group; one that does not exist is success.
    fn delete_security_group(&self, id: &str) -> impl Future<Output = AwsResult<()>> + Send;

    /// Adds (or overwrites) `add` and removes the keys in `remove`, on
    /// every resource in `ids`.
    fn retag(
        &self,
        ids: &[String],
        add: &Tags,
        remove: &[&str],
    ) -> impl Future<Output = AwsResult<()>> + Send;
}
