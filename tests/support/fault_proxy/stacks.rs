//! How the proxy shows a stack marked failed: moto's answers about it
//! rewritten as CloudFormation's would read.

use super::{Faults, StackFault};

/// The fault of the stack a DescribeStacks or DescribeStackEvents
/// request names (by name or by id, `arn:…:stack/NAME/…`), if marked.
pub(super) fn stack_fault(faults: &Faults, action: &str, body: &[u8]) -> Option<StackFault> {
    if action != "DescribeStacks" && action != "DescribeStackEvents" {
        return None;
    }
    let named = form_urlencoded::parse(body)
        .find(|(k, _)| k == "StackName")
        .map(|(_, v)| v.into_owned())?;
    faults.stacks.iter().find_map(|(name, fault)| {
        (named == *name || named.contains(&format!(":stack/{name}/"))).then(|| fault.clone())
    })
}

/// The first `<StackId>` of an answer: the stack it is about.
pub(super) fn stack_id(xml: &str) -> Option<&str> {
    xml.split("<StackId>")
        .nth(1)
        .and_then(|rest| rest.split("</StackId>").next())
}

/// moto's answer for a stack made to fail, rewritten as CloudFormation's.
pub(super) fn rewrite(action: &str, xml: &str, fault: &StackFault) -> String {
    if action == "DescribeStacks" {
        return xml.replace(
            &format!("<StackStatus>{}</StackStatus>", fault.from),
            &format!("<StackStatus>{}</StackStatus>", fault.to),
        );
    }
    let stack_id = stack_id(xml).unwrap_or_default();
    let stack_name = stack_id.split('/').nth(1).unwrap_or_default();
    let event = format!(
        "<member><StackId>{stack_id}</StackId><EventId>fault-proxy-{}</EventId>\
<StackName>{stack_name}</StackName><LogicalResourceId>{}</LogicalResourceId>\
<PhysicalResourceId></PhysicalResourceId><ResourceType>{}</ResourceType>\
<Timestamp>2099-01-01T00:00:00Z</Timestamp><ResourceStatus>{}</ResourceStatus>\
<ResourceStatusReason>{}</ResourceStatusReason></member>",
        fault.logical_id, fault.logical_id, fault.resource_type, fault.event_status, fault.reason
    );
    xml.replacen("<StackEvents>", &format!("<StackEvents>{event}"), 1)
}

/// Whether a DescribeStacks request names its stack.
pub(super) fn names_a_stack(body: &[u8]) -> bool {
    form_urlencoded::parse(body).any(|(k, _)| k == "StackName")
}

/// An unnamed DescribeStacks lists every stack: each marked one is shown
/// as a look at it by name would show it (in moto's answer each stack's
/// fields start with its StackId).
pub(super) fn rewrite_listed(faults: &mut Faults, xml: &str) -> String {
    let mut parts = xml.split("<StackId>");
    let mut out = parts.next().unwrap_or_default().to_owned();
    for part in parts {
        let id = part.split("</StackId>").next().unwrap_or_default();
        let name = id.split('/').nth(1).unwrap_or_default();
        let fault = faults.dead.get(id).cloned().or_else(|| {
            let fault = faults.stacks.get(name)?.clone();
            if fault.from == "CREATE_COMPLETE" {
                // As a look by name: a stack of a marked create is dead.
                faults.dead.insert(id.to_owned(), fault.clone());
            }
            Some(fault)
        });
        out.push_str("<StackId>");
        match fault {
            Some(f) => out.push_str(&part.replacen(
                &format!("<StackStatus>{}</StackStatus>", f.from),
                &format!("<StackStatus>{}</StackStatus>", f.to),
                1,
            )),
            None => out.push_str(part),
        }
    }
    out
}
