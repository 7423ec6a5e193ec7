//! An in-memory [`Ec2Api`] for unit tests. It behaves like real EC2 where
//! moto does not: ClientToken is honoured, a group in use cannot be
//! deleted (DependencyViolation), an endpoint can stay pending, and a
//! deleted endpoint lingers as `deleting` for one describe. Failures are
//! injected per operation; every call is logged.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex},
};

use super::ops::{ec2 as op, Op};
use super::{
    carries, AwsError, CidrRule, CreateEndpoint, CreateSecurityGroup, Ec2Api, Ec2Provider,
    Endpoint, EndpointState, ModifyEndpoint, Scope, SecurityGroup, Tags,
};

/// The calls a fake was asked to make, and the failures scripted for its
/// next ones; shared by the EC2 and CloudFormation fakes.
#[derive(Default)]
pub struct CallLog {
    pub calls: Vec<&'static str>,
    /// Failures to return, in order, per operation.
    pub failures: BTreeMap<&'static str, VecDeque<AwsError>>,
}

impl CallLog {
    /// Logs a call of `op`: the failure scripted for it, if any.
    pub fn call(&mut self, op: Op) -> Result<(), AwsError> {
        self.calls.push(op.name);
        match self.failures.get_mut(op.name).and_then(VecDeque::pop_front) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub fn fail_next(&mut self, operation: &'static str, code: &str, message: &str) {
        let failure = AwsError::new(operation, code, message);
        self.failures
            .entry(operation)
            .or_default()
            .push_back(failure);
    }

    /// The calls that change something in AWS ([`Op::writes`]).
    pub fn mutating(&self) -> Vec<&'static str> {
        let writes = |c: &&str| Op::named(c).is_some_and(|o| o.writes);
        self.calls.iter().copied().filter(writes).collect()
    }
}

#[derive(Default)]
pub struct State {
    pub endpoints: BTreeMap<String, Endpoint>,
    pub groups: BTreeMap<String, SecurityGroup>,
    pub tokens: BTreeMap<String, String>,
    pub log: CallLog,
    /// State of newly created endpoints.
    pub create_state: Option<EndpointState>,
    /// Endpoints deleted but still shown as `deleting` for one describe.
    pub lingering: Vec<String>,
    pub subnets: Vec<String>,
    next_id: u32,
}

#[derive(Clone, Default)]
pub struct FakeEc2 {
    pub state: Arc<Mutex<State>>,
}

impl Ec2Provider for FakeEc2 {
    type Ec2 = FakeEc2;
    async fn ec2(&self, _scope: &Scope) -> FakeEc2 {
        self.clone()
    }
}

impl FakeEc2 {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Makes the next call of `operation` fail with `code`.
    pub fn fail_next(&self, operation: &'static str, code: &str, message: &str) {
        self.lock().log.fail_next(operation, code, message);
    }

    pub fn calls(&self) -> Vec<&'static str> {
        self.lock().log.calls.clone()
    }

    /// The calls that change something in AWS ([`Op::writes`]).
    pub fn mutating_calls(&self) -> Vec<&'static str> {
        self.lock().log.mutating()
    }

    pub fn clear_calls(&self) {
        self.lock().log.calls.clear();
    }

    /// Endpoints not deleted.
    pub fn live_endpoints(&self) -> Vec<Endpoint> {
        self.lock()
            .endpoints
            .values()
            .filter(|e| !e.state.is_gone())
            .cloned()
            .collect()
    }

    pub fn groups(&self) -> Vec<SecurityGroup> {
        self.lock().groups.values().cloned().collect()
    }

    /// A security group that hawser did not make (a "provided" one).
    pub fn add_foreign_group(&self, id: &str, vpc_id: &str) {
        self.lock().groups.insert(
            id.to_owned(),
            SecurityGroup {
                id: id.to_owned(),
                name: format!("foreign-{id}"),
                vpc_id: vpc_id.to_owned(),
                ingress: vec![],
                egress: vec![CidrRule::all_from("0.0.0.0/0")],
                tags: Tags::new(),
            },
        );
    }

    fn call(&self, op: Op) -> Result<std::sync::MutexGuard<'_, State>, AwsError> {
        let mut s = self.lock();
        s.log.call(op)?;
        Ok(s)
    }
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:017x}", self.next_id)
    }

    fn group_in_use(&self, id: &str) -> bool {
        self.endpoints
            .values()
            .any(|e| !e.state.is_gone() && e.security_group_ids.iter().any(|g| g == id))
    }
}

impl Ec2Api for FakeEc2 {
    async fn find_endpoints(&self, tags: &Tags) -> Result<Vec<Endpoint>, AwsError> {
        let mut s = self.call(op::DESCRIBE_VPC_ENDPOINTS)?;
        let found = s
            .endpoints
            .values()
            .filter(|e| carries(&e.tags, tags))
            .cloned()
            .collect();
        // A deleting endpoint shows as such once, then as deleted.
        for id in std::mem::take(&mut s.lingering) {
            if let Some(e) = s.endpoints.get_mut(&id) {
                e.state = EndpointState::Deleted;
            }
        }
        Ok(found)
    }

    async fn create_endpoint(&self, req: &CreateEndpoint) -> Result<Endpoint, AwsError> {
        let mut s = self.call(op::CREATE_VPC_ENDPOINT)?;
        if let Some(id) = s.tokens.get(&req.client_token) {
            return Ok(s.endpoints[id].clone());
        }
        if let Some(bad) = req
            .subnet_ids
            .iter()
            .find(|id| !s.subnets.is_empty() && !s.subnets.contains(id))
        {
            return Err(AwsError::new(
                op::CREATE_VPC_ENDPOINT.name,
                "InvalidSubnetID.NotFound",
                format!("The subnet ID '{bad}' does not exist"),
            ));
        }
        let id = s.id("vpce");
        let endpoint = Endpoint {
            id: id.clone(),
            vpc_id: req.vpc_id.clone(),
            service_name: req.service_name.clone(),
            state: s.create_state.clone().unwrap_or(EndpointState::Available),
            subnet_ids: req.subnet_ids.clone(),
            security_group_ids: req.security_group_ids.clone(),
            private_dns: req.private_dns,
            dns_names: vec![
                format!("{id}-abc.{}", req.service_name),
                format!("{id}-abc-us-west-2a.{}", req.service_name),
            ],
            tags: req.tags.clone(),
            created: Some(std::time::SystemTime::now()),
        };
        s.tokens.insert(req.client_token.clone(), id.clone());
        s.endpoints.insert(id, endpoint.clone());
        Ok(endpoint)
    }

    async fn modify_endpoint(&self, req: &ModifyEndpoint) -> Result<(), AwsError> {
        let mut s = self.call(op::MODIFY_VPC_ENDPOINT)?;
        let Some(e) = s.endpoints.get_mut(&req.endpoint_id) else {
            return Err(AwsError::new(
                op::MODIFY_VPC_ENDPOINT.name,
                "InvalidVpcEndpointId.NotFound",
                "no such endpoint",
            ));
        };
        e.subnet_ids
            .retain(|id| !req.remove_subnet_ids.contains(id));
        e.subnet_ids.extend(req.add_subnet_ids.iter().cloned());
        e.security_group_ids
            .retain(|id| !req.remove_security_group_ids.contains(id));
        e.security_group_ids
            .extend(req.add_security_group_ids.iter().cloned());
        if let Some(p) = req.private_dns {
            e.private_dns = p;
        }
        Ok(())
    }

    async fn delete_endpoint(&self, id: &str) -> Result<(), AwsError> {
        let mut s = self.call(op::DELETE_VPC_ENDPOINTS)?;
        if let Some(e) = s.endpoints.get_mut(id) {
            e.state = EndpointState::Deleting;
            s.lingering.push(id.to_owned());
        }
        Ok(())
    }

    async fn find_security_groups(&self, tags: &Tags) -> Result<Vec<SecurityGroup>, AwsError> {
        let s = self.call(op::DESCRIBE_SECURITY_GROUPS)?;
        Ok(s.groups
            .values()
            .filter(|g| carries(&g.tags, tags))
            .cloned()
            .collect())
    }

    async fn create_security_group(&self, req: &CreateSecurityGroup) -> Result<String, AwsError> {
        let mut s = self.call(op::CREATE_SECURITY_GROUP)?;
        if s.groups
            .values()
            .any(|g| g.name == req.name && g.vpc_id == req.vpc_id)
        {
            return Err(AwsError::new(
                op::CREATE_SECURITY_GROUP.name,
                "InvalidGroup.Duplicate",
                format!("The security group '{}' already exists", req.name),
            ));
        }
        let id = s.id("sg");
        s.groups.insert(
            id.clone(),
            SecurityGroup {
                id: id.clone(),
                name: req.name.clone(),
                vpc_id: req.vpc_id.clone(),
                ingress: vec![],
                egress: vec![CidrRule::all_from("0.0.0.0/0")],
                tags: req.tags.clone(),
            },
        );
        Ok(id)
    }

    async fn authorize_ingress(&self, group_id: &str, rules: &[CidrRule]) -> Result<(), AwsError> {
        let mut s = self.call(op::AUTHORIZE_SECURITY_GROUP_INGRESS)?;
        let g = group(&mut s, op::AUTHORIZE_SECURITY_GROUP_INGRESS.name, group_id)?;
        g.ingress.extend(rules.iter().cloned());
        Ok(())
    }

    async fn revoke_ingress(&self, group_id: &str, rules: &[CidrRule]) -> Result<(), AwsError> {
        let mut s = self.call(op::REVOKE_SECURITY_GROUP_INGRESS)?;
        let g = group(&mut s, op::REVOKE_SECURITY_GROUP_INGRESS.name, group_id)?;
        g.ingress.retain(|r| !rules.contains(r));
        Ok(())
    }

    async fn authorize_egress(&self, group_id: &str, rules: &[CidrRule]) -> Result<(), AwsError> {
        let mut s = self.call(op::AUTHORIZE_SECURITY_GROUP_EGRESS)?;
        let g = group(&mut s, op::AUTHORIZE_SECURITY_GROUP_EGRESS.name, group_id)?;
        g.egress.extend(rules.iter().cloned());
        Ok(())
    }

    async fn delete_security_group(&self, id: &str) -> Result<(), AwsError> {
        let mut s = self.call(op::DELETE_SECURITY_GROUP)?;
        if s.group_in_use(id) {
            return Err(AwsError::new(
                op::DELETE_SECURITY_GROUP.name,
                "DependencyViolation",
                format!("resource {id} has a dependent object"),
            ));
        }
        s.groups.remove(id);
        Ok(())
    }

    async fn retag(&self, ids: &[String], add: &Tags, remove: &[&str]) -> Result<(), AwsError> {
        let mut s = self.call(op::CREATE_TAGS)?;
        let apply = |tags: &mut Tags| {
            tags.extend(add.clone());
            tags.retain(|k, _| !remove.contains(&k.as_str()));
        };
        for id in ids {
            if let Some(e) = s.endpoints.get_mut(id) {
                apply(&mut e.tags);
            }
            if let Some(g) = s.groups.get_mut(id) {
                apply(&mut g.tags);
            }
        }
        s.log.calls.push(op::DELETE_TAGS.name);
        Ok(())
    }
}

fn group<'a>(
    s: &'a mut State,
    operation: &'static str,
    id: &str,
) -> Result<&'a mut SecurityGroup, AwsError> {
    s.groups.get_mut(id).ok_or_else(|| {
        AwsError::new(
            operation,
            "InvalidGroup.NotFound",
            format!("The security group '{id}' does not exist"),
        )
    })
}
