#!/usr/bin/env node
// Drives a running flowd through every FBP Network Protocol command it advertises, using
// fbp-client (the protocol library of noflo-ui) in strict mode: every frame flowd sends is
// checked against the fbp-protocol JSON schemas and against the capability table, exactly as
// noflo-ui does it (but failing instead of warning).
//
//   node tools/protocol-session.js ws://127.0.0.1:PORT [SECRET]
//
// SECRET may also come from the environment variable FBP_SECRET (keeps it out of `ps`);
// FBP_COLLECTION sets the component library prefix (default `core`, as in fbp-config.json).
// Prints one line per command (OK / FAIL / SKIP) and one short line per unrequested frame
// ("signal"). Exit status: 0 if every command succeeded and fbp-client reported no protocol
// error, 1 otherwise, 2 on bad usage.
//
// Side effects on the runtime: graphs session-graph, session-network and session-packet (not
// main), a component SessionSub, and network:persist, which makes flowd write its main graph
// back to its --graph file. Point it at a throwaway runtime.
//
// fbp-client 0.4.3 behaviours this script has to live with (node_modules/fbp-client/lib):
// - one command at a time; the answer is the first frame of the same protocol whose command is
//   the expected one or `error` (adapter/0_x.js, isAcceptedResponse); `responseTo` is ignored;
// - component commands have no timeout at all (0_x.js, `protocol === 'component'`), and a
//   command queued after the connection dropped never runs: we add our own deadline;
// - a command rejected because a received frame failed validation or the permission check keeps
//   its timeout armed; when that stale timer fires it detaches the listener of whatever command
//   is in flight then. We wait it out before the next command, so one failure does not turn into
//   a false timeout of the next one;
// - runtime:getruntime waits for a `runtime:getruntime` frame, never for runtime:runtime, so it
//   always times out; network:debug has no answer message and network:persist no output
//   schema. These three are sent differently (see runtimeCommands, fireAndForget,
//   persistCommand).
'use strict';

const util = require('util');
const fbpClient = require('fbp-client');
const schemas = require('fbp-protocol/schema/schemas');

const CONNECTION_TIMEOUT = 5000; // like noflo-ui
const COMMAND_TIMEOUT = 2000; // fbp-client's own deadline for non-component commands
const GUARD_MARGIN = 1000; // our deadline = fbp-client's + this (only fires if its queue is stuck)
const COMPONENT_TIMEOUT = 20000; // fbp-client has none; fbp-test allows 20 s for component:list
const QUIET_WINDOW = 500; // how long to watch for an error after a fire-and-forget message
const PACKET_WAIT = 3000; // how long a packet may take to travel through a running graph
const OVERALL_DEADLINE = 180000; // last resort against any hang we did not foresee

const COLLECTION = process.env.FBP_COLLECTION || 'core';
const GRAPH = 'session-graph'; // the 20 graph commands
const NET_GRAPH = 'session-network'; // network and trace commands
const PACKET_GRAPH = 'session-packet'; // runtime:packet through exported ports
const SUB_NAME = 'SessionSub'; // component:source
const component = (name) => `${COLLECTION}/${name}`;
const port = (node, name) => ({ node, port: name });

// The capability table of the protocol, as fbp-client uses it (lib/permissions.js): which
// capabilities allow a client to send a given command.
const CAPABILITY_TABLE = schemas.shared.capabilities.items._enumDescriptions; // eslint-disable-line no-underscore-dangle
function allowingCapabilities(protocol, command) {
  const signature = `${protocol}:${command}`;
  return CAPABILITY_TABLE.filter((c) => (c.inputs || []).includes(signature)).map((c) => c.name);
}
function allowingReceive(protocol, command) {
  const signature = `${protocol}:${command}`;
  return CAPABILITY_TABLE.filter((c) => (c.outputs || []).includes(signature)).map((c) => c.name);
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
const brief = (value, max = 160) => {
  const text = JSON.stringify(value);
  if (text === undefined) return 'undefined';
  return text.length > max ? `${text.slice(0, max)}…` : text;
};

// Marks an expected value that must match exactly instead of as a subset (e.g. merged metadata,
// where an extra key is the bug we look for).
class Exact {
  constructor(value) { this.value = value; }
}
const exact = (value) => new Exact(value);

// Compares an answer with the expected shape: objects as subsets (keys the test does not name may
// be there), arrays element by element, everything else strictly. Returns a description of the
// first difference, or null.
function mismatch(expected, actual, path = 'payload') {
  if (expected instanceof Exact) {
    return util.isDeepStrictEqual(expected.value, actual)
      ? null : `${path}: expected exactly ${brief(expected.value)}, got ${brief(actual)}`;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      return `${path}: expected ${brief(expected)}, got ${brief(actual)}`;
    }
    for (let i = 0; i < expected.length; i += 1) {
      const problem = mismatch(expected[i], actual[i], `${path}[${i}]`);
      if (problem) return problem;
    }
    return null;
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) {
      return `${path}: expected an object, got ${brief(actual)}`;
    }
    for (const key of Object.keys(expected)) {
      if (!(key in actual)) return `${path}.${key}: missing (expected ${brief(expected[key])})`;
      const problem = mismatch(expected[key], actual[key], `${path}.${key}`);
      if (problem) return problem;
    }
    return null;
  }
  return Object.is(expected, actual) ? null : `${path}: expected ${brief(expected)}, got ${brief(actual)}`;
}

// Rejects with a marked error when `promise` takes longer than `ms`.
function withDeadline(promise, ms, message) {
  let timer = null;
  const deadline = new Promise((resolve, reject) => {
    timer = setTimeout(() => {
      const err = new Error(message);
      err.deadline = true;
      reject(err);
    }, ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

class Session {
  constructor() {
    this.client = null;
    this.definition = null; // fbp-client's definition, merged with runtime:runtime
    this.firstRuntime = null; // a snapshot of it right after connecting
    this.counts = { ok: 0, fail: 0, skip: 0 };
    this.protocolErrors = [];
    this.signals = []; // every signal, in arrival order (checks look at a slice of it)
    this.waiters = []; // {match, resolve}: someone waits for a signal
    this.recentFrames = []; // raw frames as received, to show what failed validation
    this.blockedBy = null; // set when fbp-client's queue can no longer make progress
    this.closing = false;
  }

  // --- reporting ----------------------------------------------------------------------------

  ok(name, note) {
    this.counts.ok += 1;
    console.log(`OK   ${name}${note ? ` (${note})` : ''}`);
  }

  fail(name, detail) {
    this.counts.fail += 1;
    console.log(`FAIL ${name}: ${detail}`);
  }

  skip(name, reason) {
    this.counts.skip += 1;
    console.log(`SKIP ${name}: ${reason}`);
  }

  // Adds the raw frame behind a validation error, which fbp-client's message does not show.
  explain(message) {
    const m = /^(?:Runtime sent invalid payload for|Not permitted to receive) (\w+):(\w+)/.exec(message)
      || /^no schema with key or ref "\/(\w+)\/output\/(\w+)"/.exec(message);
    if (!m) return message;
    const frame = [...this.recentFrames].reverse().find((f) => f.protocol === m[1] && f.command === m[2]);
    return frame ? `${message}; frame: ${brief(frame, 400)}` : message;
  }

  // --- capabilities ---------------------------------------------------------------------------

  granted() {
    return (this.definition && this.definition.capabilities) || [];
  }

  // Same rule as fbp-client's canSend (lib/permissions.js): some granted capability lists the
  // command among its inputs. Returns null if permitted, else the reason to skip.
  notPermitted(protocol, command) {
    if (protocol === 'runtime' && command === 'getruntime') return null;
    const allowing = allowingCapabilities(protocol, command);
    if (allowing.some((c) => this.granted().includes(c))) return null;
    return `not advertised (needs ${allowing.join(' or ') || 'a capability that does not exist'})`;
  }

  mayReceive(protocol, command) {
    return allowingReceive(protocol, command).some((c) => this.granted().includes(c));
  }

  // --- connection -----------------------------------------------------------------------------

  async connect(address, secret) {
    const definition = { address, protocol: 'websocket' };
    // Only set when given: fbp-client copies it into every payload, `undefined` drops the key.
    if (secret !== undefined) definition.secret = secret;
    try {
      this.client = await fbpClient(definition, {
        connectionTimeout: CONNECTION_TIMEOUT,
        commandTimeout: COMMAND_TIMEOUT,
        skipValidation: false,
        skipPermissions: false,
      });
    } catch (err) {
      this.fail('connect', err.message);
      return false;
    }

    // Listen before connecting: frames may come right after runtime:runtime (runtime:ports).
    this.client.on('protocolError', (err) => {
      this.protocolErrors.push(err);
      console.log(`PROTOCOL ERROR ${this.explain(err.message)}`);
    });
    this.client.on('signal', (message) => this.onSignal(message));
    this.client.on('disconnected', () => {
      if (this.closing) return;
      this.fail('connection', 'the runtime closed the connection');
      this.blockedBy = 'the lost connection';
    });
    // A raw tap on the transport, only to show the offending frame when validation fails.
    this.client.transport.on('message', (message) => {
      this.recentFrames.push(JSON.parse(JSON.stringify(message)));
      if (this.recentFrames.length > 20) this.recentFrames.shift();
    });

    try {
      this.definition = await this.client.connect();
    } catch (err) {
      this.fail(`connect ${address}`, this.explain(err.message));
      return false;
    }
    const d = this.definition;
    // A copy: fbp-protocol-client merges every later runtime:runtime into this same object.
    this.firstRuntime = JSON.parse(JSON.stringify(d));
    this.ok(`connect ${address}`, `runtime:runtime type=${d.type} version=${d.version} id=${d.id || '-'} graph=${d.graph || '-'}`);
    console.log(`     capabilities: ${this.granted().join(', ') || '(none)'}`);
    if (d.allCapabilities) console.log(`     allCapabilities: ${d.allCapabilities.join(', ')}`);
    return true;
  }

  async close() {
    this.closing = true;
    if (!this.client) return;
    try {
      await withDeadline(this.client.disconnect(), 2000, 'disconnect timed out');
    } catch (err) {
      console.log(`note: ${err.message}`);
    }
  }

  onSignal(message) {
    this.signals.push(message);
    console.log(`     signal ${message.protocol}:${message.command} ${brief(message.payload)}`);
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.match(message)) return true;
      waiter.resolve(message);
      return false;
    });
  }

  // Resolves with the first signal matching `match` from now on, or null after `ms`.
  // Register it before sending the command that provokes the signal: it may come first.
  waitForSignal(match, ms) {
    let waiter = null;
    const seen = new Promise((resolve) => { waiter = { match, resolve }; });
    this.waiters.push(waiter);
    return withDeadline(seen, ms, 'no signal').catch(() => {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      return null;
    });
  }

  // --- commands -------------------------------------------------------------------------------

  // Sends one command through fbp-client and waits for its answer. `expect` is the expected
  // answer payload (see mismatch) or a function (answer, signalsMeanwhile) returning a problem
  // or null; `note` a function giving a remark for the OK line. Resolves with
  // {status: 'ok'|'fail'|'skip', answer}.
  async run(protocol, command, payload, { label, expect, note } = {}) {
    const name = `${protocol}:${command}${label ? ` ${label}` : ''}`;
    if (this.blockedBy) {
      this.skip(name, `fbp-client can no longer send anything after ${this.blockedBy}`);
      return { status: 'skip' };
    }
    const reason = this.notPermitted(protocol, command);
    if (reason) {
      this.skip(name, reason);
      return { status: 'skip' };
    }
    const signalsBefore = this.signals.length;
    const limit = protocol === 'component' ? COMPONENT_TIMEOUT : COMMAND_TIMEOUT + GUARD_MARGIN;
    let answer;
    try {
      answer = await withDeadline(
        this.client.protocol[protocol][command](payload),
        limit,
        `no answer within ${limit} ms`,
      );
    } catch (err) {
      await this.afterRejection(protocol, command, err, name);
      return { status: 'fail', error: err };
    }
    const signals = this.signals.slice(signalsBefore);
    const problem = typeof expect === 'function' ? expect(answer, signals) : (expect === undefined ? null : mismatch(expect, answer));
    if (problem) {
      this.fail(name, problem);
      return { status: 'fail', answer };
    }
    this.ok(name, note ? note(answer) : undefined);
    return { status: 'ok', answer };
  }

  // Reports a rejected command and restores a usable client state.
  async afterRejection(protocol, command, err, name = null) {
    const what = name || `${protocol}:${command}`;
    const last = this.recentFrames[this.recentFrames.length - 1];
    if (last && last.command === 'error' && last.protocol === protocol && last.payload && last.payload.message === err.message) {
      this.fail(what, `runtime answered ${protocol}:error "${err.message}"`);
    } else {
      this.fail(what, this.explain(err.message));
    }
    if (err.deadline) {
      // Our deadline fired, so fbp-client still waits for this answer (component commands have
      // no timeout there) or its queue is stuck; nothing else will get through.
      this.blockedBy = `the unanswered ${protocol}:${command}`;
      return;
    }
    // A rejection caused by a received frame (failed validation or permission) leaves
    // fbp-client's timeout for this command armed (adapter/0_x.js, the rejection handler of the
    // listener does not clear it); when it fires it would detach the next command's listener.
    // Let it fire now, while nothing is in flight. Component commands have no such timer.
    if (protocol !== 'component'
      && /^(Runtime sent invalid payload|Not permitted to receive|no schema with key or ref)/.test(err.message)) {
      await sleep(COMMAND_TIMEOUT + 100);
    }
  }

  // Sends a command that has no answer message (network:debug) without fbp-client's queue,
  // which would wait for one and fail with a timeout. Validates and checks it like fbp-client
  // would, then watches QUIET_WINDOW ms for an error or any reply (a reply is invalid: there is
  // no output schema for it).
  async fireAndForget(protocol, command, payload, { label } = {}) {
    const name = `${protocol}:${command}${label ? ` ${label}` : ''}`;
    if (this.blockedBy) {
      this.skip(name, `fbp-client can no longer send anything after ${this.blockedBy}`);
      return { status: 'skip' };
    }
    const reason = this.notPermitted(protocol, command);
    if (reason) {
      this.skip(name, reason);
      return { status: 'skip' };
    }
    try {
      await this.client.validate(`/${protocol}/input/${command}`, { protocol, command, payload: { ...payload } });
    } catch (err) {
      this.fail(name, err.message);
      return { status: 'fail' };
    }
    const errorsBefore = this.protocolErrors.length;
    const replies = [];
    const tap = (message) => {
      if (message.protocol === protocol && (message.command === command || message.command === 'error' || message.command === 'setdebug')) {
        replies.push(message);
      }
    };
    this.client.transport.on('message', tap);
    // Safe only because nothing is in flight: every command of this script is awaited, so the
    // queue is idle and any reply reaches us as a signal or a protocol error.
    // The secret goes into the payload, as fbp-client does it (lib/client.js, prepareCommands).
    this.client.transport.send(protocol, command, { ...payload, secret: this.client.definition.secret });
    await sleep(QUIET_WINDOW);
    this.client.transport.removeListener('message', tap);
    if (replies.length) {
      this.fail(name, `unexpected reply ${brief(replies[0], 300)}`);
      return { status: 'fail' };
    }
    if (this.protocolErrors.length > errorsBefore) {
      this.fail(name, 'a protocol error was reported meanwhile (see above)');
      return { status: 'fail' };
    }
    this.ok(name, `sent without awaiting an answer (none is defined); no reply or error within ${QUIET_WINDOW} ms`);
    return { status: 'ok' };
  }

  // Skips a list of commands with a common reason (e.g. their graph could not be set up).
  skipAll(names, reason) {
    for (const name of names) this.skip(name, reason);
  }

  // --- the session ----------------------------------------------------------------------------

  // runtime:getruntime cannot go through fbp-client's queue: for it fbp-client waits for a
  // `runtime:getruntime` frame (the default "same command" rule of adapter/0_x.js, no case for
  // getruntime), so the runtime:runtime answer arrives as a signal and the command times out.
  // Send it directly and wait for that signal instead; the signal path still validates it.
  async runtimeCommands() {
    const name = 'runtime:getruntime (again)';
    if (this.blockedBy) {
      this.skip(name, `fbp-client can no longer send anything after ${this.blockedBy}`);
      return;
    }
    try {
      await this.client.validate('/runtime/input/getruntime', { protocol: 'runtime', command: 'getruntime', payload: {} });
    } catch (err) {
      this.fail(name, err.message);
      return;
    }
    const errorsBefore = this.protocolErrors.length;
    const answer = this.waitForSignal((s) => s.protocol === 'runtime' && s.command === 'runtime', COMMAND_TIMEOUT);
    this.client.transport.sendRuntime('getruntime', {}); // adds the secret to the payload
    const runtime = await answer;
    if (!runtime) {
      const why = this.protocolErrors.length > errorsBefore ? ' valid' : '';
      this.fail(name, `no${why} runtime:runtime within ${COMMAND_TIMEOUT} ms`);
      return;
    }
    const first = this.firstRuntime;
    const sorted = (list) => [...(list || [])].sort();
    if (runtime.payload.version !== first.version) {
      this.fail(name, `version ${brief(runtime.payload.version)} differs from the first answer ${brief(first.version)}`);
    } else if (!util.isDeepStrictEqual(sorted(runtime.payload.capabilities), sorted(first.capabilities))) {
      this.fail(name, `capabilities ${brief(runtime.payload.capabilities)} differ from the first answer`);
    } else {
      this.ok(name, 'runtime:runtime, as a signal');
    }
  }

  // All 20 graph commands, on a graph of our own, checking each echo.
  async graphCommands() {
    const g = GRAPH;
    const run = (command, payload, options) => this.run('graph', command, payload, options);
    const echo = (payload) => ({ expect: { ...payload } });

    await run('clear', { id: g, name: 'flowd protocol session', main: false }, {
      label: g, expect: { id: g, name: 'flowd protocol session', main: false },
    });
    const rMeta = { x: 10, y: 20, label: 'r' };
    await run('addnode', { id: 'r', component: component('Repeat'), metadata: rMeta, graph: g }, {
      label: `r (${component('Repeat')})`,
      expect: { id: 'r', component: component('Repeat'), metadata: exact(rMeta), graph: g },
    });
    await run('addnode', { id: 'd', component: component('Drop'), graph: g }, {
      label: `d (${component('Drop')})`, expect: { id: 'd', component: component('Drop'), graph: g },
    });
    await run('addnode', { id: 'o', component: component('Output'), graph: g }, {
      label: `o (${component('Output')})`, expect: { id: 'o', component: component('Output'), graph: g },
    });
    const rd = { src: port('r', 'out'), tgt: port('d', 'in') };
    await run('addedge', { ...rd, metadata: { route: 1 }, graph: g }, {
      label: 'r.out -> d.in', ...echo({ ...rd, metadata: { route: 1 }, graph: g }),
    });
    // A second edge from the same outport (fan-out): removenode o must then announce its removal.
    const ro = { src: port('r', 'out'), tgt: port('o', 'in') };
    await run('addedge', { ...ro, graph: g }, { label: 'r.out -> o.in', ...echo({ ...ro, graph: g }) });
    await run('changeedge', { ...rd, metadata: { route: 2 }, graph: g }, {
      label: 'r.out -> d.in', expect: { ...rd, metadata: exact({ route: 2 }), graph: g },
    });
    await run('addinitial', { src: { data: 'hello' }, tgt: port('r', 'in'), graph: g }, {
      label: "'hello' -> r.in", ...echo({ src: { data: 'hello' }, tgt: port('r', 'in'), graph: g }),
    });
    // Without src: the echo must name the removed IIP.
    await run('removeinitial', { tgt: port('r', 'in'), graph: g }, {
      label: 'r.in', expect: { src: { data: 'hello' }, tgt: port('r', 'in'), graph: g },
    });
    await run('addinport', { public: 'in', node: 'r', port: 'in', graph: g }, {
      label: 'in = r.in', ...echo({ public: 'in', node: 'r', port: 'in', graph: g }),
    });
    await run('addoutport', { public: 'out', node: 'o', port: 'out', graph: g }, {
      label: 'out = o.out', ...echo({ public: 'out', node: 'o', port: 'out', graph: g }),
    });
    await run('renameinport', { from: 'in', to: 'input', graph: g }, {
      label: 'in -> input', ...echo({ from: 'in', to: 'input', graph: g }),
    });
    await run('renameoutport', { from: 'out', to: 'output', graph: g }, {
      label: 'out -> output', ...echo({ from: 'out', to: 'output', graph: g }),
    });
    await run('removeinport', { public: 'input', graph: g }, { label: 'input', ...echo({ public: 'input', graph: g }) });
    await run('removeoutport', { public: 'output', graph: g }, { label: 'output', ...echo({ public: 'output', graph: g }) });
    await run('addgroup', { name: 'g1', nodes: ['r', 'd'], metadata: { description: 'first' }, graph: g }, {
      label: 'g1 [r, d]', ...echo({ name: 'g1', nodes: ['r', 'd'], metadata: { description: 'first' }, graph: g }),
    });
    await run('renamegroup', { from: 'g1', to: 'g2', graph: g }, {
      label: 'g1 -> g2', ...echo({ from: 'g1', to: 'g2', graph: g }),
    });
    await run('changegroup', { name: 'g2', metadata: { description: 'second' }, graph: g }, {
      label: 'g2', expect: { name: 'g2', metadata: { description: 'second' }, graph: g },
    });
    await run('removegroup', { name: 'g2', graph: g }, { label: 'g2', ...echo({ name: 'g2', graph: g }) });
    // Metadata is a patch: the echo carries the merged result.
    await run('changenode', { id: 'r', metadata: { x: 30 }, graph: g }, {
      label: 'r {x: 30}', expect: { id: 'r', metadata: exact({ x: 30, y: 20, label: 'r' }), graph: g },
    });
    await run('renamenode', { from: 'd', to: 'd2', graph: g }, {
      label: 'd -> d2', ...echo({ from: 'd', to: 'd2', graph: g }),
    });
    const rd2 = { src: port('r', 'out'), tgt: port('d2', 'in') };
    await run('removeedge', { ...rd2, graph: g }, { label: 'r.out -> d2.in', ...echo({ ...rd2, graph: g }) });
    await run('removenode', { id: 'o', graph: g }, {
      label: 'o (still connected from r.out)',
      expect: (answer, signals) => {
        const problem = mismatch({ id: 'o', graph: g }, answer);
        if (problem) return problem;
        const announced = signals.some((s) => s.protocol === 'graph' && s.command === 'removeedge'
          && s.payload.graph === g && s.payload.tgt && s.payload.tgt.node === 'o');
        return announced ? null : 'no graph:removeedge for r.out -> o.in arrived before graph:removenode';
      },
    });
  }

  // Builds a small graph with graph commands. Returns true if every step succeeded.
  async setupGraph(id, steps) {
    const results = [];
    results.push(await this.run('graph', 'clear', { id, name: id, main: false }, { label: `${id} (setup)`, expect: { id } }));
    for (const [command, payload, label] of steps) {
      results.push(await this.run('graph', command, { ...payload, graph: id }, { label: `${label} (setup ${id})` }));
    }
    return results.every((r) => r.status === 'ok');
  }

  // network start/getstatus/edges/debug/stop, with trace start/dump/stop/clear around them.
  async networkAndTraceCommands() {
    const g = NET_GRAPH;
    const dependent = ['trace:start', 'network:getstatus', 'network:start', 'network:edges', 'network:debug',
      'network:stop', 'trace:dump', 'trace:stop', 'trace:clear'];
    const ready = await this.setupGraph(g, [
      ['addnode', { id: 'r', component: component('Repeat') }, 'r'],
      ['addnode', { id: 'd', component: component('Drop') }, 'd'],
      ['addedge', { src: port('r', 'out'), tgt: port('d', 'in') }, 'r.out -> d.in'],
      ['addinitial', { src: { data: 'ping' }, tgt: port('r', 'in') }, "'ping' -> r.in"],
    ]);
    if (!ready) {
      this.skipAll(dependent, `needs graph ${g}, which could not be set up`);
      return;
    }

    const trace = await this.run('trace', 'start', { graph: g, buffersize: 1048576 }, {
      label: g, expect: { graph: g },
    });
    await this.run('network', 'getstatus', { graph: g }, {
      label: `${g} (never started)`, expect: { graph: g, started: false, running: false },
    });
    const signalsBefore = this.signals.length;
    const started = await this.run('network', 'start', { graph: g }, { label: g, expect: { graph: g, started: true } });
    // Finished is not stopped: running may already be false, started stays true.
    await this.run('network', 'getstatus', { graph: g }, { label: `${g} (started)`, expect: { graph: g, started: true } });
    const edges = [{ src: port('r', 'out'), tgt: port('d', 'in') }];
    await this.run('network', 'edges', { graph: g, edges }, { label: g, expect: { graph: g, edges } });
    await this.fireAndForget('network', 'debug', { graph: g, enable: true }, { label: g });

    // Live data flows by default for every edge and IIP, without network:debug or network:edges.
    if (started.status === 'ok') {
      const name = `network:data signals of ${g}`;
      if (!this.mayReceive('network', 'data')) {
        this.skip(name, 'not advertised (needs protocol:network or network:data)');
      } else {
        const seen = this.signals.slice(signalsBefore).filter((s) => s.protocol === 'network'
          && s.command === 'data' && s.payload.graph === g && s.payload.data === 'ping');
        if (seen.length) this.ok(name, `${seen.length} with 'ping'`);
        else this.fail(name, "no network:data with 'ping' arrived between start and now");
      }
    }

    await this.run('network', 'stop', { graph: g }, { label: g, expect: { graph: g, started: false, running: false } });
    await this.run('network', 'getstatus', { graph: g }, {
      label: `${g} (stopped)`, expect: { graph: g, started: false, running: false },
    });

    if (trace.status !== 'skip') {
      await this.run('trace', 'dump', { graph: g, type: 'flowtrace.json' }, {
        label: g,
        expect: (answer) => {
          const problem = mismatch({ graph: g, type: 'flowtrace.json' }, answer);
          if (problem) return problem;
          if (typeof answer.flowtrace !== 'string') return 'payload.flowtrace is not a string (Flowtrace JSON text)';
          try {
            JSON.parse(answer.flowtrace);
          } catch (err) {
            return `payload.flowtrace is not JSON: ${err.message}`;
          }
          return null;
        },
        note: (answer) => {
          const parsed = JSON.parse(answer.flowtrace);
          return Array.isArray(parsed.events) ? `${parsed.events.length} events` : 'no events array';
        },
      });
      await this.run('trace', 'stop', { graph: g }, { label: g, expect: { graph: g } });
      await this.run('trace', 'clear', { graph: g }, { label: g, expect: { graph: g } });
    } else {
      this.skipAll(['trace:dump', 'trace:stop', 'trace:clear'], 'trace:start was skipped');
    }
  }

  // runtime:packet into the exported inport of a running graph; the packet must come back out of
  // the exported outport as a runtime:packet signal.
  async packetCommands() {
    const g = PACKET_GRAPH;
    const dependent = ['network:start', 'runtime:packet', `runtime:packet (signal from ${g}.out)`, 'network:stop'];
    const packetReason = this.notPermitted('runtime', 'packet');
    if (packetReason) {
      this.skip('runtime:packet', packetReason);
      return;
    }
    // Without a way to build and start the graph there is nothing to send the packet to.
    const startReason = this.notPermitted('network', 'start') || this.notPermitted('graph', 'clear');
    if (startReason) {
      this.skip('runtime:packet', `needs a graph of its own, running: ${startReason}`);
      return;
    }
    const ready = await this.setupGraph(g, [
      ['addnode', { id: 'r', component: component('Repeat') }, 'r'],
      ['addinport', { public: 'in', node: 'r', port: 'in' }, 'in = r.in'],
      ['addoutport', { public: 'out', node: 'r', port: 'out' }, 'out = r.out'],
    ]);
    if (!ready) {
      this.skipAll(dependent, `needs graph ${g}, which could not be set up`);
      return;
    }
    const started = await this.run('network', 'start', { graph: g }, { label: g, expect: { graph: g, started: true } });
    if (started.status !== 'ok') {
      this.skipAll(dependent.slice(1, 3), `needs the running graph ${g}`);
    } else {
      // Register first: the packet may leave the graph before runtime:packetsent arrives.
      const output = this.waitForSignal((s) => s.protocol === 'runtime' && s.command === 'packet'
        && s.payload.graph === g && s.payload.port === 'out' && s.payload.event === 'data', PACKET_WAIT);
      const sent = await this.run('runtime', 'packet', { graph: g, port: 'in', event: 'data', payload: 'hi' }, {
        label: `'hi' -> ${g}.in`, expect: { graph: g, port: 'in', event: 'data', payload: 'hi' },
      });
      const name = `runtime:packet (signal from ${g}.out)`;
      if (sent.status !== 'ok') {
        this.skip(name, 'nothing was delivered');
      } else {
        const packet = await output;
        if (!packet) this.fail(name, `no runtime:packet data from port out within ${PACKET_WAIT} ms`);
        else if (packet.payload.payload !== 'hi') this.fail(name, `payload ${brief(packet.payload.payload)} instead of "hi"`);
        else this.ok(name, 'payload "hi"');
      }
    }
    await this.run('network', 'stop', { graph: g }, { label: g, expect: { graph: g, started: false, running: false } });
  }

  // network:persist has an input schema but no output schema in fbp-protocol 0.9.8, so a strict
  // fbp-client can never accept an answer: a network:persist reply rejects the command with
  // `no schema with key or ref "/network/output/persist"`. The spec defines no answer either.
  // Either outcome (that reply, or silence until the timeout) is accepted; network:error or any
  // other failure is not.
  async persistCommand() {
    const name = 'network:persist';
    if (!this.granted().includes('network:persist')) {
      this.skip(name, 'network:persist not advertised');
      return;
    }
    if (this.blockedBy) {
      this.skip(name, `fbp-client can no longer send anything after ${this.blockedBy}`);
      return;
    }
    try {
      const answer = await withDeadline(this.client.protocol.network.persist({}), COMMAND_TIMEOUT + GUARD_MARGIN,
        `no answer within ${COMMAND_TIMEOUT + GUARD_MARGIN} ms`);
      this.ok(name, `answer ${brief(answer)}`);
    } catch (err) {
      if (/^no schema with key or ref "\/network\/output\/persist"/.test(err.message)) {
        this.ok(name, 'answered network:persist, which fbp-client cannot validate (no output schema)');
        await sleep(COMMAND_TIMEOUT + 100); // the stale timer, see afterRejection
      } else if (err.message === 'network:persist timed out') {
        this.ok(name, `no answer within ${COMMAND_TIMEOUT} ms; the spec defines none`);
      } else {
        await this.afterRejection('network', 'persist', err);
      }
    }
  }

  // component list/getsource/source. Last, because fbp-client has no timeout for them: an
  // unanswered one blocks its queue for good.
  async componentCommands() {
    const repeat = component('Repeat');
    await this.run('component', 'list', {}, {
      expect: (list) => {
        if (!Array.isArray(list)) return `expected a list of components, got ${brief(list)}`;
        return list.some((c) => c.name === repeat) ? null : `${repeat} is not among the ${list.length} components`;
      },
      note: (list) => `${list.length} components`,
    });

    // getsource of a graph: what noflo-ui asks first (for runtime.graph), answered with the FBP
    // JSON of the graph. Like noflo-ui, retry as <namespace>/<name> if the plain name fails.
    const graphSource = (id, processId) => (answer) => {
      if (answer.language !== 'json') return `language ${brief(answer.language)} instead of "json"`;
      let graph;
      try {
        graph = JSON.parse(answer.code);
      } catch (err) {
        return `code is not JSON: ${err.message}`;
      }
      if (!graph || typeof graph.processes !== 'object') return 'code has no processes';
      if (processId && !(processId in graph.processes)) return `process ${processId} missing in the source of ${id}`;
      return null;
    };
    const names = [];
    if (this.definition.graph) names.push([this.definition.graph, null]);
    // Our own graph exists only if this client could create it (graph commands above).
    if (!this.notPermitted('graph', 'clear')) names.push([GRAPH, 'r']);
    if (!names.length) names.push([GRAPH, null]); // still reports whether getsource is permitted
    for (const [id, processId] of names) {
      const first = await this.run('component', 'getsource', { name: id }, {
        label: id, expect: graphSource(id, processId),
      });
      const ns = this.definition.namespace;
      if (first.status === 'fail' && first.error && !first.error.deadline && ns && !id.includes('/')) {
        await this.run('component', 'getsource', { name: `${ns}/${id}` }, {
          label: `${ns}/${id} (noflo-ui's retry)`, expect: graphSource(id, processId),
        });
      }
    }

    // component:source with an FBP JSON graph: registers a subgraph component.
    const code = JSON.stringify({
      properties: { name: SUB_NAME },
      processes: { r: { component: repeat, metadata: { x: 0, y: 0 } } },
      connections: [],
      inports: { in: { process: 'r', port: 'in' } },
      outports: { out: { process: 'r', port: 'out' } },
    });
    await this.run('component', 'source', { name: SUB_NAME, language: 'json', code }, {
      label: SUB_NAME,
      expect: (answer) => {
        if (answer.name !== SUB_NAME && !String(answer.name).endsWith(`/${SUB_NAME}`)) {
          return `component:component for ${brief(answer.name)} instead of ${SUB_NAME}`;
        }
        if (answer.subgraph !== true) return 'subgraph is not true for a graph source';
        const ids = (ports) => (ports || []).map((p) => p.id);
        if (!ids(answer.inPorts).includes('in')) return `inPorts ${brief(ids(answer.inPorts))} lack "in"`;
        if (!ids(answer.outPorts).includes('out')) return `outPorts ${brief(ids(answer.outPorts))} lack "out"`;
        return null;
      },
      note: (answer) => `component:component ${answer.name}`,
    });
  }
}

async function main(argv) {
  const [address, secretArg] = argv;
  if (!address || !/^wss?:\/\//.test(address) || argv.length > 2) {
    process.stderr.write('usage: node protocol-session.js ws://HOST:PORT [SECRET]  (or FBP_SECRET=...)\n');
    return 2;
  }
  const secret = secretArg !== undefined ? secretArg : process.env.FBP_SECRET;
  const session = new Session();

  // fbp-client has a few paths where a failure is neither a rejection nor an event (e.g. an
  // unsupported version throws inside a promise callback, leading to a connection timeout;
  // a frame that is not JSON throws in the WebSocket message handler). Count them as failures.
  process.on('unhandledRejection', (reason) => {
    session.fail('internal', `unhandled rejection: ${reason && reason.message ? reason.message : reason}`);
  });
  process.on('uncaughtException', (err) => {
    session.fail('internal', `uncaught exception: ${err.message}`);
    process.exit(1);
  });
  const watchdog = setTimeout(() => {
    session.fail('session', `still not finished after ${OVERALL_DEADLINE} ms`);
    process.exit(1);
  }, OVERALL_DEADLINE);

  if (await session.connect(address, secret)) {
    await session.runtimeCommands();
    await session.graphCommands();
    await session.networkAndTraceCommands();
    await session.packetCommands();
    await session.persistCommand();
    await session.componentCommands();
  }
  await session.close();
  clearTimeout(watchdog);

  const { ok, fail, skip } = session.counts;
  const errors = session.protocolErrors.length;
  console.log(`summary: ${ok} ok, ${fail} failed, ${skip} skipped, ${errors} protocol error${errors === 1 ? '' : 's'}`);
  return fail || errors ? 1 : 0;
}

module.exports = { main, mismatch, allowingCapabilities };

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.log(`FAIL internal: ${err && err.stack ? err.stack : err}`);
      process.exit(1);
    },
  );
}
