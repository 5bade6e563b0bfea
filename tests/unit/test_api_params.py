"""Query validation of the API: limits, unknown parameters, and no echo of the input."""

from __future__ import annotations

import pytest

from functions.api.errors import ApiError
from functions.api.params import Param, validate_query

Q = Param("q", str, required=True, maximum=1000)
K = Param("k", int, default=10, maximum=100)


def test_valid_query_gets_typed_values_and_defaults() -> None:
    assert validate_query({"q": ["  sea  "]}, (Q, K)) == {"q": "sea", "k": 10}
    assert validate_query({"q": ["sea"], "k": ["100"]}, (Q, K))["k"] == 100


@pytest.mark.parametrize(
    ("query", "status", "needle"),
    [
        ({}, 400, "'q' is required"),
        ({"q": [""]}, 400, "'q' must not be empty"),
        ({"q": ["x" * 1001]}, 400, "at most 1000 characters"),
        ({"q": ["a"], "k": ["101"]}, 400, "between 1 and 100"),
        ({"q": ["a"], "k": ["0"]}, 400, "between 1 and 100"),
        ({"q": ["a"], "k": ["ten"]}, 400, "between 1 and 100"),
        ({"q": ["a", "b"]}, 400, "given once"),
    ],
)
def test_invalid_query_is_refused_naming_the_problem(query: dict[str, list[str]], status: int, needle: str) -> None:
    with pytest.raises(ApiError) as err:
        validate_query(query, (Q, K))
    assert err.value.status == status and needle in err.value.message


def test_unknown_parameter_is_refused_without_echoing_its_name() -> None:
    with pytest.raises(ApiError) as err:
        validate_query({"q": ["a"], "<script>evil": ["1"]}, (Q, K))
    assert err.value.code == "unknown_parameter"
    assert "script" not in err.value.message and "accepted: k, q" in err.value.message
