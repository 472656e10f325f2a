package bus

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

func startEmbedded(t *testing.T) *Embedded {
	t.Helper()
	e, err := StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

func connect(t *testing.T, url string, opts ...nats.Option) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	b, err := Connect(ctx, url, Names{}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func inboundMessages(t *testing.T, b *Bus) uint64 {
	t.Helper()
	s, err := b.JS.Stream(t.Context(), b.Stream(Inbound))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// A process on the same machine that finds the embedded server's port
// cannot put a forged resident message onto INBOUND: the server accepts
// only the credentials it made at start.
func TestEmbeddedServerRefusesConnectionsWithoutItsCredentials(t *testing.T) {
	e := startEmbedded(t)
	b := connect(t, e.URL(), e.ConnectOptions()...)

	// The NATS client, with no credentials and with guessed ones.
	for _, opts := range [][]nats.Option{nil, {nats.UserInfo(e.user, "guessed")}, {nats.Token("guessed")}} {
		nc, err := nats.Connect(e.URL(), append(opts, nats.NoReconnect())...)
		if err == nil {
			nc.Close()
			t.Fatal("connected to the embedded NATS without its credentials")
		}
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("connection without the credentials: %v, want an authorization error", err)
		}
	}

	// The protocol by hand: CONNECT and PUB on one write, as a forger would.
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(e.URL(), "nats://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	if info, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(info, "INFO ") || !strings.Contains(info, `"auth_required":true`) {
		t.Fatalf("server greeting %q (%v), want INFO with auth_required", info, err)
	}
	forged := `{"dedupe_key":"x:forged","text":"forged"}`
	if _, err := conn.Write([]byte("CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPUB inbound.x.council-x " +
		strconv.Itoa(len(forged)) + "\r\n" + forged + "\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	answer, err := r.ReadString('\n')
	if err != nil || !strings.Contains(answer, "Authorization Violation") {
		t.Errorf("forged publish answered %q (%v), want an authorization violation", answer, err)
	}
	if n := inboundMessages(t, b); n != 0 {
		t.Errorf("INBOUND holds %d messages after unauthenticated publishes, want 0", n)
	}

	// With the credentials, in options or in the URL, publishing works.
	if _, err := b.JS.Publish(t.Context(), b.InboundSubject("x", "council-x"), []byte("{}")); err != nil {
		t.Fatalf("publish with the credentials: %v", err)
	}
	withUser := strings.Replace(e.URL(), "nats://", "nats://"+e.user+":"+e.password+"@", 1)
	if n := inboundMessages(t, connect(t, withUser)); n != 1 {
		t.Errorf("INBOUND holds %d messages, want 1", n)
	}
}

func TestEmbeddedServerCredentialsDifferEachStart(t *testing.T) {
	a, b := startEmbedded(t), startEmbedded(t)
	if a.password == b.password || len(a.password) < 20 {
		t.Errorf("passwords %q and %q: want a fresh random one per start", a.password, b.password)
	}
	if strings.Contains(a.URL(), a.password) || strings.Contains(a.URL(), a.user) {
		t.Errorf("URL %q carries the credentials", a.URL())
	}
}

func TestConnectErrorsCarryNoCredentials(t *testing.T) {
	// Nothing listens on port 1.
	for _, url := range []string{
		"nats://inbox:pa55-w0rd-xyz@127.0.0.1:1",
		"nats://s3cret-t0ken-xyz@127.0.0.1:1",
		"nats://127.0.0.2:1,nats://inbox:pa55-w0rd-xyz@127.0.0.1:1",
		"inbox:pa55-w0rd-xyz@127.0.0.1:1",
	} {
		_, err := Connect(t.Context(), url, Names{}, nats.Timeout(time.Second))
		if err == nil {
			t.Fatalf("connected to %s", Redact(url))
		}
		if msg := err.Error(); strings.Contains(msg, "pa55-w0rd") || strings.Contains(msg, "s3cret-t0ken") || !strings.Contains(msg, "127.0.0.1:1") {
			t.Errorf("error %q: want the server named without its credentials", msg)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                         "nats://127.0.0.1:4222",
		"nats://user:password@n1:4222,tls://token@n2:1": "nats://REDACTED@n1:4222,tls://REDACTED@n2:1",
		"user:password@n1:4222":                         "nats://REDACTED@n1:4222",
		"nats://user:pa%zzword@n1:4222":                 "(unreadable URL)",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// An external cluster that requires TLS with client certificates:
// Security's CA, certificate and key are what it takes to connect.
func TestConnectWithTLSAndAClientCertificate(t *testing.T) {
	dir := t.TempDir()
	caKey, caCert := newCA(t)
	ca := writePEM(t, dir, "ca.pem", "CERTIFICATE", caCert.Raw)
	serverCert, serverKey := writeLeaf(t, dir, "server", caCert, caKey, x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := writeLeaf(t, dir, "client", caCert, caKey, x509.ExtKeyUsageClientAuth)

	tlsConfig, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: serverCert, KeyFile: serverKey, CaFile: ca, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := runServer(t, &server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(),
		TLS: true, TLSVerify: true, TLSConfig: tlsConfig, TLSTimeout: 5, NoLog: true, NoSigs: true,
	})
	url := "tls://" + srv.Addr().String()

	b := connect(t, url, Security{CAFile: ca, CertFile: clientCert, KeyFile: clientKey}.Options()...)
	if _, err := b.JS.Publish(t.Context(), b.InboundSubject("x", "council-x"), []byte("{}")); err != nil {
		t.Fatalf("publish over TLS: %v", err)
	}
	if _, err := Connect(t.Context(), url, Names{}, append(Security{CAFile: ca}.Options(), nats.Timeout(2*time.Second))...); err == nil {
		t.Error("connected without a client certificate to a server that verifies clients")
	}
}

// An external cluster in operator mode: a .creds file (user JWT and NKey
// seed) is what it takes to connect.
func TestConnectWithACredsFile(t *testing.T) {
	operator, _ := nkeys.CreateOperator()
	operatorPub, _ := operator.PublicKey()
	operatorClaims := jwt.NewOperatorClaims(operatorPub)
	newAccount := func(jetStream bool) (nkeys.KeyPair, string, string) {
		kp, _ := nkeys.CreateAccount()
		pub, _ := kp.PublicKey()
		c := jwt.NewAccountClaims(pub)
		if jetStream {
			c.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		token, err := c.Encode(operator)
		if err != nil {
			t.Fatal(err)
		}
		return kp, pub, token
	}
	_, sysPub, sysJWT := newAccount(false)
	account, accountPub, accountJWT := newAccount(true)
	resolver := &server.MemAccResolver{}
	_ = resolver.Store(sysPub, sysJWT)
	_ = resolver.Store(accountPub, accountJWT)
	srv := runServer(t, &server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(),
		TrustedOperators: []*jwt.OperatorClaims{operatorClaims}, SystemAccount: sysPub, AccountResolver: resolver,
		NoLog: true, NoSigs: true,
	})

	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
	userSeed, _ := user.Seed()
	userJWT, err := jwt.NewUserClaims(userPub).Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(userJWT, userSeed)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "inbox.creds")
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		t.Fatal(err)
	}

	b := connect(t, srv.ClientURL(), Security{CredsFile: path}.Options()...)
	if _, err := b.JS.Publish(t.Context(), b.InboundSubject("x", "council-x"), []byte("{}")); err != nil {
		t.Fatalf("publish with a .creds file: %v", err)
	}
	if _, err := Connect(t.Context(), srv.ClientURL(), Names{}, nats.Timeout(2*time.Second)); err == nil {
		t.Error("connected to an operator-mode server without credentials")
	}
}

func runServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server did not start")
	}
	return srv
}

func newCA(t *testing.T) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return key, cert
}

// writeLeaf writes a certificate for 127.0.0.1 signed by the CA, and its
// key, and returns their paths.
func writeLeaf(t *testing.T, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage) (certPath, keyPath string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "PRIVATE KEY", keyDER)
}

func writePEM(t *testing.T, dir, name, kind string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
