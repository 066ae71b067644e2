package mailbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
)

// Token is an OAuth 2.0 access token and, when known, when it expires.
type Token struct {
	Value  string
	Expiry time.Time // zero: unknown
}

// TokenSource hands out the access token for a login. It is asked before
// every login, and again before the token expires when its expiry is
// known.
type TokenSource interface {
	Token(ctx context.Context) (Token, error)
}

// TokenSourceFunc adapts a function to TokenSource.
type TokenSourceFunc func(ctx context.Context) (Token, error)

// Token calls f.
func (f TokenSourceFunc) Token(ctx context.Context) (Token, error) { return f(ctx) }

// maxTokenSize bounds what is read from a token file or command.
const maxTokenSize = 64 << 10

// TokenFile returns a source that reads the token from path at each call
// (another program keeps the file fresh). The file holds the bare token
// or a JSON token response (see ParseToken).
func TokenFile(path string) TokenSource {
	return TokenSourceFunc(func(context.Context) (Token, error) {
		f, err := os.Open(path)
		if err != nil {
			return Token{}, fmt.Errorf("mailbox: read the OAuth token: %w", err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxTokenSize+1))
		if err != nil {
			return Token{}, fmt.Errorf("mailbox: read the OAuth token from %s: %w", path, err)
		}
		if len(data) > maxTokenSize {
			return Token{}, fmt.Errorf("mailbox: the OAuth token file %s is over %d bytes: not a token", path, maxTokenSize)
		}
		t, err := ParseToken(data)
		if err != nil {
			return Token{}, fmt.Errorf("mailbox: the OAuth token file %s: %w", path, err)
		}
		return t, nil
	})
}

// tokenCommandTimeout bounds one run of a token command.
const tokenCommandTimeout = time.Minute

// TokenCommand returns a source that runs argv (no shell) at each call
// and reads the token from its standard output (see ParseToken). Its
// standard error is quoted in the error when it fails; the token never
// is.
func TokenCommand(argv []string) TokenSource {
	return TokenSourceFunc(func(ctx context.Context) (Token, error) {
		if len(argv) == 0 {
			return Token{}, errors.New("mailbox: no token command")
		}
		ctx, cancel := context.WithTimeout(ctx, tokenCommandTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		var stdout, stderr limitedBuffer
		stdout.max, stderr.max = maxTokenSize, 2<<10
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Run(); err != nil {
			msg := strings.TrimSpace(stderr.String())
			if msg != "" {
				msg = ": " + strconv.QuoteToASCII(msg)
			}
			return Token{}, fmt.Errorf("mailbox: token command %s failed: %w%s", argv[0], err, msg)
		}
		if stdout.over {
			return Token{}, fmt.Errorf("mailbox: token command %s printed over %d bytes: not a token", argv[0], maxTokenSize)
		}
		t, err := ParseToken(stdout.Bytes())
		if err != nil {
			return Token{}, fmt.Errorf("mailbox: token command %s: %w", argv[0], err)
		}
		return t, nil
	})
}

type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		b.over = true
		b.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// ParseToken reads an access token: the bare token on a line, or a JSON
// token response ({"access_token": ..., "expires_in": seconds} as an OAuth
// 2.0 server answers, or "expiry" / "expires_on" as a time). When the
// response says no expiry and the token is a JWT, its "exp" claim is the
// expiry. Errors never contain the token.
func ParseToken(data []byte) (Token, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return Token{}, errors.New("no token (empty)")
	}
	var t Token
	if data[0] == '{' {
		var resp map[string]any
		if err := json.Unmarshal(data, &resp); err != nil {
			return Token{}, fmt.Errorf("not a JSON token response: %v", jsonErrorWithoutValue(err))
		}
		for _, k := range []string{"access_token", "accessToken", "token"} {
			if s, ok := resp[k].(string); ok && s != "" {
				t.Value = s
				break
			}
		}
		if t.Value == "" {
			return Token{}, errors.New("the JSON token response has no access_token")
		}
		if n, ok := resp["expires_in"].(float64); ok && n > 0 {
			t.Expiry = time.Now().Add(time.Duration(n) * time.Second)
		}
		for _, k := range []string{"expiry", "expires_on", "expiresOn", "expires_at"} {
			if !t.Expiry.IsZero() {
				break
			}
			switch v := resp[k].(type) {
			case string:
				if at, err := time.Parse(time.RFC3339, v); err == nil {
					t.Expiry = at
				} else if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					t.Expiry = time.Unix(n, 0)
				}
			case float64:
				t.Expiry = time.Unix(int64(v), 0)
			}
		}
	} else {
		if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
			return Token{}, errors.New("more than one line: give the bare token, or a JSON token response")
		}
		t.Value = string(data)
	}
	if strings.ContainsFunc(t.Value, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return Token{}, errors.New("the token holds spaces or control characters")
	}
	if t.Expiry.IsZero() {
		t.Expiry = jwtExpiry(t.Value)
	}
	return t, nil
}

// jsonErrorWithoutValue drops the offending value from a JSON error.
func jsonErrorWithoutValue(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d", se.Offset)
	}
	return errors.New("invalid JSON")
}

// jwtExpiry returns the exp claim of a JWT, zero when tok is not one.
func jwtExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp <= 0 {
		return time.Time{}
	}
	return time.Unix(int64(claims.Exp), 0)
}

// xoauth2 is the SASL XOAUTH2 client (Google's and Microsoft's; not in
// go-sasl). On failure the server sends a base64 JSON challenge and wants
// an empty response before it answers NO: Next gives it, keeping the
// challenge for the error.
type xoauth2 struct {
	user, token string
	failure     string
}

func (a *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + a.user + "\x01auth=Bearer " + a.token + "\x01\x01"), nil
}

func (a *xoauth2) Next(challenge []byte) ([]byte, error) {
	a.failure = saslFailure(challenge)
	return []byte{}, nil
}

// oauthBearer is the SASL OAUTHBEARER client of RFC 7628. go-sasl's
// returns an error from Next without answering the server's error
// challenge, which leaves the connection hanging; this one answers with
// the 0x01 the RFC asks for.
type oauthBearer struct {
	user, token, host string
	port              int
	failure           string
}

func (a *oauthBearer) Start() (string, []byte, error) {
	var b strings.Builder
	b.WriteString("n,a=" + saslName(a.user) + ",\x01")
	if a.host != "" {
		b.WriteString("host=" + a.host + "\x01")
	}
	if a.port != 0 {
		b.WriteString("port=" + strconv.Itoa(a.port) + "\x01")
	}
	b.WriteString("auth=Bearer " + a.token + "\x01\x01")
	return "OAUTHBEARER", []byte(b.String()), nil
}

func (a *oauthBearer) Next(challenge []byte) ([]byte, error) {
	a.failure = saslFailure(challenge)
	return []byte{0x01}, nil
}

// saslName escapes ',' and '=' in an authzid (RFC 5801).
func saslName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// saslFailure reads the status of an OAuth error challenge
// ({"status":"401","schemes":...}), for the log; it holds no secret.
func saslFailure(challenge []byte) string {
	var v struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(challenge, &v) == nil && v.Status != "" {
		return "status " + strconv.QuoteToASCII(v.Status)
	}
	return ""
}

var (
	_ sasl.Client = (*xoauth2)(nil)
	_ sasl.Client = (*oauthBearer)(nil)
)
