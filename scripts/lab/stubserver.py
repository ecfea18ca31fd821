#!/usr/bin/env python3
"""Stand-in SMTP servers for lab cases a real MTA will not produce.

    stubserver.py MODE ADDR PORT

MODE "silent": accept connections and never send a banner (an overloaded
server whose kernel completes the handshake but whose daemon never answers);
a connection is held until the client closes it.

MODE "masked": an MTA seen through a firewall's SMTP inspection that masks
the EHLO keywords it does not allow, letter for letter (STARTTLS becomes
"XXXXXXXA", AUTH PLAIN LOGIN "XXXXXXXXXXXXXXXB", CHUNKING "XXXXXXXC"), so the
client never learns of them.  Accepts and discards messages.

MODE "lax": a server that checks nothing: 250 to every command, 354 to DATA
and 250 after the end of data even when no MAIL or RCPT was ever accepted
(RFC 5321 3.3 wants 503 there), 221 to QUIT.  It offers CHUNKING and, unlike
Postfix (which answers 521 and closes), answers a malformed BDAT with 501 and
goes on reading commands; a well-formed BDAT's chunk is read and acknowledged.

Stops by itself after --lifetime seconds (default 600).  Standard library only.
"""

import argparse
import socket
import sys
import threading
import time

MASKED_EHLO = [
    "250-mx.example.net",
    "250-PIPELINING",
    "250-SIZE 10240000",
    "250-XXXXXXXA",
    "250-XXXXXXXXXXXXXXXB",
    "250-ENHANCEDSTATUSCODES",
    "250-8BITMIME",
    "250-XXXXXXXC",
    "250 SMTPUTF8",
]


def serve_silent(conn):
    conn.settimeout(None)
    while True:
        try:
            if not conn.recv(4096):
                break
        except OSError:
            break
    conn.close()


def serve_masked(conn):
    f = conn.makefile("rb")

    def say(*lines):
        conn.sendall("".join(l + "\r\n" for l in lines).encode())

    say("220 mx.example.net ESMTP")
    in_data = False
    while True:
        line = f.readline()
        if not line:
            break
        text = line.decode("latin-1").rstrip("\r\n")
        if in_data:
            if text == ".":
                in_data = False
                say("250 2.0.0 Ok: queued as 4XyZ1n2q3r")
            continue
        verb = text.split(" ", 1)[0].upper()
        if verb == "EHLO":
            say(*MASKED_EHLO)
        elif verb == "HELO":
            say("250 mx.example.net")
        elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
            say("250 2.1.0 Ok")
        elif verb == "DATA":
            in_data = True
            say("354 End data with <CR><LF>.<CR><LF>")
        elif verb == "QUIT":
            say("221 2.0.0 Bye")
            break
        else:
            say("502 5.5.2 Error: command not recognized")
    conn.close()


def serve_lax(conn):
    f = conn.makefile("rb")

    def say(line):
        conn.sendall((line + "\r\n").encode())

    say("220 lax.example.net ESMTP")
    in_data = False
    while True:
        line = f.readline()
        if not line:
            break
        text = line.decode("latin-1").rstrip("\r\n")
        if in_data:
            if text == ".":
                in_data = False
                say("250 2.0.0 Ok: queued as 7LaX0q1w2e")
            continue
        words = text.split()
        verb = words[0].upper() if words else ""
        if verb == "EHLO":
            conn.sendall(b"250-lax.example.net\r\n250-PIPELINING\r\n250 CHUNKING\r\n")
        elif verb == "BDAT":
            last = len(words) == 3 and words[2].upper() == "LAST"
            if len(words) not in (2, 3) or (len(words) == 3 and not last) \
                    or not words[1].isdigit() or len(words[1]) > 9:
                say("501 5.5.4 Syntax: BDAT count [LAST]")
                continue
            chunk = f.read(int(words[1]))
            if len(chunk) < int(words[1]):
                break
            say("250 2.0.0 Ok: queued as 7LaX0q1w2f" if last else "250 2.0.0 Ok: %d bytes" % len(chunk))
        elif verb == "DATA":
            in_data = True
            say("354 End data with <CR><LF>.<CR><LF>")
        elif verb == "QUIT":
            say("221 2.0.0 Bye")
            break
        else:
            say("250 Ok")
    conn.close()


HANDLERS = {"silent": serve_silent, "masked": serve_masked, "lax": serve_lax}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=sorted(HANDLERS))
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--lifetime", type=float, default=600)
    a = p.parse_args()
    family = socket.AF_INET6 if ":" in a.addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.addr, a.port))
    s.listen(16)
    s.settimeout(1.0)
    handler = HANDLERS[a.mode]
    deadline = time.time() + a.lifetime
    while time.time() < deadline:
        try:
            conn, _ = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=handler, args=(conn,), daemon=True).start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
