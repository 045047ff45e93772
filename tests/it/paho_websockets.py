"""paho-mqtt (the course's Python client) over WebSockets, with and without TLS.

Usage: paho_websockets.py PORT TOPIC [CAFILE]. Subscribes to TOPIC over ws (or wss
with CAFILE, to host localhost), prints "subscribed", then waits for one message
published by another client and prints it, then publishes "reply from paho" to
TOPIC/reply and exits 0 once that was acknowledged (QoS 1).
"""
import sys
import threading

import paho.mqtt.client as mqtt

port, topic = int(sys.argv[1]), sys.argv[2]
cafile = sys.argv[3] if len(sys.argv) > 3 else None
subscribed, received, done = threading.Event(), threading.Event(), threading.Event()

client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, transport="websockets")
client.ws_set_options(path="/mqtt")
if cafile:
    client.tls_set(ca_certs=cafile)


def on_connect(c, userdata, flags, reason, properties):
    c.subscribe(topic, qos=1)


def on_subscribe(c, userdata, mid, reasons, properties):
    print("subscribed", flush=True)
    subscribed.set()


def on_message(c, userdata, message):
    print("got", message.payload.decode(), flush=True)
    info = c.publish(topic + "/reply", "reply from paho", qos=1)
    received.set()


def on_publish(c, userdata, mid, reason, properties):
    done.set()


client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.on_publish = on_publish
client.connect("localhost" if cafile else "127.0.0.1", port)
client.loop_start()
ok = subscribed.wait(10) and received.wait(10) and done.wait(10)
client.disconnect()
client.loop_stop()
sys.exit(0 if ok else 1)
