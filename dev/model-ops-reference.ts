/**
 * Float64 references of the decoder's layer ops (native/model/ops.h), each forward beside its
 * backward, written from the textbook definitions for reading, not speed. Tests compare the float32
 * kernels (through the dev addon's modelDev entry points) to these, and these backwards to central
 * differences of these forwards. Shapes as in ops.h: a row is one token.
 */

export type Vec = Float64Array;

const f64 = (x: ArrayLike<number>): Vec => Float64Array.from(x);

// ---- RMSNorm: y = x / sqrt(mean(x²) + eps) * w ----

/** x [N, d], w [d] -> y [N, d], rstd [N] */
export function rmsNorm(x: ArrayLike<number>, w: ArrayLike<number>, N: number, d: number, eps: number): { y: Vec; rstd: Vec } {
  const y = new Float64Array(N * d), rstd = new Float64Array(N);
  for (let t = 0; t < N; t++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += x[t * d + j]! ** 2;
    const r = 1 / Math.sqrt(ss / d + eps);
    rstd[t] = r;
    for (let j = 0; j < d; j++) y[t * d + j] = x[t * d + j]! * r * w[j]!;
  }
  return { y, rstd };
}

/** dy [N, d] -> dx [N, d], dw [d]: with r = (mean(x²) + eps)^(-1/2), dr/dx_k = -r³ x_k / d. */
export function rmsNormBackward(dy: ArrayLike<number>, x: ArrayLike<number>, w: ArrayLike<number>, N: number, d: number,
  eps: number): { dx: Vec; dw: Vec } {
  const { rstd } = rmsNorm(x, w, N, d, eps);
  const dx = new Float64Array(N * d), dw = new Float64Array(d);
  for (let t = 0; t < N; t++) {
    const r = rstd[t]!;
    for (let k = 0; k < d; k++) {
      // y_j = x_j r w_j  =>  dy_j/dx_k = w_j (δ_jk r + x_j dr/dx_k)
      let s = 0;
      for (let j = 0; j < d; j++) s += dy[t * d + j]! * w[j]! * ((j === k ? r : 0) + x[t * d + j]! * (-(r ** 3) * x[t * d + k]! / d));
      dx[t * d + k] = s;
      dw[k]! += dy[t * d + k]! * x[t * d + k]! * r;
    }
  }
  return { dx, dw };
}

// ---- rotary positions: pair (i, i + hd/2) of every q and k head turned by pos * theta^(-2i/hd) ----

function rotate(qkv: ArrayLike<number>, N: number, d: number, heads: number, positions: ArrayLike<number>, theta: number, sign: number): Vec {
  const out = f64(qkv), hd = d / heads, half = hd / 2;
  for (let t = 0; t < N; t++)
    for (const part of [0, 1]) // q, then k; v is left as it is
      for (let h = 0; h < heads; h++)
        for (let i = 0; i < half; i++) {
          const a = positions[t]! * theta ** (-2 * i / hd), c = Math.cos(a), s = sign * Math.sin(a);
          const at = t * 3 * d + part * d + h * hd + i;
          const x1 = qkv[at]!, x2 = qkv[at + half]!;
          out[at] = x1 * c - x2 * s;
          out[at + half] = x2 * c + x1 * s;
        }
  return out;
}
/** qkv [N, 3d] -> rotated copy */
export const rope = (qkv: ArrayLike<number>, N: number, d: number, heads: number, positions: ArrayLike<number>, theta: number): Vec =>
  rotate(qkv, N, d, heads, positions, theta, 1);
/** dout [N, 3d] -> dqkv: the rotation is orthogonal, so its transpose (the inverse rotation). */
export const ropeBackward = (dout: ArrayLike<number>, N: number, d: number, heads: number, positions: ArrayLike<number>, theta: number): Vec =>
  rotate(dout, N, d, heads, positions, theta, -1);

// ---- causal softmax attention, all heads: qkv [T, 3d] = (q | k | v) ----

/** qkv [T, 3d] -> p [H, T, T] (0 above the diagonal), out [T, d] */
export function attention(qkv: ArrayLike<number>, T: number, d: number, heads: number): { p: Vec; out: Vec } {
  const hd = d / heads, scale = 1 / Math.sqrt(hd);
  const p = new Float64Array(heads * T * T), out = new Float64Array(T * d);
  const q = (t: number, h: number, j: number) => qkv[t * 3 * d + h * hd + j]!;
  const k = (t: number, h: number, j: number) => qkv[t * 3 * d + d + h * hd + j]!;
  const v = (t: number, h: number, j: number) => qkv[t * 3 * d + 2 * d + h * hd + j]!;
  for (let h = 0; h < heads; h++)
    for (let t = 0; t < T; t++) {
      const s: number[] = [];
      for (let u = 0; u <= t; u++) {
        let dot = 0;
        for (let j = 0; j < hd; j++) dot += q(t, h, j) * k(u, h, j);
        s.push(dot * scale);
      }
      const mx = Math.max(...s);
      const e = s.map((x) => Math.exp(x - mx)), sum = e.reduce((a, b) => a + b, 0);
      for (let u = 0; u <= t; u++) p[(h * T + t) * T + u] = e[u]! / sum;
      for (let j = 0; j < hd; j++) {
        let o = 0;
        for (let u = 0; u <= t; u++) o += p[(h * T + t) * T + u]! * v(u, h, j);
        out[t * d + h * hd + j] = o;
      }
    }
  return { p, out };
}

/**
 * dout [T, d] -> dqkv [T, 3d]. Per head, O = P V with P = softmax(S), S = Q Kᵀ / sqrt(hd) (causal):
 * dV = Pᵀ dO; dP = dO Vᵀ; dS_tu = P_tu (dP_tu - Σ_u' P_tu' dP_tu'); dQ = dS K / sqrt(hd); dK = dSᵀ Q / sqrt(hd).
 */
export function attentionBackward(dout: ArrayLike<number>, qkv: ArrayLike<number>, T: number, d: number, heads: number): Vec {
  const hd = d / heads, scale = 1 / Math.sqrt(hd);
  const { p } = attention(qkv, T, d, heads);
  const dqkv = new Float64Array(T * 3 * d);
  const at = (part: number, t: number, h: number, j: number) => t * 3 * d + part * d + h * hd + j;
  for (let h = 0; h < heads; h++)
    for (let t = 0; t < T; t++) {
      const P = (u: number) => p[(h * T + t) * T + u]!;
      const dP: number[] = [];
      for (let u = 0; u <= t; u++) {
        let s = 0;
        for (let j = 0; j < hd; j++) s += dout[t * d + h * hd + j]! * qkv[at(2, u, h, j)]!;
        dP.push(s);
        for (let j = 0; j < hd; j++) dqkv[at(2, u, h, j)]! += P(u) * dout[t * d + h * hd + j]!;
      }
      let dot = 0;
      for (let u = 0; u <= t; u++) dot += P(u) * dP[u]!;
      for (let u = 0; u <= t; u++) {
        const dS = P(u) * (dP[u]! - dot) * scale;
        for (let j = 0; j < hd; j++) {
          dqkv[at(0, t, h, j)]! += dS * qkv[at(1, u, h, j)]!;
          dqkv[at(1, u, h, j)]! += dS * qkv[at(0, t, h, j)]!;
        }
      }
    }
  return dqkv;
}

// ---- MLP nonlinearities ----

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** gu [N, 2h] = (gate | up) -> act [N, h] = silu(gate) * up */
export function swiGlu(gu: ArrayLike<number>, N: number, h: number): Vec {
  const act = new Float64Array(N * h);
  for (let t = 0; t < N; t++)
    for (let j = 0; j < h; j++) {
      const g = gu[t * 2 * h + j]!, u = gu[t * 2 * h + h + j]!;
      act[t * h + j] = g * sigmoid(g) * u;
    }
  return act;
}
/** dact [N, h] -> dgu [N, 2h]: d silu(g)/dg = σ(g) + g σ(g) (1 - σ(g)). */
export function swiGluBackward(dact: ArrayLike<number>, gu: ArrayLike<number>, N: number, h: number): Vec {
  const dgu = new Float64Array(N * 2 * h);
  for (let t = 0; t < N; t++)
    for (let j = 0; j < h; j++) {
      const g = gu[t * 2 * h + j]!, u = gu[t * 2 * h + h + j]!, s = sigmoid(g), da = dact[t * h + j]!;
      dgu[t * 2 * h + j] = da * u * (s + g * s * (1 - s));
      dgu[t * 2 * h + h + j] = da * g * s;
    }
  return dgu;
}

const GELU_C = Math.sqrt(2 / Math.PI);
/** u [N, h] -> 0.5 u (1 + tanh(c (u + 0.044715 u³))) (the tanh approximation) */
export function gelu(u: ArrayLike<number>): Vec {
  return Float64Array.from(u, (x) => 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x ** 3))));
}
export function geluBackward(dact: ArrayLike<number>, u: ArrayLike<number>): Vec {
  return Float64Array.from(u, (x, i) => {
    const th = Math.tanh(GELU_C * (x + 0.044715 * x ** 3));
    return dact[i]! * (0.5 * (1 + th) + 0.5 * x * (1 - th * th) * GELU_C * (1 + 3 * 0.044715 * x * x));
  });
}

// ---- embedding (the same table is the tied output layer) ----

/** tokens [N] (-1: zeros) -> x [N, d] */
export function embedding(tokens: ArrayLike<number>, table: ArrayLike<number>, d: number): Vec {
  const x = new Float64Array(tokens.length * d);
  for (let t = 0; t < tokens.length; t++) if (tokens[t]! >= 0) for (let j = 0; j < d; j++) x[t * d + j] = table[tokens[t]! * d + j]!;
  return x;
}
/** dx [N, d] -> dtable [V, d]: rows of repeated tokens add up. */
export function embeddingBackward(dx: ArrayLike<number>, tokens: ArrayLike<number>, V: number, d: number): Vec {
  const g = new Float64Array(V * d);
  for (let t = 0; t < tokens.length; t++) if (tokens[t]! >= 0) for (let j = 0; j < d; j++) g[tokens[t]! * d + j]! += dx[t * d + j]!;
  return g;
}

// ---- cross-entropy over rows of logits (pre-training) ----

/** logits [R, V], targets [R] (-1: ignored) -> mean -log softmax(z)[target] and its gradient (softmax - onehot) / count. */
export function crossEntropy(z: ArrayLike<number>, targets: ArrayLike<number>, V: number): { loss: number; grad: Vec } {
  const R = targets.length, grad = new Float64Array(R * V);
  let count = 0;
  for (let r = 0; r < R; r++) count += targets[r]! >= 0 ? 1 : 0;
  let loss = 0;
  for (let r = 0; r < R; r++) {
    if (targets[r]! < 0) continue;
    let mx = -Infinity;
    for (let v = 0; v < V; v++) mx = Math.max(mx, z[r * V + v]!);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(z[r * V + v]! - mx);
    const lse = mx + Math.log(s);
    loss += lse - z[r * V + targets[r]!]!;
    for (let v = 0; v < V; v++) grad[r * V + v] = (Math.exp(z[r * V + v]! - lse) - (v === targets[r] ? 1 : 0)) / count;
  }
  return { loss: count ? loss / count : 0, grad };
}

// ---- AdamW and its learning-rate schedule ----

export interface Optim { lr: number; minLr: number; warmup: number; totalSteps: number; beta1: number; beta2: number; eps: number; weightDecay: number }

/** Linear warm-up over `warmup` steps (step counts from 0), then cosine from lr to minLr at totalSteps, constant after. */
export function learningRate(o: Optim, step: number): number {
  if (o.warmup > 0 && step < o.warmup) return (o.lr * (step + 1)) / o.warmup;
  if (o.totalSteps <= o.warmup) return o.lr;
  const progress = Math.min(1, (step - o.warmup) / (o.totalSteps - o.warmup));
  return o.minLr + 0.5 * (o.lr - o.minLr) * (1 + Math.cos(Math.PI * progress));
}

/** One AdamW step (step counts from 1) on a copy of p with gradient g * gscale; decoupled decay where decay[i] != 0. */
export function adamw(p: ArrayLike<number>, g: ArrayLike<number>, m: ArrayLike<number>, v: ArrayLike<number>, decay: ArrayLike<number>,
  o: Optim, lr: number, step: number, gscale: number): { p: Vec; m: Vec; v: Vec } {
  const P = f64(p), M = f64(m), Vv = f64(v);
  for (let i = 0; i < P.length; i++) {
    const gi = g[i]! * gscale;
    M[i] = o.beta1 * M[i]! + (1 - o.beta1) * gi;
    Vv[i] = o.beta2 * Vv[i]! + (1 - o.beta2) * gi * gi;
    const mHat = M[i]! / (1 - o.beta1 ** step), vHat = Vv[i]! / (1 - o.beta2 ** step);
    P[i] = (decay[i] ? P[i]! * (1 - lr * o.weightDecay) : P[i]!) - (lr * mHat) / (Math.sqrt(vHat) + o.eps);
  }
  return { p: P, m: M, v: Vv };
}

/** Global L2 norm. */
export function gradNorm(g: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < g.length; i++) s += g[i]! ** 2;
  return Math.sqrt(s);
}
