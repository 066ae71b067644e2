#!/usr/bin/env python3
"""Writes testdata/trust: notices that the sender authentication of the
example configuration's mailbox "be" (authserv-id mx.be.ch, superusers
martina.graf@be.ch and peter.aebi@be.ch) trusts, and forgeries of every kind
it must quarantine, with expected.json saying which is which.

    python3 testdata/gen/gen_trust.py
"""
import json
import os

OUT = os.path.join(os.path.dirname(__file__), "..", "trust")

NOTICE_BODY = """Guten Tag

Beim Onboarding wurden Abweichungen zwischen den im eIAM-Portal erfassten Daten und den Daten des angemeldeten Benutzers festgestellt.

Profil-ID: {pid}
Anwendung: SpiGes
Organisation: Inselspital Bern
Anmeldung am: 02.12.2026 09:{minute:02d}

Attribut | Im eIAM-Portal erfasst | Angemeldeter Benutzer
---------+------------------------+-----------------------
Vorname  | Anna                   | Anna
Name     | Muster                 | Muster
E-Mail   | anna.muster@insel.ch   | anna.muster@gmail.com

Diese Nachricht wurde automatisch erstellt.
"""

SUBJECT = "eIAM: Abweichende Benutzerdaten =?utf-8?q?=E2=80=93?= Anna Muster"


def notice(pid, minute, sender="eIAM <noreply@eiam.admin.ch>", extra=""):
    return (
        extra
        + f"From: {sender}\r\n"
        + "To: Martina Graf <martina.graf@be.ch>\r\n"
        + f"Subject: {SUBJECT}\r\n"
        + f"Date: Wed, 02 Dec 2026 09:{minute:02d}:30 +0100\r\n"
        + f"Message-ID: <trust.{pid}@eiam.admin.ch>\r\n"
        + "MIME-Version: 1.0\r\n"
        + 'Content-Type: text/plain; charset="utf-8"\r\n'
        + "Content-Transfer-Encoding: 8bit\r\n\r\n"
        + NOTICE_BODY.format(pid=pid, minute=minute).replace("\n", "\r\n")
    )


def forward(forwarder, inner, pid, extra=""):
    return (
        extra
        + f"From: {forwarder}\r\n"
        + "To: eiamtriage <triage@be.ch>\r\n"
        + f"Subject: WG: {SUBJECT}\r\n"
        + "Date: Wed, 02 Dec 2026 10:05:00 +0100\r\n"
        + f"Message-ID: <fwd.{pid}@be.ch>\r\n"
        + "MIME-Version: 1.0\r\n"
        + 'Content-Type: multipart/mixed; boundary="fwd"\r\n\r\n'
        + "--fwd\r\n"
        + 'Content-Type: text/plain; charset="utf-8"\r\n\r\n'
        + "Bitte bearbeiten.\r\n\r\n"
        + "--fwd\r\n"
        + "Content-Type: message/rfc822\r\n\r\n"
        + inner
        + "\r\n--fwd--\r\n"
    )


def ar(value):
    return f"Authentication-Results: {value}\r\n"


PASS_EIAM = ar("mx.be.ch; dkim=pass header.d=admin.ch header.s=sel1; dmarc=pass header.from=eiam.admin.ch")
PASS_BE = ar("mx.be.ch; dkim=pass header.d=be.ch header.s=s1; dmarc=pass header.from=be.ch")
RECEIVED = "Received: from mail.admin.ch (mail.admin.ch [162.23.1.1]) by mx.be.ch; Wed, 02 Dec 2026 09:00:31 +0100\r\n"


def main():
    os.makedirs(OUT, exist_ok=True)
    mails = {}

    def add(name, raw, expect):
        mails[name] = (raw, expect)

    n = iter(range(1, 100))

    def pid():
        return "7a000000-0000-4000-8000-%012d" % next(n)

    # Trusted: a case each.
    p = pid()
    add("trusted-direct-dkim.eml", notice(p, 1, extra=PASS_EIAM.replace("; dmarc=pass header.from=eiam.admin.ch", "") + RECEIVED), {"case": "p." + p, "class": "private-email"})
    p = pid()
    add("trusted-direct-dmarc.eml", notice(p, 2, extra=ar("mx.be.ch; dmarc=pass (p=reject dis=none) header.from=eiam.admin.ch") + RECEIVED), {"case": "p." + p, "class": "private-email"})
    p = pid()
    add("trusted-direct-real-on-top-planted-below.eml", notice(p, 3, extra=PASS_EIAM + RECEIVED + ar("mx.be.ch; dkim=fail header.d=admin.ch")), {"case": "p." + p, "class": "private-email"})
    p = pid()
    add("trusted-forward-by-superuser.eml", forward("Martina Graf <martina.graf@be.ch>", notice(p, 4, extra=PASS_EIAM), p, extra=PASS_BE), {"case": "p." + p, "class": "private-email"})

    # Forged, or failing: quarantined, never a case.
    add("forged-no-authentication-results.eml", notice(pid(), 10), {"quarantined": "unauthenticated"})
    add("forged-dkim-fail.eml", notice(pid(), 11, extra=ar("mx.be.ch; dkim=fail (body hash did not verify) header.d=admin.ch; dmarc=fail header.from=eiam.admin.ch")), {"quarantined": "unauthenticated"})
    add("forged-planted-pass-below-real-fail.eml", notice(pid(), 12, extra=ar("mx.be.ch; dkim=none; dmarc=none header.from=eiam.admin.ch") + RECEIVED + PASS_EIAM), {"quarantined": "unauthenticated"})
    add("forged-other-authserv-id.eml", notice(pid(), 13, extra=ar("mx.evil.example; dkim=pass header.d=admin.ch; dmarc=pass header.from=eiam.admin.ch")), {"quarantined": "unauthenticated"})
    add("forged-lookalike-dotted-capital-i.eml", notice(pid(), 14, sender="eIAM <noreply@e\u0130am.adm\u0130n.ch>", extra=ar("mx.be.ch; dkim=pass header.d=e\u0130am.adm\u0130n.ch; dmarc=pass header.from=e\u0130am.adm\u0130n.ch")), {"quarantined": "any"})
    add("forged-two-from-fields.eml", notice(pid(), 15, extra="From: eIAM <noreply@eiam.admin.ch>\r\n" + ar("mx.be.ch; dkim=pass header.d=evil.example; dmarc=pass header.from=evil.example"), sender="Mallory <noreply@evil.example>"), {"quarantined": "any"})
    p = pid()
    add("forged-forward-by-non-superuser.eml", forward("Sara Bianchi <sara.bianchi@ti.ch>", notice(p, 16, extra=PASS_EIAM), p, extra=ar("mx.be.ch; dkim=pass header.d=ti.ch; dmarc=pass header.from=ti.ch")), {"quarantined": "untrusted-forwarder"})
    p = pid()
    add("forged-forward-by-lookalike-superuser.eml", forward("Martina Graf <mart\u0130na.graf@be.ch>", notice(p, 17, extra=PASS_EIAM), p, extra=PASS_BE), {"quarantined": "any"})
    p = pid()
    add("forged-forward-by-superuser-unauthenticated.eml", forward("Martina Graf <martina.graf@be.ch>", notice(p, 18), p), {"quarantined": "unauthenticated"})
    p = pid()
    add("forged-forward-inner-not-eiam.eml", forward("Martina Graf <martina.graf@be.ch>", notice(p, 19, sender="eIAM <noreply@eiam-admin.ch>"), p, extra=PASS_BE), {"quarantined": "untrusted-sender"})

    expected = {}
    for name, (raw, expect) in sorted(mails.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(raw.encode("utf-8"))
        expected[name] = expect
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
