"""The long connection's wire format: one protobuf ``pbbp2.Frame`` per binary WebSocket message.

::

    message Header { required string key = 1; required string value = 2; }
    message Frame {
      required uint64 SeqID = 1;   required uint64 LogID = 2;
      required int32 service = 3;  required int32 method = 4;     // 0 control, 1 data
      repeated Header headers = 5;
      optional string payload_encoding = 6;  optional string payload_type = 7;
      optional bytes payload = 8;            optional string LogIDNew = 9;
    }

A small codec written for the fake (no protobuf library needed); the tests check it
byte for byte against the ``Frame`` class lark-oapi ships. Fields are written in field-number
order, as protobuf does, and unknown fields are skipped when reading.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CONTROL", "DATA", "Frame", "FrameError"]

CONTROL = 0
DATA = 1
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_MASK64 = (1 << 64) - 1


class FrameError(ValueError):
    """Bytes that are not a valid frame."""


@dataclass
class Frame:
    """One frame; ``headers`` keep their order (the SDK echoes them in its acks)."""

    seq_id: int = 0
    log_id: int = 0
    service: int = 0
    method: int = CONTROL
    headers: list[tuple[str, str]] = field(default_factory=list)
    payload_encoding: str | None = None
    payload_type: str | None = None
    payload: bytes | None = None
    log_id_new: str | None = None

    def header(self, key: str) -> str | None:
        """The first header called ``key``."""
        return next((value for name, value in self.headers if name == key), None)

    def encode(self) -> bytes:
        out = bytearray()
        numbers = ((1, self.seq_id), (2, self.log_id), (3, self.service), (4, self.method))
        for number, integer in numbers:
            _tag(out, number, _VARINT)
            _varint(out, integer & _MASK64)  # int32: negatives take ten bytes
        for key, value in self.headers:
            inner = bytearray()
            _bytes(inner, 1, key.encode("utf-8"))
            _bytes(inner, 2, value.encode("utf-8"))
            _bytes(out, 5, bytes(inner))
        for text_number, text in ((6, self.payload_encoding), (7, self.payload_type)):
            if text is not None:
                _bytes(out, text_number, text.encode("utf-8"))
        if self.payload is not None:
            _bytes(out, 8, self.payload)
        if self.log_id_new is not None:
            _bytes(out, 9, self.log_id_new.encode("utf-8"))
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> Frame:
        frame = cls()
        for number, value in _fields(data):
            if number in (1, 2, 3, 4) and not isinstance(value, int):
                raise FrameError(f"field {number} must be a varint")
            if number in (5, 6, 7, 8, 9) and not isinstance(value, bytes):
                raise FrameError(f"field {number} must be length-delimited")
            if number == 1:
                frame.seq_id = int(value)
            elif number == 2:
                frame.log_id = int(value)
            elif number == 3:
                frame.service = _int32(int(value))
            elif number == 4:
                frame.method = _int32(int(value))
            elif number == 5:
                frame.headers.append(_header(bytes(value)))
            elif number == 6:
                frame.payload_encoding = _text(bytes(value))
            elif number == 7:
                frame.payload_type = _text(bytes(value))
            elif number == 8:
                frame.payload = bytes(value)
            elif number == 9:
                frame.log_id_new = _text(bytes(value))
        return frame


def _tag(out: bytearray, number: int, wire: int) -> None:
    _varint(out, number << 3 | wire)


def _varint(out: bytearray, value: int) -> None:
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _bytes(out: bytearray, number: int, value: bytes) -> None:
    _tag(out, number, _LEN)
    _varint(out, len(value))
    out.extend(value)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    for _ in range(10):
        if pos >= len(data):
            raise FrameError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & _MASK64, pos
        shift += 7
    raise FrameError("varint longer than ten bytes")


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == _VARINT:
            value, pos = _read_varint(data, pos)
        elif wire == _LEN:
            size, pos = _read_varint(data, pos)
            if pos + size > len(data):
                raise FrameError("truncated field")
            value, pos = data[pos : pos + size], pos + size
        elif wire in (_I64, _I32):
            width = 8 if wire == _I64 else 4
            if pos + width > len(data):
                raise FrameError("truncated field")
            value, pos = int.from_bytes(data[pos : pos + width], "little"), pos + width
        else:
            raise FrameError(f"unsupported wire type {wire}")
        fields.append((number, value))
    return fields


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FrameError("a string field is not UTF-8") from error


def _header(data: bytes) -> tuple[str, str]:
    key = value = ""
    for number, item in _fields(data):
        if not isinstance(item, bytes):
            continue
        if number == 1:
            key = _text(item)
        elif number == 2:
            value = _text(item)
    return key, value
