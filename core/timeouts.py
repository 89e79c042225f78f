"""Which clock runs for a connection, and what happens when it runs out.

Both event loops classify each connection after every round of I/O into one
phase; the phase picks the timeout from Limits.  Kept here so the two loops
cannot disagree about it.
"""
# Phases of a connection.
IDLE = 0      # between requests: nothing buffered, nothing to send
HEAD = 1      # part of a request head has arrived
BODY = 2      # reading a request body
SENDING = 3   # a response is queued or being sent
LINGER = 4    # error answered, write side shut, draining what the client still sends

# Phases whose clock restarts on every bit of progress; the others run from
# the moment the phase is entered (a head must arrive whole in time).
REFRESHED_ON_PROGRESS = (BODY, SENDING)


def timeout_for(phase, limits) -> float:
    return (limits.keepalive_timeout, limits.header_timeout, limits.body_timeout,
            limits.send_timeout, limits.linger_timeout)[phase]


def expiry_status(phase):
    """408 for a request that did not arrive in time (RFC 9110 §15.5.9); None: just close."""
    return 408 if phase in (HEAD, BODY) else None
