"""DTLS-SRTP: two sans-IO endpoints shaking hands in memory, fingerprints, a=setup
roles, and demultiplexing by first byte."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.dtls import (
    TRANSITIONS,
    DtlsCertificate,
    DtlsError,
    DtlsInput,
    DtlsRole,
    DtlsSession,
    DtlsState,
    Fingerprint,
    PacketKind,
    Setup,
    answer_setup,
    classify,
    dtls_role,
    remote_fingerprints,
)
from media.rtp import RtcpReceiverReport, RtpPacket
from media.sdp import NOT_ACCEPTABLE_HERE, SdpError
from media.srtp import SrtpBridge, SrtpContext, SrtpDirection, SrtpProfile, SrtpSide

CERT_A, CERT_B = DtlsCertificate.generate(), DtlsCertificate.generate()
PCMA = bytes(RtpPacket(payload_type=8, sequence_number=1, ssrc=0xABC, payload=b"\xd5" * 160))


def endpoints(remote: list[Fingerprint] | None = None,
              profiles: tuple[SrtpProfile, ...] = tuple(SrtpProfile),
              ) -> tuple[DtlsSession, DtlsSession]:
    """A client with B's fingerprint and a server (the switch) with ``remote``, else A's."""
    client = DtlsSession(CERT_A, DtlsRole.CLIENT, [CERT_B.fingerprint()], name="client")
    server = DtlsSession(CERT_B, DtlsRole.SERVER, [CERT_A.fingerprint()] if remote is None
                         else remote, profiles=profiles, name="server")
    return client, server


def transfer(client: DtlsSession, server: DtlsSession,
             wire: Callable[[list[bytes]], list[bytes]] = lambda d: d,
             first: list[bytes] | None = None) -> list[int]:
    """Run the handshake to its end (from the client's ``first`` flight, else
    ``start()``); the sizes of every datagram sent."""
    sizes: list[int] = []
    flight, receiver, sender = first or client.start(), server, client
    while flight:
        sizes += [len(d) for d in flight]
        flight = [out for d in wire(flight) for out in receiver.receive(d)]
        receiver, sender = sender, receiver
    return sizes


def test_handshake_exports_the_same_keys_on_both_sides() -> None:
    client, server = endpoints()
    transfer(client, server)
    assert client.state is server.state is DtlsState.CONNECTED
    assert client.profile is server.profile is SrtpProfile.AES_CM_128_HMAC_SHA1_80
    client_tx, client_rx = client.srtp_keys()
    server_tx, server_rx = server.srtp_keys()
    assert client_tx == server_rx and client_rx == server_tx and client_tx != client_rx
    assert client.timeout() is None and client.dropped == server.dropped == 0


def test_exported_keys_make_working_srtp_contexts() -> None:
    client, server = endpoints()
    transfer(client, server)
    client_side = SrtpSide.of(remote=client.srtp_keys()[1], local=client.srtp_keys()[0])
    server_side = SrtpSide.of(remote=server.srtp_keys()[1], local=server.srtp_keys()[0])
    protected = client_side.send.protect(PCMA)
    assert protected is not None and server_side.receive.unprotect(protected) == PCMA
    rtcp = bytes(RtcpReceiverReport(0xABC))
    assert client_side.receive.unprotect_rtcp(server_side.send.protect_rtcp(rtcp) or b"") == rtcp
    # and through a bridge to a plain leg: the server is the switch, the client a phone
    assert SrtpBridge(server_side, None).rtp("a", client_side.send.protect(
        bytes(RtpPacket(sequence_number=2, ssrc=0xABC))) or b"") == bytes(
        RtpPacket(sequence_number=2, ssrc=0xABC))


def test_the_profile_both_support_is_chosen() -> None:
    client, server = endpoints(profiles=(SrtpProfile.AES_CM_128_HMAC_SHA1_32,))
    transfer(client, server)
    assert client.state is DtlsState.CONNECTED
    assert client.srtp_keys()[0].profile is SrtpProfile.AES_CM_128_HMAC_SHA1_32
    receive = SrtpContext(server.srtp_keys()[1], SrtpDirection.RECEIVE)
    assert receive.unprotect(SrtpContext(client.srtp_keys()[0], SrtpDirection.SEND)
                             .protect(PCMA) or b"") == PCMA


def test_a_wrong_fingerprint_is_refused_and_gives_no_keys() -> None:
    client, server = endpoints(remote=[CERT_B.fingerprint()])  # not A's
    transfer(client, server)
    assert server.state is DtlsState.FAILED and "a=fingerprint" in (server.failure or "")
    with pytest.raises(DtlsError):
        server.srtp_keys()
    assert server.receive(PCMA) == [] and server.close() == []


def test_every_known_fingerprint_must_match() -> None:
    wrong = Fingerprint("sha-1", bytes(20))
    client, server = endpoints(remote=[CERT_A.fingerprint(), wrong])
    transfer(client, server)
    assert server.state is DtlsState.FAILED


def test_fingerprint_arriving_after_the_handshake() -> None:
    client, server = endpoints(remote=[])
    transfer(client, server)
    assert server.state is DtlsState.AWAITING_FINGERPRINT
    with pytest.raises(DtlsError):
        server.srtp_keys()
    server.set_remote_fingerprints([CERT_A.fingerprint("sha-512")])
    assert server.state is DtlsState.CONNECTED
    assert server.srtp_keys()[1] == client.srtp_keys()[0]


def test_a_late_wrong_fingerprint_fails() -> None:
    client, server = endpoints(remote=[])
    transfer(client, server)
    server.set_remote_fingerprints([CERT_B.fingerprint()])
    assert server.state is DtlsState.FAILED


def test_no_common_srtp_profile_fails() -> None:
    client = DtlsSession(CERT_A, DtlsRole.CLIENT, [CERT_B.fingerprint()],
                         profiles=[SrtpProfile.AES_CM_128_HMAC_SHA1_80])
    server = DtlsSession(CERT_B, DtlsRole.SERVER, [CERT_A.fingerprint()],
                         profiles=[SrtpProfile.AES_CM_128_HMAC_SHA1_32])
    transfer(client, server)
    assert DtlsState.CONNECTED not in (client.state, server.state)


def test_small_mtu_datagrams_stay_under_it() -> None:
    client = DtlsSession(CERT_A, DtlsRole.CLIENT, [CERT_B.fingerprint()], mtu=300)
    server = DtlsSession(CERT_B, DtlsRole.SERVER, [CERT_A.fingerprint()], mtu=300)
    sizes = transfer(client, server)
    assert max(sizes) <= 300 and len(sizes) > 4
    assert client.state is server.state is DtlsState.CONNECTED


def test_junk_between_records_is_dropped_and_counted() -> None:
    client, server = endpoints()
    junk = [b"", b"\x16", b"\x16\xfe\xfd" + b"\x00" * 8 + b"\x00\xff", b"\x17\x03\x03" + bytes(20),
            b"\x80" * 40]
    transfer(client, server, wire=lambda flight: junk + flight)
    assert client.state is server.state is DtlsState.CONNECTED
    assert server.dropped == client.dropped == 2 * len(junk)  # two flights each way


def test_timer_while_connecting_and_close_notify() -> None:
    client, server = endpoints()
    assert client.timeout() is None  # nothing sent yet
    first = client.start()
    timeout = client.timeout()
    assert timeout is not None and 0 < timeout <= 1.0
    assert client.handle_timeout() == []  # not due yet: nothing to retransmit
    transfer(client, server, first=first)
    assert client.state is DtlsState.CONNECTED
    for notify in client.close():
        server.receive(notify)
    assert client.state is server.state is DtlsState.CLOSED


# Well-framed DTLS 1.2 records with junk inside, which reach OpenSSL.
RECORDS = st.builds(
    lambda kind, epoch_seq, body: bytes([kind, 0xFE, 0xFD]) + epoch_seq
    + len(body).to_bytes(2, "big") + body,
    st.integers(20, 25), st.binary(min_size=8, max_size=8), st.binary(max_size=200),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=300), RECORDS), max_size=5))
def test_hostile_datagrams_never_raise(datagrams: list[bytes]) -> None:
    server = DtlsSession(CERT_B, DtlsRole.SERVER, [CERT_A.fingerprint()])
    for datagram in datagrams:
        for reply in server.receive(datagram):
            assert len(reply) <= server.mtu
    assert server.state in (DtlsState.NEW, DtlsState.CONNECTING, DtlsState.FAILED)


@pytest.mark.parametrize(("state", "event"), [
    (s, e) for s, e in itertools.product(DtlsState, DtlsInput) if (s, e) not in TRANSITIONS
])
def test_every_missing_transition_is_an_error(state: DtlsState, event: DtlsInput) -> None:
    session = DtlsSession(CERT_A, DtlsRole.CLIENT)
    session.state = state
    with pytest.raises(DtlsError):
        session._set_state(event)


# -- a=fingerprint ---------------------------------------------------------------------------
def test_fingerprint_round_trip_and_certificate() -> None:
    fingerprint = CERT_A.fingerprint()
    text = str(fingerprint)
    assert text.startswith("sha-256 ") and len(text) == len("sha-256 ") + 32 * 3 - 1
    assert Fingerprint.parse(text) == fingerprint
    assert Fingerprint.parse(text.replace("sha-256", "SHA-256").lower()) == fingerprint
    assert str(Fingerprint.parse(text.lower())) == text


@pytest.mark.parametrize("value", [
    "", "sha-256", "sha-256 ", "sha-256 AB:CD", "sha-256 " + "ZZ:" * 31 + "ZZ",
    "sha-256 " + "AB" * 32, "md5 " + ":".join(["AB"] * 16), "sha-1 " + ":".join(["AB"] * 21),
])
def test_malformed_fingerprints_are_488(value: str) -> None:
    with pytest.raises(SdpError) as info:
        Fingerprint.parse(value)
    assert info.value.status == NOT_ACCEPTABLE_HERE


def test_remote_fingerprints_skip_hashes_we_cannot_check() -> None:
    md5 = "md5 " + ":".join(["AB"] * 16)
    assert remote_fingerprints([md5, str(CERT_A.fingerprint())]) == [CERT_A.fingerprint()]
    for values in ([md5], [], ["sha-256 junk"], [str(CERT_A.fingerprint())] * 9):
        with pytest.raises(SdpError):
            remote_fingerprints(values)


@given(st.text(max_size=120))
def test_fingerprint_parse_raises_only_sdp_errors(value: str) -> None:
    try:
        Fingerprint.parse(value)
    except SdpError:
        pass


# -- a=setup ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("offered", "answered"), [
    (Setup.ACTPASS, Setup.ACTIVE), (Setup.ACTIVE, Setup.PASSIVE), (Setup.PASSIVE, Setup.ACTIVE),
])
def test_answer_setup(offered: Setup, answered: Setup) -> None:
    assert answer_setup(offered) is answered
    # whoever we are, the two ends get opposite roles
    assert dtls_role(answered, offered) is not dtls_role(offered, answered)


@pytest.mark.parametrize(("local", "remote", "role"), [
    (Setup.ACTIVE, Setup.ACTPASS, DtlsRole.CLIENT),
    (Setup.PASSIVE, Setup.ACTPASS, DtlsRole.SERVER),
    (Setup.ACTPASS, Setup.ACTIVE, DtlsRole.SERVER),
    (Setup.ACTPASS, Setup.PASSIVE, DtlsRole.CLIENT),
    (Setup.ACTIVE, Setup.PASSIVE, DtlsRole.CLIENT),
    (Setup.PASSIVE, Setup.ACTIVE, DtlsRole.SERVER),
])
def test_roles(local: Setup, remote: Setup, role: DtlsRole) -> None:
    assert dtls_role(local, remote) is role


@pytest.mark.parametrize(("local", "remote"), [
    (Setup.ACTPASS, Setup.ACTPASS),  # RFC 5763 §5: the answerer must not say actpass
    (Setup.ACTIVE, Setup.ACTIVE),
    (Setup.PASSIVE, Setup.PASSIVE),
    (Setup.HOLDCONN, Setup.ACTIVE),
    (Setup.ACTPASS, Setup.HOLDCONN),
])
def test_impossible_roles_are_488(local: Setup, remote: Setup) -> None:
    with pytest.raises(SdpError) as info:
        dtls_role(local, remote)
    assert info.value.status == NOT_ACCEPTABLE_HERE


def test_setup_parse() -> None:
    assert Setup.parse("actpass") is Setup.ACTPASS
    with pytest.raises(SdpError):
        Setup.parse("both")
    with pytest.raises(SdpError):
        answer_setup(Setup.HOLDCONN)


# -- demultiplexing ------------------------------------------------------------------------
@pytest.mark.parametrize(("first", "kind"), [
    (0, PacketKind.STUN), (1, PacketKind.STUN), (3, PacketKind.STUN), (4, PacketKind.UNKNOWN),
    (16, PacketKind.ZRTP), (19, PacketKind.ZRTP), (20, PacketKind.DTLS), (22, PacketKind.DTLS),
    (63, PacketKind.DTLS), (64, PacketKind.TURN_CHANNEL), (79, PacketKind.TURN_CHANNEL),
    (80, PacketKind.UNKNOWN), (128, PacketKind.RTP), (191, PacketKind.RTP),
    (192, PacketKind.UNKNOWN), (255, PacketKind.UNKNOWN),
])
def test_classify_by_first_byte(first: int, kind: PacketKind) -> None:
    assert classify(bytes([first]) + bytes(20)) is kind


def test_classify_real_packets() -> None:
    client, _ = endpoints()
    assert {classify(d) for d in client.start()} == {PacketKind.DTLS}
    assert classify(PCMA) is PacketKind.RTP
    assert classify(bytes(RtcpReceiverReport(1))) is PacketKind.RTCP
    assert classify(b"") is PacketKind.UNKNOWN
