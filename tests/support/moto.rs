//! The test bed's moto_server, through the real AWS SDK: networks for
//! tests to use, and what hawser made, read back independently of hawser.

use aws_sdk_ec2::{
    config::{BehaviorVersion, Credentials, Region},
    types::{Filter, VpcEndpoint},
    Client,
};

pub const REGION: &str = "us-west-2";

/// A second account, for roles that hawser assumes (moto keeps accounts apart).
pub const TENANT_ACCOUNT: &str = "222222222222";

/// moto's URL, from the test bed's env file.
pub fn endpoint_url() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (moto) from the test bed's env file")
}

/// moto's endpoint, region and test credentials, for a client of any
/// AWS service (`aws_sdk_sqs::Client::new(&moto::config())`).
pub fn config() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "test",
            )),
        )
        .endpoint_url(endpoint_url())
        .build()
}

pub fn ec2() -> Client {
    Client::new(&config())
}

/// Seeds moto's random generator, which makes its resource ids.
async fn seed_moto(seed: u32) {
    let url = format!("{}/moto-api/seed?a={seed}", endpoint_url());
    let r = reqwest::Client::new().post(&url).send().await.unwrap();
    assert!(r.status().is_success(), "seeding moto: {}", r.status());
}

/// A VPC with two subnets, made for one test.
#[derive(Clone)]
pub struct Network {
    pub vpc_id: String,
    pub subnets: Vec<String>,
}

impl Network {
    pub async fn create(ec2: &Client) -> Self {
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.42.0.0/16")
            .send()
            .await
            .expect("CreateVpc");
        let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_owned();
        let mut subnets = Vec::new();
        for i in 1..=2 {
            let s = ec2
                .create_subnet()
                .vpc_id(&vpc_id)
                .cidr_block(format!("10.42.{i}.0/24"))
                .send()
                .await
                .expect("CreateSubnet");
            subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_owned());
        }
        Self { vpc_id, subnets }
    }

    /// Like [`create`](Self::create), with moto's random generator seeded
    /// first: the same `seed` gives the same VPC and subnet ids, in this
    /// moto or in one restarted empty. (The region's default VPC, made on
    /// moto's first EC2 call, is made before the seed.) Then moto is
    /// seeded at random, so the ids made afterwards do not repeat those
    /// made after the same seed before.
    pub async fn create_seeded(ec2: &Client, seed: u32) -> Self {
        ec2.describe_vpcs().send().await.expect("DescribeVpcs");
        seed_moto(seed).await;
        let net = Self::create(ec2).await;
        seed_moto(fastrand::u32(..)).await;
        net
    }

    /// A security group that is not hawser's (provided mode).
    pub async fn foreign_group(&self, ec2: &Client, name: &str) -> String {
        ec2.create_security_group()
            .vpc_id(&self.vpc_id)
            .group_name(name)
            .description("provided by the test")
            .send()
            .await
            .expect("CreateSecurityGroup")
            .group_id()
            .unwrap()
            .to_owned()
    }

    fn in_vpc(&self) -> Filter {
        Filter::builder()
            .name("vpc-id")
            .values(&self.vpc_id)
            .build()
    }

    /// Every endpoint in this VPC, deleted ones included.
    pub async fn endpoints(&self, ec2: &Client) -> Vec<VpcEndpoint> {
        ec2.describe_vpc_endpoints()
            .filters(
                Filter::builder()
                    .name("vpc-id")
                    .values(&self.vpc_id)
                    .build(),
            )
            .send()
            .await
            .expect("DescribeVpcEndpoints")
            .vpc_endpoints()
            .to_vec()
    }

    /// Endpoints not deleted (moto keeps deleted ones listed).
    pub async fn live_endpoints(&self, ec2: &Client) -> Vec<VpcEndpoint> {
        self.endpoints(ec2)
            .await
            .into_iter()
            .filter(|e| !state(e).eq_ignore_ascii_case("deleted"))
            .collect()
    }

    /// Group ids in this VPC, by name.
    pub async fn groups(&self, ec2: &Client) -> Vec<(String, String)> {
        ec2.describe_security_groups()
            .filters(
                Filter::builder()
                    .name("vpc-id")
                    .values(&self.vpc_id)
                    .build(),
            )
            .send()
            .await
            .expect("DescribeSecurityGroups")
            .security_groups()
            .iter()
            .map(|g| {
                (
                    g.group_name().unwrap_or_default().to_owned(),
                    g.group_id().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

/// The endpoint's state as moto spells it (lower case).
pub fn state(e: &VpcEndpoint) -> String {
    e.state().map(|s| s.as_str().to_owned()).unwrap_or_default()
}

pub fn tag<'a>(e: &'a VpcEndpoint, key: &str) -> Option<&'a str> {
    e.tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

pub fn group_ids(e: &VpcEndpoint) -> Vec<String> {
    let mut ids: Vec<String> = e
        .groups()
        .iter()
        .filter_map(|g| g.group_id().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

pub fn subnet_ids(e: &VpcEndpoint) -> Vec<String> {
    let mut ids = e.subnet_ids().to_vec();
    ids.sort();
    ids
}

/// Creates the role in moto's IAM in the tenant account (moto does not
/// require it, a real account does), with a trust policy naming hawser's
/// account. IAM's query API, sent like the SDK would; moto does not check
/// signatures, and routes by the credential scope's service.
pub async fn create_role(name: &str) -> String {
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}],
    });
    let body = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument={}",
        urlencode(&policy.to_string())
    );
    let resp = reqwest::Client::new()
        .post(endpoint_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-moto-account-id", TENANT_ACCOUNT)
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    let arn = format!("arn:aws:iam::{TENANT_ACCOUNT}:role/{name}");
    assert!(text.contains(&arn), "CreateRole: {text}");
    arn
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A moto_server of its own serving HTTPS, with a certificate from
/// `hawser certs` whose CA is `ca`: for a client whose TLS is what the
/// test is about. Killed on drop.
pub struct TlsMoto {
    pub url: String,
    pub ca: std::path::PathBuf,
    _process: super::Process,
    _dir: tempfile::TempDir,
}

impl TlsMoto {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        super::write_certs(dir.path());
        let port = super::free_port();
        let server = std::env::var("HAWSER_TESTENV_MOTO_SERVER")
            .expect("HAWSER_TESTENV_MOTO_SERVER from the test bed's env file");
        let mut cmd = std::process::Command::new(server);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .arg("--ssl-cert")
            .arg(dir.path().join("tls.crt"))
            .arg("--ssl-key")
            .arg(dir.path().join("tls.key"));
        let process = super::Process::spawn(cmd, dir.path().join("moto.log"));
        let ca = dir.path().join("ca.crt");
        let trusted = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
        let client = reqwest::Client::builder()
            .add_root_certificate(trusted)
            .build()
            .unwrap();
        let url = format!("https://127.0.0.1:{port}");
        let api = format!("{url}/moto-api/");
        super::eventually(
            "moto to serve HTTPS",
            std::time::Duration::from_secs(60),
            || async {
                let r = client.get(&api).send().await.ok()?;
                r.status().is_success().then_some(())
            },
        )
        .await;
        Self {
            url,
            ca,
            _process: process,
            _dir: dir,
        }
    }
}
