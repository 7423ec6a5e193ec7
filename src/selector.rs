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
    /// Parses the apiserver's syntax (k8s.io/apimachinery `labels.Parse`):
    /// comma-separated requirements `key`, `!key`, `key=value`,
    /// `key==value`, `key!=value`, `key in (v1,v2)`, `key notin (v1,v2)`.
    /// The numeric `<` and `>` are refused: no namespace label needs them.
    pub fn parse(text: &str) -> Result<Self, String> {
        let tokens = tokenize(text)?;
        let mut selector = Selector::default();
        let mut rest = tokens.as_slice();
        while !rest.is_empty() {
            let (expression, after) = requirement(rest)?;
            selector.extend(std::iter::once(expression));
            rest = match after {
                [] => after,
                [Token::Comma, more @ ..] if !more.is_empty() => more,
                _ => return Err("expected \",\" between requirements, and none at the end".into()),
            };
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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Not,
    Equals,
    NotEquals,
    Open,
    Close,
    Comma,
    Compare(char),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            c if c.is_whitespace() => continue,
            '!' if chars.peek() == Some(&'=') => {
                chars.next();
                Token::NotEquals
            }
            '!' => Token::Not,
            '=' => {
                if chars.peek() == Some(&'=') {
                    chars.next();
                }
                Token::Equals
            }
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            '<' | '>' => Token::Compare(c),
            c => {
                let mut word = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "!=(),<>".contains(n) {
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                Token::Word(word)
            }
        };
        tokens.push(token);
    }
    Ok(tokens)
}

/// One requirement from the front of `tokens`, and what follows it.
fn requirement(tokens: &[Token]) -> Result<(Expression, &[Token]), String> {
    if let [Token::Not, Token::Word(key), rest @ ..] = tokens {
        return Ok((Expression::DoesNotExist(key_of(key)?), rest));
    }
    let [Token::Word(key), rest @ ..] = tokens else {
        return Err("expected a label key at the start of each requirement".into());
    };
    let key = key_of(key)?;
    match rest {
        [] | [Token::Comma, ..] => Ok((Expression::Exists(key), rest)),
        [Token::Equals | Token::NotEquals, Token::Word(value), after @ ..] => {
            let value = value_of(value)?;
            Ok((equality(&rest[0], key, value), after))
        }
        // `key=` selects the empty value.
        [op @ (Token::Equals | Token::NotEquals), after @ ..]
            if matches!(after, [] | [Token::Comma, ..]) =>
        {
            Ok((equality(op, key, String::new()), after))
        }
        [Token::Word(op), Token::Open, after @ ..] if op == "in" || op == "notin" => {
            let (values, after) = value_list(after)?;
            let expression = if op == "in" {
                Expression::In(key, values)
            } else {
                Expression::NotIn(key, values)
            };
            Ok((expression, after))
        }
        [Token::Compare(c), ..] => Err(format!(
            "the numeric operator {c:?} is not supported here; allowed: =, ==, !=, in, notin, exists, !"
        )),
        _ => Err(format!(
            "after the key {key:?}: expected =, ==, !=, in (…), notin (…), \",\" or the end"
        )),
    }
}

fn equality(op: &Token, key: String, value: String) -> Expression {
    if *op == Token::NotEquals {
        Expression::NotEqual(key, value)
    } else {
        Expression::Equal(key, value)
    }
}

/// `v1, v2)`: the values up to and including the closing parenthesis.
fn value_list(tokens: &[Token]) -> Result<(BTreeSet<String>, &[Token]), String> {
    let mut values = BTreeSet::new();
    let mut rest = tokens;
    loop {
        match rest {
            [Token::Word(v), Token::Comma, more @ ..] => {
                values.insert(value_of(v)?);
                rest = more;
            }
            [Token::Word(v), Token::Close, more @ ..] => {
                values.insert(value_of(v)?);
                return Ok((values, more));
            }
            _ => return Err("expected a parenthesised list of values, e.g. (a,b)".into()),
        }
    }
}

/// `[A-Za-z0-9]` at both ends, `-_.` allowed inside, up to 63 characters.
fn is_name(s: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    s.len() <= 63
        && edge(s.chars().next())
        && edge(s.chars().last())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A lower-case DNS subdomain of up to 253 characters.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            let edge =
                |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            edge(part.chars().next())
                && edge(part.chars().last())
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// A label key: `[prefix/]name`.
fn key_of(key: &str) -> Result<String, String> {
    let ok = match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_name(name),
        None => is_name(key),
    };
    if ok {
        Ok(key.to_owned())
    } else {
        Err(format!(
            "{key:?} is not a label key; allowed: [prefix/]name, name of up to 63 letters, digits, '-', '_', '.' starting and ending with a letter or digit, prefix a lower-case DNS subdomain"
        ))
    }
}

fn value_of(value: &str) -> Result<String, String> {
    if value.is_empty() || is_name(value) {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{value:?} is not a label value; allowed: up to 63 letters, digits, '-', '_', '.' starting and ending with a letter or digit"
        ))
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
            ("tier in(web)", true, false),
            ("tier\tnotin\t( web )", false, true),
            ("a in (notin)", false, false),
            ("legacy=", false, true),
            ("team in (a,b),!legacy", true, false),
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
            ("team=a,", "expected \",\" between requirements"),
            (",team=a", "expected a label key"),
            ("tier in (web", "parenthesised list"),
            ("tier in web", "expected =, ==, !=, in"),
            ("team=a b", "expected \",\" between requirements"),
            ("team=a-", "not a label value"),
            ("-x", "not a label key"),
            ("Example.com/x", "not a label key"),
            ("/x", "not a label key"),
            ("a/b/c=x", "not a label key"),
            ("=x", "expected a label key"),
            ("a>1", "numeric operator"),
        ] {
            let err = LabelSelector::parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
