//! The packet decoder in every protocol version, behind `check_frame`: nothing
//! panics, a frame `check_frame` calls whole decodes or fails cleanly, and every
//! packet that decodes encodes back to bytes that decode to the same packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqttkit::protocol::{FrameStatus, Packet, ProtocolVersion, check_frame};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let version = match selector % 3 {
        0 => ProtocolVersion::V3_1,
        1 => ProtocolVersion::V3_1_1,
        _ => ProtocolVersion::V5,
    };
    let Ok(FrameStatus::Complete(header)) = check_frame(bytes, 1 << 20) else {
        return;
    };
    let frame = &bytes[..header.frame_len()];
    let Ok(packet) = Packet::decode(frame, version) else {
        return;
    };
    // A CONNECT carries its own version; everything else uses the connection's.
    let version = match &packet {
        Packet::Connect(connect) => connect.version,
        _ => version,
    };
    let encoded = packet.to_bytes(version).expect("a decoded packet encodes");
    let again = Packet::decode(&encoded, version).expect("an encoded packet decodes");
    assert_eq!(again, packet, "decode(encode(p)) == p");
});
