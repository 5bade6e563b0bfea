"""A Spotify-compatible Web API: ``POST /api/token`` (client credentials, Basic auth),
``GET /v1/search?type=track`` and ``GET /v1/audio-features/{id}``, over a given catalogue.

Tokens expire after ``expires_in`` seconds; an unknown or expired token gets 401. With
``audio_features_forbidden`` set, audio features answer 403, as Spotify does for apps registered
after it closed that endpoint to new apps.
"""

from __future__ import annotations

import base64
import itertools
import re
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.servers import Handled, LocalServer, Seen

__all__ = ["SpotifyServer"]

_FEATURES = re.compile(r"^/v1/audio-features/([A-Za-z0-9]+)$")
_QUERY = re.compile(r'track:"([^"]*)"\s+artist:"([^"]*)"')


class SpotifyServer(LocalServer):
    def __init__(self, catalogue: list[dict[str, Any]], *, client_id: str = "cid", secret: str = "csecret") -> None:
        super().__init__()
        self.catalogue = [{**c, "id": f"sp{i}"} for i, c in enumerate(catalogue)]
        self.basic = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        self.expires_in = 3600
        self.tokens: dict[str, float] = {}
        self._ids = itertools.count(1)
        self.audio_features_forbidden = False

    def handle(self, seen: Seen, handler: BaseHTTPRequestHandler) -> Handled | None:
        if seen.path == "/api/token" and seen.method == "POST":
            if seen.headers.get("authorization") != self.basic or b"grant_type=client_credentials" not in seen.body:
                return Handled.json({"error": "invalid_client"}, 401)
            token = f"tok{next(self._ids)}"
            self.tokens[token] = time.monotonic() + self.expires_in
            return Handled.json({"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in})
        token = seen.headers.get("authorization", "").removeprefix("Bearer ")
        if self.tokens.get(token, 0) < time.monotonic():
            return Handled.json({"error": {"status": 401, "message": "The access token expired"}}, 401)
        if seen.path == "/v1/search":
            q = (seen.query.get("q") or [""])[0]
            m = _QUERY.search(q)
            words = set((m.group(1) + " " + m.group(2)).split()) if m else set(q.lower().split())
            items = [
                {
                    "id": c["id"],
                    "name": c["name"],
                    "artists": [{"name": a} for a in c["artists"]],
                    "popularity": c.get("popularity", 50),
                    "album": {"release_date": c.get("release_date", "2001-01-01")},
                }
                for c in self.catalogue
                if words & set((c["name"] + " " + " ".join(c["artists"])).lower().split())
            ]
            return Handled.json({"tracks": {"items": items[:10], "total": len(items)}})
        m = _FEATURES.match(seen.path)
        if m:
            if self.audio_features_forbidden:
                return Handled.json({"error": {"status": 403, "message": "Forbidden"}}, 403)
            found = next((c for c in self.catalogue if c["id"] == m.group(1)), None)
            if found is None:
                return Handled.json({"error": {"status": 404}}, 404)
            return Handled.json({"id": found["id"], "danceability": 0.5, "energy": 0.7, "valence": 0.4, "tempo": 120.0})
        return Handled.json({"error": {"status": 404}}, 404)
