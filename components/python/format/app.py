"""py/Format: formats each data IP with a Python format string.

The `template` setting (an IIP, read with `read-config`) is a `str.format` string. Each data IP
on `in` is parsed as JSON; a value that is not JSON (flowd delivers a JSON string as its bare
text) is taken as a string. Then:

* a JSON object fills named fields:   "{name} is {age}"   with {"name": "Ann", "age": 3}
* a JSON array fills positional ones:  "{0} + {1}"        with [1, 2]
* any other value fills `{}` / `{0}` and `{value}`:  "<{}>"  with hello

Brackets are forwarded unchanged. A data IP that cannot be formatted (a missing field, bytes
that are not UTF-8) goes to `error` as a message when that port is connected, and otherwise
ends the process with an error. A missing or malformed template is an error at start.
"""

import json
import string

import wit_world
from componentize_py_types import Err
from wit_world.imports import ports, runtime, types


def port(name, data_type, description, required=False):
    return types.PortInfo(
        name=name,
        data_type=data_type,
        description=description,
        is_array=False,
        required=required,
    )


def port_error(err):
    """A readable message for a `port-error` raised by a port call."""
    value = err.value
    if isinstance(value, types.PortError_UnknownPort):
        return f"unknown port `{value.value}`"
    if isinstance(value, types.PortError_InvalidBatch):
        return f"invalid batch: {value.value}"
    if isinstance(value, types.PortError_Closed):
        return "closed"
    return "stopped"


def check_template(template):
    """Raises ValueError for a template `str.format` cannot parse (unbalanced braces, say)."""
    for _literal, field, spec, _conversion in string.Formatter().parse(template):
        if field is not None and spec:
            check_template(spec)  # nested fields such as "{x:{width}}"


def render(template, payload):
    """Formats one data IP; raises ValueError, KeyError, IndexError... when it cannot."""
    text = payload.decode("utf-8")
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    if isinstance(value, dict):
        return template.format_map(value)
    if isinstance(value, list):
        return template.format(*value)
    return template.format(value, value=value)


class WitWorld(wit_world.WitWorld):
    def describe(self):
        return types.ComponentInfo(
            name="py/Format",
            description="Formats each JSON data IP with a Python format string",
            icon="align-left",
            inports=[
                port("template", "string",
                     "A Python format string: {field} for objects, {0} for arrays, {} for others",
                     required=True),
                port("in", "all", "JSON values to format; brackets pass through"),
            ],
            outports=[
                port("out", "string", "The formatted text, one IP per data IP"),
                port("error", "string", "Why a data IP could not be formatted"),
            ],
        )

    def run(self):
        try:
            self.process()
        except Err as err:
            if isinstance(err.value, str):
                raise
            # A port error from a port call: `stopped` means the network is shutting down.
            if isinstance(err.value, types.PortError_Stopped):
                return
            raise Err(f"py/Format: port error: {port_error(err)}")

    def process(self):
        raw = ports.read_config("template")
        if raw is None:
            raise Err("py/Format: no `template` given")
        try:
            template = raw.decode("utf-8")
            check_template(template)
        except ValueError as e:
            raise Err(f"py/Format: bad template {raw!r}: {e}")

        # `with` drops the port handles when done.
        with ports.open_inport("in", None) as inp, \
                ports.open_outport("out", None) as out, \
                ports.open_outport("error", None) as errors:
            self.format_all(template, inp, out, errors)

    def format_all(self, template, inp, out, errors):
        count = failed = 0
        while True:
            ip = inp.recv()
            if ip is None:
                break
            if not isinstance(ip, types.Ip_Data):
                out.send(ip)  # brackets go through as they are
                continue
            try:
                text = render(template, ip.value)
            except (ValueError, KeyError, IndexError, AttributeError, TypeError) as e:
                message = f"cannot format {ip.value[:80]!r}: {type(e).__name__}: {e}"
                if not errors.is_connected():
                    raise Err(f"py/Format: {message}")
                errors.send(types.Ip_Data(message.encode("utf-8")))
                failed += 1
                continue
            out.send(types.Ip_Data(text.encode("utf-8")))
            count += 1
        runtime.log(types.LogLevel.DEBUG, f"formatted {count} IPs, {failed} failed")
