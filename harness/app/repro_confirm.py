"""Which test confirms each recorded finding without lossguard (a float64 NumPy or mpmath computation beside the
library's own output, ``tests/bindings/test_<library>.py``), for FINDINGS.md.

``RULES``, reviewed by hand: (library, binding label, property, reason, error case) regular expressions (``""``
matches anything) -> the test's node id. The first rule that matches a finding names its test; a finding no rule
matches is listed as unconfirmed (not to be reported upstream as it stands). tests/test_repro.py checks that every
named test exists.
"""

from __future__ import annotations

import re

from lossguard.harness.kernel.model import Finding

_T = "tests/bindings/test_{}.py::{}"
_FILE = {"torch": "torch_builtins"}  # a library whose test file is not test_<library>.py (torch's built-ins)

# (library, label, property, reason, case) -> test function
_RULES: list[tuple[str, str, str, str, str, str]] = [
    # torch (built-ins, implementations/torch_builtins.py)
    (
        "torch",
        r"\.(mse_loss|l1_loss|huber_loss|smooth_l1_loss|poisson_nll_loss|gaussian_nll_loss|kl_div"
        r"|multilabel_soft_margin_loss)$",
        "invalid_input",
        "",
        "target shape differs",
        "test_a_target_of_another_shape_is_broadcast_to_an_n_by_n_loss",
    ),
    (
        "torch",
        r"\.poisson_nll_loss$",
        "gradient|stability",
        "",
        "",
        "test_poisson_full_target_gradient_is_nan_at_a_zero_target",
    ),
    (
        "torch",
        r"\.gaussian_nll_loss$",
        "agreement",
        "float16: \\(input - target\\)\\^2 / var",
        "",
        "test_gaussian_float16_loss_overflows_where_the_exact_loss_is_representable",
    ),
    (
        "torch",
        r"\.gaussian_nll_loss$",
        "gradient",
        "clamped to eps",
        "",
        "test_gaussian_float16_gradient_is_nan_for_a_var_clamped_to_a_subnormal_eps",
    ),
    (
        "torch",
        r"\.gaussian_nll_loss$",
        "gradient|stability",
        "d/dvar forms e\\^2 / var\\^2",
        "",
        "test_gaussian_var_gradient_overflows_forming_e2_over_var2_before_halving",
    ),
    (
        "torch",
        r"\.binary_cross_entropy$",
        "gradient",
        "",
        "",
        "test_bce_input_gradient_is_not_the_derivative_of_the_clamped_loss",
    ),
    ("torch", r"\.binary_cross_entropy$", "stability", "", "", "test_bce_target_gradient_is_infinite_at_p_zero_or_one"),
    ("torch", r"\.multi_margin_loss$", "invalid_input", "", "margin", "test_multi_margin_accepts_a_negative_margin"),
    (
        "torch",
        r"\.(triplet_margin_loss|cosine_embedding_loss|margin_ranking_loss)$",
        "invalid_input",
        "",
        "one (row|element) against N",
        "test_a_second_argument_of_one_row_is_broadcast_against_n_rows",
    ),
    (
        "torch",
        r"\.triplet_margin_loss$",
        "agreement|stability",
        "float32, p = 3",
        "",
        "test_triplet_p3_float32_power_sum_overflows",
    ),
    (
        "torch",
        r"\.triplet_margin_loss$",
        "stability",
        "float64, p = 3",
        "",
        "test_triplet_p3_float64_gradient_is_nan_where_the_power_sum_underflows",
    ),
    (
        "torch",
        r"\.cosine_embedding_loss$",
        "agreement",
        "product of the squared norms overflows",
        "",
        "test_cosine_two_equal_embeddings_get_loss_one_where_the_product_of_squared_norms_overflows",
    ),
    (
        "torch",
        r"\.cosine_embedding_loss$",
        "agreement",
        "eps = 1e-12 added to the squared norms underflows",
        "",
        "test_cosine_float16_zero_embedding_is_nan",
    ),
    (
        "torch",
        r"\.cosine_embedding_loss$",
        "zero_at_perfect",
        "",
        "",
        "test_cosine_float16_squared_norms_overflow_above_256",
    ),
    (
        "torch",
        r"\.cosine_embedding_loss$",
        "non_negative",
        "",
        "",
        "test_cosine_float16_product_underflow_gives_minus_inf",
    ),
    (
        "torch",
        r"\.cosine_embedding_loss$",
        "gradient",
        "^float16: squared norms below",
        "",
        "test_cosine_float16_gradient_is_inf_where_the_squared_norms_are_subnormal",
    ),
    (
        "torch",
        r"\.cosine_embedding_loss$",
        "gradient",
        "^float32: the product of the squared norms overflows",
        "",
        "test_cosine_float32_gradient_is_zero_where_the_product_overflows",
    ),
    (
        "torch",
        r"\.cosine_embedding_loss$",
        "gradient",
        "^float64: the backward",
        "",
        "test_cosine_float64_gradient_loses_30_ulps_through_the_product_of_squared_norms",
    ),
    (
        "torch",
        r"\.linear_cross_entropy$",
        "ignored_tokens",
        "",
        "",
        "test_linear_cross_entropy_chunked_mean_gradient_is_nan_with_every_token_ignored",
    ),
    # torchvision
    (
        "torchvision",
        r"sigmoid_focal_loss$",
        "gradient|stability",
        "",
        "",
        "test_focal_nan_gradient_for_gamma_below_one",
    ),
    (
        "torchvision",
        r"sigmoid_focal_loss$",
        "zero_at_perfect",
        "",
        "",
        "test_focal_zero_where_one_minus_p_t_rounds_away",
    ),
    ("torchvision", r"sigmoid_focal_loss$", "invalid_input", "", "gamma", "test_focal_accepts_a_negative_gamma"),
    ("torchvision", r"box_iou_loss$", "invalid_input", "", "^eps", "test_box_losses_accept_a_negative_eps"),
    ("torchvision", r"box_iou_loss$", "invalid_input", "", "a box of", "test_box_losses_accept_inverted_boxes"),
    (
        "torchvision",
        r"complete_box_iou_loss$",
        "",
        "eps is not passed on",
        "",
        "test_ciou_ignores_eps_in_iou_and_diagonal",
    ),
    # kornia
    (
        "kornia",
        r"\.(focal_loss|FocalLoss)$",
        "invalid_input",
        "",
        "gamma",
        "test_softmax_focal_accepts_a_negative_gamma",
    ),
    ("kornia", r"BinaryFocal|binary_focal", "invalid_input", "", "alpha", "test_binary_focal_accepts_alpha_above_one"),
    ("kornia", r"BinaryFocal|binary_focal", "invalid_input", "", "gamma", "test_binary_focal_accepts_a_negative_gamma"),
    ("kornia", r"\.(dice_loss|DiceLoss)", "invalid_input", "", "smooth", "test_dice_accepts_a_negative_eps"),
    # monai
    (
        "monai",
        r"\.(DiceLoss|MaskedDiceLoss|TverskyLoss)$",
        "invalid_input",
        "",
        "",
        "test_overlap_losses_take_a_probability_of_1_5_and_a_negative_smooth",
    ),
    (
        "monai",
        r"\.TverskyLoss$",
        "gradient",
        "",
        "",
        "test_tversky_float16_gradient_is_nan_where_the_denominator_squared_underflows",
    ),
    (
        "monai",
        r"\.FocalLoss",
        "",
        "reduction='sum' is documented",
        "",
        "test_focal_sum_is_the_mean_over_the_spatial_axes_then_summed",
    ),
    ("monai", r"\.FocalLoss", "", "casts its inputs to float32", "", "test_focal_computes_a_float64_input_in_float32"),
    (
        "monai",
        r"\.FocalLoss\.softmax$",
        "gradient|stability",
        "1 - p_y is formed",
        "",
        "test_softmax_focal_gradient_is_nan_where_p_y_rounds_to_one",
    ),
    (
        "monai",
        r"\.ContrastiveLoss$",
        "",
        "cosine_similarity with its default eps",
        "",
        "test_contrastive_float16_is_nan_for_a_view_of_norm_zero",
    ),
    ("monai", r"\.BarlowTwinsLoss$", "dtype", "", "", "test_barlow_twins_returns_float32_for_half_precision_views"),
    (
        "monai",
        r"\.GeneralizedDice(Focal)?Loss$",
        "",
        "autograd recording",
        "",
        "test_generalized_dice_backward_raises_for_a_target_requiring_grad",
    ),
    ("monai", r"\.DiceFocalLoss$", "dtype", "", "", "test_dice_focal_returns_float32_for_half_precision"),
    ("monai", r"\.DiceFocalLoss$", "finite", "", "", "test_dice_focal_float16_gradient_is_nan_for_an_empty_mask"),
    ("monai", r"\.DiceFocalLoss$", "gradcheck", "", "", "test_dice_focal_float64_is_float32_accurate"),
    (
        "monai",
        r"\.MCCLoss$",
        "low_precision",
        "",
        "",
        "test_mcc_of_a_one_class_target_drops_to_zero_where_the_sigmoid_rounds_onto_it",
    ),
    # smp
    (
        "smp",
        r"\.(Dice|Jaccard|Tversky)Loss\.(binary|multilabel)$",
        "invalid_input",
        "",
        "",
        "test_overlap_losses_validate_no_input",
    ),
    (
        "smp",
        r"\.FocalLoss\.",
        "gradient|stability|zero_at_perfect",
        "1 - pt",
        "",
        "test_focal_loses_one_minus_pt_and_its_gradient_is_nan",
    ),
    (
        "smp",
        r"\.FocalLoss\.multilabel$",
        "",
        "multilabel mode",
        "",
        "test_multilabel_focal_reductions_average_over_classes",
    ),
    ("smp", r"\.SoftCrossEntropyLoss$", "", "", "", "test_soft_cross_entropy_mean_counts_ignored_targets"),
    ("smp", r"\.LovaszLoss\.", "", "", "", "test_lovasz_raises_on_float64_and_promotes_half_precision"),
    ("smp", r"\.MCCLoss$", "", "", "", "test_mcc_float16_product_under_the_root_leaves_float16s_range"),
    # pytorch-metric-learning
    ("pml", r"\.ContrastiveLoss$", "invalid_input", "", "", "test_contrastive_accepts_a_negative_margin"),
    ("pml", r"\.ContrastiveLoss$", "", "zero_losses", "", "test_contrastive_one_pair_of_each_kind_is_zero"),
    ("pml", r"\.TripletMarginLoss$", "invalid_input", "", "", "test_triplet_accepts_a_zero_margin"),
    ("pml", r"\.NTXentLoss$", "invalid_input", "", "", "test_nt_xent_accepts_a_zero_temperature"),
    ("pml", r"NTXentLoss", "", "-log\\(p \\+ tiny\\)", "", "test_nt_xent_caps_each_term_at_minus_log_tiny"),
    ("pml", r"NTXentLoss", "", "eps = 1e-12 rounds to 0", "", "test_nt_xent_float16_zero_view_is_nan"),
    (
        "pml",
        r"\.(HistogramLoss|DynamicSoftMarginLoss)$",
        "",
        "binned with an index",
        "",
        "test_a_cosine_of_one_indexes_past_the_last_bin",
    ),
    (
        "pml",
        r"\.HistogramLoss$",
        "",
        "linear-binning weights",
        "",
        "test_histogram_binning_weights_do_not_conserve_mass",
    ),
    ("pml", r"\.TupletMarginLoss$", "", "torch.acos", "", "test_tuplet_acos_of_a_cosine_of_one"),
    ("pml", r"\.PNPLoss$", "", "PNPLoss.sigmoid", "", "test_pnp_float16_sigmoid_overflows_its_exp"),
    ("pml", r"\.RankedListLoss$", "low_precision", "", "", "test_ranked_list_drops_a_negative_at_distance_zero"),
    (
        "pml",
        r"\.RankedListLoss$",
        "finite",
        "backward",
        "",
        "test_ranked_list_float16_tiny_embedding_has_a_nan_gradient",
    ),
    (
        "pml",
        r"",
        "finite|low_precision",
        "normalised with F.normalize",
        "",
        "test_a_zero_embedding_is_nan_in_float16_and_finite_in_float32",
    ),
    ("pml", r"\.CircleLoss$", "", "", "", "test_circle_gradient_holds_its_weights_constant"),
    ("pml", r"\.FastAPLoss$", "", "", "", "test_fast_ap_gradient_at_a_zero_embedding"),
    # optax
    (
        "optax",
        r"\.cosine_(similarity|distance)$",
        "finite",
        "epsilon = 0.0",
        "",
        "test_cosine_of_a_zero_vector_is_nan_with_the_default_epsilon",
    ),
    (
        "optax",
        r"\.cosine_distance$",
        "finite",
        "division rule",
        "",
        "test_cosine_distance_float16_gradient_overflows_for_a_row_of_norm_2_to_the_minus_8",
    ),
    (
        "optax",
        r"\.multiclass_generalized_dice_loss$",
        "",
        "",
        "",
        "test_generalized_dice_float16_weight_of_an_absent_class_overflows",
    ),
    (
        "optax",
        r"\.multiclass_hinge_loss$",
        "low_precision",
        "",
        "",
        "test_multiclass_hinge_is_negative_where_the_margin_rounds",
    ),
    (
        "optax",
        r"\.multiclass_(hinge|perceptron|sparsemax)_loss$",
        "",
        "one-hot encoded",
        "",
        "test_one_hot_labels_promote_the_multiclass_losses_to_float64",
    ),
    (
        "optax",
        r"\.softmax_cross_entropy_with_integer_labels$",
        "invalid_input",
        "",
        "",
        "test_integer_labels_out_of_range_give_nan_not_an_error",
    ),
    ("optax", r"\.kl_divergence", "invalid_input", "", "", "test_kl_divergence_broadcasts_a_target_of_another_shape"),
    ("optax", r"\.ntxent$", "invalid_input", "", "", "test_ntxent_accepts_a_zero_temperature"),
    ("optax", r"\.(dice_loss|binary_dice_loss)$", "invalid_input", "", "", "test_dice_accepts_a_negative_smooth"),
    (
        "optax",
        r"\.dice_loss$",
        "gradient",
        "",
        "",
        "test_dice_float16_gradient_is_nan_below_a_denominator_of_2_to_the_minus_8",
    ),
    ("optax", r"\.hinge_loss$", "invalid_input", "", "", "test_hinge_broadcasts_a_target_of_another_shape"),
    (
        "optax",
        r"\.sigmoid_focal_loss$",
        "invalid_input",
        "",
        "",
        "test_focal_accepts_alpha_and_gamma_outside_their_range",
    ),
    ("optax", r"\.huber_loss$", "invalid_input", "", "", "test_huber_accepts_a_negative_delta"),
    ("optax", r"\.huber_loss$", "gradient", "", "", "test_huber_gradient_cancels_below_delta"),
    (
        "optax",
        r"\.triplet_margin_loss$",
        "invalid_input",
        "",
        "",
        "test_triplet_accepts_a_broadcast_positive_and_a_zero_margin",
    ),
    (
        "optax",
        r"\.triplet_margin_loss$",
        "",
        "without the absolute value",
        "",
        "test_triplet_p_norm_without_absolute_value",
    ),
    (
        "optax",
        r"\.triplet_margin_loss$",
        "",
        "eps = 0",
        "",
        "test_triplet_gradient_is_nan_at_a_zero_distance_without_eps",
    ),
    # timm
    ("timm", r"\.PolyCrossEntropy$", "dtype", "", "", "test_poly_cross_entropy_computes_float64_in_float32"),
    ("timm", r"", "dtype", "", "", "test_multilabel_losses_compute_float64_in_float32"),
]

RULES = [
    (lib, label, prop, reason, case, _T.format(_FILE.get(lib, lib), test))
    for lib, label, prop, reason, case, test in _RULES
]


def confirmation(library: str, label: str, finding: Finding) -> str | None:
    """The node id of the test that confirms ``finding`` of binding ``label`` independently, or None."""
    for lib, label_re, prop_re, reason_re, case_re, test in RULES:
        if lib != library or not re.search(label_re, label):
            continue
        if prop_re and not re.fullmatch(prop_re, finding.property):
            continue
        if reason_re and not re.search(reason_re, finding.reason):
            continue
        if case_re and not re.search(case_re, finding.case or ""):
            continue
        return test
    return None
