"""The simulator's JVB stress follows jitsi-videobridge's packet-rate load measurement:
stress = (RTP packets/s received + sent) ÷ the 50,000 packets/s load threshold."""

from __future__ import annotations

import pytest
from confscale.simulator import jvb, model
from confscale.simulator.node import TX_BASE_BYTES


def attendance(n: int, video: int, voice: int | None = None) -> model.Attendance:
    voice = n if voice is None else voice
    return model.Attendance(
        participants=n, moderators=1, listeners=n - voice, voice=voice, video=video
    )


def test_stress_is_packet_rate_over_the_bridges_load_threshold():
    sizes = [attendance(20, 10), attendance(6, 6)]
    tx = TX_BASE_BYTES + sum(a.tx_bytes_per_second() for a in sizes)
    up, down = jvb.packet_rates(sizes, tx)
    video_pps = model.WEBCAM_BPS / 8 / jvb.VIDEO_PACKET_BYTES
    # 26 audio streams out and in; W·(n − 1) webcam streams out, W in (10 ≥ 8 cams: lower profile)
    many = model.WEBCAM_BPS_MANY / 8 / jvb.VIDEO_PACKET_BYTES
    assert up == pytest.approx(50 * 26 + many * 10 * 19 + video_pps * 6 * 5)
    assert down == pytest.approx(50 * 26 + many * 10 + video_pps * 6)
    # linear in the streams: twice the conferences, twice the stress
    again = jvb.packet_rates(sizes * 2, TX_BASE_BYTES + 2 * (tx - TX_BASE_BYTES))
    assert sum(again) == pytest.approx(2 * (up + down))


def test_a_busy_bridge_nears_stress_one_and_a_saturated_link_passes_it():
    sizes = [attendance(20, 6)] * 8  # 160 people, 6 webcams per conference of 20: ~270 Mbit/s
    tx = TX_BASE_BYTES + sum(a.tx_bytes_per_second() for a in sizes)
    stress = sum(jvb.packet_rates(sizes, tx)) / jvb.JVB_PACKET_RATE_LOAD_THRESHOLD
    assert 0.5 < stress < 1.0
    saturated = jvb.packet_rates(sizes, 1.2 * model.LINK_CAPACITY_BYTES)
    assert sum(saturated) / jvb.JVB_PACKET_RATE_LOAD_THRESHOLD > 1
