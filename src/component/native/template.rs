//! `text/Template`: renders each packet through a template.

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::Value;

use super::setting::Setting;
use super::{NativeComponent, error_port, in_port, reject};
use crate::component::{Component, ComponentSpec, PortSpec};
use crate::engine::{ProcessContext, ProcessError};
use crate::ip::{Ip, Payload};

/// The name of the one template each process holds.
const NAME: &str = "template";

/// How much work one rendering may do (minijinja's fuel: about one unit per instruction), so
/// that a template with a runaway loop fails instead of holding the process.
const FUEL: u64 = 10_000_000;

/// Renders each data IP on `in` through the template set on `template` and sends the text to
/// `out`.
///
/// Templates use the Jinja2 syntax of the `minijinja` crate: `Hello {{ name }}!`,
/// `{% for item in items %}…{% endfor %}`, filters such as `upper` and `tojson`. The packet's
/// JSON value is `value`, and when it is an object its fields are variables too, so both
/// `{{ value.name }}` and `{{ name }}` work. Printing a variable that does not exist is an error
/// (testing one with `{% if name is defined %}` is not), as is a rendering that runs past its
/// budget: such a packet goes to `error` with the reason, or ends the process if `error` is not
/// connected. A template that does not compile ends the process with an error naming the port.
/// Brackets are forwarded.
#[derive(Default)]
pub struct Template;

impl NativeComponent for Template {
    fn spec() -> ComponentSpec {
        ComponentSpec::new(
            "text/Template",
            "Renders each packet through a Jinja2 template",
        )
        .icon("file-text-o")
        .inport(in_port(
            "Values to render (JSON objects give their fields as variables)",
        ))
        .inport(PortSpec::new("template", "string", "The template, in Jinja2 syntax").required())
        .outport(PortSpec::new("out", "string", "The rendered texts"))
        .outport(error_port())
    }
}

impl Component for Template {
    fn needs_thread(&self) -> bool {
        false
    }

    fn run(&mut self, ctx: &mut ProcessContext) -> Result<(), ProcessError> {
        let mut template = Setting::read(ctx, "template", compile, || {
            Err(ProcessError::failed("inport 'template': no template given"))
        })?;
        let input = ctx.inport("in")?;
        let output = ctx.outport("out")?;
        let errors = ctx.outport("error")?;
        while let Some(ip) = ctx.recv(input)? {
            let Ip::Data(payload) = ip else {
                ctx.send(output, ip)?;
                continue;
            };
            let rendered = render(template.get(ctx)?, &payload.to_json());
            match rendered {
                Ok(text) => ctx.send(output, Ip::data(text))?,
                Err(reason) => reject(ctx, errors, &payload, reason)?,
            }
        }
        Ok(())
    }
}

/// A template ready to render, the setting of inport `name`.
fn compile(name: &'static str, source: Payload) -> Result<Environment<'static>, ProcessError> {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    environment.set_fuel(Some(FUEL));
    // Output is text for any use, not HTML: nothing is escaped.
    environment.set_auto_escape_callback(|_| AutoEscape::None);
    environment
        .add_template_owned(NAME, source.to_string_lossy().into_owned())
        .map_err(|e| ProcessError::failed(format!("inport '{name}': invalid template: {e}")))?;
    Ok(environment)
}

/// `value` rendered by the template in `environment`, or why not.
fn render(environment: &Environment<'static>, value: &Value) -> Result<String, String> {
    let template = environment.get_template(NAME).map_err(|e| e.to_string())?;
    let mut context = match value {
        Value::Object(fields) => fields.clone(),
        _ => serde_json::Map::new(),
    };
    context.insert("value".to_string(), value.clone());
    template
        .render(Serde(&context))
        .map_err(|e| format!("cannot render: {e}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::*;

    #[test]
    fn renders_fields_and_the_whole_value() {
        let lines = lines_through(
            "text/Template",
            &[(
                "template",
                json!(
                    "{{ name | upper }} has {% for t in tags %}{{ t }}{% if not loop.last %},{% endif %}{% endfor %}; {{ value.n + 1 }}"
                ),
            )],
            vec![data(r#"{"name":"ada","tags":["x","y"],"n":41}"#)],
        );
        assert_eq!(lines, strings(&["ADA has x,y; 42"]));
    }

    #[test]
    fn text_and_numbers_are_the_value() {
        let lines = lines_through(
            "text/Template",
            &[("template", json!("<{{ value }}>"))],
            vec![data("plain & simple"), data("3"), open("g"), close("g")],
        );
        assert_eq!(lines, strings(&["<plain & simple>", "<3>", "< g", "> g"]));
    }

    #[test]
    fn printing_a_missing_variable_is_an_error_naming_the_input() {
        let errors = errors_through(
            "text/Template",
            &[(
                "template",
                json!("{% if x is defined %}{{ x }}{% endif %}{{ y }}"),
            )],
            vec![data(r#"{"x": 1}"#)],
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].1.contains("cannot render"), "{errors:?}");
    }

    #[test]
    fn a_runaway_template_runs_out_of_fuel() {
        let errors = errors_through(
            "text/Template",
            &[(
                "template",
                json!(
                    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
                ),
            )],
            vec![data("go")],
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn a_template_that_does_not_compile_is_an_error_naming_the_port() {
        let errors = errors_through("text/Template", &[("template", json!("{{ oops"))], vec![]);
        assert!(errors[0].1.contains("'template'"), "{errors:?}");
        assert_required_setting("text/Template", "template");
    }
}
