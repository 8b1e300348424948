"""RFC 4568 a=crypto: parse/str round trips, strict refusals, answer choice."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.sdes import (
    CryptoAttribute,
    KeyParams,
    accept_crypto,
    answer_crypto,
    offer_crypto,
)
from media.sdp import NOT_ACCEPTABLE_HERE, SdpError, SessionDescription
from media.srtp import SrtpKeys, SrtpProfile

# RFC 4568 §9.1 examples (keys of 30 bytes)
KEY80 = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
KEY32 = "NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj"
LINE80 = f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|2^20|1:32"
LINE32 = f"2 AES_CM_128_HMAC_SHA1_32 inline:{KEY32}|2^20|1:32"

# A Grandstream-style offer: two suites, no lifetime, no MKI.
OFFER = (
    "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    "m=audio 5004 RTP/SAVP 0 8\r\n"
    f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}\r\n"
    f"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY32}\r\n"
).encode()


@pytest.mark.parametrize(
    "value",
    [
        LINE80,
        LINE32,
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}",
        f"7 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|1048576",
        f"7 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|5:2",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|2^20|1:4;inline:{KEY32}|2^20|2:4 WSH=64",
        f"123456789 AES_CM_128_HMAC_SHA1_32 inline:{KEY32} KDR=0 UNENCRYPTED_SRTCP",
    ],
)
def test_round_trip(value: str) -> None:
    line = CryptoAttribute.parse(value)
    assert str(line) == value
    assert CryptoAttribute.parse(str(line)) == line


def test_fields() -> None:
    line = CryptoAttribute.parse(LINE80)
    assert line.tag == 1 and line.profile is SrtpProfile.AES_CM_128_HMAC_SHA1_80
    (key,) = line.keys
    assert key.master == base64.b64decode(KEY80) and len(key.master) == 30
    assert (key.lifetime, key.lifetime_packets, key.mki, key.mki_length) == ("2^20", 2**20, 1, 32)
    assert line.srtp_keys == SrtpKeys(line.profile, key.master)
    assert KeyParams(b"\x00" * 30, "1000").lifetime_packets == 1000


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1 AES_CM_128_HMAC_SHA1_80",
        f"1 AES_CM_128_HMAC_SHA1_80  inline:{KEY80}",  # two spaces
        f"x AES_CM_128_HMAC_SHA1_80 inline:{KEY80}",
        f"1234567890 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}",  # 10-digit tag
        f"1 F8_128_HMAC_SHA1_80 inline:{KEY80}",  # a suite we do not speak
        f"1 AES_CM_128_HMAC_SHA1_80 uri:{KEY80}",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80[:-1]}!",  # not base64
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80[:-1]}\u00e9",  # not even ASCII
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80[:-4]}",  # 27 bytes
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}AAAA",  # 33 bytes
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80[:-1]}",  # bad padding
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|2^49",  # over RFC 3711's 2^48
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|0",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|forever",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|1:0",  # MKI length 0
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|1:129",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|256:1",  # MKI wider than its length
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|1:4|2^20",  # MKI before lifetime
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|2^20|2^20",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|1|2|3",
        "1 AES_CM_128_HMAC_SHA1_80 " + ";".join([f"inline:{KEY80}"] * 17),
    ],
)
def test_refused_with_488(value: str) -> None:
    with pytest.raises(SdpError) as info:
        CryptoAttribute.parse(value)
    assert info.value.status == NOT_ACCEPTABLE_HERE


KEY_CHARS = st.sampled_from("AB+/=|:;^2 \u00e9\x00")


@given(st.one_of(
    st.text(max_size=200),
    st.builds(lambda tail: f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80[:30]}{tail}",
              st.text(KEY_CHARS, max_size=30)),
))
def test_only_sdp_errors_escape(value: str) -> None:
    try:
        line = CryptoAttribute.parse(value)
    except SdpError:
        return
    assert str(line) == value


def test_generated_lines_are_fresh_and_parse() -> None:
    first, second = offer_crypto()
    assert (first.tag, first.profile) == (1, SrtpProfile.AES_CM_128_HMAC_SHA1_80)
    assert (second.tag, second.profile) == (2, SrtpProfile.AES_CM_128_HMAC_SHA1_32)
    assert first.keys[0].master != second.keys[0].master
    assert CryptoAttribute.parse(str(first)) == first


def test_answer_takes_the_first_supported_line_of_the_offer() -> None:
    sd = SessionDescription.parse(OFFER)
    theirs, ours = answer_crypto(sd.media[0].attribute_values("crypto"))
    assert str(theirs) == f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}"
    assert (ours.tag, ours.profile) == (1, theirs.profile)
    assert ours.keys[0].master != theirs.keys[0].master and ours.usable


def test_answer_skips_unknown_broken_and_unusable_lines() -> None:
    offered = [
        f"1 AEAD_AES_256_GCM inline:{KEY80}",  # unknown to us
        f"2 AES_CM_128_HMAC_SHA1_80 inline:{KEY80[:-4]}",  # broken
        f"3 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}|2^20|1:4",  # MKI: not with pylibsrtp
        f"4 AES_CM_128_HMAC_SHA1_80 inline:{KEY80} UNENCRYPTED_SRTP",
        f"5 AES_CM_128_HMAC_SHA1_32 inline:{KEY32} WSH=128",
    ]
    theirs, ours = answer_crypto(offered)
    assert theirs.tag == ours.tag == 5
    assert ours.profile is SrtpProfile.AES_CM_128_HMAC_SHA1_32


def test_answer_respects_the_allowed_profiles() -> None:
    offered = [
        f"1 AES_CM_128_HMAC_SHA1_32 inline:{KEY32}", f"2 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}",
    ]
    theirs, _ = answer_crypto(offered, [SrtpProfile.AES_CM_128_HMAC_SHA1_80])
    assert theirs.tag == 2


@pytest.mark.parametrize("offered", [[], [f"1 F8_128_HMAC_SHA1_80 inline:{KEY80}"]])
def test_no_acceptable_line_is_488(offered: list[str]) -> None:
    with pytest.raises(SdpError) as info:
        answer_crypto(offered)
    assert info.value.status == NOT_ACCEPTABLE_HERE


def test_accepting_the_answer_to_our_offer() -> None:
    offer = offer_crypto()
    line = accept_crypto(offer, [f"2 AES_CM_128_HMAC_SHA1_32 inline:{KEY32}"])
    assert line.tag == 2 and line.srtp_keys.master == base64.b64decode(KEY32)


@pytest.mark.parametrize(
    "answered",
    [
        [],
        [f"3 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}"],  # a tag we never offered
        [f"1 AES_CM_128_HMAC_SHA1_32 inline:{KEY32}"],  # tag 1 was the _80 suite
        [f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY80}"] * 2,
    ],
)
def test_a_mismatched_answer_is_488(answered: list[str]) -> None:
    with pytest.raises(SdpError) as info:
        accept_crypto(offer_crypto(), answered)
    assert info.value.status == NOT_ACCEPTABLE_HERE
