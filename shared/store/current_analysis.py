"""The one definition of a track's *current analysis* — "the" profile of a track — used alike by the
profile (``/tracks/{id}``), the browse filters (``/tracks``, search, similar, recommendations), the
aggregates (``/artists/{name}``, ``/stats/analyses``) and the export, so a track filtered as
``sentiment=negative`` is counted, exported and shown as negative too.

It is an analysis of the track's present text (same content hash: an analysis of an older text no
longer describes the track) by the best analyzer that answered: an LLM answer that is not a
fallback, else the distilled predictor's, else the rule-based one; the newest of a kind first. A
newer rule-based fallback (the LLM was down) therefore does not hide an earlier real LLM answer.
"""

from __future__ import annotations

from typing import LiteralString

__all__ = ["CURRENT_ANALYSIS", "current_analysis_join"]

_COLUMNS: LiteralString = (
    "a.analyzer, a.prompt_version, a.result, a.result -> 'profile' AS profile, a.confidence, a.fallback, a.created_at"
)
_RANK: LiteralString = (
    "CASE WHEN starts_with(a.analyzer, 'llm:') AND NOT a.fallback THEN 0"
    " WHEN starts_with(a.analyzer, 'distilled:') THEN 1 ELSE 2 END"
)


def current_analysis_join(*, by_analyzer: bool = False) -> LiteralString:
    """``LEFT JOIN LATERAL (...) p ON true`` over a row alias ``t`` of tracks: ``p.analyzer``,
    ``p.prompt_version``, ``p.result``, ``p.profile`` (jsonb), ``p.confidence``, ``p.fallback``,
    ``p.created_at``, all null for a track without one. ``by_analyzer`` narrows the choice to one
    analyzer, given as a ``%s`` parameter (a browse filter naming whose profile counts)."""
    analyzer: LiteralString = " AND a.analyzer = %s" if by_analyzer else ""
    return (
        " LEFT JOIN LATERAL (SELECT " + _COLUMNS + " FROM analyses a"
        " WHERE a.track_id = t.id AND a.content_hash = t.content_hash" + analyzer + " ORDER BY " + _RANK + ","
        " a.created_at DESC, a.analyzer, a.prompt_version LIMIT 1) p ON true "
    )


CURRENT_ANALYSIS: LiteralString = current_analysis_join()
