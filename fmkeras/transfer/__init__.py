"""Transfer: new heads on backbones, pretrained-weight resolution, staged fine-tuning."""
from fmkeras.transfer.heads import BACKBONE_LAYER, build_classifier
from fmkeras.transfer.weights import build_backbone, load_weight_file

__all__ = ["BACKBONE_LAYER", "build_classifier", "build_backbone", "load_weight_file"]
