"""Logging in with a username and password from paho-mqtt (MQTT 3.1.1, as the
course code does), run by tests/it/auth_files.rs.

Usage: paho_auth.py PORT BROKER, where BROKER is "rbroker" or "mosquitto".
The broker's password file has student/s3cret; its ACL lets student read and
write course/#. Prints "ok <scenario>" for each scenario that passed; a failure
raises. Every wait has a deadline.
"""

import queue
import sys

import paho.mqtt.client as mqtt

PORT = int(sys.argv[1])
BROKER = sys.argv[2]
WAIT = 5.0


def client(client_id, password):
    events = queue.Queue()
    paho = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv311,
        reconnect_on_failure=False,
    )
    paho.username_pw_set("student", password)
    paho.on_connect = lambda c, u, flags, rc, props: events.put(("connect", rc))
    paho.on_subscribe = lambda c, u, mid, codes, props: events.put(("subscribe", codes))
    paho.on_message = lambda c, u, message: events.put(("message", message))
    paho.connect("127.0.0.1", PORT, keepalive=30)
    paho.loop_start()
    return paho, events


def next_event(events, kind):
    name, value = events.get(timeout=WAIT)
    assert name == kind, (name, value)
    return value


good, events = client("paho-good", "s3cret")
rc = next_event(events, "connect")
assert not rc.is_failure, rc
print("ok good password", flush=True)

bad, bad_events = client("paho-bad", "wrong")
rc = next_event(bad_events, "connect")
assert rc.is_failure, rc
# paho reports 3.1.1 return code 5 as the MQTT 5 reason "Not authorized".
assert str(rc) == "Not authorized", rc
bad.loop_stop()
print("ok wrong password", flush=True)

good.subscribe([("course/#", 1), ("other/#", 1)])
codes = next_event(events, "subscribe")
assert not codes[0].is_failure, codes
# rbroker refuses a filter the ACL can never serve; mosquitto 2.0 grants it.
assert codes[1].is_failure == (BROKER == "rbroker"), codes
good.publish("other/x", b"denied", qos=1).wait_for_publish(WAIT)
good.publish("course/lesson", b"hello", qos=1).wait_for_publish(WAIT)
message = next_event(events, "message")
assert message.topic == "course/lesson", message.topic
assert message.payload == b"hello", message.payload
good.disconnect()
good.loop_stop()
print("ok acl", flush=True)
