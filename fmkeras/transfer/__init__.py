"""Transfer: new heads on backbones, pretrained-weight resolution, staged fine-tuning."""
from fmkeras.transfer.heads import BACKBONE_LAYER, build_classifier
from fmkeras.transfer.weights import build_backbone, load_weight_file
from fmkeras.transfer.finetune import fit_stages, freeze_backbone, unfreeze_top

__all__ = ["BACKBONE_LAYER", "build_classifier", "build_backbone", "load_weight_file", "fit_stages",
           "freeze_backbone", "unfreeze_top"]
