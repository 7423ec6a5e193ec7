//! Where an object's AWS calls go: the one precedence rule, used by the
//! webhook (stranded-resources check, a Service's inherited region) and by
//! the controllers ([`crate::controller::scope`]).

/// The region of an object's AWS calls: its own `aws.hawser.io/region`,
/// else its namespace's, else the default. `None` only when none is
/// known (the webhook without `--region`).
pub fn effective_region<'a>(
    object: Option<&'a str>,
    namespace: Option<&'a str>,
    default: Option<&'a str>,
) -> Option<&'a str> {
    object.or(namespace).or(default)
}

/// The default region as hawser is configured: `--region`, else
/// `AWS_REGION`, else `AWS_DEFAULT_REGION` (the SDK's own environment
/// variables; IRSA and EKS Pod Identity set `AWS_REGION`). `env` reads a
/// variable; an empty value is unset. The controllers pass it to the SDK,
/// and the webhook compares regions with it, so both agree.
pub fn default_region(flag: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Option<String> {
    flag.map(str::to_owned)
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .filter(|r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_object_wins_then_the_namespace_then_the_default() {
        let (o, n, d) = (Some("ap-south-1"), Some("eu-west-1"), Some("us-west-2"));
        assert_eq!(effective_region(o, n, d), o);
        assert_eq!(effective_region(None, n, d), n);
        assert_eq!(effective_region(None, None, d), d);
        assert_eq!(effective_region(None, None, None), None);
    }

    #[test]
    fn the_default_is_the_flag_then_the_sdk_variables() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let both = env(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ]);
        assert_eq!(
            default_region(Some("us-west-2"), both).as_deref(),
            Some("us-west-2")
        );
        assert_eq!(default_region(None, both).as_deref(), Some("eu-west-1"));
        let legacy = env(&[("AWS_DEFAULT_REGION", "us-east-1")]);
        assert_eq!(default_region(None, legacy).as_deref(), Some("us-east-1"));
        assert_eq!(default_region(None, env(&[("AWS_REGION", "")])), None);
    }
}
