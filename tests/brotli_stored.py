"""A valid brotli stream of uncompressed meta-blocks (RFC 7932 §9.2), with the stdlib alone.

Enough to give a file a name.br sibling that a browser really decodes, in
tests, without the brotli library: the bytes are not smaller, only valid.
"""

CHUNK = 1 << 16     # MLEN of a meta-block with four nibbles: at most 65536


def compress_stored(data: bytes) -> bytes:
    out = bytearray()
    bits = []

    def put(value, count):          # brotli packs fields least significant bit first
        bits.extend((value >> i) & 1 for i in range(count))

    def flush():                    # pad to a byte boundary with zeros
        bits.extend([0] * (-len(bits) % 8))
        for start in range(0, len(bits), 8):
            out.append(sum(bit << i for i, bit in enumerate(bits[start:start + 8])))
        bits.clear()

    put(0, 1)                                   # WBITS: 0 = a 64 KiB window
    for start in range(0, len(data), CHUNK):
        chunk = data[start:start + CHUNK]
        put(0, 1)                               # ISLAST: no
        put(0, 2)                               # MNIBBLES: 4
        put(len(chunk) - 1, 16)                 # MLEN - 1
        put(1, 1)                               # ISUNCOMPRESSED
        flush()
        out += chunk
    put(1, 1)                                   # ISLAST
    put(1, 1)                                   # ISLASTEMPTY
    flush()
    return bytes(out)
