//! hawser: an admission webhook and a controller in one binary that attach
//! AWS side effects to annotated Kubernetes objects.
//!
//! The decisions (what to patch, what to refuse) are pure functions in
//! [`webhook::hardening`] and friends; the modules around them do the I/O.
#![forbid(unsafe_code)]

pub mod admin;
pub mod annotations;
pub mod app;
pub mod aws;
pub mod aws_auth;
pub mod cache;
pub mod certs;
pub mod cli;
pub mod controller;
pub mod gc;
pub mod kubeconfig;
pub mod leader;
pub mod lint;
pub mod manifests;
pub mod metrics;
pub mod namespaces;
pub mod plan;
pub mod selector;
pub mod self_managed;
#[cfg(test)]
pub mod testing;
pub mod tls;
pub mod webhook;
