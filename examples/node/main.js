#!/usr/bin/env node
// A client of aurad in another language: it loads the .proto files under
// api/proto at run time (no generated code), connects to the daemon's unix
// socket, prints its status, appends one fact and follows WatchFacts until
// that fact comes back. Any failure prints one line and exits non-zero.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const FACT_TYPE = 'app.example/v1';

const USAGE = `usage: node main.js [--socket PATH] [--timeout SECONDS] [PAYLOAD]

Connects to aurad, prints its status, appends a ${FACT_TYPE} fact whose
payload is PAYLOAD (default "hello from node") and watches the journal until
that fact is streamed back.

  --socket PATH      aurad's control socket; default $AURA_DATADIR/aurad.sock,
                     else $XDG_DATA_HOME/aura/aurad.sock, else
                     ~/.local/share/aura/aurad.sock (where aurad puts it)
  --timeout SECONDS  give up after this long (default 30)

The .proto files are read from ../../api/proto next to this file, or from
$AURA_PROTO_DIR.`;

// Exit codes.
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

class UsageError extends Error {}

// Unreachable is a daemon that does not answer on the socket.
class Unreachable extends Error {}

function parse(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        socket: { type: 'string' },
        timeout: { type: 'string', default: '30' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError(err.message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    return { help: true };
  }
  if (positionals.length > 1) {
    throw new UsageError(`one payload argument expected, got ${positionals.length}`);
  }
  const timeout = Number(values.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) {
    throw new UsageError(`--timeout ${values.timeout}: want a positive number of seconds`);
  }
  return {
    socket: values.socket || defaultSocket(process.env),
    timeoutMs: timeout * 1000,
    payload: positionals.length === 1 ? positionals[0] : 'hello from node',
  };
}

// defaultSocket follows aurad's own choice of data dir.
function defaultSocket(env) {
  if (env.AURA_DATADIR) {
    return path.join(env.AURA_DATADIR, 'aurad.sock');
  }
  const data = env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(data, 'aura', 'aurad.sock');
}

function protoDir() {
  return process.env.AURA_PROTO_DIR || path.resolve(__dirname, '..', '..', 'api', 'proto');
}

function loadServices(dir) {
  const files = ['aura/node/v1/node.proto', 'aura/journal/v1/journal.proto'];
  for (const f of files) {
    if (!fs.existsSync(path.join(dir, f))) {
      throw new Error(`${path.join(dir, f)} not found: run from the repository or set AURA_PROTO_DIR`);
    }
  }
  const def = protoLoader.loadSync(files, {
    includeDirs: [dir],
    // Field names as the .proto spells them (device_id, not deviceId).
    keepCase: true,
    // uint64 counters and seqs do not fit a JS number in general.
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def);
  return { NodeService: pkg.aura.node.v1.NodeService, JournalService: pkg.aura.journal.v1.JournalService };
}

// describe renders a gRPC error as one line: code name and server message.
function describe(err) {
  if (err && typeof err.code === 'number') {
    const name = Object.keys(grpc.status).find((k) => grpc.status[k] === err.code) || String(err.code);
    return `${name}: ${err.details || err.message}`;
  }
  return err && err.message ? err.message : String(err);
}

function unary(client, method, req, deadline) {
  return new Promise((resolve, reject) => {
    client[method](req, { deadline }, (err, resp) => {
      if (err && err.code === grpc.status.UNAVAILABLE) {
        const cause = /connect (E[A-Z]+)/.exec(err.details || '');
        reject(new Unreachable(cause ? cause[1] : describe(err)));
      } else if (err) {
        reject(new Error(`${method}: ${describe(err)}`));
      } else {
        resolve(resp);
      }
    });
  });
}

function printStatus(s) {
  const j = s.journal || {};
  const t = s.transport || {};
  console.log(`status: device ${s.device_id}`);
  console.log(`status: authority ${s.authority_id}`);
  console.log(`status: version ${s.version}`);
  console.log(`status: facts ${j.fact_count} namespaces ${j.namespace_count} last_seq ${j.last_seq}`);
  console.log(`status: connected_peers ${t.connected_peers}`);
  for (const a of s.listen_addrs || []) {
    console.log(`status: listen ${a}`);
  }
}

// watchFor streams facts of the appended fact's namespace and type, from just
// before its seq, until the one with id arrives.
function watchFor(journal, appended, deadline) {
  return new Promise((resolve, reject) => {
    const after = (BigInt(appended.seq) - 1n).toString();
    const call = journal.WatchFacts(
      { namespace: appended.namespace, type_id: FACT_TYPE, after_seq: after },
      { deadline },
    );
    let done = false;
    call.on('data', (msg) => {
      const f = msg.fact;
      if (!f || done) {
        return;
      }
      console.log(`watched: ${f.id} seq ${f.seq} type ${f.type_id} payload ${JSON.stringify(f.payload.toString('utf8'))}`);
      if (f.id === appended.id) {
        done = true;
        call.cancel();
        resolve(f);
      }
    });
    call.on('error', (err) => {
      if (!done) {
        done = true;
        reject(new Error(`WatchFacts: ${describe(err)}`));
      }
    });
    call.on('end', () => {
      if (!done) {
        done = true;
        reject(new Error('WatchFacts: stream ended before the appended fact came back'));
      }
    });
  });
}

async function run(opts) {
  const { NodeService, JournalService } = loadServices(protoDir());
  // grpc-js takes unix:<absolute path>; a relative one is made absolute.
  const target = `unix:${path.resolve(opts.socket)}`;
  const creds = grpc.credentials.createInsecure();
  const node = new NodeService(target, creds);
  const journal = new JournalService(target, creds, { channelOverride: node.getChannel() });
  const deadline = new Date(Date.now() + opts.timeoutMs);
  try {
    const status = await unary(node, 'GetStatus', {}, deadline);
    printStatus(status);
    const appended = await unary(journal, 'AppendFact', {
      type_id: FACT_TYPE,
      schema_version: 1,
      payload: Buffer.from(opts.payload, 'utf8'),
    }, deadline);
    console.log(`appended: ${appended.id} namespace ${appended.namespace} seq ${appended.seq}`);
    const seen = await watchFor(journal, appended, deadline);
    console.log(`seen: ${seen.id}`);
  } finally {
    node.close();
  }
}

async function main() {
  let opts;
  try {
    opts = parse(process.argv.slice(2));
  } catch (err) {
    console.error(`error: ${err.message} (--help for usage)`);
    return EXIT_USAGE;
  }
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  try {
    await run(opts);
    return 0;
  } catch (err) {
    let msg = String(err.message).split('\n')[0];
    if (err instanceof Unreachable) {
      msg = `no daemon answers at ${path.resolve(opts.socket)} (${msg}): is aurad running?`;
    }
    console.error(`error: ${msg}`);
    return EXIT_FAILED;
  }
}

main().then((code) => {
  process.exitCode = code;
});
