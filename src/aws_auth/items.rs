//! `mapRoles` as text: a block-style YAML list split into its top-level
//! items, each kept as the exact bytes it was written with.
//!
//! Editing the text rather than re-serialising the parsed list is what
//! keeps every entry hawser does not own byte for byte as its author
//! wrote it (comments, quoting, key order, indentation). The split is
//! checked against a real YAML parse of the whole list; when the two
//! disagree, nothing is edited.

use serde_yaml_ng::Value;

/// Why a `mapRoles` text cannot be edited safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("mapRoles is not valid YAML: {0}")]
    Yaml(String),
    #[error("mapRoles is not a list of role mappings (found {0})")]
    NotAList(&'static str),
    #[error(
        "mapRoles is written in flow style (JSON-like [ ... ]); hawser edits only block-style \
         lists (\"- rolearn: ...\"), so that entries it does not own keep their exact text; \
         rewrite mapRoles in block style"
    )]
    FlowStyle,
    #[error("mapRoles could not be split into its entries safely ({0}); hawser edits nothing it cannot split exactly")]
    Unsplittable(String),
}

/// One top-level list item: its text (leading comment lines included)
/// and its parsed value.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub text: String,
    pub value: Value,
}

impl Item {
    /// The comment and blank lines above the item's `-`. hawser never
    /// writes any, so they are someone else's (a note about the previous
    /// entry, a commented-out role) and stay when hawser removes or
    /// replaces its own item.
    pub fn leading_comments(&self) -> &str {
        let mut end = 0;
        for line in self.text.split_inclusive('\n') {
            if !is_blank_or_comment(line) {
                break;
            }
            end += line.len();
        }
        &self.text[..end]
    }
}

/// A `mapRoles` text taken apart: whatever precedes the first item (a
/// document marker, say), the items, and the indentation of their `-`.
#[derive(Debug, Clone, PartialEq)]
pub struct MapRolesText {
    pub preamble: String,
    pub items: Vec<Item>,
    pub indent: usize,
}

impl MapRolesText {
    /// Splits `text`. Empty text, only comments, or an empty flow list
    /// (`[]`) is an empty list.
    pub fn split(text: &str) -> Result<Self, SplitError> {
        let parsed: Value =
            serde_yaml_ng::from_str(text).map_err(|e| SplitError::Yaml(e.to_string()))?;
        let values = match parsed {
            Value::Null => Vec::new(),
            Value::Sequence(seq) => seq,
            Value::Mapping(_) => return Err(SplitError::NotAList("a mapping")),
            Value::String(_) => return Err(SplitError::NotAList("a string")),
            _ => return Err(SplitError::NotAList("a scalar")),
        };
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let first = lines
            .iter()
            .position(|l| !is_blank_or_comment(l) && l.trim() != "---");
        let Some(first) = first.filter(|_| !values.is_empty()) else {
            // Nothing to keep but comments: an empty list, in whatever
            // spelling, becomes the empty text that new items follow.
            let preamble = if values.is_empty() && first.is_none() {
                text.to_owned()
            } else {
                String::new()
            };
            return Ok(Self {
                preamble,
                items: Vec::new(),
                indent: 0,
            });
        };
        let indent = leading_spaces(lines[first]);
        if !is_item_start(lines[first], indent) {
            return Err(SplitError::FlowStyle);
        }
        let starts: Vec<usize> = (first..lines.len())
            .filter(|&i| is_item_start(lines[i], indent))
            .collect();
        if starts.len() != values.len() {
            return Err(SplitError::Unsplittable(format!(
                "{} entries parsed, {} found by indentation",
                values.len(),
                starts.len()
            )));
        }
        // Each item owns the comment and blank lines right above it, so a
        // comment describing an entry goes (or stays) with that entry.
        let mut bounds: Vec<usize> = Vec::with_capacity(starts.len());
        for (n, &start) in starts.iter().enumerate() {
            let floor = if n == 0 { 0 } else { starts[n - 1] + 1 };
            let mut s = start;
            while s > floor && is_blank_or_comment(lines[s - 1]) {
                s -= 1;
            }
            bounds.push(s);
        }
        let preamble: String = lines[..bounds[0]].concat();
        let mut items = Vec::with_capacity(values.len());
        for (n, value) in values.into_iter().enumerate() {
            let end = bounds.get(n + 1).copied().unwrap_or(lines.len());
            let text: String = lines[bounds[n]..end].concat();
            let alone: Value = serde_yaml_ng::from_str(&text).map_err(|e| {
                SplitError::Unsplittable(format!("entry {} does not parse alone: {e}", n + 1))
            })?;
            if alone != Value::Sequence(vec![value.clone()]) {
                return Err(SplitError::Unsplittable(format!(
                    "entry {} reads differently alone",
                    n + 1
                )));
            }
            items.push(Item { text, value });
        }
        Ok(Self {
            preamble,
            items,
            indent,
        })
    }

    /// The text again: preamble and items as they are.
    pub fn render(&self) -> String {
        let mut out = self.preamble.clone();
        for item in &self.items {
            out.push_str(&item.text);
        }
        out
    }
}

fn leading_spaces(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// A line that opens a top-level item: `-` at `indent`, then a space or
/// the end of the line.
fn is_item_start(line: &str, indent: usize) -> bool {
    if leading_spaces(line) != indent {
        return false;
    }
    let rest = &line[indent..];
    rest.strip_prefix('-')
        .is_some_and(|after| after.is_empty() || after.starts_with([' ', '\n', '\r', '\t']))
}

/// The rendering of a new item at `indent`: block style, one key a line.
pub fn render_item(value: &impl serde::Serialize, indent: usize) -> String {
    // A one-element list serialises as "- key: value\n  key: ...".
    let text = serde_yaml_ng::to_string(&[value]).unwrap_or_default();
    let pad = " ".repeat(indent);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}
