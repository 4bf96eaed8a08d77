//! `froyo init [--solo]`: a project's `froyo.toml` and its private `.froyo/` (state
//! database, the SSH key targets will trust, the age identity for secrets).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::error::Error;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The project directory (default: the current one).
    dir: Option<PathBuf>,
    /// The solo profile: one controller, state in a local SQLite file. It is the only
    /// profile so far, so this is also the default.
    #[arg(long)]
    solo: bool,
}

pub fn run(args: &InitArgs) -> Result<ExitCode, Error> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::current_dir().map_err(|e| io(Path::new("."), e))?,
    };
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let mut made = Vec::new();
    let toml = dir.join("froyo.toml");
    if !toml.exists() {
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "project".into());
        let text = format!(
            "# OpenFroyo project (profile: solo — one controller, state in .froyo/state.db).\n[project]\nname = {name:?}\nstdlib = \"1\"\n\n[defaults]\nparallelism = 10\n"
        );
        write_new(&toml, text.as_bytes(), 0o644)?;
        made.push("froyo.toml");
    }
    let root = dir.canonicalize().map_err(|e| io(&dir, e))?;
    let store = crate::state::SqliteStore::open_project(&root)?;
    drop(store);
    made.push(".froyo/state.db");
    let keys = root.join(".froyo/keys");
    if !keys.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&keys)
            .map_err(|e| io(&keys, e))?;
    }
    let ssh = keys.join("id_ed25519");
    if !ssh.exists() {
        let (private, public) = ssh_keypair(&format!("froyo@{}", crate::state::hostname()))?;
        write_new(&ssh, private.as_bytes(), 0o600)?;
        write_new(&keys.join("id_ed25519.pub"), public.as_bytes(), 0o644)?;
        made.push(".froyo/keys/id_ed25519");
    }
    let age_key = keys.join("age.key");
    if !age_key.exists() {
        use age::secrecy::ExposeSecret;
        let id = age::x25519::Identity::generate();
        let text = format!(
            "# public key: {}\n{}\n",
            id.to_public(),
            id.to_string().expose_secret()
        );
        write_new(&age_key, text.as_bytes(), 0o600)?;
        made.push(".froyo/keys/age.key");
    }
    super::write_stdout(&format!(
        "Initialized {} ({}).\nTargets trust the key in .froyo/keys/id_ed25519.pub.\n",
        root.display(),
        made.join(", ")
    ));
    Ok(ExitCode::SUCCESS)
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.to_owned(),
        source: e,
    }
}

/// Creates `path` (which must not exist) with `mode`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| io(path, e))
}

/// A new ed25519 key pair in OpenSSH format: (private, public line).
fn ssh_keypair(comment: &str) -> Result<(String, String), Error> {
    use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
    use russh::keys::ssh_key::{LineEnding, PrivateKey};
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed))
        .map_err(|e| io(Path::new("/dev/urandom"), e))?;
    let key = PrivateKey::new(KeypairData::from(Ed25519Keypair::from_seed(&seed)), comment)
        .map_err(|e| Error::Usage(format!("cannot build the SSH key: {e}")))?;
    let private = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| Error::Usage(format!("cannot encode the SSH key: {e}")))?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| Error::Usage(format!("cannot encode the SSH key: {e}")))?;
    Ok((private.to_string(), format!("{public}\n")))
}
