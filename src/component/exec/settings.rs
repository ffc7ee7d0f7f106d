//! The settings of `core/Exec`, read from its configuration inports, and where its program is.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::child::Launch;
use super::framing::{Brackets, Framing, Wire};
use crate::component::AllowList;
use crate::engine::{ProcessContext, ProcessError};

/// Frames read back are at most this long unless `max_frame` says otherwise.
const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// The most `max_frame` may say: a frame is one IP, held in memory whole.
const MAX_MAX_FRAME: usize = 1024 * 1024 * 1024;

/// Consecutive failed runs restarted unless `max_restarts` says otherwise.
const DEFAULT_MAX_RESTARTS: u32 = 5;

/// When a child that ended is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Restart {
    /// Never: the process ends with the child.
    Never,
    /// When the child failed (a status other than 0, or a signal).
    OnFailure,
    /// Whenever the child ended while input was still coming.
    Always,
}

/// Everything `core/Exec` reads before it starts its program.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The program as given.
    pub(crate) program: String,
    /// Its arguments.
    pub(crate) args: Vec<String>,
    /// Variables set for the child, beyond `PATH`.
    pub(crate) env: Vec<(String, String)>,
    /// Its working directory.
    pub(crate) cwd: Option<PathBuf>,
    /// How IPs travel on its pipes.
    pub(crate) wire: Wire,
    /// When it is started again.
    pub(crate) restart: Restart,
    /// How many failed runs in a row are restarted.
    pub(crate) max_restarts: u32,
}

impl Settings {
    /// Reads every setting from its inport; an unusable value is an error naming the port.
    pub(crate) fn read(ctx: &mut ProcessContext) -> Result<Settings, ProcessError> {
        let program = text(ctx, "program")?.ok_or_else(|| {
            ProcessError::failed("inport 'program': no program given (send its name or path)")
        })?;
        if program.is_empty() {
            return Err(invalid("program", "", "the name or path of a program"));
        }
        let args = match json(ctx, "args")? {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("args", &Value::Array(items.clone()), ARGS))?,
            Some(other) => return Err(invalid("args", &other, ARGS)),
        };
        let env = match json(ctx, "env")? {
            None => Vec::new(),
            Some(Value::Object(vars)) => vars
                .iter()
                .map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect::<Option<Vec<_>>>()
                .filter(|vars| vars.iter().all(|(k, _)| !k.is_empty() && !k.contains('=')))
                .ok_or_else(|| invalid("env", &Value::Object(vars.clone()), ENV))?,
            Some(other) => return Err(invalid("env", &other, ENV)),
        };
        if let Some((name, _)) = env.iter().find(|(name, _)| is_loader_variable(name)) {
            return Err(ProcessError::failed(format!(
                "inport 'env': {name} is refused: the dynamic loader's variables would let a \
                 graph load any code into the program"
            )));
        }
        let cwd = text(ctx, "cwd")?.map(PathBuf::from);
        let framing = match text(ctx, "framing")? {
            None => Framing::Lines,
            Some(name) => Framing::named(&name)
                .ok_or_else(|| invalid("framing", &name, "lines, length or netstring"))?,
        };
        let brackets = brackets(ctx)?;
        let restart = match text(ctx, "restart")?.as_deref() {
            None | Some("never") => Restart::Never,
            Some("on-failure") => Restart::OnFailure,
            Some("always") => Restart::Always,
            Some(other) => return Err(invalid("restart", other, "never, on-failure or always")),
        };
        let max_restarts = number(ctx, "max_restarts", DEFAULT_MAX_RESTARTS as usize)?;
        let max_frame = number(ctx, "max_frame", DEFAULT_MAX_FRAME)?;
        if max_frame > MAX_MAX_FRAME {
            return Err(invalid(
                "max_frame",
                &max_frame,
                "at most 1073741824 bytes (1 GiB)",
            ));
        }
        Ok(Settings {
            program,
            args,
            env,
            cwd,
            wire: Wire {
                framing,
                brackets,
                max_frame,
            },
            restart,
            max_restarts: u32::try_from(max_restarts).unwrap_or(u32::MAX),
        })
    }

    /// How to start the program: found, checked against `allowed`, with its environment.
    pub(crate) fn launch(&self, allowed: &AllowList) -> Result<Launch, ProcessError> {
        let path_var = std::env::var_os("PATH");
        let found = find_program(&self.program, self.cwd.as_deref(), path_var.as_deref())
            .ok_or_else(|| {
                ProcessError::failed(format!(
                    "program '{}' not found{}",
                    self.program,
                    if self.program.contains('/') {
                        ""
                    } else {
                        " in PATH"
                    }
                ))
            })?;
        let Some(program) = allowed.resolve(&found) else {
            let flag = format!("--allow-exec {}", found.display());
            return Err(ProcessError::failed(if allowed.is_enabled() {
                format!(
                    "program '{}' is not allowed: start flowd with {flag} to run it (it runs \
                     with flowd's rights)",
                    found.display()
                )
            } else {
                format!(
                    "external programs are off: start flowd with {flag} to run '{}' (it runs \
                     with flowd's rights)",
                    self.program
                )
            }));
        };
        let mut env: Vec<(OsString, OsString)> = Vec::new();
        if let Some(path) = path_var {
            env.push(("PATH".into(), path));
        }
        env.extend(self.env.iter().map(|(k, v)| (k.into(), v.into())));
        Ok(Launch {
            program,
            name: self.program.clone(),
            args: self.args.clone(),
            env,
            cwd: self.cwd.clone(),
        })
    }
}

const ARGS: &str = "a JSON array of strings";
const ENV: &str = "a JSON object of names to strings";

fn invalid(port: &str, value: &(impl std::fmt::Display + ?Sized), expected: &str) -> ProcessError {
    ProcessError::failed(format!(
        "inport '{port}': invalid value '{value}': expected {expected}"
    ))
}

/// Whether `name` steers the dynamic loader (`LD_PRELOAD`, `DYLD_INSERT_LIBRARIES`, ...).
fn is_loader_variable(name: &str) -> bool {
    name.starts_with("LD_") || name.starts_with("DYLD_")
}

/// A setting as text.
fn text(ctx: &mut ProcessContext, port: &str) -> Result<Option<String>, ProcessError> {
    Ok(ctx
        .read_config(port)?
        .map(|payload| payload.to_string_lossy().into_owned()))
}

/// A setting as JSON.
fn json(ctx: &mut ProcessContext, port: &str) -> Result<Option<Value>, ProcessError> {
    Ok(ctx.read_config(port)?.map(|payload| payload.to_json()))
}

/// A whole number setting (0 or more), or `default`.
fn number(ctx: &mut ProcessContext, port: &str, default: usize) -> Result<usize, ProcessError> {
    match text(ctx, port)? {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| invalid(port, &text, "a whole number (0 or more)")),
    }
}

/// The `brackets` setting: `drop`, or `{"open": MARKER, "close": MARKER}`.
fn brackets(ctx: &mut ProcessContext) -> Result<Brackets, ProcessError> {
    const EXPECTED: &str = "\"drop\" or {\"open\": \"<marker>\", \"close\": \"<marker>\"} with \
                            two different markers, neither starting the other";
    let value = match json(ctx, "brackets")? {
        None => return Ok(Brackets::Drop),
        Some(Value::String(mode)) if mode == "drop" => return Ok(Brackets::Drop),
        Some(value) => value,
    };
    let marker = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(|m| m.as_bytes().to_vec())
    };
    match (marker("open"), marker("close")) {
        (Some(open), Some(close)) if !open.starts_with(&close) && !close.starts_with(&open) => {
            Ok(Brackets::Markers { open, close })
        }
        _ => Err(invalid("brackets", &value, EXPECTED)),
    }
}

/// Where `program` is: a path (relative to `cwd` if given), or a name looked up in `path_var`.
fn find_program(program: &str, cwd: Option<&Path>, path_var: Option<&OsStr>) -> Option<PathBuf> {
    if program.contains('/') {
        let path = match cwd {
            Some(cwd) => cwd.join(program),
            None => PathBuf::from(program),
        };
        return is_executable(&path).then_some(path);
    }
    std::env::split_paths(path_var?)
        .map(|dir| dir.join(program))
        .find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_by_path_or_in_path() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let tool = dir.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").expect("written");
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").expect("written");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path_var = std::env::join_paths(["/nonexistent".as_ref(), dir.path()]).expect("joined");

        assert_eq!(
            find_program("tool", None, Some(&path_var)),
            Some(tool.clone())
        );
        assert_eq!(find_program("plain", None, Some(&path_var)), None);
        assert_eq!(find_program("tool", None, None), None);
        assert_eq!(
            find_program("./tool", Some(dir.path()), None),
            Some(dir.path().join("./tool"))
        );
        assert_eq!(
            find_program(tool.to_str().expect("UTF-8"), None, None),
            Some(tool)
        );
    }
}
