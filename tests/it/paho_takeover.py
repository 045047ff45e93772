"""A device whose old connection is still open (a NAT timeout the broker has not
noticed) reconnects with paho-mqtt's reconnect() and takes its persistent session
over: no "offline" will may reach the dashboard. Run by tests/it/takeover.rs.

Usage: paho_takeover.py PORT BROKER. Prints "ok no false will" on success; a
failure raises. Every wait has a deadline.
"""

import queue
import socket
import sys

import paho.mqtt.client as mqtt

PORT = int(sys.argv[1])
WAIT = 5.0


def paho(client_id, clean_session):
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session,
        protocol=mqtt.MQTTv311,
        reconnect_on_failure=False,
    )
    connected = queue.Queue()
    client.on_connect = lambda c, u, flags, rc, props: connected.put(rc)
    return client, connected


def connect(client, connected):
    client.connect("127.0.0.1", PORT, keepalive=60)
    client.loop_start()
    rc = connected.get(timeout=WAIT)
    assert not rc.is_failure, rc


messages = queue.Queue()
dashboard, dashboard_connected = paho("dashboard", True)
dashboard.on_message = lambda c, u, message: messages.put(message)
subscribed = queue.Queue()
dashboard.on_subscribe = lambda c, u, mid, codes, props: subscribed.put(codes)
connect(dashboard, dashboard_connected)
dashboard.subscribe("status/#", qos=1)
subscribed.get(timeout=WAIT)

device, device_connected = paho("dev1", False)
device.will_set("status/dev1", b"offline", qos=1)
connect(device, device_connected)
# The network drops silently (a NAT timeout): the device gives its connection up
# and reconnects, while the broker still holds the old one open.
device.loop_stop()
old_socket = device.socket()
device._sock = None  # paho forgets the dead connection without closing it
device.reconnect()
device.loop_start()
rc = device_connected.get(timeout=WAIT)
assert not rc.is_failure, rc
again = device
# The broker closes the old connection once the new one took the session over;
# whatever it decided about the will, it decided before that.
old_socket.settimeout(WAIT)
try:
    while old_socket.recv(4096):
        pass
except (ConnectionResetError, socket.timeout) as error:
    assert not isinstance(error, socket.timeout), "old connection still open"
again.publish("status/dev1", b"online", qos=1).wait_for_publish(WAIT)

first = messages.get(timeout=WAIT)
assert (first.topic, first.payload) == ("status/dev1", b"online"), (first.topic, first.payload)
again.disconnect()
again.loop_stop()
dashboard.disconnect()
dashboard.loop_stop()
print("ok no false will", flush=True)
