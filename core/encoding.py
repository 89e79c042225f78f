"""Content negotiation of codings (RFC 9110 §12.5.3), by the rules taught in stage s08.

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

`preferred_codings` applies the same rules to any coding (a name.br or a
name.gz lying beside a file): those acceptable, highest weight first, and on
a tie in the order the server offers them (br before gzip: it is smaller).
For gzip alone it agrees with `accepts_gzip`, which the tests check on the
stage's list.  "identity" is not weighed against them: like nginx's
gzip_static, a coding the client accepts is sent.
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


def preferred_codings(accept_encoding, offered) -> list:
    """The codings of offered (bytes, most preferred first) that accept_encoding allows, best first.

    Weights as accepts_gzip reads them: a coding's first weight, else that
    of "*"; "x-gzip" is "gzip".  A tie keeps offered's order.
    """
    if not accept_encoding:
        return []
    weights = {}
    star = None
    for element in accept_encoding.split(b","):
        coding, _, parameters = element.partition(b";")
        coding = coding.strip().lower()
        if coding == b"x-gzip":
            coding = b"gzip"
        if coding == b"*":
            if star is None:
                star = _weight(parameters)
        elif coding not in weights:
            weights[coding] = _weight(parameters)
    ranked = []
    for order, coding in enumerate(offered):
        weight = weights.get(coding, star)
        if weight:
            ranked.append((-weight, order, coding))
    return [coding for _, _, coding in sorted(ranked)]
