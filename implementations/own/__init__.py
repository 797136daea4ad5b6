"""lossguard's own PyTorch implementations of the catalog rows torch lacks, by canonical name."""

from collections.abc import Callable

from lossguard.implementations.own import detection, generative, metric, segmentation, sequence
from lossguard.implementations.own.classification import hinge_loss, sigmoid_focal_loss, softmax_focal_loss
from lossguard.implementations.own.regression import asymmetric_mse_loss, log_cosh_loss, quantile_loss, tweedie_loss

OWN: dict[str, Callable] = {
    "log_cosh_loss": log_cosh_loss,
    "quantile_loss": quantile_loss,
    "tweedie_loss": tweedie_loss,
    "asymmetric_mse_loss": asymmetric_mse_loss,
    "sigmoid_focal_loss": sigmoid_focal_loss,
    "softmax_focal_loss": softmax_focal_loss,
    "hinge_loss": hinge_loss,
    **metric.OWN,
    **segmentation.OWN,
    **detection.OWN,
    **generative.OWN,
    **sequence.OWN,
}
