"""The two ways of computing a fast-weight memory, and two decoders whose state we measure.

Notation (Schlag et al. 2021, §2): at step t a slow net emits a key k_t, a value v_t and a
query q_t. The fast weight matrix is written by an outer product and read by a matrix-vector
product:

    W_t = W_{t-1} + v_t ⊗ φ(k_t)          (write)
    y_t = W_t φ(q_t)                      (read)

Unrolling the sum, y_t = Σ_{τ≤t} v_τ (φ(k_τ)·φ(q_t)): causal attention whose weights are
φ(q_t)·φ(k_τ) instead of exp(q_t·k_τ). Optionally the read is normalised as in Katharopoulos
et al. (2020): y_t / (z_t·φ(q_t)) with z_t = z_{t-1} + φ(k_t).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


# --------------------------------------------------------------------------- feature maps
def elu_plus_one(x: torch.Tensor) -> torch.Tensor:
    """φ(x) = ELU(x) + 1 (Katharopoulos et al. 2020): positive, so z_t·φ(q_t) > 0."""
    return F.elu(x) + 1.0


def dpfp(x: torch.Tensor, nu: int) -> torch.Tensor:
    """Deterministic parameter-free projection, DPFP-ν (Schlag et al. 2021).

    r = [ReLU(x), ReLU(−x)] ∈ R^{2d};  φ_ν(x) = concat_{i=1..ν} r ⊙ roll(r, i) ∈ R^{2dν}.
    """
    r = torch.cat([F.relu(x), F.relu(-x)], dim=-1)  # (..., 2d)
    return torch.cat([r * torch.roll(r, shifts=i, dims=-1) for i in range(1, nu + 1)], dim=-1)


def feature_map(name: str):
    if name == "elu1":
        return elu_plus_one
    if name.startswith("dpfp") and name[4:].isdigit():
        nu = int(name[4:])
        return lambda x: dpfp(x, nu)
    raise ValueError(f"feature map {name!r}: use elu1 or dpfp<ν> (dpfp1, dpfp2, ...)")


# --------------------------------------------------------------------------- the two forms
def fast_weight_recurrent(q, k, v, phi, normalize: bool = False) -> torch.Tensor:
    """Step through the sequence, writing into W one outer product at a time.

    q, k: (B, H, T, d_k); v: (B, H, T, d_v). Returns (B, H, T, d_v).
    """
    fq, fk = phi(q), phi(k)  # (B, H, T, d_φ)
    B, H, T, d_phi = fk.shape
    W = q.new_zeros(B, H, v.shape[-1], d_phi)  # (B, H, d_v, d_φ)
    z = q.new_zeros(B, H, d_phi)
    out = []
    for t in range(T):
        W = W + v[:, :, t, :, None] * fk[:, :, t, None, :]  # W_t = W_{t-1} + v_t φ(k_t)ᵀ
        y = (W @ fq[:, :, t, :, None]).squeeze(-1)  # y_t = W_t φ(q_t)
        if normalize:
            z = z + fk[:, :, t]
            y = y / (z * fq[:, :, t]).sum(-1, keepdim=True)
        out.append(y)
    return torch.stack(out, dim=2)


def linear_attention_parallel(
    q, k, v, phi, normalize: bool = False, causal: bool = True
) -> torch.Tensor:
    """All steps at once: Y = M ⊙ (φ(Q) φ(K)ᵀ) V with M the lower-triangular causal mask.

    ``causal=False`` drops the mask (every step sees the whole sequence); it exists so the
    tests can show that the comparison notices a form that is not the recurrence.
    """
    fq, fk = phi(q), phi(k)
    A = fq @ fk.transpose(-2, -1)  # (B, H, T, T)
    if causal:
        A = torch.tril(A)
    y = A @ v  # (B, H, T, d_v)
    if normalize:
        y = y / A.sum(-1, keepdim=True)  # z_t·φ(q_t) = Σ_τ A[t, τ]
    return y


# --------------------------------------------------------------------------- decoders
def tensor_bytes(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class _Projections(torch.nn.Module):
    def __init__(self, d_model: int, heads: int):
        super().__init__()
        assert d_model % heads == 0, "d_model must divide by heads"
        self.heads, self.d_head = heads, d_model // heads
        self.qkv = torch.nn.Linear(d_model, 3 * d_model, bias=False)

    def split(self, x: torch.Tensor):
        """x: (B, d_model) for one step -> q, k, v each (B, H, d_head)."""
        B = x.shape[0]
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return (t.view(B, self.heads, self.d_head) for t in (q, k, v))


class FastWeightDecoder(_Projections):
    """One attention layer run token by token; between steps it keeps only (W, z)."""

    def __init__(self, d_model: int, heads: int, phi_name: str = "elu1"):
        super().__init__(d_model, heads)
        self.phi = feature_map(phi_name)
        self.W: torch.Tensor | None = None
        self.z: torch.Tensor | None = None

    def reset(self) -> None:
        self.W = self.z = None

    @torch.no_grad()
    def step(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.split(x)
        fq, fk = self.phi(q), self.phi(k)  # (B, H, d_φ)
        if self.W is None:
            self.W = x.new_zeros(*v.shape, fk.shape[-1])  # (B, H, d_head, d_φ)
            self.z = x.new_zeros(fk.shape)
        self.W = self.W + v[..., :, None] * fk[..., None, :]
        self.z = self.z + fk
        y = (self.W @ fq[..., None]).squeeze(-1) / (self.z * fq).sum(-1, keepdim=True)
        return y.reshape(x.shape[0], -1)

    def state_bytes(self) -> int:
        return tensor_bytes(self.W, self.z)


class SoftmaxKVDecoder(_Projections):
    """The same layer with softmax attention; between steps it keeps every key and value."""

    def __init__(self, d_model: int, heads: int):
        super().__init__(d_model, heads)
        self.K: torch.Tensor | None = None
        self.V: torch.Tensor | None = None

    def reset(self) -> None:
        self.K = self.V = None

    @torch.no_grad()
    def step(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.split(x)
        k, v = k[:, :, None], v[:, :, None]  # (B, H, 1, d_head)
        self.K = k if self.K is None else torch.cat([self.K, k], dim=2)  # (B, H, t, d_head)
        self.V = v if self.V is None else torch.cat([self.V, v], dim=2)
        y = F.scaled_dot_product_attention(q[:, :, None], self.K, self.V)  # (B, H, 1, d_head)
        return y.reshape(x.shape[0], -1)

    def state_bytes(self) -> int:
        return tensor_bytes(self.K, self.V)


def decode(decoder, xs: torch.Tensor, read_at: set[int]) -> tuple[torch.Tensor, dict[int, int]]:
    """Feed xs (B, T, d_model) one step at a time; return the outputs (B, T, d_model) and the
    decoder's state bytes after each step in ``read_at`` (1-based lengths)."""
    decoder.reset()
    ys, sizes = [], {}
    for t in range(xs.shape[1]):
        ys.append(decoder.step(xs[:, t]))
        if t + 1 in read_at:
            sizes[t + 1] = decoder.state_bytes()
    return torch.stack(ys, dim=1), sizes
