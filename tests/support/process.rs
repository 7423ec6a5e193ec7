//! A child process of a test: its stderr in a log file, killed on drop.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

/// A child process writing its stderr to a log file; killed on drop, its
/// log printed if the test fails while it is alive.
pub struct Process {
    child: Child,
    log: PathBuf,
    /// Its own process group, killed whole on drop.
    group: bool,
}

impl Process {
    /// Spawns `cmd` with stdout discarded and stderr into `log`.
    pub fn spawn(cmd: Command, log: PathBuf) -> Self {
        Self::start(cmd, log, false)
    }

    /// Like [`Process::spawn`], in a process group of its own, killed
    /// whole on drop: for a launcher whose child does the work, such as
    /// `buildah run`.
    pub fn spawn_group(mut cmd: Command, log: PathBuf) -> Self {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        Self::start(cmd, log, true)
    }

    fn start(mut cmd: Command, log: PathBuf, group: bool) -> Self {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn hawser");
        Self { child, log, group }
    }

    /// Polls `url` until it answers 2xx; panics, with the log, if the
    /// process exits first or `timeout` passes.
    pub async fn wait_for(&mut self, url: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "hawser exited ({status}) before {url} answered:\n{}",
                    self.log()
                );
            }
            if reqwest::get(url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{url} not answering after {timeout:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The exit status once the process has exited, else `None`.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("wait for a child process")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.group {
            let group = format!("-{}", self.child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- hawser log ----\n{}", self.log());
        }
    }
}
