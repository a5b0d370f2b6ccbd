"""Segmentation losses (torch.nn.Module, autograd) on one fused CPU/CUDA kernel.

The kernel reads the logits once forward (activation, focal term, per-(batch, class) sums in
float64) and once backward (recomputes the activation and writes the gradient once); integer
targets are used as they are (no one-hot tensor). Every loss documents the MONAI (or paper)
settings it equals. Importing this package imports torch.
"""

from .boundary import BoundaryLoss
from .cross_entropy import CrossEntropyLoss
from .deep_supervision import DeepSupervisionLoss
from .dice import DiceLoss
from .dice_focal import DiceFocalLoss
from .exp_log import ExpLogLoss
from .focal import FocalLoss
from .generalized_dice import GeneralizedDiceLoss

__all__ = [
    "DiceFocalLoss",
    "DiceLoss",
    "FocalLoss",
    "CrossEntropyLoss",
    "GeneralizedDiceLoss",
    "BoundaryLoss",
    "ExpLogLoss",
    "DeepSupervisionLoss",
]
