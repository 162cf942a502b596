// Seeded random numbers for pages that must draw the same numbers every time
// (the live meta-training of the Comparison page draws its tasks and its
// starting weights with these, in a Web Worker).
//
//   const random = seededRandom(7, "tasks");   // () => a float in [0, 1)
//   random();                                  // the same sequence for the same (seed, stream)
//
// mulberry32, seeded from the seed and the name of the stream, so that the
// tasks, the initial weights and the held-out tasks are independent streams.

/** A generator of floats in [0, 1), the same sequence for the same seed and stream name. */
export function seededRandom(seed, stream = "") {
  let h = (Number(seed) >>> 0) ^ 0x9e3779b9;
  for (let i = 0; i < stream.length; i++) h = Math.imul(h ^ stream.charCodeAt(i), 0x85ebca6b) >>> 0;
  let t = Math.imul(h ^ (h >>> 16), 0xc2b2ae35) >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniform draw in [lo, hi). */
export function uniform(random, [lo, hi]) {
  return lo + (hi - lo) * random();
}

/**
 * T sinusoid tasks y = A·sin(x + φ), A, φ and every x uniform in the family's
 * ranges ({amplitude, phase, x} as the manifest's task field has them), with K
 * support and Q query points each. Returns {support_x, support_y, query_x,
 * query_y} (Float32Array, laid out [T, K, 1] and [T, Q, 1]) and the tasks [{a, phase}].
 * With `out` (those four arrays, of those sizes) it draws into them instead and
 * returns `out`, without the tasks: the same numbers, without allocating (the
 * live training draws a batch every meta-iteration).
 */
export function sinusoidBatch(random, family, tasks, k, q, out = null) {
  const [a0, a1] = family.amplitude;
  const [p0, p1] = family.phase;
  const [x0, x1] = family.x;
  const list = out ? null : [];
  out ??= {
    support_x: new Float32Array(tasks * k), support_y: new Float32Array(tasks * k),
    query_x: new Float32Array(tasks * q), query_y: new Float32Array(tasks * q), tasks: list,
  };
  for (let t = 0; t < tasks; t++) {
    const a = a0 + (a1 - a0) * random();                 // uniform(random, family.amplitude), inline
    const phase = p0 + (p1 - p0) * random();
    list?.push({ a, phase });
    for (let i = 0; i < k; i++) {
      const x = x0 + (x1 - x0) * random();
      out.support_x[t * k + i] = x;
      out.support_y[t * k + i] = a * Math.sin(x + phase);
    }
    for (let i = 0; i < q; i++) {
      const x = x0 + (x1 - x0) * random();
      out.query_x[t * q + i] = x;
      out.query_y[t * q + i] = a * Math.sin(x + phase);
    }
  }
  return out;
}

/** θ of the 1-40-40-1 network, flat (w1, b1, w2, b2, w3, b3, row-major), drawn as
 *  PyTorch's default Linear initialisation draws it: U(−1/√fan_in, 1/√fan_in). */
export function initialParams(random, sizes = [1, 40, 40, 1]) {
  const values = [];
  for (let layer = 0; layer + 1 < sizes.length; layer++) {
    const [fanIn, fanOut] = [sizes[layer], sizes[layer + 1]];
    const bound = 1 / Math.sqrt(fanIn);
    for (let i = 0; i < fanIn * fanOut + fanOut; i++) values.push((random() * 2 - 1) * bound);
  }
  return Float32Array.from(values);
}
