"""A softmax focal loss that speaks its own conventions: examples/focal_binding.toml binds it, no Python written.

It differs from lossguard's contract for ``softmax_focal_loss`` in every way a shipped loss does: an
``nn.Module`` that needs a ``mode`` constructor argument, ``focusing`` for gamma, arguments named
``logits``/``labels``, no alpha and no ignore_index, batched input only, and a
'none' output that keeps the per-class terms (N, C, *). The values are right: -(1 - p_y)^gamma log p_y,
with log(1 - p_c) computed as the log-sum-exp of the other classes' logits minus that of all (Lin et al.
2017; no cancellation in 1 - p as p -> 1, so the gradient stays finite for gamma < 1).
"""

import torch


class FocalWithConventions(torch.nn.Module):
    def __init__(self, mode: str, focusing: float = 2.0, reduction: str = "mean"):
        super().__init__()
        if mode != "multiclass":
            raise ValueError(f"FocalWithConventions supports mode='multiclass' only, got {mode!r}")
        if not focusing >= 0:
            raise ValueError(f"focusing must be non-negative, got {focusing}")
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
        self.focusing, self.reduction = focusing, reduction

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        n_classes = logits.shape[1]
        log_p = torch.log_softmax(logits, dim=1)
        onehot = torch.nn.functional.one_hot(labels, n_classes).movedim(-1, 1).to(logits.dtype)
        spread = logits.unsqueeze(1).expand(logits.shape[0], n_classes, *logits.shape[1:])  # [n, c, k] = z[n, k]
        own = torch.eye(n_classes, dtype=torch.bool).reshape(1, n_classes, n_classes, *[1] * (logits.ndim - 2))
        others = torch.logsumexp(spread.masked_fill(own, float("-inf")), dim=2)
        log_q = others - torch.logsumexp(logits, dim=1, keepdim=True)  # log(1 - p_c)
        modulating = torch.exp(self.focusing * log_q) if self.focusing else torch.ones_like(log_q)
        terms = -onehot * modulating * log_p
        if self.reduction == "none":
            return terms
        total = terms.sum()
        return total if self.reduction == "sum" else total / (terms.numel() // n_classes)
