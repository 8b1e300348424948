"""SRTP contexts over pylibsrtp and the SRTP<->plain bridge, without sockets."""

from __future__ import annotations

import pytest

from media.relay import Side
from media.rtp import RtcpReceiverReport, RtcpReportBlock, RtpPacket
from media.sdes import CryptoAttribute
from media.srtp import (
    MAX_SSRCS,
    SrtpBridge,
    SrtpContext,
    SrtpDirection,
    SrtpKeys,
    SrtpProfile,
    SrtpSide,
)

PROFILES = list(SrtpProfile)
KEY_A = bytes(range(30))
KEY_B = bytes(range(100, 130))


def rtp(seq: int, ssrc: int = 0x11223344, payload: bytes = b"\xd5" * 160) -> bytes:
    return bytes(RtpPacket(payload_type=8, sequence_number=seq, timestamp=160 * seq,
                           ssrc=ssrc, payload=payload))


def rtcp(ssrc: int = 0x11223344) -> bytes:
    return bytes(RtcpReceiverReport(ssrc, [RtcpReportBlock(0x55667788, 0, 0, 7, 1, 0, 0)]))


def pair(profile: SrtpProfile, master: bytes = KEY_A) -> tuple[SrtpContext, SrtpContext]:
    keys = SrtpKeys(profile, master)
    return SrtpContext(keys, SrtpDirection.SEND), SrtpContext(keys, SrtpDirection.RECEIVE)


@pytest.mark.parametrize("profile", PROFILES)
def test_rtp_round_trip(profile: SrtpProfile) -> None:
    sender, receiver = pair(profile)
    for seq in (1, 2, 3):
        plain = rtp(seq)
        protected = sender.protect(plain)
        assert protected is not None and protected[:12] == plain[:12]
        tag = 10 if profile is SrtpProfile.AES_CM_128_HMAC_SHA1_80 else 4
        assert len(protected) == len(plain) + tag and protected[12:] != plain[12:]
        assert receiver.unprotect(protected) == plain
    assert sender.stats.packets == receiver.stats.packets == 3
    assert receiver.stats.dropped == 0


@pytest.mark.parametrize("profile", PROFILES)
def test_rtcp_round_trip(profile: SrtpProfile) -> None:
    sender, receiver = pair(profile)
    plain = rtcp()
    protected = sender.protect_rtcp(bytearray(plain))
    # SRTCP index (4) and an 80-bit tag for both suites (RFC 4568 §6.2.2: _32 is RTP only)
    assert protected is not None and len(protected) == len(plain) + 4 + 10
    assert receiver.unprotect_rtcp(memoryview(protected)) == plain


def test_tampered_packet_is_dropped_and_counted() -> None:
    sender, receiver = pair(SrtpProfile.AES_CM_128_HMAC_SHA1_80)
    protected = bytearray(sender.protect(rtp(1)) or b"")
    protected[20] ^= 0x01
    assert receiver.unprotect(protected) is None
    stats = receiver.stats
    assert (stats.auth_failures, stats.dropped, stats.packets) == (1, 1, 0)
    assert receiver.unprotect(sender.protect(rtp(2)) or b"") == rtp(2)  # and life goes on


def test_wrong_key_is_an_auth_failure() -> None:
    sender, _ = pair(SrtpProfile.AES_CM_128_HMAC_SHA1_32)
    _, receiver = pair(SrtpProfile.AES_CM_128_HMAC_SHA1_32, KEY_B)
    assert receiver.unprotect(sender.protect(rtp(1)) or b"") is None
    assert receiver.unprotect_rtcp(sender.protect_rtcp(rtcp()) or b"") is None
    assert receiver.stats.auth_failures == 2


def test_replayed_packets_are_dropped_and_counted() -> None:
    sender, receiver = pair(SrtpProfile.AES_CM_128_HMAC_SHA1_80)
    first = sender.protect(rtp(1)) or b""
    report = sender.protect_rtcp(rtcp()) or b""
    assert receiver.unprotect(first) == rtp(1)
    assert receiver.unprotect_rtcp(report) == rtcp()
    assert receiver.unprotect(first) is None
    assert receiver.unprotect_rtcp(report) is None
    assert receiver.stats.replays == 2 and receiver.stats.packets == 2


def test_a_sender_never_encrypts_one_sequence_number_twice() -> None:
    sender, _ = pair(SrtpProfile.AES_CM_128_HMAC_SHA1_80)
    assert sender.protect(rtp(5)) is not None
    assert sender.protect(rtp(5, payload=b"other")) is None
    assert sender.stats.replays == 1


@pytest.mark.parametrize("packet", [b"", b"\x80", rtp(1)[:11], b"\x80" * 2000])
def test_short_and_oversized_packets_are_malformed_drops(packet: bytes) -> None:
    sender, receiver = pair(SrtpProfile.AES_CM_128_HMAC_SHA1_80)
    assert sender.protect(packet) is None and receiver.unprotect(packet) is None
    assert receiver.unprotect_rtcp(packet) is None
    assert sender.stats.malformed == 1 and receiver.stats.malformed == 2


def test_garbage_is_dropped_never_raised() -> None:
    _, receiver = pair(SrtpProfile.AES_CM_128_HMAC_SHA1_80)
    for size in range(0, 200, 7):
        assert receiver.unprotect(bytes([0x80, 0x08]) + bytes(size)) is None
        assert receiver.unprotect_rtcp(bytes([0x80, 0xC9]) + bytes(size)) is None
    assert receiver.stats.dropped == 2 * len(range(0, 200, 7))


def test_wrong_direction_is_a_programming_error() -> None:
    sender, receiver = pair(SrtpProfile.AES_CM_128_HMAC_SHA1_80)
    with pytest.raises(ValueError):
        sender.unprotect(rtp(1))
    with pytest.raises(ValueError):
        receiver.protect_rtcp(rtcp())


def test_the_number_of_ssrcs_is_bounded() -> None:
    sender, receiver = pair(SrtpProfile.AES_CM_128_HMAC_SHA1_80)
    for ssrc in range(MAX_SSRCS + 5):
        assert receiver.unprotect(sender.protect(rtp(1, ssrc=ssrc)) or b"") == rtp(1, ssrc=ssrc)
    assert len(receiver._ssrcs) == len(sender._ssrcs) == MAX_SSRCS
    # the oldest stream was forgotten: its next packet starts a new one
    assert receiver.unprotect(sender.protect(rtp(2, ssrc=MAX_SSRCS + 4)) or b"") is not None


def test_keys_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(ValueError):
        SrtpKeys(SrtpProfile.AES_CM_128_HMAC_SHA1_80, bytes(16))


# -- the bridge ----------------------------------------------------------------------------
def srtp_phone() -> tuple[SrtpSide, SrtpContext, SrtpContext]:
    """An SDES phone on side a: (the bridge's side, the phone's sender, its receiver)."""
    phone, switch = (CryptoAttribute.generate(1, PROFILES[0]) for _ in range(2))
    side = SrtpSide.of(remote=phone.srtp_keys, local=switch.srtp_keys)
    return (side, SrtpContext(phone.srtp_keys, SrtpDirection.SEND),
            SrtpContext(switch.srtp_keys, SrtpDirection.RECEIVE))


def test_bridge_srtp_phone_to_plain_trunk_and_back() -> None:
    side, phone_tx, phone_rx = srtp_phone()
    bridge = SrtpBridge(a=side, b=None)
    assert bridge.rtp("a", phone_tx.protect(rtp(1)) or b"") == rtp(1)  # to the trunk: plain
    assert bridge.rtcp("a", phone_tx.protect_rtcp(rtcp()) or b"") == rtcp()
    to_phone = bridge.rtp("b", rtp(9, ssrc=0xCAFE))
    assert to_phone is not None and to_phone != rtp(9, ssrc=0xCAFE)
    assert phone_rx.unprotect(to_phone) == rtp(9, ssrc=0xCAFE)
    assert phone_rx.unprotect_rtcp(bridge.rtcp("b", rtcp(0xCAFE)) or b"") == rtcp(0xCAFE)


def test_bridge_drops_what_does_not_authenticate() -> None:
    side, _, _ = srtp_phone()
    bridge = SrtpBridge(a=side, b=None)
    assert bridge.rtp("a", rtp(1)) is None  # plain RTP from an SRTP side
    assert side.receive.stats.auth_failures == 1


def test_bridge_between_two_srtp_legs_re_encrypts() -> None:
    a, a_tx, _ = srtp_phone()
    b, _, b_rx = srtp_phone()
    bridge = SrtpBridge(a, b)
    out = bridge.rtp("a", a_tx.protect(rtp(3)) or b"")
    assert b_rx.unprotect(out or b"") == rtp(3)


def test_bridge_between_plain_sides_passes_through() -> None:
    bridge = SrtpBridge(None, None)
    assert bridge.rtp("a", memoryview(rtp(1))) == rtp(1)
    assert bridge.rtcp("b", rtcp()) == rtcp()


class FakeStream:
    def __init__(self) -> None:
        self.sent: list[tuple[Side, bytearray]] = []

    def send(self, side: Side, packet: bytearray) -> bool:
        self.sent.append((side, packet))
        return True


def test_tap_sends_the_bridged_packet_to_the_other_side() -> None:
    side, phone_tx, phone_rx = srtp_phone()
    bridge, stream = SrtpBridge(a=side, b=None), FakeStream()
    from_phone, from_trunk = bridge.tap("a", stream), bridge.tap("b", stream)
    from_phone(memoryview(phone_tx.protect(rtp(1)) or b""))
    from_phone(memoryview(rtp(2)))  # not SRTP: dropped, nothing sent
    from_trunk(memoryview(rtp(7)))
    assert [s for s, _ in stream.sent] == ["b", "a"]
    assert stream.sent[0][1] == rtp(1)
    assert phone_rx.unprotect(stream.sent[1][1]) == rtp(7)
