"""Licence policy: what the verified licences allow on this node.

Theory of operation.  A :class:`LicencePolicy` is a value: the verified
:class:`~switch.licence.document.Licence` documents, the name of this node and
the software's licence version.  Every question is answered from those three:

* **Node binding.**  A licence bound to a node counts only on that node
  (names compared case-insensitively); an unbound licence counts everywhere.
* **Version rule.**  A licence item serves software of its version or lower.
  For port licences the rule is all-or-nothing per tenant (the tenant is the
  innovaphone "project", the unit a licence belongs to): the *effective
  licence version* is the lowest version among the tenant's port licences on
  this node, and when it is below the software's, none of its port licences
  is valid and registrations are refused with :meth:`LicencePolicy.port_refusal`.
  Other items simply count only when their own version is high enough.
* **Floating port licences** are counted at run time by the registrar (one per
  user or trunk with a registered device); the policy only says how many a
  tenant has and whether they are valid.
* **User-bound licences** (``PBX-VoicemailUser``, ``PBX-Fax``, ``PBX-Recording``,
  ``PBX-UC``) are counted from the configuration: a user needs one when the
  feature's flag is set (:data:`USER_FEATURES`); a tenant's ``recording``
  records every user, so each needs a ``PBX-Recording`` licence.  ``PBX-UC`` bundles voicemail,
  fax, video, mobility, app sharing and myPBX, so a ``uc`` user needs no
  voicemail or fax licence.  The old voicemail model (``PBX-Voicemail``, as
  many as port licences, then every user may have voicemail) and the per-user
  model cannot be mixed in one tenant.
* **Standby** operation needs at least as many standby licences as port
  licences.

:meth:`LicencePolicy.problems` returns what the loader must refuse;
:func:`report` formats the state for ``centrala licences``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, NamedTuple, Protocol

from . import SOFTWARE_LICENCE_VERSION
from .document import Licence

__all__ = [
    "USER_FEATURES",
    "LicencePolicy",
    "LicenceProblem",
    "LicenceType",
    "LicensedTenant",
    "LicensedUser",
    "PortLicences",
    "TotalKey",
    "UserFeature",
    "report",
]


class LicenceType(StrEnum):
    """Licence types this software knows (innovaphone PBX V12 names)."""

    PORT = "PBX-Port"
    STANDBY = "PBX-Standby"
    VOICEMAIL = "PBX-Voicemail"
    VOICEMAIL_USER = "PBX-VoicemailUser"
    FAX = "PBX-Fax"
    UC = "PBX-UC"
    RECORDING = "PBX-Recording"
    REPORTING = "PBX-Reporting"
    CONFERENCE = "PBX-Conference"
    SOFTWAREPHONE = "PBX-Softwarephone"
    VIDEO = "PBX-Video"
    MOBILITY = "PBX-Mobility"
    APP_SHARING = "PBX-AppSharing"
    MYPBX = "PBX-myPBX"


class LicensedUser(Protocol):
    """What the policy reads of an extension (``dialplan.schema.Extension``)."""

    @property
    def number(self) -> str: ...
    @property
    def voicemail(self) -> bool: ...
    @property
    def fax(self) -> bool: ...
    @property
    def recording(self) -> bool: ...
    @property
    def uc(self) -> bool: ...


class LicensedTenant(Protocol):
    """What the policy reads of a tenant (``dialplan.schema.Tenant``)."""

    @property
    def domain(self) -> str: ...
    @property
    def extensions(self) -> Sequence[LicensedUser]: ...
    @property
    def recording(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class UserFeature:
    """A per-user feature that needs one ``licence`` per user for whom ``needs``
    (of the tenant and the user) is true."""

    flag: str  # the extension setting that enables it, for error locations
    label: str
    licence: LicenceType
    needs: Callable[[LicensedTenant, LicensedUser], bool]


USER_FEATURES: tuple[UserFeature, ...] = (
    UserFeature("uc", "the UC bundle", LicenceType.UC, lambda t, u: u.uc),
    UserFeature(
        "voicemail", "voicemail", LicenceType.VOICEMAIL_USER,
        lambda t, u: u.voicemail and not u.uc,
    ),
    UserFeature("fax", "fax", LicenceType.FAX, lambda t, u: u.fax and not u.uc),
    UserFeature("recording", "recording", LicenceType.RECORDING,
                lambda t, u: u.recording or t.recording),
)
_VOICEMAIL = USER_FEATURES[1]

ProblemKind = Literal["users", "mixed_voicemail", "standby"]


@dataclass(frozen=True, slots=True)
class LicenceProblem:
    """A configuration the licences do not allow; the loader refuses it.

    ``kind`` says where it belongs: ``users`` in the tenant file at the
    ``flag`` of extension ``first_over``; ``mixed_voicemail`` in the licence
    files of ``serials``; ``standby`` at ``standby`` in ``centrala.yaml``.
    """

    kind: ProblemKind
    tenant: str
    message: str
    flag: str | None = None
    users: tuple[str, ...] = ()
    first_over: str | None = None
    serials: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PortLicences:
    """A tenant's port licences on this node."""

    count: int  # installed here, any version
    effective_version: int | None  # lowest port licence version; None without any
    valid: bool
    reason: str | None  # why they are not valid

    @property
    def usable(self) -> int:
        """Port licences that may be handed out."""
        return self.count if self.valid else 0


class TotalKey(NamedTuple):
    """One line of :meth:`LicencePolicy.totals`; ``node`` None means unbound."""

    tenant: str
    type: str
    version: int
    node: str | None


@dataclass(frozen=True, slots=True)
class LicencePolicy:
    """The verified licences and what they allow on ``node``."""

    licences: tuple[Licence, ...] = ()
    node: str = ""
    software_version: int = SOFTWARE_LICENCE_VERSION

    # -- which licences count here ------------------------------------------------
    def applies_here(self, licence: Licence) -> bool:
        """Unbound, or bound to this node."""
        return licence.node is None or licence.node.lower() == self.node.lower()

    def here(self, tenant: str) -> tuple[Licence, ...]:
        """The tenant's licences that count on this node."""
        domain = tenant.lower()
        return tuple(x for x in self.licences if x.tenant == domain and self.applies_here(x))

    def elsewhere(self, tenant: str) -> tuple[Licence, ...]:
        """The tenant's licences bound to other nodes."""
        domain = tenant.lower()
        return tuple(x for x in self.licences if x.tenant == domain and not self.applies_here(x))

    def tenants(self) -> tuple[str, ...]:
        """Every tenant domain named by a licence, sorted."""
        return tuple(sorted({x.tenant for x in self.licences}))

    def serials_with(self, tenant: str, kind: str) -> tuple[str, ...]:
        """Serials of the tenant's licences here that hold items of type ``kind``."""
        return tuple(x.serial for x in self.here(tenant) if any(i.type == kind for i in x.items))

    # -- counts --------------------------------------------------------------------
    def installed(self, tenant: str, kind: str) -> int:
        """Licences of type ``kind`` the tenant has on this node, whatever their version."""
        return sum(i.count for x in self.here(tenant) for i in x.items if i.type == kind)

    def valid(self, tenant: str, kind: str) -> int:
        """Licences of type ``kind`` that serve this software on this node."""
        if kind == LicenceType.PORT:
            return self.ports(tenant).usable
        return sum(
            i.count
            for x in self.here(tenant)
            for i in x.items
            if i.type == kind and i.version >= self.software_version
        )

    def totals(self) -> dict[TotalKey, int]:
        """Counts per tenant, type, version and node over all licences (any node)."""
        totals: Counter[TotalKey] = Counter()
        for x in self.licences:
            for i in x.items:
                totals[TotalKey(x.tenant, i.type, i.version, x.node)] += i.count
        return dict(sorted(totals.items(), key=lambda kv: (kv[0][:3], kv[0].node or "")))

    # -- port licences ---------------------------------------------------------------
    def effective_version(self, tenant: str) -> int | None:
        """Lowest version among the tenant's port licences here; None without any."""
        versions = [
            i.version for x in self.here(tenant) for i in x.items if i.type == LicenceType.PORT
        ]
        return min(versions, default=None)

    def ports(self, tenant: str) -> PortLicences:
        """The tenant's port licences on this node and whether they are valid."""
        count = self.installed(tenant, LicenceType.PORT)
        version = self.effective_version(tenant)
        if version is None or version >= self.software_version:
            return PortLicences(count, version, valid=True, reason=None)
        old = [
            x.serial
            for x in self.here(tenant)
            if any(i.type == LicenceType.PORT and i.version == version for i in x.items)
        ]
        reason = (
            f"port licences are version {version} (serial {', '.join(old)}), below "
            f"software licence version {self.software_version}; install version "
            f"{self.software_version} port licences"
        )
        return PortLicences(count, version, valid=False, reason=reason)

    def port_refusal(self, tenant: str, in_use: int) -> str | None:
        """Why one more port licence cannot be taken while ``in_use`` are; None if it can."""
        ports = self.ports(tenant)
        if not ports.valid:
            return ports.reason
        if in_use >= ports.count:
            return f"all {ports.count} port licence(s) of the tenant are in use"
        return None

    # -- configuration checks ----------------------------------------------------------
    def problems(
        self, tenants: Iterable[LicensedTenant], *, standby: bool = False
    ) -> list[LicenceProblem]:
        """Everything in the configuration the licences do not allow."""
        problems: list[LicenceProblem] = []
        for tenant in tenants:
            problems += self.user_problems(tenant)
            mixed = self.mixed_voicemail(tenant.domain)
            problems += [mixed] if mixed else []
            short = self.standby_shortfall(tenant.domain) if standby else None
            problems += [short] if short else []
        return problems

    def user_problems(self, tenant: LicensedTenant) -> list[LicenceProblem]:
        """Users enabling user-bound features beyond the tenant's licences."""
        problems: list[LicenceProblem] = []
        for feature in USER_FEATURES:
            users = tuple(u.number for u in tenant.extensions if feature.needs(tenant, u))
            if feature is _VOICEMAIL and self.installed(tenant.domain, LicenceType.VOICEMAIL):
                problem = self._old_voicemail_problem(tenant.domain, users)
            else:
                whole = feature.licence is LicenceType.RECORDING and tenant.recording
                problem = self._over_count(tenant.domain, feature, users, whole)
            problems += [problem] if problem else []
        return problems

    def _over_count(
        self, tenant: str, feature: UserFeature, users: tuple[str, ...], whole: bool = False
    ) -> LicenceProblem | None:
        """Too few licences for ``users``; ``whole``: the tenant's own setting
        enables the feature for every user."""
        licensed = self.valid(tenant, feature.licence)
        if len(users) <= licensed:
            return None
        enable = f"has {feature.label} on for all {len(users)} user(s)" if whole else \
            f"{len(users)} user(s) enable {feature.label}"
        message = (
            f"tenant {tenant}: {enable} but only "
            f"{licensed} {feature.licence} licence(s){self._old_note(tenant, feature.licence)}: "
            f"{', '.join(users)} ({len(users) - licensed} over)"
        )
        return LicenceProblem(
            "users", tenant, message, feature.flag, users, first_over=users[licensed]
        )

    def _old_voicemail_problem(self, tenant: str, users: tuple[str, ...]) -> LicenceProblem | None:
        """Old model: voicemail for every user once PBX-Voicemail >= PBX-Port."""
        voicemail = self.valid(tenant, LicenceType.VOICEMAIL)
        ports = self.installed(tenant, LicenceType.PORT)
        if not users or voicemail >= ports:
            return None
        message = (
            f"tenant {tenant}: {len(users)} user(s) enable voicemail but the "
            f"{LicenceType.VOICEMAIL} model needs as many licences as {LicenceType.PORT} "
            f"({ports}) and there are only {voicemail}"
            f"{self._old_note(tenant, LicenceType.VOICEMAIL)}: {', '.join(users)}"
        )
        return LicenceProblem("users", tenant, message, "voicemail", users, first_over=users[0])

    def _old_note(self, tenant: str, kind: str) -> str:
        """`` (3 more below software licence version 1)`` when old items exist."""
        old = self.installed(tenant, kind) - self.valid(tenant, kind)
        if old <= 0:
            return ""
        return f" ({old} more below software licence version {self.software_version})"

    def mixed_voicemail(self, tenant: str) -> LicenceProblem | None:
        """Both voicemail models installed for one tenant."""
        old = self.serials_with(tenant, LicenceType.VOICEMAIL)
        new = self.serials_with(tenant, LicenceType.VOICEMAIL_USER)
        if not (old and new):
            return None
        message = (
            f"tenant {tenant}: {LicenceType.VOICEMAIL} (serial {', '.join(old)}) and "
            f"{LicenceType.VOICEMAIL_USER} (serial {', '.join(new)}) licences cannot be "
            "mixed; install one voicemail model only"
        )
        return LicenceProblem("mixed_voicemail", tenant, message, serials=old + new)

    def standby_shortfall(self, tenant: str) -> LicenceProblem | None:
        """Standby needs at least as many standby licences as port licences."""
        ports = self.installed(tenant, LicenceType.PORT)
        standby = self.valid(tenant, LicenceType.STANDBY)
        if standby >= ports:
            return None
        message = (
            f"standby: true but tenant {tenant} has {ports} {LicenceType.PORT} and only "
            f"{standby} {LicenceType.STANDBY} licence(s) on node {self.node}"
            f"{self._old_note(tenant, LicenceType.STANDBY)}"
        )
        return LicenceProblem("standby", tenant, message)


# --------------------------------------------------------------------------- report


def report(
    policy: LicencePolicy,
    tenants: Sequence[LicensedTenant],
    in_use: Mapping[str, Mapping[str, int]],
    *,
    standby: bool = False,
) -> str:
    """The text of ``centrala licences``.

    ``in_use`` maps a tenant domain to ``{licence type: count in use}``, e.g.
    ``{"demo.centrala.test": {"PBX-Port": 3}}`` from the registrar; user-bound
    types missing from it are counted from the configuration.
    """
    header = (
        f"node {policy.node}, software licence version {policy.software_version}, "
        f"standby: {'yes' if standby else 'no'}"
    )
    lines = [header]
    configured = [t.domain.lower() for t in tenants]
    for tenant in tenants:
        used = {**_user_bound_in_use(tenant), **in_use.get(tenant.domain.lower(), {})}
        lines += _tenant_report(policy, tenant.domain.lower(), used)
    unknown = [d for d in policy.tenants() if d not in configured]
    if unknown:
        lines.append("licences for tenants not configured here (ignored): " + ", ".join(unknown))
    problems = policy.problems(tenants, standby=standby)
    lines += [f"problem: {p.message}" for p in problems]
    return "\n".join(lines) + "\n"


def _user_bound_in_use(tenant: LicensedTenant) -> dict[str, int]:
    uses: dict[str, int] = defaultdict(int)
    for feature in USER_FEATURES:
        uses[feature.licence] += sum(1 for u in tenant.extensions if feature.needs(tenant, u))
    return dict(uses)


def _tenant_report(policy: LicencePolicy, tenant: str, used: Mapping[str, int]) -> list[str]:
    ports = policy.ports(tenant)
    if ports.valid:
        state = f"port licences valid (effective licence version {ports.effective_version})"
        state = state if ports.effective_version is not None else "no port licences"
    else:
        state = f"port licences NOT valid: {ports.reason}"
    lines = [f"tenant {tenant}: {state}"]
    installed = {i.type for x in policy.here(tenant) for i in x.items}
    kinds = sorted(installed | {kind for kind, count in used.items() if count})
    if kinds:
        lines.append(f"  {'type':<20} {'installed':>9} {'valid':>6} {'in use':>7}")
    for kind in kinds:
        count = used.get(kind)
        shown = "-" if count is None else str(count)
        lines.append(
            f"  {kind:<20} {policy.installed(tenant, kind):>9} "
            f"{policy.valid(tenant, kind):>6} {shown:>7}"
        )
    lines += [
        f"  not counted here: serial {x.serial} (bound to node {x.node})"
        for x in policy.elsewhere(tenant)
    ]
    return lines
