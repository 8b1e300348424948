"""What the switch does to a call's anchored media: music on hold, transcoding, DTMF.

Theory of operation
-------------------
``AnchorSession`` (``anchor.py``) writes every SDP of a call and applies each
answered m-line (``StreamPlan``) to its relay stream.  When the switch has a
``MediaFeatures`` (the running switch always does; unit tests of the anchor
alone do not), each session gets a ``CallFeatures`` and hands it three moments:

* ``widen(receiver, offer, ...)`` before an offer is anchored: an audio
  m-line in which the offerer has no codec the receiver allows, but one the
  switch transcodes (``media.codecs``), gets the receiver's transcodable
  codecs added, in the receiver's order of preference (numbered with their
  static payload type, else a free dynamic one).  Transcoding is only ever
  offered when the legs share no codec.
* ``narrow(answerer, answer_to_x, plans, origin)`` after the answer is
  anchored: when the answerer chose an added codec, the answer sent back to
  the offerer names the offerer's own transcodable codec instead (and
  telephone-event when both legs have it); the ``o=`` is stamped again.
* ``applied(streams, plans)`` once the relay has the plans: per stream,

  - transcoding: a ``TranscodedStream`` driven by a ``TranscodingPump``
    (``RelayStream.set_tap``), started when the plan needs one, replaced when
    the codecs change, stopped when they meet again;
  - continuity: each side gets a ``Rewriter`` when its codec is first known
    and keeps it, so relayed audio, music, digits and transcoded audio reach
    the phone as one RTP stream (our SSRC, sequence numbers going on, the
    timestamp jumping by the time elapsed): a phone's jitter buffer drops
    packets whose sequence numbers leap;
  - music on hold: when the offerer holds (``holds_peer``: sendonly,
    inactive, ``c=0.0.0.0``), the relay already stops relaying to the held
    party; a looping ``Player`` plays the tenant's MOH into that side in its
    codec.  A resume stops the music and relaying goes on;
  - DTMF: the payload type of telephone-event on each side is kept, so a SIP
    INFO key press can be sent as RFC 4733 packets (``send_digit``) to a leg
    that negotiated it, and RFC 4733 digits from a leg are reported
    (``DtmfReceiver`` over ``RelayStream.set_watcher``) to ``on_digit`` when
    the other leg has no telephone-event, for the call to send an INFO;
  - recording (``recording.py``): once the call is to be recorded
    (``record``), the first audio stream whose two codecs are known gets the
    call's ``CallRecording``, again after every answer so that it follows
    codec changes.

A relay side has one watcher slot; DTMF and the recorder share it through
``_watch`` (one callback when only one of them watches, so the hot path pays
one call).  ``release()`` stops every player, pump, pending digit and the
recording; the anchor calls it before it frees the ports, on every path that
ends a call.

MOH files are decoded once: ``MohLibrary`` keeps each file (by path,
modification time and size) converted to every codec rate.  The configuration
loader fills it while it checks ``moh:`` (in a worker thread for a running
switch), so a call only looks the clip up.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from dialplan.schema import Config
from media.audiofile import CODEC_RATES, AudioClip, AudioFileError, AudioProblem, load
from media.codecs import AudioCodec, find, registered
from media.dtmf import DtmfReceiver, TelephoneEvent, digit_packets
from media.moh_default import ASSET as DEFAULT_MOH
from media.offer_answer import CodecPref, LegOrigin, LegPrefs, StreamPlan
from media.player import Player
from media.relay import Rewriter
from media.rtp import RtpPacket
from media.sdp import Codec, MediaDescription, RtpMap, SessionDescription
from media.transcode import LegCodec, TranscodedStream, TranscodingPump

from .media import Leg, Side
from .recording import CallRecording, Watcher

log = logging.getLogger("centrala.media")

__all__ = ["DEFAULT_MOH", "MOH_LIBRARY", "AudioFileError", "CallFeatures", "MediaFeatures",
           "MohLibrary", "narrow_answer", "widen_offer"]

DYNAMIC_PTS = range(96, 128)  # RFC 3551 §3


# -- music on hold files ----------------------------------------------------------------------
class MohLibrary:
    """MOH clips decoded once per file version, converted to every codec rate."""

    def __init__(self) -> None:
        self._clips: dict[str, tuple[tuple[int, int], AudioClip]] = {}
        self._lock = threading.Lock()  # the loader runs in worker threads

    def get(self, path: Path) -> AudioClip:
        """The clip of ``path``, decoded now if the file is new or changed (``AudioFileError``)."""
        try:
            st = path.stat()
        except OSError as exc:
            raise AudioFileError(AudioProblem.UNREADABLE, f"{exc.strerror}: {path}") from exc
        version = (st.st_mtime_ns, st.st_size)
        with self._lock:
            known = self._clips.get(str(path))
        if known is not None and known[0] == version:
            return known[1]
        clip = load(path, rates=CODEC_RATES)
        with self._lock:
            self._clips[str(path)] = (version, clip)
        return clip

    def cached(self, path: Path) -> AudioClip | None:
        """The clip last decoded for ``path``, without touching the file."""
        with self._lock:
            known = self._clips.get(str(path))
        return known[1] if known else None

    def warm_default(self) -> None:
        try:
            self.get(DEFAULT_MOH)
        except AudioFileError as exc:  # a broken installation: calls on hold hear silence
            log.error("default music on hold %s unusable: %s", DEFAULT_MOH, exc)


MOH_LIBRARY = MohLibrary()


# -- transcoding in the SDP -------------------------------------------------------------------
def _audio_codec(pref: CodecPref) -> AudioCodec | None:
    for codec in registered():
        if pref.accepts(Codec(codec.name, codec.clock_rate, codec.channels)):
            return codec
    return None


def _sdp_codec(codec: AudioCodec) -> Codec:
    return Codec(codec.name, codec.clock_rate, codec.channels)


def widen_offer(
    offer: SessionDescription, sender: LegPrefs, receiver: LegPrefs, common: LegPrefs
) -> tuple[SessionDescription, dict[int, frozenset[int]]]:
    """``offer`` with the receiver's transcodable codecs added to each audio m-line
    that has no codec in ``common`` but one the switch transcodes; the payload types
    added, by m-line.  ``offer`` itself is not changed."""
    out = offer.copy()
    added: dict[int, frozenset[int]] = {}
    for i, m in enumerate(out.media):
        if m.media != "audio" or not m.is_rtp or m.port == 0:
            continue
        codecs = [m.codec(pt) for pt in m.payload_types]
        if any(common.accepts(c) and not _auxiliary(c) for c in codecs):
            continue  # a codec in common: relayed as it is
        if _sender_codec(m, sender) is None:
            continue  # nothing the switch can decode
        pts = _add_codecs(m, receiver)
        if pts:
            added[i] = pts
    return out, added


def _add_codecs(m: MediaDescription, receiver: LegPrefs) -> frozenset[int]:
    used = set(m.payload_types)
    have = {c.key for c in (m.codec(pt) for pt in used) if c}
    new: list[int] = []
    for pref in receiver.codecs:
        codec = _audio_codec(pref)
        if codec is None or codec.key in have:
            continue
        have.add(codec.key)
        free = [p for p in DYNAMIC_PTS if p not in used]
        pt = codec.static_pt if codec.static_pt is not None and codec.static_pt not in used \
            else (free[0] if free else None)
        if pt is None:
            break
        used.add(pt)
        new.append(pt)
        m.formats.append(str(pt))
        m.set_rtpmap(RtpMap(pt, _sdp_codec(codec), codec.channels != 1))
    if _event_pt(m, 8000) is not None:  # digits too, at each added codec's clock rate
        for rate in sorted({m.codec(pt).clock_rate for pt in new} - {8000}):  # type: ignore[union-attr]
            free = [p for p in DYNAMIC_PTS if p not in used]
            if free and _event_pt(m, rate) is None:
                used.add(free[0])
                new.append(free[0])
                m.formats.append(str(free[0]))
                m.set_rtpmap(RtpMap(free[0], Codec("telephone-event", rate)))
    return frozenset(new)


def _auxiliary(codec: Codec | None) -> bool:
    return codec is None or codec.name.lower() in ("telephone-event", "cn")


def _sender_codec(m: MediaDescription, sender: LegPrefs) -> tuple[int, AudioCodec] | None:
    """The offerer's first codec the switch can decode and its leg allows."""
    for pt in m.payload_types:
        codec = m.codec(pt)
        audio = find(codec) if codec else None
        if audio is not None and sender.accepts(codec):
            return pt, audio
    return None


def _event_pt(m: MediaDescription, clock_rate: int) -> int | None:
    for pt in m.payload_types:
        codec = m.codec(pt)
        if codec and codec.name.lower() == "telephone-event" and codec.clock_rate == clock_rate:
            return pt
    return None


def narrow_answer(m: MediaDescription, offered: MediaDescription, keep: list[int]) -> None:
    """Make answer m-line ``m`` name only ``keep``, described as ``offered`` does."""
    for pt in m.payload_types:
        m.remove_format(str(pt))
    for pt in keep:
        m.formats.append(str(pt))
        rtpmap = offered.rtpmap(pt)
        if rtpmap is not None and any(a.name == "rtpmap" and _names(a.value, pt)
                                      for a in offered.attributes):
            m.set_rtpmap(rtpmap)
        fmtp = offered.fmtp(pt)
        if fmtp is not None:
            m.set_fmtp(fmtp)


def _names(value: str | None, pt: int) -> bool:
    return (value or "").split(" ", 1)[0] == str(pt)


# -- per switch -------------------------------------------------------------------------------
class FeatureStream(Protocol):
    """What the features need of a relay stream (``media.relay.RelayStream``)."""

    closed: bool

    def send(self, side: Side, packet: bytearray) -> bool: ...
    def set_tap(self, from_side: Side, tap: Callable[[memoryview], None] | None) -> None: ...
    def set_rewriter(self, side: Side, rewriter: Rewriter | None) -> None: ...
    def set_watcher(self, from_side: Side,
                    watcher: Callable[[memoryview], None] | None) -> None: ...
    def hold(self, side: Side, on: bool) -> None: ...


class MediaFeatures:
    """MOH clips by tenant and the event loop players and pumps run on."""

    def __init__(self, config: Config, loop: asyncio.AbstractEventLoop,
                 library: MohLibrary = MOH_LIBRARY) -> None:
        self.loop, self.library = loop, library
        self._moh: dict[str, AudioClip | None] = {}
        self._default: AudioClip | None = None
        self.apply(config)

    def apply(self, config: Config) -> None:
        """A (re)loaded configuration: its MOH clips, decoded by the loader already."""
        self._default = self._clip(DEFAULT_MOH)
        self._moh = {t.domain: self._clip(t.moh) if t.moh else self._default
                     for t in config.tenants}

    def _clip(self, path: Path) -> AudioClip | None:
        clip = self.library.cached(path)
        if clip is not None:
            return clip
        try:  # not through the loader (tests, a first start): decode now, once
            return self.library.get(path)
        except AudioFileError as exc:
            log.error("music on hold %s unusable: %s", path, exc)
            return None

    def moh(self, tenant: str) -> AudioClip | None:
        return self._moh.get(tenant, self._default)

    def session(self, call_ref: str, tenant: str) -> CallFeatures:
        return CallFeatures(self, call_ref, self.moh(tenant))


# -- per call ---------------------------------------------------------------------------------
@dataclass(slots=True)
class _Widened:
    offer: SessionDescription  # as the offerer sent it
    added: dict[int, frozenset[int]]
    sender: LegPrefs


@dataclass(slots=True)
class _StreamState:
    """The features on one relay stream."""

    stream: FeatureStream
    codecs: dict[Side, LegCodec] = field(default_factory=dict)
    transcoding: tuple[LegCodec, LegCodec] | None = None  # (side a, side b)
    pump: TranscodingPump | None = None
    held: Side | None = None
    player: Player | None = None
    rewriters: dict[Side, Rewriter] = field(default_factory=dict)
    watching: Side | None = None  # the side whose RFC 4733 digits are watched
    relay_held: dict[Side, bool] = field(default_factory=dict)  # as the plan holds the relay
    watchers: dict[tuple[Side, str], Watcher] = field(default_factory=dict)  # (side, purpose)


class _SharedWatch:
    """A stream as a recorder sees it: its watchers go through ``CallFeatures._watch``."""

    def __init__(self, features: CallFeatures, state: _StreamState) -> None:
        self.features, self.state = features, state

    @property
    def closed(self) -> bool:
        return self.state.stream.closed

    def set_watcher(self, from_side: Side, watcher: Watcher | None) -> None:
        self.features._watch(self.state, from_side, "record", watcher)


class CallFeatures:
    """MOH, transcoding and DTMF conversion of one call's streams."""

    def __init__(self, features: MediaFeatures, call_ref: str, moh: AudioClip | None) -> None:
        self.features, self.call_ref, self.moh = features, call_ref, moh
        self.on_digit: Callable[[Side, str, int], None] | None = None  # from side, digit, ms
        self._widened: dict[Leg, _Widened] = {}
        self._transcode: dict[int, tuple[LegCodec, LegCodec]] = {}  # by index: (x, y), pending
        self._events: dict[int, int] = {}  # by index: the offerer's event PT kept, pending
        self._streams: dict[int, _StreamState] = {}
        self._digits: list[asyncio.Handle] = []
        self._dtmf_out = _EventSender()
        self.recording: CallRecording | None = None
        self.released = False

    # -- SDP ------------------------------------------------------------------------------
    def widen(self, receiver: Leg, offer: SessionDescription, sender: LegPrefs,
              receiver_prefs: LegPrefs, common: LegPrefs) -> tuple[SessionDescription, LegPrefs]:
        """The offer to anchor for ``receiver`` and the codecs to let through."""
        self._widened.pop(receiver, None)
        widened, added = widen_offer(offer, sender, receiver_prefs, common)
        if not added:
            return offer, common
        self._widened[receiver] = _Widened(offer, added, sender)
        codecs = [widened.media[i].codec(pt) for i, pts in added.items() for pt in pts]
        extra = [CodecPref(c.name, c.clock_rate, c.channels) for c in codecs if c]
        return widened, LegPrefs(common.codecs + tuple(extra))

    def narrow(self, answerer: Leg, answer: SessionDescription, plans: list[StreamPlan],
               origin: LegOrigin, before: LegOrigin, offer: SessionDescription) -> LegOrigin:
        """Put the offerer's own codec in the answer where the answerer chose an added
        one; keep the offerer's telephone-event where the answerer has none (its digits
        become INFO).  ``before`` is our origin on the offerer's leg before the answer."""
        self._transcode.clear()
        self._events.clear()
        widened = self._widened.get(answerer)
        changed = False
        for plan in plans:
            if plan.rejected or plan.x is None or plan.y is None or plan.codec is None:
                continue
            if widened is None or plan.x.payload_type not in widened.added.get(plan.index, ()):
                changed |= self._keep_events(answer, offer, plan)
                continue
            offered = widened.offer.media[plan.index]
            x_pt, x_codec = _sender_codec(offered, widened.sender) or (None, None)
            y_codec = find(plan.codec)
            if x_pt is None or x_codec is None or y_codec is None:
                continue
            x_event = _event_pt(offered, x_codec.clock_rate) if plan.y.telephone_event else None
            narrow_answer(answer.media[plan.index], offered,
                          [x_pt] + ([x_event] if x_event is not None else []))
            self._transcode[plan.index] = (
                LegCodec(x_codec, x_pt, x_event),
                LegCodec(y_codec, plan.y.payload_type,
                         plan.y.telephone_event if x_event is not None else None))
            changed = True
        return before.stamp(answer) if changed else origin

    def _keep_events(self, answer: SessionDescription, offer: SessionDescription,
                     plan: StreamPlan) -> bool:
        assert plan.y is not None and plan.codec is not None
        event = _event_pt(offer.media[plan.index], plan.codec.clock_rate)
        if plan.y.telephone_event is not None or event is None or find(plan.codec) is None:
            return False
        m = answer.media[plan.index]
        narrow_answer(m, offer.media[plan.index], [*m.payload_types, event])
        self._events[plan.index] = event
        return True

    # -- relay ----------------------------------------------------------------------------
    def applied(self, streams: Mapping[int, object], plans: list[StreamPlan],
                x: Side, y: Side) -> None:
        """The relay has the plans of an answer; ``x`` offered, ``y`` answered.  An SRTP
        side is decrypted before the taps and encrypted after them (a relay transform),
        so a transcoded stream may have one."""
        if self.released:
            return
        for plan in plans:
            stream = streams.get(plan.index)
            if stream is None:
                continue
            state = self._streams.get(plan.index)
            if state is None or state.stream is not stream:
                if state is not None:
                    self._stop(state)
                state = self._streams[plan.index] = _StreamState(stream)  # type: ignore[arg-type]
            transcode = self._transcode.pop(plan.index, None)
            self._apply(state, plan, x, y, transcode, self._events.pop(plan.index, None))
        self._transcode.clear()
        self._events.clear()
        self._follow_recording()

    def _apply(self, state: _StreamState, plan: StreamPlan, x: Side, y: Side,
               transcode: tuple[LegCodec, LegCodec] | None, x_event: int | None) -> None:
        if plan.rejected or plan.x is None or plan.y is None or plan.codec is None:
            self._stop(state)
            state.codecs = {}
            return
        if transcode is not None:
            state.codecs = {x: transcode[0], y: transcode[1]}
        else:
            audio = find(plan.codec)
            state.codecs = {} if audio is None else {
                x: LegCodec(audio, plan.x.payload_type,
                            plan.x.telephone_event if x_event is None else x_event),
                y: LegCodec(audio, plan.y.payload_type, plan.y.telephone_event)}
        state.relay_held = {x: not plan.x.direction.receives,
                            y: not plan.y.direction.receives or plan.x.holds_peer}  # as anchor
        self._set_rewriters(state)
        self._set_transcoding(state, (state.codecs["a"], state.codecs["b"])
                              if transcode is not None else None)
        self._set_hold(state, y if plan.x.holds_peer else None)
        self._set_watch(state)

    def _set_transcoding(self, state: _StreamState, pair: tuple[LegCodec, LegCodec] | None) -> None:
        if pair == state.transcoding and (pair is None or state.pump is not None):
            return
        if state.pump is not None:
            state.pump.stop()
            state.pump = None
        state.transcoding = pair
        if pair is not None:
            log.info("[%s] transcoding %s <-> %s", self.call_ref, pair[0].codec.name,
                     pair[1].codec.name)
            state.pump = TranscodingPump(state.stream, TranscodedStream(*pair), self.features.loop)
            state.pump.start()

    def _set_hold(self, state: _StreamState, held: Side | None) -> None:
        if held == state.held and (held is None or state.player is not None):
            return
        self._stop_moh(state)
        state.held = held
        leg = state.codecs.get(held) if held is not None else None
        if held is None or leg is None or self.moh is None:
            return
        log.info("[%s] music on hold to side %s (%s)", self.call_ref, held, leg.codec.name)
        state.player = Player(state.stream, held, leg, self.moh, repeat=True,
                              loop=self.features.loop)
        state.player.start()

    def _set_rewriters(self, state: _StreamState) -> None:
        """Each side with a codec we know gets a ``Rewriter`` from its first packet on,
        kept for the call: relayed audio, music, digits and transcoded audio reach the
        phone as one RTP stream (a phone's jitter buffer drops packets whose sequence
        numbers leap)."""
        for side, leg in state.codecs.items():
            rewriter = state.rewriters.get(side)
            if rewriter is None:
                rewriter = state.rewriters[side] = Rewriter(
                    secrets.randbits(32), leg.codec.clock_rate, leg.codec.timestamp_step)
                state.stream.set_rewriter(side, rewriter)
            rewriter.clock_rate, rewriter.min_step = leg.codec.clock_rate, leg.codec.timestamp_step

    def _stop_moh(self, state: _StreamState) -> None:
        if state.player is not None:
            state.player.stop()
            state.player = None

    def _stop(self, state: _StreamState) -> None:
        self._stop_moh(state)
        state.held = None
        if state.pump is not None:
            state.pump.stop()
            state.pump = None
        state.transcoding = None
        if state.watching is not None:
            self._watch(state, state.watching, "dtmf", None)
        state.watching = None

    def dropped(self, index: int) -> None:
        """Stream ``index`` was closed (a re-offer disabled it)."""
        state = self._streams.pop(index, None)
        if state is not None:
            if self.recording is not None:
                self.recording.dropped(state.stream)
            self._stop(state)

    def release(self) -> None:
        """The call is over: stop everything (idempotent)."""
        if self.released:
            return
        self.released = True
        self.on_digit = None  # the call's method: no cycle call -> session -> features -> call
        if self.recording is not None:
            self.recording.stop()
        for handle in self._digits:
            handle.cancel()
        self._digits.clear()
        for state in self._streams.values():
            self._stop(state)
        self._streams.clear()
        self._widened.clear()

    # -- DTMF -------------------------------------------------------------------------------
    def _set_watch(self, state: _StreamState) -> None:
        """RFC 4733 from a side whose peer has no telephone-event: digits for INFO."""
        want: Side | None = None
        pairs: tuple[tuple[Side, Side], ...] = (("a", "b"), ("b", "a"))
        for side, other in pairs:
            mine, theirs = state.codecs.get(side), state.codecs.get(other)
            if mine and theirs and mine.telephone_event is not None \
                    and theirs.telephone_event is None:
                want = side
        if want == state.watching:
            return
        if state.watching is not None:
            self._watch(state, state.watching, "dtmf", None)
        state.watching = want
        if want is not None:
            leg = state.codecs[want]
            assert leg.telephone_event is not None
            self._watch(state, want, "dtmf", self._watcher(want, leg.telephone_event,
                                                           leg.codec.clock_rate))

    def _watch(self, state: _StreamState, side: Side, purpose: str,
               watcher: Watcher | None) -> None:
        """Set (or clear) the ``purpose`` watcher of ``side``; the relay gets them all."""
        if watcher is None:
            state.watchers.pop((side, purpose), None)
        else:
            state.watchers[(side, purpose)] = watcher
        if state.stream.closed:
            return
        mine = [w for (s, _), w in state.watchers.items() if s == side]
        if not mine:
            state.stream.set_watcher(side, None)
        else:
            state.stream.set_watcher(side, mine[0] if len(mine) == 1 else _fan_out(mine))

    # -- recording --------------------------------------------------------------------------
    def record(self, state_dir: Path, relative: PurePosixPath) -> bool:
        """Record the call to ``state_dir / relative`` from now on (or from when its
        codecs are known) until ``release``."""
        if self.released:
            return False
        if self.recording is None:
            self.recording = CallRecording(state_dir, relative, self.call_ref,
                                           self.features.loop)
            self._follow_recording()
        return True

    def recorded(self) -> PurePosixPath | None:
        return self.recording.file() if self.recording is not None else None

    def _follow_recording(self) -> None:
        """The first stream with both codecs known is the one recorded."""
        if self.recording is None:
            return
        for index in sorted(self._streams):
            state = self._streams[index]
            a, b = state.codecs.get("a"), state.codecs.get("b")
            if a is not None and b is not None:
                self.recording.follow(state.stream, _SharedWatch(self, state), a, b)
                return

    def _watcher(self, side: Side, event_pt: int, clock_rate: int) -> Callable[[memoryview], None]:
        receiver = DtmfReceiver()
        loop = self.features.loop

        def watch(packet: memoryview) -> None:
            if packet[1] & 0x7F != event_pt or self.on_digit is None:
                return
            try:
                rtp = RtpPacket.parse(bytes(packet))
                digits = receiver.feed(rtp.timestamp, TelephoneEvent.parse(rtp.payload),
                                       loop.time())
            except ValueError:
                return
            for d in digits:
                self.on_digit(side, d.digit, d.duration * 1000 // clock_rate)
        return watch

    def send_digit(self, to: Side, digit: str, duration_ms: int) -> bool:
        """Send a key press as RFC 4733 packets to ``to``; False when that leg has
        no telephone-event (or no stream), so the call relays the INFO instead."""
        for state in self._streams.values():
            leg = state.codecs.get(to)
            if leg is None or leg.telephone_event is None or state.stream.closed:
                continue
            self._schedule(state, to, leg, digit, duration_ms)
            return True
        return False

    def _schedule(self, state: _StreamState, to: Side, leg: LegCodec, digit: str,
                  duration_ms: int) -> None:
        """The digit's packets, paced; relayed audio to ``to`` pauses meanwhile (RFC 4733
        §2.5.1.2), so that the side's rewriter sees one source at a time."""
        loop, stream = self.features.loop, state.stream
        assert leg.telephone_event is not None
        ts = self._dtmf_out.timestamp(loop.time(), leg.codec.clock_rate)
        stream.hold(to, True)
        last = 0.0
        for packet in digit_packets(digit, clock_rate=leg.codec.clock_rate,
                                    duration_ms=min(duration_ms, 5000)):
            data = self._dtmf_out.packet(leg.telephone_event, ts, packet.marker,
                                         bytes(packet.event))
            self._digits.append(loop.call_later(packet.offset_s, stream.send, to, data))
            last = packet.offset_s
        self._digits.append(loop.call_later(last + 0.001, self._digit_sent, state, to))
        del self._digits[:-64]  # the handles of the last digits, for release() to cancel

    def _digit_sent(self, state: _StreamState, to: Side) -> None:
        if not self.released and not state.stream.closed:
            state.stream.hold(to, state.relay_held.get(to, False))


def _fan_out(watchers: list[Watcher]) -> Watcher:
    """One watcher calling several (DTMF and the recorder on one side)."""
    def watch(packet: memoryview) -> None:
        for watcher in watchers:
            watcher(packet)
    return watch


class _EventSender:
    """Our RTP stream of telephone events toward a leg: SSRC, sequence, clock."""

    def __init__(self) -> None:
        self.ssrc, self.seq, self.ts0 = secrets.randbits(32), secrets.randbits(16), \
            secrets.randbits(32)
        self.t0: float | None = None

    def timestamp(self, now: float, clock_rate: int) -> int:
        if self.t0 is None:
            self.t0 = now
        return (self.ts0 + round((now - self.t0) * clock_rate)) & 0xFFFFFFFF

    def packet(self, pt: int, ts: int, marker: bool, payload: bytes) -> bytearray:
        data = bytes(RtpPacket(payload_type=pt, marker=int(marker), sequence_number=self.seq,
                               timestamp=ts, ssrc=self.ssrc, payload=payload))
        self.seq = (self.seq + 1) & 0xFFFF
        return bytearray(data)
