"""A second, independent DRN trainer: the public code's training loop written in plain numpy, outside aeqprop.

It exists to separate "aeqprop simulates a different circuit" from "this recipe behaves so". It shares only
the MNIST loader with aeqprop and follows the loop described in docs/scale.md: inputs ``gain * [x, -x]``,
hidden layers split into V >= 0 and V <= 0 halves, linear outputs, conductances drawn U(-1/sqrt(fan_in),
+1/sqrt(fan_in)) and clipped at 0, zero bias currents, float32; every relaxation is a fixed number of
asynchronous iterations (odd layers, then even layers, each set to its exact constrained minimiser); the free
phase starts from wherever the previous batch left the network (the +beta state), both nudged phases start
from the free state; centered EP, plain SGD (optionally with momentum), conductances clipped at 0 after each
step. It prints the running training accuracy and, at the end, the test accuracy under the same truncated
inference started from zero.

    python benchmarks/mnist_drn_reference_loop.py --hidden 1024 1024 1024 --gain 4000 --beta 2 \\
        --lr 0.005 0.02 0.08 0.005 --lr-bias 0.0005 0.002 0.008 0.0005 --iterations 6 --batches 3000
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _common import default_data_root

from aeqprop.data import load_dataset

F32 = np.float32


class Loop:
    """Parameters and state of one DRN, with the truncated relaxation of the public code."""

    def __init__(self, sizes: list[int], gain: float, rng: np.random.Generator) -> None:
        self.sizes, self.gain, self.depth = sizes, gain, len(sizes) - 1
        self.w = [np.empty((0, 0), F32)] + [
            np.clip(rng.uniform(-1, 1, (sizes[k - 1], sizes[k])) / np.sqrt(sizes[k - 1]), 0, None).astype(F32)
            for k in range(1, self.depth + 1)
        ]
        self.b = [np.empty(0, F32)] + [np.zeros(sizes[k], F32) for k in range(1, self.depth + 1)]
        self.state: list[np.ndarray] = []

    def clamp(self, x: np.ndarray, reset: bool) -> None:
        v_in = (self.gain * np.concatenate([x, -x], axis=1)).astype(F32)
        if reset or not self.state or self.state[0].shape[0] != x.shape[0]:
            self.state = [v_in] + [np.zeros((x.shape[0], n), F32) for n in self.sizes[1:]]
        self.state[0] = v_in

    def _minimiser(self, k: int, beta: float, target: np.ndarray | None) -> np.ndarray:
        s, w = self.state, self.w
        num = s[k - 1] @ w[k] + self.b[k]
        diag = w[k].sum(axis=0)
        if k < self.depth:
            num += s[k + 1] @ w[k + 1].T
            diag = diag + w[k + 1].sum(axis=1)
        elif beta:
            num += beta * target
            diag = diag + beta
        v = (num / diag).astype(F32)
        if k < self.depth:
            half = self.sizes[k] // 2
            np.maximum(v[:, :half], 0, out=v[:, :half])
            np.minimum(v[:, half:], 0, out=v[:, half:])
        return v

    def relax(self, iterations: int, beta: float = 0.0, target: np.ndarray | None = None) -> None:
        groups = [range(1, self.depth + 1, 2), range(2, self.depth + 1, 2)]
        for _ in range(iterations):
            for group in groups:
                new = {k: self._minimiser(k, beta, target) for k in group}
                for k, v in new.items():
                    self.state[k] = v

    def energy_gradients(self) -> dict[tuple[str, int], np.ndarray]:
        """dE/dθ averaged over the batch: ½ mean (V_pre − V_post)² per conductance, −mean V per bias."""
        out = {}
        n = self.state[0].shape[0]
        for k in range(1, self.depth + 1):
            pre, post = self.state[k - 1], self.state[k]
            out[("g", k)] = 0.5 * ((pre**2).mean(0)[:, None] + (post**2).mean(0)[None, :]) - pre.T @ post / n
            out[("b", k)] = -post.mean(0)
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, nargs="+", default=[1024, 1024, 1024])
    parser.add_argument("--gain", type=float, default=4000.0)
    parser.add_argument("--beta", type=float, default=2.0)
    parser.add_argument("--lr", type=float, nargs="+", default=[0.005, 0.02, 0.08, 0.005])
    parser.add_argument("--lr-bias", type=float, nargs="+", default=[0.0005, 0.002, 0.008, 0.0005])
    parser.add_argument("--momentum", type=float, default=0.0)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--batches", type=int, default=3000)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_dataset("mnist", default_data_root())
    rng = np.random.default_rng(args.seed)
    net = Loop([2 * data.x_train.shape[1], *args.hidden, data.n_classes], args.gain, rng)
    if len(args.lr) != net.depth or len(args.lr_bias) != net.depth:
        print(f"--lr and --lr-bias need {net.depth} values", file=sys.stderr)
        return 2
    order = rng.permutation(data.x_train.shape[0])
    velocity: dict[tuple[str, int], np.ndarray] = {}
    start, correct, seen = time.perf_counter(), 0, 0
    for step in range(args.batches):
        first = (step * args.batch) % (order.size - args.batch)
        idx = order[first : first + args.batch]
        target = np.eye(data.n_classes, dtype=F32)[data.y_train[idx]]
        net.clamp(data.x_train[idx], reset=False)
        net.relax(args.iterations)
        correct += int(np.sum(net.state[-1].argmax(1) == data.y_train[idx]))
        seen += idx.size
        free = list(net.state)
        net.relax(args.iterations, -args.beta, target)
        minus = net.energy_gradients()
        net.state = list(free)
        net.relax(args.iterations, args.beta, target)
        plus = net.energy_gradients()
        for key in plus:
            grad = (plus[key] - minus[key]) / (2 * args.beta)
            if args.momentum:
                grad = velocity[key] = grad if key not in velocity else args.momentum * velocity[key] + grad
            kind, k = key
            rate = F32((args.lr if kind == "g" else args.lr_bias)[k - 1])
            param = (net.w if kind == "g" else net.b)[k]
            param -= rate * grad.astype(F32)
            if kind == "g":
                np.maximum(param, 0, out=param)
        if (step + 1) % args.every == 0:
            means = [f"{float(net.w[k].mean()):.4g}" for k in range(1, net.depth + 1)]
            print(f"batch {step + 1}: running train accuracy {correct / seen:.3f}, mean conductance per layer "
                  f"{means} ({time.perf_counter() - start:.0f} s)", flush=True)
            correct = seen = 0
    net.clamp(data.x_test[: args.test], reset=True)
    net.relax(args.iterations)
    accuracy = float(np.mean(net.state[-1].argmax(1) == data.y_test[: args.test]))
    print(f"test accuracy on {args.test} images (truncated inference from zero): {accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
