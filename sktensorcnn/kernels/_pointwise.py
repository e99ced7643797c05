"""Compile the activation registry for one target (numba CPU or CUDA).

Each activation is written once, in :mod:`sktensorcnn.activations`; this
module turns the registry into the dispatchers the kernels call with an
activation code: ``activate(code, y) -> (value, slope)``, and on the CPU
``activate_rows(code, y, v)``, which overwrites a row in place with one loop
per activation (so that simple ones vectorize).  The dispatchers are generated
source, one branch per registry entry, so that adding an activation to the
registry is the only change; a code outside the registry gives NaN, never
another activation.
"""

from __future__ import annotations

import math

from ..activations import REGISTRY


def compile_activations(jit, rows: bool = True) -> dict:
    """The dispatchers of every registered activation, compiled with ``jit``.

    Parameters
    ----------
    jit : callable
        Turns a Python function into a function the target's kernels can call
        and inline, e.g. ``numba.njit(inline='always')`` or
        ``numba.cuda.jit(device=True, inline='always')``.
    rows : bool, default=True
        Also build ``activate_rows`` (CPU only: it loops over an array).

    Returns
    -------
    dict
        ``'activate'`` and, with ``rows``, ``'activate_rows'``.
    """
    namespace = {"math": math}
    lines = ["def activate(code, y):"]
    for code, activation in enumerate(REGISTRY):
        name = f"_{activation.name}"
        namespace[name] = jit(activation.scalar)
        lines += [f"    if code == {code}:", f"        return {name}(y)"]
    lines += ["    return math.nan, math.nan"]
    if rows:
        lines += ["def activate_rows(code, y, v):",
                  "    # v = act(y), then y = act'(y), in place"]
        for code, activation in enumerate(REGISTRY):
            lines += [f"    {'if' if code == 0 else 'elif'} code == {code}:",
                      "        for j in range(y.shape[0]):",
                      f"            v[j], y[j] = _{activation.name}(y[j])"]
        lines += ["    else:",
                  "        for j in range(y.shape[0]):",
                  "            v[j] = y[j] = math.nan"]
    exec(compile("\n".join(lines), "<sktensorcnn activation registry>", "exec"),
         namespace)
    names = ("activate", "activate_rows") if rows else ("activate",)
    return {name: jit(namespace[name]) for name in names}
