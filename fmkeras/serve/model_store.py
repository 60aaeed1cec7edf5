"""The versions of one model a server offers, kept in step with its base path.

Policy (like TF Serving's `model_version_policy`): the latest complete version, or the pinned
ones. A watcher thread polls the base path; a new version is loaded next to the old one and
only then swapped in (availability preserving), so no request ever finds the model missing.
Directories that are not complete exports (see `is_complete`) or are hidden temp dirs of an
export in progress are never loaded.

Example:
    store = ModelStore("saved_models/fashion", "fashion", poll_seconds=1.0).start()
    served = store.get()          # latest loaded version
"""
from __future__ import annotations

import logging
import os
import threading

from fmkeras.export.versions import list_versions
from fmkeras.serve.servable import ServedVersion, is_complete
from fmkeras.serve.status import NotFound, redact_paths

log = logging.getLogger("fmkeras.serve")


def _dir_stamp(path: str) -> float:
    """Newest mtime inside a version dir, to retry a failed load only after its files changed."""
    stamps = [os.path.getmtime(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files]
    return max(stamps, default=0.0)


class ModelStore:
    """Loaded versions of the model under `base_path`, refreshed by `refresh()` or a watcher."""

    def __init__(self, base_path: str, name: str = None, versions=(), labels: dict = None,
                 poll_seconds: float = 1.0):
        self.base_path = base_path
        self.name = name or os.path.basename(os.path.normpath(base_path))
        self.pinned = tuple(int(v) for v in versions)
        self.labels = {str(k): int(v) for k, v in (labels or {}).items()}
        self.poll_seconds = poll_seconds
        self._loaded = {}     # version -> ServedVersion; replaced whole, never mutated in place
        self._states = {}     # version -> (state, error message) for the status endpoint
        self._failed = {}     # version -> stamp of the files that failed to load
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self.watch_errors = 0  # refreshes that raised, for the status of the watcher in tests/reports

    def wanted(self) -> list:
        """Versions the policy wants among the complete ones on disk."""
        complete = [v for v in list_versions(self.base_path)
                    if is_complete(os.path.join(self.base_path, str(v)))]
        if self.pinned:
            return [v for v in complete if v in self.pinned]
        loadable = [v for v in complete if v in self._loaded or v not in self._failed
                    or self._failed[v] != _dir_stamp(os.path.join(self.base_path, str(v)))]
        return loadable[-1:]

    def refresh(self) -> list:
        """Loads wanted versions, then unloads the rest; returns the loaded versions."""
        with self._refresh_lock:
            wanted = self.wanted()
            loaded = dict(self._loaded)
            for version in wanted:
                if version not in loaded:
                    served = self._load(version)
                    if served is not None:
                        loaded[version] = served
            if not self.pinned and not any(v in loaded for v in wanted):
                wanted = [max(loaded)] if loaded else []  # new latest failed: keep serving the old one
            for version in [v for v in loaded if v not in wanted]:
                del loaded[version]
                self._states[version] = ("END", "")
                log.info("unloaded %s version %d", self.name, version)
            self._loaded = loaded
            return sorted(loaded)

    def _load(self, version: int):
        path = os.path.join(self.base_path, str(version))
        self._states[version] = ("LOADING", "")
        try:
            served = ServedVersion(self.name, version, path)
        except Exception as err:  # a broken export must not stop the server; it is reported in the status
            self._failed[version] = _dir_stamp(path)
            # The status endpoint is public: name the version, not where it lives on disk.
            self._states[version] = ("END", f"failed to load version {version}: {type(err).__name__}: "
                                            f"{redact_paths(str(err))}")
            log.error("could not load %s: %s", path, err)
            return None
        self._failed.pop(version, None)
        self._states[version] = ("AVAILABLE", "")
        log.info("loaded %s version %d from %s", self.name, version, path)
        return served

    def get(self, version: int = None, label: str = None) -> ServedVersion:
        """The requested version (by number or label), else the latest loaded one."""
        loaded = self._loaded
        if label is not None:
            if label not in self.labels:
                raise NotFound(f"Unrecognized servable version label: {label}")
            version = self.labels[label]
        if version is None:
            if not loaded:
                raise NotFound(f"Servable not found for request: Latest({self.name})")
            return loaded[max(loaded)]
        if version not in loaded:
            raise NotFound(f"Servable not found for request: Specific({self.name}, {version})")
        return loaded[version]

    def status(self, version: int = None) -> list:
        """`model_version_status` entries like TF Serving's GetModelStatus, newest first."""
        versions = sorted(self._states, reverse=True) if version is None else [version]
        if version is not None and version not in self._states:
            raise NotFound(f"Could not find version {version} of model {self.name}")
        out = []
        for v in versions:
            state, message = self._states[v]
            out.append({"version": str(v), "state": state,
                        "status": {"error_code": "UNKNOWN" if message else "OK", "error_message": message}})
        return out

    def start(self):
        """Loads what is on disk now, then polls every `poll_seconds` in a daemon thread."""
        self.refresh()
        self._thread = threading.Thread(target=self._watch, name=f"watch-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except OSError as err:  # base path briefly unreadable (e.g. being moved): try again next poll
                log.warning("could not scan %s: %s", self.base_path, err)
            except Exception:  # noqa: BLE001 - a watcher that dies would freeze the served versions for good
                self.watch_errors += 1
                log.exception("version watcher: refresh of %s failed; retrying in %s s", self.base_path,
                              self.poll_seconds)

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
