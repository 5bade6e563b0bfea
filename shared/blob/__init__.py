"""Blob port and adapters (local folder here; GCS and S3 adapters live beside it)."""

from shared.blob.base import Blob, BlobInfo
from shared.blob.local import LocalBlob

__all__ = ["Blob", "BlobInfo", "LocalBlob"]
