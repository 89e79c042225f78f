"""Content negotiation for gzip (RFC 9110 §12.5.3), as taught in stage s08."""


def accepts_gzip(accept_encoding) -> bool:
    """Whether an Accept-Encoding value allows gzip.

    The value is a list of codings with optional q-values; names compare
    case-insensitively; q=0 means "not acceptable"; "*" covers gzip when gzip
    is not named itself.
    """
    if not accept_encoding:
        return False
    star = None
    for item in accept_encoding.split(b","):
        name, _, params = item.partition(b";")
        name = name.strip().lower()
        q = _quality(params)
        if name in (b"gzip", b"x-gzip"):
            return q > 0
        if name == b"*":
            star = q > 0
    return bool(star)


def _quality(params: bytes) -> float:
    for param in params.split(b";"):
        key, _, value = param.partition(b"=")
        if key.strip().lower() == b"q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0
    return 1.0
