//! hawser's container image, as `hack/image.sh` builds it (an OCI
//! archive), opened and run with buildah the way a container runtime
//! would: the image's own filesystem, user and configuration, chroot
//! isolation, the host's network (the test bed is on loopback).

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;

/// The archive `hack/test.sh` built before the tests (`hack/image.sh`).
pub fn archive() -> PathBuf {
    std::env::var_os("HAWSER_IMAGE_ARCHIVE")
        .map(PathBuf::from)
        .expect(
            "HAWSER_IMAGE_ARCHIVE: the image archive; run the tests with `bash hack/test.sh`, \
             which builds it with hack/image.sh",
        )
}

/// `buildah ARGS`, with the storage and isolation hack/image.sh uses.
pub fn buildah(args: &[&str]) -> Command {
    let mut cmd = Command::new("buildah");
    cmd.args(args)
        .env("STORAGE_DRIVER", "vfs")
        .env("BUILDAH_ISOLATION", "chroot");
    cmd
}

fn stdout(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The manifest digest an OCI archive holds (its index.json's one entry):
/// what a registry reports after `skopeo copy`, and what the chart's
/// `image.digest` pins.
pub fn digest(archive: &Path) -> String {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(archive)
        .arg("index.json")
        .output()
        .unwrap();
    let index: Value = serde_json::from_str(&stdout("tar index.json", out)).unwrap();
    let manifests = index["manifests"].as_array().expect("index.json manifests");
    assert_eq!(manifests.len(), 1, "one image in the archive: {index}");
    manifests[0]["digest"].as_str().unwrap().to_owned()
}

/// A working container made from the archive, named `hawser-e2e-…`;
/// removed on drop. The image it pulled into buildah's storage stays for
/// the other tests: hack/test.sh removes it (and any container a killed
/// test left) when the run ends.
pub struct Container {
    pub name: String,
    mounted: Option<PathBuf>,
}

impl Container {
    pub fn from_archive(archive: &Path) -> Self {
        let from = format!("oci-archive:{}", archive.display());
        let name = super::unique("hawser-e2e");
        let out = buildah(&["from", "--quiet", "--name", &name, &from])
            .output()
            .unwrap();
        assert_eq!(stdout("buildah from", out), name);
        Self {
            name,
            mounted: None,
        }
    }

    fn inspect_of(name: &str) -> Value {
        let out = buildah(&["inspect", "--type", "container", name])
            .output()
            .unwrap();
        serde_json::from_str(&stdout("buildah inspect", out)).unwrap()
    }

    /// The image's OCI configuration (`config` of the image config:
    /// User, Entrypoint, Cmd, ExposedPorts, Labels, ...).
    pub fn config(&self) -> Value {
        Self::inspect_of(&self.name)["OCIv1"]["config"].clone()
    }

    /// The container's root filesystem, mounted on the host.
    pub fn rootfs(&mut self) -> PathBuf {
        if self.mounted.is_none() {
            let path = stdout(
                "buildah mount",
                buildah(&["mount", &self.name]).output().unwrap(),
            );
            self.mounted = Some(PathBuf::from(path));
        }
        self.mounted.clone().unwrap()
    }

    /// `buildah run` of `argv` in the container, as the image's user, on
    /// the host network, with `mounts` (host path, container path; read
    /// only) and `env`: nothing of the caller's environment goes in.
    pub fn run(
        &self,
        mounts: &[(&Path, &str)],
        env: &[(String, String)],
        argv: &[&str],
    ) -> Command {
        let mut cmd = buildah(&["run", "--isolation", "chroot", "--network", "host"]);
        for (host, inside) in mounts {
            cmd.arg("--volume")
                .arg(format!("{}:{inside}:ro", host.display()));
        }
        for (k, v) in env {
            cmd.arg("--env").arg(format!("{k}={v}"));
        }
        cmd.arg(&self.name).arg("--").args(argv);
        cmd
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.mounted.is_some() {
            let _ = buildah(&["umount", &self.name]).output();
        }
        let _ = buildah(&["rm", &self.name]).output();
    }
}

/// The user id a process runs as (`Uid:` of /proc/PID/status, real).
pub fn uid_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap()
}

/// The pid of the process listening on TCP `port` on this host (`ss`).
pub fn listener_pid(port: u16) -> Option<u32> {
    let out = Command::new("ss")
        .args(["-H", "-ltnp", &format!("sport = :{port}")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text.find("pid=")? + 4;
    text[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}
