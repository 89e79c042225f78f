"""Content negotiation for gzip (RFC 9110 §12.5.3), by the rules taught in stage s08.

`stages/s08_gzip.py` reads Accept-Encoding into a table of weights; this
reads it in one pass over bytes, and stops at the first answer.  The rules are
the same, and tests/test_s08_gzip.py feeds both the same values:

- the field absent or empty: no gzip (a client that names no coding may not
  decompress);
- elements separated by commas, empty ones ignored; coding names compare
  case-insensitively, and "x-gzip" is "gzip" (§8.4.1.3);
- the weight is an element's first "q" parameter (its name case-insensitive);
  one that is not a qvalue (0 to 1, at most three decimals, §12.4.2) counts
  as 0, as nginx reads it: better uncompressed than unreadable;
- a coding named twice keeps its first weight (as nginx reads it);
- gzip's weight if it is named, else that of "*", else not acceptable; a
  weight of 0 means "not acceptable".
"""
import re

_QVALUE = re.compile(rb"0(\.[0-9]{0,3})?|1(\.0{0,3})?")


def accepts_gzip(accept_encoding) -> bool:
    """Whether an Accept-Encoding value (bytes, or None when absent) allows gzip."""
    if not accept_encoding:
        return False
    star = None
    for element in accept_encoding.split(b","):
        coding, _, parameters = element.partition(b";")
        coding = coding.strip().lower()
        if coding in (b"gzip", b"x-gzip"):
            return _weight(parameters) > 0
        if coding == b"*" and star is None:
            star = _weight(parameters) > 0
    return bool(star)


def _weight(parameters: bytes) -> float:
    for parameter in parameters.split(b";"):
        name, _, value = parameter.partition(b"=")
        if name.strip().lower() == b"q":
            value = value.strip()
            return float(value) if _QVALUE.fullmatch(value) else 0.0
    return 1.0
