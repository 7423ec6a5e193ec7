//! The CloudFormation stack a Namespace or Deployment asks for.

use std::collections::BTreeMap;

use super::cfn::{
    default_outputs_configmap, parse_capabilities, parse_configmap_name, parse_inline_template,
    parse_parameters, parse_template_configmap, Capability, TemplateSource,
};
use super::collect::Annotations;
use super::error::AnnotationError;
use super::keys::{
    CFN_CAPABILITIES, CFN_OUTPUTS_CONFIGMAP, CFN_PARAMETERS, CFN_TEMPLATE, CFN_TEMPLATE_CONFIGMAP,
};

/// A stack, present when `cfn.hawser.io/template` or
/// `cfn.hawser.io/template-configmap` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackSpec {
    pub template: TemplateSource,
    /// Parameter values as CloudFormation takes them; empty when absent.
    pub parameters: BTreeMap<String, String>,
    /// Empty when absent.
    pub capabilities: Vec<Capability>,
    /// `None`: the controller uses [`StackSpec::outputs_configmap_name`].
    pub outputs_configmap: Option<String>,
}

impl StackSpec {
    /// The ConfigMap that receives the stack outputs: the annotation's
    /// value, or `<object>-stack-outputs`.
    pub fn outputs_configmap_name(&self, object_name: &str) -> String {
        self.outputs_configmap
            .clone()
            .unwrap_or_else(|| default_outputs_configmap(object_name))
    }
}

/// Reads the `cfn.hawser.io/` stack inputs; errors go to `ann`.
pub(crate) fn read_stack(ann: &mut Annotations<'_>) -> Option<StackSpec> {
    let inline = ann.parse(CFN_TEMPLATE, parse_inline_template);
    let configmap = ann.parse(CFN_TEMPLATE_CONFIGMAP, parse_template_configmap);
    let parameters = ann.parse(CFN_PARAMETERS, parse_parameters);
    let capabilities = ann.parse(CFN_CAPABILITIES, parse_capabilities);
    let outputs_configmap = ann.parse(CFN_OUTPUTS_CONFIGMAP, parse_configmap_name);

    let has_inline = ann.get(CFN_TEMPLATE).is_some();
    let has_configmap = ann.get(CFN_TEMPLATE_CONFIGMAP).is_some();
    if has_inline && has_configmap {
        let value = ann.get(CFN_TEMPLATE_CONFIGMAP).unwrap_or_default();
        ann.push(AnnotationError::new(
            CFN_TEMPLATE_CONFIGMAP,
            value,
            format!("{CFN_TEMPLATE} is set too; a stack has one template"),
            format!("either {CFN_TEMPLATE} or {CFN_TEMPLATE_CONFIGMAP}, not both"),
        ));
        return None;
    }
    if !has_inline && !has_configmap {
        ann.require(
            &[CFN_PARAMETERS, CFN_CAPABILITIES, CFN_OUTPUTS_CONFIGMAP],
            &format!("{CFN_TEMPLATE} or {CFN_TEMPLATE_CONFIGMAP}"),
        );
        return None;
    }
    let template = match (inline, configmap) {
        (Some(body), _) => TemplateSource::Inline(body),
        (_, Some(cm)) => TemplateSource::ConfigMap(cm),
        // The template was refused; its error is recorded.
        _ => return None,
    };
    Some(StackSpec {
        template,
        parameters: parameters.unwrap_or_default(),
        capabilities: capabilities.unwrap_or_default(),
        outputs_configmap,
    })
}
