"""One exception hierarchy for the SIP core.

Every error carries the status a server should answer with (RFC 3261 §21), or
``None`` when the input is not worth an answer and is dropped (an unparseable
datagram, a malformed response).  Nothing a peer sends may raise anything
else out of the transport adapter.
"""

from __future__ import annotations


class SipError(Exception):
    """Base of every SIP protocol error.

    ``status`` is the response code to send back (``None``: drop silently),
    ``reason`` the reason phrase, which names the bad part of the message.
    """

    status: int | None = 400

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status


class LocalError(SipError):
    """Something this element cannot do (a timeout, no route, no resource)."""

    status = 500


class RemoteError(SipError):
    """A peer sent something wrong; ``status`` is what it deserves."""

    status: int | None = 400


class MalformedMessage(RemoteError):
    """Syntax or semantic error in a message: ``400 Bad Request``."""

    status = 400


class UnparseableMessage(RemoteError):
    """Not a SIP message at all (no start line): dropped, never answered."""

    status = None


class VersionNotSupported(RemoteError):
    """RFC 3261 §8.2.2: a SIP version other than 2.0: ``505``."""

    status = 505


class MessageTooLarge(RemoteError):
    """Over the configured size bound: ``513 Message Too Large``."""

    status = 513


class FramingError(RemoteError):
    """Content-Length unusable on a stream: answer 400, then close the connection."""

    status = 400
