"""Vision pre- and post-processing shared by the GPU worker, the ingest path and the API.

``decode`` (safe image decoding), ``boxes`` (letterbox, YOLO output layouts, NMS), ``detector``
(the model and its ONNX Runtime sessions, with ``providers``, ``graph`` and ``sessions``), ``store``
and ``stream_registry`` (detections, streams and their leases in Postgres). Importing this package
pulls in nothing heavy.
"""

from __future__ import annotations

__all__: list[str] = []
