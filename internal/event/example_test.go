package event_test

import (
	"fmt"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/event"
)

func ExampleNew() {
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	ev, err := event.New(event.TypeMailReceived, "eiamtriage/ingest", "mail-ab12", at,
		event.MailReceived{MailID: "ab12", Mailbox: "be", Object: "ab12", Size: 42, Source: "imap:be/INBOX/7/1", ReceivedAt: at})
	if err != nil {
		panic(err)
	}
	b, _ := ev.Marshal()
	fmt.Println(string(b))

	back, _ := event.Parse(b)
	var m event.MailReceived
	if err := back.Decode(&m); err != nil {
		panic(err)
	}
	fmt.Println(event.CaseSubject(event.ClassReview), m.Source)
	// Output:
	// {"specversion":"1.0","id":"mail-ab12","source":"eiamtriage/ingest","type":"ch.eiamtriage.mail.received.v2","time":"2026-03-01T08:00:00Z","datacontenttype":"application/json","data":{"mail_id":"ab12","mailbox":"be","object":"ab12","size":42,"source":"imap:be/INBOX/7/1","received_at":"2026-03-01T08:00:00Z","reading":{}}}
	// eiam.case.review imap:be/INBOX/7/1
}
