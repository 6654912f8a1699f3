"""imgsvc_client: a typed Python client for the imgsvc API and the ``imgsvc`` command."""

from __future__ import annotations

from imgsvc_client.client import ApiError, Client, FileState, Image, Limits, UploadSession

__version__ = "0.1.0"
__all__ = ["ApiError", "Client", "FileState", "Image", "Limits", "UploadSession", "__version__"]
