// rbroker's web console. It is an ordinary MQTT 5 client over WebSockets: it
// connects to the listener that served this page, subscribes to "#" and
// "$SYS/#", and draws what arrives. Payloads and topics are only ever written
// as text (textContent), never as markup.
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const encoder = new TextEncoder();
  const strictDecoder = new TextDecoder('utf-8', { fatal: true });

  // ---- MQTT 5 packets (OASIS MQTT 5.0, chapter 3) --------------------------

  // Property identifier -> [name, wire type] (MQTT 5.0 section 2.2.2.2).
  const PROPERTIES = {
    1: ['Payload Format Indicator', 'byte'], 2: ['Message Expiry Interval', 'u32'],
    3: ['Content Type', 'str'], 8: ['Response Topic', 'str'], 9: ['Correlation Data', 'bin'],
    11: ['Subscription Identifier', 'var'], 17: ['Session Expiry Interval', 'u32'],
    18: ['Assigned Client Identifier', 'str'], 19: ['Server Keep Alive', 'u16'],
    21: ['Authentication Method', 'str'], 22: ['Authentication Data', 'bin'],
    23: ['Request Problem Information', 'byte'], 24: ['Will Delay Interval', 'u32'],
    25: ['Request Response Information', 'byte'], 26: ['Response Information', 'str'],
    28: ['Server Reference', 'str'], 31: ['Reason String', 'str'], 33: ['Receive Maximum', 'u16'],
    34: ['Topic Alias Maximum', 'u16'], 35: ['Topic Alias', 'u16'], 36: ['Maximum QoS', 'byte'],
    37: ['Retain Available', 'byte'], 38: ['User Property', 'pair'], 39: ['Maximum Packet Size', 'u32'],
    40: ['Wildcard Subscription Available', 'byte'], 41: ['Subscription Identifier Available', 'byte'],
    42: ['Shared Subscription Available', 'byte'],
  };

  // The reason codes a learner meets most (MQTT 5.0 section 2.4).
  const REASONS = {
    0x00: 'Success', 0x01: 'Granted QoS 1', 0x02: 'Granted QoS 2', 0x10: 'No matching subscribers',
    0x80: 'Unspecified error', 0x81: 'Malformed Packet', 0x82: 'Protocol Error',
    0x83: 'Implementation specific error', 0x84: 'Unsupported Protocol Version',
    0x85: 'Client Identifier not valid', 0x86: 'Bad User Name or Password', 0x87: 'Not authorized',
    0x88: 'Server unavailable', 0x89: 'Server busy', 0x8A: 'Banned', 0x8B: 'Server shutting down',
    0x8D: 'Keep Alive timeout', 0x8E: 'Session taken over', 0x8F: 'Topic Filter invalid',
    0x90: 'Topic Name invalid', 0x93: 'Receive Maximum exceeded', 0x95: 'Packet too large',
    0x97: 'Quota exceeded', 0x99: 'Payload format invalid', 0x9A: 'Retain not supported',
    0x9B: 'QoS not supported', 0x9F: 'Connection rate exceeded',
  };
  const reason = (code) => '0x' + code.toString(16).padStart(2, '0') + ' ' + (REASONS[code] || 'Reason code');

  class Writer {
    constructor() { this.buf = new Uint8Array(64); this.len = 0; }
    room(n) {
      if (this.len + n <= this.buf.length) return;
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
      bigger.set(this.buf.subarray(0, this.len));
      this.buf = bigger;
    }
    byte(v) { this.room(1); this.buf[this.len++] = v & 255; }
    u16(v) { this.byte(v >> 8); this.byte(v); }
    u32(v) { this.u16(Math.floor(v / 65536)); this.u16(v % 65536); }
    varint(v) {
      do {
        let digit = v % 128;
        v = Math.floor(v / 128);
        if (v > 0) digit |= 128;
        this.byte(digit);
      } while (v > 0);
    }
    bytes(a) { this.room(a.length); this.buf.set(a, this.len); this.len += a.length; }
    bin(a) { this.u16(a.length); this.bytes(a); }
    str(s) { this.bin(encoder.encode(s)); }
    properties(list) {
      const inner = new Writer();
      for (const [id, value] of list) {
        inner.varint(id);
        switch (PROPERTIES[id][1]) {
          case 'byte': inner.byte(value); break;
          case 'u16': inner.u16(value); break;
          case 'u32': inner.u32(value); break;
          case 'var': inner.varint(value); break;
          case 'str': inner.str(value); break;
          case 'bin': inner.bin(value); break;
          case 'pair': inner.str(value[0]); inner.str(value[1]); break;
        }
      }
      this.varint(inner.len);
      this.bytes(inner.take());
    }
    take() { return this.buf.subarray(0, this.len); }
  }

  // A whole packet: fixed header (type and flags, remaining length), then body.
  function packet(typeAndFlags, body) {
    const w = new Writer();
    w.byte(typeAndFlags);
    w.varint(body.length);
    w.bytes(body);
    return w.take();
  }

  class Reader {
    constructor(bytes) { this.b = bytes; this.at = 0; }
    left() { return this.b.length - this.at; }
    byte() {
      if (this.at >= this.b.length) throw new Error('packet too short');
      return this.b[this.at++];
    }
    u16() { return (this.byte() << 8) | this.byte(); }
    u32() { return this.u16() * 65536 + this.u16(); }
    varint() {
      let value = 0;
      let scale = 1;
      for (let i = 0; i < 4; i++) {
        const digit = this.byte();
        value += (digit & 127) * scale;
        if (!(digit & 128)) return value;
        scale *= 128;
      }
      throw new Error('malformed variable byte integer');
    }
    bytes(n) {
      if (this.at + n > this.b.length) throw new Error('packet too short');
      const slice = this.b.subarray(this.at, this.at + n);
      this.at += n;
      return slice;
    }
    bin() { return this.bytes(this.u16()); }
    str() { return strictDecoder.decode(this.bin()); }
    rest() { return this.bytes(this.left()); }
    properties() {
      const end = this.varint() + this.at;
      const list = [];
      while (this.at < end) {
        const id = this.varint();
        const known = PROPERTIES[id];
        if (!known) throw new Error('unknown property ' + id);
        let value;
        switch (known[1]) {
          case 'byte': value = this.byte(); break;
          case 'u16': value = this.u16(); break;
          case 'u32': value = this.u32(); break;
          case 'var': value = this.varint(); break;
          case 'str': value = this.str(); break;
          case 'bin': value = this.bin().slice(); break;
          case 'pair': value = [this.str(), this.str()]; break;
        }
        list.push([id, value]);
      }
      return list;
    }
  }

  // One MQTT 5 connection over a WebSocket. `events` receives connected(connack),
  // refused(code), message(msg), closed(why).
  class Client {
    constructor(url, login, events) {
      this.events = events;
      this.waiting = new Map(); // packet id -> resolve, for our PUBLISH and SUBSCRIBE
      this.incomingQos2 = new Set(); // ids of QoS 2 messages received, awaiting PUBREL
      this.pubrecCodes = new Map(); // packet id -> the PUBREC reason of our QoS 2 PUBLISH
      this.nextId = 1;
      this.pending = new Uint8Array(0);
      this.clientId = 'rbroker-console-' + Math.random().toString(36).slice(2, 10);
      this.login = login;
      this.ws = new WebSocket(url, 'mqtt');
      this.ws.binaryType = 'arraybuffer';
      this.ws.onopen = () => this.send(this.connectPacket());
      this.ws.onmessage = (event) => this.feed(new Uint8Array(event.data));
      this.ws.onclose = () => this.closed('the connection closed');
      this.ws.onerror = () => {};
    }

    connectPacket() {
      const w = new Writer();
      w.str('MQTT');
      w.byte(5);
      let flags = 0x02; // Clean Start
      if (this.login.user) flags |= 0x80;
      if (this.login.password) flags |= 0x40;
      w.byte(flags);
      w.u16(60); // Keep Alive, seconds (a hidden tab's timers may run once a minute)
      w.properties([[33, 1000]]); // Receive Maximum
      w.str(this.clientId);
      if (this.login.user) w.str(this.login.user);
      if (this.login.password) w.str(this.login.password);
      return packet(0x10, w.take());
    }

    send(bytes) {
      if (this.ws.readyState === WebSocket.OPEN) this.ws.send(bytes);
    }

    closed(why) {
      if (this.done) return;
      this.done = true;
      clearInterval(this.pinger);
      for (const resolve of this.waiting.values()) resolve({ failed: 'connection lost' });
      this.waiting.clear();
      this.events.closed(why);
    }

    close() {
      this.send(Uint8Array.of(0xE0, 0));
      this.ws.close();
    }

    // Bytes from the socket: a frame may hold several packets or part of one.
    feed(bytes) {
      const joined = new Uint8Array(this.pending.length + bytes.length);
      joined.set(this.pending);
      joined.set(bytes, this.pending.length);
      let at = 0;
      try {
        for (;;) {
          if (joined.length - at < 2) break;
          let length = 0;
          let scale = 1;
          let header = 1;
          let complete = false;
          for (; header <= 4 && at + header < joined.length; header++) {
            const digit = joined[at + header];
            length += (digit & 127) * scale;
            scale *= 128;
            if (!(digit & 128)) { complete = true; break; }
          }
          if (!complete) {
            if (header > 4) throw new Error('malformed remaining length');
            break;
          }
          const start = at + header + 1;
          if (joined.length < start + length) break;
          this.handle(joined[at] >> 4, joined[at] & 15, new Reader(joined.subarray(start, start + length)));
          at = start + length;
        }
      } catch (error) {
        this.closed('malformed packet from the broker: ' + error.message);
        this.ws.close();
        return;
      }
      this.pending = joined.slice(at);
    }

    handle(type, flags, r) {
      switch (type) {
        case 2: { // CONNACK
          if (this.pinger !== undefined) throw new Error('a second CONNACK');
          const sessionPresent = r.byte() & 1;
          const code = r.byte();
          const properties = r.left() ? r.properties() : [];
          if (code !== 0) { this.events.refused(code); this.ws.close(); return; }
          const keepAlive = properties.find(([id]) => id === 19);
          const seconds = keepAlive ? keepAlive[1] : 60;
          if (seconds > 0) {
            this.pinger = setInterval(() => this.send(Uint8Array.of(0xC0, 0)), seconds * 500);
          }
          this.events.connected({ sessionPresent, properties });
          break;
        }
        case 3: { // PUBLISH
          const qos = (flags >> 1) & 3;
          if (qos === 3) throw new Error('PUBLISH with QoS 3');
          const message = { retain: (flags & 1) === 1, qos, topic: r.str() };
          const id = qos > 0 ? r.u16() : 0;
          message.properties = r.properties();
          message.payload = r.rest().slice();
          if (qos === 1) this.send(packet(0x40, Uint8Array.of(id >> 8, id & 255)));
          if (qos === 2) {
            this.send(packet(0x50, Uint8Array.of(id >> 8, id & 255)));
            // A resend of a QoS 2 message not yet released is not a new message.
            if (this.incomingQos2.has(id)) return;
            this.incomingQos2.add(id);
          }
          this.events.message(message);
          break;
        }
        case 4: case 5: case 7: { // PUBACK, PUBREC, PUBCOMP
          const id = r.u16();
          const code = r.left() ? r.byte() : 0;
          if (type === 5 && code < 0x80) {
            // The PUBREC's reason (0x10: no subscriber) is the one worth showing.
            this.pubrecCodes.set(id, code);
            this.send(packet(0x62, Uint8Array.of(id >> 8, id & 255))); // PUBREL
            return;
          }
          const pubrec = this.pubrecCodes.get(id);
          this.pubrecCodes.delete(id);
          this.resolve(id, { packet: ['', '', '', '', 'PUBACK', 'PUBREC', '', 'PUBCOMP'][type], code, pubrec });
          break;
        }
        case 6: { // PUBREL
          const id = r.u16();
          this.incomingQos2.delete(id);
          this.send(packet(0x70, Uint8Array.of(id >> 8, id & 255)));
          break;
        }
        case 9: { // SUBACK
          const id = r.u16();
          r.properties();
          this.resolve(id, { codes: Array.from(r.rest()) });
          break;
        }
        case 13: break; // PINGRESP
        case 14: { // DISCONNECT
          const code = r.left() ? r.byte() : 0;
          this.closed('the broker disconnected the console: ' + reason(code));
          break;
        }
        default:
          throw new Error('unexpected packet type ' + type);
      }
    }

    resolve(id, result) {
      const resolve = this.waiting.get(id);
      this.waiting.delete(id);
      if (resolve) resolve(result);
    }

    packetId() {
      for (let tries = 0; tries < 65535; tries++) {
        const id = this.nextId;
        this.nextId = this.nextId === 65535 ? 1 : this.nextId + 1;
        if (!this.waiting.has(id)) return id;
      }
      throw new Error('no packet identifier free');
    }

    // Resolves with {codes} from the SUBACK.
    subscribe(filters) {
      const id = this.packetId();
      const w = new Writer();
      w.u16(id);
      w.properties([]);
      for (const [filter, options] of filters) { w.str(filter); w.byte(options); }
      return new Promise((resolve) => {
        this.waiting.set(id, resolve);
        this.send(packet(0x82, w.take()));
      });
    }

    // Resolves once the QoS flow ends: {packet, code}, or {sent} for QoS 0.
    publish(topic, payload, qos, retain, properties) {
      const id = qos > 0 ? this.packetId() : 0;
      const w = new Writer();
      w.str(topic);
      if (qos > 0) w.u16(id);
      w.properties(properties);
      w.bytes(payload);
      const bytes = packet(0x30 | (qos << 1) | (retain ? 1 : 0), w.take());
      if (qos === 0) { this.send(bytes); return Promise.resolve({ sent: true }); }
      return new Promise((resolve) => {
        this.waiting.set(id, resolve);
        this.send(bytes);
      });
    }
  }

  // ---- Topic filters, as the broker matches them (rsub --match) -------------

  // Why `filter` is not a filter the broker accepts, or null; as
  // protocol::topic::TopicFilter::new.
  function filterProblem(filter) {
    if (filter === '') return 'a filter has at least one character';
    if (encoder.encode(filter).length > 65535) return 'a filter is at most 65,535 bytes';
    if (filter.includes('\u0000')) return 'a filter has no U+0000 character';
    const shared = sharedParts(filter);
    if (shared && shared.problem) return shared.problem;
    const levels = (shared ? shared.filter : filter).split('/');
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i];
      if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
        return '# must be a whole level, and the last one';
      }
      if (level.includes('+') && level !== '+') return '+ must be a whole level';
    }
    return null;
  }

  // A shared subscription, $share/GROUP/FILTER: its parts, or why it is not one;
  // null for any other filter. Messages go to the filter after the group.
  function sharedParts(filter) {
    if (!filter.startsWith('$share/')) return null;
    const rest = filter.slice('$share/'.length);
    const slash = rest.indexOf('/');
    const group = slash < 0 ? rest : rest.slice(0, slash);
    if (slash < 0 || rest.slice(slash + 1) === '') {
      return { problem: 'a shared subscription is $share/GROUP/FILTER' };
    }
    if (group === '' || /[+#]/.test(group)) {
      return { problem: 'the group of a shared subscription is a non-empty name without + or #' };
    }
    return { group, filter: rest.slice(slash + 1) };
  }

  const quoted = (levels) => levels.map((level) => "'" + level + "'").join(', ');

  // [matches, why], in the words of `rsub --match`.
  function explain(filter, topic) {
    if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) {
      return [false, 'a topic starting with $ is not matched by a filter starting with a wildcard'];
    }
    const t = topic.split('/');
    const f = filter.split('/');
    const plus = [];
    for (let at = 0; at < f.length; at++) {
      if (f[at] === '#') {
        const rest = t.slice(at);
        if (at === 0) return [true, "# stands for any topic, here '" + rest.join('/') + "'"];
        let why = plus.length ? 'each + stands for one level: ' + quoted(plus) + '; ' : '';
        if (rest.length === 0) why += '# also stands for no level at all: the parent topic itself';
        else if (rest.length === 1 && rest[0] === '') why += '# stands for the rest, one empty level';
        else why += "# stands for the rest, '" + rest.join('/') + "'";
        return [true, why];
      }
      if (at >= t.length) {
        const atLeast = filter.endsWith('#');
        const needs = f.length - (atLeast ? 1 : 0);
        return [false, 'the topic has ' + t.length + ' level' + (t.length === 1 ? '' : 's') +
          ', the filter needs ' + (atLeast ? 'at least ' : '') + needs];
      }
      if (f[at] === '+') plus.push(t[at]);
      else if (f[at] !== t[at]) {
        return [false, 'level ' + (at + 1) + " is '" + t[at] + "', the filter wants '" + f[at] + "'"];
      }
    }
    if (t.length > f.length) {
      return [false, "the topic goes on after the filter's " + f.length + ' level' +
        (f.length === 1 ? '' : 's') + " ('" + t.slice(f.length).join('/') + "'); only # covers more levels"];
    }
    return [true, plus.length ? 'each + stands for one level: ' + quoted(plus) : 'the same levels'];
  }

  // ---- What the page shows --------------------------------------------------

  const MAX_TOPICS = 5000; // beyond this, topics are counted but not drawn
  const topics = new Map(); // topic -> record of its last message
  const dirty = new Set(); // records whose row needs drawing
  let dropped = 0;
  let received = 0;
  let receivedThisSecond = 0;
  let rate = 0;
  let selected = null;
  let matchDirty = false;
  const root = { children: new Map(), ul: $('tree') };

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // The payload as one line of text: UTF-8 as it is, anything else in hex.
  function preview(payload, limit) {
    let text;
    try {
      // Only what can be shown is decoded (a UTF-8 character is at most 4 bytes);
      // `stream` leaves a character cut at the end of the prefix for later.
      const prefix = payload.length > limit * 4 ? payload.subarray(0, limit * 4) : payload;
      text = new TextDecoder('utf-8', { fatal: true }).decode(prefix, { stream: prefix !== payload });
    } catch (error) {
      const hex = Array.from(payload.subarray(0, limit / 2), (b) => b.toString(16).padStart(2, '0')).join('');
      return '0x' + hex + (payload.length > limit / 2 ? '…' : '') + ' (' + payload.length + ' bytes, not UTF-8)';
    }
    if (text.length > limit) text = text.slice(0, limit) + '…';
    return text;
  }

  // Names in the tree: numbers in order (2 before 10), as people count.
  const naturally = new Intl.Collator('en', { numeric: true });

  // The tree node of `topic`, made (with its parents) on first use.
  function node(topic) {
    let parent = root;
    let path = '';
    for (const [i, level] of topic.split('/').entries()) {
      path = i === 0 ? level : path + '/' + level;
      let child = parent.children.get(level);
      if (!child) {
        child = { children: new Map(), path, record: null };
        child.li = element('li');
        child.row = element('div', 'row');
        child.row.dataset.topic = path;
        child.toggle = element('span', 'toggle', '');
        child.name = element('span', level === '' ? 'name empty' : 'name', level === '' ? '(empty level)' : level);
        child.payload = element('span', 'payload');
        child.meta = element('span', 'meta');
        child.row.append(child.toggle, child.name, child.payload, child.meta);
        child.ul = element('ul');
        child.li.append(child.row, child.ul);
        child.row.addEventListener('click', () => choose(child));
        child.toggle.addEventListener('click', (event) => {
          event.stopPropagation();
          child.li.classList.toggle('collapsed');
          child.toggle.textContent = child.li.classList.contains('collapsed') ? '▸' : '▾';
        });
        // Siblings in name order (found by binary search in the parent's sorted
        // keys); at the top, the broker's own $ topics last and folded, so that
        // the application's topics come first.
        const last = parent === root && level.startsWith('$');
        const keys = parent.sorted || (parent.sorted = []);
        let low = 0;
        let high = keys.length;
        while (low < high) {
          const middle = (low + high) >> 1;
          const other = keys[middle];
          const earlier = other.last !== last ? !other.last : naturally.compare(other.name, level) < 0;
          if (earlier) low = middle + 1; else high = middle;
        }
        parent.ul.insertBefore(child.li, low < keys.length ? keys[low].node.li : null);
        keys.splice(low, 0, { last, name: level, node: child });
        parent.children.set(level, child);
        if (parent === root && level.startsWith('$')) child.li.classList.add('collapsed');
        if (parent.toggle && parent.toggle.textContent === '') {
          parent.toggle.textContent = parent.li.classList.contains('collapsed') ? '▸' : '▾';
        }
      }
      parent = child;
    }
    return parent;
  }

  function onMessage(message) {
    received++;
    receivedThisSecond++;
    chartInput(message);
    let record = topics.get(message.topic);
    if (!record) {
      if (topics.size >= MAX_TOPICS) { dropped++; return; }
      record = { topic: message.topic, count: 0, window: 0, rate: 0 };
      topics.set(message.topic, record);
      matchDirty = true;
    }
    Object.assign(record, message, { at: new Date() });
    record.count++;
    record.window++;
    dirty.add(record);
  }

  function drawRow(record) {
    const n = record.node || (record.node = node(record.topic));
    n.record = record;
    n.payload.textContent = preview(record.payload, 120);
    n.meta.textContent = '';
    n.meta.append(element('span', 'badge', 'QoS ' + record.qos));
    if (record.retain) n.meta.append(element('span', 'badge retained', 'retained'));
    n.meta.append(element('span', 'count', record.count + ' msg'));
    if (record.rate) n.meta.append(element('span', 'rate', record.rate + '/s'));
    if (selected === n) drawDetail();
  }

  function choose(n) {
    if (selected) selected.row.classList.remove('selected');
    selected = n;
    n.row.classList.add('selected');
    $('pub-topic').value = n.path;
    drawDetail();
  }

  function drawDetail() {
    const record = selected && selected.record;
    $('detail-empty').hidden = !!record;
    $('detail').hidden = !record;
    if (!record) return;
    $('detail-topic').textContent = record.topic;
    $('detail-meta').textContent = 'QoS ' + record.qos + (record.retain ? ', retained' : '') + ', ' +
      record.payload.length + ' bytes, ' + record.count + (record.count === 1 ? ' message' : ' messages') + ', last at ' + record.at.toLocaleTimeString();
    $('detail-payload').textContent = preview(record.payload, 20000);
    const table = $('detail-properties');
    table.textContent = '';
    for (const [id, value] of record.properties) {
      const tr = element('tr');
      let text;
      if (PROPERTIES[id][1] === 'pair') text = value[0] + ' = ' + value[1];
      else if (value instanceof Uint8Array) text = preview(value, 200);
      else text = String(value);
      tr.append(element('td', '', PROPERTIES[id][0]), element('td', '', text));
      table.append(tr);
    }
  }

  // ---- Filter matcher ------------------------------------------------------

  function drawMatches() {
    matchDirty = false;
    const filter = $('match-filter').value;
    const hits = $('match-hits');
    const misses = $('match-misses');
    hits.textContent = '';
    misses.textContent = '';
    for (const row of document.querySelectorAll('.tree .row.match')) row.classList.remove('match');
    if (filter === '') { $('match-summary').textContent = ''; return; }
    const problem = filterProblem(filter);
    if (problem) { $('match-summary').textContent = filter + ' is not a valid filter: ' + problem + '.'; return; }
    const shared = sharedParts(filter);
    const matching = shared ? shared.filter : filter;
    const item = (topic, why) => {
      const li = element('li');
      li.dataset.topic = topic;
      li.append(element('span', '', topic), element('span', 'why', ' — ' + why));
      return li;
    };
    let matched = 0;
    const sorted = [...topics.keys()].sort();
    for (const topic of sorted) {
      const [yes, why] = explain(matching, topic);
      if (yes) {
        matched++;
        if (hits.childElementCount < 500) hits.append(item(topic, why));
        const n = topics.get(topic).node;
        if (n) n.row.classList.add('match');
      } else if (misses.childElementCount < 500) {
        misses.append(item(topic, why));
      }
    }
    $('match-summary').textContent = 'A subscription to ' + filter + ' would receive ' + matched +
      ' of the ' + sorted.length + ' topics seen' +
      (shared ? ', each message going to one member of group ' + shared.group + '.' : '.');
  }

  // ---- $SYS charts -----------------------------------------------------------

  const CHARTS = [
    { topic: '$SYS/broker/clients/connected', title: 'clients connected' },
    { topic: '$SYS/broker/publish/messages/received', title: 'messages in /s', rate: true },
    { topic: '$SYS/broker/publish/messages/sent', title: 'messages out /s', rate: true },
    { topic: '$SYS/broker/subscriptions/count', title: 'subscriptions' },
    { topic: '$SYS/broker/retained messages/count', title: 'retained messages' },
    { topic: '$SYS/broker/messages/stored', title: 'messages stored' },
  ];
  const POINTS = 60;

  for (const chart of CHARTS) {
    chart.values = [];
    chart.box = element('div', 'chart');
    chart.box.dataset.topic = chart.topic;
    chart.value = element('div', 'value', '–');
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('viewBox', '0 0 ' + (POINTS - 1) + ' 36');
    svg.setAttribute('preserveAspectRatio', 'none');
    chart.line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    chart.line.setAttribute('vector-effect', 'non-scaling-stroke');
    svg.append(chart.line);
    chart.box.append(element('div', 'title', chart.title), chart.value, svg);
    $('charts').append(chart.box);
  }

  // The broker publishes its figures every sys_interval, each only when it
  // changed; $SYS/broker/uptime changes every time, so its spacing is the interval.
  let sysInterval = 0;
  let lastUptime = 0;

  // Keeps each chart's latest figure; sampleCharts takes one point a second.
  function chartInput(message) {
    const now = performance.now();
    if (message.topic === '$SYS/broker/uptime') {
      if (lastUptime) sysInterval = now - lastUptime;
      lastUptime = now;
      return;
    }
    const chart = CHARTS.find((c) => c.topic === message.topic);
    if (!chart) return;
    const value = Number(preview(message.payload, 40));
    if (!Number.isFinite(value)) return;
    if (chart.rate && chart.latest !== undefined && now > chart.at) {
      // The counter moved within the last interval (it would have been published
      // earlier otherwise).
      chart.perSecond = Math.max(0, (value - chart.latest) * 1000 / (sysInterval || now - chart.at));
    }
    chart.latest = value;
    chart.at = now;
  }

  function sampleCharts() {
    const now = performance.now();
    for (const chart of CHARTS) {
      let point = chart.latest;
      if (chart.rate) {
        // No new figure for longer than an interval: the counter did not move.
        const quiet = now - chart.at > 1.5 * (sysInterval || 10000) + 500;
        point = chart.perSecond === undefined ? undefined : quiet ? 0 : chart.perSecond;
      }
      if (point === undefined) continue;
      chart.values.push(point);
      if (chart.values.length > POINTS) chart.values.shift();
      chart.dirty = true;
    }
  }

  function drawChart(chart) {
    chart.dirty = false;
    const values = chart.values;
    const latest = values[values.length - 1];
    chart.value.textContent = Number.isInteger(latest) ? String(latest) : latest.toFixed(1);
    const top = Math.max(...values, 1);
    const offset = POINTS - values.length;
    chart.line.setAttribute('points', values.map((v, i) =>
      (offset + i) + ',' + (35 - (v / top) * 34).toFixed(2)).join(' '));
    chart.box.dataset.points = String(values.length);
    chart.box.dataset.latest = String(latest);
  }

  // ---- Drawing, batched: at most 4 times a second, whatever the message rate --

  setInterval(() => {
    for (const record of dirty) drawRow(record);
    dirty.clear();
    for (const chart of CHARTS) if (chart.dirty) drawChart(chart);
    if (matchDirty) drawMatches();
    $('totals').textContent = topics.size + ' topics, ' + received + ' messages, ' + rate + ' msg/s';
    $('tree-note').textContent = dropped
      ? dropped + ' messages on topics beyond the first ' + MAX_TOPICS + ' are counted only.' : '';
  }, 250);

  setInterval(() => {
    sampleCharts();
    rate = receivedThisSecond;
    receivedThisSecond = 0;
    for (const record of topics.values()) {
      if (record.window === 0 && record.rate === 0) continue;
      record.rate = record.window;
      record.window = 0;
      dirty.add(record);
    }
  }, 1000);

  $('match-filter').addEventListener('input', () => { matchDirty = true; });

  // ---- The connection ----------------------------------------------------------

  let client = null;
  let login = {};
  let retry = 1000;
  let retryTimer = 0;

  function status(state, text) {
    const el = $('status');
    el.dataset.state = state;
    el.textContent = text;
  }

  // One connection at a time: a new one replaces the last and any retry it had
  // scheduled, and events from a replaced connection are ignored.
  function connect() {
    clearTimeout(retryTimer);
    if (client) {
      client.replaced = true;
      client.close();
    }
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    status('connecting', 'connecting');
    const me = new Client(scheme + '//' + location.host + '/mqtt', login, {
      connected: () => {
        if (me.replaced) return;
        retry = 1000;
        $('login').hidden = true;
        status('connected', 'connected');
        // QoS 2 and Retain As Published (0x08): each message arrives with the QoS
        // and retained flag it was published with.
        me.subscribe([['#', 0x0A], ['$SYS/#', 0x08]]).then((result) => {
          const refused = (result.codes || []).map((code, i) => [['#', '$SYS/#'][i], code])
            .filter(([, code]) => code >= 0x80);
          if (refused.length && !me.replaced) {
            status('connected', 'connected; refused: ' +
              refused.map(([filter, code]) => filter + ' (' + reason(code) + ')').join(', '));
          }
        });
      },
      refused: (code) => {
        if (me.replaced) return;
        me.refusedCode = code;
        status('refused', 'refused: ' + reason(code));
        if (code === 0x86 || code === 0x87) $('login').hidden = false;
      },
      message: (message) => { if (!me.replaced) onMessage(message); },
      closed: (why) => {
        if (me.replaced) return;
        // A refused login waits for the form.
        if (me.refusedCode === 0x86 || me.refusedCode === 0x87) return;
        status('closed', why + '; retrying');
        retryTimer = setTimeout(connect, retry);
        retry = Math.min(retry * 2, 10000);
      },
    });
    client = me;
  }

  $('login').addEventListener('submit', (event) => {
    event.preventDefault();
    login = { user: $('login-user').value, password: $('login-password').value };
    retry = 1000;
    connect();
  });

  // ---- Publishing ----------------------------------------------------------------

  $('publish').addEventListener('submit', (event) => {
    event.preventDefault();
    const result = $('pub-result');
    const show = (text, failed) => { result.textContent = text; result.classList.toggle('failed', failed); };
    const topic = $('pub-topic').value;
    if (topic === '' || topic.includes('+') || topic.includes('#')) {
      show('A topic name has at least one character and no wildcard.', true);
      return;
    }
    if (!client || $('status').dataset.state !== 'connected') { show('Not connected.', true); return; }
    const properties = [];
    if ($('pub-utf8').checked) properties.push([1, 1]);
    const expiry = $('pub-expiry').value;
    if (expiry !== '') properties.push([2, Number(expiry)]);
    if ($('pub-content-type').value) properties.push([3, $('pub-content-type').value]);
    if ($('pub-response-topic').value) properties.push([8, $('pub-response-topic').value]);
    if ($('pub-correlation').value) properties.push([9, encoder.encode($('pub-correlation').value)]);
    for (const line of $('pub-user-properties').value.split('\n')) {
      if (line.trim() === '') continue;
      const split = line.indexOf('=');
      if (split < 0) { show('User property "' + line + '" has no "=".', true); return; }
      properties.push([38, [line.slice(0, split), line.slice(split + 1)]]);
    }
    const qos = Number($('pub-qos').value);
    show('sending…', false);
    client.publish(topic, encoder.encode($('pub-payload').value), qos, $('pub-retain').checked, properties)
      .then((answer) => {
        if (answer.failed) show('Not delivered: ' + answer.failed + '.', true);
        else if (answer.sent) show('Sent at QoS 0: no acknowledgement at this QoS.', false);
        else if (answer.pubrec) show('PUBREC: ' + reason(answer.pubrec) + ', then ' + answer.packet + ': ' + reason(answer.code), answer.code >= 0x80);
        else show(answer.packet + ': ' + reason(answer.code), answer.code >= 0x80);
      });
  });

  connect();
}());
