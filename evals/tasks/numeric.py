"""Finding and comparing a final numeric answer in free text (GSM8K, arithmetic).

Models write answers as "\\boxed{18}", "The answer is $1,000.", "#### 18", "-3",
"5.00", "1{,}000" or "18 dollars". The final answer is, in this order:

1. the number in the last complete \\boxed{} (a number written after the box,
   "\\boxed{18}. That took 3 steps.", cannot win);
2. the value after the last answer marker ("the answer is", "####"), read from
   the marker's own sentence: its first number, or, when that number opens an
   expression ("The answer is 7 + 5 = 12"), the number after the last "=";
3. the last number in the text, but only for a completion that ended by itself:
   one cut off at the token limit without a box or a marker has no answer (its
   last number is some intermediate result).

Numbers are normalised to a canonical decimal string ("1,000" -> "1000", "5.00"
-> "5", "-0" -> "0") so that equal values compare equal as strings and as numbers.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from evals.tasks.math_equiv import last_boxed

# A minus sign counts only when it does not follow a word character or a closing
# bracket, so "12-5" reads as 12 and 5, not 12 and -5; "$" may sit on either side
# of it ("-$3", "$-3"). Thousands separators only in groups of three, so a list
# "1,2,3" stays three numbers.
_NUMBER = re.compile(
    r"(?<![\w)\]])(?P<sign>[-−]?)\s?\$?\s?(?P<sign2>[-−]?)"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
)
_MARKER = re.compile(r"the (?:final )?answer is|####", re.IGNORECASE)
# LaTeX thousands separators between digit groups: "1{,}000", "1,\!000", "1\,000".
_LATEX_THOUSANDS = re.compile(r"(?<=\d)(?:\{,\}|,\\!|\\,)(?=\d{3}(?!\d))")
# The end of the marker's sentence: a line break, or a full stop that is not a decimal point.
_SENTENCE_END = re.compile(r"\n|\.(?!\d)")
# What follows a number that opens an expression rather than stating a result.
_OPERATOR = re.compile(r"\s*(?:[-+*/×÷=−]|x\s|\\times|\\cdot|\\div)")


def extract_number(text: str, *, truncated: bool = False) -> str | None:
    """The final answer of `text` as a canonical number string (precedence in the module docstring), or None.

    `truncated`: the text was cut off at the token limit, so only a box or a marker gives an answer.
    """
    text = _LATEX_THOUSANDS.sub(",", text)
    boxed = last_boxed(text)
    if boxed:
        answer = _stated_value(boxed)
        if answer is not None:
            return answer
    markers = list(_MARKER.finditer(text))
    if markers:
        rest = text[markers[-1].end() :].lstrip(" \t\n:*")
        end = _SENTENCE_END.search(rest)
        answer = _stated_value(rest[: end.start()] if end else rest)
        if answer is not None:
            return answer
    if truncated:
        return None
    numbers = [_to_canonical(m) for m in _NUMBER.finditer(text)]
    numbers = [n for n in numbers if n is not None]
    return numbers[-1] if numbers else None


def normalize_number(text: str) -> str | None:
    """A single number as written ("$1,000", "-3", "5.00", "1{,}000") in canonical form; None if it is not one."""
    match = _NUMBER.search(_LATEX_THOUSANDS.sub(",", text.strip()))
    return _to_canonical(match) if match else None


def numbers_equal(predicted: str | None, gold: str) -> bool:
    """Numeric equality of two answers; anything unparseable is simply not equal."""
    if predicted is None:
        return False
    a, b = normalize_number(predicted), normalize_number(gold)
    return a is not None and b is not None and Decimal(a) == Decimal(b)


def _stated_value(statement: str) -> str | None:
    """The value a short statement gives: its first number, or the result of the expression it opens."""
    first = _NUMBER.search(statement)
    if first is None:
        return None
    equals = statement.rfind("=")
    if equals > first.start() and _OPERATOR.match(statement, first.end()):
        result = _NUMBER.search(statement, equals + 1)
        if result is not None:
            return _to_canonical(result)
    return _to_canonical(first)


def _to_canonical(match: re.Match[str]) -> str | None:
    negative = bool(match["sign"] or match["sign2"])
    try:
        value = Decimal(match["num"].replace(",", ""))
    except InvalidOperation:
        return None
    if negative:
        value = -value
    if value == 0:
        return "0"  # also folds "-0" and "0.00"
    # 'f' keeps "100" from turning into "1E+2" after normalize().
    return format(value.normalize(), "f")
