"""Straightforward float32 evaluations of the catalog's definitions (as docs/LOSSES.md writes them).

Each function takes the example's arguments as torch tensors (float32, float arrays with
``requires_grad``) and its parameters, and returns the loss as the canonical call does (the reduced
value, or the ``reduction='none'`` output), computed literally in float32: no log-sum-exp shift, no
``log1p``/``expm1``, no stable rewrites, so that its rounding errors are those the error scales must
cover (``test_scales_pinned``). Nothing here is lossguard's own implementation or torch's fused loss.
"""

from __future__ import annotations

import math

import numpy as np
import torch

F32 = torch.float32


def _reduce(v, reduction, normaliser=None):
    if reduction == "none":
        return v
    total = v.sum()
    if reduction == "sum":
        return total
    if reduction == "batchmean":
        return total / v.shape[0]
    return total / (v.numel() if normaliser is None else normaliser)


def _sig(z):
    """sigmoid as the function the definitions name (1 / (1 + exp(-z)) overflows autograd's exp(-z)^2 below -44)."""
    return torch.sigmoid(z)


def _softplus(z):
    """softplus as the function it names, log1p(exp(z)) (the definitions write softplus, not log(1 + exp))."""
    return torch.log1p(torch.exp(z))


class Overflow(ArithmeticError):
    """The literal (unshifted) form would overflow float32 on this input: it is not evaluated there."""


SHIFTED = True  # which of the two textbook forms of log softmax (and softmax) the functions below use


def _shift(z, dim):
    """The (detached) max along ``dim`` (SHIFTED), or 0 for the literal form, which raises Overflow where exp
    would overflow float32 (logits above 80: info_nce at temperature 0.01 has cosines / T up to 100)."""
    if SHIFTED:
        m = z.detach().amax(dim=dim, keepdim=True)
        return torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    if bool((z.detach() > 80).any()):
        raise Overflow
    return torch.zeros((), dtype=z.dtype)


def _log_softmax(z, dim):
    """log softmax as the textbook writes it, z - log sum exp z, shifted by the max or not (``SHIFTED``)."""
    m = _shift(z, dim)
    return z - m - torch.log(torch.exp(z - m).sum(dim=dim, keepdim=True))


def _classes_last(z):
    return z[None] if z.ndim == 1 else torch.movedim(z, 1, -1)


# --- regression -----------------------------------------------------------------------------------


def mse_loss(input, target, reduction="mean"):
    return _reduce((input - target) ** 2, reduction)


def l1_loss(input, target, reduction="mean"):
    return _reduce((input - target).abs(), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0):
    e = input - target
    return _reduce(torch.where(e.abs() <= delta, 0.5 * e * e, delta * (e.abs() - 0.5 * delta)), reduction)


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    e = input - target
    if beta == 0:
        return _reduce(e.abs(), reduction)
    return _reduce(torch.where(e.abs() < beta, 0.5 * e * e / beta, e.abs() - 0.5 * beta), reduction)


def log_cosh_loss(input, target, reduction="mean"):
    return _reduce(torch.log(torch.cosh(input - target)), reduction)


def quantile_loss(input, target, tau=0.5, reduction="mean"):
    r = target - input
    return _reduce(torch.maximum(tau * r, (tau - 1) * r), reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, eps=1e-8, reduction="mean"):
    v = torch.exp(input) - target * input if log_input else input - target * torch.log(input + eps)
    if full:
        stirling = target * torch.log(target) - target + 0.5 * torch.log(2 * math.pi * target)
        v = v + torch.where(target > 1, stirling, torch.zeros_like(target))
    return _reduce(v, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    if var.ndim == input.ndim - 1:
        var = var[..., None]
    v = var.clamp(min=eps)
    out = 0.5 * (torch.log(v) + (input - target) ** 2 / v)
    if full:
        out = out + 0.5 * math.log(2 * math.pi)
    return _reduce(out, reduction)


def tweedie_loss(input, target, power=1.5, reduction="mean"):
    p = power
    v = -target * torch.exp((1 - p) * input) / (1 - p) + torch.exp((2 - p) * input) / (2 - p)
    return _reduce(v, reduction)


def asymmetric_mse_loss(input, target, over_penalty=2.0, reduction="mean"):
    e = input - target
    return _reduce(torch.where(e > 0, over_penalty * e * e, e * e), reduction)


def _log1m(p):
    """log(1 - p) as log1p(-p): with the literal log(1 - p), 1 - p rounds to 1 for p < 2^-25 and the error is u
    absolute, while the references' BCE scale is |log(1 - p)| (p = 1e-30, y = 0: 7.6e6 units; test_scales_pinned)."""
    return torch.log1p(-p)


# --- classification -------------------------------------------------------------------------------


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    v = -(target * torch.log(input).clamp(min=-100) + (1 - target) * _log1m(input).clamp(min=-100))
    return _reduce(v if weight is None else weight * v, reduction)


def _bce_logits(z, y, pos_weight=None):
    if pos_weight is None:
        return (1 - y) * z + _softplus(-z)
    return (1 - y) * z + (1 + (pos_weight - 1) * y) * _softplus(-z)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    v = _bce_logits(input, target, pos_weight)
    return _reduce(v if weight is None else weight * v, reduction)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    z = _classes_last(input)
    c = z.shape[-1]
    w = torch.ones(c, dtype=F32) if weight is None else weight
    log_p = _log_softmax(z, -1)
    if target.dtype.is_floating_point:
        t = _classes_last(target)
        t = (1 - label_smoothing) * t + label_smoothing / c
        v = -(w * t * log_p).sum(-1)
        normaliser = v.numel()
    else:
        t = target[None] if target.ndim == 0 else target
        valid = t != ignore_index
        index = torch.where(valid, t, torch.zeros_like(t))
        onehot = torch.nn.functional.one_hot(index, c).to(F32)
        a = ((1 - label_smoothing) * onehot + label_smoothing / c) * w * valid[..., None]
        v = -(a * log_p).sum(-1)
        normaliser = (w[index] * valid).sum()
    if input.ndim == 1:
        v = v[0]
    return _reduce(v, reduction, normaliser)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    x = _classes_last(input)
    c = x.shape[-1]
    w = torch.ones(c, dtype=F32) if weight is None else weight
    t = target[None] if target.ndim == 0 else target
    valid = t != ignore_index
    index = torch.where(valid, t, torch.zeros_like(t))
    w_y = w[index] * valid
    v = -w_y * torch.gather(x, -1, index[..., None])[..., 0]
    if input.ndim == 1:
        v = v[0]
    return _reduce(v, reduction, w_y.sum())


def kl_div(input, target, reduction="mean", log_target=False):
    if log_target:
        v = torch.exp(target) * (target - input)
    else:
        v = torch.where(target > 0, target * (torch.log(target) - input), torch.zeros_like(target))
    return _reduce(v, reduction)


def sigmoid_focal_loss(input, target, alpha=0.25, gamma=2.0, reduction="mean"):
    p = _sig(input)
    ce = _bce_logits(input, target)
    p_t = p * target + (1 - p) * (1 - target)
    v = ce * (1 - p_t) ** gamma
    if alpha is not None and alpha >= 0:
        v = (alpha * target + (1 - alpha) * (1 - target)) * v
    return _reduce(v, reduction)


def softmax_focal_loss(input, target, alpha=None, gamma=2.0, ignore_index=-100, reduction="mean"):
    z = _classes_last(input)
    t = target[None] if target.ndim == 0 else target
    valid = t != ignore_index
    index = torch.where(valid, t, torch.zeros_like(t))
    log_p = torch.gather(_log_softmax(z, -1), -1, index[..., None])[..., 0]
    p = torch.exp(log_p)
    v = -((1 - p) ** gamma) * log_p
    if alpha is not None:
        a = alpha if not torch.is_tensor(alpha) or alpha.ndim == 0 else alpha[index]
        v = a * v
    v = v * valid
    if input.ndim == 1:
        v = v[0]
    return _reduce(v, reduction, valid.sum())


def hinge_loss(input, target, margin=1.0, reduction="mean"):
    return _reduce((margin - target * input).clamp(min=0), reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    x = input[None] if input.ndim == 1 else input
    t = target.reshape(-1)
    c = x.shape[-1]
    x_y = torch.gather(x, -1, t[:, None])
    h = (margin - x_y + x).clamp(min=0) ** p
    if weight is not None:
        h = weight[t][:, None] * h
    h = h * (1 - torch.nn.functional.one_hot(t, c).to(F32))
    v = h.sum(-1) / c
    if input.ndim == 1:
        v = v[0]
    return _reduce(v, reduction)


def multilabel_soft_margin_loss(input, target, weight=None, reduction="mean"):
    v = _bce_logits(input, target)
    if weight is not None:
        v = weight * v
    return _reduce(v.mean(-1), reduction)


# --- metric ---------------------------------------------------------------------------------------


def contrastive_loss(x1, x2, label, margin=1.0, reduction="mean"):
    d = torch.sqrt(((x1 - x2) ** 2).sum(-1))
    return _reduce(label * d * d + (1 - label) * (margin - d).clamp(min=0) ** 2, reduction)


def _pdist(x, y, p, eps):
    return ((x - y + eps).abs() ** p).sum(-1) ** (1 / p)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean"):
    d_ap = _pdist(anchor, positive, p, eps)
    d_an = _pdist(anchor, negative, p, eps)
    if swap:
        d_an = torch.minimum(d_an, _pdist(positive, negative, p, eps))
    return _reduce((d_ap - d_an + margin).clamp(min=0), reduction)


def batch_hard_triplet_loss(embeddings, labels, margin=1.0):
    x = embeddings
    eye = torch.eye(len(labels), dtype=torch.bool)
    squared = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    # the diagonal's sqrt(0) would give autograd a NaN (inf times the mask's 0) in every row: it takes no part
    d = torch.sqrt(torch.where(eye, torch.ones_like(squared), squared)).masked_fill(eye, 0.0)
    same = labels[:, None] == labels[None, :]
    pos, neg = same & ~eye, ~same
    valid = pos.any(1) & neg.any(1)
    if not bool(valid.any()):
        return (x * 0).sum()
    hardest_pos = torch.where(pos, d, torch.full_like(d, -math.inf)).max(1).values
    hardest_neg = torch.where(neg, d, torch.full_like(d, math.inf)).min(1).values
    t = (hardest_pos - hardest_neg + margin).clamp(min=0)
    return t[valid].mean()


def _unit(x):
    """F.normalize's convention: x / max(||x||, 1e-12)."""
    return x / torch.sqrt((x * x).sum(-1, keepdim=True)).clamp(min=1e-12)


def info_nce_loss(query, positive_key, negative_keys, temperature=0.07, normalize=True, reduction="mean"):
    q, k, n = (
        (_unit(query), _unit(positive_key), _unit(negative_keys)) if normalize else (query, positive_key, negative_keys)
    )
    pos = (q * k).sum(-1, keepdim=True)
    neg = (q[:, None, :] * n).sum(-1)
    logits = torch.cat([pos, neg], dim=-1) / temperature
    return _reduce(-_log_softmax(logits, -1)[:, 0], reduction)


def nt_xent_loss(z_i, z_j, temperature=0.5):
    z = _unit(torch.cat([z_i, z_j]))
    n = z_i.shape[0]
    mask = torch.eye(2 * n, dtype=torch.bool)
    sim = (z @ z.T / temperature).masked_fill(mask, -math.inf)  # the denominator never holds the view itself
    pair = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    log_p = _log_softmax(sim, -1)[torch.arange(2 * n), pair]
    return -log_p.mean()


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction="mean"):
    cos = (input1 * input2).sum(-1) / torch.sqrt(((input1**2).sum(-1) + 1e-12) * ((input2**2).sum(-1) + 1e-12))
    v = torch.where(target == 1, 1 - cos, (cos - margin).clamp(min=0))
    return _reduce(v, reduction)


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction="mean"):
    return _reduce((-target * (input1 - input2) + margin).clamp(min=0), reduction)


def pairwise_logistic_loss(chosen, rejected, reduction="mean"):
    # the definition names log sigmoid as one function, "stable for any finite difference": the literal
    # -log(sigmoid(d)) is 0 for d > 17 in float32 (sigmoid rounds to 1), an absolute error u against the
    # reference's relative scale (chosen 20, rejected 0: 6e5 units)
    return _reduce(-torch.nn.functional.logsigmoid(chosen - rejected), reduction)


# --- segmentation ---------------------------------------------------------------------------------


def _sum(v, dims):
    return v.sum(dims) if dims else v  # torch's sum over () would sum everything


def _dims(ndim, batch):
    dims = tuple(range(2, ndim))
    return (0, *dims) if batch else dims


def _overlap(input, target, from_logits, batch):
    p = _sig(input) if from_logits else input
    dims = _dims(input.ndim, batch)
    return _sum(p * target, dims), _sum(p, dims), _sum(target, dims)


def dice_loss(input, target, smooth=1.0, from_logits=True, batch=False, reduction="mean"):
    tp, sp, sy = _overlap(input, target, from_logits, batch)
    return _reduce(1 - (2 * tp + smooth) / (sp + sy + smooth), reduction)


def jaccard_loss(input, target, smooth=1.0, from_logits=True, batch=False, reduction="mean"):
    tp, sp, sy = _overlap(input, target, from_logits, batch)
    return _reduce(1 - (tp + smooth) / (sp + sy - tp + smooth), reduction)


def tversky_loss(input, target, alpha=0.5, beta=0.5, smooth=1.0, from_logits=True, batch=False, reduction="mean"):
    p = _sig(input) if from_logits else input
    dims = _dims(input.ndim, batch)
    tp = _sum(p * target, dims)
    fp = _sum(p * (1 - target), dims)
    fn = _sum((1 - p) * target, dims)
    return _reduce(1 - (tp + smooth) / (tp + alpha * fp + beta * fn + smooth), reduction)


def multiclass_dice_loss(input, target, smooth=1.0, ignore_index=None, batch=False, reduction="mean"):
    c = input.shape[1]
    e = torch.exp(input - _shift(input, 1))
    p = e / e.sum(1, keepdim=True)
    keep = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    index = torch.where(keep, target, torch.zeros_like(target))
    y = torch.movedim(torch.nn.functional.one_hot(index, c).to(F32), -1, 1) * keep[:, None]
    p = p * keep[:, None]
    dims = _dims(input.ndim, batch)
    tp, sp, sy = _sum(p * y, dims), _sum(p, dims), _sum(y, dims)
    return _reduce(1 - (2 * tp + smooth) / (sp + sy + smooth), reduction)


def bce_dice_loss(input, target, bce_weight=0.5, dice_weight=1.0, smooth=1.0):
    bce = binary_cross_entropy_with_logits(input, target)
    return bce_weight * bce + dice_weight * dice_loss(input, target, smooth=smooth)


def ce_dice_loss(input, target, ce_weight=0.5, dice_weight=0.5, smooth=1.0):
    return ce_weight * cross_entropy(input, target) + dice_weight * multiclass_dice_loss(input, target, smooth=smooth)


def boundary_loss(input, distance_map, from_logits=True, reduction="mean"):
    p = _sig(input) if from_logits else input
    return _reduce(p * distance_map, reduction)


# --- detection ------------------------------------------------------------------------------------


def _boxes(b1, b2, eps):
    x1, y1, x2, y2 = b1.unbind(-1)
    u1, v1, u2, v2 = b2.unbind(-1)
    area1 = (x2 - x1) * (y2 - y1)
    area2 = (u2 - u1) * (v2 - v1)
    iw = (torch.minimum(x2, u2) - torch.maximum(x1, u1)).clamp(min=0)
    ih = (torch.minimum(y2, v2) - torch.maximum(y1, v1)).clamp(min=0)
    inter = iw * ih
    union = area1 + area2 - inter
    iou = inter / (union + eps)
    cw = torch.maximum(x2, u2) - torch.minimum(x1, u1)
    ch = torch.maximum(y2, v2) - torch.minimum(y1, v1)
    return locals()


def iou_loss(boxes1, boxes2, eps=1e-7, reduction="mean"):
    return _reduce(1 - _boxes(boxes1, boxes2, eps)["iou"], reduction)


def generalized_box_iou_loss(boxes1, boxes2, eps=1e-7, reduction="mean"):
    b = _boxes(boxes1, boxes2, eps)
    area_c = b["cw"] * b["ch"]
    return _reduce(1 - b["iou"] + (area_c - b["union"]) / (area_c + eps), reduction)


def _diou(b, eps):
    rho2 = ((b["x1"] + b["x2"]) / 2 - (b["u1"] + b["u2"]) / 2) ** 2 + (
        (b["y1"] + b["y2"]) / 2 - (b["v1"] + b["v2"]) / 2
    ) ** 2
    return 1 - b["iou"] + rho2 / (b["cw"] ** 2 + b["ch"] ** 2 + eps)


def distance_box_iou_loss(boxes1, boxes2, eps=1e-7, reduction="mean"):
    return _reduce(_diou(_boxes(boxes1, boxes2, eps), eps), reduction)


def complete_box_iou_loss(boxes1, boxes2, eps=1e-7, reduction="mean"):
    b = _boxes(boxes1, boxes2, eps)
    w1, h1 = b["x2"] - b["x1"], b["y2"] - b["y1"]
    w2, h2 = b["u2"] - b["u1"], b["v2"] - b["v1"]
    v = (4 / math.pi**2) * (torch.atan2(w2, h2) - torch.atan2(w1, h1)) ** 2
    alpha = v / (1 - b["iou"] + v + eps)
    return _reduce(_diou(b, eps) + alpha * v, reduction)


# --- generative -----------------------------------------------------------------------------------


def gan_discriminator_loss(real_logits, fake_logits):
    return _softplus(-real_logits).mean() + (fake_logits + _softplus(-fake_logits)).mean()


def gan_generator_loss(fake_logits):
    return _softplus(-fake_logits).mean()


def wgan_critic_loss(real_scores, fake_scores):
    return fake_scores.mean() - real_scores.mean()


def wgan_generator_loss(fake_scores):
    return -fake_scores.mean()


def vae_loss(recon, x, mu, logvar, beta=1.0, recon_loss="bce"):
    if recon_loss == "bce":
        rec = -(x * torch.log(recon).clamp(min=-100) + (1 - x) * _log1m(recon).clamp(min=-100)).sum()
    else:
        rec = ((recon - x) ** 2).sum()
    return rec + beta * (-0.5 * (1 + logvar - mu**2 - torch.exp(logvar)).sum())


def perceptual_loss(input, target, feature_extractor, layers, layer_weights=None):
    def features(x):
        out = []
        for w, b in feature_extractor.parameters:
            w, b = torch.tensor(w, dtype=F32), torch.tensor(b, dtype=F32)
            x = torch.tanh(torch.einsum("oc,nc...->no...", w, x) + b.reshape((1, -1) + (1,) * (x.ndim - 2)))
            out.append(x)
        return out

    f_in, f_t = features(input), features(target)
    w = torch.ones(len(layers), dtype=F32) if layer_weights is None else layer_weights
    mses = torch.stack([((f_in[layer] - f_t[layer]) ** 2).mean() for layer in layers])
    return (w * mses).sum() / w.sum()


def uncertainty_weighted_loss(losses, log_vars):
    return (torch.exp(-log_vars) * losses + log_vars).sum()


# --- sequence -------------------------------------------------------------------------------------


def sequence_cross_entropy(logits, target, ignore_index=-100, label_smoothing=0.0):
    z = logits.reshape(-1, logits.shape[-1])
    return cross_entropy(z, target.reshape(-1), ignore_index=ignore_index, label_smoothing=label_smoothing)


def linear_cross_entropy(hidden, weight, target, bias=None, ignore_index=-100, reduction="mean"):
    logits = hidden @ weight.T
    if bias is not None:
        logits = logits + bias
    return cross_entropy(logits, target, ignore_index=ignore_index, reduction=reduction)


def as_torch(value):
    """A float array as a float32 leaf tensor with a gradient, an integer array as int64, the rest unchanged."""
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        if np.issubdtype(value.dtype, np.floating):
            return torch.tensor(value, dtype=F32, requires_grad=True)
        if np.issubdtype(value.dtype, np.integer) or value.dtype == bool:
            return torch.tensor(value.astype(np.int64))
    return value
