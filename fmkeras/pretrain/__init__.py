"""Self-supervised pretraining that produces backbones the transfer module loads (`model.weights`)."""
