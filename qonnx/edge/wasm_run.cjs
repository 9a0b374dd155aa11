// qonnx's wasm target: load one ONNX model with onnxruntime-web's WebAssembly backend in Node.js,
// run the given inputs, time batch-1 calls and report the process's peak memory.
// Usage: node wasm_run.cjs JOB.json  (written by qonnx/edge/wasm.py; the answer goes to job.result)
'use strict';
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const ARRAYS = {
  float32: Float32Array, float16: Uint16Array, float64: Float64Array, int64: BigInt64Array,
  int32: Int32Array, int16: Int16Array, int8: Int8Array, uint64: BigUint64Array, uint32: Uint32Array,
  uint16: Uint16Array, uint8: Uint8Array, bool: Uint8Array,
};

function answer(doc) {
  fs.writeFileSync(job.result, JSON.stringify(doc));
}

function tensor(ort, spec) {
  const bytes = fs.readFileSync(spec.file);
  const Arr = ARRAYS[spec.type];
  const copy = new Uint8Array(bytes).buffer;  // an aligned copy
  return new ort.Tensor(spec.type, new Arr(copy, 0, copy.byteLength / Arr.BYTES_PER_ELEMENT), spec.dims);
}

async function main() {
  const ort = createRequire(path.join(job.prefix, 'package.json'))('onnxruntime-web');
  ort.env.wasm.numThreads = job.threads;
  ort.env.logLevel = 'error';
  const baseline = process.memoryUsage().rss;
  const options = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };
  if (job.external_data.length) {
    options.externalData = job.external_data.map((name) => ({ path: name, data: path.join(job.folder, name) }));
  }
  let session;
  const t0 = performance.now();
  try {
    session = await ort.InferenceSession.create(job.model, options);
  } catch (e) {
    answer({ ok: false, stage: 'session', error: String(e && e.message || e) });
    return;
  }
  const loadMs = performance.now() - t0;
  const feeds = job.cases.map((c) => Object.fromEntries(c.map((s) => [s.name, tensor(ort, s)])));
  const outputs = [];
  try {
    for (let i = 0; i < (job.save_outputs ? feeds.length : 0); i++) {
      const got = await session.run(feeds[i]);
      outputs.push(session.outputNames.map((name, j) => {
        const t = got[name];
        const file = path.join(job.work, `out-${i}-${j}.bin`);
        fs.writeFileSync(file, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
        return { name, type: t.type, dims: t.dims, file };
      }));
    }
    for (let i = 0; i < job.warmup; i++) await session.run(feeds[0]);
    const times = [];
    for (let i = 0; i < job.runs; i++) {
      const s = performance.now();
      await session.run(feeds[0]);
      times.push(performance.now() - s);
    }
    await session.release();
    answer({
      ok: true, load_ms: loadMs, outputs, times_ms: times, threads: job.threads,
      baseline_rss_mb: baseline / 2 ** 20, peak_rss_mb: process.resourceUsage().maxRSS / 1024,
      node: process.version, ort_web: ort.env.versions.web,
    });
  } catch (e) {
    answer({ ok: false, stage: 'run', error: String(e && e.message || e) });
  }
}

main().catch((e) => answer({ ok: false, stage: 'node', error: String(e && e.stack || e) }));
