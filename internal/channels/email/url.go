package email

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// Security is how a connection to a mail server is protected.
type Security int

const (
	// Plain is no TLS at all (a local server, a demo).
	Plain Security = iota
	// StartTLS upgrades a plain connection, and fails when the server
	// does not offer STARTTLS.
	StartTLS
	// ImplicitTLS is TLS from the first byte (imaps, smtps).
	ImplicitTLS
)

// Server is a mail server's address and how to reach it.
type Server struct {
	Addr     string // host:port
	Host     string
	Security Security
}

// ParseIMAPURL reads an imap_url: imaps://host[:993] (TLS), imap://host[:143]
// (STARTTLS, required) or imap+plain://host (never TLS, for a local test
// server only).
func ParseIMAPURL(raw string) (Server, error) {
	return parseServerURL(raw, map[string]scheme{
		"imaps":      {ImplicitTLS, "993"},
		"imap":       {StartTLS, "143"},
		"imap+plain": {Plain, "143"},
	})
}

// ParseSMTPURL reads an smtp_url: smtps://host[:465] (TLS), smtp://host[:587]
// (STARTTLS, required) or smtp+plain://host (never TLS, for a local test
// server only).
func ParseSMTPURL(raw string) (Server, error) {
	return parseServerURL(raw, map[string]scheme{
		"smtps":      {ImplicitTLS, "465"},
		"smtp":       {StartTLS, "587"},
		"smtp+plain": {Plain, "587"},
	})
}

type scheme struct {
	security Security
	port     string
}

func parseServerURL(raw string, schemes map[string]scheme) (Server, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Server{}, fmt.Errorf("%q is not a URL", raw)
	}
	s, ok := schemes[u.Scheme]
	if !ok {
		var names []string
		for n := range schemes {
			names = append(names, n)
		}
		slices.Sort(names)
		return Server{}, fmt.Errorf("%q: the scheme must be one of %s", raw, strings.Join(names, ", "))
	}
	if u.Hostname() == "" {
		return Server{}, fmt.Errorf("%q has no host", raw)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return Server{}, fmt.Errorf("%q: give only the scheme, host and port (credentials go in username and password)", raw)
	}
	port := u.Port()
	if port == "" {
		port = s.port
	}
	return Server{Addr: net.JoinHostPort(u.Hostname(), port), Host: u.Hostname(), Security: s.security}, nil
}
