"""MQTT 5 scenarios driven by the paho-mqtt client, run by tests/it/v5_clients.rs.

Usage: paho_v5.py PORT BROKER, where BROKER is "rbroker" or "mosquitto" (the few
places where mosquitto 2.0 chooses differently check its behaviour instead).
Prints "ok <scenario>" for each scenario that passed; any failure raises, which
prints the traceback and exits non-zero. Every wait has a deadline.
"""

import queue
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

PORT = int(sys.argv[1])
BROKER = sys.argv[2]
WAIT = 5.0


class Client:
    """A paho v5 client whose events arrive on queues, waited for with deadlines."""

    def __init__(self, client_id, manual_ack=False, clean_start=True, properties=None):
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.acks = queue.Queue()
        self.subacks = queue.Queue()
        self.paho = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=manual_ack,
            reconnect_on_failure=False,
        )
        self.paho.on_message = lambda c, u, m: self.messages.put(m)
        self.paho.on_connect = lambda c, u, f, rc, p: self.connacks.put((f, rc, p))
        self.paho.on_publish = lambda c, u, mid, rc, p: self.acks.put((mid, rc))
        self.paho.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(rcs)
        self.paho.connect("127.0.0.1", PORT, clean_start=clean_start, properties=properties)
        self.paho.loop_start()
        self.flags, self.reason, self.connack_properties = self.connacks.get(timeout=WAIT)
        assert not self.reason.is_failure, self.reason

    def subscribe(self, topic, options, properties=None):
        self.paho.subscribe(topic, options=options, properties=properties)
        return self.subacks.get(timeout=WAIT)

    def publish(self, topic, payload, qos=1, properties=None, retain=False):
        """Publishes and, at QoS 1/2, returns the acknowledgement's reason code."""
        info = self.paho.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if qos == 0:
            return None
        mid, reason = self.acks.get(timeout=WAIT)
        assert mid == info.mid, (mid, info.mid)
        return reason

    def message(self, wait=WAIT):
        return self.messages.get(timeout=wait)

    def quiet(self, wait=0.3):
        try:
            message = self.messages.get(timeout=wait)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected message on {message.topic}: {message.payload}")

    def close(self):
        self.paho.disconnect()
        self.paho.loop_stop()


def publish_properties(**values):
    properties = Properties(PacketTypes.PUBLISH)
    for name, value in values.items():
        setattr(properties, name, value)
    return properties


def properties_travel_with_the_message():
    reader = Client("reader")
    subscription = Properties(PacketTypes.SUBSCRIBE)
    subscription.SubscriptionIdentifier = 42
    reader.subscribe("paho/props/#", SubscribeOptions(qos=1), subscription)
    writer = Client("writer")
    sent = publish_properties(
        ContentType="application/json",
        ResponseTopic="paho/replies",
        CorrelationData=b"req-7",
        MessageExpiryInterval=30,
        PayloadFormatIndicator=1,
        UserProperty=[("unit", "celsius"), ("site", "lab"), ("unit", "kelvin")],
    )
    writer.publish("paho/props/t", b'{"t":21}', properties=sent)
    got = reader.message().properties
    assert got.ContentType == "application/json", got
    assert got.ResponseTopic == "paho/replies", got
    assert got.CorrelationData == b"req-7", got
    assert got.PayloadFormatIndicator == 1, got
    assert got.MessageExpiryInterval in (29, 30), got
    assert got.UserProperty == [("unit", "celsius"), ("site", "lab"), ("unit", "kelvin")], got
    assert got.SubscriptionIdentifier == [42], got
    reader.close()
    writer.close()


def an_empty_client_id_is_assigned_one():
    client = Client("")
    assigned = client.connack_properties.AssignedClientIdentifier
    assert assigned, client.connack_properties
    client.close()


def a_session_with_an_expiry_outlives_its_connection():
    expiry = Properties(PacketTypes.CONNECT)
    expiry.SessionExpiryInterval = 60
    away = Client("paho-away", properties=expiry)
    away.subscribe("paho/away", SubscribeOptions(qos=1))
    away.close()
    writer = Client("away-writer")
    assert writer.publish("paho/away", b"kept") == 0
    back = Client("paho-away", clean_start=False, properties=expiry)
    assert back.flags.session_present
    assert back.message().payload == b"kept"
    back.close()
    writer.close()


def topic_aliases_from_the_client():
    reader = Client("alias-reader")
    reader.subscribe("paho/alias/#", SubscribeOptions(qos=0))
    writer = Client("alias-writer")
    maximum = writer.connack_properties.TopicAliasMaximum
    assert maximum >= 1, writer.connack_properties
    writer.publish("paho/alias/long/topic", b"one", properties=publish_properties(TopicAlias=1))
    writer.publish("", b"two", properties=publish_properties(TopicAlias=1))
    for payload in (b"one", b"two"):
        message = reader.message()
        assert (message.topic, message.payload) == ("paho/alias/long/topic", payload), message
    reader.close()
    writer.close()


def acknowledgements_say_when_nobody_subscribed():
    writer = Client("lonely")
    assert writer.publish("paho/nobody", b"x") == 0x10
    writer.close()


def the_broker_keeps_within_receive_maximum():
    limit = Properties(PacketTypes.CONNECT)
    limit.ReceiveMaximum = 1
    reader = Client("one-at-a-time", manual_ack=True, properties=limit)
    reader.subscribe("paho/rm", SubscribeOptions(qos=1))
    writer = Client("rm-writer")
    for n in range(4):
        writer.publish("paho/rm", str(n).encode())
    received = []
    while len(received) < 4:
        message = reader.message()
        received.append(message.payload)
        if BROKER == "rbroker":
            reader.quiet()
        reader.paho.ack(message.mid, message.qos)
    assert received == [b"0", b"1", b"2", b"3"], received
    reader.close()
    writer.close()


def shared_subscriptions_take_turns():
    members = [Client(f"member-{n}") for n in range(2)]
    for member in members:
        member.subscribe("$share/paho/jobs", SubscribeOptions(qos=1))
    writer = Client("jobs-writer")
    for n in range(4):
        writer.publish("jobs", str(n).encode())
    counts = []
    for member in members:
        got = []
        while True:
            try:
                got.append(member.message(wait=0.5).payload)
            except queue.Empty:
                break
        counts.append(len(got))
    assert counts == [2, 2], counts
    for client in members + [writer]:
        client.close()


def no_local_and_retain_handling():
    client = Client("own-voice")
    client.subscribe("paho/local", SubscribeOptions(qos=1, noLocal=True))
    client.publish("paho/local", b"mine")
    other = Client("other-voice")
    other.publish("paho/local", b"theirs")
    assert client.message().payload == b"theirs"
    other.publish("paho/kept", b"retained", retain=True)
    never = SubscribeOptions(qos=0, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
    client.subscribe("paho/kept", never)
    client.quiet()
    other.publish("paho/kept", b"", retain=True)
    client.close()
    other.close()


SCENARIOS = [
    properties_travel_with_the_message,
    an_empty_client_id_is_assigned_one,
    a_session_with_an_expiry_outlives_its_connection,
    topic_aliases_from_the_client,
    acknowledgements_say_when_nobody_subscribed,
    the_broker_keeps_within_receive_maximum,
    shared_subscriptions_take_turns,
    no_local_and_retain_handling,
]

if __name__ == "__main__":
    for scenario in SCENARIOS:
        started = time.monotonic()
        scenario()
        print(f"ok {scenario.__name__} {time.monotonic() - started:.2f}s", flush=True)
