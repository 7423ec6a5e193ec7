//! Every integration test in one binary (`cargo test --test e2e`), so the
//! AWS SDK, kube and the harness are compiled and linked once, not once
//! per file. Each module is one file of tests: `cargo test --test e2e
//! e2e_vpce::` runs one. Most need the test bed (`bash hack/test.sh`);
//! `admission_fixtures` does not.

mod support;

mod admission_fixtures;
mod e2e_account_budget;
mod e2e_assume_role;
mod e2e_aws;
mod e2e_aws_auth_concurrency;
mod e2e_aws_auth_guard;
mod e2e_cert_manager;
mod e2e_certs;
mod e2e_cfn_requests;
mod e2e_contract;
mod e2e_ec2_rates;
mod e2e_failover;
mod e2e_gc;
mod e2e_hardening;
mod e2e_image;
mod e2e_install;
mod e2e_leader;
mod e2e_manifests;
mod e2e_monitoring;
mod e2e_namespace;
mod e2e_outages;
mod e2e_plan;
mod e2e_restarts;
mod e2e_resync_cost;
mod e2e_self_managed_certs;
mod e2e_stack;
mod e2e_stack_account;
mod e2e_stack_faults;
mod e2e_throttling;
mod e2e_vpce;
mod lint;
