//! Label selectors in the apiserver's string syntax (`team=a`,
//! `tier in (web,api)`, `!legacy`, …), parsed into kube's [`Selector`] so
//! hawser can tell, for an object it already has, whether the selector
//! matches it. kube builds selectors but does not parse the string form.

use std::collections::BTreeSet;

use kube::core::{Expression, Selector, SelectorExt};

/// A parsed selector together with the text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector {
    text: String,
    selector: Selector,
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut selector = Selector::default();
        let terms = if text.trim().is_empty() {
            vec![]
        } else {
            split_terms(text)?
        };
        for term in terms {
            selector.extend(std::iter::once(parse_term(&term)?));
        }
        Ok(Self {
            text: text.to_owned(),
            selector,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.selector.matches(labels)
    }
}

/// Splits on the commas outside parentheses.
fn split_terms(text: &str) -> Result<Vec<String>, String> {
    let (mut terms, mut current, mut depth) = (Vec::new(), String::new(), 0u32);
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Err("unbalanced \")\"".into()),
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if depth != 0 {
        return Err("unbalanced \"(\"".into());
    }
    terms.push(current);
    let terms: Vec<String> = terms.iter().map(|t| t.trim().to_owned()).collect();
    if terms.iter().any(String::is_empty) {
        return Err("empty requirement (two commas, or a comma at an end)".into());
    }
    Ok(terms)
}

fn parse_term(term: &str) -> Result<Expression, String> {
    if let Some(key) = term.strip_prefix('!') {
        return Ok(Expression::DoesNotExist(key_of(key.trim())?));
    }
    for (op, make) in [
        (
            " notin ",
            Expression::NotIn as fn(String, BTreeSet<String>) -> Expression,
        ),
        (" in ", Expression::In),
    ] {
        if let Some((key, set)) = term.split_once(op) {
            return Ok(make(key_of(key.trim())?, set_of(set.trim())?));
        }
    }
    for (op, make) in [
        (
            "!=",
            Expression::NotEqual as fn(String, String) -> Expression,
        ),
        ("==", Expression::Equal),
        ("=", Expression::Equal),
    ] {
        if let Some((key, value)) = term.split_once(op) {
            return Ok(make(key_of(key.trim())?, value_of(value.trim())?));
        }
    }
    Ok(Expression::Exists(key_of(term)?))
}

fn set_of(text: &str) -> Result<BTreeSet<String>, String> {
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("{text:?} is not a parenthesised list of values"))?;
    inner.split(',').map(|v| value_of(v.trim())).collect()
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// A label key: `[prefix/]name`.
fn key_of(key: &str) -> Result<String, String> {
    let name = key.rsplit_once('/').map_or(key, |(_, name)| name);
    let ok = !name.is_empty()
        && name.len() <= 63
        && key.len() <= 317
        && key.chars().all(|c| is_label_char(c) || c == '/')
        && key.matches('/').count() <= 1;
    if ok {
        Ok(key.to_owned())
    } else {
        Err(format!("{key:?} is not a label key"))
    }
}

fn value_of(value: &str) -> Result<String, String> {
    if value.len() <= 63 && value.chars().all(is_label_char) {
        Ok(value.to_owned())
    } else {
        Err(format!("{value:?} is not a label value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_operator_matches_as_the_apiserver_does() {
        let web_a = labels(&[("team", "a"), ("tier", "web")]);
        let api_b = labels(&[("team", "b"), ("tier", "api"), ("legacy", "")]);
        for (text, a, b) in [
            ("team=a", true, false),
            ("team==a", true, false),
            ("team!=a", false, true),
            ("team", true, true),
            ("!legacy", true, false),
            ("tier in (web, api)", true, true),
            ("tier notin (web)", false, true),
            ("team=a,tier=web", true, false),
            ("team=a, tier=api", false, false),
            ("example.com/owner", false, false),
            ("", true, true),
        ] {
            let s = LabelSelector::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(s.matches(&web_a), a, "{text} on web_a");
            assert_eq!(s.matches(&api_b), b, "{text} on api_b");
            assert_eq!(s.as_str(), text);
        }
    }

    #[test]
    fn malformed_selectors_are_refused_with_the_reason() {
        for (text, why) in [
            ("team=a,", "empty requirement"),
            ("tier in (web", "unbalanced"),
            ("tier in web", "not a parenthesised list"),
            ("team=a b", "not a label value"),
            ("a/b/c=x", "not a label key"),
            ("=x", "not a label key"),
        ] {
            let err = LabelSelector::parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
