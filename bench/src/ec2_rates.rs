//! EC2's request token buckets, as AWS documents them in "Request
//! throttling for the Amazon EC2 API"
//! (<https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html>):
//! one bucket per API action and account, full at the start; a request
//! takes a token or is refused with `RequestLimitExceeded`, and tokens
//! come back at a fixed rate up to the bucket's capacity.
//!
//! Shared by `hawser-bench ec2-rates` (a proxy in front of moto for the
//! convergence benchmark) and the e2e tests' fault proxy
//! (`tests/support/fault_proxy.rs` includes this file), so the benchmark
//! and the tests throttle alike. No dependencies beyond std.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

/// One action's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// The most tokens the bucket holds (and holds at the start).
    pub capacity: f64,
    /// Tokens added each second.
    pub refill: f64,
}

const fn limit(capacity: f64, refill: f64) -> Limit {
    Limit { capacity, refill }
}

/// The documented bucket of an EC2 action. `filtered`: the request
/// carries a filter or pagination, which the page requires for the larger
/// non-mutating bucket of the actions it lists as "unfiltered and
/// unpaginated".
pub fn limit_of(action: &str, filtered: bool) -> Limit {
    match action {
        // Uncategorized actions, with their own figures.
        "CreateVpcEndpoint" | "ModifyVpcEndpoint" | "DeleteVpcEndpoints" => limit(4.0, 0.3),
        "CreateTags" | "DeleteTags" => limit(100.0, 10.0),
        // Resource-intensive actions.
        "AuthorizeSecurityGroupIngress" | "RevokeSecurityGroupIngress" => limit(50.0, 5.0),
        // Unfiltered and unpaginated non-mutating actions.
        "DescribeInstances"
        | "DescribeInstanceStatus"
        | "DescribeNetworkInterfaces"
        | "DescribeSecurityGroups"
        | "DescribeSnapshots"
        | "DescribeSpotInstanceRequests"
        | "DescribeVolumes"
            if !filtered =>
        {
            limit(50.0, 10.0)
        }
        // Non-mutating actions.
        a if ["Describe", "List", "Search", "Get"]
            .iter()
            .any(|p| a.starts_with(p)) =>
        {
            limit(100.0, 20.0)
        }
        // Mutating actions: everything else hawser calls
        // (CreateSecurityGroup, DeleteSecurityGroup,
        // AuthorizeSecurityGroupEgress, ...).
        _ => limit(50.0, 5.0),
    }
}

/// Whether an EC2 Query request (its form parameters' names) carries a
/// filter or pagination.
pub fn is_filtered<'a>(mut names: impl Iterator<Item = &'a str>) -> bool {
    names.any(|n| n.starts_with("Filter.") || n == "MaxResults" || n == "NextToken")
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    limit: Limit,
    tokens: f64,
    at: Instant,
    /// Requests it let through.
    passed: u64,
}

/// Every action's bucket, and what each let through and refused.
#[derive(Debug, Default)]
pub struct Buckets {
    buckets: BTreeMap<String, Bucket>,
    /// Action -> requests let through.
    pub passed: BTreeMap<String, u64>,
    /// Action -> requests refused.
    pub throttled: BTreeMap<String, u64>,
}

impl Buckets {
    /// Takes a token from the bucket of `action` with `limit` (made full
    /// on its first request; an action whose limit depends on the request,
    /// as DescribeSecurityGroups with and without a filter, has one bucket
    /// per limit) at `now`: `true` lets the request through.
    pub fn take(&mut self, action: &str, limit: Limit, now: Instant) -> bool {
        let key = format!("{action}/{}/{}", limit.capacity, limit.refill);
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            limit,
            tokens: limit.capacity,
            at: now,
            passed: 0,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * bucket.limit.refill).min(bucket.limit.capacity);
        bucket.at = now;
        let pass = bucket.tokens >= 1.0;
        if pass {
            bucket.tokens -= 1.0;
            bucket.passed += 1;
        }
        let counts = match pass {
            true => &mut self.passed,
            false => &mut self.throttled,
        };
        *counts.entry(action.to_owned()).or_default() += 1;
        pass
    }

    /// The least time in which the requests let through could have been,
    /// with every bucket full at the start: for each bucket, the requests
    /// beyond its capacity at its refill rate; the slowest decides.
    pub fn minimum(&self) -> Duration {
        self.buckets
            .values()
            .map(|b| (b.passed as f64 - b.limit.capacity).max(0.0) / b.limit.refill)
            .fold(Duration::ZERO, |most, secs| {
                most.max(Duration::from_secs_f64(secs))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_figures() {
        assert_eq!(limit_of("CreateVpcEndpoint", false), limit(4.0, 0.3));
        assert_eq!(limit_of("DeleteVpcEndpoints", false), limit(4.0, 0.3));
        assert_eq!(limit_of("CreateSecurityGroup", false), limit(50.0, 5.0));
        assert_eq!(
            limit_of("AuthorizeSecurityGroupIngress", false),
            limit(50.0, 5.0)
        );
        assert_eq!(limit_of("CreateTags", false), limit(100.0, 10.0));
        assert_eq!(limit_of("DescribeVpcEndpoints", false), limit(100.0, 20.0));
        assert_eq!(limit_of("DescribeSecurityGroups", true), limit(100.0, 20.0));
        assert_eq!(limit_of("DescribeSecurityGroups", false), limit(50.0, 10.0));
    }

    #[test]
    fn filters_and_pages_count_as_filtered() {
        assert!(is_filtered(["Action", "Filter.1.Name"].into_iter()));
        assert!(is_filtered(["MaxResults"].into_iter()));
        assert!(!is_filtered(["Action", "Version", "GroupId.1"].into_iter()));
    }

    #[test]
    fn a_bucket_empties_then_refills_at_its_rate() {
        let mut b = Buckets::default();
        let t0 = Instant::now();
        let l = limit(4.0, 0.5);
        for _ in 0..4 {
            assert!(b.take("CreateVpcEndpoint", l, t0));
        }
        assert!(!b.take("CreateVpcEndpoint", l, t0), "empty");
        assert!(!b.take("CreateVpcEndpoint", l, t0 + Duration::from_millis(1900)));
        assert!(b.take("CreateVpcEndpoint", l, t0 + Duration::from_secs(2)));
        // Never above capacity, however long it rests.
        let later = t0 + Duration::from_secs(1000);
        for _ in 0..4 {
            assert!(b.take("CreateVpcEndpoint", l, later));
        }
        assert!(!b.take("CreateVpcEndpoint", l, later));
        assert!(
            b.take("DeleteVpcEndpoints", l, later),
            "a bucket per action"
        );
        assert!(
            b.take("CreateVpcEndpoint", limit(50.0, 10.0), later),
            "and per limit"
        );
        assert_eq!(b.passed["CreateVpcEndpoint"], 10);
        assert_eq!(b.throttled["CreateVpcEndpoint"], 3);
    }

    #[test]
    fn the_minimum_is_the_slowest_actions_backlog() {
        let mut b = Buckets::default();
        let t0 = Instant::now();
        for _ in 0..10 {
            b.take("CreateVpcEndpoint", limit(4.0, 0.3), t0);
            b.take("DescribeVpcEndpoints", limit(100.0, 20.0), t0);
        }
        // Only 4 passed at t0: the minimum counts what was let through.
        assert_eq!(b.minimum(), Duration::ZERO);
        let later = t0 + Duration::from_secs(10_000);
        for i in 1..=200 {
            let at = later + Duration::from_secs_f64(f64::from(i) / 0.3);
            assert!(b.take("CreateVpcEndpoint", limit(4.0, 0.3), at));
        }
        let min = b.minimum().as_secs_f64();
        assert!((min - 200.0 / 0.3).abs() < 1e-6, "{min}");
    }
}
