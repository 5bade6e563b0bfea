"""Content intelligence: features, rule-based and LLM analyzers, the router, the distilled predictor.

Submodules are imported where used (``shared.intel.router``, ``shared.intel.features``, ...) so a
function that only scrapes never loads the CMU dictionary or the analyzers.
"""

__all__: list[str] = []
