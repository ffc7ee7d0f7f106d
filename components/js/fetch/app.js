// js/Fetch: fetches each URL with the JavaScript `fetch` API, which componentize-js runs on
// wasi:http, so the sandbox lets it reach only the origins the operator grants.
//
// inport `in`: a URL per data IP. outport `out`: `{"status", "body"}` per URL, or
// `{"error", "input"}` for a request that failed (refused by the sandbox, unreachable).
// Brackets pass through.

import { openInport, openOutport } from 'flowd:component/ports@0.1.0';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function describe() {
  const port = (name, dataType, description) =>
    ({ name, dataType, description, isArray: false, required: false });
  return {
    name: 'js/Fetch',
    description: 'Fetches each URL with fetch(), within its grants',
    icon: 'cloud-download',
    inports: [port('in', 'string', 'URLs')],
    outports: [port('out', 'object', '{status, body} or {error, input} per URL')],
  };
}

export async function run() {
  const input = openInport('in', undefined);
  const output = openOutport('out', undefined);
  for (;;) {
    const ip = input.recv();
    if (ip === undefined) {
      return;
    }
    if (ip.tag !== 'data') {
      output.send(ip);
      continue;
    }
    const url = decoder.decode(ip.val).trim();
    let report;
    try {
      const response = await fetch(url);
      report = { status: response.status, body: await response.text() };
    } catch (error) {
      report = { error: String(error), input: url };
    }
    output.send({ tag: 'data', val: encoder.encode(JSON.stringify(report)) });
  }
}
