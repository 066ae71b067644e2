package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/eiamtriage/eiamtriage/internal/broker"
	"github.com/eiamtriage/eiamtriage/internal/event"
	"github.com/eiamtriage/eiamtriage/internal/pipeline"
	"go.uber.org/zap"
)

// A stage: an embedded broker, the streams, a consumer whose handler says
// only whether it succeeded, and an event published to it.
func ExampleRun() {
	dir, err := os.MkdirTemp("", "eiamtriage-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	ctx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	b, err := broker.Open(ctx, broker.Options{Listen: "127.0.0.1:-1", StoreDir: dir}, zap.NewNop())
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := pipeline.EnsureStreams(ctx, b.JS, pipeline.StreamConfig{Replicas: 1}); err != nil {
		panic(err)
	}

	ev, err := event.New(event.TypeMailReceived, "example", "mail-1", time.Now(), event.MailReceived{MailID: "ab12", Size: 42})
	if err != nil {
		panic(err)
	}
	if err := pipeline.Publish(ctx, b.JS, event.SubjectNoticeReceived, ev); err != nil {
		panic(err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	handler := func(ctx context.Context, m pipeline.Msg) error {
		ev, err := m.Event() // a malformed body is a permanent error
		if err != nil {
			return err
		}
		var mail event.MailReceived
		if err := ev.Decode(&mail); err != nil {
			return pipeline.Permanent(err)
		}
		fmt.Printf("classify %s (%d bytes), delivery %d\n", mail.MailID, mail.Size, m.NumDelivered)
		cancel()   // one message is enough for the example
		return nil // Run acks it
	}
	err = pipeline.Run(runCtx, b.JS, pipeline.ConsumerConfig{
		Stream:        pipeline.StreamNotices,
		FilterSubject: event.SubjectNoticeReceived,
		Stage:         "classify",
	}, handler, zap.NewNop(), nil)
	fmt.Println("Run returned", err)
	// Output:
	// classify ab12 (42 bytes), delivery 1
	// Run returned <nil>
}
