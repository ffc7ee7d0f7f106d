"""Unit tests of py/Format, run natively (no wasm) against fake ports.

    components/build-python.sh          # generates the bindings these tests import
    PYTHONPATH=target/components/python/bindings:components/python/format \
        python3 -m unittest discover -s components/python/tests/format -v
"""

import unittest

import app
from componentize_py_types import Err
from wit_world.imports import types

D, O, C = types.Ip_Data, types.Ip_Open, types.Ip_Close


class FakeInport:
    def __init__(self, ips):
        self.ips = list(ips)

    def recv(self):
        return self.ips.pop(0) if self.ips else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


class FakeOutport(FakeInport):
    def __init__(self, connected=True):
        super().__init__([])
        self.sent = []
        self.connected = connected

    def send(self, ip):
        self.sent.append(ip)

    def is_connected(self):
        return self.connected


class FakePorts:
    """Stands in for `wit_world.imports.ports` while a test runs."""

    def __init__(self, template, ips, error_connected=True):
        self.template = template
        self.inports = {"in": FakeInport(ips)}
        self.outports = {"out": FakeOutport(), "error": FakeOutport(error_connected)}

    def read_config(self, name):
        assert name == "template"
        return self.template

    def open_inport(self, name, index):
        if name not in self.inports:
            raise Err(types.PortError_UnknownPort(name))
        return self.inports[name]

    def open_outport(self, name, index):
        if name not in self.outports:
            raise Err(types.PortError_UnknownPort(name))
        return self.outports[name]


def run(template, ips, error_connected=True):
    fake = FakePorts(template, ips, error_connected)
    real_ports, real_log = app.ports, app.runtime.log
    app.ports, app.runtime.log = fake, lambda level, message: None
    try:
        app.WitWorld().run()
    finally:
        app.ports, app.runtime.log = real_ports, real_log
    return fake.outports["out"].sent, fake.outports["error"].sent


class FormatTest(unittest.TestCase):
    def test_describe(self):
        info = app.WitWorld().describe()
        self.assertEqual(info.name, "py/Format")
        self.assertEqual([p.name for p in info.inports], ["template", "in"])
        self.assertEqual([p.name for p in info.outports], ["out", "error"])

    def test_objects_arrays_and_scalars(self):
        out, err = run(b"{name}={value}", [D(b'{"name": "a", "value": 1}')])
        self.assertEqual(out, [D(b"a=1")])
        out, _ = run(b"{0}+{1}", [D(b"[1, 2]")])
        self.assertEqual(out, [D(b"1+2")])
        out, _ = run("<{}|{value}> ü".encode(), [D(b"hello"), D(b"42")])
        self.assertEqual(out, [D("<hello|hello> ü".encode()), D("<42|42> ü".encode())])
        self.assertEqual(err, [])

    def test_brackets_are_forwarded(self):
        out, _ = run(b"[{}]", [O(b"group"), D(b"x"), C(b"group")])
        self.assertEqual(out, [O(b"group"), D(b"[x]"), C(b"group")])

    def test_bad_ip_goes_to_error_port(self):
        out, err = run(b"{missing}", [D(b'{"a": 1}'), D(b"\xff"), O(b"")])
        self.assertEqual(out, [O(b"")])
        self.assertEqual(len(err), 2)
        self.assertIn(b"KeyError", err[0].value)
        self.assertIn(b"UnicodeDecodeError", err[1].value)

    def test_bad_ip_without_error_port_fails_the_process(self):
        with self.assertRaises(Err) as caught:
            run(b"{missing}", [D(b"{}")], error_connected=False)
        self.assertIn("KeyError", caught.exception.value)

    def test_missing_or_bad_template(self):
        with self.assertRaises(Err) as caught:
            run(None, [])
        self.assertIn("no `template`", caught.exception.value)
        with self.assertRaises(Err) as caught:
            run(b"{oops", [])
        self.assertIn("bad template", caught.exception.value)


if __name__ == "__main__":
    unittest.main()
