//! [`Ec2Api`] over aws-sdk-ec2. Each method is one or a few SDK calls,
//! each counted in `hawser_aws_api_calls_total`; nothing here decides.

use std::{future::Future, sync::Arc, time::SystemTime};

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_async::future::pagination_stream::PaginationStream;

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, ResourceType, Tag, TagSpecification, VpcEndpointType,
};

use super::ec2::{
    CidrRule, CreateEndpoint, CreateSecurityGroup, Ec2Api, Endpoint, EndpointState, ModifyEndpoint,
    SecurityGroup, Tags,
};
use super::ops::{ec2 as op, Op};
use super::{error::HttpResponse, AwsError, AwsErrorKind, CallCounter};

#[derive(Clone)]
pub struct SdkEc2 {
    client: aws_sdk_ec2::Client,
    calls: Arc<CallCounter>,
}

impl SdkEc2 {
    /// The SDK retry partition this client's calls share (its limiter).
    #[cfg(test)]
    pub(super) fn retry_partition(&self) -> Option<String> {
        self.client
            .config()
            .retry_partition()
            .map(|p| p.to_string())
    }

    /// How long one attempt of this client's calls may wait for an answer.
    #[cfg(test)]
    pub(super) fn attempt_timeout(&self) -> Option<std::time::Duration> {
        self.client
            .config()
            .timeout_config()
            .and_then(|t| t.operation_attempt_timeout())
    }

    pub fn new(client: aws_sdk_ec2::Client, calls: Arc<CallCounter>) -> Self {
        Self { client, calls }
    }

    /// Awaits one SDK call, converting and counting its outcome.
    async fn call<T, E>(
        &self,
        op: Op,
        request: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> Result<T, AwsError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.calls.call(op, request).await
    }
}

/// Every page of a describe call, each page counted as one call of `op`.
/// The SDK's paginator stops at a missing, empty or repeated token; its
/// end is not a call, and is not counted.
pub(super) async fn every_page<Out, E, T>(
    calls: &CallCounter,
    op: Op,
    mut pages: PaginationStream<Result<Out, SdkError<E, HttpResponse>>>,
    items: impl Fn(&Out) -> Vec<T>,
) -> Result<Vec<T>, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = calls.call(op, std::future::ready(page)).await?;
        found.extend(items(&page));
    }
    Ok(found)
}

fn tag_filters(tags: &Tags) -> Vec<Filter> {
    tags.iter()
        .map(|(k, v)| Filter::builder().name(format!("tag:{k}")).values(v).build())
        .collect()
}

fn tag_specification(resource: ResourceType, tags: &Tags) -> TagSpecification {
    let mut spec = TagSpecification::builder().resource_type(resource);
    for (k, v) in tags {
        spec = spec.tags(Tag::builder().key(k).value(v).build());
    }
    spec.build()
}

fn tags_of(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or("").to_owned())))
        .collect()
}

fn endpoint_of(e: &aws_sdk_ec2::types::VpcEndpoint) -> Endpoint {
    Endpoint {
        id: e.vpc_endpoint_id().unwrap_or_default().to_owned(),
        vpc_id: e.vpc_id().unwrap_or_default().to_owned(),
        service_name: e.service_name().unwrap_or_default().to_owned(),
        // The SDK maps moto's lower-case `available` to State::Unknown;
        // the string is what both agree on.
        state: EndpointState::parse(e.state().map(|s| s.as_str()).unwrap_or("")),
        subnet_ids: e.subnet_ids().to_vec(),
        security_group_ids: e
            .groups()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_owned))
            .collect(),
        private_dns: e.private_dns_enabled().unwrap_or(false),
        dns_names: e
            .dns_entries()
            .iter()
            .filter_map(|d| d.dns_name().map(str::to_owned))
            .collect(),
        tags: tags_of(e.tags()),
        created: e
            .creation_timestamp()
            .and_then(|t| SystemTime::try_from(*t).ok()),
    }
}

fn rules_of(perms: &[IpPermission]) -> Vec<CidrRule> {
    let mut rules = Vec::new();
    for p in perms {
        let protocol = p.ip_protocol().unwrap_or("-1").to_owned();
        let (from_port, to_port) = (p.from_port(), p.to_port());
        let v4 = p.ip_ranges().iter().filter_map(|r| r.cidr_ip());
        let v6 = p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6());
        for cidr in v4.chain(v6) {
            rules.push(CidrRule {
                protocol: protocol.clone(),
                // AWS reports -1/-1 (or nothing) for all-protocol rules.
                from_port: from_port.filter(|_| protocol != "-1"),
                to_port: to_port.filter(|_| protocol != "-1"),
                cidr: cidr.to_owned(),
            });
        }
    }
    rules
}

fn permissions_of(rules: &[CidrRule]) -> Vec<IpPermission> {
    rules
        .iter()
        .map(|r| {
            let mut p = IpPermission::builder()
                .ip_protocol(&r.protocol)
                .set_from_port(r.from_port)
                .set_to_port(r.to_port);
            p = if r.cidr.contains(':') {
                p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(&r.cidr).build())
            } else {
                p.ip_ranges(IpRange::builder().cidr_ip(&r.cidr).build())
            };
            p.build()
        })
        .collect()
}

fn group_of(g: &aws_sdk_ec2::types::SecurityGroup) -> SecurityGroup {
    SecurityGroup {
        id: g.group_id().unwrap_or_default().to_owned(),
        name: g.group_name().unwrap_or_default().to_owned(),
        vpc_id: g.vpc_id().unwrap_or_default().to_owned(),
        ingress: rules_of(g.ip_permissions()),
        egress: rules_of(g.ip_permissions_egress()),
        tags: tags_of(g.tags()),
    }
}

impl Ec2Api for SdkEc2 {
    async fn find_endpoints(&self, tags: &Tags) -> Result<Vec<Endpoint>, AwsError> {
        let pages = self
            .client
            .describe_vpc_endpoints()
            .set_filters(Some(tag_filters(tags)))
            .into_paginator()
            .send();
        every_page(&self.calls, op::DESCRIBE_VPC_ENDPOINTS, pages, |out| {
            out.vpc_endpoints().iter().map(endpoint_of).collect()
        })
        .await
    }

    async fn create_endpoint(&self, req: &CreateEndpoint) -> Result<Endpoint, AwsError> {
        let request = self
            .client
            .create_vpc_endpoint()
            .vpc_endpoint_type(VpcEndpointType::Interface)
            .vpc_id(&req.vpc_id)
            .service_name(&req.service_name)
            .set_subnet_ids(Some(req.subnet_ids.clone()))
            .set_security_group_ids(Some(req.security_group_ids.clone()))
            .private_dns_enabled(req.private_dns)
            .client_token(&req.client_token)
            .tag_specifications(tag_specification(ResourceType::VpcEndpoint, &req.tags))
            .send();
        let out = self.call(op::CREATE_VPC_ENDPOINT, request).await?;
        out.vpc_endpoint()
            .map(endpoint_of)
            .ok_or_else(|| empty_response(op::CREATE_VPC_ENDPOINT, "endpoint"))
    }

    async fn modify_endpoint(&self, req: &ModifyEndpoint) -> Result<(), AwsError> {
        let none_if_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        let request = self
            .client
            .modify_vpc_endpoint()
            .vpc_endpoint_id(&req.endpoint_id)
            .set_add_subnet_ids(none_if_empty(&req.add_subnet_ids))
            .set_remove_subnet_ids(none_if_empty(&req.remove_subnet_ids))
            .set_add_security_group_ids(none_if_empty(&req.add_security_group_ids))
            .set_remove_security_group_ids(none_if_empty(&req.remove_security_group_ids))
            .set_private_dns_enabled(req.private_dns)
            .send();
        self.call(op::MODIFY_VPC_ENDPOINT, request).await.map(drop)
    }

    async fn delete_endpoint(&self, id: &str) -> Result<(), AwsError> {
        let request = self
            .client
            .delete_vpc_endpoints()
            .vpc_endpoint_ids(id)
            .send();
        let out = match self.call(op::DELETE_VPC_ENDPOINTS, request).await {
            Err(e) if e.kind == AwsErrorKind::NotFound => return Ok(()),
            other => other?,
        };
        // Per-item failures come back in a 200 response.
        let Some(err) = out.unsuccessful().iter().find_map(|u| u.error()) else {
            return Ok(());
        };
        let e = AwsError::new(
            op::DELETE_VPC_ENDPOINTS.name,
            err.code().unwrap_or(""),
            err.message().unwrap_or(""),
        );
        if e.kind == AwsErrorKind::NotFound {
            Ok(())
        } else {
            Err(e)
        }
    }

    async fn find_security_groups(&self, tags: &Tags) -> Result<Vec<SecurityGroup>, AwsError> {
        let filters = Some(tag_filters(tags));
        let pages = self.client.describe_security_groups().set_filters(filters);
        every_page(
            &self.calls,
            op::DESCRIBE_SECURITY_GROUPS,
            pages.into_paginator().send(),
            |out| out.security_groups().iter().map(group_of).collect(),
        )
        .await
    }

    async fn create_security_group(&self, req: &CreateSecurityGroup) -> Result<String, AwsError> {
        let request = self
            .client
            .create_security_group()
            .vpc_id(&req.vpc_id)
            .group_name(&req.name)
            .description(&req.description)
            .tag_specifications(tag_specification(ResourceType::SecurityGroup, &req.tags))
            .send();
        let out = self.call(op::CREATE_SECURITY_GROUP, request).await?;
        out.group_id()
            .map(str::to_owned)
            .ok_or_else(|| empty_response(op::CREATE_SECURITY_GROUP, "group id"))
    }

    async fn authorize_ingress(&self, group_id: &str, rules: &[CidrRule]) -> Result<(), AwsError> {
        let request = self
            .client
            .authorize_security_group_ingress()
            .group_id(group_id)
            .set_ip_permissions(Some(permissions_of(rules)))
            .send();
        self.call(op::AUTHORIZE_SECURITY_GROUP_INGRESS, request)
            .await
            .map(drop)
    }

    async fn revoke_ingress(&self, group_id: &str, rules: &[CidrRule]) -> Result<(), AwsError> {
        let request = self
            .client
            .revoke_security_group_ingress()
            .group_id(group_id)
            .set_ip_permissions(Some(permissions_of(rules)))
            .send();
        self.call(op::REVOKE_SECURITY_GROUP_INGRESS, request)
            .await
            .map(drop)
    }

    async fn authorize_egress(&self, group_id: &str, rules: &[CidrRule]) -> Result<(), AwsError> {
        let request = self
            .client
            .authorize_security_group_egress()
            .group_id(group_id)
            .set_ip_permissions(Some(permissions_of(rules)))
            .send();
        self.call(op::AUTHORIZE_SECURITY_GROUP_EGRESS, request)
            .await
            .map(drop)
    }

    async fn delete_security_group(&self, id: &str) -> Result<(), AwsError> {
        let request = self.client.delete_security_group().group_id(id).send();
        match self.call(op::DELETE_SECURITY_GROUP, request).await {
            Err(e) if e.kind == AwsErrorKind::NotFound => Ok(()),
            other => other.map(drop),
        }
    }

    async fn retag(&self, ids: &[String], add: &Tags, remove: &[&str]) -> Result<(), AwsError> {
        if !add.is_empty() {
            let mut request = self.client.create_tags().set_resources(Some(ids.to_vec()));
            for (k, v) in add {
                request = request.tags(Tag::builder().key(k).value(v).build());
            }
            self.call(op::CREATE_TAGS, request.send()).await?;
        }
        if !remove.is_empty() {
            let mut request = self.client.delete_tags().set_resources(Some(ids.to_vec()));
            for k in remove {
                request = request.tags(Tag::builder().key(*k).build());
            }
            self.call(op::DELETE_TAGS, request.send()).await?;
        }
        Ok(())
    }
}

fn empty_response(op: Op, what: &str) -> AwsError {
    AwsError {
        operation: op.name,
        kind: AwsErrorKind::Other,
        code: None,
        message: format!("the response carried no {what}"),
    }
}
