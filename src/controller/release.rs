//! The JSON patch that lets go of an object whose trigger annotation was
//! removed: hawser's output annotations and its finalizer, each guarded by
//! a test so that a concurrent change fails the patch instead of removing
//! the wrong entry. Shared by the controllers.

use std::collections::BTreeMap;
use std::str::FromStr;

use json_patch::{jsonptr::PointerBuf, PatchOperation, RemoveOperation, TestOperation};

pub fn release_patch(
    ann: &BTreeMap<String, String>,
    output_keys: &[&str],
    finalizers: &[String],
    finalizer: &str,
) -> json_patch::Patch {
    let mut ops = Vec::new();
    for key in output_keys {
        if let Some(value) = ann.get(*key) {
            let path = PointerBuf::from_tokens(["metadata", "annotations", key]);
            ops.push(PatchOperation::Test(TestOperation {
                path: path.clone(),
                value: value.clone().into(),
            }));
            ops.push(PatchOperation::Remove(RemoveOperation { path }));
        }
    }
    if let Some(i) = finalizers.iter().position(|f| f == finalizer) {
        let path = PointerBuf::from_str(&format!("/metadata/finalizers/{i}"))
            .expect("a finalizer index is a valid pointer");
        ops.push(PatchOperation::Test(TestOperation {
            path: path.clone(),
            value: finalizer.into(),
        }));
        ops.push(PatchOperation::Remove(RemoveOperation { path }));
    }
    json_patch::Patch(ops)
}
