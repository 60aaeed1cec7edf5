"""Serving exported SavedModels over TF Serving's REST API (server, versions, batching, client)."""
from fmkeras.serve.batcher import Batcher
from fmkeras.serve.model_store import ModelStore
from fmkeras.serve.server import ModelServer
from fmkeras.serve.servable import ServedVersion, is_complete

__all__ = ["Batcher", "ModelStore", "ModelServer", "ServedVersion", "is_complete"]
