//! `text/Transform`: applies a text transformation, chosen by a setting, to each data IP;
//! brackets pass through.
//!
//! * inport `mode` (string, setting, default `upper`): `upper`, `lower`, `trim` or `reverse`;
//! * inport `in` (string): text;
//! * outport `out` (string): the transformed text.
//!
//! `upper` and `lower` follow Unicode case mapping and `reverse` reverses characters, so data
//! IPs must be UTF-8 text; anything else ends the process with an error.

use std::str::FromStr;

use flowd_guest::{Component, Context, Port, Result, Spec};

/// The transformations `mode` can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Upper,
    Lower,
    Trim,
    Reverse,
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "upper" => Ok(Mode::Upper),
            "lower" => Ok(Mode::Lower),
            "trim" => Ok(Mode::Trim),
            "reverse" => Ok(Mode::Reverse),
            _ => Err("expected upper, lower, trim or reverse".into()),
        }
    }
}

impl Mode {
    fn apply(self, text: &str) -> String {
        match self {
            Mode::Upper => text.to_uppercase(),
            Mode::Lower => text.to_lowercase(),
            Mode::Trim => text.trim().to_owned(),
            Mode::Reverse => text.chars().rev().collect(),
        }
    }
}

struct Transform;

impl Component for Transform {
    fn describe() -> Spec {
        Spec::new(
            "text/Transform",
            "Upper-cases, lower-cases, trims or reverses text",
        )
        .icon("font")
        .inport(Port::new(
            "mode",
            "string",
            "upper (default), lower, trim or reverse",
        ))
        .inport(Port::new("in", "string", "Text"))
        .outport(Port::new("out", "string", "Transformed text"))
    }

    fn run(ctx: &mut Context) -> Result<()> {
        let mode = ctx.read_config_or("mode", Mode::Upper)?;
        let (input, output) = (ctx.inport("in")?, ctx.outport("out")?);
        while let Some(ip) = input.recv()? {
            let ip = ip.try_map_data(|data| {
                let text = String::from_utf8(data)?;
                Ok::<_, flowd_guest::Error>(mode.apply(&text).into_bytes())
            })?;
            output.send(ip)?;
        }
        Ok(())
    }
}

flowd_guest::export!(Transform);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!("UPPER".parse(), Ok(Mode::Upper));
        assert!("sideways".parse::<Mode>().is_err());
        assert_eq!(Mode::Upper.apply("straße"), "STRASSE");
        assert_eq!(Mode::Lower.apply("ÀB"), "àb");
        assert_eq!(Mode::Trim.apply("  a b \n"), "a b");
        assert_eq!(Mode::Reverse.apply("añb"), "bña");
    }
}
