#!/usr/bin/env python3
"""Regenerates the fixtures of tests/unit/test_tlsdec.c: TLS 1.2 and TLS 1.3 connections
between `openssl s_server -rev` and `openssl s_client -keylogfile` on 127.0.0.1, each
recorded by a relay in the middle as one file per direction, plus the key log:

    tests/unit/data/tlsdec-<case>-client.bin   bytes the client sent
    tests/unit/data/tlsdec-<case>-server.bin   bytes the server sent
    tests/unit/data/tlsdec-<case>.keylog       the client's SSLKEYLOGFILE

The client sends CLIENT_LINES (s_client -crlf turns each LF into CRLF), the server answers
each with the line reversed, and the client closes with close_notify. In the "keyupdate"
case the client sends a KeyUpdate that requests one back (s_client's "K" command) between
its two lines. Keys are fresh each run, so the bytes change but what test_tlsdec.c checks
(the decrypted lines, record counts per key phase) does not.

It also writes the seeds of the fuzz target tests/fuzz/fuzz_tlsdec.c from the fixtures
(tests/fuzz/corpus/tlsdec/); --corpus-only does just that, from the fixtures in place.

usage: scripts/gen-tlsdec-fixtures.py [--corpus-only] [SOURCE_DIR]
"""
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time

HOST = "mx.example.test"
CLIENT_LINES = ["EHLO client.example.test", "NOOP"]

# name -> (s_client arguments, key update between the lines)
CASES = {
    "tls12-aes128gcm": (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"], False),
    "tls12-aes256gcm": (["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"], False),
    "tls12-chacha": (["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"], False),
    # OpenSSL offers encrypt_then_mac (RFC 7366) by default; -no_etm gives the classic
    # MAC-then-encrypt layout.
    "tls12-cbc-etm": (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"], False),
    "tls12-cbc-mte": (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA384", "-no_etm"], False),
    "tls13-aes128gcm": (["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"], True),
    "tls13-aes256gcm": (["-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384"], False),
    "tls13-chacha": (["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"], False),
}


def run(args, cwd):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_keys(d):
    """Self-signed P-256 and RSA-2048 certificates (the RSA one only for ECDHE-RSA)."""
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", "ec.key", "-out", "ec.pem", "-days", "30", "-subj",
         "/CN=" + HOST], d)
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rsa.key",
         "-out", "rsa.pem", "-days", "30", "-subj", "/CN=" + HOST], d)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def relay(listener, server_port, record):
    """One connection: client <-> server, each direction's bytes appended to record."""
    cli, _ = listener.accept()
    srv = socket.create_connection(("127.0.0.1", server_port))
    other = {cli: srv, srv: cli}
    name = {cli: "client", srv: "server"}
    live = [cli, srv]
    while live:
        ready, _, _ = select.select(live, [], [], 10)
        if not ready:
            break
        for sock in ready:
            data = sock.recv(65536)
            if not data:
                live.remove(sock)
                try:
                    other[sock].shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            record[name[sock]] += data
            other[sock].sendall(data)
    cli.close()
    srv.close()


def capture(d, client_args, key_update):
    server_port = free_port()
    srv = subprocess.Popen(
        ["openssl", "s_server", "-accept", "127.0.0.1:%d" % server_port, "-cert", "ec.pem",
         "-key", "ec.key", "-dcert", "rsa.pem", "-dkey", "rsa.key", "-rev", "-naccept", "1",
         "-num_tickets", "1"],
        cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    while True:
        line = srv.stdout.readline()
        if not line or line.startswith("ACCEPT"):
            break
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    record = {"client": b"", "server": b""}
    t = threading.Thread(target=relay, args=(listener, server_port, record))
    t.start()
    keylog = os.path.join(d, "keylog.txt")
    if os.path.exists(keylog):
        os.unlink(keylog)
    # -quiet then -no_ign_eof: no chatter, yet the command letters work and end of input
    # closes the connection with close_notify.
    cli = subprocess.Popen(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % listener.getsockname()[1],
         "-servername", HOST, "-quiet", "-no_ign_eof", "-crlf", "-keylogfile", keylog]
        + client_args,
        cwd=d, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for i, text in enumerate(CLIENT_LINES):
        if i and key_update:
            cli.stdin.write(b"K\n")
            cli.stdin.flush()
            time.sleep(0.5)
        cli.stdin.write(text.encode() + b"\n")
        cli.stdin.flush()
        time.sleep(0.5)
    cli.stdin.close()
    cli.wait(timeout=10)
    t.join(timeout=15)
    srv.kill()
    srv.wait()
    listener.close()
    with open(keylog, "rb") as f:
        return record, f.read()


def records(stream):
    """(header, body) of each whole record of a direction's bytes."""
    i = 0
    while i + 5 <= len(stream):
        n = int.from_bytes(stream[i + 3:i + 5], "big")
        yield stream[i:i + 5], stream[i + 5:i + 5 + n]
        i += 5 + n


def server_hello(stream):
    """(TLS 1.3?, cipher suite, random) from the ServerHello at the start of the server's
    bytes."""
    body = stream[5:5 + int.from_bytes(stream[3:5], "big")]
    random = body[6:38]
    i = 4 + 2 + 32
    i += 1 + body[i]
    suite = int.from_bytes(body[i:i + 2], "big")
    i += 3 + 2
    tls13 = False
    while i + 4 <= len(body):
        ext, n = int.from_bytes(body[i:i + 2], "big"), int.from_bytes(body[i + 2:i + 4], "big")
        if ext == 43 and body[i + 4:i + 6] == b"\x03\x04":
            tls13 = True
        i += 4 + n
    return tls13, suite, random


# Fixtures whose seed goes through the TLS reader (tls.h) rather than straight to tlsdec.
VIEW_SEEDS = ("tls12-cbc-etm", "tls13-aes128gcm")


def write_corpus(src):
    """Seeds in fuzz_tlsdec.c's layout: per fixture, the key log without its comment lines
    (the client random must be on the first line), then every record after each side's
    hello; for VIEW_SEEDS also a "view-" seed with every record, for the TLS reader."""
    data = os.path.join(src, "tests", "unit", "data")
    out = os.path.join(src, "tests", "fuzz", "corpus", "tlsdec")
    os.makedirs(out, exist_ok=True)
    for name in CASES:
        base = os.path.join(data, "tlsdec-" + name)
        with open(base + "-client.bin", "rb") as f:
            client = f.read()
        with open(base + "-server.bin", "rb") as f:
            server = f.read()
        with open(base + ".keylog", "rb") as f:
            keylog = b"".join(l for l in f.read().splitlines(True) if not l.startswith(b"#"))
        tls13, suite, random = server_hello(server)
        for view in (False, True):
            if view and name not in VIEW_SEEDS:
                continue
            seed = bytes([(1 if tls13 else 0) | (2 if view else 0)])
            seed += suite.to_bytes(2, "big") + random
            seed += len(keylog).to_bytes(2, "big") + keylog
            client_recs = [(0, r) for r in records(client)]
            server_recs = [(1, r) for r in records(server)]
            if view:
                # The ClientHello, then the server's records, then the client's others.
                order = client_recs[:1] + server_recs + client_recs[1:]
            else:
                order = client_recs[1:] + server_recs[1:]
            for direction, (hdr, body) in order:
                seed += bytes([direction]) + hdr + body
            path = os.path.join(out, ("view-" if view else "") + name)
            with open(path, "wb") as f:
                f.write(seed)
            print("%s: seed of %d bytes" % (path, len(seed)))


def main():
    args = sys.argv[1:]
    corpus_only = "--corpus-only" in args
    args = [a for a in args if a != "--corpus-only"]
    src = args[0] if args else os.path.join(os.path.dirname(__file__), "..")
    if corpus_only:
        write_corpus(src)
        return
    out = os.path.join(src, "tests", "unit", "data")
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        make_keys(d)
        for name, (args, key_update) in CASES.items():
            record, keylog = capture(d, args, key_update)
            base = os.path.join(out, "tlsdec-" + name)
            for direction in ("client", "server"):
                with open("%s-%s.bin" % (base, direction), "wb") as f:
                    f.write(record[direction])
            with open(base + ".keylog", "wb") as f:
                f.write(keylog)
            print("%s: client %d bytes, server %d bytes, key log %d lines"
                  % (name, len(record["client"]), len(record["server"]),
                     keylog.count(b"\n")))
    write_corpus(src)


if __name__ == "__main__":
    main()
