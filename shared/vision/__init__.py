"""Vision pre- and post-processing shared by the GPU worker, the ingest path and the API.

``decode`` (safe image decoding), ``boxes`` (letterbox, YOLO output layouts, NMS) and ``detector``
(the ONNX Runtime session). Importing this package pulls in nothing heavy.
"""

from __future__ import annotations

__all__: list[str] = []
