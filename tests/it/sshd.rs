//! A real OpenSSH server (`/usr/sbin/sshd`, Debian's `openssh-server`) on a loopback port,
//! with its own host key, authorized keys and `TMPDIR`, stopped by PID when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sshd {
    pub port: u16,
    /// Every port it listens on (`port` first); one unless [`Sshd::start_ports`].
    pub ports: Vec<u16>,
    pub dir: PathBuf,
    /// The `TMPDIR` of every session on this server: where the runner is uploaded.
    pub tmp: PathBuf,
    pub host_key_pub: String,
    config: PathBuf,
    /// The network namespace it runs in, if not the test's own.
    netns: Option<String>,
    child: Child,
}

/// What [`Sshd::start_opts`] changes in the test server.
#[derive(Default)]
pub struct Options<'a> {
    /// Lines added to `sshd_config` (such as a `ForceCommand`).
    pub extra_config: &'a str,
    /// Runs the server inside this namespace (its loopback, not the test's).
    pub netns: Option<&'a crate::netns::Netns>,
}

/// The user the tests run as (the login user of the loopback targets).
pub fn whoami() -> String {
    String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned()
}

pub fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "froyo-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client) is installed");
    assert!(status.success());
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    /// Starts sshd in `dir`, accepting the public key in `authorized_keys` for every user.
    pub fn start(dir: &Path, authorized_keys: &str) -> Sshd {
        Sshd::start_with(dir, authorized_keys, false, 1, &Options::default())
    }

    /// [`Sshd::start`] with extra configuration or in a network namespace.
    #[allow(dead_code)] // used by faults.rs only
    pub fn start_opts(dir: &Path, authorized_keys: &str, opts: &Options) -> Sshd {
        Sshd::start_with(dir, authorized_keys, false, 1, opts)
    }

    /// One server listening on `n` loopback ports (at most 16: sshd's MAX_LISTEN_SOCKS),
    /// so a test can have many targets for few processes.
    #[allow(dead_code)] // used by queue.rs only
    pub fn start_ports(dir: &Path, authorized_keys: &str, n: usize) -> Sshd {
        Sshd::start_with(
            dir,
            authorized_keys,
            false,
            n.clamp(1, 16),
            &Options::default(),
        )
    }

    /// Like a stock server, for onboarding: reads the system's drop-ins first
    /// (`Include /etc/ssh/sshd_config.d/*.conf`, where a lock-down goes), accepts
    /// passwords, and users' own `~/.ssh/authorized_keys`.
    pub fn start_stock(dir: &Path) -> Sshd {
        Sshd::start_with(dir, "", true, 1, &Options::default())
    }

    fn start_with(
        dir: &Path,
        authorized_keys: &str,
        stock: bool,
        n: usize,
        opts: &Options,
    ) -> Sshd {
        let netns = opts.netns.map(|ns| ns.name.clone());
        std::fs::create_dir_all(dir).unwrap();
        // sshd refuses to start without its privilege-separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let host_key = dir.join("host_ed25519");
        if !host_key.exists() {
            keygen(&host_key);
        }
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(dir.join("authorized_keys"), authorized_keys).unwrap();
        // A free port can be taken by a parallel test between our probe and sshd's bind;
        // then this sshd exits at once and we try another port.
        for _attempt in 0..10 {
            let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
            let port = ports[0];
            let mut listen: String = ports
                .iter()
                .map(|p| format!("ListenAddress 127.0.0.1:{p}\n"))
                .collect();
            if n > 1 {
                // Many targets behind one server log in at once: sshd's default
                // (`MaxStartups 10:30:100`) would reset some of them.
                listen.push_str("MaxStartups 100:30:200\n");
            }
            let config = dir.join("sshd_config");
            let auth = if stock {
                // sshd keeps the first value it reads: the drop-ins come first.
                "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n".to_owned()
            } else {
                format!(
                    "AuthorizedKeysFile {}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n",
                    dir.display()
                )
            };
            std::fs::write(
                &config,
                format!(
                    "{auth}{listen}HostKey {hk}\nPidFile {dir}/sshd.pid\n\
                     PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
                     UsePAM no\nStrictModes no\nLogLevel ERROR\n{setenv}{extra}",
                    extra = opts.extra_config,
                    hk = host_key.display(),
                    dir = dir.display(),
                    // Other users cannot enter the test's private temp dir: stock sessions
                    // use the system's /tmp.
                    setenv = if stock {
                        String::new()
                    } else {
                        format!("SetEnv TMPDIR={}\n", tmp.display())
                    },
                ),
            )
            .unwrap();
            let mut child = spawn_sshd(&config, dir, netns.as_deref());
            if !wait_listening(&mut child, &ports, dir, netns.as_deref()) {
                let _ = child.wait();
                continue;
            }
            let host_key_pub = std::fs::read_to_string(dir.join("host_ed25519.pub"))
                .unwrap()
                .trim()
                .to_owned();
            return Sshd {
                port,
                ports,
                dir: dir.to_owned(),
                tmp,
                host_key_pub,
                config,
                netns,
                child,
            };
        }
        panic!(
            "sshd did not start: {}",
            std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
        );
    }

    #[allow(dead_code)] // used by bench/transport.rs
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills this server as a crash or the OOM killer would: the listener and every
    /// per-connection sshd process under it (SIGKILL); what sessions ran (the runner)
    /// is left to notice its connection is gone.
    #[allow(dead_code)] // used by faults.rs only
    pub fn kill(&mut self) {
        let sshd = std::fs::read_link("/usr/sbin/sshd").unwrap_or("/usr/sbin/sshd".into());
        for pid in descendants(self.child.id()) {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            if exe == sshd {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again with the same configuration and ports.
    #[allow(dead_code)] // used by faults.rs only
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for _attempt in 0..50 {
            let mut child = spawn_sshd(&self.config, &self.dir, self.netns.as_deref());
            if wait_listening(&mut child, &self.ports, &self.dir, self.netns.as_deref()) {
                self.child = child;
                return;
            }
            // The old listening socket may linger a moment.
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "sshd did not restart: {}",
            std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
        );
    }

    /// The line `known_hosts` needs for this server.
    pub fn known_hosts_line(&self) -> String {
        let mut parts = self.host_key_pub.split_whitespace();
        format!(
            "[127.0.0.1]:{} {} {}\n",
            self.port,
            parts.next().unwrap(),
            parts.next().unwrap()
        )
    }

    /// Entries left in this server's `TMPDIR`.
    pub fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(&self.tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// Processes still running a runner uploaded to this server.
    pub fn runner_processes(&self) -> Vec<u32> {
        runner_processes_under(&self.tmp)
    }
}

fn spawn_sshd(config: &Path, dir: &Path, netns: Option<&str>) -> Child {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "/usr/sbin/sshd"]);
            c
        }
        None => Command::new("/usr/sbin/sshd"),
    };
    cmd.arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
        .spawn()
        .expect("start /usr/sbin/sshd (openssh-server is installed)")
}

/// Waits until `child` listens on every port (false: it exited first, such as when a
/// parallel test took a port).
fn wait_listening(child: &mut Child, ports: &[u16], dir: &Path, netns: Option<&str>) -> bool {
    let probe = |p: u16| match netns {
        Some(ns) => crate::netns::connect_in(ns, ([127, 0, 0, 1], p).into()).is_ok(),
        None => TcpStream::connect(("127.0.0.1", p)).is_ok(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if ports.iter().all(|p| probe(*p)) {
            std::thread::sleep(Duration::from_millis(50));
            return child.try_wait().unwrap().is_none();
        }
        assert!(
            Instant::now() < deadline,
            "sshd on {ports:?} did not start: {}",
            std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every process below `pid` (children, their children, …).
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: comm may hold spaces, so split after its `)`.
        if let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok())
        {
            parent_of.push((p, ppid));
        }
    }
    let mut out = vec![];
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for (child, _) in parent_of.iter().filter(|(_, pp)| *pp == p) {
            out.push(*child);
            frontier.push(*child);
        }
    }
    out
}

/// PIDs of processes whose executable path lies under `dir` (deleted files included).
pub fn runner_processes_under(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(exe) = std::fs::read_link(e.path().join("exe"))
            && exe.to_string_lossy().starts_with(&needle)
        {
            out.push(pid);
        }
    }
    out
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Stop by PID (the child is sshd itself thanks to -D).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A project directory with a client key, an inventory of `servers` (named `t1`, `t2`,
/// …, user `user`) and, when `trust` is set, their host keys in `.froyo/known_hosts`.
pub struct Project {
    pub root: PathBuf,
    pub key: PathBuf,
}

impl Project {
    pub fn new(root: &Path) -> Project {
        let keys = root.join(".froyo/keys");
        std::fs::create_dir_all(&keys).unwrap();
        let key = keys.join("id_ed25519");
        keygen(&key);
        std::fs::write(root.join("froyo.toml"), "[project]\nname = \"sshd-test\"\n").unwrap();
        Project {
            root: root.to_owned(),
            key,
        }
    }

    pub fn public_key(&self) -> String {
        std::fs::read_to_string(self.key.with_extension("pub")).unwrap()
    }

    pub fn inventory(&self, servers: &[(&str, &Sshd)], user: &str) {
        let mut inv = String::new();
        for (name, s) in servers {
            inv.push_str(&format!(
                "[[targets]]\nname = \"{name}\"\naddress = \"127.0.0.1:{}\"\nuser = \"{user}\"\nlabels = {{ role = \"test\" }}\n\n",
                s.port
            ));
        }
        std::fs::write(self.root.join("inventory.toml"), inv).unwrap();
    }

    pub fn trust(&self, servers: &[&Sshd]) {
        let lines: String = servers.iter().map(|s| s.known_hosts_line()).collect();
        std::fs::write(self.root.join(".froyo/known_hosts"), lines).unwrap();
    }
}
