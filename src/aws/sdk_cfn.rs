//! [`CloudFormationApi`] over aws-sdk-cloudformation. Each method is one
//! SDK call, counted in `hawser_aws_api_calls_total{service="cloudformation"}`;
//! nothing here decides.

use std::{sync::Arc, time::SystemTime};

use aws_sdk_cloudformation::types::{Capability, ChangeSetType, Parameter, Tag};

use super::cfn::{
    ChangeSet, ChangeSetStatus, CloudFormationApi, ResourceChange, Stack, StackEvent, StackRequest,
    StackStatus, StackSummary,
};
use super::ops::cfn as op;
use super::sdk_ec2::every_page;
use super::{AwsError, AwsErrorKind, CallCounter, Tags};

#[derive(Clone)]
pub struct SdkCfn {
    client: aws_sdk_cloudformation::Client,
    calls: Arc<CallCounter>,
}

impl SdkCfn {
    pub fn new(client: aws_sdk_cloudformation::Client, calls: Arc<CallCounter>) -> Self {
        Self { client, calls }
    }
}

/// CloudFormation answers a missing stack with ValidationError "Stack
/// with id X does not exist" rather than a code of its own.
fn is_missing_stack(e: &AwsError) -> bool {
    e.kind == AwsErrorKind::NotFound
        || (e.code.as_deref() == Some("ValidationError") && e.message.contains("does not exist"))
}

fn parameters(req: &StackRequest) -> Vec<Parameter> {
    req.parameters
        .iter()
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_key(k)
                .parameter_value(v)
                .build()
        })
        .collect()
}

fn capabilities(req: &StackRequest) -> Vec<Capability> {
    req.capabilities
        .iter()
        .map(|c| Capability::from(c.as_str()))
        .collect()
}

fn tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Key-value pairs as CloudFormation lists them (outputs, parameters,
/// tags); entries without a key are dropped, a missing value is empty.
fn pairs<'a, T>(
    items: &'a [T],
    kv: impl Fn(&'a T) -> (Option<&'a str>, Option<&'a str>),
) -> std::collections::BTreeMap<String, String> {
    items
        .iter()
        .filter_map(|item| {
            let (k, v) = kv(item);
            Some((k?.to_owned(), v.unwrap_or_default().to_owned()))
        })
        .collect()
}

fn stack_of(s: &aws_sdk_cloudformation::types::Stack) -> Stack {
    Stack {
        id: s.stack_id().unwrap_or_default().to_owned(),
        name: s.stack_name().unwrap_or_default().to_owned(),
        status: StackStatus::parse(s.stack_status().map(|s| s.as_str()).unwrap_or("")),
        status_reason: s.stack_status_reason().map(str::to_owned),
        outputs: pairs(s.outputs(), |o| (o.output_key(), o.output_value())),
        parameters: pairs(s.parameters(), |p| (p.parameter_key(), p.parameter_value())),
        tags: pairs(s.tags(), |t| (t.key(), t.value())),
    }
}

impl CloudFormationApi for SdkCfn {
    async fn describe_stack(&self, name: &str) -> Result<Option<Stack>, AwsError> {
        let request = self.client.describe_stacks().stack_name(name).send();
        let result = self
            .calls
            .call(op::DESCRIBE_STACKS, request)
            .await
            .map(|out| out.stacks().first().map(stack_of));
        match result {
            Err(e) if is_missing_stack(&e) => Ok(None),
            other => other,
        }
    }

    async fn describe_stacks_tagged(&self, key: &str, value: &str) -> Result<Vec<Stack>, AwsError> {
        let pages = self.client.describe_stacks().into_paginator().send();
        every_page(&self.calls, op::DESCRIBE_STACKS, pages, |page| {
            page.stacks()
                .iter()
                .filter(|s| {
                    s.tags()
                        .iter()
                        .any(|t| t.key() == Some(key) && t.value() == Some(value))
                })
                .map(stack_of)
                .filter(|s| s.status != StackStatus::DeleteComplete)
                .collect()
        })
        .await
    }

    async fn create_stack(&self, req: &StackRequest) -> Result<String, AwsError> {
        let request = self
            .client
            .create_stack()
            .stack_name(&req.stack_name)
            .template_body(&req.template_body)
            .set_parameters(Some(parameters(req)))
            .set_capabilities(Some(capabilities(req)))
            .set_tags(Some(tags(&req.tags)))
            .send();
        let out = self.calls.call(op::CREATE_STACK, request).await?;
        Ok(out.stack_id().unwrap_or_default().to_owned())
    }

    async fn create_change_set(
        &self,
        change_set_name: &str,
        req: &StackRequest,
    ) -> Result<String, AwsError> {
        let request = self
            .client
            .create_change_set()
            .stack_name(&req.stack_name)
            .change_set_name(change_set_name)
            // moto 5.2.5 (hack/testenv) makes a second stack without it.
            .change_set_type(ChangeSetType::Update)
            .template_body(&req.template_body)
            .set_parameters(Some(parameters(req)))
            .set_capabilities(Some(capabilities(req)))
            .set_tags(Some(tags(&req.tags)))
            .send();
        let out = self.calls.call(op::CREATE_CHANGE_SET, request).await?;
        Ok(out.id().unwrap_or_default().to_owned())
    }

    async fn describe_change_set(
        &self,
        stack_name: &str,
        change_set_name: &str,
    ) -> Result<Option<ChangeSet>, AwsError> {
        let request = self
            .client
            .describe_change_set()
            .stack_name(stack_name)
            .change_set_name(change_set_name)
            .send();
        match self.calls.call(op::DESCRIBE_CHANGE_SET, request).await {
            Ok(out) => Ok(Some(ChangeSet {
                id: out.change_set_id().unwrap_or_default().to_owned(),
                status: ChangeSetStatus::parse(out.status().map(|s| s.as_str()).unwrap_or("")),
                status_reason: out.status_reason().map(str::to_owned),
                execution_status: out.execution_status().map(|s| s.as_str().to_owned()),
                changes: out.changes().len(),
                resource_changes: out
                    .changes()
                    .iter()
                    .filter_map(|c| c.resource_change())
                    .map(|r| ResourceChange {
                        action: r
                            .action()
                            .map(|a| a.as_str().to_owned())
                            .unwrap_or_default(),
                        logical_id: r.logical_resource_id().unwrap_or_default().to_owned(),
                        resource_type: r.resource_type().unwrap_or_default().to_owned(),
                        replacement: r.replacement().map(|x| x.as_str().to_owned()),
                    })
                    .collect(),
            })),
            // CloudFormation: ChangeSetNotFound; moto: ValidationError
            // "Stack with id <change set> does not exist".
            Err(e) if is_missing_stack(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn execute_change_set(
        &self,
        stack_name: &str,
        change_set_name: &str,
    ) -> Result<(), AwsError> {
        let request = self
            .client
            .execute_change_set()
            .stack_name(stack_name)
            .change_set_name(change_set_name)
            .send();
        self.calls
            .call(op::EXECUTE_CHANGE_SET, request)
            .await
            .map(drop)
    }

    async fn delete_change_set(
        &self,
        stack_name: &str,
        change_set_name: &str,
    ) -> Result<(), AwsError> {
        let request = self
            .client
            .delete_change_set()
            .stack_name(stack_name)
            .change_set_name(change_set_name)
            .send();
        match self.calls.call(op::DELETE_CHANGE_SET, request).await {
            Err(e) if e.kind == AwsErrorKind::NotFound => Ok(()),
            other => other.map(drop),
        }
    }

    async fn delete_stack(&self, stack: &str) -> Result<(), AwsError> {
        let request = self.client.delete_stack().stack_name(stack).send();
        match self.calls.call(op::DELETE_STACK, request).await {
            Err(e) if is_missing_stack(&e) => Ok(()),
            other => other.map(drop),
        }
    }

    async fn stack_events(&self, stack: &str) -> Result<Vec<StackEvent>, AwsError> {
        let request = self.client.describe_stack_events().stack_name(stack).send();
        let out = self.calls.call(op::DESCRIBE_STACK_EVENTS, request).await?;
        Ok(out
            .stack_events()
            .iter()
            .map(|e| StackEvent {
                logical_id: e.logical_resource_id().unwrap_or_default().to_owned(),
                resource_type: e.resource_type().unwrap_or_default().to_owned(),
                status: e
                    .resource_status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                reason: e.resource_status_reason().map(str::to_owned),
            })
            .collect())
    }

    async fn list_stacks(&self) -> Result<Vec<StackSummary>, AwsError> {
        let pages = self.client.list_stacks().into_paginator().send();
        every_page(&self.calls, op::LIST_STACKS, pages, |page| {
            page.stack_summaries()
                .iter()
                .map(|s| StackSummary {
                    id: s.stack_id().unwrap_or_default().to_owned(),
                    name: s.stack_name().unwrap_or_default().to_owned(),
                    status: StackStatus::parse(s.stack_status().map(|s| s.as_str()).unwrap_or("")),
                    created: s
                        .creation_time()
                        .and_then(|t| SystemTime::try_from(*t).ok()),
                })
                .filter(|s| s.status != StackStatus::DeleteComplete)
                .collect()
        })
        .await
    }

    async fn stack_policy(&self, stack: &str) -> Result<Option<String>, AwsError> {
        let request = self.client.get_stack_policy().stack_name(stack).send();
        let out = self.calls.call(op::GET_STACK_POLICY, request).await?;
        Ok(out
            .stack_policy_body()
            .filter(|b| !b.trim().is_empty())
            .map(str::to_owned))
    }

    async fn set_stack_policy(&self, stack: &str, body: &str) -> Result<(), AwsError> {
        let request = self
            .client
            .set_stack_policy()
            .stack_name(stack)
            .stack_policy_body(body)
            .send();
        self.calls
            .call(op::SET_STACK_POLICY, request)
            .await
            .map(drop)
    }
}
