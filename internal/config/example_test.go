package config_test

import (
	"fmt"

	"github.com/eiamtriage/eiamtriage/internal/config"
)

func ExampleLoad() {
	cfg, err := config.Load([]byte(`
data_dir: /var/lib/eiamtriage
mailboxes:
  - name: be
    superusers: [martina.graf@be.ch]
    authserv_id: mx.be.ch
nats:
  url: tls://nats-1.example.org:4222,tls://nats-2.example.org:4222,tls://nats-3.example.org:4222
  replicas: 3
pipeline:
  backoff: [10s, 1m]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.NATS.Embedded(), len(cfg.NATS.URLs()), cfg.Pipeline.Backoff, cfg.Pipeline.MaxDeliver, cfg.Mailboxes[0].Name)
	// Output: false 3 [10s 1m] 5 be
}

func ExampleLoad_unknownKey() {
	_, err := config.Load([]byte(`
nats:
  listn: 127.0.0.1:4222
`))
	fmt.Println(err)
	// Output: config: line 3: unknown key "listn" in nats (did you mean "listen"?)
}
