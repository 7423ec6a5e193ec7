//! An in-memory [`CloudFormationApi`] for unit tests, asynchronous like
//! real CloudFormation where moto is not: a create or update is
//! `…_IN_PROGRESS` on the first describe and reaches its end on a later
//! one, and the end can be scripted (ROLLBACK_COMPLETE,
//! UPDATE_ROLLBACK_COMPLETE, DELETE_FAILED …) together with the resource
//! events that explain it. An empty change set FAILs as CloudFormation's
//! does. Failures are injected per operation; every call is logged.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
};

use super::cfn::{
    ChangeSet, ChangeSetStatus, CloudFormationApi, Stack, StackEvent, StackRequest, StackStatus,
    StackSummary,
};
use super::fake::CallLog;
use super::ops::{cfn as op, Op};
use super::{AwsError, CfnProvider, Scope};

pub const NO_CHANGES: &str = "The submitted information didn't contain changes. Submit different \
     information to create a change set.";

pub struct FakeStack {
    pub stack: Stack,
    pub template: String,
    /// Statuses the next describes show, in order; the last one stays.
    pub script: VecDeque<StackStatus>,
    pub events: Vec<StackEvent>,
    /// SetStackPolicy's body.
    pub policy: Option<String>,
}

#[derive(Default)]
pub struct State {
    pub stacks: BTreeMap<String, FakeStack>,
    /// `(stack, change set name)` → change set and its request.
    pub change_sets: BTreeMap<(String, String), (ChangeSet, StackRequest)>,
    pub log: CallLog,
    /// How the next create ends (default CREATE_COMPLETE), with events.
    pub next_create: Option<(StackStatus, Vec<StackEvent>)>,
    /// How the next executed update ends (default UPDATE_COMPLETE).
    pub next_update: Option<(StackStatus, Vec<StackEvent>)>,
    /// How the next delete ends (default: gone).
    pub next_delete: Option<(StackStatus, Vec<StackEvent>)>,
    next_id: u32,
}

#[derive(Clone, Default)]
pub struct FakeCfn {
    pub state: Arc<Mutex<State>>,
}

impl CfnProvider for FakeCfn {
    type Cfn = FakeCfn;
    async fn cfn(&self, _scope: &Scope) -> FakeCfn {
        self.clone()
    }
}

/// A resource event as CloudFormation reports a failure.
pub fn failed_event(
    logical_id: &str,
    resource_type: &str,
    status: &str,
    reason: &str,
) -> StackEvent {
    StackEvent {
        logical_id: logical_id.to_owned(),
        resource_type: resource_type.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
    }
}

impl FakeCfn {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

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

    /// The stack as the next describe would show it, without a call.
    pub fn peek(&self, name: &str) -> Option<Stack> {
        self.lock().stacks.get(name).map(|s| s.stack.clone())
    }

    /// Puts a stack in place as if made outside this test's hawser.
    pub fn insert(&self, stack: Stack) {
        self.lock().stacks.insert(
            stack.name.clone(),
            FakeStack {
                stack,
                template: String::new(),
                script: VecDeque::new(),
                events: vec![],
                policy: None,
            },
        );
    }

    /// Changes a live stack's status (e.g. someone else deleting it).
    pub fn set_status(&self, name: &str, status: StackStatus) {
        if let Some(s) = self.lock().stacks.get_mut(name) {
            s.stack.status = status;
            s.script.clear();
        }
    }

    fn call(&self, op: Op) -> Result<MutexGuard<'_, State>, AwsError> {
        let mut s = self.lock();
        s.log.call(op)?;
        Ok(s)
    }
}

/// The live stack named (or with the ARN) `stack`, or `op`'s
/// does-not-exist error.
fn by_name_or_id<'a>(s: &'a mut State, op: Op, stack: &str) -> Result<&'a mut FakeStack, AwsError> {
    s.stacks
        .values_mut()
        .find(|fs| fs.stack.name == stack || fs.stack.id == stack)
        .ok_or_else(|| missing(op.name, stack))
}

fn missing(operation: &'static str, name: &str) -> AwsError {
    AwsError::new(
        operation,
        "ValidationError",
        format!("Stack with id {name} does not exist"),
    )
}

impl CloudFormationApi for FakeCfn {
    async fn describe_stack(&self, name: &str) -> Result<Option<Stack>, AwsError> {
        let mut s = self.call(op::DESCRIBE_STACKS)?;
        let Some(fs) = s.stacks.get_mut(name) else {
            return Ok(None);
        };
        let shown = fs.stack.clone();
        // Advance: the next describe shows the next scripted status.
        if let Some(next) = fs.script.pop_front() {
            fs.stack.status = next;
        }
        if shown.status == StackStatus::DeleteComplete {
            s.stacks.remove(name);
            return Ok(None);
        }
        Ok(Some(shown))
    }

    async fn describe_stacks_tagged(&self, key: &str, value: &str) -> Result<Vec<Stack>, AwsError> {
        let s = self.call(op::DESCRIBE_STACKS)?;
        // A snapshot: shown as they are, no scripted status advanced.
        Ok(s.stacks
            .values()
            .map(|fs| fs.stack.clone())
            .filter(|stack| stack.tags.get(key).map(String::as_str) == Some(value))
            .filter(|stack| stack.status != StackStatus::DeleteComplete)
            .collect())
    }

    async fn create_stack(&self, req: &StackRequest) -> Result<String, AwsError> {
        let mut s = self.call(op::CREATE_STACK)?;
        if s.stacks.contains_key(&req.stack_name) {
            return Err(AwsError::new(
                op::CREATE_STACK.name,
                "AlreadyExistsException",
                format!("Stack [{}] already exists", req.stack_name),
            ));
        }
        s.next_id += 1;
        let id = format!(
            "arn:aws:cloudformation:us-west-2:123456789012:stack/{}/{}",
            req.stack_name, s.next_id
        );
        let (end, events) = s
            .next_create
            .take()
            .unwrap_or((StackStatus::CreateComplete, vec![]));
        let mut script = VecDeque::new();
        if matches!(
            end,
            StackStatus::RollbackComplete | StackStatus::RollbackFailed
        ) {
            script.push_back(StackStatus::RollbackInProgress);
        }
        script.push_back(end.clone());
        let outputs = if end == StackStatus::CreateComplete {
            BTreeMap::from([("QueueUrl".to_owned(), format!("https://sqs/{}", s.next_id))])
        } else {
            BTreeMap::new()
        };
        s.stacks.insert(
            req.stack_name.clone(),
            FakeStack {
                stack: Stack {
                    id: id.clone(),
                    name: req.stack_name.clone(),
                    status: StackStatus::CreateInProgress,
                    status_reason: None,
                    outputs,
                    parameters: req.parameters.clone(),
                    tags: req.tags.clone(),
                },
                template: req.template_body.clone(),
                script,
                events,
                policy: None,
            },
        );
        Ok(id)
    }

    async fn create_change_set(&self, name: &str, req: &StackRequest) -> Result<String, AwsError> {
        let mut s = self.call(op::CREATE_CHANGE_SET)?;
        let key = (req.stack_name.clone(), name.to_owned());
        if s.change_sets.contains_key(&key) {
            return Err(AwsError::new(
                op::CREATE_CHANGE_SET.name,
                "AlreadyExistsException",
                format!("ChangeSet {name} already exists"),
            ));
        }
        let Some(fs) = s.stacks.get(&req.stack_name) else {
            return Err(missing(op::CREATE_CHANGE_SET.name, &req.stack_name));
        };
        let same = fs.template == req.template_body && fs.stack.parameters == req.parameters;
        let id = format!("{}/changeSet/{name}", fs.stack.id);
        let cs = ChangeSet {
            id: id.clone(),
            status: if same {
                ChangeSetStatus::Failed
            } else {
                ChangeSetStatus::CreateComplete
            },
            status_reason: same.then(|| NO_CHANGES.to_owned()),
            execution_status: Some(if same { "UNAVAILABLE" } else { "AVAILABLE" }.to_owned()),
            changes: usize::from(!same),
            resource_changes: vec![],
        };
        s.change_sets.insert(key, (cs, req.clone()));
        Ok(id)
    }

    async fn describe_change_set(
        &self,
        stack_name: &str,
        change_set_name: &str,
    ) -> Result<Option<ChangeSet>, AwsError> {
        let s = self.call(op::DESCRIBE_CHANGE_SET)?;
        let key = (stack_name.to_owned(), change_set_name.to_owned());
        Ok(s.change_sets.get(&key).map(|(cs, _)| cs.clone()))
    }

    async fn execute_change_set(
        &self,
        stack_name: &str,
        change_set_name: &str,
    ) -> Result<(), AwsError> {
        let mut s = self.call(op::EXECUTE_CHANGE_SET)?;
        let key = (stack_name.to_owned(), change_set_name.to_owned());
        let Some((_, req)) = s.change_sets.get(&key).cloned() else {
            return Err(AwsError::new(
                op::EXECUTE_CHANGE_SET.name,
                "ChangeSetNotFound",
                format!("ChangeSet [{change_set_name}] does not exist"),
            ));
        };
        // Executing a change set removes every change set of the stack.
        s.change_sets.retain(|(stack, _), _| stack != stack_name);
        let (end, events) = s
            .next_update
            .take()
            .unwrap_or((StackStatus::UpdateComplete, vec![]));
        let fs = s.stacks.get_mut(stack_name).expect("change set's stack");
        fs.stack.status = StackStatus::UpdateInProgress;
        fs.events = events;
        if end == StackStatus::UpdateComplete {
            fs.template = req.template_body.clone();
            fs.stack.parameters = req.parameters.clone();
            fs.stack.tags = req.tags.clone();
            fs.stack.outputs.insert("Updated".into(), "true".into());
            fs.script = VecDeque::from([StackStatus::UpdateCompleteCleanupInProgress, end]);
        } else {
            // Rolled back: template, parameters and tags as before.
            fs.script = VecDeque::from([StackStatus::UpdateRollbackInProgress, end]);
        }
        Ok(())
    }

    async fn delete_change_set(
        &self,
        stack_name: &str,
        change_set_name: &str,
    ) -> Result<(), AwsError> {
        let mut s = self.call(op::DELETE_CHANGE_SET)?;
        s.change_sets
            .remove(&(stack_name.to_owned(), change_set_name.to_owned()));
        Ok(())
    }

    async fn delete_stack(&self, stack: &str) -> Result<(), AwsError> {
        let mut s = self.call(op::DELETE_STACK)?;
        let (end, events) = s
            .next_delete
            .take()
            .unwrap_or((StackStatus::DeleteComplete, vec![]));
        let Some(fs) = s
            .stacks
            .values_mut()
            .find(|fs| fs.stack.name == stack || fs.stack.id == stack)
        else {
            return Ok(());
        };
        if fs.stack.status == StackStatus::DeleteInProgress {
            return Ok(());
        }
        fs.stack.status = StackStatus::DeleteInProgress;
        fs.events = events;
        fs.script = VecDeque::from([end]);
        Ok(())
    }

    async fn stack_events(&self, stack: &str) -> Result<Vec<StackEvent>, AwsError> {
        let mut s = self.call(op::DESCRIBE_STACK_EVENTS)?;
        let fs = by_name_or_id(&mut s, op::DESCRIBE_STACK_EVENTS, stack)?;
        let mut events = fs.events.clone();
        events.reverse();
        Ok(events)
    }

    async fn list_stacks(&self) -> Result<Vec<StackSummary>, AwsError> {
        let s = self.call(op::LIST_STACKS)?;
        Ok(s.stacks
            .values()
            .filter(|fs| fs.stack.status != StackStatus::DeleteComplete)
            .map(|fs| StackSummary {
                id: fs.stack.id.clone(),
                name: fs.stack.name.clone(),
                status: fs.stack.status.clone(),
                created: None,
            })
            .collect())
    }

    async fn stack_policy(&self, stack: &str) -> Result<Option<String>, AwsError> {
        let mut s = self.call(op::GET_STACK_POLICY)?;
        Ok(by_name_or_id(&mut s, op::GET_STACK_POLICY, stack)?
            .policy
            .clone())
    }

    async fn set_stack_policy(&self, stack: &str, body: &str) -> Result<(), AwsError> {
        let mut s = self.call(op::SET_STACK_POLICY)?;
        by_name_or_id(&mut s, op::SET_STACK_POLICY, stack)?.policy = Some(body.to_owned());
        Ok(())
    }
}
