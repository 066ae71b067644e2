package broker

import "testing"

func TestRedactURLs(t *testing.T) {
	tests := map[string]string{
		"nats://127.0.0.1:4222":                       "nats://127.0.0.1:4222",
		"nats://eiam:s3cret@h1:4222,nats://tok@h2:42": "nats://eiam:xxxxx@h1:4222,nats://xxxxx@h2:42",
	}
	for in, want := range tests {
		if got := redactURLs(in); got != want {
			t.Errorf("redactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}
