"""Two losses as a team might write them: one correct, one with the classic focal-loss pitfall.

Audit them with lossguard (the README shows the commands and what they print):

    lossguard audit examples/my_losses.py:huber --loss huber_loss
    lossguard audit examples/my_losses.py:focal --loss sigmoid_focal_loss
"""

import torch
import torch.nn.functional as F


def huber(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean", delta: float = 1.0) -> torch.Tensor:
    """Huber loss with the input validation torch's own huber_loss lacks (it broadcasts shapes)."""
    if input.shape != target.shape:
        raise ValueError(f"huber: input {tuple(input.shape)} and target {tuple(target.shape)} differ")
    if delta <= 0:
        raise ValueError(f"huber: delta must be positive, got {delta}")
    return F.huber_loss(input, target, reduction=reduction, delta=delta)


def focal(
    input: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0, reduction: str = "mean"
) -> torch.Tensor:
    """Binary focal loss computed from probabilities, with a clamp to avoid log(0): the pitfall."""
    p = torch.sigmoid(input)
    p_t = p * target + (1 - p) * (1 - target)
    alpha_t = 1.0 if alpha is None else alpha * target + (1 - alpha) * (1 - target)
    loss = -alpha_t * (1 - p_t) ** gamma * torch.log(p_t.clamp_min(1e-8))
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss
