"""Tenant credit limits: calls that would exceed the limit are refused, and
running calls are ended when their cost reaches it (toll-fraud control).

The amount spent per tenant is runtime state kept in storage's key/value
table (written after every priced call), so it survives a restart.  Running
calls are priced every second at their rate, rounded up to the started
second, so several calls at once cannot together overspend by more than a
second's worth.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal

from dialplan.schema import Config

KEY = "credit-spent:"


def cost_of(price_per_minute: Decimal, seconds: float) -> Decimal:
    """What ``seconds`` of a call cost, per started second."""
    return (price_per_minute * math.ceil(max(seconds, 0.0)) / 60).quantize(Decimal("0.0001"))


class CreditLedger:
    def __init__(self, config: Config) -> None:
        self.limits: dict[str, Decimal] = {}
        self.spent: dict[str, Decimal] = {}
        self.apply(config)

    def apply(self, config: Config) -> None:
        self.limits = {t.domain: t.credit.limit for t in config.tenants if t.credit is not None}

    def restore(self, values: Iterable[tuple[str, str]]) -> None:
        """Spent amounts as stored: ``(tenant, decimal text)``."""
        for tenant, value in values:
            self.spent[tenant] = Decimal(value)

    def remaining(self, tenant: str, running: Decimal = Decimal(0)) -> Decimal | None:
        """Credit left (None: the tenant has no limit), after ``running`` costs."""
        limit = self.limits.get(tenant)
        if limit is None:
            return None
        return limit - self.spent.get(tenant, Decimal(0)) - running

    def charge(self, tenant: str, cost: Decimal) -> Decimal:
        spent = self.spent.get(tenant, Decimal(0)) + cost
        self.spent[tenant] = spent
        return spent
