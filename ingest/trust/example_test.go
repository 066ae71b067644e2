package trust_test

import (
	"context"
	"fmt"

	"github.com/eiamtriage/eiamtriage/ingest/trust"
)

func ExampleCheck() {
	// The mailbox of canton Ticino is in Exchange Online, whose
	// Authentication-Results header carries no authserv-id.
	p := &trust.Policy{
		Mailbox:      "ti",
		Microsoft365: true,
		Superusers:   []string{"sara.bianchi@ti.ch"},
	}
	if err := p.Validate(); err != nil {
		fmt.Println(err)
		return
	}

	notice := []byte("Authentication-Results: spf=pass (sender IP is 162.23.1.1)\r\n" +
		" smtp.mailfrom=admin.ch; dkim=pass (signature was verified)\r\n" +
		" header.d=admin.ch;dmarc=pass action=none header.from=eiam.admin.ch;compauth=pass\r\n" +
		" reason=100\r\n" +
		"From: eIAM <noreply@eiam.admin.ch>\r\n" +
		"Subject: eIAM: Dati utente non corrispondenti - Anna Muster\r\n" +
		"\r\n" +
		"ID del profilo: 8f1c2a44\r\n")
	t := trust.Check(context.Background(), p, notice, trust.Chain{NoticeFrom: "noreply@eiam.admin.ch"})
	fmt.Println(t.Trusted, t.Method, t.Domain)
	fmt.Println(t.Reasons[0])

	// A forger's copy: Microsoft 365 found no valid signature, and the
	// passing header the forger planted further down does not count.
	forged := []byte("Authentication-Results: spf=fail (sender IP is 203.0.113.9)\r\n" +
		" smtp.mailfrom=admin.ch; dkim=none (message not signed) header.d=none;dmarc=fail\r\n" +
		" action=oreject header.from=eiam.admin.ch;compauth=fail reason=000\r\n" +
		"Authentication-Results: dkim=pass header.d=admin.ch\r\n" +
		"From: eIAM <noreply@eiam.admin.ch>\r\n" +
		"Subject: eIAM: Dati utente non corrispondenti - Anna Muster\r\n" +
		"\r\n" +
		"ID del profilo: 8f1c2a44\r\n")
	t = trust.Check(context.Background(), p, forged, trust.Chain{NoticeFrom: "noreply@eiam.admin.ch"})
	fmt.Println(t.Trusted, t.Kind)
	fmt.Println(t.Reasons[0])
	// Output:
	// true dkim admin.ch
	// the topmost Authentication-Results header without authserv-id (Microsoft 365) says spf=pass, dkim=pass header.d="admin.ch", dmarc=pass header.from="eiam.admin.ch", compauth=pass: DKIM passed for "admin.ch", aligned with the From domain "eiam.admin.ch"
	// false unauthenticated
	// the topmost Authentication-Results header without authserv-id (Microsoft 365) says spf=fail, dkim=none header.d="none", dmarc=fail header.from="eiam.admin.ch", compauth=fail: neither an aligned dkim=pass nor dmarc=pass for the From domain "eiam.admin.ch"
}

func ExamplePolicy_Describe() {
	p := &trust.Policy{Mailbox: "be", Off: true, Superusers: []string{"anna.muster@be.ch"}}
	fmt.Println(p.Describe())
	// Output:
	// AUTHENTICATION IS OFF for mailbox "be": any mail whose From says "noreply@eiam.admin.ch" is acted on; forged notices will cause deactivations and escalations; a forwarded notice is acted on when one of the superusers "anna.muster@be.ch" forwarded it
}
