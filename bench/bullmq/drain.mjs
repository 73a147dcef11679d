// BullMQ's drain, the peer in onboard-bench's drain-stub scenario (run by
// bench/src/scenarios/bullmq.rs; `npm ci` here first).
//
//   node drain.mjs REDIS_URL JOBS
//
// Adds JOBS create-customer payloads with addBulk (10,000 a call, untimed), then runs a
// Worker with a no-op processor at concurrency 50, completed jobs kept (BullMQ's
// default), and times it from the first job processed to the JOBS-th `completed` event.
// Prints one JSON line: {"jobs": N, "seconds": S, "jobs_per_sec": R, "bullmq": VERSION}.
import { Queue, Worker } from 'bullmq';
import { createRequire } from 'node:module';

const [url, jobsArg] = process.argv.slice(2);
const jobs = Number(jobsArg);
if (!url || !Number.isInteger(jobs) || jobs < 1) {
  console.error('usage: node drain.mjs REDIS_URL JOBS');
  process.exit(2);
}
const { hostname, port } = new URL(url);
const connection = { host: hostname, port: Number(port) };
const version = createRequire(import.meta.url)('bullmq/package.json').version;

const queue = new Queue('bench-drain', { connection });
for (let i = 0; i < jobs; i += 10000) {
  const chunk = [];
  for (let j = i; j < Math.min(jobs, i + 10000); j++) {
    chunk.push({
      name: 'create-customer',
      // The payload the bench's other drains use (scenarios/mod.rs, customer_payload).
      data: { customer_id: `c${j}`, country_code: '86', phone_number: `1380000${String(j % 10000).padStart(4, '0')}` },
    });
  }
  await queue.addBulk(chunk);
}

let first = 0;
let completed = 0;
const seconds = await new Promise((resolve, reject) => {
  const worker = new Worker('bench-drain', async () => {
    if (!first) first = performance.now();
    return {};
  }, { connection, concurrency: 50 });
  worker.on('error', reject);
  worker.on('completed', () => {
    completed += 1;
    if (completed === jobs) {
      const took = (performance.now() - first) / 1000;
      worker.close().then(() => resolve(took), reject);
    }
  });
});
await queue.close();
console.log(JSON.stringify({ jobs, seconds, jobs_per_sec: jobs / seconds, bullmq: version }));
process.exit(0);
