package trust

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/emersion/go-msgauth/dkim"
)

// maxSignatures bounds the DKIM signatures verified per mail: each costs a
// DNS lookup and a hash of the body.
const maxSignatures = 4

// verifyDKIM verifies the DKIM signatures of raw (nsigs of them, as the
// header reader counted) for the folded domain fromDomain, looking the keys
// up with r (nil: net.DefaultResolver) under ctx.
//
// A signature that verifies and whose d= is aligned with fromDomain makes
// the mail trusted. Per go-msgauth: IsTempFail (the key lookup failed
// temporarily) is reported as temporary, IsPermFail (no key, a malformed
// signature) and any other error (a body hash that does not verify) fail.
func verifyDKIM(ctx context.Context, r Resolver, raw []byte, nsigs int, fromDomain string) authResult {
	if nsigs == 0 {
		return authResult{reasons: []string{"the mail carries no DKIM signature that the service could verify"}}
	}
	if err := ctx.Err(); err != nil {
		return authResult{temporary: true, reasons: []string{fmt.Sprintf("DNS temporarily failed: the check was cancelled before the DKIM keys were looked up (%s); a retry may pass", quote(err.Error()))}}
	}
	if r == nil {
		r = net.DefaultResolver
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT:        func(name string) ([]string, error) { return lookupTXT(ctx, r, name) },
		MaxVerifications: maxSignatures,
	})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		return authResult{reasons: []string{fmt.Sprintf("the DKIM signatures cannot be verified: %s", quote(err.Error()))}}
	}
	var notes []string
	if errors.Is(err, dkim.ErrTooManySignatures) {
		notes = append(notes, fmt.Sprintf("the mail carries %d DKIM signatures; only the first %d were verified", nsigs, maxSignatures))
	}
	temp := ""
	for _, v := range verifs {
		d := quote(v.Domain)
		isAligned := aligned(v.Domain, fromDomain)
		switch {
		case v.Err == nil && isAligned:
			dom, _ := foldDomain(v.Domain)
			return authResult{trusted: true, method: MethodDKIMVerified, domain: dom,
				reasons: append([]string{fmt.Sprintf("the service verified the DKIM signature of %s itself, aligned with the From domain %s", d, quote(fromDomain))}, notes...)}
		case v.Err == nil:
			notes = append(notes, fmt.Sprintf("the DKIM signature of %s verifies but is not aligned with the From domain %s", d, quote(fromDomain)))
		case dkim.IsTempFail(v.Err):
			if isAligned && temp == "" {
				temp = v.Domain
			}
			notes = append(notes, fmt.Sprintf("DNS temporarily failed for the DKIM key of %s: %s", d, quote(v.Err.Error())))
		case dkim.IsPermFail(v.Err):
			notes = append(notes, fmt.Sprintf("the DKIM signature of %s fails permanently: %s", d, quote(v.Err.Error())))
		default:
			notes = append(notes, fmt.Sprintf("the DKIM signature of %s does not verify: %s", d, quote(v.Err.Error())))
		}
	}
	if temp != "" {
		return authResult{temporary: true, reasons: append([]string{fmt.Sprintf("DNS temporarily failed while verifying the DKIM signature of %s: not trusted for now, a retry may pass", quote(temp))}, notes...)}
	}
	return authResult{reasons: append([]string{fmt.Sprintf("no DKIM signature verified by the service passes for the From domain %s", quote(fromDomain))}, notes...)}
}

// lookupTXT looks name up with r under ctx, in the error terms go-msgauth
// understands: it tells a temporary failure by a net.Error whose
// Temporary() is true, and takes any other error for a missing key. Only a
// definite "not found" is passed on as such; every other failure (a
// timeout, SERVFAIL, a cancelled ctx, an error of a custom Resolver) is
// temporary.
func lookupTXT(ctx context.Context, r Resolver, name string) ([]string, error) {
	txts, err := r.LookupTXT(ctx, name)
	if err == nil {
		return txts, nil
	}
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound && ctx.Err() == nil {
		return nil, &net.DNSError{Err: "no such record", Name: name, IsNotFound: true}
	}
	return nil, &net.DNSError{Err: err.Error(), Name: name, IsTemporary: true}
}
