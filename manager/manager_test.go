package manager

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/redistest"
	"github.com/shmkit/shmkit/internal/shmtest"
	_ "github.com/shmkit/shmkit/manager/redis"
)

func TestMain(m *testing.M) { shmtest.Main(m) }

var testKey = []byte("correct horse battery staple")

// A transport is one way for clients to reach a server; every protocol
// test runs over each.
type transport struct {
	name    string
	network string
	server  Options
	client  Options
	// On network "redis": a private redis-server on a loopback port
	// with a password, rather than a Unix socket; or a three-node Redis
	// Cluster on loopback ports.
	redisTCP, redisCluster bool
}

func transports(t testing.TB) []transport {
	srvTLS, cliTLS := tlsConfigs(t)
	return []transport{
		{name: "shm", network: "unix"},
		{name: "unix", network: "unix", client: Options{NoSharedMemory: true}},
		{name: "tcp", network: "tcp", server: Options{AuthKey: testKey}, client: Options{AuthKey: testKey}},
		{name: "tls", network: "tcp", server: Options{AuthKey: testKey, TLSConfig: srvTLS}, client: Options{AuthKey: testKey, TLSConfig: cliTLS}},
		{name: "shm-futex", network: "unix", client: Options{noBells: true}},
		{name: "redis", network: "redis", client: Options{Lease: time.Second}},
		{name: "redis-tcp", network: "redis", redisTCP: true, client: Options{Lease: time.Second}},
		{name: "redis-cluster", network: "redis", redisCluster: true, client: Options{Lease: time.Second, RedisCluster: true}},
	}
}

// serverTransports are the transports of a shmkit server, for tests of
// what only it has.
func serverTransports(t testing.TB) []transport {
	var ts []transport
	for _, tr := range transports(t) {
		if !isRedis(tr.network) {
			ts = append(ts, tr)
		}
	}
	return ts
}

// forEachTransport runs f in a subtest per transport, each with its own
// server.
func forEachTransport(t *testing.T, f func(t *testing.T, ts *testServer)) {
	for _, tr := range transports(t) {
		t.Run(tr.name, func(t *testing.T) { f(t, startServer(t, tr)) })
	}
}

// forEachServerTransport is forEachTransport over the transports of a
// shmkit server only, for tests of its protocol and limits.
func forEachServerTransport(t *testing.T, f func(t *testing.T, ts *testServer)) {
	forEachTransportWith(t, func(*Server) {}, f)
}

// forEachTransportWith is forEachTransport with each server adjusted by
// prepare before it serves.
func forEachTransportWith(t *testing.T, prepare func(*Server), f func(t *testing.T, ts *testServer)) {
	for _, tr := range serverTransports(t) {
		t.Run(tr.name, func(t *testing.T) { f(t, startServer(t, tr, prepare)) })
	}
}

// testServer is a server running in the test process, for protocol tests.
// Tests of behaviour across processes start workers as clients.
type testServer struct {
	*Server // nil on Redis
	tr      transport
	address string
	served  chan error
	redis   *redistest.Server
}

// startServer serves tr in the test process; prepare, if any, adjusts the
// server before it starts serving.
func startServer(t testing.TB, tr transport, prepare ...func(*Server)) *testServer {
	t.Helper()
	if tr.redisCluster {
		nodes := redistest.StartCluster(t, 3)
		return &testServer{tr: tr, address: "redis://" + nodes[0].Addr(), redis: nodes[0]}
	}
	if isRedis(tr.network) {
		cfg := redistest.Config{}
		if tr.redisTCP {
			cfg = redistest.Config{TCP: true, Password: "sesame"}
		}
		rs := redistest.Start(t, cfg)
		return &testServer{tr: tr, address: rs.URL(), redis: rs}
	}
	var l net.Listener
	var err error
	address := "127.0.0.1:0"
	if tr.network == "unix" {
		address = filepath.Join(t.TempDir(), "sock")
	}
	l, err = Listen(tr.network, address)
	if err != nil {
		t.Fatal(err)
	}
	opts := tr.server
	opts.Logger = slog.New(slog.DiscardHandler)
	ts := &testServer{Server: NewServer(&opts), tr: tr, address: l.Addr().String(), served: make(chan error, 1)}
	for _, f := range prepare {
		f(ts.Server)
	}
	go func() { ts.served <- ts.Serve(l) }()
	t.Cleanup(func() {
		ts.Close()
		if err := <-ts.served; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve returned %v, want ErrClosed", err)
		}
	})
	return ts
}

func (ts *testServer) dial(t testing.TB) *Client {
	t.Helper()
	c, err := Dial(context.Background(), ts.tr.network, ts.address, &ts.tr.client)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tlsConfigs returns a server config with a fresh self-signed certificate
// for 127.0.0.1 and a client config trusting it.
func tlsConfigs(t testing.TB) (*tls.Config, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "shmkit test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	srv := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS13}
	cli := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	return srv, cli
}

var ctx = context.Background()

// must fails the test on err.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// parallelDo runs f(i) for i in [0, n) concurrently and waits.
func parallelDo(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}
