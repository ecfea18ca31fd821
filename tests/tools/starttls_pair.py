#!/usr/bin/env python3
"""A STARTTLS SMTP dialogue on loopback, server and client in one process.

    starttls_pair.py PORT CERT KEY KEYLOG [--tls12]

The server listens on 127.0.0.1:PORT, the client connects, says EHLO, STARTTLS, then EHLO
again, MAIL, RCPT, DATA and QUIT inside TLS.  The client's TLS secrets are appended to
KEYLOG as the handshake goes (SSLKEYLOGFILE format), so the file comes into being only
once this runs.  Standard library only; exits 0 when the dialogue went through.
"""

import smtplib
import socket
import ssl
import sys
import threading

REPLIES_CLEAR = {
    "EHLO": "250-mx.example.net\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
}


def serve(listener, cert, key, errors):
    try:
        conn, _ = listener.accept()
        conn.settimeout(20)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        f = conn.makefile("rwb", buffering=0)
        f.write(b"220 mx.example.net ESMTP test\r\n")
        tls = None
        while True:
            line = f.readline()
            if not line:
                return
            cmd = line.decode("ascii", "replace").strip()
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO" and tls is None:
                f.write(REPLIES_CLEAR["EHLO"].encode())
            elif verb == "STARTTLS" and tls is None:
                f.write(b"220 2.0.0 Ready to start TLS\r\n")
                tls = ctx.wrap_socket(conn, server_side=True)
                f = tls.makefile("rwb", buffering=0)
            elif verb == "EHLO":
                f.write(b"250-mx.example.net\r\n250 PIPELINING\r\n")
            elif verb == "DATA":
                f.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                while True:
                    body = f.readline()
                    if not body or body == b".\r\n":
                        break
                f.write(b"250 2.0.0 Ok: queued as 4ABC123\r\n")
            elif verb == "QUIT":
                f.write(b"221 2.0.0 Bye\r\n")
                if tls is not None:
                    try:
                        tls.unwrap()
                    except (OSError, ssl.SSLError):
                        pass
                return
            else:
                f.write(b"250 2.1.0 Ok\r\n")
    except Exception as e:  # noqa: BLE001 - reported to the caller
        errors.append(repr(e))


def main():
    port, cert, key, keylog = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    tls12 = "--tls12" in sys.argv[5:]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    errors = []
    t = threading.Thread(target=serve, args=(listener, cert, key, errors), daemon=True)
    t.start()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.keylog_filename = keylog
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with smtplib.SMTP("127.0.0.1", port, local_hostname="ws1.example.org", timeout=20) as c:
        c.ehlo()
        c.starttls(context=ctx)
        c.ehlo()
        c.sendmail("alice@example.org", ["bob@example.net"],
                   "Subject: followed key log\r\n\r\nDecrypted live.\r\n")
        c.quit()
    t.join(20)
    if errors:
        print("server: " + "; ".join(errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
