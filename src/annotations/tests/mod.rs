//! Unit tests: every parser with accepted and refused values, refusals
//! checked against their exact message.

mod catalog;
mod cfn;
mod hostile;
mod ids;
mod net;
mod scalars;
mod specs;

use std::collections::BTreeMap;
use std::fmt::Debug;

use super::AnnotationError;

/// The message of a refusal; panics on acceptance.
fn refused<T: Debug>(result: Result<T, AnnotationError>) -> String {
    result.expect_err("value should be refused").to_string()
}

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
