/**
 * The emulated container image: program lookup, busybox/dash-like output and statuses, the
 * sh -c subset, and that long outputs wait for their reader.
 */
import assert from 'node:assert/strict';
import { PassThrough, Readable, Writable } from 'node:stream';
import { test } from 'node:test';
import {
  parseSize,
  resolveProgram,
  runProgram,
} from '../../../src/demo/fake-apiserver/streaming/commands.js';
import {
  ExecutableNotFoundError,
  ProcessKilledError,
} from '../../../src/demo/fake-apiserver/streaming/errors.js';
import type { ProcessIo } from '../../../src/demo/fake-apiserver/streaming/process-io.js';
import { TEST_USER } from './test-harness.js';

interface Run {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

function collector(): { stream: Writable; text(): string } {
  const chunks: Buffer[] = [];
  return {
    stream: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    }),
    text: () => Buffer.concat(chunks).toString(),
  };
}

async function run(argv: readonly string[], stdin = ''): Promise<Run> {
  const stdout = collector();
  const stderr = collector();
  const io: ProcessIo = {
    stdin: Readable.from(stdin === '' ? [] : [Buffer.from(stdin)]),
    stdout: stdout.stream,
    stderr: stderr.stream,
    signal: new AbortController().signal,
    identity: { user: TEST_USER, pod: 'demo', terminal: null },
  };
  const status = await runProgram(resolveProgram(argv[0] as string), argv.slice(1), io);
  return { status, stdout: stdout.text(), stderr: stderr.text() };
}

test('programs resolve by name or by a $PATH directory; anything else is not found', () => {
  assert.doesNotThrow(() => resolveProgram('echo'));
  assert.doesNotThrow(() => resolveProgram('/bin/sh'));
  assert.doesNotThrow(() => resolveProgram('/usr/bin/head'));
  assert.throws(() => resolveProgram('bash5'), ExecutableNotFoundError);
  assert.throws(() => resolveProgram('/tmp/echo'), ExecutableNotFoundError);
  assert.throws(() => resolveProgram('./sh'), ExecutableNotFoundError);
});

test('echo, printf, true, false, id, whoami', async () => {
  assert.deepEqual(await run(['echo', 'hi', 'there']), {
    status: 0,
    stdout: 'hi there\n',
    stderr: '',
  });
  assert.equal((await run(['echo', '-n', 'x'])).stdout, 'x');
  assert.equal((await run(['echo', '-e', 'a\\tb'])).stdout, 'a\tb\n');
  assert.equal((await run(['printf', '%s-%d\\n', 'a', '7', 'b', '8'])).stdout, 'a-7\nb-8\n');
  assert.equal((await run(['true'])).status, 0);
  assert.equal((await run(['false'])).status, 1);
  assert.equal(
    (await run(['id'])).stdout,
    'uid=1000(alice) gid=1000(alice) groups=1000(alice),1001(dev),1002(system:authenticated)\n',
  );
  assert.equal((await run(['id', '-un'])).stdout, 'alice\n');
  assert.equal((await run(['id', '-Gn'])).stdout, 'alice dev system:authenticated\n');
  assert.equal((await run(['whoami'])).stdout, 'alice\n');
  assert.equal((await run(['hostname'])).stdout, 'demo\n');
});

test('cat copies stdin; head -c/-n; devices stream', async () => {
  assert.equal((await run(['cat'], 'abc\ndef')).stdout, 'abc\ndef');
  assert.deepEqual(await run(['cat', '/etc/nope']), {
    status: 1,
    stdout: '',
    stderr: 'cat: /etc/nope: No such file or directory\n',
  });
  assert.equal((await run(['head', '-c', '3'], 'abcdef')).stdout, 'abc');
  assert.equal((await run(['head', '-n', '2'], 'a\nb\nc\n')).stdout, 'a\nb\n');
  const zeros = await run(['head', '-c', '100K', '/dev/zero']);
  assert.equal(zeros.stdout.length, 100 * 1024);
  assert.ok(/^\0+$/.test(zeros.stdout));
  assert.equal((await run(['head', '-c1000', '/dev/urandom'])).status, 0);
  assert.equal(parseSize('200M'), 200 * 1024 * 1024);
  assert.equal(parseSize('1kB'), 1000);
  assert.equal(parseSize('2MB'), 2_000_000);
  assert.equal(parseSize('x'), null);
});

test('sh -c: sequencing, && ||, exit codes, quoting, parameters', async () => {
  assert.deepEqual(await run(['sh', '-c', 'exit 3']), { status: 3, stdout: '', stderr: '' });
  assert.deepEqual(await run(['sh', '-c', 'echo X; exit 7']), {
    status: 7,
    stdout: 'X\n',
    stderr: '',
  });
  assert.equal((await run(['sh', '-c', 'false && echo no || echo yes'])).stdout, 'yes\n');
  assert.equal((await run(['sh', '-c', 'true && echo a; false; echo $?'])).stdout, 'a\n1\n');
  assert.equal(
    (await run(['sh', '-c', `echo 'single  $x' "double $0 \\"q\\"" a\\ b`, 'me'])).stdout,
    'single  $x double me "q" a b\n',
  );
  assert.equal((await run(['sh', '-c', 'echo "$1-$2" $#', 'sh', 'p1', 'p2'])).stdout, 'p1-p2 2\n');
  assert.equal((await run(['sh', '-c', 'echo one\necho two # comment'])).stdout, 'one\ntwo\n');
  assert.equal((await run(['sh', '-c', 'sleep 0.01; echo slept'])).stdout, 'slept\n');
  assert.equal((await run(['bash', '-c', 'exec echo replaced; echo never'])).stdout, 'replaced\n');
  assert.equal((await run(['sh', '-c', 'exit'])).status, 0);
});

test('sh -c: redirections and pipelines', async () => {
  assert.deepEqual(await run(['sh', '-c', 'echo err >&2; echo out']), {
    status: 0,
    stdout: 'out\n',
    stderr: 'err\n',
  });
  assert.deepEqual(await run(['sh', '-c', 'echo both 2>&1 1>&2']), {
    status: 0,
    stdout: 'both\n',
    stderr: '',
  });
  assert.deepEqual(await run(['sh', '-c', 'echo e 1>&2 2>/dev/null']), {
    status: 0,
    stdout: '',
    stderr: 'e\n',
  });
  assert.equal((await run(['sh', '-c', 'echo gone >/dev/null; echo kept'])).stdout, 'kept\n');
  assert.equal((await run(['sh', '-c', 'echo abcdef | head -c 3'])).stdout, 'abc');
  assert.equal((await run(['sh', '-c', 'cat | cat | head -n 1'], 'l1\nl2\n')).stdout, 'l1\n');
  // The writer of a pipe whose reader left gets SIGPIPE (141), like `yes | head -c 1`.
  const broken = await run(['sh', '-c', 'head -c 10M /dev/zero | head -c 1; echo " $?"']);
  assert.equal(broken.stdout, '\0 0\n');
});

test('sh: unknown commands, unsupported syntax, errors as dash reports them', async () => {
  assert.deepEqual(await run(['sh', '-c', 'nosuch arg']), {
    status: 127,
    stdout: '',
    stderr: 'sh: 1: nosuch: not found\n',
  });
  assert.equal((await run(['sh', '-c', 'echo a\nnosuch'])).stderr, 'sh: 2: nosuch: not found\n');
  const syntax = await run(['sh', '-c', 'echo $(id)']);
  assert.equal(syntax.status, 2);
  assert.match(syntax.stderr, /^sh: 1: "\$\(" is not supported/);
  assert.equal((await run(['sh', '-c', '&& echo'])).status, 2);
  assert.equal((await run(['sh', '-c', 'echo "open'])).status, 2);
  assert.equal((await run(['sh', '-c', 'echo x > /etc/file'])).status, 2);
  assert.equal((await run(['sh', '-c'])).status, 2);
});

test('sh without -c runs stdin line by line', async () => {
  const result = await run(['sh'], 'echo first\nexit 5\necho never\n');
  assert.deepEqual(result, { status: 5, stdout: 'first\n', stderr: '' });
});

test('a killed process stops at its next write or wait', async () => {
  const controller = new AbortController();
  const stdout = new PassThrough({ highWaterMark: 1024 });
  const io: ProcessIo = {
    stdin: Readable.from([]),
    stdout,
    stderr: collector().stream,
    signal: controller.signal,
    identity: { user: TEST_USER, pod: 'demo', terminal: null },
  };
  // Nobody reads stdout: the producer must be parked on backpressure, not buffering.
  const running = runProgram(resolveProgram('cat'), ['/dev/zero'], io);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(stdout.readableLength <= 128 * 1024, `${stdout.readableLength} bytes buffered`);
  controller.abort();
  await assert.rejects(running, ProcessKilledError);

  const sleeping = new AbortController();
  const sleeper = runProgram(resolveProgram('sleep'), ['100'], { ...io, signal: sleeping.signal });
  sleeping.abort();
  await assert.rejects(sleeper, ProcessKilledError);
});
