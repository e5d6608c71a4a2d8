"""The smoke check of a freshly started Bento: the answer must fit the sample request."""

from __future__ import annotations

import pytest

from core.targets.local import answer_shape_problem

TWO_ROWS = b'{"features": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}'


@pytest.mark.parametrize(
    ("request_body", "answer", "problem"),
    [
        (TWO_ROWS, b'["setosa", "virginica"]', None),
        (TWO_ROWS, b'["setosa"]', "sent 2 rows, the answer holds 1 items"),
        (TWO_ROWS, b'"setosa"', "sent 2 rows, the answer is a single str"),
        (TWO_ROWS, b'{"labels": ["a", "b"]}', None),
        (TWO_ROWS, b"<html>oops</html>", "the answer is not JSON: <html>oops</html>"),
        (b'{"text": "hello"}', b'{"label": "greeting"}', None),
        (b"not json", b"[1]", None),
    ],
)
def test_answer_shape(request_body: bytes, answer: bytes, problem: str | None) -> None:
    assert answer_shape_problem(request_body, answer) == problem
