"""Licensing: signed licence files and the policy they impose.

Seeded from innovaphone PBX V12 licensing.  A licence authority (an operator
running ``centrala licence keygen`` / ``issue``) signs licence files with an
Ed25519 key; the switch trusts the public keys in ``<config>/licences/*.pub``
and counts the items of the ``<config>/licences/*.lic`` files those keys
signed.  :mod:`.document` is the file format, :mod:`.policy` what the
licences allow, :mod:`.cli` the authority's command line.
"""

SOFTWARE_LICENCE_VERSION = 1
"""Licence generation this software needs: licences of this version or higher serve it."""

# The policy imports the constant above, so it is defined before these imports.
from .document import (
    Licence,
    LicenceError,
    LicenceItem,
    UntrustedLicence,
    sign,
    verify,
)
from .policy import (
    LicencePolicy,
    LicenceProblem,
    LicenceType,
    PortLicences,
    report,
)

__all__ = [
    "SOFTWARE_LICENCE_VERSION",
    "Licence",
    "LicenceError",
    "LicenceItem",
    "LicencePolicy",
    "LicenceProblem",
    "LicenceType",
    "PortLicences",
    "UntrustedLicence",
    "report",
    "sign",
    "verify",
]
