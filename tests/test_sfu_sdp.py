import pytest

from sfu.sdp import (
    AUDIO_LEVEL_URI,
    MID_URI,
    Codec,
    LocalMediaLine,
    LocalTransport,
    SdpError,
    build_sdp,
    parse_sdp,
    read_answer,
    read_offer,
)

CHROME_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS stream",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host generation 0",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 AA:BB:CC",
        "a=setup:actpass",
        "a=mid:0",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=sendonly",
        "a=msid:stream track-a",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:63 red/48000/2",
        "a=ssrc:1001 cname:xyz",
        "a=ssrc:1001 msid:stream track-a",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98",
        "c=IN IP4 0.0.0.0",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa",
        "a=fingerprint:sha-256 AA:BB:CC",
        "a=setup:actpass",
        "a=mid:1",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=sendonly",
        "a=msid:stream track-v",
        "a=rtcp-mux",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 goog-remb",
        "a=rtcp-fb:96 ccm fir",
        "a=rtcp-fb:96 nack",
        "a=rtcp-fb:96 nack pli",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=rtpmap:98 VP9/90000",
        "a=ssrc-group:FID 2001 2002",
        "a=ssrc:2001 cname:xyz",
        "a=ssrc:2002 cname:xyz",
        "",
    ]
)


def test_a_chrome_offer_is_accepted_with_opus_and_vp8_only():
    transport, media = read_offer(parse_sdp(CHROME_OFFER))
    assert (transport.ice_ufrag, transport.fingerprint) == ("abcd", "AA:BB:CC")
    assert transport.candidates == ["1 1 udp 2113937151 127.0.0.1 50000 typ host generation 0"]
    audio, video = media
    assert audio.codec is not None and (audio.codec.name, audio.codec.payload_type) == ("opus", 111)
    assert audio.direction == "recvonly" and audio.ssrcs == [1001]
    assert audio.extensions == [(4, MID_URI), (1, AUDIO_LEVEL_URI)]
    assert video.codec is not None and video.codec.payload_type == 96
    assert set(video.codec.rtcp_fb) == {"nack", "nack pli", "ccm fir", "goog-remb"}
    assert video.ssrcs == [2001, 2002]


@pytest.mark.parametrize(
    ("sdp", "fragment"),
    [
        ("", "empty"),
        ("hello", "v=0"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n", "no media"),
        ("v=0\r\nm=audio x", "m-line"),
        (CHROME_OFFER.replace("a=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa", "garbage"), "line"),
        (CHROME_OFFER.replace("a=ice-ufrag:abcd\r\n", ""), "ICE"),
        (CHROME_OFFER.replace("a=fingerprint:sha-256 AA:BB:CC\r\n", ""), "fingerprint"),
        (
            CHROME_OFFER.replace("opus/48000/2", "G722/8000").replace("VP8/90000", "H264/90000"),
            "usable",
        ),
        (CHROME_OFFER.replace("a=mid:1", "a=mid:0"), "mid"),
        ("v=0\r\n" + "a=x\r\n" * 20000, "too large"),
    ],
)
def test_unusable_offers_are_rejected_with_a_clear_message(sdp, fragment):
    with pytest.raises(SdpError, match=fragment):
        read_offer(parse_sdp(sdp))


def test_the_sfu_description_round_trips_through_the_parser():
    transport = LocalTransport(
        "uf", "pw" * 11, "sha-256", "AA:BB", ["candidate:1 1 udp 1 127.0.0.1 4000 typ host"]
    )
    lines = [
        LocalMediaLine("0", "audio", "recvonly", Codec(111, "opus", 48000, 2, "minptime=10")),
        LocalMediaLine(
            "2",
            "video",
            "sendonly",
            Codec(96, "VP8", 90000, None, None, ("nack",)),
            ssrc=55,
            cname="c",
            stream_id="p1",
            track_id="t1",
        ),
        LocalMediaLine("3", "video", "inactive", Codec(96, "VP8", 90000)),
        LocalMediaLine(
            "4",
            "application",
            "inactive",
            None,
            proto="UDP/DTLS/SCTP",
            formats=["webrtc-datachannel"],
        ),
    ]
    text = build_sdp(session_id=1, version=2, setup="actpass", transport=transport, lines=lines)
    parsed = parse_sdp(text)
    assert parsed.bundle_mids == ["0", "2", "3"]
    assert [m.direction for m in parsed.media] == ["recvonly", "sendonly", "inactive", "inactive"]
    assert parsed.media[1].ssrcs() == [55]
    assert parsed.media[1].value("msid") == "p1 t1"
    assert parsed.media[3].port == 0
    assert parsed.media[0].values("candidate") == ["1 1 udp 1 127.0.0.1 4000 typ host"]
    read_answer(parsed, ["0", "2", "3", "4"])
    with pytest.raises(SdpError):
        read_answer(parsed, ["0", "2"])
