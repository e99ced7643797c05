"""Compile the activation and loss registries for one target (numba CPU or CUDA).

Each activation and each loss is written once, in :mod:`sktensorcnn.activations`
and :mod:`sktensorcnn.losses`, as a plain Python function of floats and arrays.
This module compiles those functions for a target (the helpers they call are
compiled for the same target: the function is rebuilt with its globals
re-pointed) and generates the dispatchers the kernels call with a code:

* ``activate(code, y) -> (value, slope)``;
* ``activate_rows(code, y, v)`` (CPU): ``v = act(y)`` then ``y = act'(y)`` in
  place, one loop per activation so that simple ones vectorize;
* ``sample_loss(code, f, target, grad) -> loss``.

A code outside a registry gives NaN, never another entry's result.
"""

from __future__ import annotations

import math
import types

from .. import activations, losses


def _for_target(fn, jit, compiled):
    """``fn`` compiled with ``jit``, after the same for every plain function of
    its module that it calls (``compiled`` memoizes them)."""
    if fn in compiled:
        return compiled[fn]
    namespace = dict(fn.__globals__)
    for name in fn.__code__.co_names:
        helper = namespace.get(name)
        if isinstance(helper, types.FunctionType) and \
                helper.__module__ == fn.__module__:
            namespace[name] = _for_target(helper, jit, compiled)
    rebuilt = types.FunctionType(fn.__code__, namespace, fn.__name__,
                                 fn.__defaults__, fn.__closure__)
    compiled[fn] = jit(rebuilt)
    return compiled[fn]


def _dispatchers(lines, namespace, jit, names):
    exec(compile("\n".join(lines), "<sktensorcnn registries>", "exec"), namespace)
    return {name: jit(namespace[name]) for name in names}


def compile_activations(jit, rows: bool = True) -> dict:
    """``activate`` (and, with ``rows``, ``activate_rows``) over every
    registered activation, compiled with ``jit``: e.g.
    ``numba.njit(inline='always')`` or ``numba.cuda.jit(device=True,
    inline='always')``."""
    compiled: dict = {}
    namespace = {"math": math}
    lines = ["def activate(code, y):"]
    for code, activation in enumerate(activations.REGISTRY):
        namespace[f"_{activation.name}"] = _for_target(activation.scalar, jit, compiled)
        lines += [f"    if code == {code}:", f"        return _{activation.name}(y)"]
    lines += ["    return math.nan, math.nan"]
    if rows:
        lines += ["def activate_rows(code, y, v):"]
        for code, activation in enumerate(activations.REGISTRY):
            lines += [f"    {'if' if code == 0 else 'elif'} code == {code}:",
                      "        for j in range(y.shape[0]):",
                      f"            v[j], y[j] = _{activation.name}(y[j])"]
        lines += ["    else:",
                  "        for j in range(y.shape[0]):",
                  "            v[j] = y[j] = math.nan"]
    names = ("activate", "activate_rows") if rows else ("activate",)
    return _dispatchers(lines, namespace, jit, names)


def compile_losses(jit):
    """``sample_loss(code, f, target, grad) -> loss`` over every registered
    loss, compiled with ``jit``."""
    compiled: dict = {}
    namespace = {"math": math}
    lines = ["def sample_loss(code, f, target, grad):"]
    for code, loss in enumerate(losses.REGISTRY):
        namespace[f"_{loss.name}"] = _for_target(loss.sample, jit, compiled)
        lines += [f"    if code == {code}:",
                  f"        return _{loss.name}(f, target, grad)"]
    lines += ["    for o in range(grad.shape[0]):",
              "        grad[o] = math.nan",
              "    return math.nan"]
    return _dispatchers(lines, namespace, jit, ("sample_loss",))["sample_loss"]
