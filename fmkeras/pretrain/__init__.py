"""Pretrain: make a backbone the transfer module can load (SimCLR on unlabeled images, or supervised)."""
from fmkeras.pretrain.backbone_file import read_backbone_info, save_backbone
from fmkeras.pretrain.run import run_pretraining
from fmkeras.pretrain.simclr import SimCLR, build_encoder, build_projection_head, nt_xent_loss
from fmkeras.pretrain.views import two_views

__all__ = ["read_backbone_info", "save_backbone", "run_pretraining", "SimCLR", "build_encoder",
           "build_projection_head", "nt_xent_loss", "two_views"]
