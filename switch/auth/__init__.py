"""Authentication of SIP requests: Digest (RFC 3261 §22, RFC 7616, RFC 8760) and bans.

Both parts are sans-IO: the caller passes ``now`` and a user lookup, and acts
on the results (answer 401/407, drop banned sources, write the security log).
"""

from __future__ import annotations

from .bans import Ban, BanList, BanPolicy, log_auth_failure, log_ban, log_unban
from .digest import AuthOutcome, AuthResult, Credentials, DigestAuth

__all__ = [
    "AuthOutcome",
    "AuthResult",
    "Ban",
    "BanList",
    "BanPolicy",
    "Credentials",
    "DigestAuth",
    "log_auth_failure",
    "log_ban",
    "log_unban",
]
