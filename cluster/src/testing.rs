//! Real servers for tests: a PostgreSQL cluster created with `initdb` in a temporary
//! directory and started with `pg_ctl` on a loopback port, and a `nats-server -js` with
//! its store in a temporary directory; each stopped by its PID when dropped. As root
//! PostgreSQL runs as the `postgres` user (initdb refuses root). Used by this crate's and
//! the engine's tests; nothing here runs in production.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The directory with `initdb`, `pg_ctl` and `postgres`: `$FROYO_PG_BIN`, else the
/// newest `/usr/lib/postgresql/*/bin` (Debian's layout).
pub fn pg_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("FROYO_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A running PostgreSQL server, stopped (by PID) and deleted on drop.
pub struct PgServer {
    dir: tempfile::TempDir,
    pub port: u16,
    pid: u32,
}

impl PgServer {
    /// `initdb` + `pg_ctl start` in a new temporary directory; superuser `froyo`, trust
    /// authentication on loopback only, durability off (tests only).
    pub fn start() -> Result<PgServer, String> {
        let bin = pg_bin().ok_or("PostgreSQL is not installed (apt-get install postgresql)")?;
        let dir = tempfile::Builder::new()
            .prefix("froyo-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        let root = is_root();
        if root {
            // The server's user must be able to reach and write the directory.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .map_err(|e| e.to_string())?;
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .map_err(|e| e.to_string())?
                .success();
            if !ok {
                return Err("cannot chown the server directory to `postgres`".into());
            }
        }
        let run = |tool: &str, args: &[&str]| -> Result<(), String> {
            let mut cmd = if root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
                c
            } else {
                Command::new(bin.join(tool))
            };
            let out = cmd
                .args(args)
                .current_dir(dir.path())
                .output()
                .map_err(|e| format!("{tool}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{tool} failed: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        };
        let data_s = data.to_str().ok_or("temporary path not UTF-8")?;
        run(
            "initdb",
            &[
                "-D",
                data_s,
                "-U",
                "froyo",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
        )?;
        let port = free_port();
        let log = dir.path().join("server.log");
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off",
            dir.path().display()
        );
        run(
            "pg_ctl",
            &[
                "-D",
                data_s,
                "-l",
                log.to_str().ok_or("temporary path not UTF-8")?,
                "-w",
                "-t",
                "30",
                "-o",
                &opts,
                "start",
            ],
        )?;
        let pid = std::fs::read_to_string(data.join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse().ok()))
            .ok_or("no postmaster.pid after pg_ctl start")?;
        Ok(PgServer { dir, port, pid })
    }

    /// The URL of database `postgres` as the superuser `froyo`.
    pub fn url(&self) -> String {
        format!("postgres://froyo@127.0.0.1:{}/postgres", self.port)
    }

    /// The same URL with a password written in (trust authentication ignores it): for
    /// tests that check a password never shows.
    pub fn url_with_password(&self, password: &str) -> String {
        format!(
            "postgres://froyo:{password}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        stop_pid(self.pid, "INT");
    }
}

/// A running `nats-server -js` on 127.0.0.1, stopped (by PID) on drop.
pub struct NatsServer {
    dir: tempfile::TempDir,
    child: std::process::Child,
    pub port: u16,
}

impl NatsServer {
    /// `nats-server -js -sd DIR -a 127.0.0.1 -p PORT`, ready when its port accepts.
    pub fn start() -> Result<NatsServer, String> {
        let bin = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .ok_or("nats-server is not installed (apt-get install nats-server)")?;
        let dir = tempfile::Builder::new()
            .prefix("froyo-nats-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let port = free_port();
        let log =
            std::fs::File::create(dir.path().join("server.log")).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .args(["-js", "-sd"])
            .arg(dir.path().join("store"))
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("nats-server: {e}"))?;
        let mut server = NatsServer { dir, child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || server.child.try_wait().ok().flatten().is_some() {
                let log = std::fs::read_to_string(server.dir.path().join("server.log"))
                    .unwrap_or_default();
                return Err(format!("nats-server did not start: {log}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        stop_pid(self.child.id(), "TERM");
        let _ = self.child.wait();
    }
}

/// Sends `signal` to `pid` (SIGINT is PostgreSQL's fast shutdown) and waits up to 20 s for
/// it to exit, then kills it.
pub fn stop_pid(pid: u32, signal: &str) {
    let alive = || Path::new(&format!("/proc/{pid}")).exists() && !zombie(pid);
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive() {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

/// Whether `pid` has exited and waits to be reaped (or is gone).
pub fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}
