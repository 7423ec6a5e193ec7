//! The tags a user adds to every AWS resource hawser creates
//! (`--default-tags`), checked against AWS's rules for tags.

use super::Tags;

/// AWS's limit on tags per resource, less the ones hawser writes itself
/// (cluster, owner, uid, Name, and released-from on a retained resource).
pub const MAX_DEFAULT_TAGS: usize = 45;

/// `--default-tags`: comma-separated KEY=VALUE, each checked against
/// AWS's rules for tags, none of them hawser's or AWS's own.
pub fn parse_default_tags(s: &str) -> Result<Tags, String> {
    const ALLOWED: &str = "letters, digits, spaces and _ . : / = + - @";
    let mut tags = Tags::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = |why: String| Err(format!("{entry:?}: {why}"));
        let Some((key, value)) = entry.split_once('=') else {
            return bad("not KEY=VALUE".into());
        };
        let key_len = key.chars().count();
        if !(1..=128).contains(&key_len) {
            return bad(format!(
                "the key is {key_len} characters; 1-128 are allowed"
            ));
        }
        let value_len = value.chars().count();
        if value_len > 256 {
            return bad(format!(
                "the value is {value_len} characters; at most 256 are allowed"
            ));
        }
        let is_tag_char = |c: char| {
            c.is_alphanumeric() || (c.is_whitespace() && !c.is_control()) || "_.:/=+-@".contains(c)
        };
        if let Some(c) = entry.chars().find(|c| !is_tag_char(*c)) {
            return bad(format!("{c:?} is not allowed; tags allow {ALLOWED}"));
        }
        let lower = key.to_ascii_lowercase();
        if lower.starts_with("aws:") {
            return bad("keys starting with aws: are reserved for AWS".into());
        }
        if lower.starts_with("hawser.io/") {
            return bad("keys starting with hawser.io/ are hawser's own".into());
        }
        if tags.insert(key.to_owned(), value.to_owned()).is_some() {
            return bad(format!("the key {key:?} is given twice"));
        }
    }
    if tags.len() > MAX_DEFAULT_TAGS {
        return Err(format!(
            "{} tags; at most {MAX_DEFAULT_TAGS} are allowed (AWS allows 50 per resource, and hawser writes up to 5 of its own)",
            tags.len()
        ));
    }
    Ok(tags)
}
