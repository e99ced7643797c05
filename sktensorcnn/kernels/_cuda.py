"""numba.cuda kernels: the GPU twins of the CPU kernels.

They work on the canonical 4-mode layout of :mod:`._cpu` (samples ``(n, C, d_1,
d_2, d_3, d_4)``, kernels ``(K, C, l_1, ..., l_4)``, missing modes of size 1
first) in float64, with one thread per output entry (grid-stride loops) and the
reductions over samples done by per-chunk partial sums, then a sum over chunks:
no atomics, so results do not depend on scheduling.  Samples are addressed
through a ``rows`` index array, so that a mini-batch is a list of indices into
data that stay on the device.

Written for real devices: float64 scalars and arrays only, fixed-size shared
memory, no Python objects; the simulator (``NUMBA_ENABLE_CUDASIM=1``) runs the
same code in the tests.  Activations and losses are compiled from their
registries (:mod:`sktensorcnn.activations`, :mod:`sktensorcnn.losses`).
"""


from numba import config, cuda, float64

from ._pointwise import compile_activations, compile_losses

#: Threads per block, a power of 2 (the head's shared-memory reduction).  The
#: simulator runs each thread as a Python thread: fewer keep its tests fast.
THREADS = 8 if config.ENABLE_CUDASIM else 128
#: Most blocks per launch.  Every kernel but the head (a block per sample)
#: strides over its elements by the grid's size, so any grid computes the same;
#: the simulator starts a Python thread per thread of every block, so there a
#: few blocks, each looping over more elements, keep the tests fast.
MAX_BLOCKS = 2 if config.ENABLE_CUDASIM else 65535


#: Activation value and derivative at ``y``, compiled from the registry
#: (:mod:`sktensorcnn.activations`) like the CPU kernels'.
_activate = compile_activations(
    lambda f: cuda.jit(device=True, inline="always")(f), rows=False)["activate"]

#: Loss of one sample's outputs, ``dloss/df`` written to its row of ``G``,
#: compiled from the registry (:mod:`sktensorcnn.losses`).
_loss = compile_losses(lambda f: cuda.jit(device=True, inline="always")(f))


@cuda.jit
def features(X, pad, stride, pool, pool_stride, scale, Z):
    """``Z[i, j, c, p] = scale * sum_{u in window(p)} Xpad[i, c, u * s + j]``,
    ``Z`` ``(n, l_1..l_4, C, p_1..p_4)``."""
    n, l1, l2, l3, l4, C, p1, p2, p3, p4 = Z.shape
    d1, d2, d3, d4 = X.shape[2], X.shape[3], X.shape[4], X.shape[5]
    for t in range(cuda.grid(1), Z.size, cuda.gridsize(1)):
        q = t
        r4 = q % p4
        q //= p4
        r3 = q % p3
        q //= p3
        r2 = q % p2
        q //= p2
        r1 = q % p1
        q //= p1
        c = q % C
        q //= C
        j4 = q % l4
        q //= l4
        j3 = q % l3
        q //= l3
        j2 = q % l2
        q //= l2
        j1 = q % l1
        i = q // l1
        acc = 0.0
        for w1 in range(pool[0]):
            x1 = (r1 * pool_stride[0] + w1) * stride[0] + j1 - pad[0]
            if x1 < 0 or x1 >= d1:
                continue
            for w2 in range(pool[1]):
                x2 = (r2 * pool_stride[1] + w2) * stride[1] + j2 - pad[1]
                if x2 < 0 or x2 >= d2:
                    continue
                for w3 in range(pool[2]):
                    x3 = (r3 * pool_stride[2] + w3) * stride[2] + j3 - pad[2]
                    if x3 < 0 or x3 >= d3:
                        continue
                    for w4 in range(pool[3]):
                        x4 = (r4 * pool_stride[3] + w4) * stride[3] + j4 - pad[3]
                        if 0 <= x4 < d4:
                            acc += X[i, c, x1, x2, x3, x4]
        Z[i, j1, j2, j3, j4, c, r1, r2, r3, r4] = acc * scale


@cuda.jit
def convolve(X, rows, A, pad, stride, Y):
    """``Y[i, k, u] = sum_{c, j} A[k, c, j] Xpad[rows[i], c, u * s + j]``."""
    b, K, m1, m2, m3, m4 = Y.shape
    C, l1, l2, l3, l4 = A.shape[1], A.shape[2], A.shape[3], A.shape[4], A.shape[5]
    d1, d2, d3, d4 = X.shape[2], X.shape[3], X.shape[4], X.shape[5]
    for t in range(cuda.grid(1), Y.size, cuda.gridsize(1)):
        q = t
        u4 = q % m4
        q //= m4
        u3 = q % m3
        q //= m3
        u2 = q % m2
        q //= m2
        u1 = q % m1
        q //= m1
        k = q % K
        i = q // K
        r = rows[i]
        acc = 0.0
        for c in range(C):
            for j1 in range(l1):
                x1 = u1 * stride[0] + j1 - pad[0]
                if x1 < 0 or x1 >= d1:
                    continue
                for j2 in range(l2):
                    x2 = u2 * stride[1] + j2 - pad[1]
                    if x2 < 0 or x2 >= d2:
                        continue
                    for j3 in range(l3):
                        x3 = u3 * stride[2] + j3 - pad[2]
                        if x3 < 0 or x3 >= d3:
                            continue
                        for j4 in range(l4):
                            x4 = u4 * stride[3] + j4 - pad[3]
                            if 0 <= x4 < d4:
                                acc += A[k, c, j1, j2, j3, j4] * X[r, c, x1, x2, x3, x4]
        Y[i, k, u1, u2, u3, u4] = acc


@cuda.jit
def head(Y, Bt, intercept, act_code, F):
    """One block per sample: ``F[i, o] = <Bt[o], act(Y[i])> + intercept[o]``
    (``Y`` ``(b, S)``, ``Bt`` ``(n_out, S)`` flattened)."""
    i = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    partial = cuda.shared.array(THREADS, float64)
    S = Y.shape[1]
    for o in range(Bt.shape[0]):
        acc = 0.0
        for s in range(tid, S, THREADS):
            v, _ = _activate(act_code, Y[i, s])
            acc += v * Bt[o, s]
        partial[tid] = acc
        cuda.syncthreads()
        width = THREADS // 2
        while width > 0:
            if tid < width:
                partial[tid] += partial[tid + width]
            cuda.syncthreads()
            width //= 2
        if tid == 0:
            F[i, o] = partial[0] + intercept[o]
        cuda.syncthreads()


@cuda.jit
def sample_losses(F, targets, rows, weights, scale, loss_code, losses, G):
    """Per sample: weighted loss ``losses[i]`` and ``G[i] = w_i dloss/df``
    (weights ``weights[rows[i]] * scale``)."""
    for i in range(cuda.grid(1), F.shape[0], cuda.gridsize(1)):
        _sample_loss(F, targets, rows, weights, scale, loss_code, losses, G, i)


@cuda.jit(device=True, inline="always")
def _sample_loss(F, targets, rows, weights, scale, loss_code, losses, G, i):
    w = weights[rows[i]] * scale
    losses[i] = w * _loss(loss_code, F[i], targets[rows[i]], G[i])
    for o in range(G.shape[1]):
        G[i, o] *= w


@cuda.jit
def map_gradient(Y, Bt, G, act_code, dY):
    """``dY[i, s] = act'(Y[i, s]) sum_o G[i, o] Bt[o, s]`` (flattened)."""
    b, S = Y.shape
    for t in range(cuda.grid(1), b * S, cuda.gridsize(1)):
        i = t // S
        s = t % S
        _, slope = _activate(act_code, Y[i, s])
        acc = 0.0
        for o in range(Bt.shape[0]):
            acc += G[i, o] * Bt[o, s]
        dY[i, s] = slope * acc


@cuda.jit
def head_gradient(Y, G, act_code, D):
    """``D[o, s] = sum_i G[i, o] act(Y[i, s])``: the unpooled FC gradient."""
    n_out, S = D.shape
    for t in range(cuda.grid(1), n_out * S, cuda.gridsize(1)):
        o = t // S
        s = t % S
        acc = 0.0
        for i in range(Y.shape[0]):
            v, _ = _activate(act_code, Y[i, s])
            acc += G[i, o] * v
        D[o, s] = acc


@cuda.jit
def kernel_gradient_partials(X, rows, dY, pad, stride, chunk, partials):
    """``partials[g, k, c, j] = sum_{i in chunk g} sum_u dY[i, k, u]
    Xpad[rows[i], c, u * s + j]``."""
    b, K, m1, m2, m3, m4 = dY.shape
    C, l1, l2, l3, l4 = (partials.shape[2], partials.shape[3], partials.shape[4],
                         partials.shape[5], partials.shape[6])
    d1, d2, d3, d4 = X.shape[2], X.shape[3], X.shape[4], X.shape[5]
    for t in range(cuda.grid(1), partials.size, cuda.gridsize(1)):
        q = t
        j4 = q % l4
        q //= l4
        j3 = q % l3
        q //= l3
        j2 = q % l2
        q //= l2
        j1 = q % l1
        q //= l1
        c = q % C
        q //= C
        k = q % K
        g = q // K
        acc = 0.0
        for i in range(g * chunk, min((g + 1) * chunk, b)):
            r = rows[i]
            for u1 in range(m1):
                x1 = u1 * stride[0] + j1 - pad[0]
                if x1 < 0 or x1 >= d1:
                    continue
                for u2 in range(m2):
                    x2 = u2 * stride[1] + j2 - pad[1]
                    if x2 < 0 or x2 >= d2:
                        continue
                    for u3 in range(m3):
                        x3 = u3 * stride[2] + j3 - pad[2]
                        if x3 < 0 or x3 >= d3:
                            continue
                        for u4 in range(m4):
                            x4 = u4 * stride[3] + j4 - pad[3]
                            if 0 <= x4 < d4:
                                acc += dY[i, k, u1, u2, u3, u4] * X[r, c, x1, x2,
                                                                     x3, x4]
        partials[g, k, c, j1, j2, j3, j4] = acc


@cuda.jit
def column_sums(M, out):
    """``out[j] = sum_i M[i, j]`` (in order: deterministic)."""
    for j in range(cuda.grid(1), M.shape[1], cuda.gridsize(1)):
        acc = 0.0
        for i in range(M.shape[0]):
            acc += M[i, j]
        out[j] = acc


# ------------------------------------------------------------ factorized
# Twins of :mod:`._cpu_modewise` and of the products of :mod:`._cpu_factorized`:
# maps viewed as ``(b, G, Q, D, I)``, filter ``r`` reading group ``r`` when
# ``G > 1`` (CP, depthwise) and the only group otherwise (Tucker).


@cuda.jit
def gather_rows(X, rows, out):
    """``out[i] = X[rows[i]]`` for ``(n, S)`` views."""
    S = X.shape[1]
    for t in range(cuda.grid(1), out.shape[0] * S, cuda.gridsize(1)):
        out[t // S, t % S] = X[rows[t // S], t % S]


@cuda.jit
def conv_along(T, H, stride, out):
    """``out[b, r, q, t, i] = sum_k H[k, r] T[b, g(r), q, t * stride + k, i]``."""
    n, R, Q, m, I = out.shape
    G = T.shape[1]
    for e in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        q_ = e
        i = q_ % I
        q_ //= I
        t = q_ % m
        q_ //= m
        q = q_ % Q
        q_ //= Q
        r = q_ % R
        b = q_ // R
        g = r if G > 1 else 0
        acc = 0.0
        for k in range(H.shape[0]):
            acc += H[k, r] * T[b, g, q, t * stride + k, i]
        out[b, r, q, t, i] = acc


@cuda.jit
def conv_along_input_grad(dout, H, stride, dT):
    """Input gradient of :func:`conv_along`: ``dT[b, g, q, x, i] = sum
    H[k, r] dout[b, r, q, t, i]`` over ``x = t * stride + k`` and the filters
    ``r`` reading group ``g``."""
    n, G, Q, D, I = dT.shape
    R, m = dout.shape[1], dout.shape[3]
    l = H.shape[0]
    for e in range(cuda.grid(1), dT.size, cuda.gridsize(1)):
        q_ = e
        i = q_ % I
        q_ //= I
        x = q_ % D
        q_ //= D
        q = q_ % Q
        q_ //= Q
        g = q_ % G
        b = q_ // G
        acc = 0.0
        first = g if G > 1 else 0
        last = g + 1 if G > 1 else R
        for r in range(first, last):
            for k in range(l):
                if x >= k and (x - k) % stride == 0:
                    t = (x - k) // stride
                    if t < m:
                        acc += H[k, r] * dout[b, r, q, t, i]
        dT[b, g, q, x, i] = acc


@cuda.jit
def conv_along_filter_partials(dout, T, stride, chunk, partials):
    """``partials[c, k, r] = sum_{b in chunk c} sum_{q, t, i} dout[b, r, q, t,
    i] T[b, g(r), q, t * stride + k, i]``."""
    n, R, Q, m, I = dout.shape
    G = T.shape[1]
    l = partials.shape[1]
    for e in range(cuda.grid(1), partials.size, cuda.gridsize(1)):
        r = e % R
        k = (e // R) % l
        c = e // (R * l)
        g = r if G > 1 else 0
        acc = 0.0
        for b in range(c * chunk, min((c + 1) * chunk, n)):
            for q in range(Q):
                for t in range(m):
                    row = t * stride + k
                    for i in range(I):
                        acc += dout[b, r, q, t, i] * T[b, g, q, row, i]
        partials[c, k, r] = acc


@cuda.jit
def mix(W, T, out):
    """``out[b, k, x] = sum_r W[r, k] T[b, r, x]`` (``W`` ``(R, K)``)."""
    n, K, S = out.shape
    for e in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        x = e % S
        k = (e // S) % K
        b = e // (S * K)
        acc = 0.0
        for r in range(W.shape[0]):
            acc += W[r, k] * T[b, r, x]
        out[b, k, x] = acc


@cuda.jit
def unmix(W, dout, out):
    """Transpose of :func:`mix`: ``out[b, r, x] = sum_k W[r, k] dout[b, k, x]``."""
    n, R, S = out.shape
    for e in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        x = e % S
        r = (e // S) % R
        b = e // (S * R)
        acc = 0.0
        for k in range(W.shape[1]):
            acc += W[r, k] * dout[b, k, x]
        out[b, r, x] = acc


@cuda.jit
def mix_partials(T, dout, chunk, partials):
    """Gradient of :func:`mix`'s ``W`` by chunks of samples: ``partials[c, r,
    k] = sum_{b in chunk c} sum_x T[b, r, x] dout[b, k, x]``."""
    n, R, S = T.shape
    K = dout.shape[1]
    for e in range(cuda.grid(1), partials.size, cuda.gridsize(1)):
        k = e % K
        r = (e // K) % R
        c = e // (K * R)
        acc = 0.0
        for b in range(c * chunk, min((c + 1) * chunk, n)):
            for x in range(S):
                acc += T[b, r, x] * dout[b, k, x]
        partials[c, r, k] = acc
