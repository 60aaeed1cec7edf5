"""Export: SavedModel versions with serving signatures."""
from fmkeras.export.saved_model import export_saved_model, load_metadata
from fmkeras.export.text_saved_model import export_text_saved_model
from fmkeras.export.versions import list_versions, next_version, publish_version

__all__ = ["export_saved_model", "export_text_saved_model", "load_metadata", "list_versions", "next_version",
           "publish_version"]
