//! Configuration shared by every subcommand: where data lives and the master key.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::Args;
use grantry_crypto::MasterKey;

#[derive(Args, Clone)]
pub struct StorageArgs {
    /// Folder of the SQLite database and the generated master key.
    #[arg(long, env = "GRANTRY_DATA_DIR", default_value = "./grantry-data")]
    pub data_dir: PathBuf,
}

pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: String,
}

impl Config {
    pub fn load(args: StorageArgs) -> anyhow::Result<Config> {
        let data_dir = args.data_dir;
        fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create the data folder {}", data_dir.display()))?;
        // The folder holds sealed secrets and, by default, the key that opens them.
        restrict(&data_dir, 0o700)?;
        let database_url = match std::env::var("GRANTRY_DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ => format!("sqlite://{}", data_dir.join("grantry.db").display()),
        };
        let Some(file) = grantry_store::database_file(&database_url) else {
            bail!("GRANTRY_DATABASE_URL must be a sqlite: URL; PostgreSQL support is not built yet");
        };
        if let Some(path) = file {
            private_file(Path::new(path))?;
        }
        Ok(Config { data_dir, database_url })
    }

    /// The database location without any password a URL might carry.
    pub fn database_url_for_humans(&self) -> String {
        match self.database_url.split_once('@') {
            Some((_, host)) => format!("…@{host}"),
            None => self.database_url.clone(),
        }
    }

    /// The master key from `GRANTRY_MASTER_KEY`, `GRANTRY_MASTER_KEY_FILE`, or
    /// `<data-dir>/master.key`, generating the last on first start.
    pub fn master_key(&self) -> anyhow::Result<MasterKey> {
        if let Ok(text) = std::env::var("GRANTRY_MASTER_KEY") {
            return MasterKey::from_base64(&text).context("GRANTRY_MASTER_KEY is not usable");
        }
        if let Ok(path) = std::env::var("GRANTRY_MASTER_KEY_FILE") {
            return read_key(Path::new(&path));
        }
        let path = self.data_dir.join("master.key");
        if path.exists() {
            return read_key(&path);
        }
        let key = MasterKey::generate();
        if !write_key(&path, &key)? {
            // Another process starting on the same folder made it first.
            return read_key(&path);
        }
        tracing::warn!(
            "generated a new master key in {} (id {}); back it up: without it the stored secrets cannot be opened",
            path.display(),
            key.id()
        );
        Ok(key)
    }
}

/// Sets the permission bits of an existing path (unix).
fn restrict(path: &Path, mode: u32) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot restrict the permissions of {}", path.display()))?;
    }
    let _ = (path, mode);
    Ok(())
}

/// Creates the database file readable by its owner only, before SQLite does:
/// SQLite gives its -wal and -shm files the mode of the database file.
fn private_file(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path).with_context(|| format!("cannot create the database file {}", path.display()))?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            restrict(&file, 0o600)?;
        }
    }
    Ok(())
}

fn read_key(path: &Path) -> anyhow::Result<MasterKey> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(path)
            .with_context(|| format!("cannot read the master key file {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "the master key file {} can be read by others (mode {:o}); make it private with `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            );
        }
    }
    let text = zeroize::Zeroizing::new(
        fs::read_to_string(path).with_context(|| format!("cannot read the master key file {}", path.display()))?,
    );
    MasterKey::from_base64(&text).with_context(|| format!("the master key file {} is not usable", path.display()))
}

/// Writes a new key to `path`, unless another process starting at the same
/// moment wrote one first: then that key is the one (`Ok(false)`). The key is
/// written whole to a private temporary file and then linked into place, which
/// fails when the name exists, so no process ever reads a partial key.
fn write_key(path: &Path, key: &MasterKey) -> anyhow::Result<bool> {
    let temporary = path.with_extension(format!("key.{}.tmp", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = (|| -> anyhow::Result<()> {
        let mut file = options
            .open(&temporary)
            .with_context(|| format!("cannot create the master key file {}", temporary.display()))?;
        file.write_all(key.to_base64().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        Ok(())
    })();
    let linked = written.and_then(|()| match fs::hard_link(&temporary, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot create the master key file {}", path.display())),
    });
    let _ = fs::remove_file(&temporary);
    linked
}
