"""The fused EP step of the resistive network (capability ``contrast``): update where the gradient is formed.

An EP update is θ += Σ_m c_m · dP/dθ(phase m), with c_m the learning rate times the estimator's weight of
phase m. Reading each phase's gradient, scaling, summing and programming it costs one pass over every
conductance matrix per operation. Here the phases' node voltages are kept instead (a few rows per layer),
and each layer's whole update is one BLAS ``gemm`` with β = 1 writing straight into the conductance matrix:

    dP/dg_ij = 1/(2B) Σ_b (V_i − V_j)² = 1/(2B) Σ_b V_i² + 1/(2B) Σ_b V_j² − 1/B Σ_b V_i V_j

so Σ_m c_m dP/dg = Lᵀ R with L = [pre_1; …; pre_M; q_pre; 1/(2B)] and R = [−c_1 post_1/B; …; −c_M post_M/B;
1/(2B); q_post], where q = Σ_m c_m Σ_b V_m² (the same trick as ``local_gradients``, with the phases stacked
along the GEMM's inner dimension). The input layer is the same in every phase of a batch, so its rows are
shared: L = [V_in; 1/(2B); Σ_b V_in²], R = [−Σ_m c_m post_m / B; q_post; Σ_m c_m / (2B)]. For every EP
estimator the weights sum to zero, so the huge input squares (10⁵ V² at DRN gains) cancel exactly instead of
being subtracted after rounding; where that sum is exactly zero in floating point (centered, one-sided) their
row is left out, and the largest GEMM has B + 1 inner rows instead of 2(B + 2) (its cost grows with each row).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.linalg.blas import get_blas_funcs


class Contrast:
    """The phases of one batch (node voltages per layer, weights), held until they are programmed.

    Buffers are kept between batches (no allocation per batch once the batch size and phase count settle).
    ``_stacks[k]`` holds layer k+1's voltages of every phase, phase after phase (rows m·B … (m+1)·B − 1), with
    two spare rows after the last phase so that it serves directly as the next layer's left GEMM operand.
    """

    def __init__(self) -> None:
        self.weights: list[float] = []
        self._stacks: list[np.ndarray] = []  # per free layer: (cap * B + 2, n) buffer
        self._rights: list[np.ndarray] = []  # per free layer: (cap * B + 2, n) buffer
        self._squares: list[np.ndarray] = []  # per free layer: scratch for the squared voltages
        self._left_in: np.ndarray | None = None  # [V_in; 1/(2B); Σ V_in²], valid while ``_left_of`` is V_in
        self._left_of: np.ndarray | None = None
        self._squares_of: np.ndarray | None = None  # the V_in whose squares the operand's last row holds
        self._cap = 0
        self._batch = 0

    def __len__(self) -> int:
        return len(self.weights)

    def clear(self) -> None:
        self.weights.clear()

    def add(self, weight: float, layers: list[np.ndarray]) -> None:
        """Keep the node voltages of one phase (copied: the solver reuses its arrays) with its weight."""
        m = len(self.weights)
        batch = layers[0].shape[0]
        if batch != self._batch or m >= self._cap or len(layers) != len(self._stacks):
            self._grow(layers, batch, m)
            m = len(self.weights)  # 0 when the held phases were of another batch size
        for stack, layer in zip(self._stacks, layers):
            np.copyto(stack[m * batch : (m + 1) * batch], layer)
        self.weights.append(weight)

    def add_phases(self, weights: list[float], layers: list[np.ndarray], batch: int) -> None:
        """Keep M phases at once: ``layers`` holds them stacked, phase after phase, ``batch`` rows each (the
        layout of ``_stacks``). Trailing phases of weight 0 are not kept (they would only widen the GEMMs)."""
        kept = len(weights)
        while kept and not weights[kept - 1]:
            kept -= 1
        if not kept:
            return
        m = len(self.weights)
        if batch != self._batch or m + kept > self._cap or len(layers) != len(self._stacks):
            self._grow(layers, batch, m, kept)
            m = len(self.weights)
        rows = kept * batch
        for stack, layer in zip(self._stacks, layers):
            np.copyto(stack[m * batch : m * batch + rows], layer[:rows])
        self.weights.extend(weights[:kept])

    def _grow(self, layers: list[np.ndarray], batch: int, m: int, more: int = 1) -> None:
        """(Re)allocate for at least ``m + more`` phases, keeping the ``m`` held so far when the batch is the same."""
        keep = m if batch == self._batch and len(layers) == len(self._stacks) else 0
        cap = max(2, 2 * (m + more))
        stacks = [np.empty((cap * batch + 2, layer.shape[1]), dtype=layer.dtype) for layer in layers]
        for new, old in zip(stacks, self._stacks if keep else []):
            new[: keep * batch] = old[: keep * batch]
        self._stacks = stacks
        self._rights = [np.empty_like(s) for s in stacks]
        self._squares = [np.empty_like(s) for s in stacks]
        self._cap, self._batch = cap, batch
        if not keep:
            self.weights.clear()

    def apply(self, params: dict[str, np.ndarray], v_in: np.ndarray, rates: Mapping[str, float]) -> None:
        """θ += rate · Σ_m w_m dP/dθ(phase m) for every conductance and bias named in ``rates``."""
        depth, batch, phases = len(self._stacks), self._batch, len(self.weights)
        rows = phases * batch
        w = np.asarray(self.weights, dtype=self._stacks[0].dtype)
        scale = w * (-1.0 / batch)  # −w_m / B, one per phase
        row_weights = np.repeat(w, batch)  # w_m on each of phase m's rows
        left = self._input_operand(v_in)
        half = 1.0 / (2 * batch)
        total = sum(self.weights)
        q_prev = left[batch]  # replaced by layer 1's q before layer 2 uses it
        for k in range(1, depth + 1):
            stack, right = self._stacks[k - 1], self._rights[k - 1]
            posts = stack[:rows].reshape(phases, batch, -1)
            if k == 1:  # shared input rows: L = [V_in; 1/(2B); Σ_b V_in²], R = [Σ_m −w_m post_m / B; q; Σ w / (2B)]
                # the input squares' row is left out when the weights sum to exactly zero (every EP stencil
                # whose weights are exact in binary, centered and one-sided among them): a GEMM row less
                n_rows = batch + 1 if total == 0.0 else batch + 2
                if n_rows == batch + 2:
                    self._input_squares(v_in)
                operand = left
                np.matmul(scale, posts.reshape(phases, -1), out=right[:batch].reshape(-1))
                right[batch + 1] = total * half
                bias_rows = right[:batch]
                q_row = batch
            else:  # L = [pre_1 .. pre_M; q_pre; 1/(2B)], R = [−w_1 post_1 / B .. −w_M post_M / B; 1/(2B); q]
                n_rows = rows + 2
                operand = self._stacks[k - 2][:n_rows]
                operand[rows] = q_prev
                operand[rows + 1] = half
                np.multiply(posts, scale[:, None, None], out=right[:rows].reshape(phases, batch, -1))
                right[rows] = half
                bias_rows = right[:rows]
                q_row = rows + 1
            q_prev = right[q_row]
            squares = self._squares[k - 1][:rows]
            np.square(stack[:rows], out=squares)
            np.matmul(row_weights, squares, out=q_prev)  # q = Σ_m w_m Σ_b post_m²
            rate = rates.get(f"g{k}")
            if rate:
                _gemm_into(params[f"g{k}"], rate, operand[:n_rows], right[:n_rows])
            rate_b = rates.get(f"b{k}")
            if rate_b:
                bias = params[f"b{k}"]
                bias += rate_b * np.add.reduce(bias_rows, axis=0)  # = rate · Σ_m w_m (−mean post_m)
        self.weights.clear()

    def _input_operand(self, v_in: np.ndarray) -> np.ndarray:
        """[V_in; 1/(2B); Σ_b V_in²] (the last row filled by :meth:`_input_squares` when needed), rebuilt only
        when the clamped input changes.

        The cache is keyed by identity: the system makes a new V_in array at every clamp (never refills one).
        """
        if self._left_of is not v_in:
            batch, n = v_in.shape
            left = self._left_in
            if left is None or left.shape != (batch + 2, n) or left.dtype != v_in.dtype:
                left = self._left_in = np.empty((batch + 2, n), dtype=v_in.dtype)
            left[:batch] = v_in
            left[batch] = 1.0 / (2 * batch)
            self._left_of, self._squares_of = v_in, None
        return self._left_in  # type: ignore[return-value]

    def _input_squares(self, v_in: np.ndarray) -> None:
        """Fill the Σ_b V_in² row of the input operand (after :meth:`_input_operand`)."""
        if self._squares_of is not v_in:
            np.add.reduce(np.square(v_in), axis=0, out=self._left_in[v_in.shape[0] + 1])  # type: ignore[index]
            self._squares_of = v_in


def _gemm_into(g: np.ndarray, alpha: float, left: np.ndarray, right: np.ndarray) -> None:
    """g += alpha · leftᵀ @ right, as one BLAS gemm with β = 1 (no temporary of g's size).

    A C-ordered g is the Fortran-ordered gᵀ, so BLAS updates gᵀ += alpha · rightᵀ @ left in place.
    """
    if not (g.flags.c_contiguous and g.flags.writeable and left.flags.c_contiguous and right.flags.c_contiguous):
        g += alpha * (left.T @ right)
        return
    gemm = get_blas_funcs("gemm", (g,))
    out = gemm(alpha, right.T, left.T, beta=1.0, c=g.T, overwrite_c=True, trans_b=1)
    if not np.shares_memory(out, g):  # BLAS had to copy (unexpected layout): write the result back
        g[...] = out.T
