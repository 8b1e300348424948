"""Qualify: OPTIONS to every binding at an interval, to know who is reachable.

Theory of operation
-------------------
The PBX's "monitor this extension" option.  ``tick(now)`` is called about
once a second and returns the bindings to probe in this tick: the whole
table is walked once per ``interval_s``, spread evenly, so 100,000 bindings
at 60 s cost 1,700 OPTIONS a second rather than 100,000 at once.  Any final
response proves the device alive (a 404 or 405 too); a timeout or transport
error counts as a failure, and ``max_failures`` in a row mark the binding
unreachable until it answers again.  An AOR whose bindings are all
unreachable is "unavailable" to the call layer.  Keep-alive is a side
effect: each probe refreshes the NAT pinhole of UDP devices.
"""

from __future__ import annotations

import logging
import math
from collections import deque

from ..sip.builders import new_branch, new_call_id, new_tag
from ..sip.message import Request, new_request
from .location import AorKey, Binding, Location

log = logging.getLogger("centrala.qualify")


class Qualifier:
    def __init__(self, location: Location, interval_s: float, max_failures: int = 3) -> None:
        self.location = location
        self.interval_s = interval_s
        self.max_failures = max_failures
        self._queue: deque[tuple[AorKey, str]] = deque()
        self._per_tick = 0

    def tick(self) -> list[tuple[AorKey, Binding]]:
        """The bindings to probe now (call once a second)."""
        if self.interval_s <= 0:
            return []
        if not self._queue:
            self._queue.extend((aor, key) for aor, table in self.location.aors() for key in table)
            self._per_tick = math.ceil(len(self._queue) / self.interval_s)
        due: list[tuple[AorKey, Binding]] = []
        while self._queue and len(due) < self._per_tick:
            aor, key = self._queue.popleft()
            binding = self.location.binding(aor, key)
            if binding is not None:
                due.append((aor, binding))
        return due

    def answered(self, aor: AorKey, binding: Binding) -> None:
        if not binding.reachable:
            log.info("%s@%s reachable again at %s", aor[1], aor[0], binding.uri)
        binding.failures = 0
        binding.reachable = True

    def failed(self, aor: AorKey, binding: Binding) -> None:
        binding.failures += 1
        if binding.reachable and binding.failures >= self.max_failures:
            binding.reachable = False
            log.warning("%s@%s unreachable at %s", aor[1], aor[0], binding.uri)


def qualify_request(
    aor: AorKey, binding: Binding, local: tuple[str, str, int], user_agent: str
) -> Request:
    """OPTIONS to a binding (RFC 3261 §11), sent to where its REGISTER came from."""
    transport, host, port = local
    sent_by = f"[{host}]" if ":" in host else host
    tag, branch = new_tag(), new_branch()
    return new_request(
        "OPTIONS",
        binding.uri,
        [
            ("Via", f"SIP/2.0/{transport.upper()} {sent_by}:{port};branch={branch};rport"),
            *(("Route", p) for p in binding.path),
            ("Max-Forwards", 70),
            ("From", f"<sip:qualify@{aor[0]}>;tag={tag}"),
            ("To", f"<{binding.uri}>"),
            ("Call-ID", new_call_id(host)),
            ("CSeq", "1 OPTIONS"),
            ("User-Agent", user_agent),
            ("Content-Length", 0),
        ],
    )
