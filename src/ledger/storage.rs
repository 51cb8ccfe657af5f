//! The file operations under the billing log that durability rests on,
//! behind one seam so that faults can be injected.
//!
//! [`Disk`] is the real thing (`fdatasync`). [`SimulatedDisk`] remembers how
//! much of each file has been synced, can hold syncs back or make them
//! fail, and on [`SimulatedDisk::power_loss`] cuts every file back to what
//! was synced — what a machine losing power would keep of an append-only
//! file. A `kill -9` alone cannot test that (the page cache survives a
//! process), so the durability tests run on it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

/// Makes written bytes durable.
pub trait Storage: Send + Sync + 'static {
    /// A ledger file at `path` was opened; it is `len` bytes long.
    fn opened(&self, path: &Path, len: u64);
    /// Makes the first `len` bytes of `file` (at `path`) durable.
    fn sync(&self, path: &Path, file: &File, len: u64) -> io::Result<()>;
    /// Makes a directory's entries (a newly created file) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real disk: `fdatasync` and a directory `fsync`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Disk;

impl Storage for Disk {
    fn opened(&self, _path: &Path, _len: u64) {}

    fn sync(&self, _path: &Path, file: &File, _len: u64) -> io::Result<()> {
        file.sync_data()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// A disk for tests: syncs can be held back or made to fail, and a power
/// loss keeps only what was synced.
#[derive(Debug, Default)]
pub struct SimulatedDisk {
    state: Mutex<Simulated>,
    released: Condvar,
}

#[derive(Debug, Default)]
struct Simulated {
    /// File → bytes known durable.
    synced: HashMap<PathBuf, u64>,
    /// Syncs wait while this is set.
    holding: bool,
    /// Syncs waiting to be released.
    waiting: usize,
    /// How many of the next syncs fail.
    failing: u32,
}

impl SimulatedDisk {
    fn state(&self) -> std::sync::MutexGuard<'_, Simulated> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Syncs from now on wait until [`SimulatedDisk::release`].
    pub fn hold(&self) {
        self.state().holding = true;
    }

    /// Lets held and later syncs go on.
    pub fn release(&self) {
        self.state().holding = false;
        self.released.notify_all();
    }

    /// How many syncs are waiting for a release.
    pub fn waiting(&self) -> usize {
        self.state().waiting
    }

    /// The next `n` syncs fail with an I/O error (and make nothing durable).
    pub fn fail_next_syncs(&self, n: u32) {
        self.state().failing = n;
    }

    /// Cuts every file back to its synced length, as a power loss would.
    pub fn power_loss(&self) -> io::Result<()> {
        let state = self.state();
        for (path, len) in &state.synced {
            OpenOptions::new().write(true).open(path)?.set_len(*len)?;
        }
        Ok(())
    }
}

impl Storage for SimulatedDisk {
    fn opened(&self, path: &Path, len: u64) {
        self.state().synced.entry(path.to_path_buf()).or_insert(len);
    }

    fn sync(&self, path: &Path, _file: &File, len: u64) -> io::Result<()> {
        let mut state = self.state();
        state.waiting += 1;
        while state.holding {
            state = self
                .released
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.waiting -= 1;
        if state.failing > 0 {
            state.failing -= 1;
            return Err(io::Error::other("simulated fsync failure"));
        }
        state.synced.insert(path.to_path_buf(), len);
        Ok(())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
}
