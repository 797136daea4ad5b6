"""Deterministic, valid benchmark inputs for every catalog entry (no Hypothesis: same tensors every run).

``make_inputs(spec, n, dtype, device)`` builds the arguments of one realistic call, by hand per argument
layout: element-wise losses get ``n`` elements (default 4096), class losses ``(n, classes)`` logits
(default 256 x 100) with their class-index or label targets, the other families one realistic batch
each (``BUILDERS``: 512 embeddings, 8 images of 64 x 64, 4096 boxes, a (2048, 128) x (8192, 128)
language-model head, ...). Values lie in each loss's domain
(probabilities in (0, 1), counts >= 0, variances > 0, labels in {0, 1} or {-1, +1}), drawn from a
fixed seed on the CPU and then moved to ``device``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from lossguard.harness.kernel.model import LossSpec

SEED = 20240601
ELEMENTS = 4096  # element-wise losses: one batch of 4096 predictions
ROWS, CLASSES = 256, 100  # class losses: (256, 100) logits

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class Inputs:
    """The arguments of one call (canonical names, in order), its parameters, and the arguments to
    differentiate in a backward pass."""

    args: dict[str, torch.Tensor]
    params: dict[str, Any]
    grad: tuple[str, ...]

    def call(self, fn: Callable[..., torch.Tensor]) -> torch.Tensor:
        return fn(*self.args.values(), **self.params)

    def requires_grad(self, flag: bool = True) -> Inputs:
        for name in self.grad:
            self.args[name].requires_grad_(flag)
        return self

    def zero_grad(self) -> None:
        for name in self.grad:
            self.args[name].grad = None


def _labels(g: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randint(0, 2, shape, generator=g).double()


def _elementwise(name: str, g: torch.Generator, n: int) -> dict[str, torch.Tensor]:
    x = torch.randn(n, generator=g, dtype=torch.float64)
    if name in ("poisson_nll_loss", "tweedie_loss"):  # log-mean input, non-negative count targets
        eta = 0.5 * x
        return {"input": eta, "target": torch.poisson(eta.exp(), generator=g)}
    if name == "gaussian_nll_loss":
        var = 0.1 + torch.rand(n, generator=g, dtype=torch.float64)
        return {"input": x, "target": torch.randn(n, generator=g, dtype=torch.float64), "var": var}
    if name == "binary_cross_entropy":  # probabilities strictly inside (0, 1)
        return {"input": torch.sigmoid(x).clamp(1e-4, 1 - 1e-4), "target": _labels(g, (n,))}
    if name in ("binary_cross_entropy_with_logits", "sigmoid_focal_loss"):
        return {"input": x, "target": _labels(g, (n,))}
    if name == "hinge_loss":
        return {"input": x, "target": 2.0 * _labels(g, (n,)) - 1.0}
    return {"input": x, "target": torch.randn(n, generator=g, dtype=torch.float64)}  # regression


def _classes(name: str, g: torch.Generator, rows: int, classes: int) -> dict[str, torch.Tensor]:
    z = torch.randn(rows, classes, generator=g, dtype=torch.float64)
    index = torch.randint(0, classes, (rows,), generator=g)
    if name == "nll_loss":
        return {"input": torch.log_softmax(z, dim=1), "target": index}
    if name == "kl_div":
        q = torch.randn(rows, classes, generator=g, dtype=torch.float64)
        return {"input": torch.log_softmax(z, dim=1), "target": torch.softmax(q, dim=1)}
    if name == "multilabel_soft_margin_loss":
        return {"input": z, "target": _labels(g, (rows, classes))}
    return {"input": z, "target": index}  # cross_entropy, softmax_focal_loss, multi_margin_loss


CLASS_LOSSES = frozenset(
    {"cross_entropy", "nll_loss", "kl_div", "softmax_focal_loss", "multi_margin_loss", "multilabel_soft_margin_loss"}
)

Arrays = dict[str, torch.Tensor]
EMBEDDINGS, DIM = 512, 128  # metric learning: 512 embeddings of 128 dimensions
NEGATIVES = 64  # info_nce: negatives per query
IMAGES, CHANNELS, SIDE = 8, 3, 64  # segmentation: 8 images of 3 channels, 64 x 64
BOXES = 4096
BATCH, FEATURES, LATENT = 256, 784, 32  # VAE: MNIST-sized
TOKENS, LENGTH, VOCAB = 8, 128, 1000  # sequence_cross_entropy: (8, 128, 1000) logits
HIDDEN_TOKENS, HIDDEN, LM_VOCAB = 2048, 128, 8192  # linear_cross_entropy


def _randn(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def _signs(g: torch.Generator, n: int) -> torch.Tensor:
    return 2.0 * _labels(g, (n,)) - 1.0


def _boxes(g: torch.Generator, n: int) -> torch.Tensor:
    corner = 100.0 * torch.rand(n, 2, generator=g, dtype=torch.float64)
    size = 1.0 + 50.0 * torch.rand(n, 2, generator=g, dtype=torch.float64)
    return torch.cat([corner, corner + size], dim=1)


def _masks(g: torch.Generator) -> Arrays:
    shape = (IMAGES, CHANNELS, SIDE, SIDE)
    return {"input": _randn(g, *shape), "target": _labels(g, shape)}


def _class_masks(g: torch.Generator) -> Arrays:
    index = torch.randint(0, CHANNELS, (IMAGES, SIDE, SIDE), generator=g)
    return {"input": _randn(g, IMAGES, CHANNELS, SIDE, SIDE), "target": index}


def _pair(g: torch.Generator, first: str, second: str, *shape: int) -> Arrays:
    return {first: _randn(g, *shape), second: _randn(g, *shape)}


# the catalog rows beyond the element-wise and class losses: one realistic batch each
BUILDERS: dict[str, Callable[[torch.Generator], Arrays]] = {
    "contrastive_loss": lambda g: {
        **_pair(g, "x1", "x2", EMBEDDINGS, DIM),
        "label": _labels(g, (EMBEDDINGS,)),
    },
    "triplet_margin_loss": lambda g: {
        "anchor": _randn(g, EMBEDDINGS, DIM),
        **_pair(g, "positive", "negative", EMBEDDINGS, DIM),
    },
    "batch_hard_triplet_loss": lambda g: {
        "embeddings": _randn(g, EMBEDDINGS, DIM),
        "labels": torch.randint(0, 32, (EMBEDDINGS,), generator=g),
    },
    "info_nce_loss": lambda g: {
        **_pair(g, "query", "positive_key", EMBEDDINGS, DIM),
        "negative_keys": _randn(g, EMBEDDINGS, NEGATIVES, DIM),
    },
    "nt_xent_loss": lambda g: _pair(g, "z_i", "z_j", EMBEDDINGS, DIM),
    "cosine_embedding_loss": lambda g: {
        **_pair(g, "input1", "input2", EMBEDDINGS, DIM),
        "target": _signs(g, EMBEDDINGS),
    },
    "margin_ranking_loss": lambda g: {**_pair(g, "input1", "input2", ELEMENTS), "target": _signs(g, ELEMENTS)},
    "pairwise_logistic_loss": lambda g: _pair(g, "chosen", "rejected", ELEMENTS),
    "dice_loss": _masks,
    "jaccard_loss": _masks,
    "tversky_loss": _masks,
    "bce_dice_loss": _masks,
    "multiclass_dice_loss": _class_masks,
    "ce_dice_loss": _class_masks,
    "boundary_loss": lambda g: _pair(g, "input", "distance_map", IMAGES, 1, SIDE, SIDE),
    "iou_loss": lambda g: {"boxes1": _boxes(g, BOXES), "boxes2": _boxes(g, BOXES)},
    "generalized_box_iou_loss": lambda g: {"boxes1": _boxes(g, BOXES), "boxes2": _boxes(g, BOXES)},
    "distance_box_iou_loss": lambda g: {"boxes1": _boxes(g, BOXES), "boxes2": _boxes(g, BOXES)},
    "complete_box_iou_loss": lambda g: {"boxes1": _boxes(g, BOXES), "boxes2": _boxes(g, BOXES)},
    "gan_discriminator_loss": lambda g: _pair(g, "real_logits", "fake_logits", ELEMENTS),
    "gan_generator_loss": lambda g: {"fake_logits": _randn(g, ELEMENTS)},
    "wgan_critic_loss": lambda g: _pair(g, "real_scores", "fake_scores", ELEMENTS),
    "wgan_generator_loss": lambda g: {"fake_scores": _randn(g, ELEMENTS)},
    "vae_loss": lambda g: {
        "recon": torch.sigmoid(_randn(g, BATCH, FEATURES)),
        "x": torch.rand(BATCH, FEATURES, generator=g, dtype=torch.float64),
        **_pair(g, "mu", "logvar", BATCH, LATENT),
    },
    "perceptual_loss": lambda g: _pair(g, "input", "target", IMAGES, CHANNELS, SIDE, SIDE),
    "uncertainty_weighted_loss": lambda g: {"losses": _randn(g, 8).abs(), "log_vars": _randn(g, 8)},
    "sequence_cross_entropy": lambda g: {
        "logits": _randn(g, TOKENS, LENGTH, VOCAB),
        "target": torch.randint(0, VOCAB, (TOKENS, LENGTH), generator=g),
    },
    "linear_cross_entropy": lambda g: {
        "hidden": _randn(g, HIDDEN_TOKENS, HIDDEN),
        "weight": _randn(g, LM_VOCAB, HIDDEN) / HIDDEN**0.5,
        "target": torch.randint(0, LM_VOCAB, (HIDDEN_TOKENS,), generator=g),
    },
}

# parameters that differ from the canonical defaults: kl_div's 'mean' is not a KL (torch warns on every call)
PARAMS: dict[str, dict[str, Any]] = {"kl_div": {"reduction": "batchmean"}}


def _perceptual_params(dtype: torch.dtype, device: str) -> dict[str, Any]:
    """A seeded extractor of the catalog (3 -> 16 -> 32 channels, 1x1 convolutions with tanh), both layers."""
    from lossguard.implementations.own.generative import tanh_extractor_module
    from lossguard.reference.generative import TanhExtractor

    extractor = tanh_extractor_module(TanhExtractor(0, (CHANNELS, 16, 32)).parameters, dtype, device)
    return {"feature_extractor": extractor, "layers": (0, 1)}


# parameters built in the call's dtype and on its device (framework objects)
PARAM_BUILDERS: dict[str, Callable[[torch.dtype, str], dict[str, Any]]] = {"perceptual_loss": _perceptual_params}


def make_inputs(spec: LossSpec, n: int | None = None, dtype: str = "float32", device: str = "cpu") -> Inputs:
    """Valid inputs of ``spec``: ``n`` elements (element-wise losses) or ``n`` rows of CLASSES logits."""
    g = torch.Generator().manual_seed(SEED)
    if spec.name in BUILDERS:
        arrays = BUILDERS[spec.name](g)
    elif spec.name in CLASS_LOSSES:
        arrays = _classes(spec.name, g, n or ROWS, CLASSES)
    else:
        arrays = _elementwise(spec.name, g, n or ELEMENTS)
    missing = set(spec.args) - set(arrays)
    if missing:
        raise ValueError(f"no benchmark inputs for {spec.name}'s {sorted(missing)}: add them to benchmarks/inputs.py")
    args = {
        name: arrays[name].to(device=device, dtype=DTYPES[dtype] if arrays[name].is_floating_point() else None)
        for name in spec.args
    }
    grad = tuple(name for name in spec.differentiable if name in args and args[name].is_floating_point())
    params = dict(PARAMS.get(spec.name, {}))
    if spec.name in PARAM_BUILDERS:
        params.update(PARAM_BUILDERS[spec.name](DTYPES[dtype], device))
    return Inputs(args, params, grad)
