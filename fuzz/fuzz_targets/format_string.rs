//! rsub's `-F` format strings: parsed or refused with mosquitto's message, never a
//! panic; a parsed one renders any message.
#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use mqttkit::client::format::{FormatString, Printer, Received, Style};
use mqttkit::protocol::{Property, Publish, QoS, TopicName};

fuzz_target!(|data: &[u8]| {
    // The first half is the format, the rest the payload.
    let (format, payload) = data.split_at(data.len() / 2);
    let Ok(format) = std::str::from_utf8(format) else {
        return;
    };
    let Ok(format) = FormatString::parse(format) else {
        return;
    };
    let publish = Publish {
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: [
            Property::ContentType("text/plain".into()),
            Property::UserProperty("k".into(), "v".into()),
            Property::PayloadFormatIndicator(1),
        ]
        .into_iter()
        .collect(),
        ..Publish::new(
            TopicName::new("fuzz/topic").expect("valid"),
            bytes::Bytes::copy_from_slice(payload),
        )
    };
    let printer = Printer {
        style: Style::Format(format),
        eol: true,
        pretty: payload.first().is_some_and(|b| b & 1 == 1),
        color: false,
    };
    let received = Received {
        publish: &publish,
        mid: 7,
        at: SystemTime::UNIX_EPOCH,
    };
    let mut out = Vec::new();
    let _ = printer.render(&received, &mut out);
});
