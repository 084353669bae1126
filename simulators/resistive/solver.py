"""Exact block coordinate descent for layered resistive networks (Scellier 2024).

With all other nodes fixed, the power function is a 1-D quadratic in each node voltage, so the exact minimiser
is the conductance-weighted mean of the neighbours plus injected current, clipped to the diode bounds. In a
layered network the odd and even layers are conditionally independent, so whole layers (and whole batches)
update at once. Each half-sweep lowers P; the solver stops when no node moved more than ``tol_v`` volts in
a sweep and raises :class:`~aeqprop.system.NotSettled` when ``max_sweeps`` is spent.

Hot path: plain array operations only (matmul, multiply, clip), no Python loop over nodes or samples. At
batch 1 the cost is the number of numpy calls per sweep (about a microsecond each), so everything that does
not change between sweeps (reciprocal diagonals, transposed weights, injected currents) is prepared once per
relaxation or once per parameter change (:class:`Coefficients` caches it), and a hidden layer's update is
five calls plus three for the convergence check. At large sizes the cost is the GEMMs, which write into
reused buffers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from aeqprop.system import NotSettled, RelaxReport


@dataclass
class Coefficients:
    """Per-layer diagonal (total conductance at each node) and the input drive, cached between relaxations.

    The reciprocals of the hidden diagonals and of the output diagonal plus each nudge used are cached here
    too, with the sweep plan (layer order and weight arrays): they change only when the parameters do, and a
    relaxation at batch 1 is short enough for their recomputation to show. A Coefficients object is therefore
    valid only while the parameter arrays it was built from are the ones in use (systems rebuild it whenever
    they program or restore parameters). The sweep plans refer to the parameter arrays, not their values, so
    a system may hand the same ``plans`` dict to every rebuild while it updates its arrays in place.
    """

    diag: list[np.ndarray]  # free layers 1..L, output diagonal WITHOUT the nudge conductance
    drive: np.ndarray  # (B, n_1): V_in @ g1 + b1, constant while inputs, g1 and b1 are unchanged
    plans: dict[bool, list] = field(default_factory=dict, repr=False)  # sweep order and weights, per nudge side
    _hidden: dict[int, list[np.ndarray]] = field(default_factory=dict, repr=False)  # batch -> 1/diag rows
    _output: dict[tuple[float, int], np.ndarray] = field(default_factory=dict, repr=False)  # (beta, batch) -> rows
    _biases: dict[int, list[np.ndarray]] = field(default_factory=dict, repr=False)  # batch -> b2..bL rows

    def inverse(self, beta: float, batch: int) -> list[np.ndarray]:
        """1/diag per free layer, the output's with the nudge conductance ``beta`` added, as ``batch`` equal rows.

        Full rows rather than vectors: numpy's elementwise calls on equal shapes skip the broadcasting
        machinery (0.4 against 0.9 us at batch 4), and a sweep makes several per layer.
        """
        return [*self.inverse_hidden(batch), self.inverse_output(beta, batch)]

    def inverse_hidden(self, batch: int) -> list[np.ndarray]:
        """1/diag of each hidden layer as ``batch`` equal rows (see :meth:`inverse`)."""
        hidden = self._hidden.get(batch)
        if hidden is None:
            if len(self._hidden) > 4:
                self._hidden.clear()
            # A node with no conductance at all is held at 0 V by its diode (or floats at 0 if linear).
            hidden = self._hidden[batch] = [
                np.divide(1.0, d, out=np.empty((batch, d.shape[0]), dtype=d.dtype))
                if d.size == 0 or np.minimum.reduce(d) > 0
                else _rows(np.where(d > 0, 1.0 / np.where(d > 0, d, 1.0), 0.0).astype(d.dtype, copy=False), batch)
                for d in self.diag[:-1]
            ]
        return hidden

    def inverse_output(self, beta: float, batch: int) -> np.ndarray:
        """1/(diag + beta) of the output layer as ``batch`` equal rows (see :meth:`inverse`)."""
        inv_out = self._output.get((beta, batch))
        if inv_out is None:
            out_diag = self.diag[-1] + beta
            if out_diag.size and np.minimum.reduce(out_diag) <= 0:
                node = int(np.argmin(out_diag))
                raise NotSettled(
                    f"energy unbounded below: output node {node} has total conductance "
                    f"{self.diag[-1][node]:.4g} S and nudge beta={beta:.4g} (sum must stay > 0)"
                )
            if len(self._output) > 8:  # continual or stencil runs visit a few nudges; keep the cache small
                self._output.clear()
            inv_out = self._output[(beta, batch)] = np.empty((batch, out_diag.shape[0]), dtype=out_diag.dtype)
            np.divide(1.0, out_diag, out=inv_out)
        return inv_out

    def biases(self, params: dict[str, np.ndarray], batch: int) -> list[np.ndarray]:
        """Bias currents of layers 2..L as ``batch`` equal rows (see :meth:`inverse`)."""
        full = self._biases.get(batch)
        if full is None:
            if len(self._biases) > 4:
                self._biases.clear()
            full = self._biases[batch] = [_rows(params[f"b{k}"], batch) for k in range(2, len(self.diag) + 1)]
        return full


def _rows(v: np.ndarray, batch: int) -> np.ndarray:
    """``v`` repeated as ``batch`` rows."""
    full = np.empty((batch, v.shape[0]), dtype=v.dtype)
    full[...] = v
    return full


def input_drive(params: dict[str, np.ndarray], v_in: np.ndarray) -> np.ndarray:
    """Current injected into layer 1 by the clamped inputs and the layer's bias sources."""
    drive = v_in @ params["g1"]
    drive += params["b1"]
    return drive


def diagonals(params: dict[str, np.ndarray], depth: int) -> list[np.ndarray]:
    """Total conductance at each free node: incoming column sums plus outgoing row sums.

    The sums are matrix-vector products with a vector of ones: BLAS does them several times faster than
    numpy's axis reductions (18 us against 1 us for a 256 x 10 matrix), and this runs after every update.
    """
    diag = []
    for k in range(1, depth + 1):
        g = params[f"g{k}"]
        d = _ones(g.shape[0], g.dtype) @ g
        if k < depth:
            g_next = params[f"g{k + 1}"]
            d += g_next @ _ones(g_next.shape[1], g_next.dtype)
        diag.append(d)
    return diag


_ONES: dict[tuple[int, np.dtype], np.ndarray] = {}


def _ones(n: int, dtype: np.dtype) -> np.ndarray:
    """A read-only vector of ones, kept (``np.ones`` costs as much as a small GEMV at batch 1)."""
    ones = _ONES.get((n, dtype))
    if ones is None:
        ones = _ONES[(n, dtype)] = np.ones(n, dtype=dtype)
        ones.flags.writeable = False
    return ones


def extrapolate(
    layers: list[np.ndarray], free: list[np.ndarray], ratio: float, lows: list[np.ndarray], highs: list[np.ndarray]
) -> None:
    """Move ``layers`` (an equilibrium under nudge beta) to the linear-response guess for nudge ``ratio * beta``.

    Near the free equilibrium the state moves linearly with the nudge, so ``free + ratio * (layers - free)``
    (clipped to the diode bounds) is a much closer start for the next relaxation than ``layers`` itself: for
    centered EP (ratio -1) it saves about a sweep per relaxation. Only the start point changes; the solver
    still runs to the same unique minimum.
    """
    if any(layer.shape != anchor.shape for layer, anchor in zip(layers, free)):
        return
    for i, (layer, anchor) in enumerate(zip(layers, free)):
        if ratio == -1.0:  # centered EP: 2·free − layer, the same bits as below in one call fewer
            np.subtract(anchor, layer, out=layer)
        else:
            layer -= anchor
            layer *= ratio
        layer += anchor
        if i < len(layers) - 1:
            np.maximum(layer, lows[i], out=layer)
            np.minimum(layer, highs[i], out=layer)


class SweepBuffers:
    """Two flat arrays holding every free layer's state back to back, kept by a system between relaxations.

    A sweep writes each layer's new voltages into the spare array's view of that layer, so after a sweep the
    spare holds the whole new state and the old state is intact in the other: the convergence check is then
    one subtract / absolute / max over the flat arrays (three numpy calls per sweep, whatever the depth, where
    a check per layer costs three per layer), and the two arrays swap roles. Nothing is allocated per sweep.
    """

    def __init__(self) -> None:
        self.flats: list[np.ndarray] = []
        self.views: list[list[np.ndarray]] = []
        self._stacked_key: tuple | None = None  # (copies, batch, dtype) that ``stacked`` laid the buffers out for
        self._blocks: list[np.ndarray] = []  # views[0] as (copies, batch, n) blocks

    def attach(self, layers: list[np.ndarray]) -> int:
        """Make ``layers`` views of one of the two flat arrays (copying them in if they are not); its index."""
        for k, views in enumerate(self.views):
            if len(views) == len(layers) and all(v is layer for v, layer in zip(views, layers)):
                return k
        shapes = [layer.shape for layer in layers]
        dtype = layers[0].dtype if layers else np.dtype(float)
        if not self.views or [v.shape for v in self.views[0]] != shapes or self.flats[0].dtype != dtype:
            total = sum(math.prod(shape) for shape in shapes)
            self.flats = [np.empty(total, dtype=dtype), np.empty(total, dtype=dtype)]
            self.views = [_split(flat, shapes) for flat in self.flats]
            self._stacked_key = None
        for view, layer in zip(self.views[0], layers):
            np.copyto(view, layer)
        layers[:] = self.views[0]
        return 0

    def stacked(self, layers: list[np.ndarray], copies: int) -> list[np.ndarray]:
        """``copies`` copies of ``layers`` stacked along the batch, written into these buffers (ready to attach)."""
        key = (copies, layers[0].shape[0], layers[0].dtype)
        if key != self._stacked_key or len(layers) != len(self.views[0]):
            shapes = [(copies * layer.shape[0], *layer.shape[1:]) for layer in layers]
            total = sum(math.prod(shape) for shape in shapes)
            self.flats = [np.empty(total, dtype=layers[0].dtype), np.empty(total, dtype=layers[0].dtype)]
            self.views = [_split(flat, shapes) for flat in self.flats]
            self._blocks = [view.reshape(copies, *layer.shape) for view, layer in zip(self.views[0], layers)]
            self._stacked_key = key
        for blocks, layer in zip(self._blocks, layers):
            np.copyto(blocks, layer)
        return list(self.views[0])


def _split(flat: np.ndarray, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """Contiguous views of ``flat``, one per shape, back to back."""
    views, start = [], 0
    for shape in shapes:
        size = math.prod(shape)
        views.append(flat[start : start + size].reshape(shape))
        start += size
    return views


def block_coordinate_descent(
    params: dict[str, np.ndarray],
    coeffs: Coefficients,
    layers: list[np.ndarray],
    lows: list[np.ndarray],
    highs: list[np.ndarray],
    beta: float,
    target: np.ndarray | None,
    tol_v: float,
    max_sweeps: int,
    exact_sweeps: bool = False,
    buffers: SweepBuffers | None = None,
) -> RelaxReport:
    """Relax ``layers`` to the constrained minimum of P + beta/2 ||V_L - y||^2.

    ``layers`` (a list of (B, n_k) arrays) is updated in place: its entries are replaced by the new layers.
    With ``exact_sweeps`` it runs exactly ``max_sweeps`` sweeps and reports, rather than raises, when the
    state has not settled (continual EP moves parameters between such steps). ``buffers``: the
    :class:`SweepBuffers` a caller keeps between relaxations (a fresh one when omitted); the layers handed
    back are views of them, which a later relaxation overwrites, so a caller must not keep references to them.
    """
    batch = layers[0].shape[0]
    inv_diag = coeffs.inverse(beta, batch)
    # Constant current injected into each layer during this relaxation.
    inject = [coeffs.drive, *coeffs.biases(params, batch)]
    if beta != 0.0:
        if target is None:
            raise ValueError("a nonzero nudge needs a target")
        inject[-1] = inject[-1] + beta * target
    plan = _plan(params, coeffs, len(layers), beta != 0.0)
    return _sweep(plan, layers, inv_diag, inject, lows, highs, tol_v, max_sweeps, exact_sweeps,
                  buffers if buffers is not None else SweepBuffers(), lambda: f"{beta:.4g}")


def relax_phases(
    params: dict[str, np.ndarray],
    coeffs: Coefficients,
    layers: list[np.ndarray],
    lows: list[np.ndarray],
    highs: list[np.ndarray],
    betas: list[float],
    target: np.ndarray,
    tol_v: float,
    max_sweeps: int,
    buffers: SweepBuffers | None = None,
) -> RelaxReport:
    """Relax the M phases of one clamp (nudges ``betas``, zero for the free phase) together, as one batch of M·B rows.

    ``layers`` holds M·B rows, phase after phase (rows m·B … (m+1)·B − 1 under nudge ``betas[m]``), each
    block its own start point; ``coeffs`` and ``target`` are those of the B clamped samples. Rows do not
    interact, so each block reaches the equilibrium it would reach alone: the phases only share the sweeps
    (the whole stack stops when its slowest block has settled). At small batches a sweep costs its numpy
    calls, not its arithmetic, so M phases cost about one.
    """
    batch, phases = coeffs.drive.shape[0], len(betas)
    depth = len(layers)
    # Per phase, the output's diagonal plus that phase's nudge conductance, and its injected current
    # bias + beta * target; each phase block repeated over its B rows.
    column = np.asarray(betas, dtype=target.dtype)[:, None]
    out_diag = coeffs.diag[-1] + column  # (M, n_L)
    if out_diag.size and np.minimum.reduce(out_diag, axis=None) <= 0:
        m, node = np.unravel_index(int(np.argmin(out_diag)), out_diag.shape)
        raise NotSettled(
            f"energy unbounded below: output node {node} has total conductance {coeffs.diag[-1][node]:.4g} S "
            f"and nudge beta={betas[m]:.4g} (sum must stay > 0)"
        )
    inv_out = np.repeat(np.divide(1.0, out_diag), batch, axis=0)
    inv_diag = [*coeffs.inverse_hidden(batch * phases), inv_out]
    out = column[:, :, None] * target
    out += params[f"b{depth}"] if depth > 1 else coeffs.drive
    out = out.reshape(batch * phases, -1)
    drive = np.concatenate([coeffs.drive] * phases) if depth > 1 else out
    inject = [drive, *(_rows(params[f"b{k}"], batch * phases) for k in range(2, depth)), out][-depth:]
    plan = _plan(params, coeffs, len(layers), False)
    # A nudged block starts from another phase's equilibrium, so its first sweep cannot be the last: that
    # check is skipped (a block that happens to be settled already costs one sweep more, never a wrong state).
    return _sweep(plan, layers, inv_diag, inject, lows, highs, tol_v, max_sweeps, False,
                  buffers if buffers is not None else SweepBuffers(), lambda: ", ".join(f"{b:.4g}" for b in betas),
                  check_first=not any(betas) or max_sweeps < 2)


def _plan(params: dict[str, np.ndarray], coeffs: Coefficients, depth: int, nudged: bool) -> list:
    """The sweep order, cached in ``coeffs``: (layer, weights from below, weights from above, bounded)."""
    nudge_first = nudged and (depth - 1) % 2 == 1
    plan = coeffs.plans.get(nudge_first)
    if plan is None:
        up = [None] + [params[f"g{k}"] for k in range(2, depth + 1)]  # weights from layer i-1 into layer i
        down = [params[f"g{k}"].T for k in range(2, depth + 1)] + [None]  # weights from layer i+1 into layer i
        evens, odds = list(range(0, depth, 2)), list(range(1, depth, 2))  # layers 1,3,5.. and 2,4,.. (0-based)
        # A nudge acts on the output layer first: starting each sweep with the output's group lets the first
        # half-sweep carry it to the hidden layers (a sweep fewer per nudged relaxation, same fixed point).
        order = odds + evens if nudge_first else evens + odds
        plan = [(i, up[i], down[i], i < depth - 1) for i in order]
        coeffs.plans[nudge_first] = plan
    return plan


def _sweep(
    plan: list, layers: list[np.ndarray], inv_diag: list[np.ndarray], inject: list[np.ndarray],
    lows: list[np.ndarray], highs: list[np.ndarray], tol_v: float, max_sweeps: int, exact_sweeps: bool,
    buffers: SweepBuffers, nudge: Callable[[], str], check_first: bool = True,
) -> RelaxReport:
    """Sweep ``plan`` until no node moves more than ``tol_v`` (or exactly ``max_sweeps`` times).

    ``check_first=False`` skips the convergence check of the first sweep, for a start that cannot be settled
    (it still counts: the relaxation then reports at least two sweeps)."""
    # Ping-pong between the two flat arrays: a sweep writes every layer into the spare one (a layer of the
    # second half-sweep reads its neighbours' new values there: the layered graph is bipartite), then the
    # change of the whole state is measured in place in the old array, which becomes the next spare.
    current = buffers.attach(layers)
    flats, views = buffers.flats, buffers.views
    matmul, maximum, minimum, multiply = np.matmul, np.maximum, np.minimum, np.multiply
    subtract, absolute, largest = np.subtract, np.absolute, np.maximum.reduce
    empty = flats[0].size == 0
    residual = math.inf
    first = None
    for sweep in range(1, max_sweeps + 1):
        spare = views[1 - current]
        for i, w_up, w_down, bounded in plan:
            inj = inject[i]
            num = spare[i]
            if w_down is not None:
                matmul(layers[i + 1], w_down, out=num)
                if w_up is not None:
                    num += layers[i - 1] @ w_up
                num += inj
            elif w_up is not None:
                matmul(layers[i - 1], w_up, out=num)
                num += inj
            else:  # a single free layer driven by the inputs alone
                np.copyto(num, inj)
            multiply(num, inv_diag[i], out=num)
            if bounded:
                maximum(num, lows[i], out=num)
                minimum(num, highs[i], out=num)
            layers[i] = num
        old, current = flats[current], 1 - current
        if empty:
            residual = 0.0
        elif sweep == 1 and not check_first:
            continue
        else:
            subtract(old, flats[current], out=old)
            absolute(old, out=old)
            residual = float(largest(old, axis=None))
        if residual <= tol_v and not exact_sweeps:
            return RelaxReport(sweeps=sweep, residual=residual)
        first = residual if first is None else first
        if not math.isfinite(residual) or residual > 1e6 * max(first, tol_v):
            raise NotSettled(
                f"relaxation diverges (change grew from {first:.3g} V to {residual:.3g} V after {sweep} sweeps): "
                f"with nudge beta={nudge()} the circuit has no stable equilibrium; use a smaller |beta| or "
                "larger output conductances"
            )
    if exact_sweeps:
        return RelaxReport(sweeps=max_sweeps, residual=residual, settled=residual <= tol_v)
    raise NotSettled(
        f"block coordinate descent did not settle in {max_sweeps} sweeps "
        f"(last change {residual:.3g} V > tolerance {tol_v:.3g} V)"
    )
