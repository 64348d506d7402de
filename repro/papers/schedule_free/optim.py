"""Schedule-free SGD and AdamW (Defazio et al. 2024, arXiv:2405.15682), written from the paper.

The method keeps three sequences per parameter (§2, Eq. 1-3 and Algorithm 1):

    y_t     = (1 - β) z_t + β x_t              where the gradient is evaluated
    z_{t+1} = z_t - γ_t ∇f(y_t)                a plain (SGD or Adam) step, never decayed
    x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}   a running average of the z's: the model
                                                    that is evaluated and returned

β interpolates between Polyak-Ruppert averaging (β = 0: gradients at the base sequence z, whose
average is reported) and primal averaging (β = 1: gradients at the average x itself); the paper
uses β = 0.9, the usual momentum value.
The averaging weight is c_{t+1} = w_t / Σ_{i≤t} w_i with w_t = t^r · γ_max,t^p (§4.3: p = 2
weights steps taken during warm-up by their squared learning rate; r = 0 gives a uniform average
once warm-up is over). There is no decay schedule: the average plays the role of the annealing.

Our classes keep x and z explicitly, which reads like the equations above. The parameter tensor
itself holds y during training, where the gradient is needed, and x after ``eval()``; ``train()``
puts y back. (Meta's ``schedulefree`` package stores only y and z and recovers x algebraically; the
iterates are the same, which ``tests/papers/test_schedule_free.py`` checks.)

Conventions we share with the package, where Algorithm 1 of the paper is written differently:
  * Adam's second moment is bias-corrected inside the denominator, g / (√(v_t / (1 - β2^t)) + ε),
    rather than folded into the learning rate as γ_t = γ √(1 - β2^t) (the two differ only in where
    ε sits and in the averaging weights during the first few steps).
  * The averaging weight uses the largest learning rate seen so far, which equals γ_t for the
    linear warm-up followed by a constant rate that schedule-free training uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch


class _ScheduleFree(torch.optim.Optimizer):
    """Shared bookkeeping: warm-up, the averaging weight c_{t+1}, and the y/x swap."""

    def __init__(self, params: Iterable, defaults: dict):
        defaults.update(step=0, weight_sum=0.0, lr_max=0.0, train_mode=True)
        super().__init__(params, defaults)

    def _lr_and_c(self, group: dict) -> tuple[float, float]:
        """γ_t = γ · min(1, t / warmup) and c_{t+1} = w_t / Σ_{i≤t} w_i (§4.3)."""
        group["step"] += 1
        t = group["step"]
        lr = (
            group["lr"] * min(1.0, t / group["warmup_steps"])
            if group["warmup_steps"]
            else group["lr"]
        )
        group["lr_max"] = max(group["lr_max"], lr)
        w = t ** group["r"] * group["lr_max"] ** group["weight_lr_power"]
        group["weight_sum"] += w
        return lr, (w / group["weight_sum"] if group["weight_sum"] > 0 else 0.0)

    def _state(self, p: torch.Tensor) -> dict:
        st = self.state[p]
        if not st:
            # At t = 1 all three sequences start at the initial point: x_1 = z_1 = y_1.
            st["x"] = p.detach().clone()
            st["z"] = p.detach().clone()
        return st

    @torch.no_grad()
    def eval(self) -> None:
        """Load x (the averaged iterate) into the parameters, for evaluation or saving."""
        for group in self.param_groups:
            if group["train_mode"]:
                for p in group["params"]:
                    if p in self.state and "x" in self.state[p]:
                        p.copy_(self.state[p]["x"])
                group["train_mode"] = False

    @torch.no_grad()
    def train(self) -> None:
        """Load y = (1 - β) z + β x back, where the next gradient is taken."""
        for group in self.param_groups:
            if not group["train_mode"]:
                beta = self._beta(group)
                for p in group["params"]:
                    st = self.state.get(p)
                    if st and "x" in st:
                        p.copy_(torch.lerp(st["z"], st["x"], beta))
                group["train_mode"] = True

    @staticmethod
    def _beta(group: dict) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _direction(
        self, p: torch.Tensor, grad: torch.Tensor, group: dict, st: dict
    ) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover - abstract

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        if not self.param_groups[0]["train_mode"]:
            raise RuntimeError(
                "call optimizer.train() before step(): the parameters hold x, "
                "but the gradient must be taken at y"
            )
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, c = self._lr_and_c(group)
            beta = self._beta(group)
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self._state(p)
                x, z = st["x"], st["z"]
                d = self._direction(p, p.grad, group, st)
                if group["weight_decay"]:
                    d = d + group["weight_decay"] * p  # decay taken at y, like the gradient
                z.sub_(d, alpha=lr)  # z_{t+1} = z_t - γ_t d_t
                x.lerp_(z, c)  # x_{t+1} = (1 - c) x_t + c z_{t+1}
                p.copy_(torch.lerp(z, x, beta))  # y_{t+1} = (1 - β) z_{t+1} + β x_{t+1}
        return loss


class ScheduleFreeSGD(_ScheduleFree):
    """Schedule-free SGD: d_t = ∇f(y_t) (+ λ y_t).  ``momentum`` is β of the interpolation."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
    ):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                weight_decay=weight_decay,
                warmup_steps=warmup_steps,
                r=r,
                weight_lr_power=weight_lr_power,
            ),
        )

    @staticmethod
    def _beta(group: dict) -> float:
        return group["momentum"]

    def _direction(self, p, grad, group, st):
        return grad


class ScheduleFreeAdamW(_ScheduleFree):
    """Schedule-free AdamW (Algorithm 1): d_t = g_t / (√v̂_t + ε) (+ λ y_t), with
    v_t = β2 v_{t-1} + (1 - β2) g_t² and v̂_t = v_t / (1 - β2^t). β1 is the interpolation β:
    there is no first-moment buffer, the x/z averaging replaces it."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 2.5e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=betas,
                eps=eps,
                weight_decay=weight_decay,
                warmup_steps=warmup_steps,
                r=r,
                weight_lr_power=weight_lr_power,
            ),
        )

    @staticmethod
    def _beta(group: dict) -> float:
        return group["betas"][0]

    def _direction(self, p, grad, group, st):
        beta2 = group["betas"][1]
        if "v" not in st:
            st["v"] = torch.zeros_like(p)
        st["v"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias2 = 1 - beta2 ** group["step"]
        return grad / (st["v"].div(bias2).sqrt_().add_(group["eps"]))


def cosine_with_warmup(
    step: int, total: int, peak: float, warmup: int, floor: float = 0.0
) -> float:
    """The baseline schedule: linear warm-up, then γ = floor + (peak - floor)(1 + cos(π s)) / 2
    with s the fraction of the post-warm-up steps done. It needs ``total`` in advance, which is
    exactly what schedule-free training does without."""
    if step < warmup:
        return peak * (step + 1) / warmup
    s = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor * peak + (1 - floor) * peak * 0.5 * (1 + math.cos(math.pi * s))
