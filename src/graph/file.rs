//! Reading graph files, and writing them atomically.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::Error;
use super::model::Graph;

/// The formats a graph file can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// FBP JSON.
    Json,
    /// The `.fbp` text language.
    Fbp,
}

impl Format {
    /// The format a file name implies: `.fbp` is the text language, anything else JSON.
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("fbp") => Format::Fbp,
            _ => Format::Json,
        }
    }

    /// Parses `text` in this format. A UTF-8 byte-order mark at the start, as some editors
    /// write, is skipped.
    ///
    /// # Errors
    ///
    /// The parse error, with line and column.
    pub fn parse(self, text: &str) -> Result<Graph, Error> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        match self {
            Format::Json => Graph::from_json(text),
            Format::Fbp => Graph::from_fbp(text),
        }
    }

    /// Writes `graph` in this format.
    pub fn render(self, graph: &Graph) -> String {
        match self {
            Format::Json => graph.to_json_string(),
            Format::Fbp => graph.to_fbp(),
        }
    }
}

/// The largest graph file read by default, in bytes (64 MiB): far beyond any graph drawn or
/// written by hand, small enough that a wrong path (a log, a device) fails fast.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Reads a graph file, in the format its name implies ([`Format::from_path`]), of at most
/// [`DEFAULT_MAX_FILE_BYTES`].
///
/// # Errors
///
/// [`Error::Io`] if the file cannot be read, [`Error::TooLarge`], [`Error::File`] wrapping the
/// parse error otherwise.
pub fn load(path: &Path) -> Result<Graph, Error> {
    load_limited(path, Format::from_path(path), DEFAULT_MAX_FILE_BYTES)
}

/// Reads a graph file in the given format, whatever its name.
///
/// # Errors
///
/// As [`load`].
pub fn load_as(path: &Path, format: Format) -> Result<Graph, Error> {
    load_limited(path, format, DEFAULT_MAX_FILE_BYTES)
}

/// Reads a graph file in the given format, refusing one of more than `max_bytes` before
/// reading it all (a regular file by its size, anything else as it is read).
///
/// # Errors
///
/// As [`load`].
pub fn load_limited(path: &Path, format: Format, max_bytes: u64) -> Result<Graph, Error> {
    let io_error = |cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    };
    let too_large = || Error::TooLarge {
        path: path.to_path_buf(),
        limit: max_bytes,
    };
    let file = fs::File::open(path).map_err(io_error)?;
    let size = file.metadata().map_err(io_error)?.len();
    if size > max_bytes {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        io_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        ))
    })?;
    format.parse(&text).map_err(|cause| Error::File {
        path: path.to_path_buf(),
        cause: Box::new(cause),
    })
}

/// Writes a graph file atomically, in the format its name implies.
///
/// The text goes to a temporary file in the same directory, which is flushed to disk and then
/// renamed over `path`; the previous file, if any, is kept as `path.bak` first. A crash at any
/// point leaves either the old or the new graph readable, never a torn one.
///
/// # Errors
///
/// [`Error::Io`] naming the file that could not be written.
pub fn save(graph: &Graph, path: &Path) -> Result<(), Error> {
    let text = Format::from_path(path).render(graph);
    write_atomically(path, text.as_bytes()).map_err(|cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    })
}

/// The prefix of the temporary files [`save`] writes for `path`: `.NAME.tmp`, followed by the
/// id of the writing process.
fn temp_prefix(path: &Path) -> std::io::Result<(PathBuf, std::ffi::OsString)> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"))?;
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(file_name);
    prefix.push(".tmp");
    Ok((dir, prefix))
}

/// How old a temporary file of a save must be to count as abandoned where it cannot be told
/// whether its writer still runs (no `/proc`).
const ABANDONED_AFTER: Duration = Duration::from_secs(600);

/// Removes the temporary files that saves of `path` left behind when their process was
/// killed mid-write; returns how many. A temporary file of a process that still runs is kept.
///
/// # Errors
///
/// The error of listing the directory; files that cannot be removed are skipped.
pub fn remove_stale_temp_files(path: &Path) -> std::io::Result<usize> {
    let (dir, prefix) = temp_prefix(path)?;
    let prefix = prefix.to_string_lossy().into_owned();
    let proc_fs = Path::new("/proc/self").exists();
    let mut removed = 0;
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix.as_str()))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let abandoned = if proc_fs {
            pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists()
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > ABANDONED_AFTER))
        };
        if abandoned && fs::remove_file(entry.path()).is_ok() {
            tracing::info!(
                "removed {}, left by an interrupted save",
                entry.path().display()
            );
            removed += 1;
        }
    }
    Ok(removed)
}

fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let (dir, mut temp_name) = temp_prefix(path)?;
    temp_name.push(std::process::id().to_string());
    let temp = dir.join(temp_name);
    let result = (|| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        if path.exists() {
            let mut backup = path.as_os_str().to_owned();
            backup.push(".bak");
            fs::copy(path, PathBuf::from(backup))?;
        }
        fs::rename(&temp, path)?;
        // The rename is durable once the directory entry is on disk.
        fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}
