#!/usr/bin/env python3
"""Writes cmd/eiamtriage/demomail: the mails `eiamtriage demo` puts into its
in-process mailbox (embedded in the binary). Each is a fixture of
testdata/notices as the canton's boundary server (mx.be.ch) would deliver
it: CRLF line ends, its Authentication-Results header on top; the forged notice has
none (it claims the eIAM sender but did not come through eIAM's servers),
and the out-of-office reply is as it was.

    python3 testdata/gen/gen_demo.py
"""
import os
import re

HERE = os.path.dirname(__file__)
SRC = os.path.join(HERE, "..", "notices")
OUT = os.path.join(HERE, "..", "..", "cmd", "eiamtriage", "demomail")

EIAM = "Authentication-Results: mx.be.ch; dkim=pass header.d=admin.ch header.s=sel1; dmarc=pass header.from=eiam.admin.ch\r\n"
BE = "Authentication-Results: mx.be.ch; dkim=pass header.d=be.ch header.s=s1; dmarc=pass header.from=be.ch\r\n"

MAILS = [
    # (name in the demo, fixture, header added on top)
    ("01-wrong-person-de.eml", "de-html-wrong-same-family-mailto.eml", EIAM),
    ("02-private-email-fr.eml", "fr-table-alt-private-free-fr-swap.eml", EIAM),
    ("03-negligible-it.eml", "it-table-alt-lingua-extra-middle.eml", EIAM),
    ("04-review-en.eml", "en-blocks-family-review-other-domain.eml", EIAM),
    ("05-forwarded-private-email-de.eml", "de-fwd-outlook-text-table-wg-private-yahoo-de.eml", BE),
    ("06-forged-wrong-person-en.eml", "en-table-text-family-wrong-person.eml", ""),
    ("07-out-of-office-de.eml", "not-ooo-de-auto-replied-quoting-notice.eml", ""),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, src, header in MAILS:
        with open(os.path.join(SRC, src), "rb") as f:
            raw = f.read()
        # Drop any Authentication-Results the fixture has, then put the
        # boundary server's on top, as it would add it.
        raw = re.sub(rb"(?im)^Authentication-Results:.*\r?\n(?:[ \t].*\r?\n)*", b"", raw)
        # As a mail server delivers it: CRLF line ends.
        raw = re.sub(rb"\r?\n", b"\r\n", header.encode() + raw)
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(raw)


if __name__ == "__main__":
    main()
