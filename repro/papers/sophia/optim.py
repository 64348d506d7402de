"""Sophia (Liu, Li, Hall, Liang, Ma 2023, arXiv:2305.14342), written from the paper.

The update (Algorithm 3, with the pre-conditioner coefficient γ of the paper's later versions):

    m_t     = β1 m_{t-1} + (1 - β1) g_t                         gradient EMA
    h_t     = β2 h_{t-k} + (1 - β2) ĥ_t      every k steps      EMA of a diagonal-curvature estimate
    θ_t     ← θ_t - η_t λ θ_t                                   decoupled weight decay
    θ_{t+1} = θ_t - η_t · clip(m_t / max(γ h_t, ε), 1)          clip(z, 1) = max(min(z, 1), -1)

Dividing by the curvature takes a Newton-like step, small where the loss is sharp and large where
it is flat. The per-coordinate clip bounds every step by η_t: it guards against curvature that is
tiny, stale (h is refreshed only every k steps) or negative (non-convex regions), where the
Newton step would be huge or point uphill. Where it clips, the step is η_t · sign(m_t).

Two estimators of the Hessian diagonal ĥ (§2.3); both are functions below:

* Hutchinson (Sophia-H): u ~ N(0, I), ĥ = u ⊙ (∇²L u). Unbiased for diag(∇²L), since
  E[u_i Σ_j H_ij u_j] = H_ii. One Hessian-vector product (a second backward pass).
* Gauss-Newton-Bartlett (Sophia-G): sample labels ŷ_b ~ softmax(f(θ, x_b)) from the model
  itself, take the mean loss L̂ on those labels, ĥ = B · ∇L̂ ⊙ ∇L̂ (B examples; here B counts
  tokens). Bartlett's identity E_ŷ[∇ℓ(ŷ) ∇ℓ(ŷ)ᵀ] = Jᵀ (diag p - p pᵀ) J turns the squared
  gradient into an unbiased estimate of the Gauss-Newton diagonal, a positive semi-definite
  stand-in for the Hessian. One extra ordinary backward pass.

How the miscellanea post (2023-02-22) reads the two: the first is the mini-batch Hessian probed
with a vector of Gaussian variables; for the second, the post coins the term "auto-loss" — the loss
the model gets when, for each input, a label is drawn from its own softmax and treated as the
truth — and likens taking the gradient of that loss to an unlearning phase. (The post speaks of
the inverse of that loss; the sign does not matter once the gradient is squared.) In the paper's
terms the auto-loss is L̂ above, and its squared gradient estimates the diagonal of the Fisher
information of the model's own predictions, which for a softmax output equals the Gauss-Newton
part of the Hessian.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F


class Sophia(torch.optim.Optimizer):
    """Sophia's step. The curvature estimate is handed in by ``update_hessian`` every k steps,
    which keeps the optimiser independent of how ĥ was obtained (Hutchinson or GNB)."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.96, 0.99),
        gamma: float = 0.01,
        eps: float = 1e-12,
        weight_decay: float = 0.1,
    ):
        super().__init__(
            params, dict(lr=lr, betas=betas, gamma=gamma, eps=eps, weight_decay=weight_decay)
        )

    def _state(self, p: torch.Tensor) -> dict:
        st = self.state[p]
        if not st:
            st["m"] = torch.zeros_like(p)
            st["h"] = torch.zeros_like(p)  # h_{1-k} = 0, as in Algorithm 3
        return st

    @torch.no_grad()
    def update_hessian(self, h_hat: Sequence[torch.Tensor | None]) -> None:
        """h_t = β2 h_{t-k} + (1 - β2) ĥ_t, one ĥ per parameter in param-group order."""
        it = iter(h_hat)
        for group in self.param_groups:
            beta2 = group["betas"][1]
            for p in group["params"]:
                est = next(it)
                if est is not None:
                    self._state(p)["h"].mul_(beta2).add_(est, alpha=1 - beta2)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        clipped, total = 0, 0
        for group in self.param_groups:
            beta1 = group["betas"][0]
            lr, gamma, eps = group["lr"], group["gamma"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self._state(p)
                st["m"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
                p.mul_(1 - lr * group["weight_decay"])
                ratio = st["m"] / torch.clamp(gamma * st["h"], min=eps)
                clipped += int((ratio.abs() >= 1).sum())
                total += ratio.numel()
                p.sub_(ratio.clamp_(-1.0, 1.0), alpha=lr)
        # share of coordinates that took the sign step; the paper's authors tune γ with it
        self.clip_fraction = clipped / max(total, 1)
        return loss


# --------------------------------------------------------------------------- estimators
def hutchinson_diag(
    loss: torch.Tensor, params: Sequence[torch.Tensor], generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """ĥ = u ⊙ (∇²L u) with u ~ N(0, I): one Hessian-vector product by double backward.
    ``loss`` must come from a graph built with a twice-differentiable path (for attention on
    the CPU: the math kernel of scaled_dot_product_attention)."""
    grads = torch.autograd.grad(loss, params, create_graph=True)
    us = [torch.randn(p.shape, generator=generator, dtype=p.dtype, device=p.device) for p in params]
    gu = sum((g * u).sum() for g, u in zip(grads, us))  # ⟨∇L, u⟩
    # ∇⟨∇L, u⟩ = ∇²L u; the graph is kept so that the caller can still backward the loss
    hvp = torch.autograd.grad(gu, params, retain_graph=True)
    return [u * hu for u, hu in zip(us, hvp)]


def gnb_diag(
    logits: torch.Tensor, params: Sequence[torch.Tensor], generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """ĥ = B · ∇L̂ ⊙ ∇L̂, with L̂ the mean cross-entropy against labels sampled from the model's
    own softmax (the "auto-loss"). ``logits``: (..., V) with a graph to ``params``."""
    flat = logits.reshape(-1, logits.size(-1))  # (B, V)
    with torch.no_grad():
        y_hat = torch.multinomial(flat.float().softmax(-1), 1, generator=generator).squeeze(-1)
    auto_loss = F.cross_entropy(flat, y_hat)
    # keep the graph: the training loss usually shares this forward pass
    grads = torch.autograd.grad(auto_loss, params, retain_graph=True)
    b = flat.size(0)
    return [b * g * g for g in grads]
