"""Hypothesis: every machine follows its table, raises only documented errors, ends.

For each of the four machines, random sequences of inputs (responses or
requests of every class, TU responses, CANCEL, transport errors, timer fires
at the next deadline, clock ticks) over UDP and TCP.  Every ``_feed`` is
recorded: the ``(state, input)`` pair must be in ``TRANSITIONS`` and the state
after must be the one the table names.  Network inputs never raise; a TU input
raises ``TransactionStateError`` exactly when its key is missing.  Finally,
time advancing alone (after the TU has answered, for server transactions)
must terminate the transaction and leave no timer armed.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from switch.sip import client_invite, client_noninvite, server_invite, server_noninvite
from switch.sip.builders import make_response
from switch.sip.events import RequestReceived, TransactionError, TransactionStateError
from switch.sip.timers import TimerConfig
from switch.sip.transaction_base import MachineSpec
from switch.sip.transaction_layer import TransactionLayer

from .test_transaction_support import (
    UAC_TCP,
    UAC_UDP,
    UAS_TCP,
    UAS_UDP,
    request,
    response,
)

TIMERS = TimerConfig()
MAX_STEPS = 500


class RecordingTable(dict[Any, Any]):
    """A transition table that records each lookup as (state, input, next state)."""

    def __init__(self, table: dict[Any, Any]) -> None:
        super().__init__(table)
        self.steps: list[tuple[Any, Any, Any]] = []

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        self.steps.append((key[0], key[1], value[1]))
        return value


def recording(txn: Any) -> Any:
    """``txn`` with a spec whose table records every ``_feed``."""
    spec = txn.spec
    txn.spec = MachineSpec(
        is_invite=spec.is_invite,
        is_client=spec.is_client,
        transitions=RecordingTable(spec.transitions),
        timers=tuple(spec.timer_input.values()),
        terminated=spec.terminated,
        logger=spec.logger,
    )
    return txn


def steps(txn: Any) -> list[tuple[Any, Any, Any]]:
    return txn.spec.transitions.steps  # type: ignore[no-any-return]


def check_steps(txn: Any, table: dict[Any, Any], initial: Any) -> None:
    """Each step is a table entry, and steps chain: no state change outside ``_feed``."""
    state = initial
    for before, inp, after in steps(txn):
        assert before is state, (state, before)
        assert (before, inp) in table, (before, inp)
        assert table[(before, inp)][1] is after, (before, inp, after)
        state = after
    assert state is txn.state


def drain(txn: Any, now: float) -> float:
    for _ in range(MAX_STEPS):
        t = txn.next_timer()
        if t is None:
            return now
        now = max(now, t)
        txn.handle_timer(now)
    raise AssertionError("timers never settle")


def tu_respond(txn: Any, module: Any, status: int, now: float) -> None:
    """A TU response: allowed iff its (state, input) key is in the table."""
    resp = make_response(txn.request, status, to_tag="uas")
    allowed = (txn.state, module.classify(resp)) in module.TRANSITIONS
    try:
        txn.respond(resp, now)
    except TransactionStateError:
        assert not allowed
    else:
        assert allowed


def apply(txn: Any, op: str, now: float) -> float:
    """Feed one input named ``op``; returns the clock after it."""
    if op == "timer":
        t = txn.next_timer()
        if t is not None:
            now = max(now, t)
            txn.handle_timer(now)
    elif op == "tick":
        now += 0.3
        txn.handle_timer(now)
    elif op == "error":
        txn.transport_error(now)
    elif op == "cancel":
        txn.cancel(now)
    elif op == "request":
        txn.receive_request(now)
    elif op == "ack":
        txn.receive_ack(ACK, UAC_UDP, now)
    elif op.startswith("tu"):
        tu_respond(txn, MODULES[type(txn)], int(op[2:]), now)
    else:
        txn.receive_response(response(txn.request, int(op)), now)
    return now


ACK = request("ACK", to_tag="uas", cseq_method="ACK")
COMMON = ["timer", "tick", "error"]
# machine -> (recording class, its module, request method, initial state, input names)
MACHINES: dict[str, tuple[Any, Any, str, Any, list[str]]] = {
    "client_invite": (
        client_invite.ClientInviteTransaction,
        client_invite,
        "INVITE",
        client_invite.State.CALLING,
        ["100", "180", "200", "486", "cancel", *COMMON],
    ),
    "client_noninvite": (
        client_noninvite.ClientNonInviteTransaction,
        client_noninvite,
        "OPTIONS",
        client_noninvite.State.TRYING,
        ["100", "180", "200", "404", *COMMON],
    ),
    "server_invite": (
        server_invite.ServerInviteTransaction,
        server_invite,
        "INVITE",
        server_invite.State.PROCEEDING,
        ["request", "ack", "tu180", "tu200", "tu486", *COMMON],
    ),
    "server_noninvite": (
        server_noninvite.ServerNonInviteTransaction,
        server_noninvite,
        "MESSAGE",
        server_noninvite.State.TRYING,
        ["request", "tu100", "tu200", "tu404", *COMMON],
    ),
}
MODULES = {cls: module for cls, module, *_ in MACHINES.values()}


def make(machine: str, reliable: bool) -> Any:
    cls, _, method, _, _ = MACHINES[machine]
    if cls.__module__.split('.')[-1].startswith('client'):
        dest = UAS_TCP if reliable else UAS_UDP
    else:
        dest = UAC_TCP if reliable else UAC_UDP
    txn = recording(cls(request(method), dest, TIMERS, handle=1))
    txn.start(0.0)
    return txn


def run(machine: str, ops: list[str], reliable: bool) -> Any:
    """Play ``ops``, then let time pass (answering for the TU if it never did)."""
    _, module, _, initial, _ = MACHINES[machine]
    txn = make(machine, reliable)
    now = 0.0
    for op in ops:
        now = apply(txn, op, now)
    now = drain(txn, now)
    if not txn.terminated:  # a server transaction waiting for its TU
        assert not txn.is_client
        tu_respond(txn, module, 500, now)
        now = drain(txn, now)
    assert txn.terminated and txn.next_timer() is None
    check_steps(txn, module.TRANSITIONS, initial)
    return txn


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[str, list[str], bool]:
    machine = draw(st.sampled_from(sorted(MACHINES)))
    ops = draw(st.lists(st.sampled_from(MACHINES[machine][4]), max_size=40))
    return machine, ops, draw(st.booleans())


@settings(max_examples=1000, deadline=None)
@given(scenario=scenarios())
def test_machines_follow_their_tables_and_terminate(scenario: tuple[str, list[str], bool]) -> None:
    run(*scenario)


def signature(txn: Any) -> tuple[Any, ...]:
    armed = tuple(n for n in txn.spec.timer_fields if getattr(txn, n) is not None)
    return (txn.state, armed, getattr(txn, "_cancel", None), txn.reliable)


def test_every_table_entry_is_exercised() -> None:
    """Breadth-first over input sequences: every (state, input) key gets fed."""
    for machine, (_, module, _, _, names) in MACHINES.items():
        seen: set[tuple[Any, Any]] = set()
        for reliable in (False, True):
            frontier: list[list[str]] = [[]]
            visited = {signature(make(machine, reliable))}
            while frontier:
                nxt: list[list[str]] = []
                for prefix in frontier:
                    for op in names:
                        txn = make(machine, reliable)
                        now = 0.0
                        for o in [*prefix, op]:
                            now = apply(txn, o, now)
                        seen.update((before, inp) for before, inp, _ in steps(txn))
                        sig = signature(txn)
                        if sig not in visited:
                            visited.add(sig)
                            nxt.append([*prefix, op])
                frontier = nxt
        missing = set(module.TRANSITIONS) - seen
        assert not missing, (machine, missing)


# -- every network input has a key in every state --------------------------------


def test_tables_are_total_for_network_inputs() -> None:
    cases = [
        (client_invite, ["PROVISIONAL", "SUCCESS", "FAILURE", "CANCEL", "TRANSPORT_ERROR"]),
        (client_noninvite, ["PROVISIONAL", "FINAL", "TRANSPORT_ERROR"]),
        (server_invite, ["REQUEST", "ACK", "TRANSPORT_ERROR"]),
        (server_noninvite, ["REQUEST", "TRANSPORT_ERROR"]),
    ]
    for module, names in cases:
        for state in module.State:
            for name in names:
                assert (state, module.Input[name]) in module.TRANSITIONS, (module, state, name)


def test_terminated_is_final_in_every_table() -> None:
    for module in (client_invite, client_noninvite, server_invite, server_noninvite):
        for (state, _), (_, nxt) in module.TRANSITIONS.items():
            if state is module.State.TERMINATED:
                assert nxt is module.State.TERMINATED


# -- the layer: random traffic never leaks ------------------------------------------

BRANCHES = ["z9hG4bK-p1", "z9hG4bK-p2", "legacy-p3"]
LAYER_OPS = st.one_of(
    st.tuples(
        st.just("req"),
        st.sampled_from(["INVITE", "ACK", "CANCEL", "OPTIONS"]),
        st.sampled_from(BRANCHES),
        st.sampled_from([None, "uas"]),
    ),
    st.tuples(st.just("respond"), st.integers(0, 9), st.sampled_from([180, 200, 486])),
    st.tuples(st.just("send"), st.sampled_from(["INVITE", "BYE"]), st.integers(0, 3)),
    st.tuples(
        st.just("resp"),
        st.integers(0, 3),
        st.sampled_from([100, 180, 200, 487]),
        st.sampled_from(["INVITE", "BYE", "CANCEL"]),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 3)),
    st.tuples(st.sampled_from(["timer", "tick", "error_uac", "error_uas"])),
)


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(LAYER_OPS, max_size=40), reliable=st.booleans())
def test_layer_random_traffic_leaves_nothing_behind(
    ops: list[tuple[Any, ...]], reliable: bool
) -> None:
    layer = TransactionLayer(TIMERS)
    uac, uas = (UAC_TCP, UAS_TCP) if reliable else (UAC_UDP, UAS_UDP)
    now = 0.0
    server_handles: list[int] = []
    client: dict[int, tuple[int, Any]] = {}  # slot -> (handle, request)
    sends = 0
    for op in ops:
        kind = op[0]
        if kind == "req":
            _, method, branch, to_tag = op
            req = request(method, branch=branch, to_tag=to_tag, cseq_method=method)
            for o in layer.receive_request(req, uac, uac, now):
                if isinstance(o, RequestReceived):
                    server_handles.append(o.handle)
        elif kind == "respond" and server_handles:
            handle = server_handles[op[1] % len(server_handles)]
            txn = layer.transaction(handle)
            try:
                layer.respond(
                    handle,
                    make_response(txn.request if txn else request(), op[2], to_tag="uas"),
                    now,
                )  # type: ignore[union-attr]
            except TransactionError:
                pass  # documented: unknown handle, or a response the state does not take
        elif kind == "send":
            _, method, slot = op
            sends += 1
            req = request(method, branch=f"z9hG4bK-c{sends}", call_id=f"c{slot}")
            handle, _ = layer.send_request(req, uas, now, owner=slot)
            client[slot] = (handle, req)
        elif kind == "resp" and op[1] in client:
            _, slot, status, method = op
            _, req = client[slot]
            base = request(req.method, branch=req.top_via.branch, cseq_method=method)
            layer.receive_response(response(base, status), uas, now)
        elif kind == "cancel" and op[1] in client:
            try:
                layer.cancel(client[op[1]][0], now)
            except TransactionError:
                pass  # documented: a non-INVITE handle
        elif kind == "timer":
            t = layer.next_timer()
            if t is not None:
                now = max(now, t)
                layer.handle_timer(now)
        elif kind == "tick":
            now += 0.7
            layer.handle_timer(now)
        elif kind == "error_uac":
            layer.transport_error(uac, now)
        elif kind == "error_uas":
            layer.transport_error(uas, now)
    # the TU answers whatever is still waiting, then time passes
    for handle in server_handles:
        txn = layer.transaction(handle)
        if txn is not None and txn.state.name in ("PROCEEDING", "TRYING"):
            layer.respond(handle, make_response(txn.request, 500, to_tag="uas"), now)
    for _ in range(MAX_STEPS):
        t = layer.next_timer()
        if t is None:
            break
        now = max(now, t)
        layer.handle_timer(now)
    assert len(layer) == 0
    assert layer.next_timer() is None and layer.counts().heap == 0
