"""An ended call is freed by reference counting, not left to the cycle collector.

At a few hundred calls per second every reference cycle a call leaves behind
is garbage only a collection of the oldest generation frees: the process
grows between collections and each one stalls the event loop for as long as
it takes to traverse every live object (hundreds of milliseconds at load, long
enough for the socket's receive buffer to overflow).  So a call, its legs, its
media session and relay streams must not hold each other in a cycle once the
call is over.  The checks run with the collector disabled and count what a
collection would have to free.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from media.ports import PortAllocator
from media.relay import MediaRelay
from switch.b2bua.anchor import AnchorHook
from switch.b2bua.call import Attempt, Call, CallState
from switch.b2bua.media_features import MediaFeatures
from switch.sip.builders import make_response
from switch.sip.events import ResponseReceived
from switch.sip.message import Request, parse_message
from tests.unit.test_anchor import B_SDP, ack_from_a, config, in_dialog, local_address
from tests.unit.test_call import INVITE, PHONE1, PHONE2, SDP, FakeEnv, Plan, reply, target
from tests.unit.test_media_features import B_OPUS, TENANT


@pytest.fixture
def no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def cyclic_garbage() -> Counter[str]:
    """What a full collection would free now: the references between those
    objects, by the types of both ends (empty: nothing)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        ids = {id(o) for o in gc.garbage}
        found = Counter(
            f"{type(o).__qualname__} -> {type(r).__qualname__}"
            for o in gc.garbage for r in gc.get_referents(o) if id(r) in ids
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.collect()  # saved, not freed: free it now
    return found


def run_call(hook: AnchorHook, ending: Callable[[Call, FakeEnv], None]) -> None:
    """One anchored call through ``ending``; nothing of it is referenced afterwards."""
    env = FakeEnv()
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    call = Call(env, Plan(), req, 1, PHONE1, 0.0)  # type: ignore[arg-type]
    call.media = hook.session(call.ref, "demo.test", "100")
    call.media.digits_to(call.on_media_digit)
    call.arm_max_duration(3600.0)
    call.start(Attempt((target(PHONE1), target(PHONE2)), 20, "extension"), 0.0)
    ending(call, env)
    assert call.state is CallState.ENDED
    # What the fake keeps the switch does not: its transactions end (they hold the
    # legs), cancelled timers drop their callbacks, the manager forgets the call.
    for value in vars(env).values():
        if isinstance(value, (list, dict)):
            value.clear()


def bye_from_a(call: Call, env: FakeEnv) -> None:
    reply(env, 0, 180, "p1")
    reply(env, 0, 200, "p1", B_SDP)
    call.on_a_ack(ack_from_a(call), 0.1)
    call.on_request("a", in_dialog(call, "BYE", b""), 7, 5.0)


def bye_from_b(call: Call, env: FakeEnv) -> None:
    reply(env, 1, 200, "p2", B_SDP)
    call.on_a_ack(ack_from_a(call), 0.1)
    call.on_request("b", in_dialog(call, "BYE", b"", side="b"), 7, 5.0)


def hold_then_bye(call: Call, env: FakeEnv) -> None:
    """Music on hold plays to B (a player on the stream) when the caller hangs up."""
    reply(env, 0, 200, "p1", B_SDP)
    call.on_a_ack(ack_from_a(call), 0.1)
    hold = SDP.replace(b"t=0 0", b"t=0 0\r\na=sendonly")
    call.on_request("a", in_dialog(call, "INVITE", hold), 11, 2.0)
    relayed, _, owner = env.requests[-1]
    ok = make_response(relayed, 200)
    ok.add("Content-Type", "application/sdp")
    ok.body = B_SDP.replace(b"t=0 0", b"t=0 0\r\na=recvonly")
    owner(ResponseReceived(9, parse_message(bytes(ok)), owner), 2.1)  # type: ignore[operator]
    call.on_request("a", in_dialog(call, "BYE", b"", cseq=4), 12, 5.0)


def transcoded_bye(call: Call, env: FakeEnv) -> None:
    """PCMU to Opus: a transcoding pump taps both sides when the caller hangs up."""
    reply(env, 0, 200, "p1", B_OPUS)
    call.on_a_ack(ack_from_a(call), 0.1)
    call.on_request("a", in_dialog(call, "BYE", b""), 7, 5.0)


def cancel(call: Call, env: FakeEnv) -> None:
    reply(env, 0, 183, "p1", B_SDP)
    call.on_a_cancel(1.0)


def busy(call: Call, env: FakeEnv) -> None:
    reply(env, 0, 486, "p1")
    reply(env, 1, 486, "p2")


@pytest.mark.parametrize("ending", [bye_from_a, bye_from_b, hold_then_bye, cancel, busy,
                                    transcoded_bye])
def test_an_ended_call_leaves_no_reference_cycle(
    ending: Callable[[Call, FakeEnv], None], no_collector: None
) -> None:
    loop = asyncio.new_event_loop()
    try:
        cfg = config([TENANT] if ending is transcoded_bye else None)
        relay = MediaRelay(PortAllocator(31700, 31799, "127.0.0.1"), loop=loop)
        hook = AnchorHook(relay, cfg, local_address, MediaFeatures(cfg, loop))  # type: ignore[arg-type]
        run_call(hook, ending)  # the first call warms caches up (codecs, clips)
        assert relay.ports_in_use() == 0
        cyclic_garbage()
        run_call(hook, ending)
        assert relay.ports_in_use() == 0
        left = cyclic_garbage()
        assert not left, "\n".join(f"{n} x {edge}" for edge, n in sorted(left.items()))
    finally:
        loop.close()
