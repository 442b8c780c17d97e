"""Capacity of the media relay: N concurrent 1:1 consultations on one relay core.

    PYTHONPATH=. python benchmarks/media_relay.py [--forward 5,10,20,30] [--stock 1,2]

The relay runs in a child process pinned to CPU 0; the load generator (all the
client peers) runs here, pinned to CPU 1.  Publishers replay a clip encoded once
up front (640x480 30 fps VP8 at aiortc's default 500 kbit/s, keyframe every
second, plus 20 ms Opus frames), so no client ever encodes; subscribers count
RTP packets and never decode.  Each step measures the relay process's CPU time
over a fixed window, video frames and packets received, and the added latency
of forwarded video frames (send time embedded in an 12-byte trailer appended to
every VP8 frame; publisher and subscriber share this process's clock).

The load generator does as much per packet as the relay (it sends and receives
every packet, SRTP included), so it must not be what runs out of CPU.  In
forward mode each publisher replays the clip packetised once up front, writing
RTP straight to its DTLS transport (``_aiortc_hooks.send_rtp_now``), and
subscribers count packets on the same fast receive path as the relay.  A
publisher that falls behind its schedule skips frames (as a camera would)
instead of bursting its backlog; the frames it did send are reported
("load-gen fps").  Both processes' time spent runnable but waiting for a CPU
(``/proc/<pid>/task/*/schedstat``) is reported too: on this shared 2-core
machine other work steals the pinned cores, and a starved load generator looks
exactly like a relay that cannot keep up.  A step is only a relay knee when the
load generator kept to its schedule; otherwise it is marked "load-gen limited".

The same clients are also run through aiortc's stock ``MediaRelay`` (decode
once, one encoder per subscriber).  Latency is not measured there (the
re-encoded frames lose the trailer).  Knee: the first N where the worst
subscriber's video drops below 29.5 fps or p95 added latency exceeds 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import math
import multiprocessing as mp
import os
import random
import statistics
import struct
import sys
import threading
import time
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import RTCP_RTPFB_NACK, HeaderExtensions, RtcpRtpfbPacket

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import media
from media import _aiortc_hooks as hooks
from media.tuning import tune_garbage_collector

FPS = 30
CLIP_SECONDS = 4
TRAILER = b"CTLT"
WARMUP = 3.0
WINDOW = 8.0
NETWORK = os.environ.get("BENCH_NETWORK", "192.0.2.0/24")

MAX_LAG_FRAMES = 3  # a publisher further behind its schedule skips frames

VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
AUDIO_TIME_BASE = fractions.Fraction(1, 48000)


def cpu_and_wait() -> tuple[float, float]:
    """(CPU seconds, seconds runnable but waiting for a CPU) of this process, all threads."""
    t = os.times()
    wait = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/schedstat") as f:
                wait += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return t.user + t.system, wait / 1e9


# -- clip, encoded once -------------------------------------------------------


def encode_clip() -> tuple[list[bytes], list[bytes]]:
    """VP8 frames (keyframe every second) and Opus frames, already compressed."""
    encoder = Vp8Encoder()
    video = []
    for i in range(FPS * CLIP_SECONDS):
        frame = av.VideoFrame(640, 480, "yuv420p")
        # moving gradient so the encoder produces realistic inter frames
        row = bytes((x + 4 * i) & 0xFF for x in range(640))
        frame.planes[0].update(row * 480)
        frame.planes[1].update(bytes([(128 + i) & 0xFF]) * (frame.planes[1].line_size * 240))
        frame.planes[2].update(bytes([(64 + 2 * i) & 0xFF]) * (frame.planes[2].line_size * 240))
        frame.pts = i * 3000
        frame.time_base = VIDEO_TIME_BASE
        payloads, _ = encoder.encode(frame, force_keyframe=(i % FPS == 0))
        video.append(b"".join(_vp8_unpacketize(p) for p in payloads))
    opus = OpusEncoder()
    audio = []
    for i in range(50 * CLIP_SECONDS):
        samples = av.AudioFrame(format="s16", layout="stereo", samples=960)
        tone = b"".join(
            struct.pack("<hh", v, v)
            for v in (int(3000 * math.sin(2 * math.pi * 440 * (i * 960 + n) / 48000)) for n in range(960))
        )
        samples.planes[0].update(tone)
        samples.sample_rate = 48000
        samples.pts = i * 960
        samples.time_base = AUDIO_TIME_BASE
        payloads, _ = opus.encode(samples)
        audio.extend(payloads)
    return video, audio


def _vp8_unpacketize(payload: bytes) -> bytes:
    from aiortc.codecs.vpx import VpxPayloadDescriptor

    _, data = VpxPayloadDescriptor.parse(payload)
    return data


def packetize_clip(clip: tuple[list[bytes], list[bytes]]) -> tuple[list[list[bytes]], list[list[bytes]]]:
    """RTP payloads of every clip frame, as aiortc's VP8 / Opus packetisers make them."""
    vp8 = Vp8Encoder()
    video = []
    for i, data in enumerate(clip[0]):
        packet = av.Packet(data)
        packet.pts, packet.time_base = i * 3000, VIDEO_TIME_BASE
        payloads, _ = vp8.pack(packet)
        video.append(payloads)
    return video, [[data] for data in clip[1]]


class IdleTrack(MediaStreamTrack):
    """Keeps aiortc's sender from sending: the replay writes RTP itself."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    async def recv(self) -> Any:
        await asyncio.Future()


class ReplaySender:
    """Sends pre-packetised frames in real time on one sender, skipping frames when late.

    Per packet: a 12-byte header, the constant ``mid`` extension, SRTP and
    ``sendto``, as a browser would send it, without aiortc's per-frame work.
    NACKs from the relay are answered from a short history.
    """

    def __init__(self, sender: Any, transceiver: Any, kind: str, frames: list[list[bytes]], trailer: bool,
                 offset: int) -> None:
        self.sender, self.kind, self.frames, self.trailer = sender, kind, frames, trailer
        self.interval = 1 / FPS if kind == "video" else 0.02
        self.ticks = 3000 if kind == "video" else 960
        self.offset = offset  # clip position of the first frame: spreads keyframes over publishers
        self.ssrc, _ = hooks.sender_ssrcs(sender)
        self.payload_type = hooks.negotiated_codecs(transceiver)[0].payloadType
        ext_map = hooks.sender_extensions_map(sender)
        profile, value = ext_map.set(HeaderExtensions(mid=transceiver.mid))
        self.ext = struct.pack("!HH", profile, len(value) >> 2) + value if value else b""
        self.seq = random.randint(0, 0x7FFF)
        self.ts0 = random.randint(0, 0x7FFFFFFF)
        self.history: dict[int, bytes] = {}
        self.sent = 0  # frames
        self.skipped = 0
        self.nacks = 0
        hooks.intercept_rtcp(sender, self._rtcp)

    async def _rtcp(self, packet: Any) -> bool:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            self.nacks += 1
            for seq in packet.lost:
                data = self.history.get(seq)
                if data is not None:
                    self._send(data)
            return True
        return False

    def _send(self, data: bytes) -> None:
        try:
            hooks.send_rtp_now(self.sender, data)
        except ConnectionError:
            pass

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        index = 0
        first_byte = 0x90 if self.ext else 0x80
        while True:
            delay = start + index * self.interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > MAX_LAG_FRAMES * self.interval:
                late = int(-delay / self.interval)
                index += late
                self.skipped += late
                continue
            payloads = self.frames[(self.offset + index) % len(self.frames)]
            timestamp = (self.ts0 + index * self.ticks) & 0xFFFFFFFF
            last = len(payloads) - 1
            for i, payload in enumerate(payloads):
                marker = 0x80 if (i == last and self.kind == "video") else 0
                if i == last and self.trailer:
                    payload = payload + TRAILER + struct.pack("!d", time.monotonic())
                header = struct.pack("!BBHLL", first_byte, marker | self.payload_type, self.seq, timestamp, self.ssrc)
                data = header + self.ext + payload
                self.history[self.seq] = data
                self.history.pop((self.seq - 512) & 0xFFFF, None)
                self.seq = (self.seq + 1) & 0xFFFF
                self._send(data)
            index += 1
            self.sent += 1


class ReplayTrack(MediaStreamTrack):
    """Yields pre-encoded av.Packets in real time; aiortc only packetises them."""

    def __init__(self, kind: str, frames: list[bytes], trailer: bool) -> None:
        super().__init__()
        self.kind = kind
        self._frames = frames
        self._trailer = trailer
        self._index = 0
        self._start: float | None = None
        self.sent = 0

    async def recv(self) -> av.Packet:
        interval = 1 / FPS if self.kind == "video" else 0.02
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index * interval
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        data = self._frames[self._index % len(self._frames)]
        if self.kind == "video" and self._trailer:
            data = data + TRAILER + struct.pack("!d", time.monotonic())
        packet = av.Packet(data)
        if self.kind == "video":
            packet.pts, packet.time_base = self._index * 3000, VIDEO_TIME_BASE
        else:
            packet.pts, packet.time_base = self._index * 960, AUDIO_TIME_BASE
        self._index += 1
        self.sent += 1
        return packet


class Counter:
    """Counts what a subscriber receives on one track, without decoding."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.packets = 0
        self.frames = 0
        self.latencies: list[float] = []
        self.measuring = False

    def handle(self, packet: Any, arrival_time_ms: int) -> None:
        if not self.measuring:
            return
        self.packets += 1
        if self.kind == "video" and packet.marker:
            self.frames += 1
            payload = packet.payload
            if len(payload) > 12 and payload[-12:-8] == TRAILER:
                sent = struct.unpack("!d", payload[-8:])[0]
                self.latencies.append(time.monotonic() - sent)


# -- relay process ------------------------------------------------------------


def relay_process(conn: Any, mode: str, cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})
    tune_garbage_collector()  # as `caretrack media` does
    asyncio.run(_relay_main(conn, mode))


async def _relay_main(conn: Any, mode: str) -> None:
    from aiortc.contrib.media import MediaRelay

    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue = asyncio.Queue()
    lock = threading.Lock()

    def reader() -> None:
        while True:
            try:
                item = conn.recv()
            except EOFError:
                item = ("exit",)
            loop.call_soon_threadsafe(inbox.put_nowait, item)
            if item[0] == "exit":
                return

    def send(item: Any) -> None:
        with lock:
            conn.send(item)

    threading.Thread(target=reader, daemon=True).start()
    relay = media.Relay(media.RelayConfig(allowed_networks=(NETWORK,)))
    stock = MediaRelay()
    stock_pcs: list[RTCPeerConnection] = []
    tasks: list[asyncio.Task] = []

    async def pump(participant: media.Participant) -> None:
        async for message in participant.messages():
            send(("msg", participant.room.id, participant.id, message))

    async def stock_pair(room: str, offers: list[tuple[str, str]]) -> None:
        pcs, tracks = [], []
        for _, sdp in offers:
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            got: list[MediaStreamTrack] = []
            pc.on("track", got.append)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            pcs.append(pc)
            tracks.append(got)
        for i, pc in enumerate(pcs):
            for track in sorted(tracks[1 - i], key=lambda t: t.kind):
                pc.addTrack(stock.subscribe(track))
        for (pid, _), pc in zip(offers, pcs, strict=True):
            await pc.setLocalDescription(await pc.createAnswer())
            send(("msg", room, pid, {"type": "answer", "sdp": pc.localDescription.sdp}))
        stock_pcs.extend(pcs)

    while True:
        item = await inbox.get()
        command = item[0]
        if command == "join":
            _, room, pid, sdp = item
            participant = await relay.room(room).join(pid, sdp)
            tasks.append(asyncio.ensure_future(pump(participant)))
        elif command == "answer":
            _, room, pid, sdp = item
            await relay.room(room).participants[pid].handle_answer(sdp)
        elif command == "pair":
            await stock_pair(item[1], item[2])
        elif command == "cpu":
            send(("cpu", *cpu_and_wait()))
        elif command == "exit":
            await relay.close()
            for pc in stock_pcs:
                await pc.close()
            for task in tasks:
                task.cancel()
            send(("closed",))
            return


# -- load generator -----------------------------------------------------------


class RelayClient:
    """The parent's end of the pipe to the relay process."""

    def __init__(self, mode: str) -> None:
        self.conn, child = mp.Pipe()
        self.process = mp.get_context("spawn").Process(target=relay_process, args=(child, mode, 0), daemon=True)
        self.process.start()
        self.loop = asyncio.get_running_loop()
        self.handlers: dict[tuple[str, str], Any] = {}
        self.replies: asyncio.Queue = asyncio.Queue()
        self.lock = threading.Lock()
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self) -> None:
        while True:
            try:
                item = self.conn.recv()
            except (EOFError, OSError):
                return
            self.loop.call_soon_threadsafe(self._dispatch, item)
            if item[0] == "closed":
                return

    def _dispatch(self, item: Any) -> None:
        if item[0] == "msg":
            _, room, pid, message = item
            asyncio.ensure_future(self.handlers[(room, pid)](message))
        else:
            self.replies.put_nowait(item)

    def send(self, *item: Any) -> None:
        with self.lock:
            self.conn.send(item)

    async def cpu(self) -> tuple[float, float]:
        """(CPU seconds, seconds waiting for a CPU) of the relay process."""
        self.send("cpu")
        reply = await self.replies.get()
        return reply[1], reply[2]

    async def close(self) -> None:
        self.send("exit")
        await asyncio.wait_for(self.replies.get(), 30)
        self.process.join(10)


class Peer:
    def __init__(self, relay: RelayClient, room: str, pid: str, clip: tuple[list[bytes], list[bytes]], trailer: bool,
                 packets: tuple[list[list[bytes]], list[list[bytes]]] | None = None, offset: int = 0) -> None:
        self.relay, self.room, self.pid = relay, room, pid
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.packets, self.offset, self.trailer = packets, offset, trailer
        self.replays: list[ReplaySender] = []
        self._replay_tasks: list[asyncio.Task] = []
        if packets is None:  # stock mode: aiortc's own sender loop
            self.pc.addTrack(ReplayTrack("audio", clip[1], trailer))
            self.pc.addTrack(ReplayTrack("video", clip[0], trailer))
        else:
            self.pc.addTrack(IdleTrack("audio"))
            self.pc.addTrack(IdleTrack("video"))
        self.counters: list[Counter] = []
        self.pc.on("track", self._on_track)
        # signalling messages must be applied one at a time, in order
        self._inbox: asyncio.Queue = asyncio.Queue()
        self._worker = asyncio.ensure_future(self._work())
        relay.handlers[(room, pid)] = self._inbox.put

    def _on_track(self, track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track)
        counter = Counter(track.kind)
        self.counters.append(counter)
        hooks.intercept_rtp_now(receiver, counter.handle)  # count, never decode

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def _work(self) -> None:
        while True:
            await self.on_message(await self._inbox.get())

    def start_replay(self) -> None:
        """Start sending (forward mode), once the publisher's transport is connected."""
        if self.packets is None or self.replays:
            return
        for transceiver in self.pc.getTransceivers():
            sender = transceiver.sender
            if sender.track is None or transceiver.direction not in ("sendrecv", "sendonly"):
                continue
            kind = sender.track.kind
            frames = self.packets[0] if kind == "video" else self.packets[1]
            replay = ReplaySender(sender, transceiver, kind, frames, self.trailer and kind == "video", self.offset)
            self.replays.append(replay)
            self._replay_tasks.append(asyncio.ensure_future(replay.run()))

    async def close(self) -> None:
        self._worker.cancel()
        for task in self._replay_tasks:
            task.cancel()
        await asyncio.gather(self._worker, *self._replay_tasks, return_exceptions=True)
        await self.pc.close()

    async def on_message(self, message: dict[str, Any]) -> None:
        description = RTCSessionDescription(sdp=message["sdp"], type=message["type"])
        await self.pc.setRemoteDescription(description)
        if message["type"] == "offer":
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            self.relay.send("answer", self.room, self.pid, self.pc.localDescription.sdp)


async def run_step(mode: str, n: int, clip: tuple[list[bytes], list[bytes]],
                   packets: tuple[list[list[bytes]], list[list[bytes]]]) -> dict[str, Any]:
    relay = RelayClient(mode)
    peers: list[Peer] = []
    try:
        for i in range(n):
            room = f"c{i}"
            pair = [
                Peer(relay, room, f"{room}-{who}", clip, mode == "forward",
                     packets if mode == "forward" else None, offset=(7 * (2 * i + j)) % len(clip[0]))
                for j, who in enumerate(("doctor", "patient"))
            ]
            peers.extend(pair)
            if mode == "forward":
                for peer in pair:
                    relay.send("join", room, peer.pid, await peer.offer())
            else:
                relay.send("pair", room, [(peer.pid, await peer.offer()) for peer in pair])
        # wait until every subscriber has both tracks
        deadline = time.monotonic() + 20 + n
        while time.monotonic() < deadline and not all(len(p.counters) == 2 for p in peers):
            await asyncio.sleep(0.2)
        connected = sum(len(p.counters) == 2 for p in peers)
        for p in peers:
            p.start_replay()
        await asyncio.sleep(WARMUP)
        for p in peers:
            for c in p.counters:
                c.measuring = True
        replays = [r for p in peers for r in p.replays if r.kind == "video"]
        sent0 = [r.sent for r in replays]
        (cpu0, wait0), (own0, ownwait0), t0 = await relay.cpu(), cpu_and_wait(), time.monotonic()
        await asyncio.sleep(WINDOW)
        (cpu1, wait1), (own1, ownwait1), t1 = await relay.cpu(), cpu_and_wait(), time.monotonic()
        sent1 = [r.sent for r in replays]
        for p in peers:
            for c in p.counters:
                c.measuring = False
        elapsed = t1 - t0
        sent_fps = [(b - a) / elapsed for a, b in zip(sent0, sent1, strict=True)]
        videos = [c for p in peers for c in p.counters if c.kind == "video"]
        fps = [c.frames / elapsed for c in videos] + [0.0] * (2 * n - len(videos))
        latencies = sorted(x for c in videos for x in c.latencies)
        packets = sum(c.packets for p in peers for c in p.counters)
        expected_frames = FPS * elapsed * 2 * n
        return {
            "mode": mode,
            "n": n,
            "connected": connected,
            "relay_cpu": (cpu1 - cpu0) / elapsed,
            "relay_wait": (wait1 - wait0) / elapsed,
            "loadgen_cpu": (own1 - own0) / elapsed,
            "loadgen_wait": (ownwait1 - ownwait0) / elapsed,
            "sent_fps_min": min(sent_fps) if sent_fps else None,
            "skipped": sum(r.skipped for p in peers for r in p.replays),
            "nacks": sum(r.nacks for p in peers for r in p.replays),
            "pps_out": packets / elapsed,
            "fps_min": min(fps),
            "fps_mean": statistics.fmean(fps),
            "lost": max(0.0, 1 - sum(c.frames for c in videos) / expected_frames),
            "p50": latencies[len(latencies) // 2] * 1000 if latencies else None,
            "p95": latencies[int(len(latencies) * 0.95)] * 1000 if latencies else None,
        }
    finally:
        for peer in peers:
            await peer.close()
        await relay.close()


def row(r: dict[str, Any]) -> str:
    def ms(v: float | None) -> str:
        return "n/m" if v is None else f"{v:.1f}"

    sent = "n/m" if r["sent_fps_min"] is None else f"{r['sent_fps_min']:.1f}"
    return (
        f"| {r['mode']} | {r['n']} | {r['connected']}/{2 * r['n']} | {r['relay_cpu'] * 100:.0f}% "
        f"(+{r['relay_wait'] * 100:.0f}% wait) | {r['relay_cpu'] / r['n'] * 100:.1f}% "
        f"| {r['loadgen_cpu'] * 100:.0f}% (+{r['loadgen_wait'] * 100:.0f}% wait) | {sent} | {r['pps_out']:.0f} "
        f"| {r['fps_min']:.1f} / {r['fps_mean']:.1f} | {r['lost'] * 100:.1f}% | {ms(r['p50'])} | {ms(r['p95'])} "
        f"| {r['nacks']} |{' load-gen limited' if loadgen_limited(r) else ''}"
    )


def loadgen_limited(r: dict[str, Any]) -> bool:
    """The load generator fell behind its own schedule: the step says nothing about the relay."""
    return r["skipped"] > 0 or (r["sent_fps_min"] is not None and r["sent_fps_min"] < FPS - 0.5)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--forward", default="5,10,20,30,40", help="consultation counts, RTP forwarding")
    parser.add_argument("--stock", default="1,2", help="consultation counts, aiortc MediaRelay")
    args = parser.parse_args()
    if os.cpu_count() and os.cpu_count() >= 2:
        os.sched_setaffinity(0, {1})
    print("encoding the clip once...", file=sys.stderr)
    clip = encode_clip()
    packets = packetize_clip(clip)
    tune_garbage_collector()  # the load generator too, so its pauses do not count as the relay's
    kbps = sum(map(len, clip[0])) * 8 / CLIP_SECONDS / 1000
    print(f"clip: 640x480 {FPS} fps VP8 ~{kbps:.0f} kbit/s + Opus 20 ms", file=sys.stderr)
    print(f"\nmachine: {os.cpu_count()} CPUs, relay pinned to CPU 0, load generator to CPU 1; "
          f"window {WINDOW:.0f} s after {WARMUP:.0f} s warm-up\n")
    print("| relay | consultations | peers connected | relay CPU (+waiting for CPU) | CPU / consultation "
          "| load-gen CPU (+waiting) | load-gen fps min | packets/s delivered | video fps min / mean "
          "| frames lost | added p50 ms | added p95 ms | NACKs to publishers |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    knee: dict[str, int | None] = {}
    for mode, counts in (("forward", args.forward), ("stock", args.stock)):
        knee[mode] = None
        for n in [int(x) for x in counts.split(",") if x]:
            result = await run_step(mode, n, clip, packets)
            print(row(result), flush=True)
            bad = result["fps_min"] < 29.5 or (result["p95"] is not None and result["p95"] > 100)
            if bad and loadgen_limited(result):
                print(f"  (N={n}: the load generator could not keep its schedule; not a relay knee)", flush=True)
                continue
            if bad and knee[mode] is None:
                knee[mode] = n
                break
    for mode, n in knee.items():
        print(f"\nknee ({mode}): " + (f"N={n}" if n else "not reached in the tested range"))


if __name__ == "__main__":
    asyncio.run(main())
