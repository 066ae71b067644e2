package classify

import (
	"slices"
	"strings"
)

// defaultFreeMail is the built-in list of free-mail (private) domains: every
// domain NOTICE.md section 4 names, then more large international and Swiss
// providers and the Swiss internet providers whose addresses are private.
var defaultFreeMail = []string{
	// Named in NOTICE.md section 4.
	"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.ch",
	"hotmail.fr", "hotmail.it", "live.com", "msn.com", "yahoo.com", "yahoo.fr",
	"yahoo.de", "yahoo.it", "icloud.com", "me.com", "mac.com", "aol.com",
	"gmx.ch", "gmx.net", "gmx.de", "gmx.at", "web.de", "t-online.de",
	"protonmail.com", "protonmail.ch", "proton.me", "libero.it", "orange.fr",
	"free.fr", "laposte.net", "wanadoo.fr", "bluewin.ch", "sunrise.ch",
	"hispeed.ch", "bluemail.ch", "swissonline.ch", "mail.com", "yandex.com",
	"tutanota.com",

	// Microsoft.
	"outlook.fr", "outlook.de", "outlook.it", "outlook.es", "hotmail.de",
	"hotmail.co.uk", "hotmail.es", "hotmail.be", "hotmail.nl", "live.fr",
	"live.de", "live.it", "live.co.uk", "live.at", "live.be", "live.nl",
	"windowslive.com",
	// Yahoo and AOL.
	"ymail.com", "rocketmail.com", "yahoo.co.uk", "yahoo.es", "yahoo.ca",
	"aol.de", "aol.fr", "aim.com",
	// GMX, web.de, mail.com and other German-speaking providers.
	"gmx.com", "gmx.fr", "email.de", "freenet.de", "arcor.de",
	"online.de", "posteo.de", "posteo.net", "mailbox.org", "aon.at", "a1.net",
	// Proton, Tuta, Zoho, Fastmail and other international providers.
	"pm.me", "tutanota.de", "tutamail.com", "tuta.io",
	"tuta.com", "zoho.com", "zohomail.com", "zohomail.eu", "fastmail.com",
	"fastmail.fm", "hey.com", "gmx.us", "yandex.ru", "ya.ru", "mail.ru",
	"qq.com", "163.com", "126.com", "naver.com",
	// French- and Italian-speaking providers.
	"sfr.fr", "neuf.fr", "bbox.fr", "skynet.be", "tiscali.it", "virgilio.it",
	"alice.it", "tin.it", "email.it",
	// Swiss providers and internet service providers.
	"mail.ch", "vtxmail.ch", "vtxnet.ch", "green.ch", "greenmail.ch",
	"netplus.ch", "tele2.ch", "datacomm.ch", "upcmail.ch", "cablecom.ch",
	"quickline.ch", "solnet.ch",
}

// DefaultFreeMail returns the built-in list of free-mail domains, sorted
// and without repeats. The caller owns the returned slice.
func DefaultFreeMail() []string {
	l := slices.Clone(defaultFreeMail)
	slices.Sort(l)
	return slices.Compact(l)
}

// IsFreeMail reports whether domain is a free-mail (private) domain in the
// classifier's list. domain is compared without regard to case, surrounding
// white space or a trailing dot; a whole address is accepted too, its part
// after the last '@' being the domain. Subdomains of a listed domain are not
// free-mail unless listed themselves.
func (c *Classifier) IsFreeMail(domain string) bool {
	d := cleanDomain(domain)
	if d == "" {
		return false
	}
	_, ok := c.freeMail()[d]
	return ok
}

// SameDomain reports whether a and b are in the same domain: equal, or one a
// subdomain of the other (be.ch and gef.be.ch), without regard to case,
// surrounding white space or a trailing dot. Whole addresses are accepted
// too. A bare top-level domain is no parent: "ch" and "be.ch" are not in the
// same domain.
func SameDomain(a, b string) bool {
	a, b = cleanDomain(a), cleanDomain(b)
	if a == "" || b == "" {
		return false
	}
	if a == b {
		return true
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	// a is the shorter: b must end in "." + a, and a must not be a TLD.
	return strings.IndexByte(a, '.') >= 0 && len(b) > len(a) &&
		b[len(b)-len(a)-1] == '.' && strings.HasSuffix(b, a)
}

// cleanDomain returns the domain of an address or domain in lower case,
// trimmed, without a trailing dot.
func cleanDomain(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	return strings.ToLower(strings.TrimSuffix(s, "."))
}

// mailDomain returns the domain of an address that addressProblem accepts,
// in lower case and without a trailing dot.
func mailDomain(addr string) string {
	return cleanDomain(addr[strings.IndexByte(addr, '@')+1:])
}
