"""Transfer: new heads on backbones, pretrained-weight resolution, staged fine-tuning."""
from fmkeras.transfer.heads import BACKBONE_LAYER, build_classifier
from fmkeras.transfer.weights import build_backbone, load_weight_file
from fmkeras.transfer.finetune import fit_stages, freeze_backbone, unfreeze_top
from fmkeras.transfer.lora import enable_backbone_lora, trainable_parameter_count
from fmkeras.transfer.text_classifier import build_text_classifier
from fmkeras.transfer.ensemble import average_classifiers
from fmkeras.transfer.linear_text import fit_linear_text_classifier

__all__ = ["BACKBONE_LAYER", "build_classifier", "build_backbone", "load_weight_file", "fit_stages",
           "freeze_backbone", "unfreeze_top", "enable_backbone_lora", "trainable_parameter_count",
           "build_text_classifier", "average_classifiers", "fit_linear_text_classifier"]
