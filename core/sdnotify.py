"""sd_notify(3) without libsystemd: tell the service manager how the server is doing.

With Type=notify systemd sets NOTIFY_SOCKET, a unix datagram socket (in the
abstract namespace when the name starts with '@'), and waits for READY=1
before it considers the service started.  Without NOTIFY_SOCKET every call
does nothing.
"""
import os
import socket
import time


def notify(*fields: str) -> bool:
    """Send fields such as "READY=1" as one datagram; True if it was sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address or address[0] not in "@/":
        return False
    if address[0] == "@":
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto("\n".join(fields).encode(), address)
        return True
    except OSError:
        return False            # a manager that went away must not take the server with it


def reloading() -> bool:
    """RELOADING=1, with the clock value Type=notify-reload asks for (systemd 253)."""
    return notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
