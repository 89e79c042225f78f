"""Validators, preconditions and byte ranges (RFC 9110 §8.8, §13, §14): decisions, no I/O.

``app.py`` knows the file and its validators; these functions read the
request's If-* and Range fields and say what they mean for it.  Nothing here
touches a file or a socket, so every rule can be tested on its own.
"""
import re
import time


# -- validators (§8.8) -----------------------------------------------------------

def etag(size: int, mtime_ns: int) -> bytes:
    """A strong entity tag from size and modification time, in nginx's form "<mtime hex>-<size hex>".

    nginx counts the mtime in seconds; we count nanoseconds, so two writes of
    the same size within one second still get different tags -- a strong
    validator must change whenever the bytes do (§8.8.1).
    """
    return b'"%x-%x"' % (mtime_ns, size)


def validators(info):
    """(ETag, Last-Modified in whole seconds) of a file, from its stat result."""
    return etag(info.st_size, info.st_mtime_ns), info.st_mtime_ns // 1_000_000_000


_DAY_NAMES = (b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun")
_MONTH_NAMES = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun",
                b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")


def http_date(seconds: int) -> bytes:
    """IMF-fixdate (§5.6.7), as Last-Modified and Date are sent: "Sun, 06 Nov 1994 08:49:37 GMT".

    The names are English whatever the locale (strftime's %a and %b are not).
    """
    t = time.gmtime(seconds)
    return b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAY_NAMES[t.tm_wday], t.tm_mday, _MONTH_NAMES[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)


_DAYS = rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_DAYS = rb"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTHS = {name: i for i, name in enumerate(_MONTH_NAMES, start=1)}
_MONTH = rb"(" + b"|".join(_MONTHS) + rb")"
_TIME = rb"(\d\d):(\d\d):(\d\d)"
# §5.6.7: recipients accept all three formats; senders use only the first.
_IMF_FIXDATE = re.compile(_DAYS + rb", (\d\d) " + _MONTH + rb" (\d{4}) " + _TIME + rb" GMT")
_RFC850_DATE = re.compile(_LONG_DAYS + rb", (\d\d)-" + _MONTH + rb"-(\d\d) " + _TIME + rb" GMT")
_ASCTIME_DATE = re.compile(_DAYS + rb" " + _MONTH + rb" ([ \d]\d) " + _TIME + rb" (\d{4})")


def parse_http_date(value: bytes):
    """Seconds since the epoch for an HTTP-date (§5.6.7), or None if it is not one."""
    value = value.strip(b" \t")
    if match := _IMF_FIXDATE.fullmatch(value):
        day, month, year, hour, minute, second = match.groups()
    elif match := _RFC850_DATE.fullmatch(value):
        day, month, year, hour, minute, second = match.groups()
        # A two-digit year more than 50 years ahead is the most recent past one.
        year = 2000 + int(year)
        if year > time.gmtime().tm_year + 50:
            year -= 100
    elif match := _ASCTIME_DATE.fullmatch(value):
        month, day, hour, minute, second, year = match.groups()
    else:
        return None
    year, month, day = int(year), _MONTHS[month], int(day)
    hour, minute, second = int(hour), int(minute), min(int(second), 59)    # a leap second is :59
    if not (1 <= year <= 9999 and 1 <= day <= _days_in_month(year, month) and hour < 24 and minute < 60):
        return None
    return _days_since_epoch(year, month, day) * 86400 + hour * 3600 + minute * 60 + second


def _days_in_month(year, month):
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_since_epoch(year, month, day):
    """Days from 1970-01-01 to a date of the proleptic Gregorian calendar (as calendar.timegm counts)."""
    # Count from March, so that February's leap day ends the year (Hinnant's days_from_civil).
    if month <= 2:
        year -= 1
    era, year_of_era = divmod(year, 400)
    day_of_year = (153 * (month + (9 if month <= 2 else -3)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


# -- entity-tag lists (§8.8.3) ---------------------------------------------------------

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc is any visible byte but DQUOTE.
_ENTITY_TAG = re.compile(rb'[ \t]*((?:W/)?"[\x21\x23-\x7e\x80-\xff]*")[ \t]*(?:,|$)')


def entity_tags(value: bytes):
    """The entity-tags of an If-Match / If-None-Match value, or None for "*".

    Elements that are not entity-tags are skipped: they can match nothing.
    """
    if value.strip(b" \t") == b"*":
        return None
    return [match.group(1) for match in _ENTITY_TAG.finditer(value)]


def _opaque(tag: bytes) -> bytes:
    return tag[2:] if tag.startswith(b"W/") else tag


def weak_match(tags, current) -> bool:
    """§8.8.3.2 weak comparison against any of tags ("*": any current representation)."""
    if current is None:
        return False
    return tags is None or any(_opaque(tag) == _opaque(current) for tag in tags)


def strong_match(tags, current) -> bool:
    """§8.8.3.2 strong comparison: neither tag weak, and equal."""
    if current is None or current.startswith(b"W/"):
        return False
    return tags is None or current in tags


# -- preconditions (§13.2.2) ----------------------------------------------------------

def field(request, name: bytes):
    """All values of a field, joined by ", " as a list field's lines combine (§5.3), or None."""
    values = [value for field_name, value in request.headers if field_name.lower() == name]
    if not values:
        return None
    return values[0] if len(values) == 1 else b", ".join(values)


def precondition_status(request, current_etag, last_modified, safe: bool) -> int:
    """412 or 304 when the request's preconditions decide the answer, else 0.

    current_etag / last_modified describe the selected representation, None
    when there is none (a file about to be created).  safe: the method is
    GET or HEAD.  The fields are evaluated in the order §13.2.2 prescribes, so
    If-Match outranks If-Unmodified-Since and If-None-Match If-Modified-Since.
    """
    if_match = field(request, b"if-match")
    if if_match is not None:
        if not strong_match(entity_tags(if_match), current_etag):
            return 412
    else:
        if_unmodified_since = field(request, b"if-unmodified-since")
        # §13.1.4: ignored when the resource has no modification date.
        if if_unmodified_since is not None and last_modified is not None:
            date = parse_http_date(if_unmodified_since)
            if date is not None and last_modified > date:
                return 412
    if_none_match = field(request, b"if-none-match")
    if if_none_match is not None:
        if weak_match(entity_tags(if_none_match), current_etag):
            return 304 if safe else 412
    elif safe:
        if_modified_since = field(request, b"if-modified-since")
        if if_modified_since is not None and last_modified is not None:
            date = parse_http_date(if_modified_since)
            if date is not None and last_modified <= date:
                return 304
    return 0


def if_range_holds(value: bytes, current_etag, last_modified) -> bool:
    """§13.1.5: the client's copy is current, so a part of it may be sent.

    An entity-tag must match strongly; a date must equal Last-Modified exactly.
    """
    value = value.strip(b" \t")
    if value.startswith((b'"', b"W/")):
        return strong_match([value], current_etag)
    date = parse_http_date(value)
    return date is not None and last_modified is not None and last_modified == date


# -- byte ranges (§14) -----------------------------------------------------------------

UNSATISFIABLE = "unsatisfiable"
# Positions longer than this are past the end of any file (and int() of very
# long digit strings is refused by Python anyway).
_MAX_POSITION_DIGITS = 18
_RANGE_SPEC = re.compile(rb"(\d*)-(\d*)")


def _position(digits: bytes) -> int:
    return int(digits) if len(digits) <= _MAX_POSITION_DIGITS else 1 << 63


def byte_range(value: bytes, size: int):
    """What a Range field asks of a file of size bytes (§14.1.1, §14.2).

    (offset, length) for one satisfiable range; UNSATISFIABLE when no range
    in it is; None when the field is to be ignored and the whole file sent
    with 200: an invalid value, another unit, or more than one range of
    which some is satisfiable (we do not send multipart/byteranges, which
    §14.2 allows a server to decline).
    """
    unit, sep, range_set = value.partition(b"=")
    if not sep or unit.lower() != b"bytes":
        return None
    specs = [spec.strip(b" \t") for spec in range_set.split(b",")]
    specs = [spec for spec in specs if spec]        # §5.6.1: empty list elements do not count
    ranges = []
    for spec in specs:
        match = _RANGE_SPEC.fullmatch(spec)
        if match is None or match.group(0) == b"-":
            return None
        first, last = match.groups()
        if not first:                   # suffix-range "-n": the last n bytes
            ranges.append((None, _position(last)))
        elif last and _position(last) < _position(first):
            return None                 # "5-3" is invalid, not unsatisfiable
        else:
            ranges.append((_position(first), _position(last) if last else None))
    if not ranges:
        return None
    parts = [_satisfiable_part(first, last, size) for first, last in ranges]
    if all(part is UNSATISFIABLE for part in parts):
        return UNSATISFIABLE        # §15.5.17: 416 when no range of the set is satisfiable
    return parts[0] if len(parts) == 1 else None


def _satisfiable_part(first, last, size):
    """(offset, length) of one parsed range-spec in a file of size bytes, or UNSATISFIABLE."""
    if first is None:
        # A suffix longer than the file means all of it; "-0" asks for nothing.
        if last == 0 or size == 0:
            return UNSATISFIABLE
        first, last = max(size - last, 0), size - 1
    elif first >= size:
        return UNSATISFIABLE
    elif last is None or last >= size:
        last = size - 1
    return first, last - first + 1
