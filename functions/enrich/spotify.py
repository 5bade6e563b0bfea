"""A Spotify-compatible Web API client: client-credentials token (cached until shortly before it
expires, shared through the cache), track search with fuzzy artist/title matching, audio features.
"""

from __future__ import annotations

import base64
import re
import threading
import time
import unicodedata
from difflib import SequenceMatcher
from typing import Any

from shared.cache.redis_cache import SharedCache
from shared.net.client import SafeHttpClient
from shared.net.errors import UpstreamRejected

__all__ = ["SpotifyClient", "match_score", "normalize_name"]

_EXPIRY_MARGIN_S = 60.0
_NOISE = re.compile(r"\s*[\(\[][^)\]]*[\)\]]|\s+-\s+.*$|\b(feat|ft)\.?\s.*$")
_NON_WORD = re.compile(r"[^a-z0-9 ]+")
_AUDIO_FIELDS = (
    "danceability",
    "energy",
    "valence",
    "tempo",
    "acousticness",
    "instrumentalness",
    "speechiness",
    "liveness",
    "loudness",
    "key",
    "mode",
    "time_signature",
    "duration_ms",
)


def normalize_name(name: str) -> str:
    """Lower-case, accents and punctuation dropped, '(Remastered)' / '- Live' / 'feat. X' and a
    leading 'the' removed: the parts two catalogues disagree on."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    text = _NOISE.sub("", text)
    text = _NON_WORD.sub(" ", text).replace("&", "and")
    words = text.split()
    if words and words[0] == "the":
        words = words[1:]
    return " ".join(words)


def match_score(artist: str, title: str, candidate_artists: list[str], candidate_title: str) -> float:
    """0..1: title similarity weighted 0.6, best artist similarity 0.4."""
    t = SequenceMatcher(None, normalize_name(title), normalize_name(candidate_title)).ratio()
    a = max(
        (SequenceMatcher(None, normalize_name(artist), normalize_name(c)).ratio() for c in candidate_artists),
        default=0.0,
    )
    return round(0.6 * t + 0.4 * a, 4)


class SpotifyClient:
    def __init__(
        self,
        http: SafeHttpClient,
        cache: SharedCache,
        *,
        api_url: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        min_match: float = 0.85,
    ) -> None:
        self.http = http
        self.cache = cache
        self.api_url = api_url.rstrip("/")
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self.min_match = min_match
        self._lock = threading.Lock()
        self.tokens_fetched = 0

    def _cache_key(self) -> str:
        return f"spotify:{self.client_id}"

    def token(self, *, refresh: bool = False) -> str:
        cached = None if refresh else self.cache.get_kind("token", self._cache_key())
        if isinstance(cached, dict) and cached.get("expires_at", 0) > time.time() + _EXPIRY_MARGIN_S:
            return str(cached["access_token"])
        with self._lock:
            basic = base64.b64encode(f"{self.client_id}:{self._secret}".encode()).decode()
            doc = self.http.post(
                self.token_url, data={"grant_type": "client_credentials"}, headers={"authorization": f"Basic {basic}"}
            ).json()
            self.tokens_fetched += 1
            token = str(doc["access_token"])
            expires_in = float(doc.get("expires_in", 3600))
            entry = {"access_token": token, "expires_at": time.time() + expires_in}
            self.cache.set_kind("token", self._cache_key(), entry, ttl_s=max(1.0, expires_in - _EXPIRY_MARGIN_S))
            return token

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        for attempt in (1, 2):
            headers = {"authorization": f"Bearer {self.token(refresh=attempt == 2)}"}
            try:
                return self.http.get(f"{self.api_url}{path}", params=params, headers=headers).json()
            except UpstreamRejected as exc:
                if exc.status != 401 or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def find_track(self, artist: str, title: str) -> dict[str, Any]:
        """The best catalogue match with its audio features, or ``{"matched": False, ...}``."""
        query = f'track:"{normalize_name(title)}" artist:"{normalize_name(artist)}"'
        doc = self._get("/v1/search", {"q": query, "type": "track", "limit": 10})
        items = ((doc or {}).get("tracks") or {}).get("items") or []
        best: tuple[float, dict[str, Any]] | None = None
        for item in items:
            names = [str(a.get("name", "")) for a in item.get("artists") or []]
            score = match_score(artist, title, names, str(item.get("name", "")))
            if best is None or score > best[0]:
                best = (score, item)
        if best is None or best[0] < self.min_match:
            return {"matched": False, "best_score": best[0] if best else None, "candidates": len(items)}
        score, item = best
        audio, unavailable = self._audio_features(str(item["id"]))
        return {
            "matched": True,
            "match_score": score,
            "spotify_id": item["id"],
            "name": item.get("name"),
            "artists": [a.get("name") for a in item.get("artists") or []],
            "popularity": item.get("popularity"),
            "release_date": (item.get("album") or {}).get("release_date"),
            "audio_features": audio,
            "audio_features_unavailable": unavailable,
        }

    def _audio_features(self, spotify_id: str) -> tuple[dict[str, Any] | None, str | None]:
        """The track's audio features, or None and why. Spotify answers 403 to apps registered
        after it closed the endpoint to new apps: that is lasting and says nothing about the
        track, so the match is still stored, marked as having no features, instead of failing."""
        try:
            features = self._get(f"/v1/audio-features/{spotify_id}")
        except UpstreamRejected as exc:
            if exc.status != 403:
                raise
            return None, "forbidden"
        return {k: features.get(k) for k in _AUDIO_FIELDS if isinstance(features, dict)}, None
