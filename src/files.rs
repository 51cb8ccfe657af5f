//! Small files replaced whole: written to a temporary file, synced,
//! renamed over the old one, and the directory synced, so that a crash
//! leaves the old file or the new one, never a torn or empty one.

use std::io::Write;
use std::path::Path;

/// Replaces `path` with `bytes`, durably and atomically (`{path}.tmp`
/// first).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = Path::new(&temporary);
    let mut file = std::fs::File::create(temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(temporary, path)?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}
