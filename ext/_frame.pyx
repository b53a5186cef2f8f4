# cython: language_level=3
"""Journal record framing in C: ``u32 length | u32 crc32 | u64 seq | payload``, appended
to the pending group in one call (the journal's per-input cost was three Python-level
struct and crc calls and a concatenation per record).

The crc is CRC-32 (zlib's polynomial, reflected, init and final xor 0xFFFFFFFFU) over the
8 seq bytes then the payload, so files stay readable by ``zlib.crc32``-based readers.
"""
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

DEF HEADER_SIZE = 16

cdef uint32_t _TABLE[8][256]


cdef void _init_table() noexcept:
    # Slicing-by-8 tables of the reflected polynomial 0xEDB88320U.
    cdef uint32_t c, i, k
    for i in range(256):
        c = i
        for k in range(8):
            c = (c >> 1) ^ (0xEDB88320U if c & 1 else 0)
        _TABLE[0][i] = c
    for i in range(256):
        c = _TABLE[0][i]
        for k in range(1, 8):
            c = _TABLE[0][c & 0xFF] ^ (c >> 8)
            _TABLE[k][i] = c


_init_table()


cdef uint32_t _crc_update(uint32_t crc, const uint8_t *p, Py_ssize_t n) noexcept nogil:
    """Running crc (pre-inverted state) over n more bytes."""
    cdef uint32_t lo, hi
    while n >= 8:
        lo = crc ^ (<uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16)
                    | (<uint32_t>p[3] << 24))
        hi = <uint32_t>p[4] | (<uint32_t>p[5] << 8) | (<uint32_t>p[6] << 16) | (<uint32_t>p[7] << 24)
        crc = (_TABLE[7][lo & 0xFF] ^ _TABLE[6][(lo >> 8) & 0xFF] ^ _TABLE[5][(lo >> 16) & 0xFF]
               ^ _TABLE[4][lo >> 24] ^ _TABLE[3][hi & 0xFF] ^ _TABLE[2][(hi >> 8) & 0xFF]
               ^ _TABLE[1][(hi >> 16) & 0xFF] ^ _TABLE[0][hi >> 24])
        p += 8
        n -= 8
    while n > 0:
        crc = _TABLE[0][(crc ^ p[0]) & 0xFF] ^ (crc >> 8)
        p += 1
        n -= 1
    return crc


cdef inline void _put32(uint8_t *p, uint32_t v) noexcept nogil:
    p[0] = v & 0xFF
    p[1] = (v >> 8) & 0xFF
    p[2] = (v >> 16) & 0xFF
    p[3] = v >> 24


cdef inline void _put64(uint8_t *p, uint64_t v) noexcept nogil:
    _put32(p, <uint32_t>(v & 0xFFFFFFFFU))
    _put32(p + 4, <uint32_t>(v >> 32))


def crc32(bytes data, uint32_t value=0) -> int:
    """``zlib.crc32(data, value)``, computed here (the tests hold the two equal)."""
    cdef uint32_t crc = _crc_update(value ^ 0xFFFFFFFFU, <const uint8_t *>PyBytes_AS_STRING(data),
                                    PyBytes_GET_SIZE(data))
    return crc ^ 0xFFFFFFFFU


def append_record(bytearray buf, uint64_t seq, bytes payload) -> None:
    """Append one framed record (header then payload) to ``buf``. The caller checks the
    payload's size against the journal's limit first (it must fit the u32 length)."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(payload)
    if n > 0xFFFFFFFFU:
        raise ValueError(f"record of {n} bytes does not fit the u32 length")
    cdef Py_ssize_t at = PyByteArray_GET_SIZE(buf)
    if PyByteArray_Resize(buf, at + HEADER_SIZE + n) < 0:
        raise MemoryError()
    cdef uint8_t *p = <uint8_t *>PyByteArray_AS_STRING(buf) + at
    cdef const uint8_t *src = <const uint8_t *>PyBytes_AS_STRING(payload)
    _put64(p + 8, seq)
    cdef uint32_t crc = _crc_update(0xFFFFFFFFU, p + 8, 8)
    crc = _crc_update(crc, src, n) ^ 0xFFFFFFFFU
    _put32(p, <uint32_t>n)
    _put32(p + 4, crc)
    memcpy(p + HEADER_SIZE, src, n)
