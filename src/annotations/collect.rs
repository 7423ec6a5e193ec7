//! Reads one object's annotations for a spec parser, collecting every
//! error instead of stopping at the first.

use std::collections::BTreeMap;

use super::error::AnnotationError;
use super::keys::{self, ObjectKind};

pub(crate) struct Annotations<'a> {
    map: &'a BTreeMap<String, String>,
    errors: Vec<AnnotationError>,
}

impl<'a> Annotations<'a> {
    /// Starts reading `map` for an object of `kind`, reporting hawser keys
    /// that are unknown or belong on another kind. Non-hawser keys and
    /// output keys are ignored.
    pub fn new(map: &'a BTreeMap<String, String>, kind: ObjectKind) -> Self {
        let mut errors = Vec::new();
        for (key, value) in map {
            let Some(family) = keys::hawser_family(key) else {
                continue;
            };
            if keys::is_output(key) {
                continue;
            }
            match keys::inputs().find(|(k, _)| k == key) {
                Some((_, kinds)) if kinds.contains(&kind) => {}
                Some((_, kinds)) => errors.push(misplaced(key, value, kind, kinds)),
                None => errors.push(unknown(key, value, family)),
            }
        }
        Annotations { map, errors }
    }

    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.map.get(key).map(String::as_str)
    }

    /// Parses `key` with `parse` when present; a refusal is recorded and
    /// yields `None`, as does absence.
    pub fn parse<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&str, &str) -> Result<T, AnnotationError>,
    ) -> Option<T> {
        let value = self.get(key)?;
        parse(key, value).map_err(|e| self.errors.push(e)).ok()
    }

    pub fn push(&mut self, error: AnnotationError) {
        self.errors.push(error);
    }

    /// Records an error for each of `dependents` that is set; the caller
    /// has found missing what they depend on, described by `needs`
    /// (e.g. `vpce.hawser.io/service-name`).
    pub fn require(&mut self, dependents: &[&str], needs: &str) {
        for key in dependents {
            if let Some(value) = self.get(key) {
                self.errors.push(AnnotationError::new(
                    *key,
                    value,
                    format!("has no effect without {needs}"),
                    format!("set {needs} as well, or remove {key}"),
                ));
            }
        }
    }

    /// The spec, or every error found, ordered by key.
    pub fn finish<T>(mut self, spec: T) -> Result<T, Vec<AnnotationError>> {
        if self.errors.is_empty() {
            return Ok(spec);
        }
        self.errors.sort_by(|a, b| a.key.cmp(&b.key));
        Err(self.errors)
    }
}

fn misplaced(key: &str, value: &str, kind: ObjectKind, kinds: &[ObjectKind]) -> AnnotationError {
    let belongs: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let belongs = belongs.join(" or ");
    AnnotationError::new(
        key,
        value,
        format!("not used on a {}; it belongs on a {belongs}", kind.as_str()),
        format!(
            "remove it from the {}, or set it on a {belongs}",
            kind.as_str()
        ),
    )
}

fn unknown(key: &str, value: &str, family: &str) -> AnnotationError {
    let known: Vec<&str> = keys::inputs()
        .map(|(k, _)| k)
        .filter(|k| keys::hawser_family(k) == Some(family))
        .collect();
    if known.is_empty() {
        return AnnotationError::new(
            key,
            value,
            format!("{family} is not a hawser annotation prefix"),
            format!("keys under {}", keys::FAMILIES.join(", ")),
        );
    }
    AnnotationError::new(
        key,
        value,
        format!("unknown {family} annotation"),
        format!("one of {}", known.join(", ")),
    )
}
