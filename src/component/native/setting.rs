//! Settings of core components: read from an inport before anything else, and read again
//! whenever a new value arrives there while the network runs (an IIP added live, such as one
//! edited in noflo-ui), taking effect from the next packet.

use crate::engine::{InPort, ProcessContext, ProcessError};
use crate::ip::Payload;

/// Turns a setting's payload into its value; the error names the port and the value.
pub(crate) type Parse<T> = fn(&'static str, Payload) -> Result<T, ProcessError>;

/// One setting of a running component.
pub(crate) struct Setting<T> {
    name: &'static str,
    port: InPort,
    value: T,
    parse: Parse<T>,
}

impl<T> Setting<T> {
    /// Reads the setting on the inport `name`: its first data IP, parsed, or `default()` if
    /// the port gives none.
    ///
    /// # Errors
    ///
    /// What `parse` or `default` says, or [`ProcessError::Stopped`].
    pub(crate) fn read(
        ctx: &mut ProcessContext,
        name: &'static str,
        parse: Parse<T>,
        default: impl FnOnce() -> Result<T, ProcessError>,
    ) -> Result<Setting<T>, ProcessError> {
        let value = match ctx.read_config(name)? {
            Some(payload) => parse(name, payload)?,
            None => default()?,
        };
        let port = ctx.inport(name)?;
        Ok(Setting {
            name,
            port,
            value,
            parse,
        })
    }

    /// The setting now: the newest value that arrived since it was last read, if any.
    ///
    /// # Errors
    ///
    /// A new value that does not parse (the process ends, as with a bad value at start).
    pub(crate) fn get(&mut self, ctx: &mut ProcessContext) -> Result<&T, ProcessError> {
        if let Some(payload) = ctx.newest_data(self.port)? {
            self.value = (self.parse)(self.name, payload)?;
        }
        Ok(&self.value)
    }

    /// The setting as read at start, for a component that keeps it for its whole run.
    pub(crate) fn into_value(self) -> T {
        self.value
    }
}

/// A setting's text, as is.
pub(crate) fn text(_: &'static str, payload: Payload) -> Result<String, ProcessError> {
    Ok(payload.to_string_lossy().into_owned())
}

/// A setting's payload, as is.
pub(crate) fn payload(_: &'static str, payload: Payload) -> Result<Payload, ProcessError> {
    Ok(payload)
}
