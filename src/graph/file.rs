//! Reading graph files, and writing them atomically.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

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

    /// Parses `text` in this format.
    ///
    /// # Errors
    ///
    /// The parse error, with line and column.
    pub fn parse(self, text: &str) -> Result<Graph, Error> {
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

/// Reads a graph file, in the format its name implies ([`Format::from_path`]).
///
/// # Errors
///
/// [`Error::Io`] if the file cannot be read, [`Error::File`] wrapping the parse error otherwise.
pub fn load(path: &Path) -> Result<Graph, Error> {
    load_as(path, Format::from_path(path))
}

/// Reads a graph file in the given format, whatever its name.
///
/// # Errors
///
/// As [`load`].
pub fn load_as(path: &Path, format: Format) -> Result<Graph, Error> {
    let text = fs::read_to_string(path).map_err(|cause| Error::Io {
        path: path.to_path_buf(),
        cause,
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

fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".tmp{}", std::process::id()));
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
