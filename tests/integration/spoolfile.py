"""An independent reader of celer's spool files (docs/spool-format.md, version 1).

Written from the document, not from src/spool, so that the integration tests
check what celerd stores against the specification. It reads a whole file,
checks every CRC (the body's too), classifies it as complete, incomplete or
corrupt (section 6) and returns the envelope, body, PREPEND bytes and folded
PROGRESS state.

    msg = spoolfile.read_path(path)        # raises SpoolError unless complete
    msg.sender, msg.rcpts[0].addr, msg.body, msg.prepend, msg.headers()

Only the standard library is used; CRC32C is computed with a table here.
"""
import pathlib
import re
import struct

MAGIC = b"CELRSPL"
VERSION = 1
MAX_PAYLOAD = 64 * 1024 * 1024
MAX_RCPTS = 100_000

T_ENVELOPE, T_BODY, T_PREPEND, T_END, T_PROGRESS = b"E"[0], b"B"[0], b"H"[0], b"Z"[0], b"P"[0]
BODY_STREAMING = 0xFFFFFFFFFFFFFFFF

BODY_7BIT, BODY_8BITMIME, BODY_BINARYMIME = 0, 1, 2
BODY_TYPE_NAMES = {BODY_7BIT: "7BIT", BODY_8BITMIME: "8BITMIME", BODY_BINARYMIME: "BINARYMIME"}
RET_FULL, RET_HDRS = 1, 2
NOTIFY_NEVER, NOTIFY_SUCCESS, NOTIFY_FAILURE, NOTIFY_DELAY = 1, 2, 4, 8
FLAG_SMTPUTF8, FLAG_PRIORITY = 1, 2
STATE_PENDING, STATE_DELIVERED, STATE_FAILED = 0, 1, 2

ID_RE = re.compile(r"^([0-9A-F]{2})/([0-9A-F]{2})-([1-9][0-9]{0,9})-([0-9A-F]{8})$")

# ---- CRC-32C (Castagnoli), reflected polynomial 0x82F63B78 ----


def _make_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _make_table()


def crc32c(data, crc=0):
    """CRC-32C of data; pass a previous result as crc to continue it."""
    c = crc ^ 0xFFFFFFFF
    t = _TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

# ---- ids and paths ----


def parse_id(msgid):
    """(AA, BB, pid, seq) of an id, strictly; raises ValueError."""
    m = ID_RE.match(msgid)
    if not m:
        raise ValueError(f"not a message id: {msgid!r}")
    aa, bb, pid, seq = m.group(1), m.group(2), int(m.group(3)), int(m.group(4), 16)
    if pid > 2147483647 or aa != f"{(seq >> 16) & 0xFF:02X}" or bb != f"{(seq >> 8) & 0xFF:02X}":
        raise ValueError(f"not a message id: {msgid!r}")
    return aa, bb, pid, seq


def id_path(spoolbase, msgid):
    """The file of message AA/BB-PID-SEQ: spoolbase/AA/BB/PID-SEQ."""
    aa, bb, _, _ = parse_id(msgid)
    return pathlib.Path(spoolbase) / aa / bb / msgid.split("-", 1)[1]


def path_id(path):
    """The id recovered from a file's path (its last three components)."""
    p = pathlib.Path(path)
    msgid = f"{p.parent.parent.name}/{p.parent.name}-{p.name}"
    parse_id(msgid)
    return msgid


def list_messages(spoolbase):
    """Ids of every file in the spool whose name is a message id."""
    out = []
    base = pathlib.Path(spoolbase)
    if not base.is_dir():
        return out
    for p in base.glob("[0-9A-F][0-9A-F]/[0-9A-F][0-9A-F]/*"):
        try:
            out.append(path_id(p))
        except ValueError:
            continue
    return sorted(out)


# ---- errors and results ----


class SpoolError(Exception):
    """The file is not a complete message: .status is 'incomplete' or 'corrupt'."""

    def __init__(self, status, offset, what):
        super().__init__(f"{status} at offset {offset}: {what}")
        self.status = status
        self.offset = offset
        self.what = what


class Rcpt:
    def __init__(self):
        self.addr = None
        self.orcpt_type = None
        self.orcpt_addr = None
        self.notify = None     # bit set, None = not given
        self.state = STATE_PENDING
        self.binding_group = None
        self.binding = None

    def notify_names(self):
        if self.notify is None:
            return None
        names = [(NOTIFY_NEVER, "NEVER"), (NOTIFY_SUCCESS, "SUCCESS"),
                 (NOTIFY_FAILURE, "FAILURE"), (NOTIFY_DELAY, "DELAY")]
        return {n for bit, n in names if self.notify & bit}

    def __repr__(self):
        return (f"Rcpt(addr={self.addr!r}, notify={self.notify}, "
                f"orcpt={self.orcpt_type!r};{self.orcpt_addr!r})")


class Message:
    def __init__(self):
        self.id = None
        self.ctime_us = None
        self.sender = None
        self.rcpts = []
        self.ret = None
        self.envid = None
        self.body_type = None
        self.flags = 0
        self.protocol = None
        self.source_ip = None
        self.helo = None
        self.auth_user = None
        self.listener = None
        self.binding_group = None
        self.binding = None
        self.body = b""
        self.body_off = None
        self.prepend = b""
        self.end_off = None
        # folded PROGRESS
        self.attempts = None
        self.next_attempt = None
        self.response = None
        self.progress_records = 0
        self.valid_len = None
        self.tail_damaged = False

    @property
    def smtputf8(self):
        return bool(self.flags & FLAG_SMTPUTF8)

    @property
    def body_type_name(self):
        return BODY_TYPE_NAMES.get(self.body_type)

    @property
    def data(self):
        """What delivery sends: the PREPEND lines, then the body."""
        return self.prepend + self.body

    def prepend_fields(self):
        """The PREPEND lines as (name, value) pairs, continuation lines unfolded
        into the value (CRLF kept)."""
        return _fields(self.prepend)

    def prepend_field(self, name):
        vals = [v for n, v in self.prepend_fields() if n.lower() == name.lower()]
        return vals

    def __repr__(self):
        return f"Message(id={self.id!r}, sender={self.sender!r}, rcpts={self.rcpts!r})"


def _fields(block):
    out = []
    for line in block.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + b"\r\n" + line)
            continue
        name, _, value = line.partition(b":")
        out.append((name.decode("latin-1"), value.lstrip(b" ")))
    return [(n, v.decode("utf-8", "replace")) for n, v in out]


# ---- field lists ----


def _leb128(buf, pos, end):
    value = shift = 0
    for i in range(5):
        if pos >= end:
            raise ValueError("field length runs past its container")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            if i > 0 and b == 0:
                raise ValueError("field length not in shortest form")
            if value >= 1 << 32:
                raise ValueError("field length too large")
            return value, pos
    raise ValueError("field length longer than 5 bytes")


def fields(buf):
    """(tag, value bytes) pairs of a field list; raises ValueError."""
    out = []
    pos, end = 0, len(buf)
    while pos < end:
        tag = buf[pos]
        length, pos = _leb128(buf, pos + 1, end)
        if length > end - pos:
            raise ValueError(f"field 0x{tag:02x} runs past its container")
        out.append((tag, bytes(buf[pos:pos + length])))
        pos += length
    return out


def _u8(v):
    if len(v) != 1:
        raise ValueError("u8 of wrong size")
    return v[0]


def _u32(v):
    if len(v) != 4:
        raise ValueError("u32 of wrong size")
    return struct.unpack("<I", v)[0]


def _i64(v):
    if len(v) != 8:
        raise ValueError("i64 of wrong size")
    return struct.unpack("<q", v)[0]


def _once(seen, tag, repeatable=()):
    if tag in seen and tag not in repeatable:
        raise ValueError(f"tag 0x{tag:02x} twice")
    seen.add(tag)


def _decode_rcpt(buf):
    r = Rcpt()
    seen = set()
    for tag, v in fields(buf):
        if tag in (1, 2, 3, 4):
            _once(seen, tag)
        if tag == 1:
            r.addr = v.decode("utf-8", "surrogateescape")
        elif tag == 2:
            r.orcpt_type = v.decode("ascii", "surrogateescape")
        elif tag == 3:
            r.orcpt_addr = v.decode("utf-8", "surrogateescape")
        elif tag == 4:
            n = _u8(v)
            if n == 0 or n & ~0x0F or (n & NOTIFY_NEVER and n != NOTIFY_NEVER):
                raise ValueError(f"bad NOTIFY bits 0x{n:02x}")
            r.notify = n
    if r.addr is None:
        raise ValueError("RCPT without ADDR")
    if (r.orcpt_type is None) != (r.orcpt_addr is None):
        raise ValueError("ORCPT_TYPE and ORCPT_ADDR not both present")
    return r


def _decode_envelope(buf, m):
    seen = set()
    strs = {1: "id", 3: "sender", 6: "envid", 9: "protocol", 10: "source_ip", 11: "helo",
            12: "auth_user", 13: "listener", 14: "binding_group", 15: "binding"}
    for tag, v in fields(buf):
        if 1 <= tag <= 15:
            _once(seen, tag, repeatable=(4,))
        if tag in strs:
            setattr(m, strs[tag], v.decode("utf-8", "surrogateescape"))
        elif tag == 2:
            m.ctime_us = _i64(v)
        elif tag == 4:
            m.rcpts.append(_decode_rcpt(v))
            if len(m.rcpts) > MAX_RCPTS:
                raise ValueError("too many recipients")
        elif tag == 5:
            m.ret = _u8(v)
        elif tag == 7:
            m.body_type = _u8(v)
        elif tag == 8:
            m.flags = _u32(v)
        # unknown tags (0, 16...) are skipped
    for tag, name in ((1, "ID"), (2, "CTIME"), (3, "SENDER"), (7, "BODY_TYPE")):
        if tag not in seen:
            raise ValueError(f"mandatory {name} missing")
    parse_id(m.id)


def _fold_progress(buf, m):
    seen = set()
    for tag, v in fields(buf):
        if 1 <= tag <= 6:
            _once(seen, tag, repeatable=(6,))
        if tag == 1:
            m.attempts = _u32(v)
        elif tag == 2:
            m.next_attempt = _i64(v)
        elif tag == 3:
            m.response = v.decode("utf-8", "replace")
        elif tag == 4:
            m.binding_group = v.decode()
        elif tag == 5:
            m.binding = v.decode()
        elif tag == 6:
            index = state = None
            rseen = set()
            upd = {}
            for rt, rv in fields(v):
                if 1 <= rt <= 4:
                    _once(rseen, rt)
                if rt == 1:
                    index = _u32(rv)
                elif rt == 2:
                    state = _u8(rv)
                elif rt == 3:
                    upd["binding_group"] = rv.decode()
                elif rt == 4:
                    upd["binding"] = rv.decode()
            if index is None or index >= len(m.rcpts):
                raise ValueError("bad recipient index in PROGRESS")
            if state is not None:
                m.rcpts[index].state = state
            for k, val in upd.items():
                setattr(m.rcpts[index], k, val)
    m.progress_records += 1


# ---- records ----


def _zeros(data, start):
    return not any(data[start:])


def _record(data, pos):
    """(type, payload, end, crc_ok) of the record at pos, or None when even its
    5-byte header runs past the end. payload is None when the record is cut off
    (end beyond the file) or its length is impossible (end == -1)."""
    if pos + 5 > len(data):
        return None
    rtype = data[pos]
    length = struct.unpack_from("<I", data, pos + 1)[0]
    if length > MAX_PAYLOAD:
        return rtype, None, -1, False
    end = pos + 5 + length + 4
    if end > len(data):
        return rtype, None, end, False
    payload = data[pos + 5:pos + 5 + length]
    crc = struct.unpack_from("<I", data, pos + 5 + length)[0]
    return rtype, payload, end, crc == crc32c(data[pos:pos + 5 + length])


def decode(data, expect_id=None):
    """Decodes a whole spool file; returns a Message or raises SpoolError."""
    data = bytes(data)
    m = Message()

    def fail(pos, what, status="corrupt"):
        if status == "corrupt" and _zeros(data, pos):
            status = "incomplete"
        raise SpoolError(status, pos, what)

    # 1. header
    if len(data) < 8:
        if (MAGIC + bytes([VERSION]))[:len(data)] == data:
            raise SpoolError("incomplete", 0, "short header")
        raise SpoolError("corrupt", 0, "bad header")
    if data[:7] != MAGIC or data[7] != VERSION:
        raise SpoolError("corrupt", 0, "bad magic or version")
    pos = 8

    def need(pos, rtype, name, size=None):
        rec = _record(data, pos)
        if rec is None:
            raise SpoolError("incomplete", pos, f"{name} cut off")
        if rec[1] is None:
            if rec[2] == -1:
                fail(pos, f"{name} length beyond the limit")
            raise SpoolError("incomplete", pos, f"{name} cut off")
        t, payload, end, ok = rec
        if not ok:
            fail(pos, f"{name} CRC")
        if t != rtype:
            fail(pos, f"expected {name}, found type 0x{t:02x}")
        if size is not None and len(payload) != size:
            fail(pos, f"{name} payload of {len(payload)} bytes")
        return payload, end

    # 2. ENVELOPE and BODY
    env, pos = need(pos, T_ENVELOPE, "ENVELOPE")
    try:
        _decode_envelope(env, m)
    except ValueError as e:
        fail(8, f"ENVELOPE: {e}")
    body_hdr, pos = need(pos, T_BODY, "BODY", 8)
    body_len = struct.unpack("<Q", body_hdr)[0]
    if body_len == BODY_STREAMING:
        raise SpoolError("incomplete", pos - 17, "body still streaming")
    m.body_off = pos
    if pos + body_len + 4 > len(data):
        raise SpoolError("incomplete", pos, "body runs past the end of the file")
    m.body = data[pos:pos + body_len]
    body_crc = struct.unpack_from("<I", data, pos + body_len)[0]
    if crc32c(m.body) != body_crc:
        fail(pos, "body CRC")
    pos += body_len + 4

    # 3. PREPEND .. END
    prepend_seen = False
    while True:
        rec = _record(data, pos)
        if rec is None or rec[1] is None:
            if rec is not None and rec[2] == -1:
                fail(pos, "record length beyond the limit")
            raise SpoolError("incomplete", pos, "record cut off before END")
        t, payload, end, ok = rec
        if not ok:
            fail(pos, f"record 0x{t:02x} CRC")
        if t == T_PREPEND:
            if prepend_seen:
                fail(pos, "second PREPEND")
            prepend_seen = True
            m.prepend = payload
        elif t == T_END:
            if not prepend_seen:
                fail(pos, "END before PREPEND")
            if len(payload) != 16:
                fail(pos, "END of wrong size")
            e_off, e_body_crc, e_file_crc = struct.unpack("<QII", payload)
            if e_off != pos or e_body_crc != body_crc or e_file_crc != crc32c(data[:pos]):
                fail(pos, "END does not match the file")
            m.end_off = pos
            pos = end
            break
        elif t in (T_ENVELOPE, T_BODY, T_PROGRESS):
            fail(pos, f"record 0x{t:02x} before END")
        pos = end  # unknown types are skipped

    # 4. PROGRESS after END
    m.valid_len = pos
    while pos < len(data):
        rec = _record(data, pos)
        if rec is None or rec[1] is None or not rec[3]:
            end = len(data) if rec is None or rec[1] is None else rec[2]
            if end >= len(data) or _zeros(data, end) or _zeros(data, pos):
                m.tail_damaged = True
                break
            raise SpoolError("corrupt", pos, "damaged record in the middle of the tail")
        t, payload, end, _ = rec
        if t == T_PROGRESS:
            try:
                _fold_progress(payload, m)
            except ValueError as e:
                raise SpoolError("corrupt", pos, f"PROGRESS: {e}")
        elif t in (T_ENVELOPE, T_BODY, T_PREPEND, T_END):
            raise SpoolError("corrupt", pos, f"record 0x{t:02x} after END")
        pos = end
        m.valid_len = pos
    if expect_id is not None and m.id != expect_id:
        raise SpoolError("corrupt", 8, f"envelope id {m.id!r} is not {expect_id!r}")
    return m


def read_path(path):
    """Decodes the file at path, checking the envelope id against the path."""
    p = pathlib.Path(path)
    return decode(p.read_bytes(), expect_id=path_id(p))


def read_id(spoolbase, msgid):
    return read_path(id_path(spoolbase, msgid))


# ---- encoding (only to test this reader against the document's example) ----


def _leb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(tag, value):
    return bytes([tag]) + _leb(len(value)) + value


def record(rtype, payload):
    head = bytes([rtype]) + struct.pack("<I", len(payload)) + payload
    return head + struct.pack("<I", crc32c(head))
