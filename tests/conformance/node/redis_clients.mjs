// Node Redis clients against switchboard's Redis-protocol broker (examples/broker):
//   node redis_clients.mjs ioredis PORT [PASSWORD]      ioredis (RESP2: it has no RESP3)
//   node redis_clients.mjs node-redis PORT [PASSWORD]   node-redis with RESP3 (HELLO 3, push messages)
// Each subscribes to a channel, a pattern and a shard channel, publishes from a second connection, and checks what
// arrives and what the commands answer. Prints one JSON line; exits 0 when every check passed.
import Redis from 'ioredis';
import { createClient } from 'redis';

const [mode, port, password] = process.argv.slice(2);
const result = { mode, checks: 0, errors: [] };
const timer = setTimeout(() => fail('timeout'), 10000);

function check(what, got, want) {
  result.checks++;
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    result.errors.push(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}
function fail(e) {
  result.errors.push(String(e));
  finish();
}
function finish() {
  clearTimeout(timer);
  console.log(JSON.stringify(result));
  process.exit(result.errors.length === 0 && result.checks > 0 ? 0 : 1);
}
// Resolves once `count` events were collected by `sink`.
function collect(count) {
  const got = [];
  let done;
  const all = new Promise((resolve) => { done = resolve; });
  return { got, all, push: (x) => { got.push(x); if (got.length === count) done(got); } };
}

async function ioredis() {
  const options = { port: Number(port), host: '127.0.0.1', password, connectionName: 'ioredis-sub', lazyConnect: true };
  const sub = new Redis(options);
  const pub = new Redis({ ...options, connectionName: 'ioredis-pub' });
  await sub.connect();
  await pub.connect();
  check('ping', await pub.ping(), 'PONG');
  check('echo', await pub.echo('hello'), 'hello');
  check('getname', await pub.client('GETNAME'), 'ioredis-pub');
  check('unknown command', await pub.call('GET', 'k').catch((e) => e.message),
        "ERR unknown command 'GET', with args beginning with: 'k' ");
  const events = collect(3);
  sub.on('message', (channel, message) => events.push(['message', channel, message]));
  sub.on('pmessage', (pattern, channel, message) => events.push(['pmessage', pattern, channel, message]));
  sub.on('smessage', (channel, message) => events.push(['smessage', channel, message]));
  check('subscribe', await sub.subscribe('news'), 1);
  check('psubscribe', await sub.psubscribe('n*'), 2);
  check('ssubscribe', await sub.ssubscribe('shard'), 1);
  check('numsub', await pub.pubsub('NUMSUB', 'news'), ['news', 1]);
  check('numpat', await pub.pubsub('NUMPAT'), 1);
  check('publish', await pub.publish('news', 'hi'), 2);
  check('spublish', await pub.spublish('shard', 'sharded'), 1);
  const got = (await events.all).map((e) => JSON.stringify(e)).sort();
  check('deliveries', got, [
    JSON.stringify(['message', 'news', 'hi']),
    JSON.stringify(['pmessage', 'n*', 'news', 'hi']),
    JSON.stringify(['smessage', 'shard', 'sharded']),
  ]);
  // In subscribed mode ioredis refuses other commands itself; PING is allowed, and answered in the RESP2 form.
  check('ping in subscribed mode', await sub.ping(), ['pong', '']);
  await sub.unsubscribe('news');
  await sub.punsubscribe();
  await sub.sunsubscribe();
  check('publish after unsubscribe', await pub.publish('news', 'nobody'), 0);
  check('quit', await pub.quit(), 'OK');
  await sub.quit();
}

async function nodeRedis() {
  const url = `redis://${password ? `default:${password}@` : ''}127.0.0.1:${port}`;
  const pub = createClient({ url, RESP: 3, name: 'node-redis-pub' });
  pub.on('error', (e) => result.errors.push(`pub: ${e}`));
  await pub.connect();
  const sub = pub.duplicate({ name: 'node-redis-sub' });
  sub.on('error', (e) => result.errors.push(`sub: ${e}`));
  await sub.connect();
  check('ping', await pub.ping(), 'PONG');
  check('echo', await pub.echo('hello'), 'hello');
  check('getname', await pub.clientGetName(), 'node-redis-pub');
  check('hello proto', (await pub.sendCommand(['HELLO', '3'])).proto, 3);
  const events = collect(3);
  await sub.subscribe('news', (message, channel) => events.push(['message', channel, message]));
  await sub.pSubscribe('n*', (message, channel) => events.push(['pmessage', channel, message]));
  await sub.sSubscribe('shard', (message, channel) => events.push(['smessage', channel, message]));
  check('numsub', await pub.pubSubNumSub('news'), { news: 1 });
  check('publish', await pub.publish('news', 'hi'), 2);
  check('spublish', await pub.sPublish('shard', 'sharded'), 1);
  const got = (await events.all).map((e) => JSON.stringify(e)).sort();
  check('deliveries', got, [
    JSON.stringify(['message', 'news', 'hi']),
    JSON.stringify(['pmessage', 'news', 'hi']),
    JSON.stringify(['smessage', 'shard', 'sharded']),
  ]);
  // RESP3: a subscribed connection may run any command.
  check('echo while subscribed', await sub.echo('still here'), 'still here');
  await sub.unsubscribe('news');
  await sub.pUnsubscribe('n*');
  await sub.sUnsubscribe('shard');
  check('publish after unsubscribe', await pub.publish('news', 'nobody'), 0);
  await sub.quit();
  await pub.quit();
}

(mode === 'ioredis' ? ioredis() : nodeRedis()).then(finish, fail);
