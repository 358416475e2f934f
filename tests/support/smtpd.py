#!/usr/bin/env python3
"""A real SMTP server for bgrun's email tests: aiosmtpd on 127.0.0.1.

Every message received is stored in --out as NNNN.json (envelope, TLS/AUTH state, the
headers and each MIME part decoded by Python's email parser) and NNNN.eml (the raw
message); the .eml appears last, so a reader waiting for it sees both. Prints
"READY <port>" once it accepts connections and stops when its stdin closes.

  --starttls CERT KEY   offer STARTTLS and require it before MAIL
  --implicit CERT KEY   TLS from the first byte (SMTPS)
  --auth USER           require AUTH; the password is read from $SMTPD_TEST_PASSWORD
"""
import argparse
import email
import email.policy
import json
import os
import pathlib
import socket
import ssl
import sys
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    def __init__(self, out):
        self.out = out
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = self.out / f"{self.count:04d}"
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        parts = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            parts.append({"content_type": part.get_content_type(), "text": part.get_content()})
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(session.authenticated),
            "login": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
            "headers": {k: str(v) for k, v in msg.items()},
            "content_type": msg.get_content_type(),
            "parts": parts,
        }
        (base.with_suffix(".json")).write_text(json.dumps(meta, indent=1))
        tmp = base.with_suffix(".tmp")
        tmp.write_bytes(raw)
        tmp.rename(base.with_suffix(".eml"))
        return "250 OK stored"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    # aiosmtpd warns about its own deprecated attributes on every AUTH: noise in test output.
    warnings.simplefilter("ignore", DeprecationWarning)
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--implicit", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--auth", metavar="USER")
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    kw = {}
    for mode in ("starttls", "implicit"):
        pair = getattr(a, mode)
        if pair:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(pair[0], pair[1])
            if mode == "starttls":
                kw.update(tls_context=ctx, require_starttls=True)
            else:
                kw.update(ssl_context=ctx)
    if a.auth:
        password = os.environ["SMTPD_TEST_PASSWORD"]

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == a.auth
                and auth_data.password.decode() == password
            )
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

        kw.update(
            authenticator=authenticator,
            auth_required=True,
            # aiosmtpd does not count implicit TLS as TLS for AUTH; the line is encrypted anyway.
            auth_require_tls=bool(a.starttls),
        )
    for _ in range(20):
        port = free_port()
        controller = Controller(Store(out), hostname="127.0.0.1", port=port, **kw)
        try:
            controller.start()
            break
        except (OSError, RuntimeError):
            continue
    else:
        sys.exit("smtpd: no free port")
    print(f"READY {port}", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
